#!/usr/bin/env python3
"""Prometheus scrapes the city through the gateway (Must-show 3).

Starts Debian's prometheus on a free loopback port with the gateway's
/metrics as its target (scraped every second), files a known number of
tickets through Open311, and asks Prometheus's HTTP API: the dispatch_
series exist; every worker of the city answers the gateway's StatsQuery
(dispatch_worker_up) with its own figures (commits, bus counters, links);
the tickets show up in dispatch_tickets, in intake's
dispatch_events_total{event="ticket_registered"} and in the routers'
applied messages; intake's links drain to no lag and none is diverged.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

from gatewaycity import City, check, get, post_form, wait_for

TICKETS = 25


def main():
    prometheus = shutil.which("prometheus") or "/usr/bin/prometheus"
    check(os.path.exists(prometheus), "Debian's prometheus is installed (scripts/setup)")
    with City() as city, tempfile.TemporaryDirectory(prefix="dispatch-prometheus-") as tmp:
        target = city.url.removeprefix("http://")
        listen = city.info["spare"].removeprefix("tcp://")
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: dispatch
    metrics_path: /metrics
    static_configs:
      - targets: ["{target}"]
""")
        log = open(os.path.join(tmp, "prometheus.log"), "w")
        proc = subprocess.Popen([prometheus, f"--config.file={tmp}/prometheus.yml",
                                 f"--storage.tsdb.path={tmp}/data",
                                 f"--web.listen-address={listen}"],
                                stdout=log, stderr=subprocess.STDOUT)
        api = f"http://{listen}"
        try:
            def ready():
                check(proc.poll() is None, "prometheus exited; see its log")
                return get(api + "/-/ready").status == 200
            wait_for(ready, 60, "prometheus to be ready")

            def query(expression):
                r = get(api + "/api/v1/query", query=expression)
                check(r.status == 200, repr(r))
                return r.json()["data"]["result"]

            key = city.apikeys["web-app"]
            for i in range(TICKETS):
                r = post_form(city.url + "/requests.json", {
                    "api_key": key, "service_code": "noise", "idempotency_key": f"prom-{i}",
                    "attribute[district]": ["chaoyang", "nanguan", "kuancheng"][i % 3],
                    "address_string": f"{i} Prometheus Road", "phone": f"1390000{i:04d}",
                    "description": "Loud"})
                check(r.status == 201, repr(r))

            def tickets_seen():
                result = query("sum(dispatch_tickets)")
                return result and float(result[0]["value"][1]) == TICKETS
            wait_for(tickets_seen, 60, f"sum(dispatch_tickets) == {TICKETS}")

            registered = query('dispatch_events_total{event="ticket_registered"}')
            check(len(registered) == 1 and registered[0]["metric"]["worker"] == "intake-1" and
                  float(registered[0]["value"][1]) == TICKETS, f"registered {registered}")
            by_district = query("sum by (district) (dispatch_tickets)")
            check(sorted(float(r["value"][1]) for r in by_district) ==
                  sorted([TICKETS // 3 + (1 if i < TICKETS % 3 else 0) for i in range(3)]),
                  f"by district {by_district}")

            up = query("dispatch_worker_up")
            workers = {r["metric"]["worker"]: float(r["value"][1]) for r in up}
            check(set(workers) == {"intake-1", "router-chaoyang", "router-nanguan",
                                   "router-kuancheng", "audit"}, f"workers {workers}")
            check(all(v == 1 for v in workers.values()), f"every worker up: {workers}")
            failing = {r["metric"]["worker"]: float(r["value"][1])
                       for r in query("dispatch_store_failing")}
            check(set(failing) == set(workers) and not any(failing.values()),
                  f"no store failing: {failing}")

            # Each worker's own figures, from its answer to StatsQuery.
            commits = {r["metric"]["worker"]: float(r["value"][1])
                       for r in query("dispatch_store_commits_total")}
            check(set(commits) == set(workers) and all(v > 0 for v in commits.values()),
                  f"commits {commits}")
            applied = {r["metric"]["worker"]: float(r["value"][1])
                       for r in query("dispatch_bus_applied_total")}
            check(sum(applied[w] for w in applied if w.startswith("router-")) >= TICKETS,
                  f"the routers applied the tickets: {applied}")
            links = query('dispatch_link_up{worker="intake-1",direction="outgoing"}')
            check({r["metric"]["peer"] for r in links} ==
                  {"router-chaoyang", "router-nanguan", "router-kuancheng", "audit"} and
                  all(float(r["value"][1]) == 1 for r in links), f"intake's links {links}")

            def outboxes_empty():
                lag = query('sum(dispatch_link_lag_messages{worker="intake-1"})')
                return lag and float(lag[0]["value"][1]) == 0
            wait_for(outboxes_empty, 30, "intake's links to be acknowledged")
            check(not query("dispatch_link_diverged == 1"), "no diverged link")

            r = get(api + "/api/v1/series", **{"match[]": '{__name__=~"dispatch_.+"}'})
            names = {s["__name__"] for s in r.json()["data"]}
            for name in ("dispatch_tickets", "dispatch_events_total", "dispatch_worker_up",
                         "dispatch_worker_probe_seconds", "dispatch_tickets_registered_total",
                         "dispatch_tickets_overdue", "dispatch_tickets_urgent_open",
                         "dispatch_store_commits_total", "dispatch_store_used_bytes",
                         "dispatch_store_failed_batches_total",
                         "dispatch_store_failing_since_seconds",
                         "dispatch_bus_dead_letters_total", "dispatch_link_outbox_messages",
                         "dispatch_link_last_heard_seconds", "dispatch_link_reconnects_total",
                         "dispatch_audit_last_seq",
                         "dispatch_gateway_http_request_duration_seconds_bucket",
                         "dispatch_gateway_submits_total"):
                check(name in names, f"{name} in {sorted(names)}")
            created = query('dispatch_gateway_submits_total{result="created"}')
            check(float(created[0]["value"][1]) == TICKETS, f"created {created}")
            print(f"prometheus: {len(names)} dispatch_ metric names, "
                  f"{TICKETS} tickets seen through {api}")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
