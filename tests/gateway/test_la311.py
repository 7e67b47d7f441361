#!/usr/bin/env python3
"""The 9,989 Los Angeles 311 requests through POST /requests.json (Must-show 2).

Every row of ../shared/data/la311/service_requests.csv is posted to a real
city through the gateway by the client "la311", mapped as
deploy/data/la311-map.csv says (type -> service_code, source -> channel,
region -> district, council -> area; a row without a region is placed by
its coordinates), with its srnumber as idempotency key. Then each is read
back with GET /requests/{id}.json: it exists, is the service and district
it was filed as, and has the status the submit announced (a registered one
is open, a duplicate intake merged is closed). The rates are printed.
"""
import concurrent.futures
import csv
import os
import sys
import time

from gatewaycity import City, check, get, post_form

WORKERS = 16


def load_map(path):
    table = {}
    with open(path) as f:
        lines = [line for line in f if not line.startswith("#")]
    for row in csv.DictReader(lines):
        table[(row["table"], row["id"])] = row
    return table


def main():
    data = os.environ.get("LA311_DATA", "../shared/data/la311")
    mapping = load_map(os.path.join(os.environ.get("DEPLOY_DATA", "deploy/data"),
                                    "la311-map.csv"))
    with open(os.path.join(data, "service_requests.csv")) as f:
        rows = list(csv.DictReader(f))
    check(len(rows) == 9989, f"{len(rows)} rows")

    with City() as city:
        base = city.url
        key = city.apikeys["la311"]

        def fields_of(row):
            t = mapping[("type", row["type_id"])]
            fields = {
                "api_key": key, "idempotency_key": row["srnumber"],
                "service_code": t["value"], "lat": row["latitude"], "long": row["longitude"],
                "address_string": row["address"],
                "description": f"{t['note']} at {row['address']} (LA 311 {row['srnumber']})",
                "attribute[channel]": mapping[("source", row["source_id"])]["value"],
            }
            region = mapping.get(("region", row["region_id"]))
            if region:
                fields["attribute[district]"] = region["value"]
            council = mapping.get(("council", row["council_id"]))
            if council:
                fields["attribute[area]"] = council["value"]
            return fields

        def submit(row):
            r = post_form(base + "/requests.json", fields_of(row))
            if r.status != 201:
                return row, r, None
            return row, r, r.json()[0]

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            submitted = list(pool.map(submit, rows))
        post_seconds = time.monotonic() - started
        failures = [(row["srnumber"], r) for row, r, body in submitted if body is None]
        check(not failures, f"{len(failures)} posts refused, e.g. {failures[:3]}")
        ids = {body["service_request_id"] for _, _, body in submitted}
        check(len(ids) == len(rows), f"{len(ids)} distinct ids for {len(rows)} rows")
        merged = sum(1 for _, _, body in submitted
                     if body["service_notice"].startswith("merged"))

        def read_back(item):
            row, _, body = item
            r = get(base + f"/requests/{body['service_request_id']}.json")
            return row, body, r

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            read = list(pool.map(read_back, submitted))
        get_seconds = time.monotonic() - started
        wrong = []
        for row, body, r in read:
            if r.status != 200:
                wrong.append((row["srnumber"], r))
                continue
            ticket = r.json()[0]
            want_status = "closed" if body["service_notice"].startswith("merged") else "open"
            fields = fields_of(row)
            if (ticket["service_request_id"] != body["service_request_id"]
                    or ticket["status"] != want_status
                    or ticket["service_code"] != fields["service_code"]
                    or ("attribute[district]" in fields
                        and ticket["district"] != fields["attribute[district]"])
                    or abs(ticket["lat"] - float(row["latitude"])) > 1e-6
                    or abs(ticket["long"] - float(row["longitude"])) > 1e-6):
                wrong.append((row["srnumber"], ticket))
        check(not wrong, f"{len(wrong)} read back wrong, e.g. {wrong[:3]}")

        # Posting the whole file again changes nothing: every key is known.
        started = time.monotonic()
        again = [post_form(base + "/requests.json", fields_of(row)) for row in rows[:500]]
        check(all(r.status == 200 for r in again), "replays of known keys answer 200")
        check([r.json()[0]["service_request_id"] for r in again] ==
              [body["service_request_id"] for _, _, body in submitted[:500]], "same ids")

        print(f"la311: {len(rows)} requests posted in {post_seconds:.1f} s "
              f"({len(rows) / post_seconds:.0f}/s, {WORKERS} clients), "
              f"{merged} merged as duplicates by intake; "
              f"read back in {get_seconds:.1f} s ({len(rows) / get_seconds:.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
