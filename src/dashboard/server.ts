/**
 * `scriptorium serve`: the dashboard and its JSON API, served by hono on Node's HTTP server. The page
 * (web/) is plain HTML, CSS and JavaScript with uPlot for the charts: nothing to build. Every value
 * from the data reaches the page as JSON and is put in the DOM as text, never as HTML.
 *
 * API: GET /api/jobs, /api/operations?limit&job&kind, /api/events (server-sent events: live progress
 * and new history records), /api/alerts, /api/live, /api/jobs/<job>/snapshots, /api/jobs/<job>/snapshots/<id>;
 * POST /api/jobs/<job>/run and /api/jobs/<job>/verify (202).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { cliNodeFlags } from '../cli/node-flags.js';
import type { Daemon } from '../daemon/daemon.js';
import type { DaemonConfig } from '../daemon/job-config.js';
import { DashboardData } from './dashboard-data.js';
import { LiveFeed } from './live-feed.js';
import { security } from './security.js';

export interface DashboardOptions {
  config: DaemonConfig;
  token: string;
  host: string;
  port: number;
  /** The daemon running the jobs in this process (`serve --jobs`); without it, runs are started as `scriptorium run`. */
  daemon?: Daemon;
}

const WEB = fileURLToPath(new URL('../../web/', import.meta.url));
const require = createRequire(import.meta.url);

/** The static files, read once. */
function assets(): Map<string, { type: string; body: string }> {
  const read = (file: string) => readFileSync(file, 'utf8');
  return new Map([
    ['/', { type: 'text/html; charset=utf-8', body: read(`${WEB}index.html`) }],
    ['/app.js', { type: 'text/javascript; charset=utf-8', body: read(`${WEB}app.js`) }],
    ['/app.css', { type: 'text/css; charset=utf-8', body: read(`${WEB}app.css`) }],
    ['/uplot.js', { type: 'text/javascript; charset=utf-8', body: read(require.resolve('uplot/dist/uPlot.iife.min.js')) }],
    ['/uplot.css', { type: 'text/css; charset=utf-8', body: read(require.resolve('uplot/dist/uPlot.min.css')) }],
  ]);
}

/** How often an idle event stream gets a ping (keeps proxies from closing it). */
export const SSE_PING_MS = 15_000;
/** Events waiting to be written to one stream before its client counts as gone. */
export const MAX_PENDING_EVENTS = 256;

/** Largest history answer kept for the next identical request, and how many are kept. */
const MAX_CACHED_ANSWER = 1 << 20;
const MAX_CACHED_ANSWERS = 16;
const COMMA = Buffer.from(',');

/** `{"<key>":[...items]}` as bytes, stringified 64 items at a time (small strings, no large one). */
export function jsonList(key: string, items: readonly unknown[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`{${JSON.stringify(key)}:[`)];
  for (let i = 0; i < items.length; i += 64) {
    if (i > 0) parts.push(COMMA);
    parts.push(Buffer.from(JSON.stringify(items.slice(i, i + 64)).slice(1, -1)));
  }
  parts.push(Buffer.from(']}'));
  return Buffer.concat(parts);
}

export const isLoopback = (host: string) => host === '127.0.0.1' || host === '::1' || host === 'localhost' || /^127\./.test(host);

const count = (value: string | undefined, fallback: number, max: number) => {
  const n = Number(value);
  return Number.isSafeInteger(n) && n > 0 ? Math.min(n, max) : fallback;
};

/** Builds the hono app (exported for tests that call it without a socket). */
export function dashboardApp(options: DashboardOptions, data: DashboardData, feed: LiveFeed): Hono {
  const app = new Hono();
  const files = assets();
  const bound = options.host.includes(':') ? `[${options.host}]` : options.host.toLowerCase();
  app.use('*', security({ token: options.token, hosts: [...options.config.dashboard.hosts, ...(isLoopback(options.host) || options.host === '0.0.0.0' || options.host === '::' ? [] : [bound])], tokenForReads: !isLoopback(options.host) }));
  app.onError((err, c) => c.json({ error: err instanceof Error ? err.message : String(err), code: (err as { code?: string }).code ?? 'E_INTERNAL' }, 500));
  for (const [path, file] of files) app.get(path, (c) => c.body(file.body, 200, { 'content-type': file.type }));

  app.get('/api/jobs', (c) => c.json({ jobs: data.jobs(), running: options.daemon ? [...options.daemon.running.values()].map((r) => ({ run: r.run, job: r.job, kind: r.kind, startedAt: new Date(r.startedAt).toISOString() })) : undefined }));
  // The history's answers, serialized in pieces and kept while the history is unchanged (the page asks
  // the same few queries every few seconds): no large string per request for the garbage collector.
  const answers = new Map<string, Buffer>();
  app.get('/api/operations', async (c) => {
    const filter = { limit: count(c.req.query('limit'), 500, 10_000), job: c.req.query('job'), kind: c.req.query('kind') };
    const key = `${data.historyVersion()}\0${filter.limit}\0${filter.job ?? ''}\0${filter.kind ?? ''}`;
    let body = answers.get(key);
    if (!body) {
      body = jsonList('operations', await data.operations(filter));
      for (const k of answers.keys()) if (!k.startsWith(`${data.historyVersion()}\0`)) answers.delete(k);
      if (body.length <= MAX_CACHED_ANSWER && answers.size < MAX_CACHED_ANSWERS) answers.set(key, body);
    }
    return c.body(body as Uint8Array as Uint8Array<ArrayBuffer>, 200, { 'content-type': 'application/json; charset=utf-8' });
  });
  app.get('/api/alerts', (c) => c.json({ events: data.events(count(c.req.query('limit'), 200, 5000)) }));
  app.get('/api/live', (c) => c.json({ live: data.live() }));
  app.get('/api/jobs/:job/snapshots', async (c) => {
    const list = await data.snapshots(c.req.param('job'));
    return list === undefined ? c.json({ error: 'no such job' }, 404) : c.json({ snapshots: list });
  });
  app.get('/api/jobs/:job/snapshots/:id', async (c) => {
    const id = c.req.param('id');
    if (!/^[0-9a-f]{64}$/.test(id)) return c.json({ error: 'a snapshot id is 64 hex digits' }, 400);
    const s = await data.snapshot(c.req.param('job'), id);
    return s === undefined ? c.json({ error: 'no such snapshot' }, 404) : c.json(s);
  });
  app.get('/api/events', (c) =>
    streamSSE(c, async (stream) => {
      // Released as soon as the client goes: the feed's listener, the ping timer, the stream. A client
      // that stops reading is dropped once MAX_PENDING_EVENTS writes wait for it (no unbounded queue).
      let pending = 0;
      const gone = new Promise<void>((resolve) => stream.onAbort(resolve));
      const off = feed.subscribe((event, payload) => {
        if (stream.aborted || stream.closed) return;
        if (pending >= MAX_PENDING_EVENTS) return stream.abort();
        pending++;
        void stream.writeSSE({ event, data: JSON.stringify(payload) }).finally(() => pending--);
      });
      try {
        await stream.writeSSE({ event: 'hello', data: JSON.stringify({ live: data.live() }) });
        while (!stream.aborted && !stream.closed) {
          let timer: NodeJS.Timeout | undefined;
          const ping = await Promise.race([gone.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), SSE_PING_MS)))]);
          clearTimeout(timer);
          if (!ping) break;
          await stream.writeSSE({ event: 'ping', data: '{}' });
        }
      } finally {
        off();
      }
    }),
  );
  const start = (job: string, kind: 'backup' | 'verify') => {
    const config = data.config;
    const j = config.jobs.get(job);
    if (!j) return { status: 404 as const, body: { error: `no job named ${job}` } };
    if (options.daemon && kind === 'backup') {
      const run = options.daemon.runNow(job);
      return run ? { status: 202 as const, body: { accepted: true, run: run.run } } : { status: 409 as const, body: { error: `job ${job} is running` } };
    }
    // A process of its own: `scriptorium run JOB` (journaled, alerting) or `scriptorium verify` (in the history).
    const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url).href.replace(/\/src\/cli\/main\.js$/, '/dist/cli/main.js'));
    const args = kind === 'backup' ? ['run', job, '--config', config.file] : ['verify', '--repo', j.repository, '-q'];
    const child = spawn(process.execPath, [...cliNodeFlags(cli), cli, ...args], { cwd: config.dir, detached: true, stdio: 'ignore' });
    child.unref();
    return { status: 202 as const, body: { accepted: true, pid: child.pid } };
  };
  app.post('/api/jobs/:job/run', (c) => {
    const r = start(c.req.param('job'), 'backup');
    return c.json(r.body, r.status);
  });
  app.post('/api/jobs/:job/verify', (c) => {
    const r = start(c.req.param('job'), 'verify');
    return c.json(r.body, r.status);
  });
  app.notFound((c) => c.json({ error: 'not found' }, 404));
  return app;
}

/** Starts the dashboard; resolves once it listens. */
export async function startDashboard(options: DashboardOptions): Promise<{ server: ServerType; url: string; data: DashboardData; feed: LiveFeed; close: () => Promise<void> }> {
  const data = new DashboardData(options.config);
  const feed = new LiveFeed(data);
  const app = dashboardApp(options, data, feed);
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: options.host, port: options.port }, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    server, data, feed, url: `http://${host}:${port}/`,
    close: () => new Promise<void>((resolve) => {
      feed.stop();
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      server.close(() => resolve());
    }),
  };
}
