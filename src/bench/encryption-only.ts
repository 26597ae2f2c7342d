/** `scriptorium bench --only encryption`: the paired encryption section alone, as `<date>-encryption.md/.json`. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encryptionMarkdown, runEncryptionCost, type EncryptionCostReport } from './encryption.js';
import { cachedDemoDatabase, userTables } from './run.js';

export async function runEncryptionOnly(o: { records: number; rounds?: number; out: string; workDir?: string; command: string; log: (line: string) => void }): Promise<{ report: EncryptionCostReport & { date: string; records: number; command: string }; markdown: string; files: { md: string; json: string } }> {
  const workDir = o.workDir ?? path.join(os.tmpdir(), 'scriptorium-bench');
  const db = cachedDemoDatabase(workDir, o.records, o.log);
  const r = await runEncryptionCost({ db, rows: userTables(db).rows, workDir, ...(o.rounds ? { rounds: o.rounds } : {}), log: o.log });
  const report = { date: new Date().toISOString().slice(0, 10), records: o.records, command: o.command, ...r };
  const markdown = `${encryptionMarkdown(r)}\nN=${o.records.toLocaleString('en-US')} registrations; \`${o.command}\`.\n`;
  fs.mkdirSync(o.out, { recursive: true });
  const base = path.join(o.out, `${report.date}-encryption`);
  const files = { md: `${base}.md`, json: `${base}.json` };
  fs.writeFileSync(files.md, markdown);
  fs.writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  return { report, markdown, files };
}
