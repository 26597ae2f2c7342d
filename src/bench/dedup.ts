/**
 * Deduplication scenarios of the backup repository (issue 4): how many bytes a snapshot adds to the
 * repository after 1% of the demo database's rows were updated (uniformly at random, or in clustered
 * runs), after 1% new rows were appended, or when nothing changed, relative to the first snapshot.
 *
 * Used by `scriptorium bench` (at the largest size of the run) and by `bench/dedup.mjs`. It is measured
 * in bytes on disk, not in time, so it runs in-process.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { prng } from '../demo/demo-data.js';
import { backup, init, type RepositorySettings } from '../repository/index.js';
import { removeDatabase } from './process.js';

/** The scenarios, in run order; every one but `first` starts again from the base database. */
export const DEDUP_SCENARIOS = ['first', 'update-uniform', 'update-clustered', 'append', 'unchanged'] as const;
export type DedupScenarioId = (typeof DEDUP_SCENARIOS)[number];

/** Human labels of the scenarios (reports). */
export const DEDUP_LABELS: Record<DedupScenarioId, string> = {
  first: 'first snapshot',
  'update-uniform': '1% of rows updated, uniformly at random across tables',
  'update-clustered': '1% of rows updated in 10 runs per table',
  append: '1% new rows appended',
  unchanged: 'nothing changed',
};

/** The issue's targets: stored bytes as a share of the first snapshot (none for `first`, `unchanged`). */
export const DEDUP_TARGETS: Record<DedupScenarioId, number | null> = {
  first: null,
  'update-uniform': 0.05,
  'update-clustered': 0.05,
  append: 0.03,
  unchanged: null,
};

/** One scenario's outcome. */
export interface DedupScenarioResult {
  id: DedupScenarioId;
  label: string;
  /** Rows updated or inserted before the backup (for `first`: every row backed up). */
  rowsChanged: number;
  /** Chunks of the snapshot, and how many of them were new to the repository. */
  chunks: number;
  newChunks: number;
  /** Bytes the backup added to the repository on disk (packs, index file, manifest). */
  storedBytes: number;
  manifestBytes: number;
  /** storedBytes / the first snapshot's storedBytes. */
  share: number;
  /** The issue's upper bound on `share`, or null when there is none. */
  target: number | null;
  /** share ≤ target (true when there is no target). */
  met: boolean;
  /** In-process wall time of the backup, ms (informational). */
  backupMs: number;
}

/**
 * Another repository that takes the same snapshots, beside ours: restic, or our own through the CLI
 * (the encrypted repository). Both calls run as processes and throw when they fail.
 */
export interface DedupPeer {
  id: string;
  label: string;
  /** Creates an empty repository in `repo` (a directory that does not exist yet). */
  init(repo: string): void | Promise<void>;
  /** Backs `file` up into `repo`. */
  backup(file: string, repo: string): void | Promise<void>;
}

/** What one {@link DedupPeer} stored in each scenario. */
export interface DedupPeerResult {
  id: string;
  label: string;
  /** Bytes the first backup added to the empty repository. */
  firstBytes: number;
  /** Bytes of the whole repository after the first backup (config and keys included). */
  repositoryBytes: number;
  scenarios: { id: DedupScenarioId; storedBytes: number; share: number; backupMs: number }[];
}

/** Everything {@link runDedup} measured. */
export interface DedupResult {
  /** Rows of the base database. */
  rows: number;
  dbBytes: number;
  /** Repository settings passed to `init` (empty: the defaults). */
  settings: RepositorySettings;
  /** Bytes of the first snapshot on disk (the repository minus its config file). */
  firstBytes: number;
  /** Bytes of the whole repository after the first snapshot (its config included). */
  repositoryBytes?: number;
  scenarios: DedupScenarioResult[];
  /** The same scenarios in the peers' repositories (absent when none was given). */
  peers?: DedupPeerResult[];
}

/** Options of {@link runDedup}. */
export interface DedupOptions {
  /** The database to start from (left untouched: every scenario works on a copy). */
  base: string;
  /** Scratch directory for the repository and the copies (created; removed afterwards unless `keep`). */
  dir: string;
  settings?: RepositorySettings;
  /** Repositories that back up the same databases after ours, each scenario in turn. */
  peers?: DedupPeer[];
  keep?: boolean;
  log?: (line: string) => void;
}

/** The column each demo table's update touches, and a new value for it. */
const UPDATES: Record<string, string> = {
  regs: "updatedAt = '2026-01-01T00:00:00.000', status = iif(status = 'A', 'I', 'A')",
  reg_additional_info: "updatedAt = '2026-01-01T00:00:00.000', notes = 'updated'",
  stays: "status = 'completed', note = 'checked out'",
  app_settings: "value = 'true', updated_at = '2026-01-01 00:00:00'",
  maps: "updated_at = '2026-01-01T00:00:00.000'",
  rooms: "status = 'occupied', updated_at = '2026-01-01T00:00:00.000'",
  room_bookings: "status = 'confirmed', updated_at = '2026-01-01T00:00:00.000'",
};

const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;

function tables(db: Database.Database): string[] {
  return db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid").pluck().all() as string[];
}

/** Updates 1% of each table's rows: `uniform` picks rows at random, `clustered` in 10 runs per table. */
export function updateRows(file: string, pattern: 'uniform' | 'clustered', seed: number): number {
  const rnd = prng(seed);
  const db = new Database(file);
  let changed = 0;
  try {
    db.transaction(() => {
      for (const t of tables(db)) {
        const set = UPDATES[t];
        if (!set) throw new Error(`dedup scenario: no update defined for table ${t} (the scenarios expect the demo database)`);
        const rowids = db.prepare(`SELECT rowid FROM ${ident(t)} ORDER BY rowid`).pluck().all() as number[];
        if (!rowids.length) continue;
        const n = Math.max(1, Math.round(rowids.length / 100));
        const pick = new Set<number>();
        if (pattern === 'uniform') {
          while (pick.size < n) pick.add(rowids[Math.floor(rnd() * rowids.length)]!);
        } else {
          const runs = Math.min(10, n);
          const len = Math.ceil(n / runs);
          for (let r = 0; r < runs; r++) {
            const start = Math.floor(rnd() * Math.max(1, rowids.length - len));
            for (let i = start; i < start + len && i < rowids.length && pick.size < n; i++) pick.add(rowids[i]!);
          }
        }
        const stmt = db.prepare(`UPDATE ${ident(t)} SET ${set} WHERE rowid = ?`);
        for (const id of pick) changed += stmt.run(id).changes;
      }
    })();
  } finally {
    db.close();
  }
  return changed;
}

/** Appends 1% new rows to each table (copies of existing rows under new keys). */
export function appendRows(file: string, seed: number): number {
  const rnd = prng(seed);
  const db = new Database(file);
  let added = 0;
  try {
    db.transaction(() => {
      for (const t of tables(db)) {
        const count = db.prepare(`SELECT count(*) FROM ${ident(t)}`).pluck().get() as number;
        if (!count) continue;
        const n = Math.max(1, Math.round(count / 100));
        const cols = db.prepare('SELECT name, pk FROM pragma_table_info(?)').all(t) as { name: string; pk: number }[];
        const pkCol = cols.find((c) => c.pk === 1);
        if (!pkCol) throw new Error(`dedup scenario: table ${t} has no primary key (the scenarios expect the demo database)`);
        const others = cols.filter((c) => c !== pkCol).map((c) => ident(c.name));
        const textKey = t === 'regs' || t === 'app_settings';
        const exprs = others.map((c) => (c === '"visitId"' ? "'N' || :i" : c));
        const stmt = db.prepare(
          `INSERT INTO ${ident(t)} (${ident(pkCol.name)}, ${others.join(', ')}) SELECT :key, ${exprs.join(', ')} FROM ${ident(t)} WHERE rowid = :src`,
        );
        const max = db.prepare(`SELECT max(rowid) FROM ${ident(t)}`).pluck().get() as number;
        for (let i = 0; i < n; i++) {
          const key = textKey ? `${t === 'regs' ? '9' : 'k'}${String(Math.floor(rnd() * 1e12)).padStart(12, '0')}${i}` : null;
          added += stmt.run({ key, src: 1 + Math.floor(rnd() * max), ...(t === 'reg_additional_info' ? { i } : {}) }).changes;
        }
      }
    })();
  } finally {
    db.close();
  }
  return added;
}

/** Total bytes of the files under `dir`. */
export function dirBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += fs.statSync(path.join(entry.parentPath ?? entry.path, entry.name)).size;
  }
  return total;
}

/**
 * Runs the scenarios: a fresh repository, the first snapshot of `base`, then for each change a copy of
 * `base` with that change backed up into the same repository. "Stored" is measured on disk (growth of
 * the repository directory), not estimated.
 */
export async function runDedup(o: DedupOptions): Promise<DedupResult> {
  const log = o.log ?? (() => {});
  const settings = o.settings ?? {};
  fs.rmSync(o.dir, { recursive: true, force: true });
  fs.mkdirSync(o.dir, { recursive: true });
  try {
    const repo = path.join(o.dir, 'repo');
    await init(repo, settings);
    const scenarios: DedupScenarioResult[] = [];
    let firstBytes = 0;
    let repositoryBytes = 0;
    let rows = 0;
    const peers = (o.peers ?? []).map((peer) => ({ peer, repo: path.join(o.dir, `peer-${peer.id}`), result: { id: peer.id, label: peer.label, firstBytes: 0, repositoryBytes: 0, scenarios: [] } as DedupPeerResult }));
    for (const p of peers) await p.peer.init(p.repo);
    for (const id of DEDUP_SCENARIOS) {
      let file = o.base;
      let changed = 0;
      if (id !== 'first') {
        file = path.join(o.dir, `${id}.db`);
        fs.copyFileSync(o.base, file);
        if (id === 'update-uniform') changed = updateRows(file, 'uniform', 1);
        else if (id === 'update-clustered') changed = updateRows(file, 'clustered', 2);
        else if (id === 'append') changed = appendRows(file, 3);
      }
      const before = id === 'first' ? fs.statSync(path.join(repo, 'config')).size : dirBytes(repo);
      const t0 = performance.now();
      const snap = await backup(file, repo);
      const backupMs = performance.now() - t0;
      const stored = dirBytes(repo) - before;
      if (id === 'first') {
        firstBytes = stored;
        repositoryBytes = dirBytes(repo);
        rows = snap.stats.rows;
        changed = rows;
      }
      const share = stored / firstBytes;
      const target = DEDUP_TARGETS[id];
      const r: DedupScenarioResult = {
        id,
        label: DEDUP_LABELS[id],
        rowsChanged: changed,
        chunks: snap.stats.chunks,
        newChunks: snap.stats.newChunks,
        storedBytes: stored,
        manifestBytes: snap.manifestBytes,
        share,
        target,
        met: target === null || share <= target,
        backupMs: Math.round(backupMs),
      };
      scenarios.push(r);
      log(
        `  dedup ${id.padEnd(16)} ${String(changed).padStart(8)} rows changed: ${String(r.newChunks).padStart(7)} of ${r.chunks} chunks new, ` +
          `${(stored / 1e6).toFixed(3)} MB stored (manifest ${(r.manifestBytes / 1e3).toFixed(1)} kB) = ${(100 * share).toFixed(2)}% of the first snapshot` +
          `${target === null ? '' : ` (target ≤ ${target * 100}%: ${r.met ? 'met' : 'NOT met'})`}, backup ${r.backupMs} ms`,
      );
      for (const p of peers) {
        const peerBefore = dirBytes(p.repo);
        const p0 = performance.now();
        await p.peer.backup(file, p.repo);
        const ms = Math.round(performance.now() - p0);
        const peerStored = dirBytes(p.repo) - peerBefore;
        if (id === 'first') {
          p.result.firstBytes = peerStored;
          p.result.repositoryBytes = dirBytes(p.repo);
        }
        const peerShare = peerStored / p.result.firstBytes;
        p.result.scenarios.push({ id, storedBytes: peerStored, share: peerShare, backupMs: ms });
        log(`  dedup ${id.padEnd(16)} ${p.peer.label}: ${(peerStored / 1e6).toFixed(3)} MB stored = ${(100 * peerShare).toFixed(2)}% of its first snapshot, backup ${ms} ms`);
      }
      if (file !== o.base) removeDatabase(file);
    }
    return {
      rows,
      dbBytes: fs.statSync(o.base).size,
      settings,
      firstBytes,
      repositoryBytes,
      scenarios,
      ...(peers.length ? { peers: peers.map((p) => p.result) } : {}),
    };
  } finally {
    if (!o.keep) fs.rmSync(o.dir, { recursive: true, force: true });
  }
}
