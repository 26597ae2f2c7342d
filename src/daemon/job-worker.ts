/**
 * The process that runs one job run, forked by the daemon (or by `scriptorium run`): a backup followed by
 * retention and verification, or a prune. It measures its own operations with a Monitor that writes to
 * the shared history (so peak memory is the run's, not the daemon's) and keeps their live progress
 * files. The plan comes as the first IPC message; the outcome goes back as one message before it exits.
 *
 * Aborting: on SIGTERM, or when the daemon goes away (IPC disconnect), it records its open operations
 * as aborted, removes its temporary files and exits. A backup cut short this way leaves no snapshot: the
 * manifest is written last, and `prune` later deletes the packs nothing references.
 */
import { removeRegisteredTemps } from '../core/atomic-file.js';
import type { OperationEvent } from '../core/events.js';
import { HistoryStore } from '../monitor/history-store.js';
import { LiveProgressWriter, liveDirFor } from '../monitor/live-progress.js';
import { errorCode } from '../monitor/monitored-operation.js';
import { Monitor } from '../monitor/monitor.js';
import { meetsTargets, targetsFor, type TargetTable } from '../monitor/targets.js';
import type { JobConfig } from './job-config.js';
import type { StepResult, TaskKind } from './journal.js';

/** What the daemon asks a worker to do. */
export interface WorkerPlan {
  job: JobConfig;
  kind: TaskKind;
  history: { path: string; maxEntries: number };
  targets: TargetTable;
  /** The read-data part to verify after the backup. */
  readPart?: { part: number; of: number };
  /** Add a drill restore to the verification. */
  drill: boolean;
}

/** What a worker reports back. */
export interface WorkerOutcome {
  type: 'outcome';
  ok: boolean;
  steps: StepResult[];
  error?: { code: string; message: string };
  /** Target checks a backup missed (`maxDurationMs`, ...). */
  missedTargets: Array<{ target: string; limit: number; measured: number }>;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

async function runPlan(plan: WorkerPlan, monitor: Monitor): Promise<WorkerOutcome> {
  const { job } = plan;
  const steps: StepResult[] = [];
  const missedTargets: WorkerOutcome['missedTargets'] = [];
  let current: string | undefined;
  const onEvent = (event: OperationEvent): void => {
    if (event.type === 'started') current = event.id;
    monitor.listener(event.type === 'started' ? { ...event, job: job.name } : event);
  };
  const step = async (name: StepResult['step'], fn: () => Promise<StepResult['detail']>): Promise<boolean> => {
    current = undefined;
    const began = Date.now();
    try {
      const detail = await fn();
      steps.push({ step: name, ok: true, durationMs: Date.now() - began, ...(current ? { operation: current } : {}), ...(detail ? { detail } : {}) });
      return true;
    } catch (err) {
      steps.push({ step: name, ok: false, durationMs: Date.now() - began, ...(current ? { operation: current } : {}), error: { code: errorCode(err), message: message(err) } });
      return false;
    }
  };
  const repo = await import('../repository/index.js');
  const lock = { lockWaitMs: job.lockWaitMs };
  let ok: boolean;
  if (plan.kind === 'prune') {
    ok = await step('prune', async () => {
      const r = await repo.prune(job.repository, { onEvent, ...lock });
      return { packsDeleted: r.packsDeleted, bytesDeleted: r.bytesDeleted };
    });
  } else {
    ok = await step('backup', async () => {
      const { backup } = await import('../repository/backup.js');
      const snapshot = await backup(job.source, job.repository, { tags: [...job.tags, `job=${job.name}`], onEvent, ...lock });
      const record = current ? monitor.record(current) : undefined;
      if (record) {
        for (const check of meetsTargets(record, targetsFor('backup', plan.targets, job.targets)).checks) {
          if (!check.ok) missedTargets.push({ target: check.target, limit: check.limit, measured: check.measured });
        }
      }
      return { snapshot: snapshot.id, rows: snapshot.stats.rows, addedBytes: snapshot.stats.storedBytes + snapshot.manifestBytes };
    });
    if (ok && job.retention) {
      ok = await step('retention', async () => {
        // Only this job's snapshots: the repository may hold other jobs' too.
        const tag = `job=${job.name}`;
        const mine = (await repo.snapshots(job.repository)).filter((s) => s.tags.includes(tag));
        const { remove } = repo.applyPolicy(mine, job.retention!);
        if (remove.length === 0) return { removed: 0, kept: mine.length };
        const r = await repo.forget(job.repository, { ids: remove.map((s) => s.id), onEvent, ...lock });
        return { removed: r.removed.length, kept: mine.length - r.removed.length };
      });
    }
    if (ok && (job.verify.structure || plan.readPart || plan.drill)) {
      ok = await step('verify', async () => {
        const r = await repo.verify(job.repository, {
          onEvent, ...lock, drill: plan.drill,
          ...(plan.readPart ? { readDataSubset: plan.readPart } : {}),
        });
        return {
          snapshots: r.snapshots, packs: r.packs,
          ...(plan.readPart ? { readPart: `${plan.readPart.part}/${plan.readPart.of}`, packsRead: r.packsRead ?? 0 } : {}),
          ...(plan.drill ? { drilled: r.drilled !== undefined } : {}),
        };
      });
    }
  }
  const failed = steps.find((s) => !s.ok);
  return { type: 'outcome', ok, steps, missedTargets, ...(failed?.error ? { error: failed.error } : {}) };
}

/** Runs in the forked process: waits for the plan, runs it, reports, exits. */
function main(): void {
  let monitor: Monitor | undefined;
  let live: LiveProgressWriter | undefined;
  let reported = false;
  const abort = (code: number) => {
    if (reported) process.exit(0); // the outcome was sent: this disconnect is ours
    monitor?.close(); // open operations are recorded as failed (E_ABORTED)
    live?.close();
    removeRegisteredTemps();
    process.exit(code);
  };
  process.once('SIGTERM', () => abort(143));
  process.once('SIGINT', () => abort(130));
  process.once('disconnect', () => abort(129));
  process.once('message', (plan: WorkerPlan) => {
    monitor = new Monitor({
      history: new HistoryStore({ ...plan.history, onError: () => {} }),
      targets: plan.targets,
      onError: (err) => process.stderr.write(`scriptorium worker: ${message(err)}\n`),
    });
    live = new LiveProgressWriter(liveDirFor(plan.history.path));
    monitor.on(live.listener);
    runPlan(plan, monitor)
      .catch((err: unknown): WorkerOutcome => ({ type: 'outcome', ok: false, steps: [], missedTargets: [], error: { code: errorCode(err), message: message(err) } }))
      .then((outcome) => {
        monitor?.close();
        live?.close();
        process.send?.(outcome, () => {
          reported = true;
          process.disconnect?.();
        });
      });
  });
}

main();
