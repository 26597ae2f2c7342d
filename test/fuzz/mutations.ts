/**
 * Mutations of repository objects INSIDE valid framing, as an attacker who can write to the repository
 * would make them: decode the object, change one field, re-encode it and re-seal it under the SHA-256 of
 * its new content (renaming it, and updating every object that names it), so that the change reaches the
 * parser instead of being stopped by the hash check.
 */
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as fc from 'fast-check';
import { CODEC_IDS, type CompressionCodec } from '../../src/repository/compression.js';
import { openObject, sealObject, sha256, type ObjectKind } from '../../src/repository/object-file.js';

/** Values that break parsers: edges of every integer width, unsafe integers, non-numbers. */
export const EDGE_VALUES: unknown[] = [
  -1, 0, 1, 2, 3, 255, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1.5, -0.5, 1e308,
  'NaN', 'Infinity', '1e999', '', '0', '-1', '0x10', 'a'.repeat(64), '../../../outside', null, true, false, [], {}, [0, 0, 1],
];

/** A JSON value's paths (each a list of keys), skipping schema SQL text, which is the schema guard's. */
export function jsonPaths(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...jsonPaths(v, [...prefix, i])));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) if (k !== 'sql') out.push(...jsonPaths(v, [...prefix, k]));
  }
  return out;
}

export type JsonMutation =
  | { kind: 'set'; value: unknown }
  | { kind: 'add'; delta: number }
  | { kind: 'delete' }
  | { kind: 'drop-item'; at: number }
  | { kind: 'duplicate-item'; at: number }
  | { kind: 'swap-items'; a: number; b: number }
  | { kind: 'swap-with'; other: number }
  | { kind: 'extra-key' };

export const jsonMutation: fc.Arbitrary<JsonMutation> = fc.oneof(
  fc.constantFrom(...EDGE_VALUES).map((value) => ({ kind: 'set' as const, value })),
  fc.constantFrom(-1, 1, -2, 2 ** 32).map((delta) => ({ kind: 'add' as const, delta })),
  fc.constant({ kind: 'delete' as const }),
  fc.nat(50).map((at) => ({ kind: 'drop-item' as const, at })),
  fc.nat(50).map((at) => ({ kind: 'duplicate-item' as const, at })),
  fc.tuple(fc.nat(50), fc.nat(50)).map(([a, b]) => ({ kind: 'swap-items' as const, a, b })),
  fc.nat(10_000).map((other) => ({ kind: 'swap-with' as const, other })),
  fc.constant({ kind: 'extra-key' as const }),
);

function getAt(root: unknown, path: Array<string | number>): unknown {
  let v = root as Record<string | number, unknown>;
  for (const k of path) v = v[k] as Record<string | number, unknown>;
  return v;
}

function setAt(root: unknown, path: Array<string | number>, value: unknown): unknown {
  if (path.length === 0) return value;
  const parent = getAt(root, path.slice(0, -1)) as Record<string | number, unknown>;
  parent[path[path.length - 1]] = value;
  return root;
}

/**
 * Applies `m` at path number `pick` (modulo the number of paths) of a copy of `value`; returns the new
 * value, a description of the change (for the failure message), the path changed and, for a swap, the
 * other path changed.
 */
export function mutateJson(value: unknown, pick: number, m: JsonMutation): { value: unknown; what: string; path: string; other?: string } {
  const root = structuredClone(value);
  const paths = jsonPaths(root);
  const path = paths[pick % paths.length];
  const name = path.join('.');
  const current = getAt(root, path);
  switch (m.kind) {
    case 'set':
      return { value: setAt(root, path, structuredClone(m.value)), what: `${name} = ${JSON.stringify(m.value)}`, path: name };
    case 'add':
      return { value: setAt(root, path, typeof current === 'number' ? current + m.delta : m.delta), what: `${name} += ${m.delta}`, path: name };
    case 'delete':
      if (path.length === 0) return { value: null, what: 'whole = null', path: name };
      {
        const parent = getAt(root, path.slice(0, -1));
        const key = path[path.length - 1];
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else delete (parent as Record<string, unknown>)[key as string];
      }
      return { value: root, what: `delete ${name}`, path: name };
    case 'drop-item':
    case 'duplicate-item':
      if (!Array.isArray(current) || current.length === 0) return { value: setAt(root, path, []), what: `${name} = []`, path: name };
      {
        const at = m.at % current.length;
        if (m.kind === 'drop-item') current.splice(at, 1);
        else current.splice(at, 0, structuredClone(current[at]));
        return { value: root, what: `${m.kind} ${name}[${at}]`, path: name };
      }
    case 'swap-items':
      if (!Array.isArray(current) || current.length < 2) return { value: setAt(root, path, [current, current]), what: `${name} = [it, it]`, path: name };
      {
        const a = m.a % current.length;
        const b = m.b % current.length;
        [current[a], current[b]] = [current[b], current[a]];
        return { value: root, what: `swap ${name}[${a}] and [${b}]`, path: name };
      }
    case 'swap-with': {
      const other = paths[m.other % paths.length];
      if (other.length === 0 || path.length === 0) return { value: root, what: 'nothing', path: name };
      const a = structuredClone(getAt(root, path));
      const b = structuredClone(getAt(root, other));
      // Swapping a container with something inside it has no meaning: set both instead.
      setAt(root, path, b);
      try {
        setAt(root, other, a);
      } catch {
        // `other` lay inside what was replaced
      }
      return { value: root, what: `swap ${name} with ${other.join('.')}`, path: name, other: other.join('.') };
    }
    case 'extra-key':
      if (current && typeof current === 'object' && !Array.isArray(current)) {
        (current as Record<string, unknown>).unexpected = 1;
        return { value: root, what: `${name}.unexpected = 1`, path: name };
      }
      return { value: root, what: 'nothing', path: name };
  }
}

/** Files under `dir/sub` (recursively one level for packs). */
export function objectFiles(repo: string, sub: 'snapshots' | 'index' | 'packs'): string[] {
  const dir = join(repo, sub);
  if (sub !== 'packs') return readdirSync(dir).filter((f) => !f.startsWith('.')).map((f) => join(dir, f));
  return readdirSync(dir).flatMap((d) => readdirSync(join(dir, d)).map((f) => join(dir, d, f)));
}

/**
 * The body of a framed object file (its name is its hash). An index file of format 2 (`SCRINDX2`)
 * is read as kind `index2` (returned in `kind`).
 */
export async function readBody(kind: ObjectKind, file: string): Promise<{ body: Buffer; codec: CompressionCodec; kind: ObjectKind }> {
  const data = readFileSync(file);
  const codec = (Object.entries(CODEC_IDS).find(([, id]) => id === data[8])?.[0] ?? 'none') as CompressionCodec;
  const hash = file.slice(file.lastIndexOf('/') + 1);
  const real: ObjectKind = kind === 'index' && data.subarray(0, 8).toString('latin1') === 'SCRINDX2' ? 'index2' : kind;
  return { body: await openObject(real, data, hash, 'fuzz', 2 ** 31), codec, kind: real };
}

/** Writes `body` as a new object of `kind` replacing `file`; returns the new hash. */
export async function resealInPlace(repo: string, kind: ObjectKind, file: string, body: Buffer, codec: CompressionCodec): Promise<string> {
  const { file: data, hash } = await sealObject(kind, body, codec);
  rmSync(file);
  const key = kind === 'snapshot' ? `snapshots/${hash}` : kind === 'index' || kind === 'index2' ? `index/${hash}` : `packs/${hash.slice(0, 2)}/${hash}`;
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(repo, key, '..'), { recursive: true });
  writeFileSync(join(repo, key), data);
  return hash;
}

/** Renames pack `from` to `to` everywhere it is named: manifests' pack lists and index records. */
export async function renamePackEverywhere(repo: string, from: string, to: string): Promise<void> {
  for (const file of objectFiles(repo, 'snapshots')) {
    const { body, codec } = await readBody('snapshot', file);
    const manifest = JSON.parse(body.toString('utf8')) as { packs: string[] };
    if (!manifest.packs.includes(from)) continue;
    manifest.packs = manifest.packs.map((p) => (p === from ? to : p));
    await resealInPlace(repo, 'snapshot', file, Buffer.from(JSON.stringify(manifest)), codec);
  }
  const fromBytes = Buffer.from(from, 'hex');
  for (const file of objectFiles(repo, 'index')) {
    const { body, codec, kind } = await readBody('index', file);
    let changed = false;
    for (let at = body.indexOf(fromBytes); at >= 0; at = body.indexOf(fromBytes, at + 32)) {
      Buffer.from(to, 'hex').copy(body, at);
      changed = true;
    }
    if (changed) await resealInPlace(repo, kind, file, Buffer.from(body), codec);
  }
}

/** One record of an index body. */
export interface IndexRecord {
  pack: Buffer;
  count: number;
  ids: Buffer;
}

/**
 * The records of an index body: format 1's (`width` 32: id, count, ids per record) or format 2's
 * (`width` 8: a header of ids and counts, then the fingerprints).
 */
export function parseIndexBody(body: Buffer, width = 32): IndexRecord[] {
  const out: IndexRecord[] = [];
  if (width !== 32) {
    const n = body.length >= 4 ? body.readUInt32LE(0) : 0;
    let at = 4 + 36 * n;
    for (let i = 0; i < n && 4 + 36 * (i + 1) <= body.length; i++) {
      const h = 4 + 36 * i;
      const count = body.readUInt32LE(h + 32);
      out.push({ pack: body.subarray(h, h + 32), count, ids: body.subarray(Math.min(at, body.length), Math.min(at + width * count, body.length)) });
      at += width * count;
    }
    return out;
  }
  for (let at = 0; at + 36 <= body.length; ) {
    const count = body.readUInt32LE(at + 32);
    out.push({ pack: body.subarray(at, at + 32), count, ids: body.subarray(at + 36, at + 36 + 32 * count) });
    at += 36 + 32 * count;
  }
  return out;
}

export function encodeIndexBody(records: IndexRecord[], width = 32): Buffer {
  if (width !== 32) {
    const head = Buffer.alloc(4 + 36 * records.length);
    head.writeUInt32LE(records.length, 0);
    records.forEach((r, i) => {
      r.pack.copy(head, 4 + 36 * i);
      head.writeUInt32LE(r.count >>> 0, 4 + 36 * i + 32);
    });
    return Buffer.concat([head, ...records.map((r) => r.ids)]);
  }
  return Buffer.concat(records.flatMap((r) => {
    const head = Buffer.alloc(36);
    r.pack.copy(head, 0);
    head.writeUInt32LE(r.count >>> 0, 32);
    return [head, r.ids];
  }));
}

export { sha256 };
