/**
 * How every restore into a SQLite file ends, whichever engine its snapshot came from: the database is
 * built beside the target under a temporary name (private from its first byte), and swapped in only
 * once `build` returns, which is where each caller has checked every table; on any failure the
 * temporary goes and the target is as it was.
 */
import { withPrivateUmask } from '../core/atomic-file.js';
import { commitTarget, discardTemp, planError, sweepStaleTemps, tempFor, type TargetPlan } from '../core/target-file.js';
import type { SqliteTarget } from '../engines/sqlite/sqlite-target.js';
import type { OperationReporter } from './progress.js';

/**
 * Sweeps temporaries of killed runs, creates the temporary database with `create`, lets `build` fill
 * and check it, then closes it and renames it over the target (the replaced file's mode, owner and
 * group; 0600 for a new one). A failure anywhere is thrown as a target error naming `plan.given`
 * (E_TARGET_CHANGED when the directory checked moved meanwhile).
 */
export async function buildThenSwap(
  plan: TargetPlan,
  operation: string,
  reporter: OperationReporter,
  create: (path: string) => SqliteTarget,
  build: (target: SqliteTarget) => Promise<void>,
): Promise<void> {
  sweepStaleTemps(plan, (message, stale) => reporter.notice(message, stale));
  const temp = tempFor(plan, operation);
  let target: SqliteTarget | undefined;
  try {
    target = withPrivateUmask(() => create(temp));
    await build(target);
    target.close();
    reporter.progress('swap', undefined, true);
    commitTarget(plan, temp);
  } catch (err) {
    try {
      target?.close();
    } catch {
      // the temporary goes anyway
    }
    discardTemp(temp);
    throw planError(plan, err, `restore: writing ${plan.given}`);
  }
}
