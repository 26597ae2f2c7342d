/**
 * What keeps `scriptorium serve` flat over a long run, on a real socket and real files: event-stream
 * clients that drop are released at once (the feed's listener and the ping timer), new history records
 * still reach the clients that stay, and the history is held as a bounded window that follows
 * compactions (history-tail.ts) rather than as the whole file re-read on every change.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDaemonConfig, type DaemonConfig } from '../../src/daemon/job-config.js';
import { startDashboard } from '../../src/dashboard/server.js';
import { HistoryStore } from '../../src/monitor/history-store.js';
import { HistoryTail } from '../../src/monitor/history-tail.js';
import { makeRecord } from '../monitor/helpers.js';
import { until, workDir } from '../daemon/helpers.js';

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('bounded dashboard', () => {
  const cleanups: Array<() => void | Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  const setup = (): { dir: string; config: DaemonConfig } => {
    const w = workDir();
    cleanups.push(w.cleanup);
    const file = join(w.dir, 'scriptorium.config.json');
    const text = JSON.stringify({ jobs: { a: { source: 'a.db', repository: './repo', every: '1h' } } });
    writeFileSync(file, text);
    return { dir: w.dir, config: parseDaemonConfig(text, file) };
  };

  it('releases event-stream clients that drop (listener and ping timer), and sends new records to those that stay', async () => {
    const { config } = setup();
    const history = new HistoryStore(config.monitor.history);
    history.append(makeRecord({ kind: 'backup', job: 'a' }));
    const dashboard = await startDashboard({ config, token: 'bounded-test-token-0123456789', host: '127.0.0.1', port: 0 });
    cleanups.push(() => dashboard.close());
    const before = timers();

    // Ten clients connect, get their hello, and drop.
    const dropped = await Promise.all([...Array(10).keys()].map(async () => {
      const abort = new AbortController();
      const res = await fetch(`${dashboard.url}api/events`, { signal: abort.signal });
      const reader = res.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      return { abort, first };
    }));
    expect(dropped.every((d) => d.first.startsWith('event: hello'))).toBe(true);
    expect(dashboard.feed.listeners).toBe(10);
    expect(timers()).toBeGreaterThanOrEqual(before + 10); // a ping timer each
    for (const d of dropped) d.abort.abort();
    await until('the dropped clients released', () => dashboard.feed.listeners === 0, 10_000);
    await until('their timers cleared', () => timers() <= before, 10_000);

    // One that stays sees a record appended after it connected.
    const abort = new AbortController();
    cleanups.push(() => abort.abort());
    const res = await fetch(`${dashboard.url}api/events`, { signal: abort.signal });
    const reader = res.body!.getReader();
    let text = '';
    const reading = (async () => {
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) return;
        text += new TextDecoder().decode(chunk.value);
      }
    })().catch(() => undefined);
    await until('the hello', () => text.includes('event: hello'), 10_000);
    const late = makeRecord({ kind: 'backup', job: 'a', id: 'late-record' });
    history.append(late);
    await until('the new record on the stream', () => text.includes('event: record') && text.includes('late-record'), 10_000);
    expect(text.match(/event: record/g)).toHaveLength(1); // the one before the client connected is not sent again
    abort.abort();
    await reading;
    await until('the last client released', () => dashboard.feed.listeners === 0, 10_000);
  }, 60_000);

  it('holds the newest records as a bounded window, reads only what was appended, and follows a compaction', () => {
    const { config } = setup();
    const path = config.monitor.history.path;
    const history = new HistoryStore({ path, maxEntries: 300 });
    const tail = new HistoryTail({ path, maxPerGroup: 100 });
    expect(tail.update()).toEqual([]);
    const ids: string[] = [];
    const add = (n: number) => {
      for (let i = 0; i < n; i++) {
        const r = makeRecord({ kind: i % 2 ? 'verify' : 'backup', job: 'a' });
        ids.push(r.id);
        history.append(r);
      }
    };
    add(250);
    expect(tail.update().map((r) => r.id)).toEqual(ids);
    expect(tail.records().map((r) => r.id)).toEqual(ids.slice(-100)); // bounded
    add(5);
    expect(tail.update().map((r) => r.id)).toEqual(ids.slice(-5)); // only the new ones
    expect(tail.update()).toEqual([]);
    // A torn line and a duplicate (an append that raced a compaction) are skipped.
    const text = readFileSync(path, 'utf8');
    const lastLine = text.slice(text.lastIndexOf('\n', text.length - 2) + 1);
    appendFileSync(path, `{"v":1,"id":"tor\n${lastLine}`);
    expect(tail.update()).toEqual([]);
    // Past maxEntries an append compacts the file (a new file renamed over it): the window follows,
    // and reports as new only what it had not seen.
    add(100);
    expect(history.compact()?.kept).toBeLessThanOrEqual(300);
    const added = tail.update().map((r) => r.id);
    expect(added).toEqual(ids.slice(-100));
    expect(tail.records().map((r) => r.id)).toEqual(ids.slice(-100));

    // Groups: per job, only what is asked for.
    const perJob = new HistoryTail({ path, maxPerGroup: 3, group: (r) => (r.kind === 'backup' ? r.job : undefined) });
    perJob.update();
    expect(perJob.groups()).toEqual(['a']);
    expect(perJob.records('a').map((r) => r.kind)).toEqual(['backup', 'backup', 'backup']);
  });
});
