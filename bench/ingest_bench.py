#!/usr/bin/python3
"""Batch-store benchmark through SQL (the real sqlite3 module of Debian's python3).

Measures, in one run, as ratios:
  - N x 768-d episodes by INSERT ... SELECT from a staging table in one transaction, sync=full,
    durable at COMMIT (dedup off, and dedup on at a smaller N: exact in-batch dedup is O(N^2));
  - the same with ENGRAM_THREADS=1 (parallel efficiency);
  - single-row autocommit inserts (ratio batch / single);
  - per-1000-row batch latency p50 / p99.
Each figure is the median of --reps runs. Prints a markdown section.
Usage: ingest_bench.py BUILD/engram [--n 100000] [--reps 3]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("ext")
ap.add_argument("--n", type=int, default=100000)
ap.add_argument("--dedup-n", type=int, default=10000)
ap.add_argument("--single", type=int, default=2000)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--worker", default=None)
args = ap.parse_args()

WORKER = r'''
import sqlite3, sys, time, os, json
ext, mode, n, dedup = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
d = sys.argv[5]
db = sqlite3.connect(os.path.join(d, "b.db"), isolation_level=None)
db.enable_load_extension(True); db.load_extension(ext)
db.execute("PRAGMA journal_mode=WAL")
db.execute(f"CREATE TABLE staging AS WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {n}) "
           f"SELECT 'e' || i AS id, 'episode ' || i AS what, engram_random_vector(768, i) AS embedding FROM k")
db.execute(f"CREATE VIRTUAL TABLE mem USING engram(dim=768, dedup={dedup}, sync=full)")
res = {}
if mode == "batch":
    t = time.perf_counter()
    db.execute("BEGIN")
    db.execute("INSERT INTO mem(id, what, embedding) SELECT id, what, embedding FROM staging")
    db.execute("COMMIT")
    res["seconds"] = time.perf_counter() - t
    res["count"] = db.execute("SELECT count(*) FROM mem").fetchone()[0]
    # searchable right after COMMIT
    t = time.perf_counter()
    top = db.execute("SELECT id FROM engram_similar('mem', (SELECT embedding FROM staging WHERE id = 'e7'), 1)").fetchone()
    res["first_search_ms"] = (time.perf_counter() - t) * 1000
    res["found"] = top[0]
elif mode == "single":
    rows = db.execute("SELECT id, what, embedding FROM staging").fetchall()
    t = time.perf_counter()
    for r in rows:
        db.execute("INSERT INTO mem(id, what, embedding) VALUES (?, ?, ?)", r)
    res["seconds"] = time.perf_counter() - t
elif mode == "latency":
    lat = []
    for b in range(n // 1000):
        t = time.perf_counter()
        db.execute("BEGIN")
        db.execute(f"INSERT INTO mem(id, what, embedding) SELECT id, what, embedding FROM staging WHERE rowid > {b * 1000} AND rowid <= {(b + 1) * 1000}")
        db.execute("COMMIT")
        lat.append((time.perf_counter() - t) * 1000)
    res["lat"] = lat
print(json.dumps(res))
'''


def run(mode, n, dedup, threads=None):
    import json
    env = dict(os.environ)
    if threads:
        env["ENGRAM_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, "-c", WORKER, args.ext, mode, str(n), dedup, d],
                             env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def median(mode, n, dedup, threads=None, key="seconds"):
    return statistics.median(run(mode, n, dedup, threads)[key] for _ in range(args.reps))


rows = []
b_all = median("batch", args.n, "off")
b_one = median("batch", args.n, "off", threads=1)
d_all = median("batch", args.dedup_n, "0.95")
d_one = median("batch", args.dedup_n, "0.95", threads=1)
single = median("single", args.single, "off")
lat = sorted(run("latency", 100000 if args.n >= 100000 else args.n, "off")["lat"])
check = run("batch", 2000, "off")
cores = os.cpu_count()
rate = lambda n, s: n / s
print("## Batch store through SQL (768-d, sync=full, durable at COMMIT)\n")
print(f"Medians of {args.reps} runs; {cores} cores. Searchable right after COMMIT: "
      f"first search {check['first_search_ms']:.1f} ms, found {check['found']} ({check['count']} rows).\n")
print("| what | episodes/s | ratio |")
print("|---|---:|---:|")
print(f"| INSERT…SELECT {args.n} rows, dedup off, all threads | {rate(args.n, b_all):,.0f} | target ≥ 100,000 |")
print(f"| same, ENGRAM_THREADS=1 | {rate(args.n, b_one):,.0f} | all/1 = {b_one / b_all:.2f}× |")
print(f"| INSERT…SELECT {args.dedup_n} rows, dedup 0.95 (exact, O(N²)), all threads | {rate(args.dedup_n, d_all):,.0f} | all/1 = {d_one / d_all:.2f}× |")
print(f"| single-row autocommit inserts ({args.single}) | {rate(args.single, single):,.0f} | batch/single = {rate(args.n, b_all) / rate(args.single, single):.1f}× (target ≥ 10×) |")
p50 = lat[len(lat) // 2]
p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
print(f"\nPer-1000-row batch latency over {len(lat)} batches (growing store to {len(lat) * 1000} rows): "
      f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (seed target p99 < 100 ms).")
