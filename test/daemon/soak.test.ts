/**
 * A bounded soak (loopback only): `scriptorium serve --jobs` runs a job every second for
 * SCRIPTORIUM_SOAK_SECONDS (default 40) while the API is polled and event-stream clients connect and
 * drop. Then: every run is recorded (journal and history), no two runs overlapped, and the server's
 * resident memory stayed flat (loosely: robust on a loaded machine, not a timing test).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cli, ends, history, journal, makeDb, needDist, startWith, starts, until, workDir, writeConfig, type Running } from './helpers.js';

const SECONDS = Number(process.env.SCRIPTORIUM_SOAK_SECONDS ?? 40);

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

describe('soak', () => {
  let serve: Running | undefined;
  let cleanup: (() => void) | undefined;
  beforeAll(needDist);
  afterEach(async () => {
    if (serve && serve.proc.exitCode === null) {
      serve.proc.kill('SIGKILL');
      await serve.exited;
    }
    cleanup?.();
  });

  it(`runs a job every second for ${SECONDS} s under dashboard polling and SSE churn: every run recorded, none overlapping, memory flat`, async () => {
    const w = workDir();
    cleanup = w.cleanup;
    makeDb(join(w.dir, 'a.db'), 2000);
    expect(cli(w.dir, 'init', 'repo', '-q').status).toBe(0);
    writeConfig(w.dir, { jobs: { tick: { source: 'a.db', repository: './repo', every: '1s', verify: { afterBackup: false }, retention: { keepLast: 5 } } } });
    serve = startWith(w.dir, { SCRIPTORIUM_TOKEN: 'soak-token-0123456789abcdef', XDG_CONFIG_HOME: join(w.dir, 'xdg') }, 'serve', '--port', '0', '--jobs');
    const url = await until('the dashboard', () => /dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(serve!.output())?.[1], 30_000);
    const pid = serve.proc.pid!;
    const rss: number[] = [];
    const failures: string[] = [];
    const stopAt = Date.now() + SECONDS * 1000;
    let polls = 0;
    let streams = 0;
    let events = 0;
    const poller = (async () => {
      while (Date.now() < stopAt) {
        for (const path of ['api/jobs', 'api/operations?limit=200', 'api/alerts', '']) {
          const res = await fetch(`${url}${path}`).catch((e: Error) => ({ ok: false, status: e.message }) as const);
          if (!res.ok) failures.push(`${path}: ${res.status}`);
          else await (res as Response).arrayBuffer();
          polls++;
        }
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    const churn = (async () => {
      while (Date.now() < stopAt) {
        const abort = new AbortController();
        const res = await fetch(`${url}api/events`, { signal: abort.signal });
        streams++;
        const reader = res.body!.getReader();
        const dropAt = Date.now() + 300 + Math.random() * 1500;
        try {
          while (Date.now() < dropAt) {
            const chunk = await Promise.race([reader.read(), new Promise<undefined>((r) => setTimeout(() => r(undefined), dropAt - Date.now()))]);
            if (chunk && !chunk.done) events += (new TextDecoder().decode(chunk.value).match(/^event:/gm) ?? []).length;
          }
        } finally {
          abort.abort();
        }
      }
    })();
    while (Date.now() < stopAt) {
      rss.push(rssMiB(pid));
      await new Promise((r) => setTimeout(r, 1000));
    }
    await Promise.all([poller, churn.catch(() => undefined)]);
    serve.proc.kill('SIGTERM');
    expect((await serve.exited).code).toBe(0);

    expect(failures).toEqual([]);
    expect(streams).toBeGreaterThan(SECONDS / 3);
    expect(events).toBeGreaterThan(0);
    const j = journal(w.dir);
    const runs = starts(j).filter((s) => s.job === 'tick');
    const done = ends(j).filter((e) => e.job === 'tick');
    expect(runs.length).toBeGreaterThan(SECONDS / 4);
    expect(done.length).toBe(runs.length); // every run ended and is recorded
    expect(done.every((e) => e.status === 'ok')).toBe(true);
    const spans = runs.map((s) => ({ start: Date.parse(s.at), end: Date.parse(done.find((e) => e.run === s.run)!.at) }));
    for (let i = 1; i < spans.length; i++) expect(spans[i]!.start).toBeGreaterThanOrEqual(spans[i - 1]!.end);
    const backups = history(w.dir).filter((r) => r.kind === 'backup' && r.job === 'tick');
    expect(backups.length).toBe(done.length);
    // Memory: the second half's median within 30 MiB of the first half's (workers are separate processes).
    const half = rss.length >> 1;
    const early = median(rss.slice(2, half));
    const late = median(rss.slice(half));
    console.log(`soak: ${runs.length} runs, ${polls} polls, ${streams} SSE clients, ${events} events; serve RSS median ${early.toFixed(1)} → ${late.toFixed(1)} MiB (max ${Math.max(...rss).toFixed(1)})`);
    expect(late - early).toBeLessThan(30);
  }, (SECONDS + 90) * 1000);
});
