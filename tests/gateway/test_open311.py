#!/usr/bin/env python3
"""Open311 GeoReport v2 conformance of dispatch-gateway (Must-show 1).

A real city (intake, routers, audit under CURVE) behind the gateway, driven
with urllib through every call: GET /services.json, GET /services/{code}.json,
POST /requests.json (form and JSON), GET /requests/{id}.json, GET
/requests.json (by ids, by service_code, dates and status); and bad input:
unknown service_code, missing location, bad and missing api_key, oversized
body, invalid JSON, a malformed phone, hostile paths and shapes, 1,000 posts
with one idempotency key, intake stopped and started again. Every refusal is the specification's error array with the
HTTP status as its code, and the gateway keeps serving throughout.
"""
import concurrent.futures
import sys
import time

from gatewaycity import City, check, get, http, post_form, post_json, wait_for

NAME, PHONE = "Maria Lopez", "13812341234"


def is_error(response, status):
    check(response.status == status, f"want {status}, got {response!r}")
    body = response.json()
    check(isinstance(body, list) and len(body) == 1, f"error array: {response!r}")
    check(body[0].get("code") == status and body[0].get("description"),
          f"error entry: {response!r}")
    check(response.headers.get("Content-Type", "").startswith("application/json"),
          "errors are JSON")
    return body[0]["description"]


def no_personal(response):
    text = response.body.decode()
    for secret in (NAME, "Lopez", PHONE, "1234 Elm"):
        check(secret not in text, f"{secret!r} left through GET: {text[:300]}")


def main():
    with City() as city:
        base = city.url
        key = city.apikeys["web-app"]

        # --- services
        r = get(base + "/services.json")
        check(r.status == 200, repr(r))
        services = r.json()
        check(len(services) > 10, "a catalogue")
        for s in services:
            for field in ("service_code", "service_name", "description", "metadata", "type",
                          "keywords", "group"):
                check(field in s, f"service has {field}: {s}")
            check(s["type"] == "realtime", "type realtime")
        codes = {s["service_code"] for s in services}
        check({"noise", "sanitation", "graffiti"} <= codes, f"codes {sorted(codes)[:10]}")

        r = get(base + "/services/noise.json")
        check(r.status == 200, repr(r))
        definition = r.json()
        check(definition["service_code"] == "noise", "definition's code")
        variables = {a["code"]: a for a in definition["attributes"]}
        check({"district", "area", "urgency", "channel"} <= set(variables), "attributes")
        for a in definition["attributes"]:
            for field in ("variable", "code", "datatype", "required", "datatype_description",
                          "order", "description"):
                check(field in a, f"attribute has {field}")
        check({v["key"] for v in variables["district"]["values"]} ==
              {"chaoyang", "nanguan", "kuancheng"}, "district values")
        is_error(get(base + "/services/no-such-service.json"), 404)
        is_error(get(base + "/services.xml"), 501)
        is_error(get(base + "/services/noise.xml"), 501)
        is_error(get(base + "/services.json", jurisdiction_id="elsewhere"), 404)
        check(get(base + "/services.json", jurisdiction_id="changchun").status in (200, 404),
              "jurisdiction")

        # --- a request, in a form
        fields = {
            "api_key": key, "service_code": "noise", "lat": "34.0522", "long": "-118.2437",
            "address_string": "1234 Elm Street", "first_name": "Maria", "last_name": "Lopez",
            "phone": PHONE, "email": "maria@example.org", "description": "Night work again",
            "media_url": "https://example.org/photo.jpg", "attribute[area]": "nanguan-s03",
            "idempotency_key": "form-1",
        }
        r = post_form(base + "/requests.json", fields)
        check(r.status == 201, repr(r))
        body = r.json()
        check(isinstance(body, list) and body[0]["service_request_id"], repr(r))
        first = body[0]["service_request_id"]
        check("account_id" in body[0] and "service_notice" in body[0], repr(r))
        # A retry with the key gets the same ticket, not a second one.
        r = post_form(base + "/requests.json", fields)
        check(r.status == 200 and r.json()[0]["service_request_id"] == first, repr(r))

        r = get(base + f"/requests/{first}.json")
        check(r.status == 200, repr(r))
        ticket = r.json()[0]
        check(ticket["service_request_id"] == first, "id")
        check(ticket["status"] == "open", f"status {ticket}")
        check(ticket["service_code"] == "noise", "service_code")
        check(abs(ticket["lat"] - 34.0522) < 1e-5 and abs(ticket["long"] + 118.2437) < 1e-5,
              "coordinates")
        check(ticket["requested_datetime"].endswith("Z"), "W3C time")
        check(ticket["district"] == "nanguan", f"nearest district {ticket['district']}")
        no_personal(r)

        # --- a request in JSON, district given
        r = post_json(base + "/requests.json", {
            "api_key": key, "service_code": "sanitation", "address_string": "Renmin St 5",
            "attribute": {"district": "chaoyang", "urgency": "urgent"},
            "description": "Rubbish", "first_name": "Li", "phone": "+8613900001111"})
        check(r.status == 201, repr(r))
        second = r.json()[0]["service_request_id"]
        r = get(base + f"/requests/{second}.json")
        check(r.status == 200 and r.json()[0]["district"] == "chaoyang", repr(r))
        no_personal(r)
        check("13900001111" not in r.body.decode(), "phone masked")

        # --- bad input
        is_error(post_form(base + "/requests.json", {**fields, "service_code": "nope",
                                                     "idempotency_key": "bad-1"}), 400)
        d = is_error(post_form(base + "/requests.json", {
            "api_key": key, "service_code": "noise", "description": "where?"}), 400)
        check("location" in d, d)
        is_error(post_form(base + "/requests.json", {**fields, "api_key": "k-not-a-key-000000000"}),
                 403)
        no_key = dict(fields)
        del no_key["api_key"]
        is_error(post_form(base + "/requests.json", no_key), 403)
        is_error(http("POST", base + "/requests.json", b"x=" + b"a" * (200 * 1024),
                      {"Content-Type": "application/x-www-form-urlencoded"}), 413)
        is_error(http("POST", base + "/requests.json", b'{"api_key": "' + key.encode() + b'",',
                      {"Content-Type": "application/json"}), 400)
        is_error(http("POST", base + "/requests.json", b'[1, 2]',
                      {"Content-Type": "application/json"}), 400)
        is_error(http("POST", base + "/requests.json", b'{"api_key": {"x": 1}}',
                      {"Content-Type": "application/json"}), 400)
        is_error(post_form(base + "/requests.json", {**fields, "phone": "call me maybe",
                                                     "idempotency_key": "bad-phone"}), 400)
        is_error(post_form(base + "/requests.json", {**fields, "lat": "91", "long": "0",
                                                     "idempotency_key": "bad-lat"}), 400)
        is_error(post_form(base + "/requests.json", {**fields, "lat": "nan", "long": "1",
                                                     "idempotency_key": "bad-nan"}), 400)
        is_error(post_form(base + "/requests.json", {**fields, "attribute[district]": "atlantis",
                                                     "idempotency_key": "bad-district"}), 400)
        is_error(post_form(base + "/requests.json", {**fields, "attribute[channel]": "pigeon",
                                                     "idempotency_key": "bad-channel"}), 400)
        is_error(post_form(base + "/requests.json", {**fields, "idempotency_key": "x" * 80}), 400)
        is_error(post_form(base + "/requests.json", {**fields, "description": "d" * 5000,
                                                     "idempotency_key": "too-long"}), 400)
        is_error(http("POST", base + "/requests.json",
                      b"api_key=" + key.encode() + b"&service_code=noise&lat=1&long=1"
                      b"&attribute%5Bdistrict%5D=chaoyang&description=%FF%FE",
                      {"Content-Type": "application/x-www-form-urlencoded"}), 400)
        is_error(post_form(base + "/requests.json", {**fields, "jurisdiction_id": "elsewhere"}),
                 400)
        is_error(post_form(base + "/requests.json",
                           {f"p{i}": "v" for i in range(100)}), 400)
        # Hostile shapes: deep nesting, a NUL in JSON, a NUL in a form, a huge URL.
        is_error(http("POST", base + "/requests.json", b"[" * 30000 + b"]" * 30000,
                      {"Content-Type": "application/json"}), 400)
        is_error(http("POST", base + "/requests.json",
                      b'{"api_key": "' + key.encode() + b'", "description": "a\\u0000b"}',
                      {"Content-Type": "application/json"}), 400)
        is_error(post_form(base + "/requests.json", {**fields, "description": "a\x00b",
                                                     "idempotency_key": "nul-in-form"}), 400)
        r = get(base + "/requests.json?service_code=" + "x" * 100000)
        check(r.status in (400, 414, 431) or r.status == 0, repr(r))
        check(get(base + "/services.json").status == 200, "serving after a huge URL")
        is_error(get(base + "/requests/NO-SUCH-1.json"), 404)
        is_error(get(base + "/requests/..%2f..%2fetc%2fpasswd.json"), 404)
        is_error(get(base + "/requests/" + "A" * 100 + ".json"), 404)
        is_error(get(base + f"/requests/{first}.xml"), 501)
        is_error(get(base + "/requests.xml"), 501)
        is_error(get(base + "/nowhere"), 404)
        is_error(http("PUT", base + "/requests.json", b"x"), 405)
        is_error(http("DELETE", base + f"/requests/{first}.json"), 405)
        is_error(get(base + "/requests.json", start_date="yesterday"), 400)
        is_error(get(base + "/requests.json", status="pending"), 400)
        is_error(get(base + "/requests.json", service_code="nope"), 400)

        # --- 1,000 posts with one idempotency key: one ticket
        one = {**fields, "idempotency_key": "same-key-1000", "description": "Once only"}

        def post_once(_):
            r = post_form(base + "/requests.json", one)
            return r.status, r.json()[0].get("service_request_id")

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(post_once, range(1000)))
        print(f"1,000 posts with one key: {time.monotonic() - started:.1f} s")
        ids = {i for _, i in results}
        statuses = [s for s, _ in results]
        check(len(ids) == 1, f"1,000 posts, one key: ids {list(ids)[:5]}")
        check(statuses.count(201) == 1 and statuses.count(200) == 999,
              f"one created, the rest replays: {statuses.count(201)} / {statuses.count(200)}")
        same = ids.pop()
        # Another client's same key is another request.
        other = post_form(base + "/requests.json", {**one, "api_key": city.apikeys["la311"]})
        check(other.status == 201 and other.json()[0]["service_request_id"] != same, repr(other))

        # --- lists
        r = get(base + "/requests.json", service_request_id=f"{first},{second},NO-SUCH-1")
        check(r.status == 200, repr(r))
        check([t["service_request_id"] for t in r.json()] == [first, second], repr(r))
        no_personal(r)

        # The 1,000 posts repeat the first one's caller and address: intake
        # merged that ticket into the first (closed, a duplicate).
        r = get(base + f"/requests/{same}.json")
        check(r.status == 200 and r.json()[0]["status"] == "closed" and
              first in r.json()[0]["status_notes"], repr(r))

        def listed(status, want):
            r = get(base + "/requests.json", service_code="noise", status=status)
            ids = {t["service_request_id"] for t in r.json()} if r.status == 200 else set()
            return want <= ids and r
        r = wait_for(lambda: listed("open", {first}), 30, "the board to list the open ticket")
        check(all(t["service_code"] == "noise" and t["status"] == "open" for t in r.json()),
              "filtered")
        listed_ids = {t["service_request_id"] for t in r.json()}
        check(second not in listed_ids and same not in listed_ids, "others left out")
        r = wait_for(lambda: listed("closed", {same}), 30, "the board to list the merged one")
        check(first not in {t["service_request_id"] for t in r.json()}, "open one left out")
        r = get(base + "/requests.json", start_date="2000-01-01T00:00:00Z",
                end_date="2000-01-02T00:00:00+08:00")
        check(r.status == 200 and r.json() == [], repr(r))
        # Four tickets so far (first, second, same, other's): the board may
        # not have read the last one yet.
        r = wait_for(lambda: (lambda r: r.status == 200 and len(r.json()) >= 4 and r)(
            get(base + "/requests.json", start_date="2000-01-01", end_date="2100-01-01")),
            30, "four tickets listed")
        no_personal(r)

        # --- intake away: 503 with the error array, the rest still served;
        # back: the same key files the request once.
        city.command("worker-stop intake-1")
        away = {**fields, "idempotency_key": "while-away", "address_string": "9 Away Road",
                "phone": "13700000000"}
        d = is_error(post_form(base + "/requests.json", away), 503)
        check("retry" in d, d)
        check(get(base + "/services.json").status == 200, "served while intake is away")
        metrics = get(base + "/metrics").body.decode()
        check('dispatch_worker_up{worker="intake-1",kind="intake",district=""} 0' in metrics,
              "intake shown down")
        city.command("worker-start intake-1")
        r = wait_for(lambda: (lambda r: r.status in (200, 201) and r)(
            post_form(base + "/requests.json", away)), 30, "intake back")
        back = r.json()[0]["service_request_id"]
        r = post_form(base + "/requests.json", away)
        check(r.status == 200 and r.json()[0]["service_request_id"] == back, repr(r))

        # --- still serving
        check(get(base + "/services.json").status == 200, "serving after all of it")
        check(get(base + f"/requests/{first}.json").status == 200, "serving after all of it")
    print("open311: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
