/** `scriptorium bench --only daemon`: the daemon section alone, written as `<date>-daemon.md` and `.json`. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { daemonMarkdown, runDaemonBench, type DaemonBench } from './daemon.js';

export async function runDaemonSection(o: { quick: boolean; out: string; command: string; log: (line: string) => void }): Promise<{ report: DaemonBench; markdown: string; files: { md: string; json: string } }> {
  const report = await runDaemonBench({ quick: o.quick, log: o.log });
  const date = new Date().toISOString().slice(0, 10);
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? '?'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.platform()} ${os.release()}, Node ${process.versions.node}`;
  const markdown = `# scriptorium benchmark, daemon section — ${date}\n\nReproduce: \`${o.command}\`\n\nMachine: ${machine}.\n\n${daemonMarkdown(report)}`;
  fs.mkdirSync(o.out, { recursive: true });
  const base = path.join(o.out, `${date}-daemon`);
  const files = { md: `${base}.md`, json: `${base}.json` };
  fs.writeFileSync(files.md, markdown);
  fs.writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  return { report, markdown, files };
}
