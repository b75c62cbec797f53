-- Store semantics of DESIGN §2 through SQL: pressure, eviction to the cold tier, deduplication.
.load ./build/engram
.headers on
-- capacity 5: activation = confidence × (1 − 0.5 × count_before / 5)
CREATE VIRTUAL TABLE mem USING engram(dim=4, capacity=5, dedup=off);
BEGIN;
INSERT INTO mem(id, embedding, confidence) VALUES
  ('a', '[1, 0, 0, 0]', 0.9), ('b', '[0, 1, 0, 0]', 0.6), ('c', '[0, 0, 1, 0]', 0.8),
  ('d', '[0, 0, 0, 1]', 0.95), ('e', '[1, 1, 0, 0]', 0.7);
COMMIT;
SELECT id, round(activation, 6) AS activation, tier FROM mem;
-- full (pressure 1.0): the new episode gets 0.9 × 0.5 = 0.45; the lowest activation (e, 0.42) goes cold
INSERT INTO mem(id, embedding, confidence) VALUES ('f', '[1, 0, 1, 0]', 0.9);
SELECT id, round(activation, 6) AS activation, tier FROM mem;
SELECT episodes, hot, cold, pressure FROM engram_stats('mem');
-- cold memories stay readable by id but are not searched
SELECT id, tier FROM mem WHERE id = 'e';
SELECT id FROM engram_similar('mem', '[1, 1, 0, 0]', 10, 0.0) ORDER BY rank;
-- batch order is insertion order: two inserts while full evict the two weakest in turn
BEGIN;
INSERT INTO mem(id, embedding, confidence) VALUES ('g', '[0, 1, 1, 0]', 0.3), ('h', '[0, 0, 1, 1]', 0.3);
COMMIT;
SELECT id, round(activation, 6) AS activation, tier FROM mem;
SELECT batch, size, successful, degraded, deduplicated, evicted, peak_pressure FROM engram_batches('mem');

-- deduplication (threshold 0.95): higher confidence replaces, otherwise skipped (× 0.9)
CREATE VIRTUAL TABLE dd USING engram(dim=3);
INSERT INTO dd(id, what, embedding, confidence) VALUES ('old', 'first', '[1, 0, 0]', 0.6);
INSERT INTO dd(id, what, embedding, confidence) VALUES ('new', 'better', '[1, 0.1, 0]', 0.9);
SELECT id, what, round(activation, 6) AS activation FROM dd;
INSERT INTO dd(id, what, embedding, confidence) VALUES ('weak', 'same again', '[1, 0.05, 0]', 0.5);
SELECT id, what FROM dd;
INSERT INTO dd(id, what, embedding, confidence) VALUES ('far', 'different', '[0, 1, 0]', 0.5);
SELECT id, what FROM dd ORDER BY id;
SELECT batch, size, successful, deduplicated FROM engram_batches('dd');
-- within one batch too, in order
BEGIN;
INSERT INTO dd(id, embedding, confidence) VALUES ('x1', '[0, 0, 1]', 0.5), ('x2', '[0, 0.01, 1]', 0.7), ('x3', '[0, 0.02, 1]', 0.6);
COMMIT;
SELECT id FROM dd ORDER BY id;
