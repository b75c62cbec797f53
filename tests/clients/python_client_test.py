#!/usr/bin/python3
"""Client test: the Engram extension loaded from Debian's python3 `sqlite3` module.

Creates a store, batch-inserts in one transaction, searches by similarity, checks error
messages, then reopens the database in a new connection and reads everything back.
Transactions are explicit: the connection uses isolation_level=None (autocommit mode) and
issues BEGIN/COMMIT itself, so Python opens no implicit transactions.
Usage: python_client_test.py BUILD/engram
"""
import os
import sqlite3
import struct
import sys
import tempfile

ext = sys.argv[1]
DIM = 16


def vec(seed):
    # deterministic, not normalised; the store normalises for search
    return struct.pack(f"<{DIM}f", *[((seed * 7919 + i * i * 104729) % 10007) / 10007.0 - 0.5 for i in range(DIM)])


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


with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "py.db")
    db = connect(path)
    check(db.execute("SELECT engram_version()").fetchone()[0].count(".") == 2, "version")
    db.execute(f"CREATE VIRTUAL TABLE mem USING engram(dim={DIM}, dedup=off)")
    rows = [(f"p{i}", f"python episode {i}", vec(i), 1714557600 + i, 0.9) for i in range(500)]
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO mem(id, what, embedding, occurred_at, confidence) VALUES (?, ?, ?, ?, ?)", rows)
    # visible to this transaction before COMMIT, as pending
    check(db.execute("SELECT tier FROM mem WHERE id='p7'").fetchone() == ("pending",), "pending")
    other = connect(path)
    check(other.execute("SELECT count(*) FROM mem").fetchone()[0] == 0, "isolation before commit")
    db.execute("COMMIT")
    check(other.execute("SELECT count(*) FROM mem").fetchone()[0] == 500, "visible after commit")
    other.close()

    b = db.execute("SELECT size, successful FROM engram_batches('mem')").fetchall()
    check(b == [(500, 500)], f"one batch of 500, got {b}")
    top = db.execute("SELECT rank, id, confidence FROM engram_similar('mem', ?, 3, 0.0)",
                     (vec(123),)).fetchall()
    check(top[0][1] == "p123" and abs(top[0][2] - 1.0) < 1e-5, f"similar finds itself: {top}")
    check(len(top) == 3, "k=3")

    # errors name the culprit and change nothing
    for sql, args, needle in [
        ("INSERT INTO mem(id, embedding) VALUES (?, ?)", ("bad", b"\0" * 8), "expected 16 dimensions, got 2"),
        ("INSERT INTO mem(id, embedding) VALUES (?, ?)", ("p1", vec(1)), "duplicate id 'p1'"),
        ("INSERT INTO mem(id, embedding) VALUES (?, ?)", (None, vec(1)), "id must not be NULL"),
        ("INSERT INTO mem(id, embedding) VALUES (?, ?)", ("j", "[1, 2,"), "malformed JSON vector"),
        ("SELECT * FROM engram_similar('nope', ?, 3)", (vec(1),), "no such engram store: 'nope'"),
    ]:
        try:
            db.execute(sql, args).fetchall()
            check(False, f"expected an error for {sql} {args[:1]}")
        except sqlite3.Error as e:
            check(needle in str(e), f"message {str(e)!r} should contain {needle!r}")
    check(db.execute("SELECT count(*) FROM mem").fetchone()[0] == 500, "errors changed nothing")
    # progress: while a long commit runs, another connection sees it in engram_stats
    import threading
    db.execute("CREATE VIRTUAL TABLE big USING engram(dim=64, dedup=off)")
    db.execute("CREATE TABLE big_src AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
               "FROM n WHERE i < 60000) SELECT 'g' || i AS id, engram_random_vector(64, i) AS e FROM n")
    seen = []
    done = threading.Event()

    def watch():
        watcher = connect(path)
        while not done.is_set():
            seen.append(watcher.execute(
                "SELECT committing, applied, rate FROM engram_stats('big')").fetchone())
        watcher.close()

    t = threading.Thread(target=watch)
    t.start()
    db.execute("BEGIN")
    db.execute("INSERT INTO big(id, embedding) SELECT id, e FROM big_src")
    db.execute("COMMIT")
    done.set()
    t.join()
    during = [r for r in seen if r[0] > 0]
    check(len(during) > 0, f"no poll saw the commit running ({len(seen)} polls)")
    check(all(r[0] == 60000 and 0 <= r[1] <= 60000 for r in during), f"progress rows {during[:3]}")
    watcher = connect(path)
    after = watcher.execute("SELECT committing, episodes, rate > 0 FROM engram_stats('big')").fetchone()
    check(after == (0, 60000, 1), f"after the commit: {after}")
    watcher.close()
    db.close()

    # reopen: everything is back, searchable
    db = connect(path)
    check(db.execute("SELECT count(*), min(id), max(id) FROM mem").fetchone() == (500, "p0", "p99"),
          "reopen count")
    r = db.execute("SELECT what, embedding, occurred_at, activation, tier FROM mem WHERE id='p42'").fetchone()
    check(r[0] == "python episode 42" and r[1] == vec(42), "reopen record")
    check(r[2] == "2024-05-01T10:00:42Z" and r[4] == "hot", f"reopen fields {r[2:]}")
    top = db.execute("SELECT id FROM engram_similar('mem', ?, 1)", (vec(321),)).fetchone()
    check(top == ("p321",), "similar after reopen")
    db.close()

# A transaction larger than batch_memory: a scan stays open while the same transaction keeps
# writing (and staging to disk); another connection never sees part of its chunked commit.
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "staged.db")
    db = connect(path)
    db.execute(f"CREATE VIRTUAL TABLE st USING engram(dim={DIM}, dedup=off, batch_memory='1MB')")
    db.execute("BEGIN")
    db.executemany("INSERT INTO st(id, embedding) VALUES (?, ?)",
                   [(f"a{i:05d}", vec(i)) for i in range(3000)])
    staged = db.execute("SELECT staged FROM engram_stats('st')").fetchone()[0]
    check(staged > 0, f"nothing staged ({staged})")
    seen = []
    for i, (rid,) in enumerate(db.execute("SELECT id FROM st")):
        seen.append(rid)
        if i < 2000:
            db.execute("INSERT INTO st(id, embedding) VALUES (?, ?)", (f"b{i:05d}", vec(10000 + i)))
    check(seen == sorted(set(seen)), "scan while writing: ids out of order or repeated")
    check(set(f"a{i:05d}" for i in range(3000)) <= set(seen), "scan while writing: rows missed")
    check(db.execute("SELECT staged FROM engram_stats('st')").fetchone()[0] > staged,
          "the writes during the scan did not stage")
    db.execute("COMMIT")
    check(db.execute("SELECT count(*) FROM st").fetchone()[0] == 5000, "count after commit")

    counts = set()
    finished = threading.Event()

    def watch():
        w = connect(path)
        while not finished.is_set():
            counts.add(w.execute("SELECT count(*) FROM st").fetchone()[0])
        w.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    db.execute("BEGIN")
    db.executemany("INSERT INTO st(id, embedding) VALUES (?, ?)",
                   [(f"c{i:05d}", vec(20000 + i)) for i in range(20000)])
    db.execute("COMMIT")
    finished.set()
    watcher.join()
    chunks = db.execute("SELECT chunks FROM engram_batches('st') ORDER BY batch DESC").fetchone()[0]
    check(chunks > 1, f"the commit was one write ({chunks} chunks)")
    check(counts <= {5000, 25000} and 5000 in counts,
          f"another connection saw a partial commit: {sorted(counts)}")
    db.close()

if failures:
    print(f"0 passed, {len(failures)} failed")
    sys.exit(1)
print("python client: all checks passed")
