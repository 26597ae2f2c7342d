import Database from 'better-sqlite3';
import fs from 'fs';
const f = process.argv[2]; fs.rmSync(f, {force:true});
const db = new Database(f); db.defaultSafeIntegers(true);
const VALUES = [null, 9223372036854775807n, -0.0, 1.5, 'text', 'a\u0000b\r\nc', Buffer.from([0, 255, 10]), Buffer.alloc(0), 'é😀', -9223372036854775808n, 1e308];
const tables = [['w1000', 1000, ''], ['w1999', 1999, ''], ['w2000', 2000, 'INTEGER PRIMARY KEY'], ['w1997', 1997, 'TEXT PRIMARY KEY']];
for (const [name, n, pk] of tables) {
  const cols = Array.from({ length: n }, (_, i) => `c${i}${i === 0 && pk ? ` ${pk}` : i % 3 === 1 ? ' BLOB' : ''}`);
  db.exec(`CREATE TABLE ${name} (${cols.join(', ')})`);
  const insert = db.prepare(`INSERT INTO ${name} VALUES (${Array.from({ length: n }, () => '?').join(', ')})`);
  for (let r = 0; r < 23; r++) insert.run(...Array.from({ length: n }, (_, i) => (i === 0 && pk ? (pk.startsWith('TEXT') ? `k${r}` : BigInt(r * 7 + 1)) : VALUES[(i * 7 + r) % VALUES.length])));
  if (!pk) db.exec(`DELETE FROM ${name} WHERE rowid IN (3, 4, 10)`);
}
db.close();
