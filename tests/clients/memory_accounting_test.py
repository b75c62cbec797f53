#!/usr/bin/python3
"""Memory accounting: engram_debug()'s `memory: {...}` line names every resident part of the
open stores, each a non-negative integer, and its total tracks the process's RSS growth.

A fresh child process (Debian's python3, sqlite3 module, autocommit mode: isolation_level=None
with explicit BEGIN/COMMIT) opens a file-backed store with default options but dim=512, reads
the section, stores ROWS random episodes (one large transaction, then smaller ones that delete
and store again, so that slots are reused and the graph holds tombstones), waits for the graph
index, and reads the section again. Checks:
  - before any store is open the section exists with "stores": 0;
  - every field is a non-negative integer and "total" is the sum of the parts;
  - the graph keeps no float rows (graph_rows = 0) while the hot tier holds every vector;
  - the growth of "total" is within 10 % of the growth of the process's RSS (/proc/self/statm).
Usage: memory_accounting_test.py BUILD/engram
"""
import json
import subprocess
import sys
import tempfile

ext = sys.argv[1]
ROWS, DIM, CHURN = 60000, 512, 4000

CHILD = r'''
import json, os, sqlite3, sys
ext, path, rows, dim, churn = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
db = sqlite3.connect(path, isolation_level=None)
db.enable_load_extension(True)
db.load_extension(ext)
def memory():
    text = db.execute("SELECT engram_debug()").fetchone()[0]
    lines = [l for l in text.splitlines() if l.startswith("memory: ")]
    return json.loads(lines[0][len("memory: "):]) if len(lines) == 1 else None
empty = memory()
db.execute(f"CREATE VIRTUAL TABLE mem USING engram(dim={dim})")
db.execute(f"SELECT engram_random_vector({dim}, 1)").fetchone()
m0 = memory()
r0 = rss()
def insert(first, last):
    db.execute(f"WITH RECURSIVE n(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM n "
               f"WHERE i < {last}) INSERT INTO mem(id, embedding) "
               f"SELECT 'e' || i, engram_random_vector({dim}, i) FROM n")
db.execute("BEGIN")
insert(1, rows)
db.execute("COMMIT")
for k in range(4):
    db.execute("BEGIN")
    db.execute(f"DELETE FROM mem WHERE id IN (SELECT 'e' || (i * 10 + {k}) FROM (WITH RECURSIVE "
               f"n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {churn // 4}) "
               "SELECT i FROM n))")
    insert(rows + 1 + k * (churn // 4), rows + (k + 1) * (churn // 4))
    db.execute("COMMIT")
db.execute("SELECT engram_index_wait('mem')").fetchone()
m1 = memory()
r1 = rss()
count = db.execute("SELECT count(*) FROM mem").fetchone()[0]
print(json.dumps({"empty": empty, "before": m0, "after": m1, "rss_growth": r1 - r0,
                  "count": count}))
'''

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


with tempfile.TemporaryDirectory() as d:
    out = subprocess.run(["/usr/bin/python3", "-c", CHILD, ext, f"{d}/m.db", str(ROWS), str(DIM),
                          str(CHURN)], capture_output=True, text=True)
if out.returncode != 0:
    print(out.stderr)
    sys.exit(1)
r = json.loads(out.stdout)
empty, before, after = r["empty"], r["before"], r["after"]
check(empty is not None and empty["stores"] == 0, f"section without a store: {empty}")
PARTS = ["hot_tier", "ids", "texts", "graph_links", "graph_codes", "graph_rows", "graph_labels",
         "index_queue", "dedup_index", "recall_indexes", "edges", "commit_scratch", "memtables",
         "staging", "block_cache", "table_readers", "allocator_free"]
for name, m in (("before", before), ("after", after)):
    check(m is not None, f"no memory line {name}")
    if m is None:
        continue
    check(m["stores"] == 1, f"{name}: stores {m['stores']}")
    for p in PARTS + ["total", "rss"]:
        check(isinstance(m.get(p), int) and m[p] >= 0, f"{name}: {p} = {m.get(p)!r}")
    check(m["total"] == sum(m[p] for p in PARTS), f"{name}: total is not the sum of the parts")
check(r["count"] == ROWS, f"count {r['count']} != {ROWS}")
if after is not None and before is not None:
    check(after["graph_rows"] == 0, f"the graph keeps float rows: {after['graph_rows']}")
    check(after["hot_tier"] >= ROWS * DIM * 4, f"hot tier {after['hot_tier']} < the vectors")
    check(after["graph_codes"] >= ROWS * DIM, f"graph codes {after['graph_codes']} < one a dim")
    grown = after["total"] - before["total"]
    rss = r["rss_growth"]
    ratio = grown / rss if rss > 0 else 0.0
    print(f"accounted growth {grown / 2**20:.1f} MiB, RSS growth {rss / 2**20:.1f} MiB, "
          f"ratio {ratio:.3f}")
    print(json.dumps({p: after[p] - before[p] for p in PARTS}))
    check(0.9 <= ratio <= 1.1, f"accounted / RSS growth = {ratio:.3f}, outside [0.9, 1.1]")
if failures:
    print("FAILED:\n  " + "\n  ".join(failures))
    sys.exit(1)
print("memory accounting: ok")
