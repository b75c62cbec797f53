-- Bad input gets an error naming the culprit, and changes nothing.
.load ./build/engram
CREATE VIRTUAL TABLE mem USING engram(dim=3);
INSERT INTO mem(id, embedding) VALUES ('good', '[1, 2, 3]');
-- embeddings
INSERT INTO mem(id, embedding) VALUES ('short', '[1, 2]');
INSERT INTO mem(id, embedding) VALUES ('blob', X'0000803F0000803F');
INSERT INTO mem(id, embedding) VALUES ('odd', X'0000803F00');
INSERT INTO mem(id, embedding) VALUES ('nan', X'0000C07F0000803F0000803F');
INSERT INTO mem(id, embedding) VALUES ('inf', '[1e39, 0, 0]');
INSERT INTO mem(id, embedding) VALUES ('json', '[1, 2,');
INSERT INTO mem(id, embedding) VALUES ('json2', '[1, "a", 3]');
INSERT INTO mem(id, embedding) VALUES ('json3', '{"a": 1}');
INSERT INTO mem(id, embedding) VALUES ('none', NULL);
INSERT INTO mem(id, embedding) VALUES ('int', 42);
-- ids
INSERT INTO mem(id, embedding) VALUES (NULL, '[1, 2, 3]');
INSERT INTO mem(id, embedding) VALUES ('', '[1, 2, 3]');
INSERT INTO mem(id, embedding) VALUES ('good', '[3, 2, 1]');
-- other columns
INSERT INTO mem(id, embedding, occurred_at) VALUES ('t1', '[1, 2, 3]', 'next tuesday');
INSERT INTO mem(id, embedding, occurred_at) VALUES ('t2', '[1, 2, 3]', '2024-02-30');
INSERT INTO mem(id, embedding, confidence) VALUES ('c1', '[1, 2, 3]', 1.5);
INSERT INTO mem(id, embedding, confidence) VALUES ('c2', '[1, 2, 3]', 'high');
INSERT INTO mem(id, embedding, vividness) VALUES ('v1', '[1, 2, 3]', -0.1);
INSERT INTO mem(id, embedding, who) VALUES ('w1', '[1, 2, 3]', 'Ana');
INSERT INTO mem(id, embedding, who) VALUES ('w2', '[1, 2, 3]', '["Ana", 3]');
INSERT INTO mem(id, embedding, metadata) VALUES ('m1', '[1, 2, 3]', '{"a": ');
INSERT INTO mem(id, embedding, metadata) VALUES ('m2', '[1, 2, 3]', '[1, 2]');
INSERT INTO mem(id, embedding, activation) VALUES ('r1', '[1, 2, 3]', 0.5);
INSERT INTO mem(id, embedding, tier) VALUES ('r2', '[1, 2, 3]', 'cold');
UPDATE mem SET embedding = '[1, 2]' WHERE id = 'good';
UPDATE mem SET stored_at = 0 WHERE id = 'good';
-- one bad row in a large batch: the whole transaction's statement fails, nothing is stored
CREATE TABLE staging AS
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
  SELECT 'b' || i AS id, CASE WHEN i = 1234 THEN '[1, 2]' ELSE engram_vector_json(engram_random_vector(3, i)) END AS e FROM n;
INSERT INTO mem(id, embedding) SELECT id, e FROM staging;
SELECT count(*), group_concat(id) FROM mem;
-- table-valued functions
SELECT * FROM engram_similar('nope', '[1, 2, 3]', 3);
SELECT * FROM engram_similar('staging', '[1, 2, 3]', 3);
SELECT * FROM engram_similar(42, '[1, 2, 3]', 3);
SELECT * FROM engram_similar('mem', '[1, 2]', 3);
SELECT * FROM engram_similar('mem', '[1, 2, 3]', -1);
SELECT * FROM engram_similar('mem', '[1, 2, 3]', 'ten');
SELECT * FROM engram_similar('mem', '[1, 2, 3]', 3, 'high');
SELECT * FROM engram_similar('mem', '[1, 2, 3]');
SELECT * FROM engram_stats('nope');
SELECT * FROM engram_batches();
-- scalar functions
SELECT engram_vector('[1, 2');
SELECT engram_vector(X'00');
SELECT engram_cosine('[1, 2]', '[1, 2, 3]');
SELECT engram_random_vector(0, 1);
SELECT engram_random_vector(4, 'x');
SELECT count(*) FROM mem;
