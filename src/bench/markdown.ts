import { daemonMarkdown } from './daemon.js';
import { s3Markdown } from './s3.js';
import { DEDUP_SCENARIOS } from './dedup.js';
import { pgcrossMarkdown } from './pgcross.js';
import { encryptionMarkdown } from './encryption.js';
import type { BenchReport, CaseResult, DedupReport, SizeResult, UnavailableCases } from './stats.js';

/** Column header of the main table (the test and the README look for it). */
export const MAIN_TABLE_HEADER =
  '| job | scriptorium s | rows/s | MB/s | peak RSS MB | peer | peer s | peer rows/s | peer RSS MB | speed vs peer |';

const count = (n: number): string => Math.round(n).toLocaleString('en-US');
const mb = (b: number | null): string => (b === null ? '?' : (b / 1e6).toFixed(1));
const secs = (s: number): string => s.toFixed(s < 10 ? 3 : 2);

function table(head: string[], rows: string[][], align?: ('l' | 'r')[]): string {
  const sep = head.map((_, i) => ((align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'l' ? '---' : '--:'));
  const cell = (c: string): string => c.replace(/\|/g, '\\|');
  return [head, sep, ...rows].map((r) => `| ${r.map(cell).join(' | ')} |`).join('\n');
}

/** The main comparison table: each scriptorium job beside the peer doing the same job, at one size. */
export function mainTable(cases: CaseResult[]): string {
  const rows = cases
    .filter((c) => c.side === 'ours')
    .map((c) => {
      const p = cases.find((x) => x.id === c.peer);
      return [
        c.label,
        secs(c.seconds),
        count(c.rowsPerSec),
        c.mbPerSec.toFixed(1),
        mb(c.peakRssBytes),
        p ? `\`${p.label}\`` : '',
        p ? secs(p.seconds) : '',
        p ? count(p.rowsPerSec) : '',
        p ? mb(p.peakRssBytes) : '',
        c.ratio === undefined ? '' : `**${c.ratio.toFixed(2)}×**`,
      ];
    });
  const head = MAIN_TABLE_HEADER.slice(2, -2).split(' | ');
  return table(head, rows, ['l', 'r', 'r', 'r', 'r', 'l', 'r', 'r', 'r', 'r']);
}

/** Column header of the deduplication table. */
export const DEDUP_TABLE_HEADER = '| change since the first snapshot | rows changed | new chunks | stored bytes | share of the first snapshot | target | met |';

/** The deduplication table: bytes each scenario's snapshot added to the repository. */
export function dedupTable(d: DedupReport): string {
  const pct = (v: number): string => `${(v * 100).toFixed(2)}%`;
  const rows = d.scenarios.map((s) => [
    s.label,
    count(s.rowsChanged),
    `${count(s.newChunks)} of ${count(s.chunks)}`,
    count(s.storedBytes),
    s.id === 'first' ? '100%' : pct(s.share),
    s.target === null ? '' : `≤ ${(s.target * 100).toFixed(0)}%`,
    s.target === null ? '' : s.met ? 'yes' : '**no**',
  ]);
  const head = DEDUP_TABLE_HEADER.slice(2, -2).split(' | ');
  return table(head, rows, ['l', 'r', 'r', 'r', 'r', 'r', 'l']);
}

/** Column header of the repositories table (scriptorium plain and encrypted, restic). */
export const REPOSITORIES_TABLE_HEADER =
  '| repository | backup s | backup RSS MB | restore s | restore RSS MB | first snapshot bytes | × dump+zstd -3 | 1% updated (uniform) | 1% updated (runs) | 1% appended | unchanged |';

/**
 * Our repository, plain and encrypted, beside restic's: times and peak RSS from the main run at the
 * largest size, bytes from the deduplication scenarios (what each backup added to the repository).
 */
export function repositoriesTable(size: SizeResult | undefined, d: DedupReport | undefined, unavailable: UnavailableCases[]): string {
  const rowsOf: { label: string; backup: string; restore: string; dedup: string; feature: string }[] = [
    { label: 'scriptorium', backup: 'backup', restore: 'restore', dedup: 'scriptorium', feature: '' },
    { label: 'scriptorium (encrypted)', backup: 'backup-encrypted', restore: 'restore-encrypted', dedup: 'scriptorium-encrypted', feature: 'encryptedRepository' },
    { label: 'restic (`sqlite3 .dump | restic backup --stdin`)', backup: 'restic-backup', restore: 'restic-restore', dedup: 'restic', feature: 'restic' },
  ];
  const head = REPOSITORIES_TABLE_HEADER.slice(2, -2).split(' | ');
  const withShare = (bytes: number, share: number): string => `${count(bytes)} (${(share * 100).toFixed(2)}%)`;
  const rows = rowsOf.map((r) => {
    const missing = unavailable.find((u) => u.feature === r.feature);
    if (missing) return [r.label, `not available: ${missing.reason}`, ...head.slice(2).map(() => '')];
    const b = size?.cases.find((c) => c.id === r.backup);
    const rs = size?.cases.find((c) => c.id === r.restore);
    const peer = d?.peers?.find((p) => p.id === r.dedup);
    const first = r.dedup === 'scriptorium' ? (d ? d.repositoryBytes ?? d.firstBytes : undefined) : peer?.repositoryBytes;
    const scen = (id: string): string => {
      if (r.dedup === 'scriptorium') {
        const s = d?.scenarios.find((x) => x.id === id);
        return s ? withShare(s.storedBytes, s.share) : '';
      }
      const s = peer?.scenarios.find((x) => x.id === id);
      return s ? withShare(s.storedBytes, s.share) : '';
    };
    return [
      r.label,
      b ? secs(b.seconds) : '',
      b ? mb(b.peakRssBytes) : '',
      rs ? secs(rs.seconds) : '',
      rs ? mb(rs.peakRssBytes) : '',
      first === undefined ? '' : count(first),
      first !== undefined && d?.dumpZstdBytes ? `${(first / d.dumpZstdBytes).toFixed(3)}×` : '',
      ...DEDUP_SCENARIOS.filter((id) => id !== 'first').map(scen),
    ];
  });
  return table(head, rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']);
}

/** Renders the whole report as Markdown. */
export function renderMarkdown(r: BenchReport): string {
  const largest = r.sizes[r.sizes.length - 1];
  const out: string[] = [];
  const m = r.machine;
  out.push(`# scriptorium benchmark — ${r.date}`, '');
  out.push(
    `Reproduce: \`${r.command}\``,
    '',
    `Machine: ${m.cpus} × ${m.cpuModel}, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB RAM, ${m.platform}, Node ${m.node}, sqlite3 ${m.sqlite3}, zstd ${m.zstd}; ` +
      `load average ${r.loadAverage.map((v) => v.toFixed(2)).join(' → ')} (start → end).`,
    `Each command ran as its own process, beside the peer doing the same job (ours first in one round, the peer first in the next; ` +
      `\`sync\` and its input read into the page cache before every run); figures are medians of ${r.repeat} run${r.repeat === 1 ? '' : 's'} (wall time of the whole process, ` +
      `including start-up; peak RSS ${r.rssMeasured ? 'from `/usr/bin/time -f %M`' : 'not measured: GNU time missing'}). ` +
      `Rows/s counts every row of the database; MB/s = file bytes (10^6) written by an export or read by an import ` +
      `(backup: the repository it wrote, from a fresh \`init\` each run, which is not timed; restore: the repository it read). ` +
      `"speed vs peer" = peer time / scriptorium time (above 1 means faster). Total run time ${(r.totalSeconds / 60).toFixed(1)} min.`,
    '',
  );
  for (const u of r.unavailable ?? []) out.push(`Not available in this run: ${u.cases.map((c) => `\`${c}\``).join(', ')} (${u.reason}).`, '');
  if (largest) {
    out.push(`## ${count(largest.rows)} rows (N = ${count(largest.records)} registrations, database ${mb(largest.dbBytes)} MB)`, '');
    out.push(mainTable(largest.cases), '');
  }
  if (r.targets.length) {
    out.push('## Targets (issue 2: export/import; issue 4: backup repository; issue 13: large values; issue 14: encryption, size)', '');
    out.push(
      table(
        ['issue', 'target', 'required', 'measured', 'met'],
        r.targets.map((t) => [String(t.issue), t.name, t.required, t.measured, t.available === false ? 'not available' : t.met ? 'yes' : '**no**']),
        ['r', 'l', 'r', 'r', 'l'],
      ),
      '',
    );
  }
  if (r.encryption) out.push(encryptionMarkdown(r.encryption));
  if (r.dedup) {
    const d = r.dedup;
    out.push(`## Backup repository: deduplication (${count(d.rows)} rows, N = ${count(d.records)})`, '');
    out.push(
      `Bytes each backup added to one repository (packs, index file and manifest, measured on disk), against the first snapshot ` +
        `(${count(d.firstBytes)} bytes for a ${mb(d.dbBytes)} MB database). Every change starts again from the same database: ` +
        `1% of each table's rows updated at random, or in 10 runs per table, 1% new rows appended, or nothing changed. ` +
        `Repository settings: ${Object.keys(d.settings).length ? JSON.stringify(d.settings) : 'defaults'}; ran in-process in ${d.seconds.toFixed(1)} s.`,
      '',
    );
    out.push(dedupTable(d), '');
  }
  if (r.dedup || r.unavailable?.some((u) => u.feature !== 'encryptedExport') || largest?.cases.some((c) => c.id === 'restic-backup')) {
    out.push(`## Backup repositories: scriptorium (plain and encrypted) and restic${largest ? ` (${count(largest.rows)} rows)` : ''}`, '');
    out.push(
      'Times and peak RSS: the main run at the largest size (a fresh repository each run; restic reads `sqlite3 .dump` on stdin, ' +
        'and restores with `restic dump latest dump.sql | sqlite3 new.db`; restic always encrypts, so it runs beside the encrypted backup). ' +
        'Bytes: the deduplication scenarios, where each repository takes the same snapshots one after another: the whole repository after the first ' +
        '(config and keys included), against `sqlite3 .dump | zstd -3` of the same database' +
        `${r.dedup?.dumpZstdBytes ? ` (${count(r.dedup.dumpZstdBytes)} bytes)` : ''}, then the bytes each later backup added (share of that repository's first snapshot).`,
      '',
    );
    out.push(repositoriesTable(largest, r.dedup, r.unavailable ?? []), '');
  }
  if (r.bigValue) {
    const b = r.bigValue;
    out.push(`## One large value (issue 13): ${mb(b.valueBytes)} MB of TEXT in one row`, '');
    out.push(
      table(
        ['command', 'seconds', 'peak RSS (MB)', 'bound (MB)', 'met'],
        [...b.runs, ...(b.blobRuns ?? [])].map((run) => [run.label, run.seconds.toFixed(1), mb(run.peakRssBytes), mb(b.boundBytes), run.peakRssBytes === null ? '?' : run.peakRssBytes <= b.boundBytes ? 'yes' : '**no**']),
        ['l', 'r', 'r', 'r', 'l'],
      ),
      '',
    );
  }
  if (r.daemon) out.push(daemonMarkdown(r.daemon));
  if (r.pgcross) out.push(pgcrossMarkdown(r.pgcross));
  const sizeHead = r.sizes.map((s) => `${count(s.rows)} rows`);
  out.push('## Scaling: wall µs per row by size', '');
  out.push('Includes process start-up (~0.1 s for Node), which dominates at small sizes; the exponent k (time ∝ rows^k) is taken between the two largest sizes.', '');
  out.push(
    table(
      ['case', ...sizeHead, 'k'],
      r.trends.map((t) => [t.label, ...t.usPerRow.map((v) => v.toFixed(v < 10 ? 2 : 1)), t.scalingExponent === null ? '' : t.scalingExponent.toFixed(2)]),
    ),
    '',
  );
  out.push('## Memory: peak RSS (MB) by size', '');
  out.push(
    table(
      ['case', ...sizeHead, 'largest / smallest'],
      r.trends.map((t) => [t.label, ...t.peakRssBytes.map(mb), t.memoryGrowth === null ? '?' : `${t.memoryGrowth.toFixed(2)}×`]),
    ),
    '',
  );
  out.push('## All measurements', '');
  const all: string[][] = [];
  for (const s of r.sizes)
    for (const c of s.cases)
      all.push([
        count(s.records),
        count(c.rows),
        c.label,
        secs(c.seconds),
        count(c.rowsPerSec),
        c.mbPerSec.toFixed(1),
        mb(c.peakRssBytes),
        c.ratio === undefined ? '' : `${c.ratio.toFixed(2)}×`,
        c.runsMs.map((v) => (v / 1000).toFixed(2)).join(', '),
      ]);
  const align = ['r', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'l'] as const;
  out.push(table(['N', 'rows', 'case', 'median s', 'rows/s', 'MB/s', 'peak RSS MB', 'vs peer', 'runs (s)'], all, [...align]), '');
  if (r.s3) out.push(s3Markdown(r.s3));
  return out.join('\n');
}
