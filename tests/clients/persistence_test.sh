#!/usr/bin/env bash
# Persistence across processes: one sqlite3 process writes and exits; a second process reads
# everything back (records, activations, tiers, search); a third process runs while the second
# holds the store open and must get SQLITE_BUSY with a message saying the store is in use.
# Usage: persistence_test.sh SQLITE3 BUILD_DIR
set -euo pipefail
shell=$1
build=$(cd "$2" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
ln -s "$build" build
fail() { echo "FAIL: $*"; exit 1; }

"$shell" p.db <<'SQL'
.load ./build/engram
CREATE VIRTUAL TABLE mem USING engram(dim=32, capacity=50, dedup=off);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 80)
INSERT INTO mem(id, what, embedding, confidence)
  SELECT printf('k%03d', i), 'w' || i, engram_random_vector(32, i), 0.5 + (i % 5) / 10.0 FROM n;
COMMIT;
CREATE VIRTUAL TABLE links USING engram_edges(store=mem);
INSERT INTO links VALUES ('k001', 'k002', 0.8), ('k002', 'k003', 1.0);
SQL
[[ -d p.db-mem.engram ]] || fail "store directory p.db-mem.engram missing"

out=$("$shell" p.db <<'SQL'
.load ./build/engram
SELECT count(*), sum(tier = 'hot'), sum(tier = 'cold') FROM mem;
SELECT episodes, hot, cold FROM engram_stats('mem');
SELECT sum((SELECT s.id FROM engram_similar('mem', h.embedding, 1) AS s) = h.id)
  FROM mem AS h WHERE h.tier = 'hot';
SELECT count(*) FROM mem AS c
  WHERE c.tier = 'cold' AND c.id IN (SELECT id FROM engram_similar('mem', c.embedding, 5));
SELECT what FROM mem WHERE id = 'k003';
SELECT count(*) FROM links;
SELECT group_concat(id || ':' || depth) FROM engram_spread('mem', json_array('k001'), 3);
SQL
)
# every hot memory is found by its own vector; no cold (evicted) memory is ever returned
expected=$'80|50|30\n80|50|30\n50\n0\nw3\n2\nk001:0,k002:1,k003:2'
[[ "$out" == "$expected" ]] || fail "read back: got [$out], expected [$expected]"

# The last clean close saved the graph: the next open loads it.
out=$("$shell" p.db <<'SQL'
.load ./build/engram
SELECT index_source FROM engram_stats('mem');
SQL
)
[[ "$out" == "snapshot" ]] || fail "clean reopen: index from [$out], expected [snapshot]"

# A crash after a commit leaves the graph snapshot of the last clean close behind, now stale:
# the next open must notice (data version) and re-index what changed instead of trusting it:
# here a new memory (which evicts one: capacity 50) and a hot memory's new embedding.
("$shell" p.db >/dev/null 2>&1 <<'SQL' || true
.load ./build/engram
INSERT INTO mem(id, what, embedding, confidence) VALUES ('late', 'after the snapshot', engram_random_vector(32, 4242), 1.0);
UPDATE mem SET embedding = engram_random_vector(32, 777)
  WHERE id = (SELECT min(id) FROM mem WHERE tier = 'hot' AND id <> 'late');
.shell kill -9 $PPID
SQL
) 2>/dev/null
out=$("$shell" p.db <<'SQL'
.load ./build/engram
SELECT index_source FROM engram_stats('mem');
SELECT count(*), sum(tier = 'hot') FROM mem;
SELECT id FROM engram_similar('mem', engram_random_vector(32, 4242), 1);
SELECT s.id = (SELECT min(id) FROM mem WHERE tier = 'hot' AND id <> 'late')
  FROM engram_similar('mem', engram_random_vector(32, 777), 1) AS s;
SELECT engram_index_wait('mem') = hot FROM engram_stats('mem');
SELECT sum((SELECT s.id FROM engram_similar('mem', h.embedding, 1) AS s) = h.id)
  FROM mem AS h WHERE h.tier = 'hot';
SELECT count(*) FROM mem AS c
  WHERE c.tier = 'cold' AND c.id IN (SELECT id FROM engram_similar('mem', c.embedding, 5));
SQL
)
expected=$'snapshot, 2 re-indexed\n81|50\nlate\n1\n1\n50\n0'
[[ "$out" == "$expected" ]] || fail "after a crash: got [$out], expected [$expected]"

# A second process may not open a store another process holds.
mkfifo hold
("$shell" p.db < hold > holder.out 2>&1 &)
exec 3>hold
echo ".load ./build/engram" >&3
echo "SELECT count(*) FROM mem;" >&3
for _ in $(seq 50); do [[ -s holder.out ]] && break; sleep 0.1; done
busy=$("$shell" p.db 2>&1 <<'SQL' || true
.load ./build/engram
SELECT count(*) FROM mem;
SQL
)
exec 3>&-
grep -q "is in use by another process" <<<"$busy" || fail "second process: got [$busy]"
echo "persistence: all checks passed"
