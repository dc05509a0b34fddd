"""Latency of pages and queries that a person or a test harness waits on, timed
by a client on one keep-alive loopback connection to a running `gewe serve`,
one request at a time (so each figure is the server's time plus a loopback
round trip, with no queueing behind other requests).

    python3 bench/probe.py console PORT TOKEN [--pages 1,21] [--requests 200] [--seconds 10] [--repeats 5]
    python3 bench/probe.py journal PORT OPERATOR_KEY --busy-token T --quiet-token T
                                   --app-id A --route R [--anchor-port PORT2] [--limit 20] ...

console: signs in to /console with TOKEN (the sign-in form, its CSRF token and
cookie, like a browser) and GETs the accounts grid pages given.
journal: POSTs /operator/journal with each filter it has — none, a token, a
token whose calls are all old, a route, an appId, `since` the newest 2 s, and
a poll `afterId` the newest id (nothing new) — each answering at most --limit
entries. With --anchor-port PORT2, each query goes to both servers one right
after the other (same operator key and tokens), results under "ours" and
"anchor".

Each case is asked in turn (every other round in reverse order) until
--requests answers each or --seconds in all;
the answers of a case are cut into --repeats consecutive parts. Prints one JSON
document: per case p50/p99/max over all answers, the median of each part
(min/median/max of repeats), the count, and the entries (journal) or tiles
(console) the last answer had. Standard library only; loopback only.
"""

import argparse
import http.client
import json
import re
import statistics
import sys
import time
import urllib.parse

CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def cookie(response, name):
    for header, value in response.getheaders():
        if header.lower() == "set-cookie" and value.startswith(name + "="):
            return value.split(";", 1)[0].split("=", 1)[1]
    raise SystemExit(f"no {name} cookie in the answer")


def measure(cases, args):
    """cases: name -> (call, count) where call() does one request on the shared
    connection and answers the body, count(body) what it held."""
    samples = {name: [] for name in cases}
    last = {}
    deadline = time.monotonic() + args.seconds
    rounds = 0
    while time.monotonic() < deadline and min(map(len, samples.values())) < args.requests:
        # Every other round in reverse, so no case always follows the same one.
        order = list(cases.items())
        rounds += 1
        for name, (call, count) in order if rounds % 2 else reversed(order):
            if len(samples[name]) >= args.requests:
                continue
            t0 = time.perf_counter()
            body = call()
            samples[name].append((time.perf_counter() - t0) * 1e3)
            last[name] = count(body)
    result = {}
    for name, ms in samples.items():
        ordered = sorted(ms)
        part = max(1, len(ms) // args.repeats)
        parts = [statistics.median(ms[i:i + part]) for i in range(0, part * args.repeats, part) if ms[i:i + part]]
        result[name] = {
            "requests": len(ms),
            "p50_ms": round(statistics.median(ordered), 3),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
            "max_ms": round(ordered[-1], 3),
            "repeat_p50_ms": [round(p, 3) for p in parts],
            "answered": last[name],
        }
    return result


def console(args):
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
    conn.request("GET", "/console/login")
    response = conn.getresponse()
    page = response.read().decode()
    pre = cookie(response, "gewe_console_pre")
    csrf = CSRF.search(page).group(1)
    form = urllib.parse.urlencode({"token": args.secret, "csrf": csrf})
    conn.request("POST", "/console/login", form, {
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"gewe_console_pre={pre}"})
    response = conn.getresponse()
    response.read()
    if response.status != 303:
        raise SystemExit(f"console sign-in answered {response.status}")
    headers = {"Cookie": f"gewe_console={cookie(response, 'gewe_console')}"}

    def get(path):
        def call():
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise SystemExit(f"GET {path} answered {response.status}")
            return body
        return call

    tiles = lambda body: body.count(b'href="/console/a/')  # noqa: E731
    cases = {f"page {p}": (get("/console" if p == "1" else f"/console?page={p}"), tiles)
             for p in args.pages.split(",")}
    return measure(cases, args)


def journal(args):
    """The journal's queries on the server at `port`; with --anchor-port, on both
    servers in turn, one request each, answered under "ours" and "anchor"."""
    servers = {"ours": args.port}
    if args.anchor_port:
        servers["anchor"] = args.anchor_port
    headers = {"Content-Type": "application/json", "X-GEWE-OPERATOR-KEY": args.secret}
    cases = {}
    for side, port in servers.items():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def ask(body, conn=conn):
            conn.request("POST", "/operator/journal", json.dumps(body), headers)
            response = conn.getresponse()
            answer = json.loads(response.read())
            if answer.get("ret") != 200:
                raise SystemExit(f"journal {body} answered {answer}")
            return answer["data"]["entries"]

        newest = ask({"limit": 1})[-1]
        queries = {
            "newest": {},
            "token": {"token": args.busy_token},
            "quiet token": {"token": args.quiet_token},
            "route": {"route": args.route},
            "appId": {"appId": args.app_id},
            "since (newest 2 s)": {"since": newest["at"] - 2000},
            "afterId poll (nothing new)": {"afterId": newest["id"]},
        }
        for name, q in queries.items():
            cases[(name, side)] = ((lambda q=q, ask=ask: ask({**q, "limit": args.limit})), len)
    # Each query on one server, then at once on the other.
    cases = dict(sorted(cases.items(), key=lambda case: list(queries).index(case[0][0])))
    result = {}
    for (name, side), r in measure(cases, args).items():
        result.setdefault(side, {})[name] = r
    return result if len(servers) > 1 else result["ours"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("console", "journal"))
    parser.add_argument("port", type=int)
    parser.add_argument("secret", help="the token (console) or the operator key (journal)")
    parser.add_argument("--pages", default="1")
    parser.add_argument("--busy-token")
    parser.add_argument("--quiet-token")
    parser.add_argument("--app-id")
    parser.add_argument("--route")
    parser.add_argument("--anchor-port", type=int,
                        help="journal: a second server asked the same queries in turn")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    result = console(args) if args.what == "console" else journal(args)
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
