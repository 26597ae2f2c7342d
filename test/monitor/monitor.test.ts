// The Monitor: explicit start/progress/complete/fail, events ingested from a library operation's
// onEvent, subscriptions (callbacks and async iterables), memory sampled during the run, and history.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ScriptoriumError } from '../../src/core/errors.js';
import type { EventListener, OperationEvent } from '../../src/core/events.js';
import { HistoryStore, Monitor } from '../../src/monitor/index.js';
import { sleep, tempDir } from './helpers.js';

const MIB = 1024 * 1024;

let dir = '';
let cleanup = () => {};
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

/** A stand-in for a library operation that reports through `onEvent`, as exports and restores do. */
function fakeExport(onEvent: EventListener): void {
  const base = { id: 'export-7', kind: 'export' as const };
  const t0 = Date.parse('2025-03-01T10:00:00Z');
  onEvent({ ...base, type: 'started', time: t0, source: 'sqlite:///data/app.db', target: 'postgres://bob:hunter2@db/x', format: 'jsonl', totalRows: 2000 });
  onEvent({ ...base, type: 'progress', time: t0 + 500, phase: 'rows', rowsDone: 1000, rowsTotal: 2000, bytesIn: 4096, bytesOut: 50_000, rowsPerSecond: 2000 });
  onEvent({ ...base, type: 'completed', time: t0 + 1000, rows: 2000, bytesIn: 8192, bytesOut: 2 * MIB, durationMs: 1000, result: { output: '/backups/app.jsonl', big: 12n } });
}

/** The `gc` function, made available without --expose-gc. */
function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

describe('Monitor', () => {
  it('records an operation from the events a library operation emits through monitor.listener', async () => {
    const history = new HistoryStore({ path: join(dir, 'h.jsonl') });
    const monitor = new Monitor({ history });
    const seen: string[] = [];
    monitor.on((e) => seen.push(e.type));

    fakeExport(monitor.listener);

    const record = monitor.record('export-7');
    expect(record).toMatchObject({
      id: 'export-7',
      kind: 'export',
      source: 'sqlite:///data/app.db',
      target: 'postgres://bob:***@db/x',
      format: 'jsonl',
      startedAt: '2025-03-01T10:00:00.000Z',
      endedAt: '2025-03-01T10:00:01.000Z',
      durationMs: 1000,
      rows: 2000,
      bytesIn: 8192,
      bytesOut: 2 * MIB,
      rowsPerSecond: 2000,
      mbPerSecond: 2,
      ok: true,
      result: { output: '/backups/app.jsonl', big: '12' },
      pid: process.pid,
    });
    expect(record!.samples).toBeGreaterThanOrEqual(3); // start, progress, end
    expect(record!.peakRssBytes).toBeGreaterThan(0);
    expect(record!.peakHeapUsedBytes).toBeGreaterThan(0);
    expect(seen).toEqual(['started', 'progress', 'completed']);
    expect(await history.list()).toEqual([record]);
    monitor.close();
  });

  it('measures an operation run through start/progress/complete and writes it to history', async () => {
    const history = new HistoryStore({ path: join(dir, 'h.jsonl') });
    const monitor = new Monitor({ history });
    const events: OperationEvent[] = [];
    monitor.on((e) => events.push(e));

    const op = monitor.start({ kind: 'backup', source: 'app.db', target: 's3://b/repo?secretAccessKey=abc', totalRows: 100 });
    op.progress({ rowsDone: 40, bytesIn: 1000, bytesOut: 400, table: 't' });
    const record = op.complete({ rows: 100, result: { snapshot: 'abc123' } });

    expect(record).toMatchObject({ id: op.id, kind: 'backup', target: 's3://b/repo?secretAccessKey=***', rows: 100, bytesIn: 1000, bytesOut: 400, ok: true });
    expect(record.durationMs).toBeGreaterThanOrEqual(0);
    expect(new Date(record.endedAt).getTime()).toBeGreaterThanOrEqual(new Date(record.startedAt).getTime());
    expect(events.map((e) => e.type)).toEqual(['started', 'progress', 'completed']);
    expect(events[1]).toMatchObject({ type: 'progress', rowsDone: 40, rowsTotal: 100, table: 't', phase: 'rows' });
    expect((events[1] as { etaSeconds?: number }).etaSeconds).toBeGreaterThanOrEqual(0);
    // The first end wins.
    expect(op.complete({ rows: 1 })).toBe(record);
    expect(op.fail(new Error('late'))).toBe(record);
    expect(await history.list()).toEqual([record]);
    monitor.close();
  });

  it('records a failure with the error code and a redacted message', async () => {
    const history = new HistoryStore({ path: join(dir, 'h.jsonl') });
    const monitor = new Monitor({ history });
    const op = monitor.start({ kind: 'restore' });
    op.progress({ rowsDone: 10 });
    const record = op.fail(new ScriptoriumError('E_IO', 'write to postgres://u:pw@h/db failed'));
    expect(record).toMatchObject({ ok: false, rows: 10, error: { code: 'E_IO', message: 'write to postgres://u:***@h/db failed' } });
    const enoent = monitor.start({ kind: 'restore' }).fail(Object.assign(new Error('no file'), { code: 'ENOENT' }));
    expect(enoent.error?.code).toBe('ENOENT');
    expect(monitor.start({ kind: 'verify' }).fail('just a string').error).toEqual({ code: 'E_INTERNAL', message: 'just a string' });
    expect((await history.list()).map((r) => r.error?.code)).toEqual(['E_IO', 'ENOENT', 'E_INTERNAL']);
    monitor.close();
  });

  it('samples peak RSS on a timer while the operation runs, not only at its ends', async () => {
    const gc = exposeGc();
    const monitor = new Monitor({ sampleIntervalMs: 20 });
    const op = monitor.start({ kind: 'export' });
    let big: Buffer | undefined = Buffer.alloc(256 * MIB, 1); // filled, so its pages are resident
    const rssWithBuffer = process.memoryUsage().rss;
    await sleep(200); // no progress event: only the timer can see the buffer
    expect(big.length).toBe(256 * MIB);
    big = undefined;
    // V8 frees dead buffers' memory in the background: wait until most of it is back (not just half,
    // or the end sample can land within 128 MiB of the peak on a busy machine).
    for (let i = 0; i < 200 && process.memoryUsage().rss > rssWithBuffer - 192 * MIB; i++) {
      gc();
      await sleep(10);
    }
    const record = op.complete({ rows: 1 });
    expect(record.endRssBytes).toBeLessThan(rssWithBuffer - 192 * MIB);
    expect(record.peakRssBytes).toBeGreaterThan(record.endRssBytes + 128 * MIB);
    expect(record.peakHeapUsedBytes).toBeGreaterThan(0);
    expect(record.samples).toBeGreaterThan(3);
    monitor.close();
  });

  it('samples memory at progress events too', async () => {
    const gc = exposeGc();
    const monitor = new Monitor({ sampleIntervalMs: 3_600_000 }); // the timer never fires here
    const op = monitor.start({ kind: 'export' });
    let big: Buffer | undefined = Buffer.alloc(256 * MIB, 1);
    op.progress({ rowsDone: 1 });
    expect(big.length).toBe(256 * MIB);
    big = undefined;
    const peakSeen = process.memoryUsage().rss;
    for (let i = 0; i < 200 && process.memoryUsage().rss > peakSeen - 192 * MIB; i++) {
      gc();
      await sleep(10);
    }
    const record = op.complete();
    expect(record.samples).toBe(3);
    expect(record.peakRssBytes).toBeGreaterThan(record.endRssBytes + 128 * MIB);
    monitor.close();
  });

  it('streams events as an async iterable that ends when its signal fires', async () => {
    const monitor = new Monitor();
    const controller = new AbortController();
    const stream = monitor.events({ signal: controller.signal });
    const op = monitor.start({ kind: 'export' }); // emitted before reading starts: still delivered
    op.progress({ rowsDone: 5 });
    op.complete();
    const types: string[] = [];
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'completed') controller.abort();
    }
    expect(types).toEqual(['started', 'progress', 'completed']);
    // An already-aborted signal gives an empty stream.
    const empty: OperationEvent[] = [];
    for await (const e of monitor.events({ signal: controller.signal })) empty.push(e);
    expect(empty).toEqual([]);
    // A signal firing while the reader waits ends the loop.
    const later = new AbortController();
    const waiting = (async () => {
      for await (const e of monitor.events({ signal: later.signal })) empty.push(e);
    })();
    await sleep(5);
    later.abort();
    await waiting;
    expect(empty).toEqual([]);
    monitor.close();
  });

  it('ends event streams on close, after queued events, failing operations still open', async () => {
    const history = new HistoryStore({ path: join(dir, 'h.jsonl') });
    const monitor = new Monitor({ history });
    const types: string[] = [];
    const reading = (async () => {
      for await (const event of monitor.events()) types.push(event.type);
    })();
    const op = monitor.start({ kind: 'import' });
    await sleep(5);
    monitor.close();
    await reading;
    expect(types).toEqual(['started', 'failed']);
    expect(op.complete().error?.code).toBe('E_ABORTED');
    expect((await history.list()).map((r) => r.error?.code)).toEqual(['E_ABORTED']);
    expect(() => monitor.start({ kind: 'export' })).toThrow(TypeError);
  });

  it('collapses queued progress events for a slow reader, keeping every start and end', async () => {
    const monitor = new Monitor();
    const stream = monitor.events({ maxBuffered: 3 });
    const op = monitor.start({ kind: 'export' });
    for (let i = 1; i <= 100; i++) op.progress({ rowsDone: i });
    op.complete();
    monitor.close();
    const got: OperationEvent[] = [];
    for await (const e of stream) got.push(e);
    expect(got.map((e) => e.type)).toEqual(['started', 'progress', 'progress', 'completed']);
    expect(got[2]).toMatchObject({ rowsDone: 100 });
  });

  it('unsubscribes listeners and survives a throwing one', () => {
    const errors: unknown[] = [];
    const monitor = new Monitor({ onError: (e) => errors.push(e) });
    const calls: string[] = [];
    const off = monitor.on(() => calls.push('a'));
    monitor.on(() => {
      throw new Error('listener bug');
    });
    monitor.on(() => calls.push('c'));
    monitor.start({ kind: 'export' }).complete();
    off();
    monitor.start({ kind: 'export' }).complete();
    expect(calls).toEqual(['a', 'c', 'a', 'c', 'c', 'c']);
    expect(errors).toHaveLength(4);
    monitor.close();
  });

  it('keeps the last records in memory and reports a failing history write without failing the operation', () => {
    const errors: unknown[] = [];
    // A folder where the history file should be: every append fails with EISDIR.
    const path = join(dir, 'in-the-way');
    mkdirSync(path);
    const monitor = new Monitor({ history: new HistoryStore({ path }), keep: 2, onError: (e) => errors.push(e) });
    const ids = [1, 2, 3].map(() => monitor.start({ kind: 'verify' }).complete().id);
    expect(monitor.recent().map((r) => r.id)).toEqual(ids.slice(1));
    expect(monitor.record(ids[0])).toBeUndefined();
    expect(errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['EISDIR', 'EISDIR', 'EISDIR']);
    monitor.close();
  });

  it('rejects bad calls with TypeError', () => {
    const monitor = new Monitor();
    expect(() => monitor.start({ kind: '' })).toThrow(TypeError);
    const op = monitor.start({ kind: 'export', id: 'fixed' });
    expect(() => monitor.start({ kind: 'export', id: 'fixed' })).toThrow(TypeError);
    expect(() => op.progress({ rowsDone: -1 })).toThrow(TypeError);
    expect(() => monitor.on(42 as unknown as EventListener)).toThrow(TypeError);
    monitor.close();
  });
});
