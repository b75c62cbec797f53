-- Edges (engram_edges) and spreading activation, including DESIGN's worked example.
.load ./build/engram
CREATE VIRTUAL TABLE mem USING engram(dim=2, dedup=off);
CREATE VIRTUAL TABLE links USING engram_edges(store=mem);
BEGIN;
INSERT INTO mem(id, embedding) VALUES ('A', '[1,0]'), ('B', '[0,1]'), ('C', '[1,1]'), ('D', '[1,2]');
INSERT INTO links VALUES ('A', 'B', 0.8), ('B', 'C', 0.6), ('A', 'C', 0.4);
SELECT * FROM links;
COMMIT;
SELECT * FROM links;
SELECT id, round(activation, 4), depth, round(confidence, 4) FROM engram_spread('mem', json_array('A'), 4);
SELECT id, round(activation, 4), depth FROM engram_spread('mem', '[{"id": "B", "activation": 0.5}]', 4, 0.0);
INSERT INTO links VALUES ('A', 'Z', 0.5);
INSERT INTO links VALUES ('A', 'D', 1.5);
UPDATE links SET weight = 0.9 WHERE src = 'A' AND dst = 'B';
DELETE FROM links WHERE dst = 'C' AND src = 'A';
SELECT * FROM links;
SELECT * FROM links WHERE src = 'B';
SELECT id, round(activation, 4), depth FROM engram_spread('mem', json_array('A'), 4);
CREATE TABLE seeds(set_id, id, activation);
INSERT INTO seeds VALUES (1, 'A', 1.0), (2, 'B', 1.0), (2, 'D', 0.5), (3, 'C', 1.0);
SELECT set_id, id, round(activation, 4), depth FROM engram_spread_batch('mem', 'SELECT set_id, id, activation FROM seeds ORDER BY set_id', 3);
SELECT * FROM engram_spread('mem', json_array('nope'), 3);
SELECT * FROM engram_spread('mem', '{"A": 1}', 3);
CREATE VIRTUAL TABLE bad USING engram_edges(colour=red);
CREATE VIRTUAL TABLE bad USING engram_edges;
-- ROLLBACK leaves no edge behind; edges persist across connections (checked by reopening)
BEGIN;
INSERT INTO links VALUES ('C', 'D', 0.5);
SELECT count(*) FROM links;
ROLLBACK;
SELECT count(*) FROM links;
