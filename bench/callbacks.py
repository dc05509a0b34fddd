"""Callback delivery throughput: messages injected through the operator API at a
fixed rate, delivered by the real `gewe serve` to a receiver on loopback.

    python3 bench/callbacks.py GEWE_BINARY [--rate 500] [--seconds 60] [--devices 16]
                               [--data-dir DIR [--prepare]]

Prints one JSON document: injected, delivered, lost, duplicated, the injection
rate reached, the delivery rate (overall and per --window seconds), and
commit → receiver latency percentiles (from the moment the inject call
returned, i.e. after the commit, to the moment the receiver read the
callback). Injection stops after --seconds even when --rate is more than the
server takes (then the rates say what it took).

--data-dir runs the server on DIR and keeps it (by default a temporary one);
with --prepare the script only seeds the token and its devices there, sets the
callback URL and stops the server, so that rows can be added to the database
before a measuring run on the same DIR (how bench/run.sh fills the outbox).

Standard library only; loopback only; bounded in time (the run, then at most
60 s to drain).
"""

import argparse
import http.client
import json
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "bench-operator-key-0123456789abcdef"
TOKEN = "0123456789abcdef0123456789abcdef"
NEW_MSG_ID = re.compile(rb'"NewMsgId":(\d+)')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """One keep-alive connection to the server."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, path, body, headers):
        self.conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **headers})
        response = self.conn.getresponse()
        return json.loads(response.read())


def receive(conn):
    """The callback receiver (a process of its own): sends its port, then
    answers "count" (distinct messages received) and "dump" (arrival times by
    NewMsgId, and how many arrived twice)."""
    received = {}
    duplicates = [0]
    lock = threading.Lock()

    class Receiver(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # The status line and headers, then the body, are two writes: with
        # Nagle's algorithm the body of every answer on a kept-alive connection
        # waited for the sender's delayed ACK (40 ms on Linux).
        disable_nagle_algorithm = True

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            now = time.monotonic()
            match = NEW_MSG_ID.search(body)
            if match:
                with lock:
                    if match.group(1) in received:
                        duplicates[0] += 1
                    else:
                        received[match.group(1)] = now
            self.send_response(200)
            self.send_header("Content-Length", "7")
            self.end_headers()
            self.wfile.write(b"SUCCESS")

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn.send(server.server_address[1])
    while True:
        command = conn.recv()
        with lock:
            if command == "count":
                conn.send(len(received))
            else:
                conn.send((dict(received), duplicates[0]))


def inject(plan, first, threads, results):
    """One injector process: `threads` keep-alive clients, each taking every
    plan["workers"]-th message from its own offset, on the shared schedule."""
    injected = {}
    errors = [0]
    lock = threading.Lock()
    operator = {"X-GEWE-OPERATOR-KEY": KEY}
    app_ids = plan["app_ids"]

    def client_loop(index):
        client = Client(plan["port"])
        for n in range(index, plan["total"], plan["workers"]):
            due = plan["started"] + n / plan["rate"]
            if time.monotonic() >= plan["stop_at"]:
                break
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            body = {"appId": app_ids[n % len(app_ids)], "fromWxid": "wxid_benchsender1", "content": f"m{n}"}
            try:
                answer = client.post("/operator/injectMessage", body, operator)
            except OSError:
                errors[0] += 1
                client = Client(plan["port"])
                continue
            done = time.monotonic()
            if answer.get("ret") == 200:
                with lock:
                    injected[str(answer["data"]["newMsgId"]).encode()] = done
            else:
                with lock:
                    errors[0] += 1

    workers = [threading.Thread(target=client_loop, args=(first + i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    results.put((injected, errors[0]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("gewe")
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--devices", type=int, default=16)
    parser.add_argument("--injectors", type=int, default=4, help="keep-alive clients per injector process")
    parser.add_argument("--processes", type=int, default=2, help="injector processes")
    parser.add_argument("--window", type=float, default=5)
    parser.add_argument("--data-dir")
    parser.add_argument("--prepare", action="store_true")
    args = parser.parse_args()
    if args.prepare and not args.data_dir:
        parser.error("--prepare needs --data-dir")

    # The receiver and the injectors run in processes of their own: in one
    # Python process they shared one interpreter lock and the harness, not the
    # server, set the rate.
    receiver_conn, receiver_side = multiprocessing.Pipe()
    receiver = multiprocessing.Process(target=receive, args=(receiver_side,), daemon=True)
    receiver.start()
    receiver_port = receiver_conn.recv()

    data = args.data_dir or tempfile.mkdtemp()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEWE_")}
    env.update(GEWE_DATA_DIR=data, GEWE_LISTEN=f"127.0.0.1:{port}", GEWE_OPERATOR_KEY=KEY)
    server = subprocess.Popen([args.gewe, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        operator = {"X-GEWE-OPERATOR-KEY": KEY}
        admin = Client(port)
        app_ids = [f"wx_bench_device_{i:08d}" for i in range(args.devices)]
        seeded = admin.post(
            "/operator/seed",
            {"tokens": [{"token": TOKEN, "accounts": [
                {"appId": a, "wxid": f"wxid_benchbot{i:05d}"} for i, a in enumerate(app_ids)]}]},
            operator,
        )
        assert seeded["ret"] == 200, seeded
        answer = admin.post(
            "/v2/api/tools/setCallback",
            {"token": TOKEN, "callbackUrl": f"http://127.0.0.1:{receiver_port}/cb"},
            {"X-GEWE-TOKEN": TOKEN},
        )
        assert answer["ret"] == 200, answer
        if args.prepare:
            print(json.dumps({"prepared": data, "devices": app_ids}))
            return 0

        total = int(args.rate * args.seconds)
        # Every injector process starts on the same clock (CLOCK_MONOTONIC is
        # system-wide), a moment from now.
        started = time.monotonic() + 0.5
        stop_at = started + args.seconds
        plan = dict(port=port, rate=args.rate, total=total, started=started, stop_at=stop_at,
                    app_ids=app_ids, workers=args.processes * args.injectors)
        results = multiprocessing.Queue()
        injectors = [
            multiprocessing.Process(target=inject, args=(plan, p * args.injectors, args.injectors, results))
            for p in range(args.processes)
        ]
        for process in injectors:
            process.start()
        injected, errors = {}, 0
        for _ in injectors:
            part, part_errors = results.get()
            injected.update(part)
            errors += part_errors
        for process in injectors:
            process.join()
        inject_seconds = time.monotonic() - started
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            receiver_conn.send("count")
            if receiver_conn.recv() >= len(injected):
                break
            time.sleep(0.1)
        drained = time.monotonic() - started
        receiver_conn.send("dump")
        received, duplicated = receiver_conn.recv()
        latencies = sorted(received[k] - t for k, t in injected.items() if k in received)
        last = max(received.values()) if received else started
        arrivals = [received[k] - started for k in injected if k in received]
        delivered = len(latencies)
        windows = [0] * max(1, int(inject_seconds // args.window))
        for at in arrivals:
            if int(at // args.window) < len(windows):
                windows[int(at // args.window)] += 1
        window_rates = [round(n / args.window, 1) for n in windows]

        def pct(p):
            return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1) if latencies else None

        print(json.dumps({
            "target_rate": args.rate, "seconds": args.seconds, "devices": args.devices,
            "injected": len(injected), "inject_errors": errors,
            "inject_rate": round(len(injected) / inject_seconds, 1),
            "delivered": delivered, "lost": len(injected) - delivered, "duplicated": duplicated,
            "delivery_rate": round(delivered / max(last - started, 1e-9), 1),
            "drain_seconds": round(drained - inject_seconds, 2),
            "window_s": args.window, "window_rates": window_rates,
            "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0)},
        }))
    finally:
        server.terminate()
        server.wait(timeout=30)
        receiver.terminate()
        if not args.data_dir:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
