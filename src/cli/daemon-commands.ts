/** `scriptorium daemon`, `jobs`, `run JOB` and `alert test NAME`: the jobs of scriptorium.config.json. */
import type { Command } from 'commander';
import { ScriptoriumError } from '../core/errors.js';
import { printError, type OutputOptions } from './output.js';

type ConfigOptions = OutputOptions & { config?: string };

const withConfig = (cmd: Command): Command =>
  cmd
    .option('-c, --config <file>', 'config file (default ./scriptorium.config.json)')
    .option('--json', 'print a machine-readable result')
    .option('--debug', 'print stack traces with errors');

/** The daemon's signal handling: SIGTERM/SIGINT stop it (twice: at once), SIGHUP reloads. */
export function daemonSignals(stop: () => Promise<void>, reload: () => void): void {
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.removeAllListeners(signal); // the CLI's exit-at-once handlers
  let stopping = false;
  const onStop = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`scriptorium daemon: ${signal} again: exiting now\n`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    stopping = true;
    process.stderr.write(`scriptorium daemon: ${signal}: stopping\n`);
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        printError(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', reload);
}

export function registerDaemonCommands(program: Command): void {
  withConfig(program.command('daemon').description('run the jobs of scriptorium.config.json on their schedules (alerts included)')).action(async (o: ConfigOptions) => {
    try {
      const { Daemon } = await import('../daemon/daemon.js');
      const { AlertEngine } = await import('../alerts/alert-engine.js');
      const { loadDaemonConfig } = await import('../daemon/job-config.js');
      const alerts = new AlertEngine(loadDaemonConfig(o.config));
      const daemon = new Daemon({ ...(o.config ? { configPath: o.config } : {}), hooks: alerts });
      daemon.start();
      daemonSignals(() => daemon.stop(), () => void daemon.reload());
    } catch (err) {
      process.exitCode = printError(err, o.debug);
    }
  });

  withConfig(program.command('jobs').description('list the jobs: schedule, state, last result and next run')).action(async (o: ConfigOptions) => {
    try {
      const { loadDaemonConfig } = await import('../daemon/job-config.js');
      const { Journal } = await import('../daemon/journal.js');
      const { jobStatuses } = await import('../daemon/job-status.js');
      const config = loadDaemonConfig(o.config);
      const statuses = jobStatuses(config, new Journal(config.journalPath).read());
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ jobs: statuses }, null, 2)}\n`);
        return;
      }
      if (statuses.length === 0) {
        process.stdout.write(`no jobs in ${config.file}\n`);
        return;
      }
      const head = ['job', 'schedule', 'state', 'last run', 'result', 'next run'];
      const rows = statuses.map((s) => [
        s.name, s.schedule, s.state, s.lastRun ? s.lastRun.at.replace('T', ' ').slice(0, 19) : '-',
        s.lastRun ? `${s.lastRun.status}${s.lastRun.error ? ` (${s.lastRun.error.code})` : ''}` : '-',
        s.due ? 'due now' : s.next ? s.next.replace('T', ' ').slice(0, 19) : '-',
      ]);
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
      process.stdout.write(`${[line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')}\n`);
    } catch (err) {
      process.exitCode = printError(err, o.debug);
    }
  });

  withConfig(
    program.command('run').description('run one job now (backup, retention, verify), in the foreground').argument('<job>', 'job name').option('--prune', "run the job's prune instead"),
  ).action(async (name: string, o: ConfigOptions & { prune?: boolean }) => {
    try {
      const { loadDaemonConfig } = await import('../daemon/job-config.js');
      const { TaskRunner, busyError } = await import('../daemon/task-runner.js');
      const { AlertEngine } = await import('../alerts/alert-engine.js');
      const config = loadDaemonConfig(o.config);
      const job = config.jobs.get(name);
      if (!job) {
        throw new ScriptoriumError('E_NOT_FOUND', `no job named ${name} in ${config.file}`, { hint: `jobs: ${[...config.jobs.keys()].join(', ') || 'none'}` });
      }
      const runner = new TaskRunner(config);
      runner.markInterrupted();
      const kind = o.prune ? 'prune' : 'backup';
      const run = runner.start(job, kind, 'manual');
      if (!run) throw busyError(name);
      for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
        process.removeAllListeners(signal);
        process.once(signal, () => run.abort());
      }
      const alerts = new AlertEngine(config);
      await alerts.runStarted(job, kind, run.run);
      const end = await run.done;
      await alerts.runEnded(job, end);
      if (o.json) process.stdout.write(`${JSON.stringify(end, null, 2)}\n`);
      else {
        for (const s of end.steps) {
          const detail = s.detail ? ` ${Object.entries(s.detail).map(([k, v]) => `${k}=${v}`).join(' ')}` : '';
          process.stdout.write(`${s.step.padEnd(9)} ${s.ok ? 'ok    ' : 'FAILED'} ${(s.durationMs / 1000).toFixed(2)} s${detail}${s.error ? ` ${s.error.code}: ${s.error.message}` : ''}\n`);
        }
        process.stdout.write(`job ${name}: ${end.status} in ${(end.durationMs / 1000).toFixed(2)} s\n`);
      }
      if (end.status !== 'ok') {
        if (!o.json && end.error && end.steps.length === 0) process.stderr.write(`scriptorium: error ${end.error.code}: ${end.error.message}\n`);
        process.exitCode = 1;
      }
    } catch (err) {
      process.exitCode = printError(err, o.debug);
    }
  });

  withConfig(
    program.command('serve').description('serve the dashboard (jobs, live progress, history charts, snapshots, alerts) and its JSON API')
      .option('--host <address>', 'address to bind (a non-loopback one needs SCRIPTORIUM_TOKEN)', '127.0.0.1')
      .option('--port <n>', 'port (0: any free port)', (v) => Number.parseInt(v, 10), 8080)
      .option('--jobs', 'also run the jobs on their schedules, as `scriptorium daemon` does'),
  ).action(async (o: ConfigOptions & { host: string; port: number; jobs?: boolean }) => {
    try {
      const { loadDaemonConfig } = await import('../daemon/job-config.js');
      const { startDashboard, isLoopback } = await import('../dashboard/server.js');
      const { resolveToken } = await import('../dashboard/token.js');
      if (!Number.isSafeInteger(o.port) || o.port < 0 || o.port > 65535) throw new ScriptoriumError('E_USAGE', `--port must be 0 to 65535, got ${o.port}`);
      if (!isLoopback(o.host) && !process.env.SCRIPTORIUM_TOKEN) {
        throw new ScriptoriumError('E_USAGE', `refusing to serve on ${o.host} (not a loopback address) without a token`, {
          hint: 'set SCRIPTORIUM_TOKEN to a long random value (e.g. `openssl rand -hex 32`), or bind 127.0.0.1 and use an SSH tunnel',
        });
      }
      const config = loadDaemonConfig(o.config);
      const token = resolveToken();
      let daemon: import('../daemon/daemon.js').Daemon | undefined;
      if (o.jobs) {
        const { Daemon } = await import('../daemon/daemon.js');
        const { AlertEngine } = await import('../alerts/alert-engine.js');
        daemon = new Daemon({ ...(o.config ? { configPath: o.config } : {}), hooks: new AlertEngine(config) });
        daemon.start();
      }
      const dashboard = await startDashboard({ config: daemon?.config ?? config, token: token.token, host: o.host, port: o.port, ...(daemon ? { daemon } : {}) });
      process.stderr.write(`scriptorium serve: dashboard at ${dashboard.url}${daemon ? ` (running ${daemon.config.jobs.size} job(s))` : ''}\n`);
      if (token.source === 'generated') {
        process.stderr.write(`scriptorium serve: a token for Run/Verify and scripts was generated (shown once; stored in ${token.file}):\n  ${token.token}\n`);
      }
      daemonSignals(async () => {
        await dashboard.close();
        await daemon?.stop();
      }, () => {
        if (daemon?.reload()) dashboard.data.setConfig(daemon.config);
        else if (!daemon) {
          try {
            dashboard.data.setConfig(loadDaemonConfig(o.config));
          } catch (err) {
            printError(err);
          }
        }
      });
    } catch (err) {
      process.exitCode = printError(err, o.debug);
    }
  });

  const alert = program.command('alert').description('alerts of scriptorium.config.json');
  withConfig(alert.command('test').description('send a test alert through every channel of an alert').argument('<name>', 'alert name')).action(async (name: string, o: ConfigOptions) => {
    try {
      const { loadDaemonConfig } = await import('../daemon/job-config.js');
      const { AlertEngine } = await import('../alerts/alert-engine.js');
      const config = loadDaemonConfig(o.config);
      if (!config.alerts.has(name)) {
        throw new ScriptoriumError('E_NOT_FOUND', `no alert named ${name} in ${config.file}`, { hint: `alerts: ${[...config.alerts.keys()].join(', ') || 'none'}` });
      }
      const results = await new AlertEngine(config, { log: () => {} }).test(name);
      if (o.json) process.stdout.write(`${JSON.stringify({ results }, null, 2)}\n`);
      else for (const r of results) process.stdout.write(`${r.channel}: ${r.ok ? 'delivered' : `FAILED after ${r.attempts} attempt(s): ${r.error ?? ''}`}\n`);
      if (results.some((r) => !r.ok)) process.exitCode = 1;
    } catch (err) {
      process.exitCode = printError(err, o.debug);
    }
  });
}
