// Shared test helpers for the monitor: temp folders, record builders, and a JavaScript copy of the
// monitor's source for child processes (which cannot load TypeScript).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import type { OperationRecord } from '../../src/monitor/index.js';

const MIB = 1024 * 1024;

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(prefix = 'scriptorium-monitor-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

let seq = 0;

/** A finished record with plausible values; durations, rows and memory can be given directly. */
export function makeRecord(fields: Partial<OperationRecord> & { peakMB?: number } = {}): OperationRecord {
  const { peakMB, ...rest } = fields;
  const durationMs = rest.durationMs ?? 1000;
  const rows = rest.rows ?? 10_000;
  const bytesOut = rest.bytesOut ?? 2 * MIB;
  const start = Date.parse('2025-01-01T00:00:00Z') + (seq++) * 60_000;
  const peak = peakMB === undefined ? 50 * MIB : peakMB * MIB;
  return {
    v: 1,
    id: `op-${seq}`,
    kind: 'export',
    source: 'app.db',
    target: 'app.jsonl',
    format: 'jsonl',
    startedAt: new Date(start).toISOString(),
    endedAt: new Date(start + durationMs).toISOString(),
    durationMs,
    rows,
    bytesIn: 0,
    bytesOut,
    rowsPerSecond: (rows * 1000) / Math.max(durationMs, 1),
    mbPerSecond: (bytesOut / MIB) * (1000 / Math.max(durationMs, 1)),
    peakRssBytes: peak,
    peakHeapUsedBytes: peak / 2,
    startRssBytes: peak - MIB,
    endRssBytes: peak - MIB,
    samples: 3,
    ok: true,
    pid: process.pid,
    ...rest,
  };
}

/**
 * Transpiles src/monitor and the core modules it imports to JavaScript in `outDir` (no type check, so
 * unfinished code elsewhere in src cannot break it). Returns the path of the compiled monitor folder.
 */
export function transpileMonitor(outDir: string): string {
  const root = fileURLToPath(new URL('../../src', import.meta.url));
  const files = [
    ...readdirSync(join(root, 'monitor')).filter((f) => f.endsWith('.ts')).map((f) => join('monitor', f)),
    join('core', 'errors.ts'),
    join('core', 'events.ts'),
  ];
  for (const file of files) {
    const { outputText } = ts.transpileModule(readFileSync(join(root, file), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
      fileName: file,
    });
    const out = join(outDir, file.replace(/\.ts$/, '.js'));
    mkdirSync(join(out, '..'), { recursive: true });
    writeFileSync(out, outputText);
  }
  writeFileSync(join(outDir, 'package.json'), '{ "type": "module" }\n');
  return join(outDir, 'monitor');
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
