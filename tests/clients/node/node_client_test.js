// Client test: the Engram extension loaded from Node with better-sqlite3@12.
// Creates a store, batch-inserts in one transaction, searches, checks an error, reopens.
// Usage: node node_client_test.js BUILD/engram
'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');

const ext = process.argv[2];
const DIM = 8;
const vec = (seed) => {
  const a = new Float32Array(DIM);
  for (let i = 0; i < DIM; i++) a[i] = ((seed * 7919 + i * i * 104729) % 10007) / 10007 - 0.5;
  return Buffer.from(a.buffer);
};
const open = (file) => {
  const db = new Database(file);
  db.loadExtension(ext);
  return db;
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'engram-node-'));
try {
  const file = path.join(dir, 'node.db');
  let db = open(file);
  db.exec(`CREATE VIRTUAL TABLE mem USING engram(dim=${DIM}, dedup=off)`);
  const insert = db.prepare('INSERT INTO mem(id, what, embedding, confidence) VALUES (?, ?, ?, ?)');
  const many = db.transaction((n) => {
    for (let i = 0; i < n; i++) insert.run(`n${i}`, `node episode ${i}`, vec(i), 0.9);
  });
  many(300);
  assert.equal(db.prepare('SELECT count(*) AS c FROM mem').get().c, 300);
  assert.deepEqual(db.prepare("SELECT size, successful FROM engram_batches('mem')").all(),
                   [{size: 300, successful: 300}]);
  const top = db.prepare("SELECT id, confidence FROM engram_similar('mem', ?, 2, 0.0)").all(vec(77));
  assert.equal(top.length, 2);
  assert.equal(top[0].id, 'n77');
  assert.ok(Math.abs(top[0].confidence - 1) < 1e-5);
  assert.throws(() => insert.run('x', 'bad', Buffer.alloc(12), 0.9),
                /row 'x', column embedding: expected 8 dimensions, got 3/);
  assert.throws(() => db.exec("CREATE VIRTUAL TABLE m2 USING engram(dim=8, colour=red)"),
                /unknown engram option 'colour'/);
  db.close();

  db = open(file);
  assert.equal(db.prepare('SELECT count(*) AS c FROM mem').get().c, 300);
  const row = db.prepare("SELECT what, embedding, tier FROM mem WHERE id = 'n5'").get();
  assert.equal(row.what, 'node episode 5');
  assert.ok(Buffer.compare(row.embedding, vec(5)) === 0);
  assert.equal(row.tier, 'hot');
  assert.equal(db.prepare("SELECT id FROM engram_similar('mem', ?, 1)").get(vec(200)).id, 'n200');
  db.close();
  console.log('node client: all checks passed');
} finally {
  fs.rmSync(dir, {recursive: true, force: true});
}
