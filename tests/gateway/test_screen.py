#!/usr/bin/env python3
"""The big screen in headless Chromium (Must-show 4).

A real city behind the gateway; Debian's chromium, driven by puppeteer-core
(screen_driver.mjs), opens /screen. Then:
  1. tickets flow in through Open311 (LA 311 coordinates, some urgent) and
     the page's record count grows while they flow;
  2. once they stopped, the page's counts per district (registered,
     dispatched, resolved, closed, overdue today, read from the page itself)
     equal audit's KPIs of the day at the same moment (two equal KPI
     answers around the page's reading, the page at the audit's last seq);
  3. the gateway is stopped (the page's stream is cut and it says so),
     more tickets are filed meanwhile straight at intake (dispatchctl), the
     gateway comes back: the page catches up through audit's replay, with
     no gap and no record twice, and again equals the KPIs;
  4. a page loaded again (from the gateway's open tickets and today's first
     record) shows the same;
  5. a screenshot is kept in the test's artifacts (screen.png).
"""
import csv
import json
import os
import random
import subprocess
import sys
import threading
import time

from gatewaycity import City, check, get, post_form, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
COUNTS = ("registered", "dispatched", "resolved", "closed", "overdue")


class Driver:
    def __init__(self, url):
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "screen_driver.mjs"), url],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        check(json.loads(self.proc.stdout.readline()).get("ready"), "the page went live")

    def ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        check("error" not in answer, f"{line}: {answer}")
        return answer

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def kpis(base):
    r = get(base + "/screen/kpi.json", by="district")
    check(r.status == 200, repr(r))
    return {row["key"]: {c: row["counts"][c] for c in COUNTS} for row in r.json()["rows"]}


def page_matches_kpis(base, driver):
    """The page and audit agree at one moment: equal KPIs before and after."""
    before = kpis(base)
    state = driver.ask("state")
    after = kpis(base)
    if before != after:
        return False
    shown = {d: {c: counts[c] for c in COUNTS} for d, counts in state["districts"].items()}
    want = {d: before.get(d, {c: 0 for c in COUNTS}) for d in shown}
    return (shown == want and set(before) <= set(shown)) and state


def la_rows(count):
    data = os.environ.get("LA311_DATA", "../shared/data/la311")
    with open(os.path.join(data, "service_requests.csv")) as f:
        rows = list(csv.DictReader(f))
    random.Random(17).shuffle(rows)
    return rows[:count]


def main():
    artifacts = os.environ.get("GATEWAY_ARTIFACTS", "artifacts")
    os.makedirs(artifacts, exist_ok=True)
    codes = ["graffiti", "bulky-items", "illegal-dumping", "noise", "sanitation",
             "homeless-encampment", "single-streetlight", "water-supply", "road-damage"]
    with City() as city:
        base = city.url
        key = city.apikeys["web-app"]
        driver = Driver(base)
        try:
            # 1. Tickets flow; the page follows.
            rows = la_rows(240)
            done = threading.Event()
            refused = []

            def flow():
                for i, row in enumerate(rows):
                    r = post_form(base + "/requests.json", {
                        "api_key": key, "idempotency_key": f"screen-{i}",
                        "service_code": codes[i % len(codes)],
                        "lat": row["latitude"], "long": row["longitude"],
                        "address_string": row["address"], "description": "On the wall",
                        "attribute[urgency]": "urgent" if i % 9 == 0 else "normal",
                        "attribute[channel]": ["web", "phone", "wechat", "open311"][i % 4]})
                    if r.status not in (200, 201):
                        refused.append(r)
                    time.sleep(0.02)  # a steady trickle, as callers come
                done.set()
            poster = threading.Thread(target=flow)
            poster.start()
            seen = []
            while not done.is_set():
                seen.append(driver.ask("state")["seq"])
            poster.join()
            check(not refused, f"refused: {refused[:3]}")
            growing = [b for a, b in zip(seen, seen[1:]) if b > a]
            check(len(growing) >= 3, f"the page moved while tickets flowed: {seen}")

            # 2. The page equals audit's KPIs.
            state = wait_for(lambda: page_matches_kpis(base, driver), 60,
                             "the page to equal audit's KPIs")
            check(state["state"]["gaps"] == 0, f"no gap: {state['state']}")
            check(state["state"]["records"] == state["state"]["seq"] - state["state"]["first"] + 1,
                  f"every record once: {state['state']}")
            total = sum(d["registered"] for d in state["districts"].values())
            check(total == len(rows), f"{total} registered on the page, {len(rows)} posted")
            print(f"screen: {len(rows)} tickets; page at record {state['seq']} "
                  f"equals audit's KPIs: {state['districts']}")

            # 3. Cut the stream, file tickets meanwhile, restore.
            before_cut = state["seq"]
            city.command("gateway-stop")
            driver.ask("wait-live false")
            ctl = os.environ.get("DISPATCHCTL", "build/tools/dispatchctl")
            env = dict(os.environ, DISPATCH_ACTOR="tester")
            for i in range(30):
                out = subprocess.run(
                    [ctl, "--config", city.info["topology"], "submit", "--channel", "phone",
                     "--kind", "complaint", "--urgency", "normal",
                     "--district", ["chaoyang", "nanguan", "kuancheng"][i % 3],
                     "--category", "noise", "--description", "Filed while the screen was cut",
                     "--request-id", f"cut-{i}", "--lat", "34.05", "--lon", "-118.25"],
                    env=env, capture_output=True, text=True)
                check(out.returncode == 0, f"dispatchctl submit: {out.stderr}")
            city.command("gateway-start")
            driver.ask("wait-live true")
            state = wait_for(lambda: page_matches_kpis(base, driver), 60,
                             "the page to catch up and equal audit's KPIs")
            s = state["state"]
            check(s["gaps"] == 0 and s["records"] == s["seq"] - s["first"] + 1,
                  f"caught up with no gap, nothing twice: {s}")
            check(s["seq"] > before_cut, "records after the cut arrived")
            total = sum(d["registered"] for d in state["districts"].values())
            check(total == len(rows) + 30, f"{total} registered after the cut")
            check(not state["errors"], f"page errors: {state['errors']}")
            print(f"screen: cut at record {before_cut}, caught up to {s['seq']} "
                  f"(reconnects {s['reconnects']}), still equal to audit's KPIs")

            # A page loaded now starts from the gateway's open tickets and
            # today's first record: it shows the same.
            shown_before = state["districts"]
            driver.ask("reload")
            state = wait_for(lambda: page_matches_kpis(base, driver), 60,
                             "the reloaded page to equal audit's KPIs")
            check(state["districts"] == shown_before,
                  f"reloaded: {state['districts']} != {shown_before}")
            check(state["state"]["snapshot"] > 0, f"started from a snapshot: {state['state']}")
            print(f"screen: reloaded from the open tickets at record "
                  f"{state['state']['snapshot']}, reading from record {state['state']['first']}")

            # 4. The picture.
            shot = os.path.join(artifacts, "screen.png")
            driver.ask(f"shot {shot}")
            check(os.path.getsize(shot) > 10000, "a screenshot")
            print(f"screen: screenshot {shot}")
        finally:
            driver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
