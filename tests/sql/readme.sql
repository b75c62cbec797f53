-- The README's quick start, exactly as written there.
.load ./build/engram
CREATE VIRTUAL TABLE mem USING engram(dim=4);
INSERT INTO mem(id, what, embedding, occurred_at, location, who, confidence)
  VALUES ('e1', 'coffee with Ana', '[0.1, 0.9, 0.0, 0.2]', '2024-05-01T10:00:00Z', 'Lisbon',
          '["Ana"]', 0.9);
SELECT id, what, activation, tier FROM mem WHERE id = 'e1';
SELECT rank, id, confidence FROM engram_similar('mem', '[0.1, 0.8, 0.1, 0.2]', 5, 0.5);
SELECT engram_version();
SELECT engram_vector_json(engram_vector('[0.5, -1, 2]'));
SELECT round(engram_cosine('[1, 0]', '[1, 1]'), 6);
SELECT length(engram_random_vector(128, 42)), engram_random_vector(128, 42) = engram_random_vector(128, 42);
SELECT typeof(engram_debug()), instr(engram_debug(), 'simd: ') > 0, instr(engram_debug(), 'numa nodes: ') > 0;
