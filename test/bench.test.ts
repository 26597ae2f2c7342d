// `scriptorium bench --quick`: the benchmark runs end to end and writes a well-formed report (Markdown,
// JSON, SVG). The figures themselves are not checked here: they belong to the benchmark run, not to tests.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEDUP_TABLE_HEADER, MAIN_TABLE_HEADER, REPOSITORIES_TABLE_HEADER } from '../src/bench/markdown.js';
import { median } from '../src/bench/stats.js';
import type { BenchReport } from '../src/bench/stats.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
/**
 * What this machine and build can run, found independently of the benchmark's own probe: restic on the
 * PATH, and `--encrypt` among the options of `init` and `export`.
 */
const HAS_RESTIC = spawnSync('restic', ['version']).status === 0;
const hasOption = (command: string): boolean => /--encrypt\b/.test(spawnSync(process.execPath, [CLI, command, '--help'], { encoding: 'utf8' }).stdout ?? '');
const HAS_ENCRYPTED_REPO = hasOption('init');
const HAS_ENCRYPTED_EXPORT = hasOption('export');
const ALL_CASES = [
  'export-ndjson', 'export-json', 'export-sql', 'export-sql-encrypted', 'export-sql-recipient', 'export-ndjson-zstd', 'import-ndjson', 'import-json', 'import-sql',
  'backup', 'restore', 'backup-encrypted', 'restore-encrypted',
  'sqlite3-json', 'sqlite3-dump', 'sqlite3-restore', 'sqlite3-dump-zstd', 'zstd-restore', 'restic-backup', 'restic-restore',
];
const LEFT_OUT = [
  ...(HAS_RESTIC ? [] : ['restic-backup', 'restic-restore']),
  ...(HAS_ENCRYPTED_REPO ? [] : ['backup-encrypted', 'restore-encrypted']),
  ...(HAS_ENCRYPTED_EXPORT ? [] : ['export-sql-encrypted', 'export-sql-recipient']),
];
const CASES = ALL_CASES.filter((id) => !LEFT_OUT.includes(id));
/** Each of our cases and the peer it is compared with. */
const PEERS: Record<string, string> = {
  'export-ndjson': 'sqlite3-json', 'export-json': 'sqlite3-json', 'export-sql': 'sqlite3-dump', 'export-ndjson-zstd': 'sqlite3-dump-zstd',
  'export-sql-encrypted': 'sqlite3-dump', 'export-sql-recipient': 'sqlite3-dump',
  'import-ndjson': 'sqlite3-restore', 'import-json': 'sqlite3-restore', 'import-sql': 'sqlite3-restore',
  backup: 'sqlite3-dump-zstd', restore: 'zstd-restore', 'backup-encrypted': 'restic-backup', 'restore-encrypted': 'restic-restore',
};

/** Minimal XML well-formedness check: every element closes, in order, and the root is <svg>. */
function checkXml(text: string): void {
  const body = text.replace(/^<\?xml[^>]*\?>\s*/, '');
  expect(body.startsWith('<svg')).toBe(true);
  const stack: string[] = [];
  for (const m of body.matchAll(/<(\/?)([A-Za-z][\w:-]*)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g)) {
    const [, close, name, , selfClose] = m;
    if (selfClose) continue;
    if (close) expect(stack.pop()).toBe(name);
    else stack.push(name!);
  }
  expect(stack).toEqual([]);
  expect(body.replace(/<[^>]*>/g, '')).not.toMatch(/[<>]/);
}

describe('scriptorium bench --quick', () => {
  let out = '';
  let stdout = '';
  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'scriptorium-bench-test-'));
    ({ stdout } = await run(process.execPath, [CLI, 'bench', '--quick', '--out', out], { maxBuffer: 16 << 20 }));
  }, 300_000); // restic and the encrypted cases (and the paired encryption section) add two dozen processes with a key derivation each
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('writes <date>.md, .json and .svg and prints the Markdown table', () => {
    const files = readdirSync(out).sort();
    expect(files).toHaveLength(3);
    expect(files.map((f) => f.replace(/^\d{4}-\d{2}-\d{2}/, 'DATE'))).toEqual(['DATE.json', 'DATE.md', 'DATE.svg']);
    expect(stdout).toContain(MAIN_TABLE_HEADER);
  });

  it('writes Markdown with the comparison, targets, scaling and memory tables', () => {
    const md = readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.md'))!), 'utf8');
    expect(md).toMatch(/^# scriptorium benchmark — \d{4}-\d{2}-\d{2}/);
    expect(md).toContain(MAIN_TABLE_HEADER);
    for (const h of ['## Targets', '## Backup repository: deduplication', '## Scaling', '## Memory', '## All measurements']) expect(md).toContain(h);
    expect(md).toContain(DEDUP_TABLE_HEADER);
    // Every table row has as many cells as its header (a stray `|` would break this).
    for (const block of md.split('\n\n').filter((b) => b.startsWith('| '))) {
      const counts = block.split('\n').filter(Boolean).map((l) => l.replace(/\\\|/g, '').split('|').length);
      expect(new Set(counts).size).toBe(1);
    }
  });

  it('writes a JSON report with every case at every size', () => {
    const report = JSON.parse(readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.json'))!), 'utf8')) as BenchReport;
    expect(report.quick).toBe(true);
    expect(report.repeat).toBeGreaterThanOrEqual(1);
    expect(report.sizes.map((s) => s.records)).toEqual([1000, 5000]);
    for (const size of report.sizes) {
      expect(size.rows).toBeGreaterThan(size.records);
      expect(size.cases.map((c) => c.id)).toEqual(CASES);
      for (const c of size.cases) {
        expect(c.runsMs).toHaveLength(report.repeat);
        for (const k of ['seconds', 'rowsPerSec', 'mbPerSec', 'usPerRow', 'bytes'] as const) expect(c[k]).toBeGreaterThan(0);
        expect(c.peakRssBytes === null || c.peakRssBytes > 0).toBe(true);
        if (c.side === 'ours') {
          expect(c.peer).toBe(PEERS[c.id]);
          if (CASES.includes(c.peer!)) expect(c.ratio).toBeGreaterThan(0);
          else expect(c.ratio).toBeUndefined();
        }
      }
    }
    expect(report.trends.map((t) => t.id)).toEqual(CASES);
    for (const t of report.trends) expect(t.usPerRow).toHaveLength(2);
    expect(report.targets.length).toBeGreaterThan(0);
    for (const name of ['backup vs', 'restore vs', 'peak RSS of backup', 'peak RSS of restore', 'stored after: 1% new rows appended'])
      expect(report.targets.some((t) => t.issue === 4 && t.name.startsWith(name))).toBe(true);
  });

  it('sets restic and the encrypted repository beside ours, or says plainly which of them could not run', () => {
    const report = JSON.parse(readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.json'))!), 'utf8')) as BenchReport;
    const md = readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.md'))!), 'utf8');
    expect((report.unavailable ?? []).flatMap((u) => u.cases).sort()).toEqual([...LEFT_OUT].sort());
    for (const u of report.unavailable ?? []) {
      expect(u.reason.length).toBeGreaterThan(0);
      expect(md).toContain(`not available: ${u.reason}`);
    }
    expect(md).toContain(REPOSITORIES_TABLE_HEADER);
    const d = report.dedup!;
    expect(d.repositoryBytes).toBeGreaterThan(d.firstBytes); // the config file too
    expect(d.dumpZstdBytes).toBeGreaterThan(0);
    const peers = (d.peers ?? []).map((p) => p.id);
    expect(peers).toEqual([...(HAS_ENCRYPTED_REPO ? ['scriptorium-encrypted'] : []), ...(HAS_RESTIC ? ['restic'] : [])]);
    for (const p of d.peers ?? []) {
      expect(p.scenarios.map((s) => s.id)).toEqual(d.scenarios.map((s) => s.id));
      expect(p.repositoryBytes).toBeGreaterThan(p.firstBytes);
      for (const s of p.scenarios) expect(s.storedBytes).toBeGreaterThan(0);
    }
    // Issue 14's targets: each one measured, or marked not available when its cases could not run.
    for (const name of ['encrypted backup time', 'encrypted restore time', 'export sql --encrypt time', 'first snapshot repository', 'first snapshot encrypted repository']) {
      const t = report.targets.find((x) => x.issue === 14 && x.name.startsWith(name));
      expect(t, name).toBeDefined();
      const needs = name.startsWith('export') ? HAS_ENCRYPTED_EXPORT : name.includes('encrypted') ? HAS_ENCRYPTED_REPO : true;
      expect(t!.available !== false).toBe(needs);
      if (!needs) expect(t!.measured).toMatch(/^not available: /);
    }
  });

  it('measures encryption\'s cost in pairs (plain and encrypted back to back) and the targets use those ratios', () => {
    const report = JSON.parse(readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.json'))!), 'utf8')) as BenchReport;
    if (!HAS_ENCRYPTED_REPO || !HAS_ENCRYPTED_EXPORT) {
      expect(report.encryption).toBeUndefined();
      return;
    }
    const e = report.encryption!;
    expect(e.rounds).toBe(1); // --quick
    expect(e.variants.map((v) => v.id)).toEqual(['backup', 'backup-encrypted', 'restore', 'restore-encrypted', 'export-sql', 'export-sql-encrypted', 'export-sql-recipient']);
    for (const v of e.variants) expect(v.wallMs).toHaveLength(e.rounds);
    expect(e.ratios.map((r) => [r.plainId, r.id])).toEqual([['backup', 'backup-encrypted'], ['restore', 'restore-encrypted'], ['export-sql', 'export-sql-encrypted'], ['export-sql', 'export-sql-recipient']]);
    for (const r of e.ratios) {
      const plain = e.variants.find((v) => v.id === r.plainId)!;
      const enc = e.variants.find((v) => v.id === r.id)!;
      // One round: the ratio is that round's, and the spread is that one ratio.
      expect(r.ratio).toBeCloseTo(enc.wallMs[0]! / plain.wallMs[0]!, 6);
      expect(r.spread).toEqual([r.ratio, r.ratio]);
      const t = report.targets.find((x) => x.issue === 14 && x.name.includes('paired') && x.measured.startsWith(`${r.ratio.toFixed(3)}×`));
      expect(t, r.id).toBeDefined();
      expect(t!.met).toBe(r.ratio <= 1 + r.max);
    }
    expect(e.scrypt.wallMs).toHaveLength(e.rounds);
    const md = readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.md'))!), 'utf8');
    expect(md).toContain("## Encryption's cost, paired");
  });

  it('runs the large-value case (16 MB with --quick) through export, import, backup and restore', () => {
    const report = JSON.parse(readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.json'))!), 'utf8')) as BenchReport;
    const big = report.bigValue!;
    expect(big.valueBytes).toBe(16e6);
    expect(big.boundBytes).toBe(1.5 * 16e6 + 100e6);
    expect(big.runs.map((r) => r.id)).toEqual(['export-ndjson', 'import-ndjson', 'backup', 'restore']);
    for (const r of big.runs) expect(r.seconds).toBeGreaterThan(0);
    if (report.rssMeasured) expect(report.targets.filter((t) => t.issue === 13)).toHaveLength(4);
    const md = readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.md'))!), 'utf8');
    expect(md).toContain('## One large value (issue 13)');
  });

  it('measures deduplication at the largest size only', () => {
    const report = JSON.parse(readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.json'))!), 'utf8')) as BenchReport;
    const d = report.dedup!;
    expect(d.records).toBe(5000);
    expect(d.rows).toBe(report.sizes[report.sizes.length - 1]!.rows);
    expect(d.scenarios.map((s) => s.id)).toEqual(['first', 'update-uniform', 'update-clustered', 'append', 'unchanged']);
    const [first, ...rest] = d.scenarios;
    expect(first!.storedBytes).toBe(d.firstBytes);
    expect(first!.newChunks).toBe(first!.chunks);
    for (const s of rest) {
      expect(s.storedBytes).toBeGreaterThan(0);
      expect(s.storedBytes).toBeLessThan(d.firstBytes);
      expect(s.share).toBeCloseTo(s.storedBytes / d.firstBytes, 10);
      if (s.id === 'unchanged') expect(s.rowsChanged).toBe(0);
      else expect(s.rowsChanged / d.rows).toBeCloseTo(0.01, 2); // 1% of the rows (at least one per table)
    }
    expect(rest.find((s) => s.id === 'unchanged')!.newChunks).toBe(0);
  });

  it('writes an SVG chart that is well-formed XML with a line per case', () => {
    const svg = readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.svg'))!), 'utf8');
    checkXml(svg);
    expect(svg.match(/<polyline /g)?.length).toBeGreaterThanOrEqual(CASES.length);
  });
});

describe('median', () => {
  it('takes the middle value, or the mean of the two middle values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});
