import { PostgresCopySource } from './dist/engines/postgres/postgres-copy-source.js';
import { resolveLocation } from './dist/engines/registry.js';
import { CopyChunker } from './dist/repository/copy-chunker.js';
import { identityValues } from './dist/repository/chunker.js';
const jobs = Number(process.argv[2] ?? 1);
const t0 = performance.now();
const src = await PostgresCopySource.open(resolveLocation('postgres://postgres@127.0.0.1:55432/demo'), { jobs });
console.log('open', (performance.now()-t0).toFixed(0));
src.plan(src.schema.tables);
for (const t of src.schema.tables) {
  const t1 = performance.now(); let bytes = 0, first = 0;
  const ch = new CopyChunker({ minBytes: 288, targetBytes: 576, maxBytes: 65536 }, identityValues(t));
  for await (const p of src.rows(t)) { if (!first) first = performance.now() - t1; bytes += p.length; ch.push(p); }
  console.log(t.name, bytes, 'first', first.toFixed(0), 'total', (performance.now()-t1).toFixed(0));
}
await src.close();
console.log('all', (performance.now()-t0).toFixed(0));
