/** The OperationEvents of one repository operation: the core reporter, plus a failure-reporting runner. */
import { ProgressReporter } from '../core/progress.js';

/** Reports one operation to an `onEvent` listener (a no-op without one). */
export class OperationReporter extends ProgressReporter {
  get elapsedMs(): number {
    return Date.now() - this.startedAt;
  }

  /** Runs `fn`, emitting `failed` if it throws. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.failed(err);
      throw err;
    }
  }
}
