#!/usr/bin/python3
"""Load test of `engram serve` on loopback: concurrent clients sending 1000-store batches
(POST /batch/operations), then batch similarity requests (POST /batch/similarity, 100 queries
each). Bounded in count and in time. Prints a markdown section (requests/s, episodes/s, p50,
p99, and the server's peak RSS).

Usage: server_load_bench.py BUILD/engram [--clients 4] [--requests 25] [--dim 128] [--seconds 60]
"""
import argparse
import http.client
import json
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("binary")
ap.add_argument("--clients", type=int, default=4)
ap.add_argument("--requests", type=int, default=25, help="store requests per client")
ap.add_argument("--batch", type=int, default=1000)
ap.add_argument("--dim", type=int, default=128)
ap.add_argument("--queries", type=int, default=100, help="queries per similarity request")
ap.add_argument("--seconds", type=float, default=60, help="time cap per phase")
args = ap.parse_args()

d = tempfile.mkdtemp(prefix="engram-server-bench-")
db = os.path.join(d, "bench.db")
port_file = db + ".port"
log = open(db + ".log", "w")
proc = subprocess.Popen([args.binary, "serve", "--db", db, "--listen", "127.0.0.1:0", "--port-file", port_file],
                        stdout=log, stderr=subprocess.STDOUT)
for _ in range(400):
    if os.path.exists(port_file) and open(port_file).read().strip():
        break
    time.sleep(0.05)
port = int(open(port_file).read())
peak_rss = [0]


def rss_kb():
    with open(f"/proc/{proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def post(conn, path, body):
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"{path}: {r.status} {data[:200]!r}")
    return data


def run_phase(bodies, path, check):
    """bodies[c] = encoded request bodies of client c; returns (latencies, wall seconds)."""
    lat, lock = [], threading.Lock()
    deadline = time.time() + args.seconds

    def client(c):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        for body in bodies[c]:
            if time.time() > deadline:
                break
            t0 = time.perf_counter()
            out = post(conn, path, body)
            dt = time.perf_counter() - t0
            check(out)
            with lock:
                lat.append(dt)
        conn.close()

    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            peak_rss[0] = max(peak_rss[0], rss_kb())
            time.sleep(0.1)

    s = threading.Thread(target=sampler)
    s.start()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
    t0 = time.perf_counter()
    [t.start() for t in threads]
    [t.join() for t in threads]
    wall = time.perf_counter() - t0
    stop.set()
    s.join()
    return sorted(lat), wall


def pct(lat, p):
    return lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))] * 1000


rng = random.Random(42)


def rvec():
    return [round(rng.uniform(-1, 1), 5) for _ in range(args.dim)]


try:
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request("POST", "/tables", body=json.dumps({"name": "mem", "options": {"dim": args.dim}}))
    c.getresponse().read()
    c.close()
    rss0 = rss_kb()
    store_bodies = [[json.dumps({"table": "mem", "operations": [
        {"store": {"id": f"c{cl}-r{r}-{i}", "embedding": rvec()}} for i in range(args.batch)]}).encode()
        for r in range(args.requests)] for cl in range(args.clients)]
    size_mb = len(store_bodies[0][0]) / 2**20

    def check_store(out):
        rep = json.loads(out)["report"]["store"]
        assert rep["failed"] == 0, rep

    slat, swall = run_phase(store_bodies, "/batch/operations", check_store)

    def table():
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("GET", "/tables")
        t = json.loads(c.getresponse().read())["tables"][0]
        c.close()
        return t

    # Queries measured on an indexed store: wait (bounded) for the background graph builder.
    t_idx = time.time()
    while time.time() - t_idx < args.seconds and table()["indexed"] < table()["hot"]:
        time.sleep(0.2)
    idx_wait = time.time() - t_idx
    q_bodies = [[json.dumps({"table": "mem", "queries": [rvec() for _ in range(args.queries)], "k": 10}).encode()
                 for _ in range(args.requests)] for _ in range(args.clients)]
    qlat, qwall = run_phase(q_bodies, "/batch/similarity", lambda out: None)
    t = table()
    episodes, indexed = t["episodes"], t["indexed"]
    print("## Server: `engram serve` on loopback")
    print()
    print(f"{args.clients} concurrent clients (Python http.client, keep-alive), {args.dim}-d, default table "
          f"options; store requests are {args.batch}-store batches ({size_mb:.1f} MB of JSON each, one "
          f"transaction per request, durable at COMMIT); similarity requests are {args.queries} queries, k=10, "
          f"through `engram_similar_batch`. Bounded: {args.requests} requests per client per phase, "
          f"{args.seconds:.0f} s per phase at most. The store ends with {episodes} episodes; the "
          f"similarity phase started after {idx_wait:.1f} s waiting for the graph index ({indexed} indexed).")
    print()
    print("| requests | count | requests/s | rows/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| POST /batch/operations ({args.batch} stores) | {len(slat)} | {len(slat) / swall:.1f} | "
          f"{len(slat) * args.batch / swall:,.0f} | {pct(slat, 50):.0f} | {pct(slat, 99):.0f} |")
    print(f"| POST /batch/similarity ({args.queries} queries) | {len(qlat)} | {len(qlat) / qwall:.1f} | "
          f"{len(qlat) * args.queries / qwall:,.0f} | {pct(qlat, 50):.0f} | {pct(qlat, 99):.0f} |")
    print()
    print(f"Server RSS: {rss0 / 1024:.0f} MB at start, {peak_rss[0] / 1024:.0f} MB at peak. "
          f"Machine: {os.cpu_count()} cores shared with the client processes.")
finally:
    proc.terminate()
    proc.wait(30)
    log.close()
    shutil.rmtree(d, ignore_errors=True)
