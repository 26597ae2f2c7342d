/**
 * The repository fuzz suite: manifests, index files, packs' entry tables and the config are mutated
 * inside valid framing (re-sealed under their new hashes, so the change reaches the parser), and every
 * operation runs on the result: verify (structure and --read-data), restore of every snapshot, diff,
 * forget and prune. Each must succeed exactly (a restore gives one of the backed-up databases, value for
 * value) or fail with a specific ScriptoriumError code: never E_INTERNAL or a bare TypeError/RangeError,
 * never a file outside the restore target, never a deletion outside the repository, memory bounded.
 *
 * Reproducible: the seed is fixed (FUZZ_SEED to change it, FUZZ_RUNS to multiply the runs); fast-check
 * prints the seed and the failing case's path on failure.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptoriumError } from '../../src/core/errors.js';
import { compareDatabases } from '../../src/engines/sqlite/compare.js';
import { backup } from '../../src/repository/backup.js';
import { diff } from '../../src/repository/diff.js';
import { forget } from '../../src/repository/forget.js';
import { prune } from '../../src/repository/prune.js';
import { Repository } from '../../src/repository/repository.js';
import { restore } from '../../src/repository/restore.js';
import { verify } from '../../src/repository/verify.js';
import { fidelityDb } from '../repository/helpers.js';
import {
  EDGE_VALUES, encodeIndexBody, jsonMutation, mutateJson, objectFiles, parseIndexBody, readBody, renamePackEverywhere, resealInPlace,
} from './mutations.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261203);
const SCALE = Number(process.env.FUZZ_RUNS ?? 1);
/** RSS may grow by this much over the whole suite (leaks or unbounded allocations would exceed it). */
const RSS_GROWTH_LIMIT = 384 << 20;

let root: string;
let base: string;
let sources: string[];
let rssBaseline = 0;
const profile = new Map<string, number>();

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'scriptorium-fuzz-'));
  const first = fidelityDb(root, 'first.db');
  const second = join(root, 'second.db');
  cpSync(first, second);
  const db = new Database(second);
  db.exec(`UPDATE nokey SET b = b + 100 WHERE rowid % 9 = 0; DELETE FROM pairs WHERE y % 13 = 0;
    INSERT INTO pairs VALUES ('new', 1, x'00ff'); PRAGMA user_version = 43;`);
  db.close();
  sources = [first, second];
  base = join(root, 'base');
  // Small packs, so that tables span several packs and the index has several records.
  await (await Repository.init(base, { packBytes: 4096 })).close();
  await backup(first, base);
  await backup(second, base);
}, 60_000);

afterAll(() => {
  if (process.env.FUZZ_PROFILE) console.log([...profile].map(([k, v]) => `${k}: ${v.toFixed(0)} ms`).join('\n'));
  if (root) rmSync(root, { recursive: true, force: true });
});

/** A fresh copy of the base repository, with a sentinel beside it and an empty restore folder. */
function workspace(): { work: string; repo: string; out: string; sentinel: string } {
  const work = mkdtempSync(join(root, 'case-'));
  const repo = join(work, 'repo');
  cpSync(base, repo, { recursive: true });
  const out = join(work, 'out');
  mkdirSync(out);
  const sentinel = join(work, 'sentinel.txt');
  writeFileSync(sentinel, 'must survive');
  return { work, repo, out, sentinel };
}

function acceptable(err: unknown, op: string, what: string): void {
  if (err instanceof ScriptoriumError && err.code !== 'E_INTERNAL' && /^E_[A-Z_]+$/.test(err.code)) return;
  const e = err as Error;
  throw new Error(`${op} after [${what}] failed with ${e?.name ?? typeof err} ${(e as { code?: string })?.code ?? ''}: ${e?.message ?? String(err)}\n${e?.stack ?? ''}`);
}

/**
 * Runs every operation on the repository in `ws`; `metaChanged` allows a restore whose only
 * difference from a source is the metadata, for a mutation that legitimately changed it.
 */
async function runOperations(ws: ReturnType<typeof workspace>, what: string, metaChanged = false, restoreRef = 'latest'): Promise<void> {
  const { work, repo, out, sentinel } = ws;
  const ids = existsSync(join(repo, 'snapshots')) ? readdirSync(join(repo, 'snapshots')).filter((f) => !f.startsWith('.')) : [];
  const into = join(out, 'restored.db');
  const ops: Array<[string, () => Promise<unknown>]> = [
    ['verify', () => verify(repo)],
    ['verify --read-data', () => verify(repo, { readData: true })],
    // One restore a case (the mutated snapshot, or the latest): restores cost most of the suite's time.
    ...[restoreRef].map((id): [string, () => Promise<unknown>] => [`restore ${id.slice(0, 8)}`, async () => {
      await restore(id, repo, { into });
      const diffs = sources.map((s) => compareDatabases(s, into));
      const exact = diffs.some((d) => d.length === 0);
      // A re-sealed manifest may describe other metadata or fewer indexes, views and triggers: nothing can
      // tell that from the real thing (it is what signatures, later, are for). The table data must match.
      const describedOnly = (line: string) => line.startsWith('metadata differs') || /^schema: only in .*: (index|view|trigger) /.test(line);
      const onlyMeta = metaChanged && diffs.some((d) => d.every(describedOnly));
      if (!exact && !onlyMeta) throw new Error(`restore ${id.slice(0, 8)} after [${what}] succeeded but differs from every source: ${diffs.map((d) => d.join('; ')).join(' | ')}`);
    }]),
    ['diff', () => diff(ids[0] ?? 'latest', 'latest', repo)],
    ['prune', () => prune(repo)],
    ['forget <first> --prune', () => forget(repo, { ids: ids.slice(0, 1).map((id) => id.slice(0, 12)), prune: true })],
  ];
  for (const [op, run] of ops) {
    const t0 = performance.now();
    try {
      await run();
    } catch (err) {
      if (err instanceof Error && err.message.includes('succeeded but differs')) throw err;
      acceptable(err, op, what);
    } finally {
      if (process.env.FUZZ_PROFILE) {
        const key = op.replace(/ [0-9a-f]{8}$/, '');
        profile.set(key, (profile.get(key) ?? 0) + performance.now() - t0);
      }
    }
    // Nothing outside the target: the restore folder holds the target or nothing (no temporaries).
    const left = readdirSync(out);
    expect(left.filter((f) => f !== 'restored.db'), `${op} after [${what}] left files beside the target`).toEqual([]);
    rmSync(into, { force: true });
    // Nothing deleted or created outside the repository.
    expect(readdirSync(work).sort(), `${op} after [${what}] changed the folder around the repository`).toEqual(['out', 'repo', 'sentinel.txt']);
    expect(readFileSync(sentinel, 'utf8')).toBe('must survive');
  }
  const growth = process.memoryUsage().rss - rssBaseline;
  expect(growth, `RSS grew by ${growth >> 20} MiB after [${what}]`).toBeLessThan(RSS_GROWTH_LIMIT);
}

async function fuzz(name: string, runs: number, arb: fc.Arbitrary<unknown>, mutate: (ws: ReturnType<typeof workspace>, input: never) => Promise<{ what: string; metaChanged?: boolean; restore?: string }>): Promise<void> {
  if (rssBaseline === 0) rssBaseline = process.memoryUsage().rss;
  await fc.assert(
    fc.asyncProperty(arb, async (input) => {
      const ws = workspace();
      try {
        const { what, metaChanged, restore: ref } = await mutate(ws, input as never);
        await runOperations(ws, `${name}: ${what}`, metaChanged, ref);
      } finally {
        rmSync(ws.work, { recursive: true, force: true });
      }
    }),
    { seed: SEED, numRuns: Math.max(1, Math.round(runs * SCALE)), endOnFailure: true },
  );
}

describe('repository fuzz: mutated objects inside valid framing', () => {
  it('manifests', async () => {
    await fuzz('manifest', 45, fc.tuple(fc.nat(1), fc.nat(1_000_000), jsonMutation), async ({ repo }, [which, pick, m]: [number, number, Parameters<typeof mutateJson>[2]]) => {
      const files = objectFiles(repo, 'snapshots').sort();
      const file = files[which % files.length];
      const { body, codec } = await readBody('snapshot', file);
      const { value, what, path } = mutateJson(JSON.parse(body.toString('utf8')), pick, m);
      const id = await resealInPlace(repo, 'snapshot', file, Buffer.from(JSON.stringify(value) ?? 'null'), codec);
      return { what, metaChanged: path.startsWith('schema.meta') || path.startsWith('schema.objects'), restore: id };
    });
  }, 120_000);

  it('index files', async () => {
    const mutation = fc.oneof(
      fc.tuple(fc.constant('count' as const), fc.nat(100), fc.constantFrom(0, 1, 2, 0xffffffff, 0x7fffffff, -1, +1)),
      fc.tuple(fc.constant('drop' as const), fc.nat(100), fc.constant(0)),
      fc.tuple(fc.constant('duplicate' as const), fc.nat(100), fc.constant(0)),
      fc.tuple(fc.constant('swap-packs' as const), fc.nat(100), fc.nat(100)),
      fc.tuple(fc.constant('swap-ids' as const), fc.nat(100), fc.nat(10_000)),
      fc.tuple(fc.constant('foreign-pack' as const), fc.nat(100), fc.constant(0)),
      fc.tuple(fc.constant('truncate' as const), fc.nat(100), fc.integer({ min: 1, max: 70 })),
      fc.tuple(fc.constant('append' as const), fc.nat(100), fc.integer({ min: 1, max: 70 })),
      fc.tuple(fc.constant('zstd' as const), fc.nat(100), fc.constant(0)),
    );
    await fuzz('index', 25, fc.tuple(fc.nat(20), mutation), async ({ repo }, [which, [kind, at, arg]]: [number, [string, number, number]]) => {
      const files = objectFiles(repo, 'index').sort();
      const file = files[which % files.length];
      const { body, codec, kind: objectKind } = await readBody('index', file);
      const width = objectKind === 'index2' ? 8 : 32; // format 2: 8-byte fingerprints
      const records = parseIndexBody(body, width);
      const i = at % records.length;
      const r = records[i];
      let out: Buffer;
      let newCodec = codec;
      switch (kind) {
        case 'count': {
          const count = arg === -1 ? r.count - 1 : arg === 1 && at % 2 ? r.count + 1 : arg;
          records[i] = { ...r, count };
          out = encodeIndexBody(records, width);
          break;
        }
        case 'drop':
          records.splice(i, 1);
          out = encodeIndexBody(records, width);
          break;
        case 'duplicate':
          records.splice(i, 0, r);
          out = encodeIndexBody(records, width);
          break;
        case 'swap-packs': {
          const j = arg % records.length;
          [records[i], records[j]] = [{ ...records[i], pack: records[j].pack }, { ...records[j], pack: records[i].pack }];
          out = encodeIndexBody(records, width);
          break;
        }
        case 'swap-ids': {
          // Two entries' chunk ids exchanged (within a pack or across packs).
          const ids = Buffer.concat(records.map((x) => x.ids));
          const n = Math.floor(ids.length / width);
          const a = at % n;
          const b = arg % n;
          const tmp = Buffer.from(ids.subarray(width * a, width * a + width));
          ids.copy(ids, width * a, width * b, width * b + width);
          tmp.copy(ids, width * b);
          let off = 0;
          out = encodeIndexBody(records.map((x) => ({ ...x, ids: ids.subarray(off, (off += x.ids.length)) })), width);
          break;
        }
        case 'foreign-pack':
          records[i] = { ...r, pack: Buffer.alloc(32, 0xab) };
          out = encodeIndexBody(records, width);
          break;
        case 'truncate':
          out = body.subarray(0, Math.max(0, body.length - arg));
          break;
        case 'append':
          out = Buffer.concat([body, Buffer.alloc(arg, 7)]);
          break;
        default:
          out = Buffer.from(body);
          newCodec = 'zstd';
      }
      await resealInPlace(repo, objectKind, file, out, newCodec);
      return { what: `${kind} record ${i} (${arg}) of ${file.slice(-16)}` };
    });
  }, 120_000);

  it('pack entry tables and chunk bytes (re-sealed, renamed in every manifest and index file)', async () => {
    const field = fc.oneof(
      fc.tuple(fc.constant('count' as const), fc.nat(100), fc.constantFrom(...EDGE_VALUES.filter((v): v is number => typeof v === 'number' && Number.isInteger(v)))),
      fc.tuple(fc.constant('length' as const), fc.nat(100), fc.constantFrom(0, 1, 2, 3, 0xffffffff, 2 ** 31, -1, +1)),
      fc.tuple(fc.constant('rows' as const), fc.nat(100), fc.constantFrom(0, 1, 2, 0xffffffff, -1, +1)),
      fc.tuple(fc.constant('chunk-byte' as const), fc.nat(1_000_000), fc.nat(255)),
      fc.tuple(fc.constant('newline' as const), fc.nat(100), fc.constantFrom(0x20, 0x5d, 0x0a)),
    );
    await fuzz('pack', 20, fc.tuple(fc.nat(1000), field), async ({ repo }, [which, [kind, at, value]]: [number, [string, number, number]]) => {
      const files = objectFiles(repo, 'packs').sort();
      const file = files[which % files.length];
      const from = file.slice(file.lastIndexOf('/') + 1);
      const { body: view, codec } = await readBody('pack', file);
      const body = Buffer.from(view);
      const count = body.readUInt32LE(body.length - 4);
      const table = body.length - 4 - 8 * count;
      const e = at % count;
      const u32 = (n: number, old: number) => (n === -1 ? old - 1 : n === 1 && at % 2 ? old + 1 : n) >>> 0;
      switch (kind) {
        case 'count':
          body.writeUInt32LE(value >>> 0, body.length - 4);
          break;
        case 'length':
          body.writeUInt32LE(u32(value, body.readUInt32LE(table + 8 * e)), table + 8 * e);
          break;
        case 'rows':
          body.writeUInt32LE(u32(value, body.readUInt32LE(table + 8 * e + 4)), table + 8 * e + 4);
          break;
        case 'chunk-byte':
          body[at % table] = value;
          break;
        default: {
          // The last byte of an entry (its row's `\n`) replaced.
          let end = 0;
          for (let i = 0; i <= e; i++) end += body.readUInt32LE(table + 8 * i);
          body[end - 1] = value;
        }
      }
      const to = await resealInPlace(repo, 'pack', file, body, codec);
      await renamePackEverywhere(repo, from, to);
      return { what: `${kind} of entry ${e} = ${value} in pack ${from.slice(0, 12)}` };
    });
  }, 120_000);

  it('config', async () => {
    await fuzz('config', 15, fc.tuple(fc.nat(1_000_000), jsonMutation), async ({ repo }, [pick, m]: [number, Parameters<typeof mutateJson>[2]]) => {
      const file = join(repo, 'config');
      const { value, what } = mutateJson(JSON.parse(readFileSync(file, 'utf8')), pick, m);
      writeFileSync(file, JSON.stringify(value) ?? 'null');
      return { what };
    });
  }, 120_000);
});
