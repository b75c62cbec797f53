-- Recall by cue: semantic, embedding, context, temporal; cold memories only with 'all'; errors.
.load ./build/engram
CREATE VIRTUAL TABLE mem USING engram(dim=3, capacity=4, dedup=off);
INSERT INTO mem(id, what, embedding, occurred_at, location, confidence) VALUES
 ('e1', 'Coffee with Ana', '[1,0,0]', '2024-05-01T10:00:00Z', 'Lisbon cafe', 0.9),
 ('e2', 'coffee', '[0.9,0.1,0]', '2024-05-01T10:30:00Z', 'Porto', 0.9),
 ('e3', 'Lunch with Bo and Ana', '[0,1,0]', '2024-05-01T13:00:00Z', 'Lisbon', 0.9),
 ('e4', 'Gym', '[0,0,1]', '2024-05-02T08:00:00Z', NULL, 0.9),
 ('e5', 'dinner with ana', '[0,0.5,0.5]', '2024-05-03T20:00:00Z', 'Faro', 0.95);
SELECT id, tier FROM mem;
SELECT * FROM engram_recall('mem', 'semantic', 'coffee with Ana', 0.3, 10);
SELECT * FROM engram_recall('mem', 'semantic', 'coffee with Ana', 0.3, 10, 'all');
SELECT * FROM engram_recall('mem', 'embedding', '[1,0,0]', 0.5, 10);
SELECT * FROM engram_recall('mem', 'context', '{"location": "lisbon"}', 0.5, 10);
SELECT * FROM engram_recall('mem', 'context', '{"from": "2024-05-01T12:00:00Z", "to": "2024-05-02T12:00:00Z", "location": "Lisbon"}', 0.4, 10);
SELECT * FROM engram_recall('mem', 'temporal', '{"before": "2024-05-01T12:00:00Z"}', 0.6, 10);
SELECT * FROM engram_recall('mem', 'temporal', '{"between": ["2024-05-01", "2024-05-02T23:00:00Z"]}', 0.6, 2);
SELECT * FROM engram_recall('mem', 'temporal', '{"recent": 60}', 0.6, 10);
SELECT * FROM engram_recall('mem', 'smell', 'x');
SELECT * FROM engram_recall('mem', 'context', '{}');
SELECT * FROM engram_recall('mem', 'context', '{"colour": 1}');
SELECT * FROM engram_recall('mem', 'semantic', '');
SELECT * FROM engram_recall('mem', 'temporal', '{"before": "soon"}');
SELECT * FROM engram_recall('mem', 'embedding', '[1,0]');
SELECT * FROM engram_recall('mem', 'semantic', 'gym', 0.5, 10, 'all');
SELECT * FROM engram_recall('mem', 'semantic', 'gym', 0.5, 10, 'some');
SELECT * FROM engram_recall('mem', 'semantic', 'gym', 1.5, 10);
SELECT * FROM engram_recall('mem', 'semantic', 'gym', 0.5, 0);
-- batch: cues in parallel, rows in cue order, a failed cue gets an error row, the others run
CREATE TABLE cues(cue_id, kind, value, threshold, max_results);
INSERT INTO cues VALUES
  (1, 'semantic', 'coffee with Ana', 0.3, 2),
  (2, 'temporal', '{"after": "2024-05-01T12:00:00Z"}', 0.6, 10),
  (3, 'smell', 'roses', 0.5, 10),
  (4, 'embedding', '[0, 1, 0]', 0.9, 10),
  (5, 'context', '{}', 0.5, 10);
SELECT * FROM engram_recall_batch('mem', 'SELECT cue_id, kind, value, threshold, max_results FROM cues ORDER BY cue_id');
-- batch equals one statement per cue
SELECT count(*) FROM engram_recall_batch('mem', 'SELECT cue_id, kind, value, threshold, max_results FROM cues') AS b
  WHERE b.status = 'ok' AND NOT EXISTS (
    SELECT 1 FROM cues c, engram_recall('mem', c.kind, c.value, c.threshold, c.max_results) AS r
    WHERE c.cue_id = b.cue_id AND r.id = b.id AND r.rank = b.rank AND r.confidence = b.confidence);
SELECT * FROM engram_recall_batch('mem', 'SELECT 1, 2');
