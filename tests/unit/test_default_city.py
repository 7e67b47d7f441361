#!/usr/bin/env python3
"""The default city's data files (deploy/data) agree with each other:

- a call of any category from one of the city's own areas, or with no area,
  is routed to a unit of this city, never to a Los Angeles agency (la-*):
  only the Los Angeles council areas (la-nc-*) lead there;
- every rule's area is an area of lists.csv in the rule's district, and
  every lead unit is a registered unit;
- every category a rule names is in lists.csv.

    test_default_city.py [DATA_DIR]
"""
import csv
import os
import sys


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else "deploy/data"
    units = {r["id"]: r for r in rows(os.path.join(data, "units.csv"))}
    lists = rows(os.path.join(data, "lists.csv"))
    categories = {r["id"] for r in lists if r["list"] == "category"}
    areas = {r["id"]: r["district"] for r in lists if r["list"] == "area"}
    failures = []
    for district in sorted(d for d in os.listdir(data)
                           if os.path.isfile(os.path.join(data, d, "rules.csv"))):
        rules = {(r["category"], r["area"]): r for r in rows(os.path.join(data, district,
                                                                          "rules.csv"))}
        for (category, area), rule in rules.items():
            if category not in categories:
                failures.append("%s: rule %s/%s: category not in lists.csv"
                                % (district, category, area))
            if area and areas.get(area) != district:
                failures.append("%s: rule %s/%s: not an area of %s in lists.csv"
                                % (district, category, area, district))
            if rule["lead_unit"] not in units:
                failures.append("%s: rule %s/%s: lead %s is not registered"
                                % (district, category, area, rule["lead_unit"]))
        local = [a for a, d in areas.items() if d == district and not a.startswith("la-nc-")]
        for category in sorted(categories):
            for area in [""] + local:
                rule = rules.get((category, area)) or rules.get((category, ""))
                if rule and rule["lead_unit"].startswith("la-"):
                    failures.append("%s: a %s call from %s goes to %s, a Los Angeles agency"
                                    % (district, category, area or "no area", rule["lead_unit"]))
                    break
    for failure in failures[:30]:
        print("FAIL:", failure)
    if failures:
        print("%d failures" % len(failures))
        sys.exit(1)
    print("the default city's data agrees: %d categories, %d areas" % (len(categories), len(areas)))


if __name__ == "__main__":
    main()
