/**
 * Shared fixture of the crash tests (processes.test.ts, crash-encrypted.test.ts): a child process that
 * runs one repository operation of the compiled library (dist/), which the test kills with SIGKILL at a
 * moment of its choosing once the child has said `start`, and then checks what the kill left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root: the children run from here. */
export const root = fileURLToPath(new URL('../..', import.meta.url));

/** How a child ended. */
export interface ChildOutcome {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** A running child: `started` resolves when it printed `start` (or ended), `done` when it ended. */
export interface Run {
  proc: ChildProcess;
  started: Promise<void>;
  done: Promise<ChildOutcome>;
}

/** Throws unless dist/ is built (`npm test` builds it first; rebuilding it here raced with other test files' CLI processes). */
export function requireBuild(): void {
  if (!existsSync(join(root, 'dist/repository/index.js'))) throw new Error('run `npm run build` first: the children run dist/');
}

/** Starts `node script ...args` in the checkout's root, with `env` added to this process's environment. */
export function runChild(script: string, args: string[], env: Record<string, string> = {}): Run {
  const proc = spawn(process.execPath, [script, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  let markStarted: () => void = () => {};
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  proc.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.includes('start\n')) markStarted();
  });
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<ChildOutcome>((resolve) =>
    proc.on('close', (code, signal) => {
      markStarted();
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return { proc, started, done };
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
