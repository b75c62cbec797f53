#!/usr/bin/python3
"""Bounded memory: one INSERT ... SELECT larger than batch_memory costs the process no more
memory than the same rows committed in many small transactions, plus the budget.

Each measurement runs in a fresh child process (Debian's python3, sqlite3 module, autocommit
mode: isolation_level=None with explicit BEGIN/COMMIT), which inserts ROWS random DIM-d
episodes into a file-backed store, waits for the graph index, and reports its peak RSS growth
(VmHWM after the run minus VmRSS before it). Runs:
  many     ROWS in transactions of 1000 rows (never staged, each one write through the WAL,
           as small commits are): the baseline, whose growth is the store itself (hot tier,
           index, RocksDB memtables);
  bounded  ROWS in one transaction with batch_memory=8MB: staged on disk, published in chunks;
  control  ROWS in one transaction with batch_memory=2GB: held in memory (shows that the
           measurement sees a transaction's memory, so the bounded check can fail).
Usage: bounded_memory_test.py BUILD/engram
"""
import json
import os
import subprocess
import sys
import tempfile

ext = sys.argv[1]
# The slack: both runs peak while the graph index is built, after the last COMMIT; built after
# one large commit rather than interleaved with small ones, the allocator keeps ~40 MB more
# (measured by sampling RSS through both runs). A transaction held in memory shows as +250 MB
# (the control).
ROWS, DIM, BUDGET_MB, SLACK_MB = 100000, 256, 8, 64

CHILD = r'''
import json, os, sqlite3, sys
ext, path, mode, budget, rows, dim = sys.argv[1:7]
rows, dim = int(rows), int(dim)
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
db = sqlite3.connect(path, isolation_level=None)
db.enable_load_extension(True)
db.load_extension(ext)
db.execute(f"CREATE VIRTUAL TABLE mem USING engram(dim={dim}, dedup=off, sync=off, "
           f"batch_memory='{budget}', m=8, ef_construction=16)")
db.execute("SELECT engram_random_vector(?, 1)", (dim,)).fetchone()
base = status("VmRSS")
insert = (f"INSERT INTO mem(id, embedding) SELECT 'e' || i, engram_random_vector({dim}, i) "
          "FROM n")
step = rows if mode != "many" else 1000
for start in range(0, rows, step):
    db.execute("BEGIN")
    db.execute(f"WITH RECURSIVE n(i) AS (SELECT {start + 1} UNION ALL SELECT i + 1 FROM n "
               f"WHERE i < {start + step}) " + insert)
    db.execute("COMMIT")
db.execute("SELECT engram_index_wait('mem')").fetchone()
staged, chunks = db.execute("SELECT max(staged), max(chunks) FROM engram_batches('mem')").fetchone()
count = db.execute("SELECT count(*) FROM mem").fetchone()[0]
print(json.dumps({"growth": status("VmHWM") - base, "staged": staged, "chunks": chunks,
                  "count": count}))
'''


def run(mode, budget):
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, "-c", CHILD, ext, os.path.join(d, "t.db"), mode,
                              budget, str(ROWS), str(DIM)],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.exit(f"FAIL: the {mode} run failed: {out.stderr.strip()}")
        r = json.loads(out.stdout)
        print(f"{mode:8} batch_memory={budget:5}: peak RSS growth {r['growth'] / 2**20:6.0f} MB, "
              f"staged {r['staged']}, chunks {r['chunks']}, rows {r['count']}")
        return r


many = run("many", f"{BUDGET_MB}MB")
bounded = run("bounded", f"{BUDGET_MB}MB")
control = run("control", "2GB")
failures = []
for name, r in (("many", many), ("bounded", bounded), ("control", control)):
    if r["count"] != ROWS:
        failures.append(f"{name}: {r['count']} rows stored, expected {ROWS}")
if not (bounded["staged"] > 0 and bounded["chunks"] > 1):
    failures.append(f"bounded: the transaction was not staged ({bounded})")
if many["staged"] != 0 or control["staged"] != 0 or control["chunks"] != 1:
    failures.append("many/control: expected no staging and one write for the control")
limit = many["growth"] + (BUDGET_MB + SLACK_MB) * 2**20
if bounded["growth"] > limit:
    failures.append(f"bounded: grew {bounded['growth'] / 2**20:.0f} MB, more than the baseline "
                    f"{many['growth'] / 2**20:.0f} MB + budget {BUDGET_MB} MB + slack "
                    f"{SLACK_MB} MB")
# The control holds the transaction (ROWS x DIM floats, several copies) in memory.
if control["growth"] < bounded["growth"] + ROWS * DIM * 4:
    failures.append("control: an in-memory transaction did not show in the measurement, so "
                    "the bound above proves nothing")
for f in failures:
    print("FAIL: " + f)
print("bounded memory: " + ("FAILED" if failures else "ok"))
sys.exit(1 if failures else 0)
