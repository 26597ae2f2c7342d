import pg from 'pg'; import copy from 'pg-copy-streams';
const c = new pg.Client({connectionString: 'postgres://postgres@127.0.0.1:55432/demo'}); await c.connect();
const t0 = performance.now(); let bytes = 0;
for await (const chunk of c.query(copy.to(process.argv[2]))) { bytes += chunk.length; }
console.log(bytes, (performance.now()-t0).toFixed(0), 'ms', JSON.stringify(process.cpuUsage()));
await c.end();
