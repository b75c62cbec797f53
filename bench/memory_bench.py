#!/usr/bin/python3
"""Memory per memory through SQL (Debian's python3 and its sqlite3 module), default options.

Each run is a fresh child process: it opens a file-backed store (CREATE VIRTUAL TABLE ...
USING engram(dim=768), nothing else set), stores N random 768-d episodes in one transaction
(INSERT ... SELECT engram_random_vector(768, i) over a recursive CTE, autocommit mode with an
explicit BEGIN/COMMIT), waits for the graph index (engram_index_wait) and reports:
  - RSS growth of the process (VmRSS after engram_index_wait minus before the INSERT), per
    memory and as a ratio to the raw float32 vectors (N x 768 x 4 bytes);
  - engram_debug()'s memory section (its total against the RSS growth);
  - COMMIT seconds, index build seconds (COMMIT to engram_index_wait), and single-query search
    QPS (engram_similar, k=10, default ef) over --queries queries.
With --base (the extension built from an earlier commit), the same runs alternate between the
two builds, and the table shows after/before ratios of the medians. hnswlib (python3-hnswlib,
M=16, ef_construction=200, inner product, 2 threads) builds the same vectors in another child
process: its RSS growth from init_index to the end of add_items is its index size.
Figures are medians of --reps runs. Prints a markdown section.
Usage: memory_bench.py BUILD/engram [--base OTHER/engram] [--n 100000] [--reps 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("ext")
ap.add_argument("--base", help="the extension to compare with (an earlier build)")
ap.add_argument("--n", type=int, default=100000)
ap.add_argument("--dim", type=int, default=768)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--queries", type=int, default=300)
ap.add_argument("--skip-hnswlib", action="store_true")
args = ap.parse_args()

ENGRAM = r'''
import json, os, sqlite3, sys, time
ext, path, n, dim, nq = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
db = sqlite3.connect(path, isolation_level=None)
db.enable_load_extension(True)
db.load_extension(ext)
db.execute(f"CREATE VIRTUAL TABLE mem USING engram(dim={dim})")
db.execute(f"SELECT engram_random_vector({dim}, 1)").fetchone()
def memory():
    text = db.execute("SELECT engram_debug()").fetchone()[0]
    for line in text.splitlines():
        if line.startswith("memory: "):
            return json.loads(line[len("memory: "):])
    return None
m0 = memory()
base = rss()
t0 = time.perf_counter()
db.execute("BEGIN")
db.execute(f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) "
           f"INSERT INTO mem(id, embedding) SELECT 'e' || i, engram_random_vector({dim}, i) FROM n")
db.execute("COMMIT")
t1 = time.perf_counter()
at_commit = rss() - base
db.execute("SELECT engram_index_wait('mem')").fetchone()
t2 = time.perf_counter()
growth = rss() - base
m1 = memory()
queries = [db.execute(f"SELECT engram_random_vector({dim}, ?)", (n + 1 + q,)).fetchone()[0]
           for q in range(nq)]
search = "SELECT id, confidence FROM engram_similar('mem', ?, 10)"
for q in queries[:20]:
    db.execute(search, (q,)).fetchall()
t3 = time.perf_counter()
for q in queries:
    db.execute(search, (q,)).fetchall()
t4 = time.perf_counter()
parts = None
if m1 is not None:
    parts = {k: m1[k] - m0.get(k, 0) for k in m1 if k not in ("rss", "stores")}
print(json.dumps({"commit_s": t1 - t0, "build_s": t2 - t1, "at_commit": at_commit,
                  "growth": growth, "qps": nq / (t4 - t3), "parts": parts}))
'''

HNSWLIB = r'''
import json, os, sqlite3, sys, time
import numpy as np
import hnswlib
ext, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
db = sqlite3.connect(":memory:")
db.enable_load_extension(True)
db.load_extension(ext)
data = np.empty((n, dim), dtype=np.float32)
for i in range(n):
    data[i] = np.frombuffer(db.execute(f"SELECT engram_random_vector({dim}, ?)", (i + 1,))
                            .fetchone()[0], dtype=np.float32)
data /= np.linalg.norm(data, axis=1, keepdims=True)
db.close()
base = rss()
index = hnswlib.Index(space="ip", dim=dim)
index.init_index(max_elements=n, M=16, ef_construction=200, random_seed=42)
index.set_num_threads(2)
t0 = time.perf_counter()
index.add_items(data, np.arange(n))
t1 = time.perf_counter()
print(json.dumps({"growth": rss() - base, "build_s": t1 - t0}))
'''


def run_engram(ext):
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(["/usr/bin/python3", "-c", ENGRAM, ext, os.path.join(d, "m.db"),
                              str(args.n), str(args.dim), str(args.queries)],
                             capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def mib(x):
    return f"{x / 2**20:,.0f} MiB"


raw = args.n * args.dim * 4
builds = [("after", args.ext)] + ([("before", args.base)] if args.base else [])
results = {name: [] for name, _ in builds}
for _ in range(args.reps):
    for name, ext in builds:
        results[name].append(run_engram(ext))
        print(f"memory_bench: {name} {json.dumps(results[name][-1])}", file=sys.stderr)
hnsw = None
if not args.skip_hnswlib:
    out = subprocess.run(["/usr/bin/python3", "-c", HNSWLIB, args.ext, str(args.n), str(args.dim)],
                         capture_output=True, text=True, check=True)
    hnsw = json.loads(out.stdout)
    print(f"memory_bench: hnswlib {json.dumps(hnsw)}", file=sys.stderr)

print(f"## Memory per memory ({args.n:,} x {args.dim}-d, through SQL, default options)")
print()
print(f"Raw float32 vectors: {mib(raw)} ({args.dim * 4:,} bytes per memory). RSS growth of a "
      "fresh process from before the INSERT to after `engram_index_wait` (the graph built), "
      f"median of {args.reps} runs"
      + (", alternating with the build before this change (`before`)." if args.base else "."))
print()
print("| build | RSS growth | per memory | / raw vectors | at COMMIT | COMMIT s | index build s "
      "| search QPS (k=10) |")
print("|---|---|---|---|---|---|---|---|")
for name, _ in builds:
    runs = results[name]
    g = median(runs, "growth")
    print(f"| {name} | {mib(g)} | {g / args.n:,.0f} B | {g / raw:.2f}x | "
          f"{mib(median(runs, 'at_commit'))} | {median(runs, 'commit_s'):.1f} | "
          f"{median(runs, 'build_s'):.1f} | {median(runs, 'qps'):,.0f} |")
if hnsw is not None:
    print(f"| hnswlib (index only, M=16) | {mib(hnsw['growth'])} | {hnsw['growth'] / args.n:,.0f} B "
          f"| {hnsw['growth'] / raw:.2f}x | | | {hnsw['build_s']:.1f} | |")
if args.base:
    a, b = results["after"], results["before"]
    print()
    print(f"after / before: RSS growth {median(a, 'growth') / median(b, 'growth'):.2f}, "
          f"index build time {median(a, 'build_s') / median(b, 'build_s'):.2f}, "
          f"COMMIT time {median(a, 'commit_s') / median(b, 'commit_s'):.2f}, "
          f"search QPS {median(a, 'qps') / median(b, 'qps'):.2f} (above 1: faster).")
parts = [r["parts"] for r in results["after"] if r["parts"]]
if parts:
    print()
    print("`engram_debug()` memory section after `engram_index_wait` (growth, median run by total):")
    p = sorted(parts, key=lambda x: x["total"])[len(parts) // 2]
    g = median(results["after"], "growth")
    print()
    print("| part | bytes | per memory |")
    print("|---|---|---|")
    for k, v in p.items():
        print(f"| {k} | {mib(v)} | {v / args.n:,.0f} B |")
    print()
    print(f"Accounted total / RSS growth: {p['total'] / g:.2f}.")
