/** `scriptorium bench --only s3`: the S3 section alone, on the largest of the sizes, as `<date>-s3.md/.json`. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cachedDemoDatabase } from './run.js';
import { runS3Bench, s3Markdown, type S3BenchReport } from './s3.js';

export async function runS3Only(o: { sizes: number[]; out: string; workDir?: string; log: (line: string) => void }): Promise<{ report: S3BenchReport & { date: string; loadAverage: number[] }; markdown: string; files: { md: string; json: string } }> {
  const workDir = o.workDir ?? path.join(os.tmpdir(), 'scriptorium-bench');
  const largest = Math.max(...o.sizes);
  const load = os.loadavg()[0]!;
  const s3 = await runS3Bench({ db: cachedDemoDatabase(workDir, largest, o.log), workDir, log: o.log });
  const report = { date: new Date().toISOString().slice(0, 10), loadAverage: [load, os.loadavg()[0]!], ...s3 };
  const markdown = `${s3Markdown(s3)}\nLoad average ${report.loadAverage.map((v) => v.toFixed(2)).join(' → ')} (start → end), ${os.cpus().length} CPUs; N=${largest.toLocaleString('en-US')} registrations.\n`;
  fs.mkdirSync(o.out, { recursive: true });
  const base = path.join(o.out, `${report.date}-s3`);
  const files = { md: `${base}.md`, json: `${base}.json` };
  fs.writeFileSync(files.md, markdown);
  fs.writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  return { report, markdown, files };
}
