#!/usr/bin/python3
"""Crash safety: a child process commits batches in a loop and is killed with SIGKILL at random
moments; after each kill the store is reopened and checked:
  - every batch the child reported as committed (COMMIT returned) is there, whole;
  - no batch is partly there (a batch is all of its rows or none of them);
  - only the batch in flight at the kill may be there without having been reported;
  - the engine's view (engram_stats) agrees with the stored rows;
  - each batch's update of the previous batch's first row is there exactly when the batch is.
Every third batch is larger than the store's batch_memory: it is staged on disk and published in
several writes behind an undo log, so kills also land in the middle of such publishes.
Usage: crash_test.py BUILD/engram KILLS [SEED]
"""
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

ext, kills = sys.argv[1], int(sys.argv[2])
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
DIM = 32
OPTIONS = f"dim={DIM}, dedup=off, sync=full, batch_memory='1MB'"


def rows(b):
    return 4000 if b % 3 == 0 else 100


CHILD = r'''
import sqlite3, sys
ext, path, dim, options = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
db = sqlite3.connect(path, isolation_level=None)
db.enable_load_extension(True); db.load_extension(ext)
db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS mem USING engram({options})")
b = db.execute("SELECT coalesce(max(CAST(substr(id, 2, instr(id, '-') - 2) AS INTEGER)), 0) FROM mem").fetchone()[0]
while True:
    b += 1
    rows = 4000 if b % 3 == 0 else 100
    db.execute("BEGIN")
    db.execute(f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
                   INSERT INTO mem(id, what, embedding)
                   SELECT 'b{b}-' || i, 'batch {b}', engram_random_vector({dim}, {b} * 100000 + i) FROM n""")
    if b > 1:
        db.execute(f"UPDATE mem SET what = 'updated by {b}' WHERE id = 'b{b - 1}-1'")
    db.execute("COMMIT")
    print(b, flush=True)
'''


def connect(path):
    db = sqlite3.connect(path, isolation_level=None)
    db.enable_load_extension(True)
    db.load_extension(ext)
    return db


rng = random.Random(seed)
failures = 0
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "crash.db")
    reported = set()
    # the store exists before the first child, so that a kill during start-up still checks it
    db = connect(path)
    db.execute(f"CREATE VIRTUAL TABLE mem USING engram({OPTIONS})")
    db.close()
    for k in range(kills):
        child = subprocess.Popen([sys.executable, "-c", CHILD, ext, path, str(DIM), OPTIONS],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.3, 1.0))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate()
        if "Error" in err:
            print(f"kill {k}: child failed: {err.strip()}")
            failures += 1
            break
        reported.update(int(x) for x in out.split())
        db = connect(path)
        counts = dict(db.execute(
            "SELECT CAST(substr(id, 2, instr(id, '-') - 2) AS INTEGER) AS b, count(*) "
            "FROM mem GROUP BY b").fetchall())
        total = db.execute("SELECT count(*) FROM mem").fetchone()[0]
        updated = dict(db.execute(
            "SELECT CAST(substr(what, 12) AS INTEGER), id FROM mem "
            "WHERE what LIKE 'updated by %'").fetchall())
        episodes, hot = db.execute("SELECT episodes, hot FROM engram_stats('mem')").fetchone()
        db.close()
        problems = []
        for b, c in counts.items():
            if c != rows(b):
                problems.append(f"batch {b} is partial: {c} of {rows(b)} rows")
            if b > 1 and (b - 1) in counts and updated.get(b) != f"b{b - 1}-1":
                problems.append(f"batch {b} is there without its update")
        for b in updated:
            if b not in counts:
                problems.append(f"the update of missing batch {b} is there")
        for b in reported:
            if counts.get(b) != rows(b):
                problems.append(f"committed batch {b} is missing")
        unreported = sorted(set(counts) - reported)
        if len(unreported) > 1 or (unreported and unreported[0] != max(reported | {0}) + 1):
            problems.append(f"unreported batches present: {unreported}")
        if not (episodes == total == hot):
            problems.append(f"engine sees {episodes} episodes ({hot} hot), store has {total} rows")
        reported.update(unreported)  # the in-flight batch did commit: it must stay
        if problems:
            failures += 1
            print(f"kill {k}: " + "; ".join(problems))
    print(f"{kills} kills, {len(reported)} batches committed and verified")
print(f"{kills - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
