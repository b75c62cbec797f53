#!/usr/bin/python3
"""CLI test: `engram load` of jsonl, csv, npy (float32 and float64) and fvecs files, resuming
(rows already stored by id are skipped), a bad row stopping the load with its position,
progress output (plain lines off a terminal, a bar with --progress bar), and `engram stats`.

Usage: load_test.py BUILD/engram
"""
import json
import os
import sqlite3
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import check, finish, tmpdir, vec  # noqa: E402

binary = sys.argv[1]
ext = os.path.join(os.path.dirname(binary), "engram")
d = tmpdir()
db = os.path.join(d, "load.db")
DIM = 8


def run(*args):
    p = subprocess.run([binary, *args], capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()  # keeps \r (no universal newlines)


def query(sql, *params):
    c = sqlite3.connect(db, isolation_level=None)
    c.enable_load_extension(True)
    c.load_extension(ext)
    rows = c.execute(sql, params).fetchall()
    c.close()
    return rows


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


# ---- jsonl, then resume ------------------------------------------------------------------------
rows = [{"id": f"j{i}", "what": f"note {i}", "embedding": vec(i, DIM), "occurred_at": 1714557600 + i,
         "location": "Lisbon", "who": ["Ana"], "confidence": 0.8, "metadata": {"n": i}} for i in range(150)]
write_jsonl(os.path.join(d, "part.jsonl"), rows[:100])
write_jsonl(os.path.join(d, "all.jsonl"), rows)
rc, out, err = run("load", "--db", db, "--table", "mem", "--create", "dim=8, dedup=off", "--batch", "30",
                   "--progress", "plain", os.path.join(d, "part.jsonl"))
check(rc == 0, f"jsonl load: {rc} {err}")
check("engram load: 100/100 rows (100.0%)" in err and "100 rows inserted, 0 already stored" in err,
      f"plain progress lines and summary: {err}")
check("\r" not in err, "no carriage returns when not a terminal")
rc, out, err = run("load", "--db", db, "--table", "mem", "--batch", "30", os.path.join(d, "all.jsonl"))
check(rc == 0 and "50 rows inserted, 100 already stored (skipped)" in err, f"resume: {err}")
check(query("SELECT count(*) FROM mem WHERE tier = 'hot'") == [(150,)], "150 episodes")
check(query("SELECT what, location, who, json_extract(metadata, '$.n') FROM mem WHERE id = 'j7'")
      == [("note 7", "Lisbon", '["Ana"]', 7)], "jsonl fields stored")

# ---- a bad row stops the load; fixing it and rerunning resumes ---------------------------------
bad = [{"id": f"b{i}", "embedding": vec(500 + i, DIM)} for i in range(100)]
bad[75]["embedding"] = [1, 2, 3]
write_jsonl(os.path.join(d, "bad.jsonl"), bad)
rc, out, err = run("load", "--db", db, "--table", "bad", "--create", "dim=8, dedup=off", "--batch", "10",
                   "--progress", "none", os.path.join(d, "bad.jsonl"))
check(rc == 1 and f"{os.path.join(d, 'bad.jsonl')}:76: row 'b75', column embedding: expected 8 dimensions, got 3" in err
      and "70 rows were committed before this batch" in err, f"bad row: {rc} {err}")
check(query("SELECT count(*) FROM bad WHERE tier = 'hot'") == [(70,)], "the batches before it stay")
bad[75]["embedding"] = vec(575, DIM)
write_jsonl(os.path.join(d, "bad.jsonl"), bad)
rc, out, err = run("load", "--db", db, "--table", "bad", "--batch", "10", os.path.join(d, "bad.jsonl"))
check(rc == 0 and "30 rows inserted, 70 already stored" in err, f"resume after the fix: {err}")

# ---- csv (quoted fields with commas and quotes), progress bar ----------------------------------
with open(os.path.join(d, "eps.csv"), "w") as f:
    f.write("id,what,embedding,confidence,occurred_at\n")
    for i in range(20):
        emb = json.dumps(vec(1000 + i, DIM))
        f.write(f'c{i},"said ""hi"", then left {i}","{emb}",0.7,2024-05-01T10:00:00Z\n')
rc, out, err = run("load", "--db", db, "--table", "csvt", "--create", "dim=8, dedup=off", "--progress", "bar",
                   os.path.join(d, "eps.csv"))
check(rc == 0 and "\r100% [" in err and "20/20 rows" in err and "ETA" in err, f"csv with a bar: {rc} {err!r}")
check(query("SELECT what, confidence, occurred_at FROM csvt WHERE id = 'c3'")
      == [('said "hi", then left 3', 0.7, "2024-05-01T10:00:00Z")], "csv fields stored")
with open(os.path.join(d, "wrong.csv"), "w") as f:
    f.write("id,colour\nx,red\n")
rc, out, err = run("load", "--db", db, "--table", "csvt", os.path.join(d, "wrong.csv"))
check(rc == 1 and "wrong.csv:1: unknown column 'colour'" in err, f"csv unknown column: {err}")

# ---- npy (float32 and float64) and fvecs ---------------------------------------------------------
def write_npy(path, data, dtype):
    n, dim = len(data), len(data[0])
    header = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': ({n}, {dim}), }}"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    fmt = "f" if dtype == "<f4" else "d"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        for row in data:
            f.write(struct.pack(f"<{dim}{fmt}", *row))


vecs = [vec(2000 + i, DIM) for i in range(50)]
write_npy(os.path.join(d, "vecs.npy"), vecs, "<f4")
rc, out, err = run("load", "--db", db, "--table", "npyt", "--create", "dedup=off", os.path.join(d, "vecs.npy"))
check(rc == 0 and "created table npyt (dim=8, dedup=off)" in err and "50 rows inserted" in err, f"npy: {err}")
blob = query("SELECT embedding FROM npyt WHERE id = 'vecs-7'")[0][0]
check(list(struct.unpack(f"<{DIM}f", blob)) == list(struct.unpack(f"<{DIM}f", struct.pack(f"<{DIM}f", *vecs[7]))),
      "npy row 7 stored exactly")
write_npy(os.path.join(d, "v64.npy"), vecs[:10], "<f8")
rc, out, err = run("load", "--db", db, "--table", "npyt", "--id-prefix", "d", os.path.join(d, "v64.npy"))
check(rc == 0 and "10 rows inserted" in err and query("SELECT count(*) FROM npyt WHERE id = 'd9'") == [(1,)],
      f"npy float64: {err}")
with open(os.path.join(d, "v.npy"), "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", 54) + b"{'descr': '<i4', 'fortran_order': False, 'shape': (1, 8), }"[:54])
rc, out, err = run("load", "--db", db, "--table", "npyt", os.path.join(d, "v.npy"))
check(rc == 1 and "unsupported dtype '<i4'" in err, f"npy dtype: {err}")

with open(os.path.join(d, "base.fvecs"), "wb") as f:
    for i in range(40):
        f.write(struct.pack("<i", DIM) + struct.pack(f"<{DIM}f", *vec(3000 + i, DIM)))
rc, out, err = run("load", "--db", db, "--table", "fv", "--create", "dedup=off", "--batch", "16",
                   os.path.join(d, "base.fvecs"))
check(rc == 0 and "40 rows inserted" in err, f"fvecs: {err}")
rc, out, err = run("load", "--db", db, "--table", "fv", os.path.join(d, "base.fvecs"))
check(rc == 0 and "0 rows inserted, 40 already stored" in err, f"fvecs resume: {err}")
check(query("SELECT count(*) FROM fv WHERE tier = 'hot'") == [(40,)], "40 fvecs rows")

# ---- errors and stats --------------------------------------------------------------------------
rc, out, err = run("load", "--db", db, "--table", "mem", os.path.join(d, "x.parquet"))
check(rc == 1 and "no such file" in err, f"missing file: {err}")
open(os.path.join(d, "x.parquet"), "w").close()
rc, out, err = run("load", "--db", db, "--table", "mem", os.path.join(d, "x.parquet"))
check(rc == 2 and "unknown format 'parquet'" in err, f"unknown format: {err}")
rc, out, err = run("load", "--db", db, "--table", "ghost", os.path.join(d, "all.jsonl"))
check(rc == 1 and "no such engram table: 'ghost'" in err, f"absent table: {err}")
rc, out, err = run("load", "--db", db, "--table", "mem", "--batch", "0", os.path.join(d, "all.jsonl"))
check(rc == 2 and "--batch: expected an integer" in err, f"bad --batch: {err}")
rc, out, err = run("stats", "--db", db, "--table", "mem")
check(rc == 0 and "table mem" in out and any(l.split() == ["episodes", "150"] for l in out.splitlines())
      and any(l.split()[:1] == ["pressure"] and l.endswith("%") for l in out.splitlines()), f"stats: {out}")
rc, out, err = run("stats", "--db", db)
check(rc == 0 and all(f"table {t}" in out for t in ("mem", "bad", "csvt", "npyt", "fv")), "stats of every table")
rc, out, err = run("stats", "--db", db, "--table", "nope")
check(rc == 1 and "no such engram table: 'nope'" in err, f"stats unknown table: {err}")
rc, out, err = run("stats")
check(rc == 2 and "--db is required" in err, f"stats without --db: {err}")
finish("server load")
