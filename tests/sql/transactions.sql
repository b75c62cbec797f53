-- Transactions: one batch per transaction, own writes visible before COMMIT, ROLLBACK leaves
-- nothing, a failing statement is undone alone (savepoints), INSERT OR REPLACE / IGNORE.
.load ./build/engram
CREATE VIRTUAL TABLE mem USING engram(dim=2, dedup=off);
BEGIN;
INSERT INTO mem(id, what, embedding) VALUES ('a', 'first', '[1, 0]'), ('b', 'second', '[0, 1]');
SELECT id, what, activation IS NULL, tier, stored_at IS NULL FROM mem;
SELECT count(*) FROM engram_similar('mem', '[1, 0]', 10);
UPDATE mem SET what = 'first, edited' WHERE id = 'a';
DELETE FROM mem WHERE id = 'b';
SELECT id, what, tier FROM mem;
COMMIT;
SELECT id, what, tier, stored_at IS NOT NULL FROM mem;
SELECT batch, size, updated, deleted FROM engram_batches('mem');
BEGIN;
INSERT INTO mem(id, embedding) VALUES ('c', '[1, 1]');
DELETE FROM mem WHERE id = 'a';
SELECT id FROM mem;
ROLLBACK;
SELECT id, what FROM mem;
SELECT count(*) FROM engram_batches('mem');
-- a statement that fails halfway is undone, the rest of the transaction stays
CREATE TABLE st(id, e);
INSERT INTO st VALUES ('s1', '[1, 2]'), ('s2', '[2, 1]'), ('s3', '[1]'), ('s4', '[3, 3]');
BEGIN;
INSERT INTO mem(id, embedding) VALUES ('keep', '[0.5, 0.5]');
INSERT INTO mem(id, embedding) SELECT id, e FROM st;
SELECT id FROM mem;
COMMIT;
SELECT id, tier FROM mem;
-- conflicts
INSERT INTO mem(id, what, embedding) VALUES ('a', 'dup', '[1, 0]');
INSERT OR IGNORE INTO mem(id, what, embedding) VALUES ('a', 'ignored', '[1, 0]');
SELECT id, what FROM mem WHERE id = 'a';
INSERT OR REPLACE INTO mem(id, what, embedding) VALUES ('a', 'replaced', '[0, 1]');
SELECT id, what, engram_vector_json(embedding) FROM mem WHERE id = 'a';
-- id IN (...) and ordering
SELECT id FROM mem WHERE id IN ('keep', 'a', 'missing') ORDER BY id;
SELECT id FROM mem ORDER BY id DESC;
-- updates keep unchanged columns
UPDATE mem SET location = 'Porto', who = '["Ana","Bo"]', metadata = '{"k": 1}', occurred_at = 0 WHERE id = 'keep';
SELECT id, location, who, metadata, occurred_at, engram_vector_json(embedding), confidence FROM mem WHERE id = 'keep';
UPDATE mem SET embedding = '[0, 2]' WHERE id = 'keep';
SELECT id FROM engram_similar('mem', '[0, 1]', 1);
SELECT id, round(confidence, 2) FROM engram_similar('mem', '[0, 1]', 5) ORDER BY rank;
