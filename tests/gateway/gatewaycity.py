"""A city behind a dispatch-gateway for the gateway's tests.

Starts gateway-city (gateway_city.c: real workers under CURVE, the gateway
with its own key), reads what it prints until "ready", and offers small
HTTP helpers over urllib. Everything binds 127.0.0.1.
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


class City:
    def __init__(self, *args):
        program = os.environ.get("GATEWAY_CITY", "build/tests/gateway/gateway-city")
        self.proc = subprocess.Popen([program, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.info = {}
        self.apikeys = {}
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line == "ready":
                break
            key, _, value = line.partition(" ")
            if key == "apikey":
                client, _, apikey = value.partition(" ")
                self.apikeys[client] = apikey
            else:
                self.info[key] = value
        else:
            raise RuntimeError("gateway-city exited before it was ready")
        self.url = self.info["url"]

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError(f"{line}: {answer}")

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        rc = self.proc.wait(timeout=60)
        if rc != 0:
            raise RuntimeError(f"gateway-city exited with {rc}")

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        # gateway-city stops its workers on "quit": a kill would leave them.
        try:
            self.close()
        except Exception:
            if kind is None:
                raise


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def http(method, url, body=None, headers=None, timeout=30):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return Response(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, dict(e.headers), e.read())
    except (urllib.error.URLError, ConnectionError) as e:
        return Response(0, {}, str(e).encode())  # nothing listening (yet)


def get(url, **params):
    if params:
        url += "?" + urllib.parse.urlencode(params)
    return http("GET", url)


def post_form(url, fields, headers=None):
    body = urllib.parse.urlencode(fields).encode()
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    h.update(headers or {})
    return http("POST", url, body, h)


def post_json(url, fields):
    return http("POST", url, json.dumps(fields).encode(), {"Content-Type": "application/json"})


def wait_for(condition, timeout, what):
    """Polls condition() until it is true or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def check(condition, message):
    if not condition:
        print("FAIL:", message, file=sys.stderr)
        raise AssertionError(message)
