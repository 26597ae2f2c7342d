/** `forget`: removes snapshots by id or by retention policy, optionally followed by `prune`. */
import { UsageError } from '../core/errors.js';
import type { EventListener } from '../core/events.js';
import { ambiguousSnapshot, unknownSnapshot } from './errors.js';
import { snapshotKey, type Snapshot } from './manifest.js';
import { readSnapshotList, writeSnapshotList } from './snapshot-list.js';
import { applyPolicy, type RetentionPolicy } from './policy.js';
import { OperationReporter } from './progress.js';
import { prune, type PruneResult } from './prune.js';
import { heldObjects } from './held.js';
import { withRepository, type OpenOptions, type Repository, type RepositoryLocation } from './repository.js';

export interface ForgetOptions extends OpenOptions, RetentionPolicy {
  /** Forget exactly these snapshots (ids or unique prefixes) instead of applying a policy. */
  ids?: string[];
  /** Show what would be removed without removing it. */
  dryRun?: boolean;
  /** Run prune afterwards. */
  prune?: boolean;
  /** Time that `keepWithinMs` counts back from (default: now). */
  now?: Date;
  onEvent?: EventListener;
  lockWaitMs?: number;
}

export interface ForgetResult {
  kept: Array<{ id: string; time: string; reasons: string[] }>;
  removed: Array<{ id: string; time?: string }>;
  /** Snapshots the policy or the ids chose, which the store holds immutable (S3 Object Lock) until `until`: not removed. */
  held: Array<{ id: string; time?: string; until: string }>;
  pruned?: PruneResult;
}

/**
 * Forgets snapshots: those named in `ids`, or those the retention policy does not keep (restic's
 * semantics, see policy.ts). Only manifests are removed; run prune (or pass `prune: true`) to free the
 * chunks they alone used. Damaged manifests can be forgotten by id.
 *
 * @example
 * ```ts
 * await forget('/mnt/nas/backups', { keepDaily: 7, keepWeekly: 4, keepMonthly: 12, prune: true });
 * ```
 */
export async function forget(repository: RepositoryLocation | Repository, options: ForgetOptions): Promise<ForgetResult> {
  const reporter = new OperationReporter('forget', options.onEvent);
  return reporter.run(() =>
    withRepository(repository, options, async (repo) => {
      reporter.started({ target: repo.location });
      let result: ForgetResult;
      const lock = await repo.lock('shared', 'forget', options.lockWaitMs ?? 60_000);
      try {
        result = options.ids && options.ids.length > 0 ? await forgetIds(repo, options.ids, options.dryRun ?? false) : await forgetByPolicy(repo, options);
      } finally {
        await lock.release();
      }
      if (options.prune && !options.dryRun) result.pruned = await prune(repo, { onEvent: options.onEvent, lockWaitMs: options.lockWaitMs });
      reporter.completed({ kept: result.kept.length, removed: result.removed.length });
      return result;
    }),
  );
}

async function forgetIds(repo: Repository, refs: string[], dryRun: boolean): Promise<ForgetResult> {
  const ids = await repo.snapshotIds();
  const chosen = new Set<string>();
  for (const ref of refs) {
    if (!/^[0-9a-f]{4,64}$/.test(ref)) throw new UsageError(`forget: ${JSON.stringify(ref)} is not a snapshot id`, { hint: 'Ids are hexadecimal; list them with `scriptorium snapshots`.' });
    const matches = ids.filter((id) => id.startsWith(ref));
    if (matches.length === 0) throw unknownSnapshot(ref, repo.location);
    if (matches.length > 1) throw ambiguousSnapshot(ref, matches);
    chosen.add(matches[0]);
  }
  const held = await heldObjects(repo.store, [...chosen].map(snapshotKey));
  const free = [...chosen].filter((id) => !held.has(snapshotKey(id)));
  if (!dryRun) {
    for (const id of free) await repo.store.delete(snapshotKey(id));
    await unlist(repo, new Set(free));
  }
  return { kept: [], removed: free.map((id) => ({ id })), held: [...chosen].filter((id) => held.has(snapshotKey(id))).map((id) => ({ id, until: held.get(snapshotKey(id))!.until })) };
}

async function forgetByPolicy(repo: Repository, options: ForgetOptions): Promise<ForgetResult> {
  const snapshots: Snapshot[] = await repo.snapshots();
  const decision = applyPolicy(snapshots, options, (options.now ?? new Date()).getTime());
  const held = await heldObjects(repo.store, decision.remove.map((s) => snapshotKey(s.id)));
  const free = decision.remove.filter((s) => !held.has(snapshotKey(s.id)));
  if (!options.dryRun) {
    for (const s of free) await repo.store.delete(snapshotKey(s.id));
    await unlist(repo, new Set(free.map((s) => s.id)));
  }
  return {
    kept: decision.keep.map((s) => ({ id: s.id, time: s.time, reasons: decision.reasons.get(s.id) ?? [] })),
    removed: free.map((s) => ({ id: s.id, time: s.time })),
    held: decision.remove.filter((s) => held.has(snapshotKey(s.id))).map((s) => ({ id: s.id, time: s.time, until: held.get(snapshotKey(s.id))!.until })),
  };
}

/**
 * Format 2: drops forgotten snapshots from the snapshot list (a cache: a backup would pass over them
 * anyway, at a GET each). Its index files stay listed until prune rewrites the list.
 */
async function unlist(repo: Repository, ids: Set<string>): Promise<void> {
  if (ids.size === 0 || repo.config.version < 2) return;
  const list = await readSnapshotList(repo.store);
  if (!list || !list.snapshots.some((s) => ids.has(s.id))) return;
  await writeSnapshotList(repo.store, { ...list, snapshots: list.snapshots.filter((s) => !ids.has(s.id)) });
}
