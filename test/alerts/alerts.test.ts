/**
 * Alerts received on a local HTTP server: failure and resolved (through `scriptorium run`, a real
 * process), HMAC signatures, retries, delivery failures recorded, Slack and ntfy bodies, commands with
 * the alert in env and on stdin, silence checked on a tick with no run, trends with hysteresis, and
 * repeats at the set interval, not on every check.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AlertEngine } from '../../src/alerts/alert-engine.js';
import { makeAlert } from '../../src/alerts/alert.js';
import { deliverWebhook, webhookBody } from '../../src/alerts/deliver.js';
import { parseDaemonConfig, type DaemonConfig } from '../../src/daemon/job-config.js';
import { Journal } from '../../src/daemon/journal.js';
import { HistoryStore } from '../../src/monitor/history-store.js';
import { makeRecord } from '../monitor/helpers.js';
import { cli, cliAsync, journal, makeDb, needDist, workDir } from '../daemon/helpers.js';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A local HTTP server that records requests; `status` decides each answer (default 200). */
async function receiver(status: (n: number, req: IncomingMessage) => number = () => 200): Promise<{ url: string; got: Received[]; server: Server }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body });
      res.statusCode = status(got.length, req);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got, server };
}

describe('alerts', () => {
  const cleanups: Array<() => void> = [];
  beforeAll(needDist);
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });
  const setup = async (status?: (n: number, req: IncomingMessage) => number) => {
    const w = workDir();
    const r = await receiver(status);
    cleanups.push(() => r.server.close(), w.cleanup);
    return { dir: w.dir, ...r };
  };

  it('sends a signed failure alert, no second one while it persists, and a resolved one when the job works again; with Healthchecks pings and a command', async () => {
    const { dir, url, got } = await setup();
    makeDb(join(dir, 'app.db'), 100);
    renameSync(join(dir, 'app.db'), join(dir, 'later.db'));
    expect(cli(dir, 'init', 'repo', '-q').status).toBe(0);
    writeFileSync(join(dir, 'scriptorium.config.json'), JSON.stringify({
      jobs: { guests: { source: 'app.db', repository: './repo', every: '1h', alerts: ['ops'] } },
      alerts: { ops: {
        webhook: { url: `${url}/hook`, secret: 's3cret' }, healthchecks: `${url}/ping/abc`,
        command: `cat > "${dir}/stdin-$SCRIPTORIUM_ALERT_STATE.json"; echo "$SCRIPTORIUM_ALERT_JOB $SCRIPTORIUM_ALERT_CONDITION" > "${dir}/env-$SCRIPTORIUM_ALERT_STATE.txt"`,
        repeatEvery: '6h',
        on: ['failure', 'verify'], // not `target`: a 100-row backup on a loaded machine can miss the 300 rows/s default
      } },
    }));
    expect((await cliAsync(dir, 'run', 'guests')).status).toBe(1);
    expect((await cliAsync(dir, 'run', 'guests')).status).toBe(1); // still failing: no new alert (repeatEvery 6h)
    renameSync(join(dir, 'later.db'), join(dir, 'app.db'));
    expect((await cliAsync(dir, 'run', 'guests')).status).toBe(0);

    const hooks = got.filter((g) => g.path === '/hook');
    expect(hooks.map((h) => (JSON.parse(h.body) as { state: string }).state)).toEqual(['firing', 'resolved']);
    const firing = JSON.parse(hooks[0]!.body) as { job: string; condition: string; message: string };
    expect(firing).toMatchObject({ job: 'guests', condition: 'failure' });
    expect(firing.message).toMatch(/failed in its backup step: E_NOT_FOUND/);
    for (const h of hooks) {
      expect(h.headers['x-scriptorium-signature']).toBe(`sha256=${createHmac('sha256', 's3cret').update(h.body).digest('hex')}`);
      expect(h.headers['content-type']).toBe('application/json');
    }
    // Healthchecks: /start and /fail for each failed run, /start and success for the good one.
    expect(got.filter((g) => g.path.startsWith('/ping/abc')).map((g) => g.path)).toEqual([
      '/ping/abc/start', '/ping/abc/fail', '/ping/abc/start', '/ping/abc/fail', '/ping/abc/start', '/ping/abc',
    ]);
    // The command had the alert on stdin and in its environment.
    expect(JSON.parse(readFileSync(join(dir, 'stdin-firing.json'), 'utf8'))).toMatchObject({ job: 'guests', condition: 'failure', state: 'firing' });
    expect(readFileSync(join(dir, 'env-resolved.txt'), 'utf8')).toBe('guests failure\n');
    // Each alert is in the journal.
    expect(journal(dir).filter((e) => e.t === 'alert').map((e) => (e as { state: string }).state)).toEqual(['firing', 'resolved']);
  });

  it('alerts on a missed target and on a failed verify (a pack damaged after the backup), naming what was measured and found', async () => {
    const { dir, url, got } = await setup();
    makeDb(join(dir, 'app.db'), 3000);
    expect(cli(dir, 'init', 'repo', '-q').status).toBe(0);
    writeFileSync(join(dir, 'scriptorium.config.json'), JSON.stringify({
      jobs: { guests: { source: 'app.db', repository: './repo', every: '1h', alerts: ['ops'], targets: { maxDurationMs: 1 }, verify: { readDataPercent: 100 } } },
      alerts: { ops: { webhook: `${url}/hook`, on: ['target', 'verify', 'failure'] } },
    }));
    expect((await cliAsync(dir, 'run', 'guests')).status).toBe(0);
    const first = got.map((g) => JSON.parse(g.body) as { condition: string; state: string; message: string });
    expect(first.map((a) => `${a.condition}:${a.state}`)).toEqual(['target:firing']);
    expect(first[0]!.message).toMatch(/missed its targets: maxDurationMs measured [\d.]+, limit 1/);
    // Damage every pack: the next run's backup stores nothing new, and its verify reads every pack.
    const packs = join(dir, 'repo', 'packs');
    for (const sub of readdirSync(packs)) {
      for (const f of readdirSync(join(packs, sub))) {
        const file = join(packs, sub, f);
        const bytes = readFileSync(file);
        bytes[bytes.length >> 1] ^= 0xff;
        writeFileSync(file, bytes);
      }
    }
    expect((await cliAsync(dir, 'run', 'guests')).status).toBe(1);
    const second = got.slice(1).map((g) => JSON.parse(g.body) as { condition: string; state: string; message: string });
    expect(second.map((a) => `${a.condition}:${a.state}`)).toEqual(['verify:firing']);
    expect(second[0]!.message).toMatch(/verifying .*repo failed: E_CORRUPT/);
  });

  it('retries a webhook that fails with 500, and records a delivery that never succeeds', async () => {
    const { dir, url, got } = await setup((n) => (n === 1 ? 500 : 200));
    const alert = makeAlert({ alert: 'ops', job: 'j', condition: 'failure', state: 'firing', message: 'm', at: Date.now() });
    const ok = await deliverWebhook(alert, { url, format: 'json', timeoutMs: 2000, retries: 3 }, 10);
    expect(ok).toEqual({ channel: 'webhook', ok: true, attempts: 2 });
    expect(got.length).toBe(2);
    // A server that is not there: every attempt fails, and `alert test` says so, records it, and exits 1.
    const closed = await receiver();
    const dead = `${closed.url}/hook`;
    await new Promise((r) => closed.server.close(r));
    writeFileSync(join(dir, 'scriptorium.config.json'), JSON.stringify({ alerts: { ops: { webhook: { url: dead, retries: 1, timeout: '2s' } } } }));
    const test = await cliAsync(dir, 'alert', 'test', 'ops');
    expect(test.status).toBe(1);
    expect(test.stdout).toMatch(/webhook: FAILED after 2 attempt\(s\): fetch failed \(ECONNREFUSED\)/);
    expect(journal(dir).find((e) => e.t === 'delivery')).toMatchObject({ alert: 'ops', channel: 'webhook', ok: false, attempts: 2 });
    // A 4xx is not retried.
    const { url: url4, got: got4 } = await setup(() => 404);
    expect(await deliverWebhook(alert, { url: url4, format: 'json', timeoutMs: 2000, retries: 3 }, 10)).toMatchObject({ ok: false, attempts: 1, error: expect.stringMatching(/HTTP 404/) });
    expect(got4.length).toBe(1);
  });

  it('sends Slack-compatible and ntfy bodies, and `alert test` reaches a local server', async () => {
    const { dir, url, got } = await setup();
    const alert = makeAlert({ alert: 'ops', job: 'guests', condition: 'silence', state: 'firing', message: 'no backup for 27h', at: Date.parse('2026-12-03T10:00:00Z') });
    expect(JSON.parse(webhookBody(alert, 'slack').body)).toEqual({ text: ':rotating_light: scriptorium alert: guests: silence\nno backup for 27h' });
    writeFileSync(join(dir, 'scriptorium.config.json'), JSON.stringify({ alerts: { ops: { webhook: { url: `${url}/topic`, format: 'ntfy' } } } }));
    const test = await cliAsync(dir, 'alert', 'test', 'ops');
    expect(test.stdout).toBe('webhook: delivered\n');
    expect(got[0]).toMatchObject({ path: '/topic', body: 'a test alert from scriptorium alert test ops' });
    expect(got[0]!.headers.title).toBe('scriptorium test: (test): test');
    expect(cli(dir, 'alert', 'test', 'pager').stderr).toMatch(/E_NOT_FOUND: no alert named pager/);
  });

  /** An engine on a config in `dir` with an injected clock. */
  const engineFor = (dir: string, url: string, alert: Record<string, unknown>, clock: { now: number }): { engine: AlertEngine; config: DaemonConfig } => {
    const file = join(dir, 'scriptorium.config.json');
    const text = JSON.stringify({ jobs: { a: { source: 'a.db', repository: './repo', every: '1h', alerts: ['ops'] } }, alerts: { ops: { webhook: url, ...alert } } });
    writeFileSync(file, text);
    const config = parseDaemonConfig(text, file);
    return { engine: new AlertEngine(config, { now: () => clock.now, log: () => {} }), config };
  };

  it('checks silence on a tick with no run, repeats it at its interval only, and resolves it after a success', async () => {
    const { dir, url, got } = await setup();
    const clock = { now: Date.parse('2026-12-01T00:00:00Z') };
    const { engine, config } = engineFor(dir, url, { silenceAfter: '26h', repeatEvery: '6h' }, clock);
    const j = new Journal(config.journalPath);
    j.append({ v: 1, t: 'enrol', task: 'a', job: 'a', at: '2026-12-01T00:00:00.000Z' });
    const states = () => got.map((g) => (JSON.parse(g.body) as { state: string }).state);
    for (const hours of [25, 27, 28, 30, 33, 34]) {
      clock.now = Date.parse('2026-12-01T00:00:00Z') + hours * 3_600_000;
      await engine.tick();
    }
    expect(states()).toEqual(['firing', 'repeat']); // at 27 h, then 6 h later (33 h); not at 28, 30, 34
    expect((JSON.parse(got[0]!.body) as { message: string }).message).toMatch(/no successful backup for 27h \(silenceAfter 26h\); last success: never/);
    j.append({ v: 1, t: 'end', run: 'r', task: 'a', job: 'a', kind: 'backup', status: 'ok', at: new Date(clock.now).toISOString(), durationMs: 10, steps: [] });
    clock.now += 60_000;
    await engine.tick();
    await engine.tick();
    expect(states()).toEqual(['firing', 'repeat', 'resolved']);
    expect(existsSync(config.journalPath)).toBe(true);
  });

  it('judges a trend by medians with hysteresis: one slow run pages no one, a lasting slowdown does, and it clears only well below the line', async () => {
    const { dir, url, got } = await setup();
    const clock = { now: Date.parse('2026-12-03T00:00:00Z') };
    const { engine, config } = engineFor(dir, url, { on: ['trend'] }, clock);
    const history = new HistoryStore(config.monitor.history);
    const add = (...durations: number[]) => {
      for (const durationMs of durations) history.append(makeRecord({ kind: 'backup', job: 'a', durationMs, rows: 10_000 }));
    };
    const job = config.jobs.get('a')!;
    const check = async () => (await engine.evaluate([job], ['trend'])).map((a) => a.state);
    add(...Array(12).fill(2000), 9000); // one slow run on a busy machine
    expect(await check()).toEqual([]);
    add(2100, 2050); // and the median of the last three is back to normal
    expect(await check()).toEqual([]);
    add(4000, 4000, 4000); // a lasting slowdown: +100 % against the 10 before
    const fired = await check();
    expect(fired).toEqual(['firing']);
    expect((JSON.parse(got[0]!.body) as { message: string }).message).toMatch(/median of the last 3 backups of a is 4\.0 s, 100% slower than the median 2\.0 s of the 10 before/);
    add(2500, 2500, 2500); // +25 %: under the 50 % line that fired, but over the 20 % line that clears
    expect(await check()).toEqual([]);
    add(2200, 2200, 2200); // well below
    expect(await check()).toEqual(['resolved']);
    expect(await check()).toEqual([]);
  });
});
