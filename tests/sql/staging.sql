-- Transactions larger than half of batch_memory are staged on disk and published in chunks;
-- the backpressure strategies change how, never what is stored.
.load ./build/engram
.headers on
CREATE VIRTUAL TABLE mem USING engram(dim=64, batch_memory='1MB', sync=off);

.print '-- a staged transaction reads its own writes'
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
INSERT INTO mem(id, what, embedding, confidence)
SELECT printf('e%05d', i), 'row ' || i, engram_random_vector(64, i), 0.5 + (i % 5) / 10.0 FROM n;
SELECT staged > 4000 AS staged_on_disk FROM engram_stats('mem');
SELECT id, what, confidence, tier FROM mem WHERE id = 'e00010';
SELECT count(*), min(id), max(id), round(sum(confidence), 3) FROM mem;
UPDATE mem SET what = 'changed', confidence = 0.95 WHERE id = 'e00010';
DELETE FROM mem WHERE id = 'e00011';
SELECT id, what, confidence FROM mem WHERE id IN ('e00010', 'e00011', 'e00012');
INSERT INTO mem(id, embedding) VALUES ('e00012', engram_random_vector(64, 99));
INSERT OR IGNORE INTO mem(id, what, embedding) VALUES ('e00013', 'ignored', engram_random_vector(64, 99));
INSERT INTO mem(id, what, embedding) VALUES ('e00011', 'again', engram_random_vector(64, 11));
INSERT OR REPLACE INTO mem(id, what, embedding) VALUES ('e00014', 'replaced', engram_random_vector(64, 14));
SELECT id, what FROM mem WHERE id BETWEEN 'e00010' AND 'e00014' ORDER BY id;
SELECT count(*) FROM mem;

.print '-- a bad row in a large statement undoes that statement only'
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
INSERT INTO mem(id, embedding)
SELECT printf('f%05d', i), CASE WHEN i = 2500 THEN '[1, 2]' ELSE engram_random_vector(64, i) END
FROM n;
SELECT count(*) FROM mem;
SELECT count(*) FROM mem WHERE id LIKE 'f%';
COMMIT;
SELECT size, staged > 0 AS staged, chunks > 1 AS chunked, mode FROM engram_batches('mem');
SELECT count(*), min(id), max(id), round(sum(confidence), 3) FROM mem;
SELECT id, what, confidence, tier FROM mem WHERE id BETWEEN 'e00010' AND 'e00014' ORDER BY id;
SELECT staged FROM engram_stats('mem');

.print '-- ROLLBACK of a staged transaction leaves nothing'
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000)
INSERT INTO mem(id, embedding) SELECT printf('g%05d', i), engram_random_vector(64, i) FROM n;
DELETE FROM mem WHERE id = 'e00001';
SELECT staged > 0 AS staged_on_disk FROM engram_stats('mem');
ROLLBACK;
SELECT count(*), count(*) FILTER (WHERE id LIKE 'g%') AS g, max(id = 'e00001') AS e1 FROM mem;
SELECT staged FROM engram_stats('mem');

.print '-- every strategy stores the same thing (duplicates, pressure, evictions)'
CREATE VIRTUAL TABLE ref USING engram(dim=64, capacity=2000, dedup=0.95, batch_memory='1GB');
CREATE VIRTUAL TABLE blk USING engram(dim=64, capacity=2000, dedup=0.95, batch_memory='1MB',
                                      backpressure=block, max_unindexed=100);
CREATE VIRTUAL TABLE ada USING engram(dim=64, capacity=2000, dedup=0.95, batch_memory='1MB',
                                      backpressure=adaptive_resize, max_unindexed=100);
CREATE VIRTUAL TABLE fal USING engram(dim=64, capacity=2000, dedup=0.95, batch_memory='1MB',
                                      backpressure=fallback, max_unindexed=100);
CREATE TABLE src AS
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
SELECT printf('s%05d', i) AS id,
       engram_random_vector(64, CASE WHEN i % 10 = 0 THEN i - 1 ELSE i END) AS embedding,
       0.3 + (i % 7) / 10.0 AS confidence
FROM n;
INSERT INTO ref(id, embedding, confidence) SELECT id, embedding, confidence FROM src;
INSERT INTO blk(id, embedding, confidence) SELECT id, embedding, confidence FROM src;
INSERT INTO ada(id, embedding, confidence) SELECT id, embedding, confidence FROM src;
INSERT INTO fal(id, embedding, confidence) SELECT id, embedding, confidence FROM src;
SELECT 'ref' AS store, size, deduplicated, evicted, chunks, mode FROM engram_batches('ref')
UNION ALL SELECT 'block', size, deduplicated, evicted, chunks > 1, mode FROM engram_batches('blk')
UNION ALL SELECT 'adaptive', size, deduplicated, evicted, chunks > 1, mode FROM engram_batches('ada')
UNION ALL SELECT 'fallback', size, deduplicated, evicted, chunks > 1, mode FROM engram_batches('fal');
SELECT count(*) AS rows, sum(r.tier = 'cold') AS cold,
       sum(b.activation IS NOT r.activation OR b.tier IS NOT r.tier) AS block_diff,
       sum(a.activation IS NOT r.activation OR a.tier IS NOT r.tier) AS adaptive_diff,
       sum(f.activation IS NOT r.activation OR f.tier IS NOT r.tier) AS fallback_diff
FROM ref r LEFT JOIN blk b USING (id) LEFT JOIN ada a USING (id) LEFT JOIN fal f USING (id);
SELECT (SELECT count(*) FROM blk) AS blk, (SELECT count(*) FROM ada) AS ada,
       (SELECT count(*) FROM fal) AS fal;

.print '-- block waits for the index builder before the next commit; the others do not'
CREATE VIRTUAL TABLE blk2 USING engram(dim=64, backpressure=block, max_unindexed=100);
CREATE VIRTUAL TABLE ada2 USING engram(dim=64, backpressure=adaptive_resize, max_unindexed=100);
INSERT INTO blk2(id, embedding) SELECT id, embedding FROM src;
INSERT INTO blk2(id, embedding) VALUES ('late', engram_random_vector(64, 123456));
SELECT waited_ms > 0 AS waited FROM engram_batches('blk2') WHERE batch = 2;
SELECT hot - indexed <= 101 AS tail_within_limit FROM engram_stats('blk2');
INSERT INTO ada2(id, embedding) SELECT id, embedding FROM src;
INSERT INTO ada2(id, embedding) VALUES ('late', engram_random_vector(64, 123456));
SELECT waited_ms AS waited FROM engram_batches('ada2') WHERE batch = 2;
SELECT backpressure, batch_memory, max_unindexed FROM engram_stats('fal');

.print '-- option errors'
CREATE VIRTUAL TABLE bad1 USING engram(dim=4, batch_memory='12 parsecs');
CREATE VIRTUAL TABLE bad2 USING engram(dim=4, batch_memory='512KB');
CREATE VIRTUAL TABLE bad3 USING engram(dim=4, backpressure=drop);
CREATE VIRTUAL TABLE bad4 USING engram(dim=4, max_unindexed=-1);
INSERT INTO mem(id, embedding) VALUES (CAST(X'610062' AS TEXT), engram_random_vector(64, 1));
