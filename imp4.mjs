import fs from 'node:fs';
const r = (l) => { globalThis.gc(); const s = fs.readFileSync('/proc/self/status', 'utf8'); console.log(l, s.match(/Rss\w+:\s+\d+ kB/g).join(' ')); };
r('start');
const { S3Store } = await import('./dist/stores/s3-store.js');
const store = await S3Store.open('s3://bench/r1', { cacheDir: false });
r('open');
await store.get('config');
r('get');
