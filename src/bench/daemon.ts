/**
 * The `daemon` section of `scriptorium bench` (issue 17's performance targets, measured, never timed in a
 * test): the daemon's idle resident memory and CPU (`scriptorium daemon` with a job that is not due),
 * the dashboard's answer times with a history of 10,000 operations (`scriptorium serve`, median and p95
 * per page), and a short soak of `serve --jobs` running a job every second while it is polled and
 * event-stream clients connect and drop (its RSS at the start, the middle and the end).
 *
 * Everything runs as real processes of the built CLI, in a temporary folder, on loopback only.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { cliNodeFlags } from '../cli/node-flags.js';
import { HistoryStore } from '../monitor/history-store.js';

/** What the section measured. */
export interface DaemonBench {
  /** Seconds each part ran, and the history size the dashboard served. */
  idleSeconds: number;
  soakSeconds: number;
  historyOperations: number;
  requests: number;
  loadAverage: [number, number];
  idle: { rssMaxBytes: number; rssEndBytes: number; cpuPercent: number };
  pages: Array<{ path: string; bytes: number; medianMs: number; p95Ms: number }>;
  serveRssAfterPagesBytes: number;
  soak: { runs: number; polls: number; sseClients: number; rssStartBytes: number; rssMiddleBytes: number; rssEndBytes: number; rssMaxBytes: number };
  targets: Array<{ target: string; required: string; measured: string; met: boolean }>;
}

export interface DaemonBenchOptions {
  quick?: boolean;
  idleSeconds?: number;
  soakSeconds?: number;
  requests?: number;
  log?: (line: string) => void;
}

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const TOKEN = 'bench-daemon-token-0123456789abcdef';
/** Pages the dashboard asks for on each refresh, and the whole history for comparison. */
const PAGES = ['', 'app.js', 'api/jobs', 'api/operations?limit=200', 'api/operations?limit=500&kind=backup', 'api/alerts', 'api/operations?limit=10000'];
const HISTORY = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rssBytes = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) * 1024;
const ticks = () => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  return Number(r.stdout.trim()) || 100;
};
/** User + system CPU seconds of a process, from /proc. */
const cpuSeconds = (pid: number, tck: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / tck;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] ?? NaN;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

function cliProcess(dir: string, args: string[], env: Record<string, string> = {}): { proc: ChildProcess; output: () => string } {
  const proc = spawn(process.execPath, [...cliNodeFlags(), CLI, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XDG_CONFIG_HOME: join(dir, 'xdg'), ...env } });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  proc.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  return { proc, output: () => out };
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

async function dashboardUrl(output: () => string): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const url = /dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(output())?.[1];
    if (url) return url;
    await sleep(100);
  }
  throw new Error(`the dashboard did not start: ${output().slice(-500)}`);
}

function makeDatabase(file: string, rows: number): void {
  const db = new Database(file);
  try {
    db.exec('create table t(id integer primary key, v text)');
    const insert = db.prepare('insert into t(v) values (?)');
    db.transaction(() => {
      for (let i = 0; i < rows; i++) insert.run(`value ${i} ${'x'.repeat(80)}`);
    })();
  } finally {
    db.close();
  }
}

/** A history of `n` operations, as the daemon's jobs would leave them. */
function fillHistory(path: string, dir: string, n: number): void {
  const history = new HistoryStore({ path, maxEntries: 2 * n, onError: () => {} });
  const start = Date.parse('2026-01-01T00:00:00Z');
  for (let i = 0; i < n; i++) {
    const durationMs = 800 + (i % 17) * 20;
    history.append({
      v: 1, id: `backup-${i}`, kind: i % 2 ? 'verify' : 'backup', job: 'nightly', source: join(dir, 'a.db'), target: join(dir, 'repo'), format: 'repository',
      startedAt: new Date(start + i * 3_600_000).toISOString(), endedAt: new Date(start + i * 3_600_000 + durationMs).toISOString(), durationMs,
      rows: 250_000, bytesIn: 40 << 20, bytesOut: 12 << 20, rowsPerSecond: 250_000_000 / durationMs, mbPerSecond: 40_000 / durationMs,
      peakRssBytes: 90 << 20, peakHeapUsedBytes: 30 << 20, startRssBytes: 60 << 20, endRssBytes: 70 << 20, samples: 10, ok: true, pid: 1,
      result: { snapshot: 'f'.repeat(64) },
    });
  }
}

/** Runs the section; see the module comment. */
export async function runDaemonBench(o: DaemonBenchOptions = {}): Promise<DaemonBench> {
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const idleSeconds = o.idleSeconds ?? (o.quick ? 3 : 20);
  const soakSeconds = o.soakSeconds ?? (o.quick ? 8 : 60);
  const requests = o.requests ?? (o.quick ? 5 : 50);
  const load0 = os.loadavg()[0]!;
  const tck = ticks();
  const dir = mkdtempSync(join(os.tmpdir(), 'scriptorium-bench-daemon-'));
  const running: ChildProcess[] = [];
  try {
    makeDatabase(join(dir, 'a.db'), 2000);
    const init = spawnSync(process.execPath, [CLI, 'init', join(dir, 'repo'), '-q'], { encoding: 'utf8' });
    if (init.status !== 0) throw new Error(`scriptorium init failed: ${init.stderr}`);
    const config = {
      jobs: { nightly: { source: 'a.db', repository: './repo', schedule: '0 3 1 1 *', alerts: ['ops'] } },
      alerts: { ops: { command: 'true', silenceAfter: '3650d' } },
    };
    writeFileSync(join(dir, 'scriptorium.config.json'), JSON.stringify(config));
    fillHistory(join(dir, 'backups/.scriptorium-history.jsonl'), dir, HISTORY);

    // 1. The daemon at rest (its job is due once a year).
    log(`daemon: idle for ${idleSeconds} s`);
    const daemon = cliProcess(dir, ['daemon']);
    running.push(daemon.proc);
    await sleep(3000);
    const cpu0 = cpuSeconds(daemon.proc.pid!, tck);
    const t0 = performance.now();
    let rssMax = 0;
    for (let s = 0; s < idleSeconds; s++) {
      rssMax = Math.max(rssMax, rssBytes(daemon.proc.pid!));
      await sleep(1000);
    }
    const cpuPercent = ((cpuSeconds(daemon.proc.pid!, tck) - cpu0) / ((performance.now() - t0) / 1000)) * 100;
    const idle = { rssMaxBytes: rssMax, rssEndBytes: rssBytes(daemon.proc.pid!), cpuPercent };
    await stop(daemon.proc);

    // 2. The dashboard's pages with 10,000 operations in the history.
    log(`daemon: dashboard pages, ${requests} requests each, history of ${HISTORY.toLocaleString('en-US')} operations`);
    const serve = cliProcess(dir, ['serve', '--port', '0'], { SCRIPTORIUM_TOKEN: TOKEN });
    running.push(serve.proc);
    const url = await dashboardUrl(serve.output);
    const pages: DaemonBench['pages'] = [];
    for (const path of PAGES) {
      await (await fetch(`${url}${path}`)).arrayBuffer(); // warm
      const times: number[] = [];
      let bytes = 0;
      for (let i = 0; i < requests; i++) {
        const start = performance.now();
        const res = await fetch(`${url}${path}`);
        bytes = (await res.arrayBuffer()).byteLength;
        if (!res.ok) throw new Error(`GET /${path}: HTTP ${res.status}`);
        times.push(performance.now() - start);
      }
      pages.push({ path: `/${path}`, bytes, medianMs: median(times), p95Ms: quantile(times, 0.95) });
    }
    const serveRssAfterPagesBytes = rssBytes(serve.proc.pid!);
    await stop(serve.proc);

    // 3. A short soak: a job every second, the API polled, event-stream clients connecting and dropping.
    log(`daemon: soak of ${soakSeconds} s (serve --jobs, a backup every second)`);
    writeFileSync(join(dir, 'scriptorium.config.json'), JSON.stringify({
      ...config,
      jobs: { ...config.jobs, tick: { source: 'a.db', repository: './repo', every: '1s', verify: { afterBackup: false }, retention: { keepLast: 5 }, alerts: ['ops'] } },
    }));
    const soak = cliProcess(dir, ['serve', '--port', '0', '--jobs'], { SCRIPTORIUM_TOKEN: TOKEN });
    running.push(soak.proc);
    const soakUrl = await dashboardUrl(soak.output);
    const stopAt = Date.now() + soakSeconds * 1000;
    let polls = 0;
    let sseClients = 0;
    const poller = (async () => {
      while (Date.now() < stopAt) {
        for (const path of ['api/jobs', 'api/operations?limit=200', 'api/alerts', '']) {
          await (await fetch(`${soakUrl}${path}`)).arrayBuffer();
          polls++;
        }
        await sleep(150);
      }
    })();
    const churn = (async () => {
      while (Date.now() < stopAt) {
        const abort = new AbortController();
        const res = await fetch(`${soakUrl}api/events`, { signal: abort.signal });
        sseClients++;
        const reader = res.body!.getReader();
        const dropAt = Date.now() + 300 + Math.random() * 1500;
        try {
          while (Date.now() < dropAt) await Promise.race([reader.read(), sleep(Math.max(0, dropAt - Date.now()))]);
        } finally {
          abort.abort();
        }
      }
    })().catch(() => undefined);
    const rss: number[] = [];
    while (Date.now() < stopAt) {
      rss.push(rssBytes(soak.proc.pid!));
      await sleep(1000);
    }
    await Promise.all([poller, churn]);
    await stop(soak.proc);
    const journal = readFileSync(join(dir, 'backups/.scriptorium-daemon.jsonl'), 'utf8');
    const runs = journal.split('\n').filter((l) => l.includes('"t":"end"') && l.includes('"job":"tick"')).length;
    const warm = Math.min(10, rss.length >> 2);
    const steady = rss.slice(warm);
    const third = Math.max(1, Math.floor(steady.length / 3));
    const soakResult = {
      runs, polls, sseClients,
      rssStartBytes: median(steady.slice(0, third)), rssMiddleBytes: median(steady.slice(third, 2 * third)), rssEndBytes: median(steady.slice(2 * third)), rssMaxBytes: Math.max(...rss),
    };

    const pageMax = Math.max(...pages.filter((p) => p.path !== '/api/operations?limit=10000').map((p) => p.medianMs));
    const targets: DaemonBench['targets'] = [
      { target: 'daemon idle RSS (max)', required: '< 60 MB', measured: `${(idle.rssMaxBytes / 1e6).toFixed(1)} MB`, met: idle.rssMaxBytes < 60e6 },
      { target: `daemon idle CPU (${idleSeconds} s)`, required: 'near 0 % (< 1 %)', measured: `${idle.cpuPercent.toFixed(2)} %`, met: idle.cpuPercent < 1 },
      { target: 'dashboard pages, slowest median (10,000 operations)', required: '< 50 ms', measured: `${pageMax.toFixed(1)} ms`, met: pageMax < 50 },
      { target: `soak RSS, last third vs middle third (${soakSeconds} s)`, required: '< +6 MiB', measured: `${((soakResult.rssEndBytes - soakResult.rssMiddleBytes) / 2 ** 20).toFixed(1)} MiB`, met: soakResult.rssEndBytes - soakResult.rssMiddleBytes < 6 * 2 ** 20 },
    ];
    return { idleSeconds, soakSeconds, historyOperations: HISTORY, requests, loadAverage: [load0, os.loadavg()[0]!], idle, pages, serveRssAfterPagesBytes, soak: soakResult, targets };
  } finally {
    for (const p of running) await stop(p);
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }
}

/** The section's Markdown. */
export function daemonMarkdown(d: DaemonBench): string {
  const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    '## Daemon and dashboard (issue 17)',
    '',
    `The built CLI as real processes on loopback; load average ${d.loadAverage.map((v) => v.toFixed(2)).join(' → ')} (start → end; other work on the machine moves these figures). ` +
      `Idle: \`scriptorium daemon\` with one job not due, ${d.idleSeconds} s after a 3 s start. Pages: \`scriptorium serve\`, a history of ${d.historyOperations.toLocaleString('en-US')} operations, ${d.requests} requests per page after one warm-up. ` +
      `Soak: \`serve --jobs\` running a backup every second for ${d.soakSeconds} s while the API is polled and event-stream clients connect and drop; RSS medians of the thirds after a 10 s warm-up.`,
    '',
    row(['target', 'required', 'measured', 'met']),
    row(['---', '---', '---:', '---']),
    ...d.targets.map((t) => row([t.target, t.required, t.measured, t.met ? 'yes' : '**no**'])),
    '',
    row(['page', 'size', 'median', 'p95']),
    row(['---', '---:', '---:', '---:']),
    ...d.pages.map((p) => row([`GET ${p.path}`, `${(p.bytes / 1024).toFixed(0)} KiB`, `${p.medianMs.toFixed(1)} ms`, `${p.p95Ms.toFixed(1)} ms`])),
    '',
    `Daemon idle RSS ${mib(d.idle.rssMaxBytes)} max, ${mib(d.idle.rssEndBytes)} at the end; CPU ${d.idle.cpuPercent.toFixed(2)} %. ` +
      `serve RSS after the page requests ${mib(d.serveRssAfterPagesBytes)}. ` +
      `Soak: ${d.soak.runs} runs, ${d.soak.polls} polls, ${d.soak.sseClients} event-stream clients; serve RSS ${mib(d.soak.rssStartBytes)} → ${mib(d.soak.rssMiddleBytes)} → ${mib(d.soak.rssEndBytes)} (first, middle, last third; max ${mib(d.soak.rssMaxBytes)}).`,
    '',
  ].join('\n');
}
