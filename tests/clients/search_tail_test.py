#!/usr/bin/python3
"""Client test: similarity search while the index builder is still catching up.

Right after a bulk COMMIT most memories are in the unindexed tail, which searches score
exactly (blocked kernels for a batch of queries, then the canonical kernel for the rows that can
be in the top k). With a beam wider than the store the graph part is exact too, so every search
must equal a brute-force ranking by engram_cosine, and engram_similar_batch must equal
engram_similar query by query (same ids, same scores), with and without a threshold and a
filter, during the catch-up and after engram_index_wait.
Connections use isolation_level=None (explicit BEGIN/COMMIT).
Usage: search_tail_test.py BUILD/engram
"""
import os
import random
import sqlite3
import struct
import sys
import tempfile

ext = sys.argv[1]
DIM = 32
N = 12000
K = 10
EF = 50000  # wider than the store: the graph walk reaches every node
rng = random.Random(7)


def blob(v):
    return struct.pack(f"<{DIM}f", *v)


def connect(path):
    db = sqlite3.connect(path, isolation_level=None)
    db.enable_load_extension(True)
    db.load_extension(ext)
    db.enable_load_extension(False)
    return db


failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def brute(db, q, k, threshold, location=None):
    sql = "SELECT id, engram_cosine(embedding, ?) AS c FROM mem"
    args = [q]
    if location is not None:
        sql += " WHERE location = ?"
        args.append(location)
    rows = db.execute(sql + " ORDER BY c DESC, id LIMIT ?", args + [k]).fetchall()
    return [(i, c) for i, c in rows if c >= threshold]


def compare(db, queries, k, threshold, flt, label):
    single = []
    for qid, q in queries:
        single.append(db.execute(
            "SELECT id, confidence FROM engram_similar('mem', ?, ?, ?, ?, ?)",
            (q, k, threshold, EF, flt)).fetchall())
    db.execute("DELETE FROM q")
    db.executemany("INSERT INTO q VALUES (?, ?)", queries)
    batch = {}
    for qid, rank, mid, conf in db.execute(
            "SELECT query_id, rank, id, confidence FROM engram_similar_batch("
            "'mem', 'SELECT qid, v FROM q ORDER BY qid', ?, ?, ?, ?)", (k, threshold, EF, flt)):
        batch.setdefault(qid, []).append((mid, conf))
    location = None if flt is None else "even"
    for (qid, q), s in zip(queries, single):
        b = batch.get(qid, [])
        check(b == s, f"{label}: query {qid}: batch {b[:3]}... != single {s[:3]}...")
        want = brute(db, q, k, threshold, location)
        check([i for i, _ in s] == [i for i, _ in want],
              f"{label}: query {qid}: ids {[i for i, _ in s][:5]} != brute force "
              f"{[i for i, _ in want][:5]}")
        check(all(abs(a - c) < 1e-5 for (_, a), (_, c) in zip(s, want)),
              f"{label}: query {qid}: scores differ from engram_cosine")


with tempfile.TemporaryDirectory() as d:
    db = connect(os.path.join(d, "tail.db"))
    db.execute(f"CREATE VIRTUAL TABLE mem USING engram(dim={DIM}, dedup=off)")
    db.execute("CREATE TABLE q(qid INTEGER PRIMARY KEY, v BLOB)")
    rows = []
    for i in range(N):
        v = [rng.gauss(0, 1) for _ in range(DIM)]
        rows.append((f"m{i:05d}", blob(v), "even" if i % 2 == 0 else "odd"))
    db.execute("BEGIN")
    db.executemany("INSERT INTO mem(id, embedding, location) VALUES (?, ?, ?)", rows)
    db.execute("COMMIT")
    queries = [(j, blob([rng.gauss(0, 1) for _ in range(DIM)])) for j in range(40)]
    episodes, indexed = db.execute("SELECT episodes, indexed FROM engram_stats('mem')").fetchone()
    check(indexed < episodes, f"the tail is not empty right after COMMIT ({indexed}/{episodes})")
    print(f"right after COMMIT: {indexed} of {episodes} indexed")
    compare(db, queries, K, 0.0, None, "catching up")
    compare(db, queries[:10], 200, 0.3, None, "catching up, threshold")
    compare(db, queries[:10], K, 0.0, '{"location": "even"}', "catching up, filter")
    db.execute("SELECT engram_index_wait('mem')")
    episodes, indexed = db.execute("SELECT episodes, indexed FROM engram_stats('mem')").fetchone()
    check(indexed == episodes, f"indexed after engram_index_wait ({indexed}/{episodes})")
    compare(db, queries, K, 0.0, None, "indexed")
    compare(db, queries[:10], K, 0.0, '{"location": "even"}', "indexed, filter")
    db.close()

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("search tail test: ok")
