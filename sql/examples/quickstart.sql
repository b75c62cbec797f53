-- Engram quickstart: batch-store episodes, then find them again by similarity.
-- Run with:  make demo      (or: sqlite3 my.db < sql/examples/quickstart.sql)
.load ./build/engram
.mode column
.headers on

-- A store of 128-dimensional episodes, persisted in RocksDB beside the database file.
CREATE VIRTUAL TABLE mem USING engram(dim=128, capacity=100000);

-- 1000 synthetic episodes staged in an ordinary table (deterministic vectors).
CREATE TABLE staging AS
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
  SELECT 'e' || i AS id,
         'episode number ' || i AS what,
         engram_random_vector(128, i) AS embedding,
         1714557600 + i * 60 AS occurred_at,
         CASE i % 3 WHEN 0 THEN 'Lisbon' WHEN 1 THEN 'Porto' ELSE 'Faro' END AS location
  FROM n;

-- One transaction = one batch, applied and made durable at COMMIT.
BEGIN;
INSERT INTO mem(id, what, embedding, occurred_at, location, who, confidence)
  SELECT id, what, embedding, occurred_at, location, json_array('Ana'), 0.9 FROM staging;
COMMIT;

-- Hand-written episodes, with JSON vectors padded to 128 dimensions.
INSERT INTO mem(id, what, embedding, occurred_at, confidence, metadata)
  VALUES ('coffee', 'coffee with Ana',
          engram_vector_json(engram_random_vector(128, 5000)),
          '2024-05-01T10:00:00Z', 0.8, '{"mood": "happy"}');

SELECT 'stored' AS step, episodes, hot, cold, round(pressure, 4) AS pressure, batches, simd
  FROM engram_stats('mem');

SELECT batch, size, successful, degraded, deduplicated, evicted FROM engram_batches('mem');

-- Point lookup: what was stored, and its store-time activation.
SELECT id, what, occurred_at, location, who, confidence, round(activation, 4) AS activation, tier
  FROM mem WHERE id IN ('e1', 'e500', 'coffee');

-- Similarity: the 5 episodes nearest to e42's embedding (e42 itself first, then its neighbours).
SELECT s.rank, s.id, round(s.confidence, 4) AS confidence, m.what
  FROM engram_similar('mem', (SELECT embedding FROM staging WHERE id = 'e42'), 5, 0.0) AS s
  JOIN mem AS m ON m.id = s.id
  ORDER BY s.rank;

-- Vectors in and out.
SELECT engram_vector_json(engram_vector('[0.5, -1, 2]')) AS round_trip,
       round(engram_cosine('[1, 0]', '[1, 1]'), 6) AS cosine;
