-- The graph index is snapshotted into the store's `index` family when the store closes and
-- reused on open when it matches the data (memories not indexed yet are queued again).
.load ./build/engram
CREATE VIRTUAL TABLE mem USING engram(dim=16, dedup=off);
CREATE TABLE src AS
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
  SELECT 'v' || i AS id, engram_random_vector(16, i) AS e FROM n;
INSERT INTO mem(id, embedding) SELECT id, e FROM src;
DELETE FROM mem WHERE id IN ('v5', 'v6', 'v7');
INSERT INTO mem(id, embedding) VALUES ('x1', engram_random_vector(16, 99999));
SELECT 'before', hot, engram_index_wait('mem') FROM engram_stats('mem');
.open test.db
.load ./build/engram
-- indexed at once: nothing to rebuild
SELECT 'reopened', hot, indexed FROM engram_stats('mem');
-- every memory is still found by its own vector; deleted ones are gone
SELECT 'self hits', sum((SELECT s.id FROM engram_similar('mem', src.e, 1) AS s) = src.id)
  FROM src WHERE src.id NOT IN ('v5', 'v6', 'v7');
SELECT 'deleted found', count(*) FROM src, engram_similar('mem', src.e, 1) AS s
  WHERE src.id IN ('v5', 'v6', 'v7') AND s.id = src.id;
SELECT 'x1', id FROM engram_similar('mem', engram_random_vector(16, 99999), 1);
SELECT * FROM engram_stats('nope');
SELECT engram_index_wait('nope');
