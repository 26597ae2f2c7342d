/**
 * The daemon and `scriptorium run JOB` may evaluate the same jobs' alerts at the same moment. Two real
 * processes, each with its own AlertEngine on the same journal, are told to evaluate at once, round
 * after round, while the jobs fail and recover: every condition fires exactly once per failure and
 * resolves exactly once per recovery (no double send, no lost resolved), as the webhook receives them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseDaemonConfig } from '../../src/daemon/job-config.js';
import { Journal } from '../../src/daemon/journal.js';
import { ROOT, needDist, workDir } from './helpers.js';

const JOBS = 20;
const ROUNDS = 4;

/** A process that evaluates every job's failure condition each time it reads a line, and answers `done`. */
const EVALUATOR = `
  import { readFileSync } from 'node:fs';
  import { createInterface } from 'node:readline';
  import { AlertEngine } from ${JSON.stringify(join(ROOT, 'dist/alerts/alert-engine.js'))};
  import { parseDaemonConfig } from ${JSON.stringify(join(ROOT, 'dist/daemon/job-config.js'))};
  const file = process.argv[1];
  const config = parseDaemonConfig(readFileSync(file, 'utf8'), file);
  const engine = new AlertEngine(config, { log: () => {} });
  const jobs = [...config.jobs.values()];
  process.stdout.write('ready\\n');
  for await (const _ of createInterface({ input: process.stdin })) {
    const sent = await engine.evaluate(jobs, ['failure']);
    process.stdout.write('done ' + sent.length + '\\n');
  }
`;

function evaluator(configFile: string): { proc: ChildProcess; next: () => Promise<string> } {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', EVALUATOR, configFile], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const w = waiting.shift();
    if (w) w(line);
    else lines.push(line);
  });
  return { proc, next: () => (lines.length ? Promise.resolve(lines.shift()!) : new Promise((r) => waiting.push(r))) };
}

describe('alert evaluation by two processes at once', () => {
  const cleanups: Array<() => void> = [];
  beforeAll(needDist);
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  it('sends each firing and each resolved exactly once', async () => {
    const w = workDir();
    const got: Array<{ job: string; state: string }> = [];
    const server: Server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        const a = JSON.parse(body) as { job: string; state: string };
        got.push({ job: a.job, state: a.state });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const jobs = Object.fromEntries([...Array(JOBS).keys()].map((i) => [`j${i}`, { source: 'a.db', repository: './repo', every: '1h', alerts: ['ops'] }]));
    const file = join(w.dir, 'scriptorium.config.json');
    const text = JSON.stringify({ jobs, alerts: { ops: { webhook: url, on: ['failure'], repeatEvery: '7d' } } });
    writeFileSync(file, text);
    const config = parseDaemonConfig(text, file);
    const procs = [evaluator(file), evaluator(file)];
    cleanups.push(() => {
      for (const p of procs) p.proc.kill();
      server.close();
      w.cleanup();
    });
    for (const p of procs) expect(await p.next()).toBe('ready');

    const journal = new Journal(config.journalPath);
    let run = 0;
    const endAll = (status: 'ok' | 'failed') => {
      for (const job of config.jobs.keys()) {
        journal.append({
          v: 1, t: 'end', run: `r${run++}`, task: job, job, kind: 'backup', status, at: new Date().toISOString(), durationMs: 10, steps: [],
          ...(status === 'failed' ? { error: { code: 'E_TEST', message: 'failed on purpose' } } : {}),
        });
      }
    };
    const sentPerRound: number[][] = [];
    for (let round = 0; round < ROUNDS; round++) {
      endAll(round % 2 === 0 ? 'failed' : 'ok');
      for (const p of procs) p.proc.stdin!.write('go\n'); // both at once
      const answers = await Promise.all(procs.map((p) => p.next()));
      sentPerRound.push(answers.map((a) => Number(a.split(' ')[1])));
    }

    // Between them, the two processes sent one alert per job and round: never both, never neither.
    expect(sentPerRound.map((r) => r[0]! + r[1]!)).toEqual(Array(ROUNDS).fill(JOBS));
    for (const job of config.jobs.keys()) {
      expect(got.filter((g) => g.job === job).map((g) => g.state)).toEqual([...Array(ROUNDS).keys()].map((i) => (i % 2 === 0 ? 'firing' : 'resolved')));
    }
    const alerts = journal.read().filter((e) => e.t === 'alert');
    expect(alerts.length).toBe(JOBS * ROUNDS);
  }, 120_000);
});
