#!/usr/bin/env python3
"""The Los Angeles 311 sample as a ticket history for `dispatchctl rules
suggest --history`: one line per request, at,category,area,unit.

    tools/la311_history.py [LA311_DIR] [DATA_DIR] > history.csv

LA311_DIR (default ../shared/data/la311) holds service_requests.csv and
agencies.csv; DATA_DIR (default deploy/data) la311-map.csv and units.csv.
The request's type becomes its category and its neighbourhood council its
area, as dispatch-callgen --replay maps them (la311-map.csv). The unit is
the one that handled it, the answer key: the yard of the handling agency in
the request's region (la-<agency>-rNN) when the city has one, else the
agency's head office (la-<agency>). Requests without an agency are left out.
"""
import csv
import os
import sys


def main():
    la_dir = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/la311"
    data_dir = sys.argv[2] if len(sys.argv) > 2 else "deploy/data"
    categories, areas = {}, {}
    with open(os.path.join(data_dir, "la311-map.csv"), newline="") as f:
        rows = (line for line in f if not line.startswith("#"))
        for row in csv.DictReader(rows):
            if row["table"] == "type":
                categories[row["id"]] = row["value"]
            elif row["table"] == "council":
                areas[row["id"]] = row["value"]
    with open(os.path.join(data_dir, "units.csv"), newline="") as f:
        rows = (line for line in f if not line.startswith("#"))
        units = {row["id"] for row in csv.DictReader(rows)}
    with open(os.path.join(la_dir, "agencies.csv"), newline="") as f:
        codes = {row["agency_id"]: row["data_code"].lower() for row in csv.DictReader(f)}
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(("at", "category", "area", "unit"))
    with open(os.path.join(la_dir, "service_requests.csv"), newline="") as f:
        for row in csv.DictReader(f):
            code = codes.get(row["agency_id"])
            if not code:
                continue
            region = int(row["region_id"] or 0)
            yard = "la-%s-r%02d" % (code, region)
            unit = yard if region and yard in units else "la-" + code
            out.writerow((row["created_date"], categories.get(row["type_id"], ""),
                          areas.get(row["council_id"], ""), unit))


if __name__ == "__main__":
    main()
