#!/usr/bin/env node
/**
 * Measures issue 17's performance targets (a measurement, not a timed test):
 * - the daemon's idle resident memory and CPU (`scriptorium daemon` with a job that is not due);
 * - the dashboard's answer times with a history of 10,000 operations (`scriptorium serve`).
 *
 *   npm run build && node bench/daemon-measure.mjs [--idle-seconds 20] [--requests 50]
 *
 * Prints a Markdown table. Everything runs in a temporary folder on loopback.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HistoryStore } from '../dist/monitor/history-store.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const IDLE_SECONDS = arg('--idle-seconds', 20);
const REQUESTS = arg('--requests', 50);
const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const TICK = 100; // clock ticks per second (getconf CLK_TCK on Linux)

const dir = mkdtempSync(join(tmpdir(), 'scriptorium-measure-'));
const rows = [];
try {
  spawnSync('sqlite3', [join(dir, 'a.db'), 'create table t(id integer primary key, v text); insert into t(v) values (1);']);
  spawnSync(process.execPath, [CLI, 'init', join(dir, 'repo'), '-q']);
  writeFileSync(join(dir, 'scriptorium.config.json'), JSON.stringify({
    jobs: { nightly: { source: 'a.db', repository: './repo', schedule: '0 3 1 1 *', alerts: ['ops'] } },
    alerts: { ops: { command: 'true', silenceAfter: '3650d' } },
  }));
  // 10,000 operations in the history, as the daemon's jobs would leave them.
  const history = new HistoryStore({ path: join(dir, 'backups/.scriptorium-history.jsonl'), maxEntries: 20_000 });
  const start = Date.parse('2026-01-01T00:00:00Z');
  for (let i = 0; i < 10_000; i++) {
    const durationMs = 800 + (i % 17) * 20;
    history.append({
      v: 1, id: `backup-${i}`, kind: i % 2 ? 'verify' : 'backup', job: 'nightly', source: join(dir, 'a.db'), target: join(dir, 'repo'), format: 'repository',
      startedAt: new Date(start + i * 3_600_000).toISOString(), endedAt: new Date(start + i * 3_600_000 + durationMs).toISOString(), durationMs,
      rows: 250_000, bytesIn: 40 << 20, bytesOut: 12 << 20, rowsPerSecond: 250_000_000 / durationMs, mbPerSecond: 40_000 / durationMs,
      peakRssBytes: 90 << 20, peakHeapUsedBytes: 30 << 20, startRssBytes: 60 << 20, endRssBytes: 70 << 20, samples: 10, ok: true, pid: 1,
      result: { snapshot: 'f'.repeat(64) },
    });
  }

  const cpuSeconds = (pid) => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK;
  };
  const rssMiB = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // The daemon at rest.
  const daemon = spawn(process.execPath, [CLI, 'daemon'], { cwd: dir, stdio: 'ignore' });
  await sleep(3000);
  const cpu0 = cpuSeconds(daemon.pid);
  let peak = 0;
  for (let s = 0; s < IDLE_SECONDS; s++) {
    peak = Math.max(peak, rssMiB(daemon.pid));
    await sleep(1000);
  }
  const cpu = ((cpuSeconds(daemon.pid) - cpu0) / IDLE_SECONDS) * 100;
  rows.push(['daemon idle RSS (max over the window)', `${peak.toFixed(1)} MiB`, '< 60 MB']);
  rows.push([`daemon idle CPU (${IDLE_SECONDS} s)`, `${cpu.toFixed(2)} %`, 'near 0 %']);
  daemon.kill('SIGTERM');

  // The dashboard with 10,000 operations.
  const serve = spawn(process.execPath, [CLI, 'serve', '--port', '0'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SCRIPTORIUM_TOKEN: 'measure-token-0123456789', XDG_CONFIG_HOME: dir } });
  let err = '';
  serve.stderr.on('data', (d) => (err += d));
  let url;
  for (let i = 0; i < 100 && !url; i++) {
    url = /dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(err)?.[1];
    await sleep(100);
  }
  // What the page asks for on each refresh, and the whole history for comparison.
  for (const path of ['', 'app.js', 'api/jobs', 'api/operations?limit=200', 'api/operations?limit=500&kind=backup', 'api/alerts', 'api/operations?limit=10000']) {
    await (await fetch(`${url}${path}`)).arrayBuffer(); // warm: the first read parses the history
    const times = [];
    let bytes = 0;
    for (let i = 0; i < REQUESTS; i++) {
      const t0 = performance.now();
      const res = await fetch(`${url}${path}`);
      bytes = (await res.arrayBuffer()).byteLength;
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    rows.push([`GET /${path} (${(bytes / 1024).toFixed(0)} KiB)`, `median ${times[times.length >> 1].toFixed(1)} ms, p95 ${times[Math.floor(times.length * 0.95)].toFixed(1)} ms`, '< 50 ms']);
  }
  rows.push(['serve RSS after the requests', `${rssMiB(serve.pid).toFixed(1)} MiB`, '']);
  serve.kill('SIGTERM');
} finally {
  await new Promise((r) => setTimeout(r, 500));
  rmSync(dir, { recursive: true, force: true });
}
console.log(`| measure (history of 10,000 operations) | value | target |\n| --- | --- | --- |\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}`);
