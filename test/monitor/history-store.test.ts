// The history file: appends survive a restart, torn lines are skipped and counted, retention compacts
// to the newest entries and rolls the rest up into the archive, and the compaction lock is respected.
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HistoryStore, MAX_LINE_BYTES, encodeRecord, tryLock } from '../../src/monitor/index.js';
import { makeRecord, tempDir } from './helpers.js';

let dir = '';
let cleanup = () => {};
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

describe('HistoryStore', () => {
  it('appends records that a new store (a restarted process) reads back, filtered by kind and count', async () => {
    const path = join(dir, 'backups', '.scriptorium-history.jsonl');
    const first = new HistoryStore({ path });
    const written = [
      makeRecord({ kind: 'export' }),
      makeRecord({ kind: 'restore' }),
      makeRecord({ kind: 'export', ok: false, error: { code: 'E_IO', message: 'disk full' } }),
      makeRecord({ kind: 'export' }),
    ];
    for (const r of written) first.append(r);

    const second = new HistoryStore({ path });
    expect(await second.list()).toEqual(written);
    expect(await second.list({ kind: 'export' })).toEqual([written[0], written[2], written[3]]);
    expect(await second.list({ kind: 'export', last: 2 })).toEqual([written[2], written[3]]);
    expect(await second.list({ last: 1 })).toEqual([written[3]]);
    expect(await second.list({ kind: 'verify' })).toEqual([]);
    await expect(second.list({ last: -1 })).rejects.toThrow(TypeError);
  });

  it('treats a missing file as an empty history', async () => {
    const store = new HistoryStore({ path: join(dir, 'none', 'h.jsonl') });
    expect(await store.read()).toEqual({ records: [], skipped: 0, duplicates: 0 });
    expect(await store.readArchive()).toEqual([]);
  });

  it('skips and counts a torn last line, and recovers a record glued behind garbage', async () => {
    const path = join(dir, 'h.jsonl');
    const store = new HistoryStore({ path });
    const a = makeRecord();
    const b = makeRecord();
    const c = makeRecord();
    store.append(a);
    // A writer killed mid-line leaves a fragment without a line break; the next append is glued to it.
    appendFileSync(path, encodeRecord(b).slice(0, 40));
    store.append(c);
    // And a write still in progress at the end.
    appendFileSync(path, encodeRecord(makeRecord()).slice(0, 25));

    const { records, skipped } = await store.read();
    expect(records).toEqual([a, c]);
    expect(skipped).toBe(2);
  });

  it('keeps every line under the size limit, dropping the result before clipping strings', () => {
    const big = makeRecord({ result: { tables: 'x'.repeat(5000) }, source: `/data/${'é'.repeat(3000)}.db` });
    const line = encodeRecord(big);
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(MAX_LINE_BYTES);
    expect(line.endsWith('\n')).toBe(true);
    const back = JSON.parse(line);
    expect(back.result).toBeUndefined();
    expect(back.source.endsWith('…')).toBe(true);
    expect(back.rows).toBe(big.rows);
    // A small result is kept.
    expect(JSON.parse(encodeRecord(makeRecord({ result: { output: 'a.jsonl' } }))).result).toEqual({ output: 'a.jsonl' });
  });

  it('compacts past maxEntries: keeps the newest and rolls the older ones up into the archive', async () => {
    const path = join(dir, 'h.jsonl');
    const store = new HistoryStore({ path, maxEntries: 10 });
    const all = Array.from({ length: 25 }, (_, i) =>
      makeRecord({ id: `r${i}`, kind: i % 2 === 0 ? 'export' : 'restore', durationMs: 100 * (i + 1), rows: 1000 }),
    );
    for (const r of all) store.append(r);

    const kept = await store.list();
    expect(kept.length).toBeLessThanOrEqual(10);
    expect(kept.length).toBeGreaterThanOrEqual(9);
    // The newest, in order.
    expect(kept).toEqual(all.slice(all.length - kept.length));

    const archive = await store.readArchive();
    expect(archive.length).toBeGreaterThan(0);
    const archivedIds = all.slice(0, all.length - kept.length);
    const byKind = (kind: string) =>
      archive.flatMap((e) => e.kinds).filter((k) => k.kind === kind).reduce((n, k) => n + k.count, 0);
    expect(byKind('export')).toBe(archivedIds.filter((r) => r.kind === 'export').length);
    expect(byKind('restore')).toBe(archivedIds.filter((r) => r.kind === 'restore').length);
    // The first roll-up summarises the first records dropped, with their figures.
    const first = archive[0].kinds.find((k) => k.kind === 'export');
    expect(first?.from).toBe(all[0].startedAt);
    expect(first?.rows).toBe(first!.count * 1000);
    expect(first?.medianDurationMs).toBeGreaterThan(0);
  });

  it('compact() on demand drops unreadable lines and reports them in the archive', async () => {
    const path = join(dir, 'h.jsonl');
    const store = new HistoryStore({ path });
    store.append(makeRecord());
    appendFileSync(path, 'not json at all\n');
    store.append(makeRecord());
    expect(store.compact()).toEqual({ kept: 2, archived: 0, discardedLines: 1 });
    expect((await store.read()).skipped).toBe(0);
    expect((await store.readArchive())[0]).toMatchObject({ type: 'rollup', discardedLines: 1, kinds: [] });
  });

  it('does not compact while a live process holds the lock, and breaks a stale lock', async () => {
    const path = join(dir, 'h.jsonl');
    const store = new HistoryStore({ path, maxEntries: 2 });
    const release = tryLock(store.lockPath);
    expect(release).toBeDefined();
    for (let i = 0; i < 5; i++) store.append(makeRecord());
    expect(store.compact()).toBeUndefined();
    expect((await store.list()).length).toBe(5);
    release!();
    expect(existsSync(store.lockPath)).toBe(false);

    // A lock left by a process that has exited is stale.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    writeFileSync(store.lockPath, JSON.stringify({ pid: Number(dead), host: hostname(), time: Date.now(), token: 'x' }));
    expect(store.compact()).toMatchObject({ kept: 2, archived: 3 });

    // So is one older than lockStaleMs, whoever wrote it.
    writeFileSync(store.lockPath, JSON.stringify({ pid: process.pid, host: 'elsewhere', time: 0, token: 'y' }));
    utimesSync(store.lockPath, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    expect(store.compact()).toMatchObject({ kept: 2, archived: 0 });
    expect(existsSync(store.lockPath)).toBe(false);
  });

  it('names the archive beside the history file', () => {
    const store = new HistoryStore({ path: '/x/backups/.scriptorium-history.jsonl' });
    expect(store.archivePath).toBe('/x/backups/.scriptorium-history-archive.jsonl');
    expect(() => new HistoryStore({ path: 'h.jsonl', maxEntries: 0 })).toThrow(TypeError);
  });
});
