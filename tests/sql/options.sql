-- CREATE VIRTUAL TABLE options: validation, defaults, persistence checks, DROP TABLE.
.load ./build/engram
CREATE VIRTUAL TABLE a USING engram(colour=red);
CREATE VIRTUAL TABLE a USING engram(dim);
CREATE VIRTUAL TABLE a USING engram(dim=0);
CREATE VIRTUAL TABLE a USING engram(dim=4097);
CREATE VIRTUAL TABLE a USING engram(dim=abc);
CREATE VIRTUAL TABLE a USING engram(dim=4, dim=8);
CREATE VIRTUAL TABLE a USING engram(capacity=0);
CREATE VIRTUAL TABLE a USING engram(dedup=1.5);
CREATE VIRTUAL TABLE a USING engram(dedup=maybe);
CREATE VIRTUAL TABLE a USING engram(dedup_exact=maybe);
CREATE VIRTUAL TABLE a USING engram(sync=sometimes);
CREATE VIRTUAL TABLE a USING engram(m=1);
CREATE VIRTUAL TABLE a USING engram(ef_search=0);
CREATE VIRTUAL TABLE a USING engram(path='');
SELECT name FROM sqlite_master;
-- defaults: dim 768, the store beside the database file
CREATE VIRTUAL TABLE d USING engram;
SELECT replace(path, rtrim(path, replace(path, '/', '')), '') AS file, dim, capacity, dedup, sync FROM engram_stats('d');
CREATE VIRTUAL TABLE o USING engram(dim=8, capacity=10, dedup=off, sync=normal, m=8, ef_construction=100, ef_search=32, path='custom.engram');
SELECT replace(path, rtrim(path, replace(path, '/', '')), '') AS file, dim, capacity, dedup, sync FROM engram_stats('o');
INSERT INTO o(id, embedding) VALUES ('x', engram_random_vector(8, 1));
.system ls -d test.db-d.engram custom.engram
-- the same path with another dim is refused, naming both values
CREATE VIRTUAL TABLE o2 USING engram(dim=16, path='custom.engram');
-- DROP TABLE removes the store's files
DROP TABLE o;
.system ls -d custom.engram 2>/dev/null || echo 'custom.engram removed'
CREATE VIRTUAL TABLE o USING engram(dim=16, path='custom.engram');
SELECT episodes, dim FROM engram_stats('o');
-- in-memory databases get in-memory stores
ATTACH ':memory:' AS scratch;
CREATE VIRTUAL TABLE scratch.m USING engram(dim=2);
INSERT INTO scratch.m(id, embedding) VALUES ('p', '[1, 0]');
SELECT path, episodes FROM engram_stats('scratch.m');
SELECT id FROM scratch.m;
ALTER TABLE d RENAME TO d2;
