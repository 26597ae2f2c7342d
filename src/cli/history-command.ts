import * as fs from 'node:fs';
import type { Command } from 'commander';
import { formatHistoryTable, loadConfig, renderReport } from '../monitor/index.js';
import { printError, type OutputOptions } from './output.js';

/** `scriptorium history`: the operations recorded by the monitor, as a table, JSON or a Markdown report. */
export function registerHistoryCommand(program: Command): void {
  program
    .command('history')
    .description('list recorded operations (every export, import, backup, ... is recorded) or write a Markdown report')
    .option('--last <n>', 'only the last N operations', (v) => Number.parseInt(v, 10))
    .option('--kind <kind>', 'only operations of this kind (export, import, backup, restore, verify, ...)')
    .option('--report [file]', 'write a Markdown report with per-kind summaries (to FILE, or stdout)')
    .option('--json', 'print the records as JSON')
    .option('--debug', 'print stack traces with errors')
    .action(async (o: OutputOptions & { last?: number; kind?: string; report?: string | boolean }) => {
      try {
        const config = loadConfig({});
        const { HistoryStore } = await import('../monitor/index.js');
        const store = new HistoryStore(config.history);
        const records = await store.list({ ...(o.last ? { last: o.last } : {}), ...(o.kind ? { kind: o.kind } : {}) });
        if (o.report !== undefined) {
          const md = renderReport(records, { targets: config.targets });
          if (typeof o.report === 'string') {
            fs.writeFileSync(o.report, md);
            process.stdout.write(`${o.report}\n`);
          } else process.stdout.write(md);
        } else if (o.json) process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
        else process.stdout.write(`${formatHistoryTable(records)}\n`);
      } catch (err) {
        process.exitCode = printError(err, o.debug);
      }
    });
}
