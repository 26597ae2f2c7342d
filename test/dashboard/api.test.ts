/**
 * The dashboard's API and its guards, called in-process (hono's app.request) on a real config, journal
 * and history: tokens, Host allow-list, Origin and Sec-Fetch-Site, CSP, the refusal to bind a
 * non-loopback address without a token, and the token file's mode.
 */
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDaemonConfig } from '../../src/daemon/job-config.js';
import { DashboardData } from '../../src/dashboard/dashboard-data.js';
import { LiveFeed } from '../../src/dashboard/live-feed.js';
import { dashboardApp } from '../../src/dashboard/server.js';
import { resolveToken, tokenFile } from '../../src/dashboard/token.js';
import { HistoryStore } from '../../src/monitor/history-store.js';
import { makeRecord } from '../monitor/helpers.js';
import { cli, workDir } from '../daemon/helpers.js';

const TOKEN = 'api-test-token-0123456789';

describe('dashboard API', () => {
  let cleanup: (() => void) | undefined;
  afterEach(() => cleanup?.());

  const app = (host = '127.0.0.1') => {
    const w = workDir();
    cleanup = w.cleanup;
    const file = join(w.dir, 'scriptorium.config.json');
    const text = JSON.stringify({ jobs: { a: { source: 'a.db', repository: './repo', every: '1h', tags: ['<b>x</b>'] } }, dashboard: { hosts: ['backup.lan'] } });
    writeFileSync(file, text);
    const config = parseDaemonConfig(text, file);
    new HistoryStore(config.monitor.history).append(makeRecord({ kind: 'backup', job: 'a', error: undefined }));
    const data = new DashboardData(config);
    return { dir: w.dir, app: dashboardApp({ config, token: TOKEN, host, port: 8080 }, data, new LiveFeed(data)) };
  };
  const req = (a: ReturnType<typeof app>['app'], path: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
    a.request(`http://127.0.0.1:8080${path}`, { ...init, headers: { host: '127.0.0.1:8080', ...(init.headers ?? {}) } });

  it('serves reads without a token on loopback, with the CSP, and the data as JSON only', async () => {
    const { app: a } = app();
    const page = await req(a, '/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe("default-src 'self'; frame-ancestors 'none'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    const jobs = (await (await req(a, '/api/jobs')).json()) as { jobs: Array<{ name: string; tags: string[] }> };
    expect(jobs.jobs[0]).toMatchObject({ name: 'a', tags: ['<b>x</b>'] });
    const ops = (await (await req(a, '/api/operations?limit=5')).json()) as { operations: Array<{ job: string }> };
    expect(ops.operations.map((o) => o.job)).toEqual(['a']);
  });

  it('needs the bearer token for every state-changing request, and checks Origin and Sec-Fetch-Site', async () => {
    const { app: a } = app();
    expect((await req(a, '/api/jobs/a/run', { method: 'POST' })).status).toBe(401);
    expect((await req(a, '/api/jobs/a/run', { method: 'POST', headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401);
    expect((await req(a, '/api/jobs/a/run', { method: 'POST', headers: { cookie: `token=${TOKEN}` } })).status).toBe(401);
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await req(a, '/api/jobs/a/run', { method: 'POST', headers: { ...auth, origin: 'http://evil.example' } })).status).toBe(403);
    expect((await req(a, '/api/jobs/a/run', { method: 'POST', headers: { ...auth, origin: 'http://127.0.0.1:9999' } })).status).toBe(403);
    expect((await req(a, '/api/jobs/a/run', { method: 'POST', headers: { ...auth, 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
    expect((await req(a, '/api/events', { headers: { origin: 'http://evil.example' } })).status).toBe(403);
    expect((await req(a, '/api/jobs/nope/run', { method: 'POST', headers: { ...auth, origin: 'http://127.0.0.1:8080', 'sec-fetch-site': 'same-origin' } })).status).toBe(404);
  });

  it('answers 421 to a Host that is not loopback or configured', async () => {
    const { app: a } = app();
    for (const host of ['evil.example', 'evil.example:8080', '127.0.0.1.nip.io:8080', '']) {
      expect((await req(a, '/api/jobs', { headers: { host } })).status).toBe(421);
    }
    for (const host of ['localhost:8080', '[::1]:8080', 'backup.lan:8080', 'LOCALHOST']) {
      expect((await req(a, '/api/jobs', { headers: { host } })).status).toBe(200);
    }
  });

  it('bound to a non-loopback address, needs the token for reads too, and the CLI refuses such a bind without one', async () => {
    const { app: a, dir } = app('10.0.0.5');
    expect((await req(a, '/api/jobs', { headers: { host: '10.0.0.5:8080' } })).status).toBe(401);
    expect((await req(a, '/api/jobs', { headers: { host: '10.0.0.5:8080', authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    const refused = cli(dir, 'serve', '--host', '0.0.0.0', '--port', '0');
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/E_USAGE: refusing to serve on 0\.0\.0\.0 \(not a loopback address\) without a token/);
  });

  it('generates a token once, stores it with mode 0600, and prefers SCRIPTORIUM_TOKEN', () => {
    const w = workDir();
    cleanup = w.cleanup;
    const env = { XDG_CONFIG_HOME: w.dir, HOME: w.dir };
    const first = resolveToken(env);
    expect(first.source).toBe('generated');
    expect(statSync(tokenFile(env)).mode & 0o777).toBe(0o600);
    expect(statSync(join(w.dir, 'scriptorium')).mode & 0o777).toBe(0o700);
    expect(resolveToken(env)).toEqual({ token: first.token, source: 'file', file: first.file });
    expect(resolveToken({ ...env, SCRIPTORIUM_TOKEN: TOKEN })).toEqual({ token: TOKEN, source: 'env' });
    expect(() => resolveToken({ ...env, SCRIPTORIUM_TOKEN: 'short' })).toThrow(expect.objectContaining({ code: 'E_CONFIG' }));
  });
});
