import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULT_SIZES, QUICK_SIZES, SCALE_SIZES } from '../bench/sizes.js';
import { printError } from './output.js';

const sizesArg = (v: string): number[] => {
  const out = v.split(',').map((s) => {
    const t = s.trim().toLowerCase();
    const n = t.endsWith('k') ? Number(t.slice(0, -1)) * 1000 : t.endsWith('m') ? Number(t.slice(0, -1)) * 1e6 : Number(t);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`not a positive whole number of registrations: ${s}`);
    return n;
  });
  if (!out.length) throw new InvalidArgumentError('expected a comma-separated list of sizes');
  return out;
};

const positive = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number ≥ 1');
  return n;
};

/** The sections `--only` runs on their own. */
const SECTIONS = ['daemon', 's3', 'postgres', 'pgcross', 'encryption'];

interface BenchCliOptions {
  sizes?: number[];
  repeat?: number;
  quick?: boolean;
  out: string;
  workDir?: string;
  json?: boolean;
  quiet?: boolean;
  dedup: boolean;
  bigValue: boolean;
  daemon: boolean;
  s3: boolean;
  only?: string;
  scale?: boolean;
  pgcross: boolean;
  pgUrl?: string;
  postgres: boolean;
  encryption: boolean;
}

/** The PostgreSQL section (src/bench/postgres.ts) on the demo of 520,000 registrations (about 1M rows): its Markdown, also written to <out>/<date>-postgres.md/.json. */
async function postgresSection(o: BenchCliOptions, quick: boolean, log: (s: string) => void): Promise<string> {
  const [{ runPostgresBench, postgresMarkdown }, { cachedDemoDatabase }] = await Promise.all([import('../bench/postgres.js'), import('../bench/run.js')]);
  const workDir = o.workDir ?? path.join(os.tmpdir(), 'scriptorium-bench');
  const demoFile = cachedDemoDatabase(workDir, quick ? 5_000 : 520_000, log);
  const report = await runPostgresBench({ demoFile, workDir, repeat: o.repeat ?? (quick ? 1 : 3), log });
  const md = postgresMarkdown(report);
  fs.mkdirSync(o.out, { recursive: true });
  const base = path.join(o.out, `${new Date().toISOString().slice(0, 10)}-postgres`);
  fs.writeFileSync(`${base}.md`, md);
  fs.writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  return md;
}

/**
 * Registers `scriptorium bench`: measures export/import in every format and the backup repository's
 * backup and restore against the sqlite3 shell (and zstd) on demo databases of increasing size, the
 * repository's deduplication at the largest size, and writes `bench/results/<date>.md`, `.json` and `.svg`.
 */
export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('benchmark export, import, backup and restore against sqlite3 (-json, .dump, restore, .dump | zstd, zstd -dc | sqlite3), and deduplication')
    .option('--sizes <n,n,…>', `registrations per database, rows ≈ 1.93 × N (default ${DEFAULT_SIZES.join(',')}; quick ${QUICK_SIZES.join(',')})`, sizesArg)
    .option('--repeat <n>', 'runs per command; the median is reported (default 3; quick 1)', positive)
    .option('--quick', 'smoke run on tiny databases (well under a minute)')
    .option('--out <dir>', 'directory for the reports', 'bench/results')
    .option('--work-dir <dir>', 'cache of demo databases and scratch files (default: <tmpdir>/scriptorium-bench)')
    .option('--no-dedup', 'skip the deduplication scenarios (run at the largest size)')
    .option('--no-big-value', 'skip the large-value case (one 300 MB value; quick 16 MB)')
    .option('--no-daemon', 'skip the daemon section (daemon idle RSS and CPU, dashboard latency with 10,000 operations, a short soak)')
    .option('--only <section>', `run only one section and write <date>-<section>.md/.json (sections: ${SECTIONS.join(', ')})`, (v: string) => {
      if (!SECTIONS.includes(v)) throw new InvalidArgumentError(`unknown section ${v} (sections: ${SECTIONS.join(', ')})`);
      return v;
    })
    .option('--scale', `only the scaling case: backup and restore, first and second snapshot, peak RSS and time per row (default sizes ${SCALE_SIZES.join(',')}: 1M and 10M rows; writes <date>-scale.md/.json)`)
    .option('--no-encryption', 'skip the paired encryption section (plain and encrypted backup, restore, export back to back, at the largest size)')
    .option('--no-s3', 'skip the S3 section (moto_server on loopback, at the largest size; --quick skips it too)')
    .option('--no-postgres', 'skip the PostgreSQL section (backup/restore vs pg_dump, pg_restore, psql)')
    .option('--no-pgcross', 'skip the pgcross section (SQLite → PostgreSQL: scriptorium against pgloader)')
    .option('--pg-url <url>', 'PostgreSQL server for the pgcross section (default: SCRIPTORIUM_BENCH_PG_URL); databases are created on it')
    .option('--json', 'print the JSON report instead of the Markdown')
    .option('-q, --quiet', 'print nothing but errors (reports are still written)')
    .action(async (o: BenchCliOptions) => {
      try {
        const quick = o.quick ?? false;
        const args = process.argv.slice(process.argv.indexOf('bench') + 1);
        const command = args.length ? `npm run build && node dist/cli/main.js bench ${args.join(' ')}` : 'npm run bench';
        const log = o.quiet || o.json ? () => {} : (s: string) => process.stderr.write(`${s}\n`);
        if (o.only === 'daemon') {
          const { runDaemonSection } = await import('../bench/daemon-section.js');
          const { markdown, files } = await runDaemonSection({ quick, out: o.out, command, log });
          if (!o.quiet) process.stdout.write(`${markdown}\nwrote ${files.md}, ${files.json}\n`);
          return;
        }
        if (o.only === 's3') {
          const { runS3Only } = await import('../bench/s3-only.js');
          const { report, markdown, files } = await runS3Only({ sizes: o.sizes ?? (quick ? QUICK_SIZES : DEFAULT_SIZES), out: o.out, ...(o.workDir ? { workDir: o.workDir } : {}), log });
          if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          else if (!o.quiet) process.stdout.write(`${markdown}\nwrote ${files.md}, ${files.json}\n`);
          return;
        }
        if (o.only === 'encryption') {
          const { runEncryptionOnly } = await import('../bench/encryption-only.js');
          const sizes = o.sizes ?? (quick ? QUICK_SIZES : DEFAULT_SIZES);
          const { report, markdown, files } = await runEncryptionOnly({ records: sizes[sizes.length - 1]!, ...(o.repeat ? { rounds: o.repeat } : quick ? { rounds: 1 } : {}), out: o.out, ...(o.workDir ? { workDir: o.workDir } : {}), command, log });
          if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          else if (!o.quiet) process.stdout.write(`${markdown}\nwrote ${files.md}, ${files.json}\n`);
          return;
        }
        if (o.only === 'pgcross') {
          const { runPgcrossOnly } = await import('../bench/pgcross-only.js');
          const { report, markdown, files } = await runPgcrossOnly({ quick, repeat: o.repeat ?? (quick ? 1 : 3), ...(o.sizes ? { records: o.sizes[o.sizes.length - 1]! } : {}), out: o.out, ...(o.workDir ? { workDir: o.workDir } : {}), ...(o.pgUrl ? { pgUrl: o.pgUrl } : {}), command, log });
          if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          else if (!o.quiet) process.stdout.write(`${markdown}\nwrote ${files.md}, ${files.json}\n`);
          return;
        }
        if (o.scale) {
          const { runScaleBenchmark } = await import('../bench/run.js');
          const { report, markdown, files } = await runScaleBenchmark({
            sizes: o.sizes ?? SCALE_SIZES,
            out: o.out,
            ...(o.workDir ? { workDir: o.workDir } : {}),
            command: args.join(' ') === '--scale' ? 'npm run bench:scale' : command,
            log,
          });
          if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          else if (!o.quiet) process.stdout.write(`${markdown}\nwrote ${files.md}, ${files.json}\n`);
          return;
        }
        if (o.only === 'postgres') {
          const md = await postgresSection(o, quick, log);
          if (!o.quiet) process.stdout.write(`${md}\n`);
          return;
        }
        // Loaded here, not at start-up: the benchmark pulls in the demo and repository code.
        const { runBenchmark } = await import('../bench/run.js');
        const { report, markdown, files } = await runBenchmark({
          sizes: o.sizes ?? (quick ? QUICK_SIZES : DEFAULT_SIZES),
          repeat: o.repeat ?? (quick ? 1 : 3),
          quick,
          dedup: o.dedup,
          daemon: o.daemon,
          encryption: o.encryption,
          s3: o.s3 && !quick, // a smoke run stays quick: `--only s3 --quick` runs the section on its own
          ...(o.bigValue ? {} : { bigValue: false as const }),
          pgcross: o.pgcross ? { ...(o.pgUrl ? { pgUrl: o.pgUrl } : {}) } : false,
          out: o.out,
          ...(o.workDir ? { workDir: o.workDir } : {}),
          command,
          log,
        });
        if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        else if (!o.quiet) process.stdout.write(`${markdown}\nwrote ${files.md}, ${files.json}, ${files.svg}\n`);
        if (o.postgres && !quick) fs.appendFileSync(files.md, `\n${await postgresSection(o, quick, log)}`);
      } catch (err) {
        process.exitCode = printError(err);
      }
    });
}
