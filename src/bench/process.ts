import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** One command to run as its own process, with optional stdin/stdout redirection to files. */
export interface CommandSpec {
  /** Executable (absolute path or a name on PATH). */
  cmd: string;
  args: string[];
  /** File to connect to the child's stdin (like `< file`). */
  stdin?: string;
  /** File to connect to the child's stdout (like `> file`); otherwise stdout is captured (keep it small). */
  stdout?: string;
  /** Variables added to the child's environment (a passphrase: never put one in `args`). */
  env?: Record<string, string>;
}

/** What one run of a {@link CommandSpec} measured. */
export interface TimedRun {
  /** Wall-clock time from spawn to exit, in milliseconds. */
  wallMs: number;
  /** Peak RSS of the process (for `bash -c` pipelines: of its largest descendant), or null without GNU time. */
  peakRssBytes: number | null;
  /** Captured stdout (empty when redirected to a file). */
  stdout: string;
}

/** The GNU time binary used to measure peak RSS. */
export const GNU_TIME = '/usr/bin/time';

let gnuTimeChecked: boolean | undefined;

/**
 * True when `/usr/bin/time -f %M` works (GNU time). On Debian it comes from the `time` package; without
 * it the benchmark still measures wall time but reports peak RSS as unknown.
 */
export function hasGnuTime(): boolean {
  if (gnuTimeChecked === undefined) {
    const r = spawnSync(GNU_TIME, ['-f', '%M', 'true'], { encoding: 'utf8' });
    gnuTimeChecked = r.status === 0 && /^\d+\s*$/.test(r.stderr ?? '');
  }
  return gnuTimeChecked;
}

/**
 * Runs `spec` as its own process under `/usr/bin/time -f %M` and returns wall time and peak RSS.
 * Rejects with the tail of stderr when the command exits non-zero.
 */
export async function runTimed(spec: CommandSpec): Promise<TimedRun> {
  const useTime = hasGnuTime();
  const rssFile = path.join(os.tmpdir(), `scriptorium-bench-rss-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const [cmd, args] = useTime ? [GNU_TIME, ['-f', '%M', '-o', rssFile, spec.cmd, ...spec.args]] : [spec.cmd, spec.args];
  const stdinFd = spec.stdin ? fs.openSync(spec.stdin, 'r') : undefined;
  const stdoutFd = spec.stdout ? fs.openSync(spec.stdout, 'w') : undefined;
  try {
    const t0 = performance.now();
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(cmd, args, { stdio: [stdinFd ?? 'ignore', stdoutFd ?? 'pipe', 'pipe'], ...(spec.env ? { env: { ...process.env, ...spec.env } } : {}) });
      let out = '';
      let err = '';
      child.stdout?.on('data', (d: Buffer) => {
        if (out.length < 1 << 20) out += d.toString('utf8');
      });
      child.stderr?.on('data', (d: Buffer) => {
        err = (err + d.toString('utf8')).slice(-4000);
      });
      child.on('error', reject);
      child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
    });
    const wallMs = performance.now() - t0;
    if (code !== 0) throw new Error(`${[spec.cmd, ...spec.args].join(' ')} exited with ${code}: ${stderr.trim()}`);
    let peakRssBytes: number | null = null;
    if (useTime) {
      const lines = fs.readFileSync(rssFile, 'utf8').trim().split('\n');
      const kb = Number(lines[lines.length - 1]);
      if (Number.isFinite(kb)) peakRssBytes = kb * 1024;
    }
    return { wallMs, peakRssBytes, stdout };
  } finally {
    if (stdinFd !== undefined) fs.closeSync(stdinFd);
    if (stdoutFd !== undefined) fs.closeSync(stdoutFd);
    fs.rmSync(rssFile, { force: true });
  }
}

/** Removes a SQLite database file and its journal/WAL/shm companions, if present. */
export function removeDatabase(file: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) fs.rmSync(file + suffix, { force: true });
}

/**
 * Reads `target` (a file, or every file under a directory) once and discards it, so that the run
 * after finds it in the page cache. Returns the bytes read.
 */
export function warm(target: string): number {
  const st = fs.statSync(target);
  if (st.isDirectory()) {
    let total = 0;
    for (const entry of fs.readdirSync(target, { withFileTypes: true })) total += warm(path.join(target, entry.name));
    return total;
  }
  if (!st.isFile()) return 0;
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = fs.openSync(target, 'r');
  let total = 0;
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) total += n;
  } finally {
    fs.closeSync(fd);
  }
  return total;
}
