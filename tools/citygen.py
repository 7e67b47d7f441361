#!/usr/bin/env python3
"""citygen: generates the default city's data files in deploy/data/.

    tools/citygen.py [--out DIR] [--la DIR] [--check]

--out  where to write (default: deploy/data of this repository)
--la   the Los Angeles 311 sample (default: ../shared/data/la311 beside the
       repository root, as CI places it)
--check  regenerate into a temporary directory and compare with --out;
       exit 1 when the committed files are stale (77 without the sample)

Python 3 standard library only. Deterministic: the same inputs give
byte-identical files (fixed seed, sorted iteration, LF line ends). The
generated files are committed, so a fresh clone runs without this script.

What it writes
--------------

units.csv (id,name,parent_id,level,district,active): the unit registry,
exactly 3,015 units (the number of units the Changchun hotline connects,
RULES.md). One file for the whole city; every router loads it, so
<district>/units.csv is a symbolic link to ../units.csv.

    city                              the city government (level city)
    bureau-<name>                     39 city bureaus (level bureau, parent city)
    <company>                         9 enterprises: power, water, gas, heating,
                                      drainage, three telecom carriers, the bus group
    <utility>-<district>              a service branch per district of the six
                                      utilities that have one (level enterprise)
    la-<agency>                       the 12 Los Angeles agencies as city bureaus
    la-<agency>-r<NN>                 a yard per LA region of the five agencies
                                      that own request types (district of the region)
    office-<district>                 the district government (level district)
    <district>-<bureau>               9 district bureaus (parent: the district office)
    <district>-sNN                    street offices (level street)
    <district>-sNN-cNN                communities (level community, parent: the street)

The number of communities per street is drawn (seed 12345) between 30 and
54 and then adjusted so that the total is 3,015.

Areas are unit ids: a street area is its street office's id, a community
area its community's id. Los Angeles neighbourhood councils become areas
"la-nc-NNN" (council id) of a district.

<district>/rules.csv (category,area,lead_unit,assisting_units,priority):
the routing rules of one district.

  Hotline categories (the synthetic mix, categories.csv):
    street level      street-vending, noise, sanitation, illegal-construction,
                      greening: the street office of a street area; other areas
                      fall to the category default (a district or city bureau)
    community level   property-management, neighbour-dispute, elevator,
                      old-residential-renovation, dog-keeping: the community of a
                      community area; elevator is co-handled with the district
                      market bureau; defaults go to district bureaus
    district bureaus  consumer-rights, food-safety, wage-arrears, education,
                      civil-affairs, environment-pollution
    city bureaus      social-insurance, medical-insurance, health, taxi,
                      traffic-signal, parking (co-handled by the district urban
                      management bureau), real-estate, housing-fund
    co-handled        road-damage: the city roads bureau leads, the district
                      office assists
    enterprises       heating, water-supply, power-outage, gas, drainage
                      (district branches), telecom, public-transport (city level)
    no rule           manhole-cover (the owner is unclear: water, gas, power,
                      telecom or roads): triage; an unclassified call ("") too

  Los Angeles request types (the replay, la311-map.csv):
    type -> category: the type name in lower case with '-' ("Bulky Items" ->
    bulky-items). The owning agency is the one that handled most requests of
    the type in service_requests.csv (types.csv names the Street Lighting
    Bureau for "Water Waste", the requests show the Department of Water &
    Power handled them). Rule per council area: the agency's yard of the
    council's region. The category default is a local unit, not the agency:
    the city's own areas (and calls with no area) of that category stay in
    the city (water-<district> for water-waste, <district>-urban-management
    for the rest). The 106 replayed rows without a region carry no area and
    go there too.
    "Homeless Encampment" and "Illegal Dumping" are split between the two
    sanitation bureau codes by region: in the regions where LASAN handled a
    larger share of these two types than it did city-wide, LASAN's yard
    leads; elsewhere BOS's.
    "Other" and "Feedback" have no fixed owner: no rule, so triage.

  Region -> district: regions 1-4 (the valley) chaoyang, 5-8 (central and
  east) nanguan, 9-12 (south, west and harbor) kuancheng.

  A council's region is the one its requests carry in service_requests.csv
  (every council's requests carry a single region). For 31 councils that
  region differs from councils.csv, and the requests' coordinates agree with
  the requests' region: the council ids of those rows are shifted by one
  (rows labelled "Canoga Park" lie in CANNDU). The rules follow the
  requests, so that a replayed request reaches the yard of the region it is
  in; councils without requests use councils.csv.

categories.csv (category,name,weight,area_level,kinds): the call mix of
dispatch-callgen. weight: relative share of calls; area_level: street,
community or any (which area a synthetic call gives); kinds: "kind:weight"
pairs separated by ';'. The shares follow the usual top categories of
12345 hotline reports (urban management, housing and property, labour,
heating in the northern winter, utilities, consumer rights); they are ours,
not a published table.

lists.csv (list,id,district,name): the city's lists that dispatch-intake
checks a submit against and serves (CityListsQuery): every category (the
hotline's and the Los Angeles types) and every area (street and community
areas with their district, Los Angeles councils with the district of
their region).

la311-map.csv (table,id,value,ticket_kind,latitude,longitude,note): how
dispatch-callgen --replay maps a Los Angeles row:
    type,<type_id>,<category>,<kind>,,,<type name>
    source,<source_id>,<channel>,,,,<source name>
    council,<council_id>,<area>,<district>,,,<council name>
    region,<region_id>,<district>,,<lat>,<lon>,<region name>
A row without a region (106 rows) goes to the district of the nearest
region centroid by its coordinates, with no area (the category default).
Sources: phone call, queue-initiated call, voicemail, TTY -> phone; mobile
app, social, twitter -> wechat; web form, website, e-mail, fax, letter ->
web; council's office, mayor's office, city attorney, radio -> message-board;
work crew (driver self report) -> proactive; walk-in -> reception-day.
"""

import argparse
import collections
import csv
import filecmp
import io
import os
import random
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOTAL_UNITS = 3015
SEED = 12345

DISTRICTS = [
    # id, display name, street offices, LA regions
    ("chaoyang", "Chaoyang", 24, (1, 2, 3, 4)),
    ("nanguan", "Nanguan", 22, (5, 6, 7, 8)),
    ("kuancheng", "Kuancheng", 20, (9, 10, 11, 12)),
]

CITY_BUREAUS = [
    ("urban-management", "City urban management bureau"),
    ("housing", "City housing and urban-rural development bureau"),
    ("market", "City market supervision bureau"),
    ("environment", "City ecology and environment bureau"),
    ("hrss", "City human resources and social security bureau"),
    ("education", "City education bureau"),
    ("civil-affairs", "City civil affairs bureau"),
    ("health", "City health commission"),
    ("emergency", "City emergency management bureau"),
    ("transport", "City transport bureau"),
    ("traffic-police", "City traffic police detachment"),
    ("public-security", "City public security bureau"),
    ("medical-insurance", "City medical insurance bureau"),
    ("housing-fund", "City housing provident fund centre"),
    ("real-estate", "City real estate administration"),
    ("roads", "City municipal roads and bridges bureau"),
    ("water-affairs", "City water affairs bureau"),
    ("landscaping", "City landscaping bureau"),
    ("natural-resources", "City natural resources bureau"),
    ("planning", "City planning bureau"),
    ("culture-tourism", "City culture, radio, film and tourism bureau"),
    ("commerce", "City commerce bureau"),
    ("agriculture", "City agriculture and rural affairs bureau"),
    ("forestry", "City forestry bureau"),
    ("sports", "City sports bureau"),
    ("justice", "City justice bureau"),
    ("veterans", "City veterans affairs bureau"),
    ("taxation", "City taxation bureau"),
    ("statistics", "City statistics bureau"),
    ("development-reform", "City development and reform commission"),
    ("industry-it", "City industry and information technology bureau"),
    ("finance", "City finance bureau"),
    ("science-tech", "City science and technology bureau"),
    ("ethnic-religion", "City ethnic and religious affairs commission"),
    ("elderly", "City ageing affairs office"),
    ("disabled-persons", "City disabled persons federation"),
    ("women-children", "City women and children working committee"),
    ("letters-visits", "City letters and visits bureau"),
    ("government-services", "City government services and data bureau"),
]

# id, name, has district branches
ENTERPRISES = [
    ("power-company", "State Grid city power supply company", True),
    ("water-company", "City water supply group", True),
    ("gas-company", "City gas company", True),
    ("heating-company", "City heating group", True),
    ("drainage-company", "City drainage company", True),
    ("telecom-company", "China Telecom city branch", True),
    ("mobile-company", "China Mobile city branch", False),
    ("unicom-company", "China Unicom city branch", False),
    ("bus-group", "City public transport group", False),
]

DISTRICT_BUREAUS = [
    ("urban-management", "urban management bureau"),
    ("housing", "housing and construction bureau"),
    ("market", "market supervision bureau"),
    ("environment", "ecology and environment branch"),
    ("hrss", "human resources and social security bureau"),
    ("education", "education bureau"),
    ("civil-affairs", "civil affairs bureau"),
    ("health", "health bureau"),
    ("emergency", "emergency management bureau"),
]

# Hotline categories: code, name, weight, area level, kinds, rule.
# rule: ("street", default) | ("community", default, assist-or-None) |
#       ("unit", lead, assist-or-None) | None (no rule: triage).
# In unit names "{d}" is the district id.
CATEGORIES = [
    ("street-vending", "Street vending and stalls on the road", 4.0, "street",
     "complaint:70;report:25;suggestion:5", ("street", "{d}-urban-management")),
    ("noise", "Noise from construction, shops, night work", 5.0, "street",
     "complaint:85;report:10;help:5", ("street", "{d}-urban-management")),
    ("sanitation", "Rubbish, dirty streets, public toilets", 6.0, "street",
     "complaint:55;help:30;report:10;suggestion:5", ("street", "{d}-urban-management")),
    ("illegal-construction", "Illegal construction and occupation", 3.0, "street",
     "report:70;complaint:30", ("street", "{d}-urban-management")),
    ("greening", "Trees, lawns and parks", 1.5, "street",
     "help:50;complaint:25;suggestion:25", ("street", "bureau-landscaping")),
    ("property-management", "Property management services", 8.0, "community",
     "complaint:60;help:30;consult:10", ("community", "{d}-housing", None)),
    ("neighbour-dispute", "Disputes between neighbours", 2.0, "community",
     "help:70;complaint:30", ("community", "office-{d}", None)),
    ("elevator", "Lift out of service or unsafe", 1.5, "community",
     "help:70;complaint:30", ("community", "{d}-market", "{d}-market")),
    ("old-residential-renovation", "Renovation of old residential compounds", 2.0, "community",
     "consult:40;complaint:30;suggestion:30", ("community", "{d}-housing", None)),
    ("dog-keeping", "Dogs off the leash, barking, dog registration", 1.0, "community",
     "complaint:70;consult:30", ("community", "{d}-urban-management", None)),
    ("consumer-rights", "Consumer rights: refunds, prepaid cards, shops", 6.0, "any",
     "complaint:75;consult:20;report:5", ("unit", "{d}-market", None)),
    ("food-safety", "Food safety in shops and restaurants", 1.5, "any",
     "report:60;complaint:40", ("unit", "{d}-market", None)),
    ("wage-arrears", "Unpaid wages", 4.0, "any",
     "help:70;complaint:20;consult:10", ("unit", "{d}-hrss", None)),
    ("education", "Schools, enrolment, fees, tutoring", 3.0, "any",
     "consult:55;complaint:35;suggestion:10", ("unit", "{d}-education", None)),
    ("civil-affairs", "Subsistence allowance, elderly care, marriage registration", 1.5, "any",
     "consult:60;help:40", ("unit", "{d}-civil-affairs", None)),
    ("environment-pollution", "Smoke, dust, smells, polluted water", 2.0, "any",
     "report:55;complaint:45", ("unit", "{d}-environment", None)),
    ("social-insurance", "Pensions and social insurance", 3.0, "any",
     "consult:80;help:20", ("unit", "bureau-hrss", None)),
    ("medical-insurance", "Medical insurance and reimbursement", 1.5, "any",
     "consult:80;help:20", ("unit", "bureau-medical-insurance", None)),
    ("health", "Hospitals, clinics, vaccination", 2.0, "any",
     "consult:50;complaint:40;suggestion:10", ("unit", "bureau-health", None)),
    ("taxi", "Taxis and ride-hailing", 1.5, "any",
     "complaint:80;consult:10;suggestion:10", ("unit", "bureau-transport", None)),
    ("traffic-signal", "Traffic lights and road signs", 1.0, "any",
     "report:60;suggestion:40", ("unit", "bureau-traffic-police", None)),
    ("parking", "Parking on pavements and in fire lanes", 3.0, "any",
     "complaint:70;report:30", ("unit", "bureau-traffic-police", "{d}-urban-management")),
    ("real-estate", "New homes, property certificates, agents", 3.0, "any",
     "consult:50;complaint:50", ("unit", "bureau-real-estate", None)),
    ("housing-fund", "Housing provident fund", 1.0, "any",
     "consult:90;help:10", ("unit", "bureau-housing-fund", None)),
    ("road-damage", "Potholes and broken pavements", 2.0, "any",
     "report:70;complaint:30", ("unit", "bureau-roads", "office-{d}")),
    ("heating", "Cold radiators and heating fees", 7.0, "community",
     "complaint:60;help:35;consult:5", ("unit", "heating-{d}", None)),
    ("water-supply", "No water, low pressure, water quality", 3.0, "community",
     "help:60;complaint:40", ("unit", "water-{d}", None)),
    ("power-outage", "Power cuts and meters", 2.0, "community",
     "help:70;complaint:30", ("unit", "power-{d}", None)),
    ("gas", "Gas supply and gas smell", 1.5, "community",
     "help:80;complaint:20", ("unit", "gas-{d}", None)),
    ("drainage", "Blocked drains and flooding", 1.5, "street",
     "help:70;report:30", ("unit", "drainage-{d}", None)),
    ("telecom", "Broadband, mobile coverage, bills", 1.0, "any",
     "complaint:70;help:30", ("unit", "telecom-{d}", None)),
    ("public-transport", "Bus routes, stops and drivers", 2.0, "any",
     "complaint:50;suggestion:35;consult:15", ("unit", "bus-group", None)),
    ("manhole-cover", "Missing or broken manhole cover", 1.0, "street",
     "report:100", None),
    ("", "Unclassified at intake", 1.0, "any",
     "consult:40;help:30;suggestion:30", None),
]

LA_AGENCY_IDS = {
    # agency_id -> unit id suffix (the agency's data code, lower case)
    "1": "bsl", "2": "bos", "3": "lasan", "4": "ocb", "5": "ita", "6": "ladwp",
    "7": "bss", "8": "ladot", "9": "laas", "10": "rap", "11": "boe", "12": "ladbs",
}
LA_KINDS = {
    "Graffiti": "report", "Homeless Encampment": "report", "Animal Remains": "report",
    "Bulky Items": "help", "Electronic Waste": "help", "Illegal Dumping": "report",
    "Metal/Appliances": "help", "Single Streetlight": "report",
    "Multiple Streetlights": "report", "Water Waste": "report", "Other": "consult",
    "Feedback": "suggestion",
}
LA_NO_OWNER = ("Other", "Feedback")
# The local owner of a Los Angeles request type in this city: a call of that
# category from one of the city's own areas (or with none) goes here, not to
# an LA agency. "Water Waste" is the water company's; the rest (cleaning,
# dumping, graffiti, street lights) the district's urban management.
LA_LOCAL_OWNER = {"Water Waste": "water-{d}"}
LA_LOCAL_DEFAULT = "{d}-urban-management"
LA_SPLIT = ("Homeless Encampment", "Illegal Dumping")
LA_SOURCES = {
    "Phone Call": "phone", "Queue-Initiated": "phone", "Voicemail": "phone", "TTY": "phone",
    "Mobile App": "wechat", "Social": "wechat", "Twitter": "wechat",
    "Web Form": "web", "Website": "web", "Email": "web", "Fax": "web", "Letter": "web",
    "Council's Office": "message-board", "Mayor's Office": "message-board",
    "City Attorney": "message-board", "Radio": "message-board",
    "Work Crew": "proactive", "Walk-in": "reception-day",
}


def slug(text):
    out = []
    for ch in text.lower():
        out.append(ch if ch.isalnum() else "-")
    return "-".join(part for part in "".join(out).split("-") if part)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def region_district(region_id):
    for district, _, _, regions in DISTRICTS:
        if int(region_id) in regions:
            return district
    return None


class LA:
    """The Los Angeles sample and what it says about owners and regions."""

    def __init__(self, path):
        self.agencies = read_csv(os.path.join(path, "agencies.csv"))
        self.types = read_csv(os.path.join(path, "types.csv"))
        self.sources = read_csv(os.path.join(path, "sources.csv"))
        self.regions = read_csv(os.path.join(path, "regions.csv"))
        self.councils = read_csv(os.path.join(path, "councils.csv"))
        rows = read_csv(os.path.join(path, "service_requests.csv"))

        handled = collections.defaultdict(collections.Counter)
        council_regions = collections.defaultdict(collections.Counter)
        split_total = collections.Counter()
        split_lasan = collections.Counter()
        for row in rows:
            handled[row["type_id"]][row["agency_id"]] += 1
            if row["council_id"] != "0" and row["region_id"] != "0":
                council_regions[row["council_id"]][row["region_id"]] += 1
            type_name = self.type_name(row["type_id"])
            if type_name in LA_SPLIT and row["region_id"] != "0":
                split_total[row["region_id"]] += 1
                if LA_AGENCY_IDS.get(row["agency_id"]) == "lasan":
                    split_lasan[row["region_id"]] += 1

        # Owner of a type: the agency that handled most of its requests
        # (ties: the smaller agency id).
        self.owner = {}
        for t in self.types:
            counts = handled.get(t["type_id"])
            if t["type_name"] in LA_NO_OWNER or not counts:
                continue
            best = sorted(counts.items(), key=lambda kv: (-kv[1], int(kv[0])))[0][0]
            self.owner[t["type_id"]] = LA_AGENCY_IDS[best]

        # A council's region: the one its requests carry; else councils.csv.
        self.council_region = {}
        for c in self.councils:
            if c["council_id"] == "0":
                continue
            counts = council_regions.get(c["council_id"])
            if counts:
                region = sorted(counts.items(), key=lambda kv: (-kv[1], int(kv[0])))[0][0]
            else:
                region = c["region_id"]
            self.council_region[c["council_id"]] = region
        self.shifted = sorted(
            (c for c in self.councils
             if c["council_id"] in council_regions
             and self.council_region[c["council_id"]] != c["region_id"]),
            key=lambda c: int(c["council_id"]))

        # Regions where LASAN's share of the split types is above its
        # city-wide share.
        city_share = sum(split_lasan.values()) / max(1, sum(split_total.values()))
        self.city_lasan_share = city_share
        self.lasan_regions = sorted(
            int(r) for r in split_total if split_lasan[r] / split_total[r] > city_share)

    def type_name(self, type_id):
        for t in self.types:
            if t["type_id"] == type_id:
                return t["type_name"]
        return ""

    def category(self, type_row):
        return slug(type_row["type_name"])

    def agency(self, code):
        for a in self.agencies:
            if LA_AGENCY_IDS[a["agency_id"]] == code:
                return a
        raise KeyError(code)

    def region_name(self, region_id):
        for r in self.regions:
            if r["region_id"] == str(region_id):
                return r["region_name"]
        return "region %s" % region_id

    def owner_in_region(self, type_row, region_id):
        code = self.owner[type_row["type_id"]]
        if type_row["type_name"] in LA_SPLIT:
            code = "lasan" if int(region_id) in self.lasan_regions else "bos"
        return code

    def branch_agencies(self):
        codes = set(self.owner.values())
        if any(t["type_name"] in LA_SPLIT for t in self.types):
            codes.update(("bos", "lasan"))
        return sorted(codes)


def community_counts(total_communities, street_count):
    rng = random.Random(SEED)
    counts = [rng.randint(30, 54) for _ in range(street_count)]
    i = 0
    while sum(counts) != total_communities:
        step = 1 if sum(counts) < total_communities else -1
        counts[i % street_count] += step
        i += 1
    return counts


def build_units(la):
    units = []  # (id, name, parent, level, district, active)

    def add(uid, name, parent, level, district=""):
        assert len(uid.encode()) <= 64 and len(name.encode()) <= 64, (uid, name)
        units.append((uid, name, parent, level, district, "1"))

    add("city", "Changchun city government", "", "city")
    for code, name in CITY_BUREAUS:
        add("bureau-" + code, name, "city", "bureau")
    for uid, name, _ in ENTERPRISES:
        add(uid, name, "city", "enterprise")
    for uid, name, branches in ENTERPRISES:
        if not branches:
            continue
        short = uid.split("-")[0]
        for district, display, _, _ in DISTRICTS:
            add("%s-%s" % (short, district), "%s, %s service branch" % (name, display),
                uid, "enterprise", district)
    for a in sorted(la.agencies, key=lambda a: int(a["agency_id"])):
        code = LA_AGENCY_IDS[a["agency_id"]]
        add("la-" + code, "LA %s (%s)" % (a["agency_name"], a["data_code"]), "city", "bureau")
    for code in la.branch_agencies():
        a = la.agency(code)
        for district, _, _, regions in DISTRICTS:
            for region in regions:
                add("la-%s-r%02d" % (code, region),
                    "LA %s %s, %s" % (a["data_code"], "yard", la.region_name(region)),
                    "la-" + code, "bureau", district)

    fixed = len(units) + sum(1 + len(DISTRICT_BUREAUS) + streets
                             for _, _, streets, _ in DISTRICTS)
    street_total = sum(streets for _, _, streets, _ in DISTRICTS)
    counts = community_counts(TOTAL_UNITS - fixed, street_total)
    street_index = 0
    for district, display, streets, _ in DISTRICTS:
        office = "office-" + district
        add(office, "%s district government" % display, "city", "district", district)
        for code, name in DISTRICT_BUREAUS:
            add("%s-%s" % (district, code), "%s %s" % (display, name), office, "bureau",
                district)
        for s in range(1, streets + 1):
            street = "%s-s%02d" % (district, s)
            add(street, "%s street office %02d" % (display, s), office, "street", district)
            for c in range(1, counts[street_index] + 1):
                add("%s-c%02d" % (street, c), "%s community %02d-%02d" % (display, s, c), street,
                    "community", district)
            street_index += 1
    assert len(units) == TOTAL_UNITS, len(units)
    assert len({u[0] for u in units}) == len(units)
    return units


def csv_line(fields):
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(fields)
    return out.getvalue()


def header_comment(what):
    return ("# %s\n# Generated by tools/citygen.py (its docstring has the recipe); change the\n"
            "# recipe and run it again rather than editing this file.\n" % what)


def write_units(out, units):
    with open(os.path.join(out, "units.csv"), "w", encoding="utf-8", newline="") as f:
        f.write(header_comment("Unit registry of the default city: %d units." % len(units)))
        f.write("id,name,parent_id,level,district,active\n")
        for u in units:
            f.write(csv_line(u))


def write_rules(out, district, units, la):
    streets = [u[0] for u in units if u[3] == "street" and u[4] == district]
    communities = [u[0] for u in units if u[3] == "community" and u[4] == district]
    unit_ids = {u[0] for u in units}
    lines = [header_comment("Routing rules of district %s." % district)]
    lines.append("category,area,lead_unit,assisting_units,priority\n")

    def rule(category, area, lead, assist=None):
        lead = lead.format(d=district)
        assist = assist.format(d=district) if assist else ""
        if assist == lead:
            assist = ""
        assert lead in unit_ids and (not assist or assist in unit_ids), (lead, assist)
        lines.append(csv_line((category, area, lead, assist, 0)))

    lines.append("# Hotline categories (categories.csv has the call mix).\n")
    for code, name, _, _, _, how in CATEGORIES:
        if how is None:
            lines.append("# %s (%s): no rule, the owner is unclear: triage\n"
                         % (code or '""', name))
            continue
        if how[0] == "street":
            lines.append("# %s: the street office of a street area; default %s\n"
                         % (code, how[1].format(d=district)))
            rule(code, "", how[1])
            for street in streets:
                rule(code, street, street)
        elif how[0] == "community":
            assist = how[2]
            lines.append("# %s: the community of a community area%s; default %s\n"
                         % (code, ", assisted by " + assist.format(d=district) if assist else "",
                            how[1].format(d=district)))
            rule(code, "", how[1], assist)
            for community in communities:
                rule(code, community, community, assist)
        else:
            lines.append("# %s: %s%s\n" % (code, how[1].format(d=district),
                                           ", assisted by " + how[2].format(d=district)
                                           if how[2] else ""))
            rule(code, "", how[1], how[2])

    lines.append("# Los Angeles 311 request types (the replay; la311-map.csv). Areas are\n"
                 "# neighbourhood councils whose requests lie in this district's regions.\n")
    councils = sorted((cid for cid, region in la.council_region.items()
                       if region_district(region) == district), key=int)
    for t in sorted(la.types, key=lambda t: int(t["type_id"])):
        category = la.category(t)
        if t["type_name"] in LA_NO_OWNER:
            lines.append("# %s: no fixed owner: no rule, triage\n" % category)
            continue
        if t["type_id"] not in la.owner:
            lines.append("# %s: no requests in the sample: no rule\n" % category)
            continue
        head = "la-" + la.owner[t["type_id"]]
        if t["type_name"] in LA_SPLIT:
            lines.append("# %s: LASAN's yard in regions %s (above its city-wide share of %.1f%%),"
                         " BOS's elsewhere; default %s\n"
                         % (category, ",".join(map(str, la.lasan_regions)),
                            100 * la.city_lasan_share, head))
        else:
            lines.append("# %s: the %s yard of the council's region; default %s\n"
                         % (category, la.owner[t["type_id"]].upper(), head))
        local = LA_LOCAL_OWNER.get(t["type_name"], LA_LOCAL_DEFAULT)
        lines.append("#   (%s's own areas and calls with no area: %s, not %s)\n"
                     % (category, local.format(d=district), head))
        rule(category, "", local)
        for cid in councils:
            region = la.council_region[cid]
            code = la.owner_in_region(t, region)
            rule(category, "la-nc-%03d" % int(cid), "la-%s-r%02d" % (code, int(region)))

    path = os.path.join(out, district)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "rules.csv"), "w", encoding="utf-8", newline="") as f:
        f.writelines(lines)
    link = os.path.join(path, "units.csv")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.join("..", "units.csv"), link)


def write_categories(out):
    with open(os.path.join(out, "categories.csv"), "w", encoding="utf-8", newline="") as f:
        f.write(header_comment("Call mix of dispatch-callgen: weight = relative share of "
                               "calls;\n# area_level = the area a call gives; kinds = "
                               "kind:weight pairs."))
        f.write("category,name,weight,area_level,kinds\n")
        for code, name, weight, level, kinds, _ in CATEGORIES:
            f.write(csv_line((code, name, "%g" % weight, level, kinds)))


def write_lists(out, units, la):
    """The city's lists: the categories and areas intake accepts."""
    rows = []
    for code, name, _, _, _, _ in CATEGORIES:
        if code:
            rows.append(("category", code, "", name))
    for t in sorted(la.types, key=lambda t: int(t["type_id"])):
        rows.append(("category", la.category(t), "", "Los Angeles 311: " + t["type_name"]))
    for uid, name, _, level, district, _ in units:
        if level in ("street", "community"):
            rows.append(("area", uid, district, name))
    for c in sorted(la.councils, key=lambda c: int(c["council_id"])):
        if c["council_id"] == "0":
            continue
        region = la.council_region[c["council_id"]]
        rows.append(("area", "la-nc-%03d" % int(c["council_id"]), region_district(region),
                     "Los Angeles neighbourhood council: " + c["council_name"]))
    with open(os.path.join(out, "lists.csv"), "w", encoding="utf-8", newline="") as f:
        f.write(header_comment("The city's lists: the categories and areas dispatch-intake "
                               "accepts\n# (SubmitTicket.category, .area; CityListsQuery "
                               "serves them). An area belongs to\n# one district."))
        f.write("list,id,district,name\n")
        for row in rows:
            f.write(csv_line(row))


def write_la_map(out, la):
    rows = []
    for t in sorted(la.types, key=lambda t: int(t["type_id"])):
        rows.append(("type", t["type_id"], la.category(t), LA_KINDS[t["type_name"]], "", "",
                     t["type_name"]))
    for s in sorted(la.sources, key=lambda s: int(s["source_id"])):
        rows.append(("source", s["source_id"], LA_SOURCES[s["source_name"]], "", "", "",
                     s["source_name"]))
    for c in sorted(la.councils, key=lambda c: int(c["council_id"])):
        if c["council_id"] == "0":
            continue
        region = la.council_region[c["council_id"]]
        rows.append(("council", c["council_id"], "la-nc-%03d" % int(c["council_id"]),
                     region_district(region), "", "", c["council_name"]))
    for r in sorted(la.regions, key=lambda r: int(r["region_id"])):
        rows.append(("region", r["region_id"], region_district(r["region_id"]), "",
                     "%.6f" % float(r["latitude"]), "%.6f" % float(r["longitude"]),
                     r["region_name"]))
    with open(os.path.join(out, "la311-map.csv"), "w", encoding="utf-8", newline="") as f:
        f.write(header_comment("How dispatch-callgen --replay maps Los Angeles 311 rows."))
        if la.shifted:
            f.write("# Councils whose requests carry another region than councils.csv (the\n"
                    "# requests' coordinates agree with the requests): %s\n"
                    % ", ".join(c["council_id"] for c in la.shifted))
        f.write("table,id,value,ticket_kind,latitude,longitude,note\n")
        for row in rows:
            f.write(csv_line(row))


def generate(out, la_path):
    la = LA(la_path)
    units = build_units(la)
    os.makedirs(out, exist_ok=True)
    write_units(out, units)
    for district, _, _, _ in DISTRICTS:
        write_rules(out, district, units, la)
    write_categories(out)
    write_la_map(out, la)
    write_lists(out, units, la)
    return units


def same_tree(a, b):
    for root, _, files in os.walk(b):
        for name in files:
            theirs = os.path.join(root, name)
            ours = os.path.join(a, os.path.relpath(theirs, b))
            if not os.path.exists(ours) or not filecmp.cmp(ours, theirs, shallow=False):
                print("citygen: %s is stale" % ours, file=sys.stderr)
                return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "deploy", "data"))
    parser.add_argument("--la", default=os.path.join(os.path.dirname(ROOT), "shared", "data",
                                                     "la311"))
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if not os.path.exists(os.path.join(args.la, "service_requests.csv")):
        print("citygen: no Los Angeles sample in %s (--la DIR)" % args.la, file=sys.stderr)
        sys.exit(77 if args.check else 1)  # 77: a test without its input is skipped
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            generate(tmp, args.la)
            sys.exit(0 if same_tree(args.out, tmp) else 1)
    units = generate(args.out, args.la)
    print("citygen: %d units, rules for %s in %s"
          % (len(units), ", ".join(d[0] for d in DISTRICTS), args.out))


if __name__ == "__main__":
    main()
