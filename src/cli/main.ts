#!/usr/bin/env -S node --max-semi-space-size=2
import { Command } from 'commander';
import { removeRegisteredTemps } from '../core/atomic-file.js';
import { codecByName, type CodecName } from '../codecs/codec.js';
import { GENERATOR } from '../formats/format.js';
import { redact } from '../monitor/redact.js';
import { registerBenchCommand } from './bench-command.js';
import { registerDaemonCommands } from './daemon-commands.js';
import { registerHistoryCommand } from './history-command.js';
import { registerKeygenCommand } from './keygen-command.js';
import { exportEncryption, importKeys, withDecryptOptions, withEncryptOptions, type DecryptFlags, type EncryptFlags } from './age-options.js';
import { registerRepositoryCommands } from './repository-commands.js';
import { formatBytes, formatCount, printError, type OutputOptions } from './output.js';
import { list, wholeNumber } from './options.js';
import { runOperation } from './run.js';


/** Adds --quiet, --json and --debug to a command. */
function withOutput(cmd: Command): Command {
  return cmd
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'print a machine-readable summary')
    .option('--debug', 'print stack traces with errors');
}

export function buildProgram(): Command {
  const program = new Command('scriptorium')
    .description('Backup, verification and restore for application databases (SQLite and PostgreSQL).')
    .version(GENERATOR.split(' ')[1]!)
    .showHelpAfterError('(run with --help for usage)');

  withOutput(withEncryptOptions(
    program
      .command('export')
      .description('export a database (a SQLite file or a postgres:// URL) as one json, ndjson or sql file (streamed, consistent snapshot)')
      .argument('<db>', 'SQLite database file, or postgres://user:password@host/db (- with --engine postgres: the PG* variables)')
      .option('--engine <engine>', 'sqlite | postgres (default: postgres for a postgres:// URL, sqlite otherwise)')
      .requiredOption('-f, --format <format>', 'json | ndjson | sql')
      .option('-o, --output <file>', 'output file, - for stdout (default: ./backups/<db>-<time>.<ext>)')
      .option('--force', 'replace an existing output file (only once the export is complete; never the database itself)')
      .option('-c, --compress <codec>', 'gzip | zstd')
      .option('--level <n>', 'compression level', wholeNumber)
      .option('--tables <a,b>', 'only these tables', list)
      .option('--exclude-tables <c,d>', 'all tables but these', list),
  )).action(async (db: string, o: OutputOptions & EncryptFlags & { engine?: string; format: string; output?: string; force?: boolean; compress?: string; level?: number; tables?: string[]; excludeTables?: string[] }) => {
    const { exportTo, parseFormat } = await import('../export.js');
    const { parseEngine } = await import('../engines/registry.js');
    await runOperation(
      o,
      async (onEvent) =>
        exportTo(db, {
          ...(o.engine ? { engine: parseEngine(o.engine) } : {}),
          encryption: await exportEncryption(o),
          format: parseFormat(o.format),
          ...(o.output ? { output: o.output } : {}),
          force: o.force ?? false,
          compress: (o.compress ? codecByName(o.compress).name : 'none') as CodecName,
          ...(o.level !== undefined ? { level: o.level } : {}),
          ...(o.tables ? { tables: o.tables } : {}),
          ...(o.excludeTables ? { excludeTables: o.excludeTables } : {}),
          onEvent,
        }),
      (r) =>
        `${r.path === '-' ? '' : `${r.path}\n`}exported ${formatCount(r.rows)} rows from ${r.tables.length} tables as ${r.format}${r.compression === 'none' ? '' : `+${r.compression}`}${r.encryption ? '+age' : ''}: ${formatBytes(r.bytes)} in ${(r.durationMs / 1000).toFixed(2)} s (${formatCount(r.rows / Math.max(r.durationMs / 1000, 1e-3))} rows/s)`,
      o.output === '-' ? process.stderr : process.stdout,
    );
  });

  withOutput(withDecryptOptions(
    program
      .command('import')
      .description('import an export file (json, ndjson or sql; plain, gzip or zstd) into a new SQLite database or into PostgreSQL')
      .argument('<file>', 'export file, - for stdin')
      .requiredOption('--into <db>', 'SQLite database to create, or postgres://user:password@host/db to load in one transaction (- with --engine postgres: the PG* variables)')
      .option('--engine <engine>', 'sqlite | postgres (default: postgres for a postgres:// URL, sqlite otherwise)')
      .option('--force', 'replace an existing non-empty database (only after the import succeeds)')
      .option('--allow-lossy', 'into another engine: load values that cannot be carried exactly, converted as docs/cross-engine.md says (without it they are reported and nothing is written)'),
  )).action(async (file: string, o: OutputOptions & DecryptFlags & { into: string; engine?: string; force?: boolean; allowLossy?: boolean }) => {
    const { importFrom } = await import('../import.js');
    const { parseEngine } = await import('../engines/registry.js');
    await runOperation(
      o,
      async (onEvent) => importFrom(file, { into: o.into, ...(o.engine ? { engine: parseEngine(o.engine) } : {}), force: o.force ?? false, ...(o.allowLossy ? { allowLossy: true } : {}), decrypt: importKeys(o), onEvent }),
      (r) => {
        const verified = r.tables.filter((t) => t.verified).length;
        return `imported ${formatCount(r.rows)} rows into ${r.tables.length} tables of ${r.into} from ${r.format}${r.compression === 'none' ? '' : `+${r.compression}`}${r.encryption ? '+age' : ''} in ${(r.durationMs / 1000).toFixed(2)} s; ${verified}/${r.tables.length} tables verified by digest`;
      },
    );
  });

  withOutput(
    program
      .command('demo')
      .description('build the guest-house demo database, export it in every format, import each back and check it is identical')
      .option('--records <n>', 'registrations (other tables follow the original proportions)', wholeNumber, 100_000)
      .option('--dir <dir>', 'working directory', 'demo')
      .option('--engine <engine>', 'sqlite | postgres: with postgres the demo database is loaded into PostgreSQL (--into) and exported from it', 'sqlite')
      .option('--into <db>', 'with --engine postgres: an empty PostgreSQL database, postgres://user:password@host/db (default: - , the PG* variables)', '-'),
  ).action(async (o: OutputOptions & { records: number; dir: string; engine: string; into: string }) => {
    try {
      const { parseEngine } = await import('../engines/registry.js');
      const engine = parseEngine(o.engine);
      const { runDemo, runPostgresDemo } = await import('./demo-command.js');
      const ok = engine === 'postgres' ? await runPostgresDemo(o) : await runDemo(o);
      if (!ok) process.exitCode = 1;
    } catch (err) {
      process.exitCode = printError(err, o.debug);
    }
  });

  registerRepositoryCommands(program);
  registerHistoryCommand(program);
  registerKeygenCommand(program);
  registerBenchCommand(program);
  registerDaemonCommands(program);
  return program;
}

/**
 * Interrupted (Ctrl-C, `kill`): remove the temporary files of the operation in progress (a half-built
 * database can be as large as the real one) and exit with the shell's code for the signal. Nothing else
 * needs undoing: targets are only ever replaced by a rename of a complete file.
 */
function removeTempsOnSignals(): void {
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.once(signal, () => {
      const removed = removeRegisteredTemps();
      process.stderr.write(`scriptorium: interrupted by ${signal}${removed.length ? `; removed the temporary file${removed.length > 1 ? 's' : ''} ${removed.join(', ')}` : ''}\n`);
      process.exit(code);
    });
  }
}

/**
 * A password given in a URL (`postgres://user:secret@host/db`) must not show in `ps`: the process title
 * is set to the arguments with their secrets removed (on Linux this overwrites /proc/PID/cmdline).
 */
function redactProcessTitle(): void {
  const args = process.argv.slice(2);
  const shown = args.map(redact);
  if (shown.some((a, i) => a !== args[i])) process.title = ['scriptorium', ...shown].join(' ');
}

redactProcessTitle();
removeTempsOnSignals();
buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.exitCode = printError(err);
  });
