-- Similarity search through the graph index (merged with an exact scan of what is not indexed
-- yet): recall against exact results, batch search, filters on k / threshold, and errors.
.load ./build/engram
CREATE VIRTUAL TABLE mem USING engram(dim=16, dedup=off);
CREATE TABLE src AS
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000)
  SELECT 'v' || i AS id, engram_random_vector(16, i) AS e FROM n;
INSERT INTO mem(id, embedding) SELECT id, e FROM src;
CREATE TABLE q AS
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
  SELECT i AS qid, engram_random_vector(16, 900000 + i) AS e FROM n;
CREATE TABLE exact AS SELECT qid, id FROM (
  SELECT q.qid, src.id, row_number() OVER (PARTITION BY q.qid ORDER BY engram_cosine(src.e, q.e) DESC, src.id) AS r
  FROM q, src) WHERE r <= 10;
-- recall@10 of single and batch search against the exact top 10
SELECT 'single recall >= 0.95', count(*) / 400.0 >= 0.95
  FROM q, engram_similar('mem', q.e, 10) AS s JOIN exact ON exact.qid = q.qid AND exact.id = s.id;
SELECT 'batch recall >= 0.95', count(*) / 400.0 >= 0.95
  FROM engram_similar_batch('mem', 'SELECT qid, e FROM q', 10) AS s
  JOIN exact ON exact.qid = s.query_id AND exact.id = s.id;
-- batch = one statement per query (same ef, same index state)
SELECT 'batch rows', count(*), count(DISTINCT query_id), min(rank), max(rank)
  FROM engram_similar_batch('mem', 'SELECT qid, e FROM q', 10, 0.0, 200);
-- every stored vector finds itself first
SELECT 'self hits', sum(s.rank = 1 AND s.id = 'v' || s.query_id)
  FROM engram_similar_batch('mem', 'SELECT CAST(substr(id, 2) AS INTEGER), e FROM src WHERE rowid % 10 = 0', 1) AS s;
-- no cap on k; threshold filters
SELECT 'k=5000', count(*) FROM engram_similar('mem', (SELECT e FROM q WHERE qid = 1), 5000, -1.0);
SELECT 'threshold', count(*) = sum(confidence >= 0.5) FROM engram_similar('mem', (SELECT e FROM q WHERE qid = 1), 100, 0.5);
SELECT 'k=0', count(*) FROM engram_similar('mem', (SELECT e FROM q WHERE qid = 1), 0);
-- errors
SELECT * FROM engram_similar_batch('mem', 'SELECT qid FROM q', 2);
SELECT * FROM engram_similar_batch('mem', 'SELECT qid, x FROM q', 2);
SELECT * FROM engram_similar_batch('mem', 'SELECT 7, ''[1, 2]''', 2);
SELECT * FROM engram_similar_batch('mem', 'SELECT qid, e FROM q');
SELECT * FROM engram_similar_batch('mem', 'SELECT qid, e FROM q', 2, 0.0, 0);
SELECT * FROM engram_similar_batch('nope', 'SELECT qid, e FROM q', 2);
CREATE VIEW v AS SELECT * FROM engram_similar_batch('mem', 'SELECT qid, e FROM q', 2);
SELECT * FROM v;
-- filtered search: exactly the top k of the filtered exact result (applied during the walk, so
-- k results come back when k matches exist)
CREATE VIRTUAL TABLE f USING engram(dim=8, dedup=off);
CREATE TABLE fsrc AS
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
  SELECT 'f' || i AS id, engram_random_vector(8, i) AS e, 1714557600 + i * 60 AS t,
         CASE i % 7 WHEN 0 THEN 'Lisbon' ELSE 'Porto' END AS loc,
         json_object('colour', CASE i % 5 WHEN 0 THEN 'red' ELSE 'blue' END) AS meta FROM n;
INSERT INTO f(id, embedding, occurred_at, location, metadata) SELECT id, e, t, loc, meta FROM fsrc;
CREATE TABLE fq AS SELECT engram_random_vector(8, 424242) AS e;
SELECT 'location', count(*) = 10, sum(s.id IN (SELECT id FROM fsrc WHERE loc = 'Lisbon' ORDER BY engram_cosine(fsrc.e, (SELECT e FROM fq)) DESC LIMIT 10))
  FROM engram_similar('f', (SELECT e FROM fq), 10, -1, 400, '{"location": "lisbon"}') AS s;
SELECT 'metadata', count(*) = 10, sum(s.id IN (SELECT id FROM fsrc WHERE meta ->> 'colour' = 'red' ORDER BY engram_cosine(fsrc.e, (SELECT e FROM fq)) DESC LIMIT 10))
  FROM engram_similar('f', (SELECT e FROM fq), 10, -1, 400, '{"metadata": {"colour": "red"}}') AS s;
SELECT 'time', count(*) = 10, sum(s.id IN (SELECT id FROM fsrc WHERE t BETWEEN 1714557600 + 600 * 60 AND 1714557600 + 900 * 60 ORDER BY engram_cosine(fsrc.e, (SELECT e FROM fq)) DESC LIMIT 10))
  FROM engram_similar('f', (SELECT e FROM fq), 10, -1, 400, json_object('from', 1714557600 + 600 * 60, 'to', '2024-05-02T01:00:00Z')) AS s;
SELECT 'ids', group_concat(s.id, ',') FROM engram_similar('f', (SELECT e FROM fq), 10, -1, 64,
  (SELECT json_object('ids', json_group_array(id)) FROM fsrc WHERE id IN ('f5', 'f17', 'f2999'))) AS s;
SELECT 'batch filter', count(*) FROM engram_similar_batch('f', 'SELECT 1, e FROM fq', 10, -1, 200, '{"location": "Lisbon"}') AS s
  JOIN fsrc ON fsrc.id = s.id WHERE fsrc.loc = 'Lisbon';
SELECT * FROM engram_similar('f', (SELECT e FROM fq), 10, -1, 64, '{"colour": "red"}');
SELECT * FROM engram_similar('f', (SELECT e FROM fq), 10, -1, 64, '[1]');
