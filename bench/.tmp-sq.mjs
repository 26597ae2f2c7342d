import Database from 'better-sqlite3';
for (const n of [10000, 20000, 40000]) {
  const db = new Database(':memory:');
  let t = performance.now();
  db.exec('BEGIN');
  for (let i = 0; i < n; i++) db.prepare(`CREATE TABLE t${i} (id INTEGER PRIMARY KEY, v TEXT)`).run();
  db.exec('COMMIT');
  const create = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < 2000; i++) db.prepare("SELECT wr FROM pragma_table_list(?) WHERE schema = 'main'").get(`t${i}`);
  const arg = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < 200; i++) db.prepare("SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?").get(`t${i}`);
  const scan = performance.now() - t;
  console.log(n, 'create', create.toFixed(0), 'ms; table_list(arg) per call', (arg / 2000).toFixed(3), 'ms; scan per call', (scan / 200).toFixed(3), 'ms', JSON.stringify(db.prepare("SELECT * FROM pragma_table_list(?) WHERE schema = 'main'").get('t5')));
}
