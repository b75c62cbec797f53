#!/usr/bin/python3
"""Recall as the store grows, through SQL (Debian's python3 sqlite3), default options.

One store (dim 100, engram_random_vector rows) grows to each size; every memory has
what = 'word number NNNNNNN' (zero-padded, so one text per number at every size), location =
'room R' (R = i mod 1000) and occurred_at one minute after the previous one (the newest is now).
After engram_index_wait, per cue kind:
  - single: median ms of one `SELECT ... FROM engram_recall(...)` statement (--reps, each cue
    a different value),
  - batch: ms per cue of engram_recall_batch over --batch cues of that kind in one statement,
and the ratio of each to its figure at the first size (target: <= 2x from 10K to 1M), plus
batch vs single (target: >= 1.6x on 2 cores). Rows per cue are printed: the selective cues find
the same number of memories at every size, the 'broad' one (the word rule: every text has the
word "word") finds more as the store grows, so its cost follows its answer.
Usage: recall_bench.py BUILD/engram [--sizes 10000,100000,1000000] [--reps 15] [--batch 64]
"""
import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("ext")
ap.add_argument("--sizes", default="10000,100000,1000000")
ap.add_argument("--reps", type=int, default=15)
ap.add_argument("--batch", type=int, default=64)
args = ap.parse_args()
DIM = 100
STEP = 60.0  # seconds between memories
CHUNK = 20000


def connect(path):
    db = sqlite3.connect(path, isolation_level=None)
    db.enable_load_extension(True)
    db.load_extension(args.ext)
    return db


def grow(db, have, size, t_end):
    """Rows have+1 .. size; row i occurred at t_end - (size_final - i) * STEP (set by caller)."""
    for first in range(have + 1, size + 1, CHUNK):
        last = min(size, first + CHUNK - 1)
        db.execute("BEGIN")
        db.execute(
            "WITH RECURSIVE k(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM k WHERE i < ?) "
            "INSERT INTO mem(id, what, location, occurred_at, embedding) "
            "SELECT 'm' || i, 'word number ' || printf('%07d', i), 'room ' || (i % 1000), "
            "? + i * ?, engram_random_vector(?, i) FROM k",
            (first, last, t_end, STEP, DIM))
        db.execute("COMMIT")


def cues(kind, n, size, t0, rng):
    """n cue values of one kind over a store of `size` rows: (kind, value, threshold, max)."""
    out = []
    for _ in range(n):
        i = rng.randint(1, size)
        t = t0 + i * STEP
        if kind == "embedding":
            out.append(("embedding", None, 0.5, 10, i))  # the stored vector i, from SQL
        elif kind == "semantic":
            out.append(("semantic", "number %07d" % i, 0.6, 10, None))
        elif kind == "semantic broad":
            out.append(("semantic", "word lunch%d" % i, 0.25, 10, None))
        elif kind == "context":
            out.append(("context", json.dumps({"from": t, "to": t + 3600,
                                               "location": "room %d" % (i % 1000)}), 0.75, 10,
                        None))
        elif kind == "temporal":
            out.append(("temporal", json.dumps({"between": [t, t + 3600]}), 0.8, 10, None))
    return out


def value_sql(c):
    if c[0] == "embedding":
        return "engram_vector_json(engram_random_vector(%d, %d))" % (DIM, c[4])
    return "?"


def single_ms(db, cs):
    times = []
    rows = []
    for c in cs:
        params = () if c[0] == "embedding" else (c[1],)
        sql = ("SELECT id, confidence FROM engram_recall('mem', '%s', %s, %r, %d)"
               % (c[0], value_sql(c), c[2], c[3]))
        t = time.perf_counter()
        r = db.execute(sql, params).fetchall()
        times.append((time.perf_counter() - t) * 1000)
        rows.append(len(r))
    return statistics.median(times), statistics.median(rows)


def batch_ms(db, cs):
    db.execute("DROP TABLE IF EXISTS temp.cues")
    db.execute("CREATE TEMP TABLE cues(cue_id INTEGER, kind TEXT, value TEXT, threshold REAL, "
               "max_results INTEGER)")
    for n, c in enumerate(cs):
        if c[0] == "embedding":
            db.execute("INSERT INTO temp.cues VALUES (?, 'embedding', %s, ?, ?)" % value_sql(c),
                       (n, c[2], c[3]))
        else:
            db.execute("INSERT INTO temp.cues VALUES (?, ?, ?, ?, ?)", (n, c[0], c[1], c[2], c[3]))
    best = []
    for _ in range(3):
        t = time.perf_counter()
        db.execute("SELECT count(*) FROM engram_recall_batch('mem', "
                   "'SELECT cue_id, kind, value, threshold, max_results FROM temp.cues')").fetchone()
        best.append((time.perf_counter() - t) * 1000 / len(cs))
    return statistics.median(best)


def main():
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = ["embedding", "semantic", "context", "temporal", "semantic broad"]
    rng = random.Random(7)
    res = {}
    with tempfile.TemporaryDirectory() as d:
        db = connect(os.path.join(d, "r.db"))
        db.execute(f"CREATE VIRTUAL TABLE mem USING engram(dim={DIM})")
        # Times: row i at t0 + i * STEP, where the largest row is now.
        t0 = time.time() - sizes[-1] * STEP
        have = 0
        for size in sizes:
            t = time.perf_counter()
            grow(db, have, size, t0)
            have = size
            db.execute("SELECT engram_index_wait('mem')").fetchone()
            print(f"  [recall] {size} memories stored and indexed in "
                  f"{time.perf_counter() - t:.0f} s", file=sys.stderr)
            for kind in kinds:
                s_ms, rows = single_ms(db, cues(kind, args.reps, size, t0, rng))
                b_ms = batch_ms(db, cues(kind, args.batch, size, t0, rng))
                res[(kind, size)] = (s_ms, b_ms, rows)
                print(f"  [recall] {size} {kind}: single {s_ms:.3f} ms, batch {b_ms:.3f} ms/cue, "
                      f"{rows} rows", file=sys.stderr)
        db.close()
    first = sizes[0]
    print("## Recall as the store grows (through SQL, default options)")
    print()
    print(f"dim {DIM}, what 'word number NNNNNNN', location 'room R', one memory a minute; "
          f"single: median of {args.reps} `engram_recall` statements; batch: "
          f"`engram_recall_batch` of {args.batch} cues, ms per cue (median of 3). Ratios to "
          f"the {first:,} figure of the same run; batch gain = single / batch per cue.")
    print()
    head = "| cue | rows |" + "".join(f" single {s:,} |" for s in sizes) + \
        "".join(f" batch {s:,} |" for s in sizes) + \
        f" single {sizes[-1]:,}/{first:,} | batch {sizes[-1]:,}/{first:,} | batch gain |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for kind in kinds:
        row = f"| {kind} | {res[(kind, sizes[-1])][2]:.0f} |"
        row += "".join(f" {res[(kind, s)][0]:.3f} ms |" for s in sizes)
        row += "".join(f" {res[(kind, s)][1]:.3f} ms |" for s in sizes)
        row += f" {res[(kind, sizes[-1])][0] / res[(kind, first)][0]:.2f}x |"
        row += f" {res[(kind, sizes[-1])][1] / res[(kind, first)][1]:.2f}x |"
        row += f" {res[(kind, sizes[-1])][0] / res[(kind, sizes[-1])][1]:.2f}x |"
        print(row)


main()
