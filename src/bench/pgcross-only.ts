import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pgcrossMarkdown, runPgcross, type PgcrossReport } from './pgcross.js';

/** Registrations of the pgcross section's demo database: about 1,000,000 rows (quick: 2,000 registrations). */
export const PGCROSS_RECORDS = 520_000;

/** `bench --only pgcross`: the section alone, written to `<out>/<date>-pgcross.md` and `.json`. */
export async function runPgcrossOnly(o: { quick: boolean; repeat: number; records?: number; out: string; workDir?: string; pgUrl?: string; command: string; log: (s: string) => void }): Promise<{ report: PgcrossReport & { date: string; command: string; loadAverage: number[] }; markdown: string; files: { md: string; json: string } }> {
  const started = new Date();
  const load = os.loadavg()[0]!;
  const section = await runPgcross({
    workDir: o.workDir ?? path.join(os.tmpdir(), 'scriptorium-bench'),
    records: o.records ?? (o.quick ? 2000 : PGCROSS_RECORDS),
    repeat: o.repeat,
    ...(o.pgUrl ? { pgUrl: o.pgUrl } : {}),
    log: o.log,
  });
  const report = { date: started.toISOString().slice(0, 10), command: o.command, loadAverage: [load, os.loadavg()[0]!], ...section };
  const markdown = `# scriptorium benchmark: pgcross (${report.date})\n\nCommand: \`${o.command.replace(/postgres(ql)?:\/\/[^ ]*/g, 'postgresql://…')}\`; load average ${report.loadAverage.map((l) => l.toFixed(1)).join(' → ')} (2 cores shared with other work).\n\n${pgcrossMarkdown(section)}`;
  fs.mkdirSync(o.out, { recursive: true });
  const base = path.join(o.out, `${report.date}-pgcross`);
  const files = { md: `${base}.md`, json: `${base}.json` };
  fs.writeFileSync(files.md, markdown);
  fs.writeFileSync(files.json, `${JSON.stringify({ ...report, command: markdown.match(/Command: `([^`]*)`/)?.[1] }, null, 2)}\n`);
  return { report, markdown, files };
}
