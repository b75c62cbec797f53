#!/usr/bin/python3
"""End-to-end benchmark through SQL (Debian's python3 sqlite3), default options unless a column
says otherwise, as the store grows. Prints a markdown section; ratios are from the same run.

  1. Ingest as the store grows: a fresh store (768-d, engram_random_vector rows) is filled to
     each size by INSERT ... SELECT (one transaction per step), engram_index_wait, then --batches
     transactions of 1000 rows are timed: p50 / p99 and episodes/s, with dedup on (default) and
     off; the ratio to the first size; a plot (gnuplot, when installed) of latency vs size.
  2. Bulk load: 100K x 768 INSERT ... SELECT in one transaction, default options and dedup=off
     (medians of --reps), next to the fsync'd sequential write rate of the same disk (rows/s
     that bandwidth allows at the stored bytes per row); then the time from COMMIT until every
     memory is indexed, next to hnswlib (Debian python3-hnswlib, same M, ef_construction and
     threads) building the same vectors.
  3. Similarity search: Fashion-MNIST (the first --fashion-n train images, the first --queries
     test images: the data engram_hnsw_bench uses) and a low-rank synthetic 768-d set of
     --synthetic-n rows, stored with dedup=off (the base set has near-duplicates that dedup would
     merge: recall is measured against all of it). For each ef: recall@10 and QPS of
     engram_similar (one statement per query) and engram_similar_batch (one statement), next to
     hnswlib (one call per query on one thread, and all queries on all threads). QPS at
     recall@10 = 0.95 (log-interpolated) and the ratios. With --direct-dat FILE (a
     recall_qps_*.dat of engram_hnsw_bench on the same Fashion data), the SQL path's single-query
     QPS is also put next to the HnswIndex called directly.
Usage: sql_scale_bench.py BUILD/engram [--sizes 10000,100000,1000000] [--batches 20]
       [--bulk-n 100000] [--reps 3] [--fashion-n 20000] [--synthetic-n 100000] [--queries 500]
       [--direct-dat FILE] [--plot-dir DIR] [--skip-ingest] [--skip-search]
"""
import argparse
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("ext")
ap.add_argument("--sizes", default="10000,100000,1000000")
ap.add_argument("--batches", type=int, default=20)
ap.add_argument("--bulk-n", type=int, default=100000)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--fashion-n", type=int, default=20000)
ap.add_argument("--synthetic-n", type=int, default=100000)
ap.add_argument("--queries", type=int, default=500)
ap.add_argument("--direct-dat", default="")
ap.add_argument("--plot-dir", default="")
ap.add_argument("--skip-ingest", action="store_true")
ap.add_argument("--skip-search", action="store_true")
ap.add_argument("--skip-bulk", action="store_true")
args = ap.parse_args()
CORES = os.cpu_count()
DIM = 768


def connect(path):
    db = sqlite3.connect(path, isolation_level=None)
    db.enable_load_extension(True)
    db.load_extension(args.ext)
    return db


def insert_random(db, first, count, seed_base):
    db.execute("BEGIN")
    db.execute(
        "WITH RECURSIVE k(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM k WHERE i < ?) "
        "INSERT INTO mem(id, embedding) SELECT 'r' || i, engram_random_vector(768, ? + i) FROM k",
        (first, first + count - 1, seed_base))
    db.execute("COMMIT")


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))]


# ---- 1. ingest as the store grows -----------------------------------------------------------
def ingest_growth(sizes):
    out = {}
    for dedup in ("0.95", "off"):
        with tempfile.TemporaryDirectory() as d:
            db = connect(os.path.join(d, "g.db"))
            opt = "" if dedup == "0.95" else ", dedup=off"
            db.execute(f"CREATE VIRTUAL TABLE mem USING engram(dim=768{opt})")
            have = 0
            for size in sizes:
                t = time.perf_counter()
                insert_random(db, have + 1, size - have, 0)
                bulk = (size - have) / (time.perf_counter() - t)
                have = size
                t = time.perf_counter()
                db.execute("SELECT engram_index_wait('mem')").fetchone()
                catch_up = time.perf_counter() - t
                lat = []
                for b in range(args.batches):
                    t = time.perf_counter()
                    insert_random(db, 10**9 + have + 1, 1000, 7 * 10**8)
                    lat.append((time.perf_counter() - t) * 1000)
                    have += 1000
                episodes = db.execute("SELECT episodes FROM engram_stats('mem')").fetchone()[0]
                out[(dedup, size)] = dict(p50=statistics.median(lat), p99=pct(lat, 0.99),
                                          bulk=bulk, catch_up=catch_up, episodes=episodes)
                print(f"  [ingest] dedup={dedup} size={size}: p50 {out[(dedup, size)]['p50']:.1f} ms",
                      file=sys.stderr)
            db.close()
    return out


def plot_growth(sizes, res):
    if not args.plot_dir or subprocess.run(["which", "gnuplot"], capture_output=True).returncode:
        return None
    dat = os.path.join(args.plot_dir, "ingest_growth.dat")
    png = os.path.join(args.plot_dir, "ingest_growth.png")
    with open(dat, "w") as f:
        f.write("# size p50_dedup p99_dedup p50_off p99_off\n")
        for s in sizes:
            a, b = res[("0.95", s)], res[("off", s)]
            f.write(f"{s} {a['p50']:.3f} {a['p99']:.3f} {b['p50']:.3f} {b['p99']:.3f}\n")
    script = (
        "set terminal png size 900,560; set output '%s'; set logscale x; set grid;"
        "set xlabel 'memories in the store'; set ylabel 'ms per 1000-row transaction';"
        "set yrange [0:*]; set key top left;"
        "plot '%s' u 1:2 w lp t 'p50, dedup 0.95 (default)', '' u 1:3 w lp t 'p99, dedup 0.95',"
        "'' u 1:4 w lp t 'p50, dedup off', '' u 1:5 w lp t 'p99, dedup off'" % (png, dat))
    subprocess.run(["gnuplot", "-e", script], check=False)
    return os.path.basename(png) if os.path.exists(png) else None


# ---- 2. bulk load, disk rate, index catch-up vs hnswlib ---------------------------------------
def fsync_rate(d):
    path = os.path.join(d, "fsync.bin")
    chunk = os.urandom(1 << 20)
    t = time.perf_counter()
    with open(path, "wb") as f:
        for _ in range(256):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    rate = 256 * (1 << 20) / (time.perf_counter() - t)
    os.remove(path)
    return rate


def bulk(n, dedup, wait):
    with tempfile.TemporaryDirectory() as d:
        db = connect(os.path.join(d, "b.db"))
        opt = "" if dedup == "0.95" else ", dedup=off"
        db.execute(f"CREATE VIRTUAL TABLE mem USING engram(dim=768{opt})")
        t = time.perf_counter()
        insert_random(db, 1, n, 0)
        seconds = time.perf_counter() - t
        res = dict(seconds=seconds)
        store = os.path.join(d, "b.db-mem.engram")
        res["bytes"] = sum(os.path.getsize(os.path.join(r, f))
                           for r, _, fs in os.walk(store) for f in fs)
        if wait:
            t = time.perf_counter()
            db.execute("SELECT engram_index_wait('mem')").fetchone()
            res["catch_up"] = time.perf_counter() - t
            vecs = np.frombuffer(b"".join(r[0] for r in db.execute(
                "SELECT embedding FROM mem ORDER BY id")), dtype=np.float32).reshape(-1, DIM)
            res["vectors"] = vecs
        res["disk"] = fsync_rate(d)
        db.close()
    return res


def hnswlib_build(vecs, threads):
    import hnswlib
    x = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    index = hnswlib.Index(space="ip", dim=x.shape[1])
    index.init_index(max_elements=x.shape[0], M=16, ef_construction=200, random_seed=1)
    t = time.perf_counter()
    index.add_items(x, np.arange(x.shape[0]), num_threads=threads)
    return time.perf_counter() - t, index


# ---- 3. similarity search ----------------------------------------------------------------------
def read_idx(path, limit):
    import gzip
    with gzip.open(path, "rb") as f:
        head = f.read(16)
        count, rows, cols = (int.from_bytes(head[i:i + 4], "big") for i in (4, 8, 12))
        count = min(count, limit)
        data = np.frombuffer(f.read(count * rows * cols), dtype=np.uint8)
    return data.reshape(count, rows * cols).astype(np.float32)


def lowrank(n, q, seed=3):
    rng = np.random.default_rng(seed)
    proj = rng.standard_normal((48, DIM), dtype=np.float32)
    def rows(count):
        z = rng.standard_normal((count, 48), dtype=np.float32)
        return z @ proj + 0.25 * math.sqrt(48) * rng.standard_normal((count, DIM), dtype=np.float32)
    return rows(n), rows(q)


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def qps_at(points, target=0.95):
    # points: [(recall, qps)] in ef order; log(QPS) interpolated linearly in recall.
    for (r0, q0), (r1, q1) in zip(points, points[1:]):
        if r0 < target <= r1:
            f = (target - r0) / (r1 - r0) if r1 > r0 else 1.0
            return math.exp(math.log(q0) + f * (math.log(q1) - math.log(q0)))
    if points and points[0][0] >= target:
        return points[0][1]
    return 0.0


def search_bench(name, base, queries, efs):
    base, queries = unit(base), unit(queries)
    truth = np.argsort(-(queries @ base.T), axis=1)[:, :10]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        db = connect(os.path.join(d, "s.db"))
        db.execute(f"CREATE VIRTUAL TABLE mem USING engram(dim={base.shape[1]}, dedup=off)")
        db.execute("CREATE TABLE q(qid INTEGER PRIMARY KEY, v BLOB)")
        db.executemany("INSERT INTO q VALUES (?, ?)", [(i, queries[i].tobytes()) for i in range(len(queries))])
        db.execute("BEGIN")
        db.executemany("INSERT INTO mem(id, embedding) VALUES (?, ?)",
                       ((str(i), base[i].tobytes()) for i in range(len(base))))
        t = time.perf_counter()
        db.execute("COMMIT")
        commit_s = time.perf_counter() - t
        t = time.perf_counter()
        db.execute("SELECT engram_index_wait('mem')").fetchone()
        sql_build = commit_s + time.perf_counter() - t
        h_build, h = hnswlib_build(base, CORES)
        qb = [queries[i].tobytes() for i in range(len(queries))]
        for ef in efs:
            single = db.execute  # one statement per query
            t = time.perf_counter()
            got = [[int(r[0]) for r in single(
                "SELECT id FROM engram_similar('mem', ?, 10, 0.0, ?)", (v, ef))] for v in qb]
            s_qps = len(qb) / (time.perf_counter() - t)
            s_rec = np.mean([len(set(g) & set(truth[i])) / 10 for i, g in enumerate(got)])
            t = time.perf_counter()
            res = {}
            for qid, mid in db.execute(
                    "SELECT query_id, id FROM engram_similar_batch('mem', "
                    "'SELECT qid, v FROM q ORDER BY qid', 10, 0.0, ?)", (ef,)):
                res.setdefault(qid, []).append(int(mid))
            b_qps = len(qb) / (time.perf_counter() - t)
            b_rec = np.mean([len(set(res.get(i, [])) & set(truth[i])) / 10 for i in range(len(qb))])
            h.set_ef(ef)
            t = time.perf_counter()
            for i in range(len(queries)):
                h.knn_query(queries[i:i + 1], k=10, num_threads=1)
            h1_qps = len(qb) / (time.perf_counter() - t)
            t = time.perf_counter()
            labels, _ = h.knn_query(queries, k=10, num_threads=CORES)
            hb_qps = len(qb) / (time.perf_counter() - t)
            h_rec = np.mean([len(set(labels[i]) & set(truth[i])) / 10 for i in range(len(qb))])
            rows.append(dict(ef=ef, s_rec=s_rec, s_qps=s_qps, b_rec=b_rec, b_qps=b_qps,
                             h_rec=h_rec, h1_qps=h1_qps, hb_qps=hb_qps))
            print(f"  [search] {name} ef={ef}: recall {s_rec:.3f} single {s_qps:.0f} batch {b_qps:.0f} "
                  f"hnswlib {h1_qps:.0f}/{hb_qps:.0f}", file=sys.stderr)
        db.close()
    return rows, sql_build, h_build


def read_direct(path):
    out = {}
    if path and os.path.exists(path):
        for line in open(path):
            if line.startswith("#") or not line.strip():
                continue
            ef, er, eq, hr, hq = line.split()[:5]
            out[int(ef)] = (float(er), float(eq), float(hr), float(hq))
    return out


print("## End to end through SQL: as the store grows\n")
print(f"Python's sqlite3 (Debian), {CORES} cores, default options unless a column says otherwise.\n")

if not args.skip_ingest:
    sizes = [int(s) for s in args.sizes.split(",")]
    growth = ingest_growth(sizes)
    print(f"### 1000-row transactions as the store grows (768-d, {args.batches} per size, after "
          f"engram_index_wait)\n")
    print("| memories | dedup 0.95 p50 / p99 ms | episodes/s | ratio to first size | "
          "dedup off p50 / p99 ms | episodes/s | ratio to first size | dedup cost (p50 on / off) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    first_on, first_off = growth[("0.95", sizes[0])]["p50"], growth[("off", sizes[0])]["p50"]
    for s in sizes:
        a, b = growth[("0.95", s)], growth[("off", s)]
        print(f"| {s:,} | {a['p50']:.1f} / {a['p99']:.1f} | {1000 / a['p50'] * 1000:,.0f} | "
              f"{a['p50'] / first_on:.2f}× | {b['p50']:.1f} / {b['p99']:.1f} | "
              f"{1000 / b['p50'] * 1000:,.0f} | {b['p50'] / first_off:.2f}× | "
              f"{a['p50'] / b['p50']:.2f}× |")
    print(f"\nTarget: the dedup-on p50 at {sizes[-1]:,} ≤ 1.5× its p50 at {sizes[0]:,}. "
          "Filling the store (INSERT … SELECT, one transaction per step) ran at " +
          ", ".join(f"{growth[('0.95', s)]['bulk']:,.0f}" for s in sizes) +
          " episodes/s with dedup on; the index caught up in " +
          ", ".join(f"{growth[('0.95', s)]['catch_up']:.0f} s" for s in sizes) + ".\n")
    png = plot_growth(sizes, growth)
    if png:
        print(f"![1000-row transaction latency vs store size]({png})\n")

if not args.skip_ingest and not args.skip_bulk:
    runs_on = [bulk(args.bulk_n, "0.95", i == 0) for i in range(args.reps)]
    runs_off = [bulk(args.bulk_n, "off", False) for _ in range(args.reps)]
    on = statistics.median(r["seconds"] for r in runs_on)
    off = statistics.median(r["seconds"] for r in runs_off)
    disk = statistics.median(r["disk"] for r in runs_on + runs_off)
    per_row = statistics.median(r["bytes"] for r in runs_on) / args.bulk_n
    disk_rows = disk / per_row
    h_s, _ = hnswlib_build(runs_on[0]["vectors"], CORES)
    cu = runs_on[0]["catch_up"]
    print(f"### Bulk load: {args.bulk_n:,} × 768 INSERT … SELECT, one transaction (median of "
          f"{args.reps})\n")
    print("| what | episodes/s | ratio |")
    print("|---|---:|---:|")
    print(f"| default options (dedup 0.95, sync=full) | {args.bulk_n / on:,.0f} | target ≥ 30,000; "
          f"{args.bulk_n / on / disk_rows:.2f}× of the disk's fsync'd sequential rate |")
    print(f"| dedup=off | {args.bulk_n / off:,.0f} | dedup costs {on / off:.2f}× |")
    print(f"| the disk: fsync'd sequential writes, {disk / 2**20:,.0f} MB/s at {per_row:,.0f} "
          f"stored bytes per row | {disk_rows:,.0f} | the limit |")
    print(f"\nFrom that COMMIT until every memory was indexed: {cu:.1f} s; hnswlib "
          f"(python3-hnswlib, M=16, ef_construction=200, {CORES} threads) builds the same "
          f"vectors in {h_s:.1f} s: ratio {cu / h_s:.2f}× (target ≤ 1).\n")

if not args.skip_search:
    direct = read_direct(args.direct_dat)
    sets = []
    fashion_dir = "/usr/share/datasets/fashion-mnist"
    if os.path.exists(fashion_dir):
        base = read_idx(f"{fashion_dir}/train-images-idx3-ubyte.gz", args.fashion_n)
        queries = read_idx(f"{fashion_dir}/t10k-images-idx3-ubyte.gz", args.queries)
        sets.append((f"Fashion-MNIST {len(base) // 1000}K × 784", base, queries, True))
    b, q = lowrank(args.synthetic_n, args.queries)
    sets.append((f"low-rank synthetic {args.synthetic_n // 1000}K × 768", b, q, False))
    efs = [10, 16, 32, 64, 128, 256, 512]
    for name, base, queries, same_as_direct in sets:
        rows, sql_build, h_build = search_bench(name, base, queries, efs)
        print(f"### Similarity search: {name}, {len(queries)} queries, k=10 (dedup=off)\n")
        hdr = ("| ef | recall@10 | engram_similar QPS | engram_similar_batch QPS | "
               "hnswlib 1 thread QPS | hnswlib recall@10 | hnswlib all threads QPS |")
        sep = "|---:|---:|---:|---:|---:|---:|---:|"
        if same_as_direct and direct:
            hdr += " HnswIndex direct QPS (recall) | SQL / direct |"
            sep += "---:|---:|"
        print(hdr)
        print(sep)
        for r in rows:
            line = (f"| {r['ef']} | {r['s_rec']:.3f} | {r['s_qps']:,.0f} | {r['b_qps']:,.0f} | "
                    f"{r['h1_qps']:,.0f} | {r['h_rec']:.3f} | {r['hb_qps']:,.0f} |")
            if same_as_direct and direct:
                dr = direct.get(r["ef"])
                line += (f" {dr[1]:,.0f} ({dr[0]:.3f}) | {r['s_qps'] / dr[1]:.2f}× |" if dr
                         else " | |")
            print(line)
        s95 = qps_at([(r["s_rec"], r["s_qps"]) for r in rows])
        b95 = qps_at([(r["b_rec"], r["b_qps"]) for r in rows])
        h95 = qps_at([(r["h_rec"], r["h1_qps"]) for r in rows])
        hb95 = qps_at([(r["h_rec"], r["hb_qps"]) for r in rows])
        if s95 and b95 and h95 and hb95:
            print(f"\nAt recall@10 = 0.95: engram_similar {s95:,.0f} QPS, engram_similar_batch "
                  f"{b95:,.0f} QPS ({b95 / s95:.2f}× single); hnswlib {h95:,.0f} QPS on 1 "
                  f"thread, {hb95:,.0f} on {CORES}: SQL batch / hnswlib = {b95 / hb95:.2f}× "
                  f"(target ≥ 1.5×).")
        else:
            print("\nRecall@10 = 0.95 was not reached by every side in this sweep.")
        if same_as_direct and direct:
            d95 = qps_at([(v[0], v[1]) for _, v in sorted(direct.items())])
            print(f" HnswIndex called directly (engram_hnsw_bench, same data and queries, 1 "
                  f"thread): {d95:,.0f} QPS: the SQL single-query path keeps "
                  f"{s95 / d95 if d95 else 0:.0%} of it (target ≥ 90%).")
        print(f" Build: COMMIT + engram_index_wait {sql_build:.1f} s, hnswlib ({CORES} threads) "
              f"{h_build:.1f} s.\n")
