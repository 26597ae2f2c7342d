import type { BenchReport } from './stats.js';

/** A line of points in data space. */
interface Series {
  label: string;
  dashed: boolean;
  color: string;
  points: { x: number; y: number }[];
}

const PALETTE = [
  '#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22', '#393b79', '#637939', '#843c39', '#7b4173',
];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Short SI label: 1500 → 1.5K, 2000000 → 2M. */
export function si(n: number): string {
  const u: [number, string][] = [[1e9, 'G'], [1e6, 'M'], [1e3, 'K']];
  for (const [v, s] of u) if (Math.abs(n) >= v) return `${+(n / v).toFixed(1)}${s}`;
  return `${+n.toFixed(1)}`;
}

/** Decade ticks (1, 2, 5 × 10^k) covering [lo, hi]. */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  return out;
}

function linTicks(hi: number): number[] {
  const step = 10 ** Math.floor(Math.log10(hi / 4 || 1));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => hi / s <= 6) ?? step * 10;
  const out: number[] = [];
  for (let v = 0; v <= hi * 1.0001; v += nice) out.push(v);
  return out;
}

/** One panel: log x; log or linear y. Returns SVG markup placed at (ox, oy). */
function panel(title: string, yLabel: string, series: Series[], ox: number, oy: number, w: number, h: number, logY: boolean, ref?: { y: number; label: string }): string {
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const ys = series.flatMap((s) => s.points.map((p) => p.y)).filter((y) => y > 0);
  if (!xs.length || !ys.length) return '';
  const [x0, x1] = [Math.min(...xs) / 1.3, Math.max(...xs) * 1.3];
  const top = Math.max(...ys, ref ? ref.y : 0);
  const [y0, y1] = logY ? [Math.min(...ys) / 1.5, top * 1.5] : [0, top * 1.1];
  const px = (x: number): number => ox + ((Math.log(x) - Math.log(x0)) / (Math.log(x1) - Math.log(x0))) * w;
  const py = (y: number): number =>
    oy + h - (logY ? (Math.log(Math.max(y, y0)) - Math.log(y0)) / (Math.log(y1) - Math.log(y0)) : (y - y0) / (y1 - y0)) * h;
  const parts: string[] = [];
  parts.push(`<text x="${ox + w / 2}" y="${oy - 12}" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  parts.push(`<rect x="${ox}" y="${oy}" width="${w}" height="${h}" fill="none" stroke="#444"/>`);
  for (const t of logTicks(x0, x1)) {
    const x = px(t).toFixed(1);
    parts.push(`<line x1="${x}" y1="${oy}" x2="${x}" y2="${oy + h}" stroke="#ddd"/>`);
    parts.push(`<text x="${x}" y="${oy + h + 16}" text-anchor="middle" font-size="11">${si(t)}</text>`);
  }
  for (const t of logY ? logTicks(y0, y1) : linTicks(y1)) {
    const y = py(t).toFixed(1);
    parts.push(`<line x1="${ox}" y1="${y}" x2="${ox + w}" y2="${y}" stroke="#ddd"/>`);
    parts.push(`<text x="${ox - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="11">${si(t)}</text>`);
  }
  parts.push(`<text x="${ox + w / 2}" y="${oy + h + 36}" text-anchor="middle" font-size="12">rows in database (log scale)</text>`);
  parts.push(
    `<text x="${ox - 48}" y="${oy + h / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${ox - 48} ${oy + h / 2})">${esc(yLabel)}</text>`,
  );
  if (ref) {
    const y = py(ref.y).toFixed(1);
    parts.push(`<line x1="${ox}" y1="${y}" x2="${ox + w}" y2="${y}" stroke="#c00" stroke-dasharray="2 3"/>`);
    parts.push(`<text x="${ox + w - 4}" y="${Number(y) - 4}" text-anchor="end" font-size="11" fill="#c00">${esc(ref.label)}</text>`);
  }
  for (const s of series) {
    const pts = s.points.filter((p) => p.y > 0 || !logY).map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`);
    if (!pts.length) continue;
    parts.push(
      `<polyline points="${pts.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}><title>${esc(s.label)}</title></polyline>`,
    );
    for (const p of pts) {
      const [cx, cy] = p.split(',');
      parts.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${s.color}"/>`);
    }
  }
  return parts.join('\n');
}

/**
 * Renders throughput (rows/s, log y) and peak RSS (MB, linear y) against database size (log x) as a
 * self-contained SVG. scriptorium's commands are solid lines, the sqlite3 peers dashed.
 */
export function renderChart(r: BenchReport): string {
  const W = 1000;
  const pw = 380;
  const ph = 300;
  const color = new Map(r.trends.map((t, i) => [t.id, PALETTE[i % PALETTE.length]!]));
  const make = (pick: (sizeIndex: number, id: string) => number | null): Series[] =>
    r.trends.map((t) => ({
      label: t.label,
      dashed: t.side === 'peer',
      color: color.get(t.id)!,
      points: r.sizes.flatMap((s, i) => {
        const y = pick(i, t.id);
        return y === null ? [] : [{ x: s.rows, y }];
      }),
    }));
  const find = (i: number, id: string) => r.sizes[i]!.cases.find((c) => c.id === id);
  const thr = make((i, id) => find(i, id)?.rowsPerSec ?? null);
  const mem = make((i, id) => {
    const b = find(i, id)?.peakRssBytes;
    return b === undefined || b === null ? null : b / 1e6;
  });
  const legendRows = Math.ceil(r.trends.length / 3);
  const H = 60 + ph + 60 + legendRows * 20 + 20;
  const legend = r.trends
    .map((t, i) => {
      const x = 70 + (i % 3) * 310;
      const y = 60 + ph + 70 + Math.floor(i / 3) * 20;
      const c = color.get(t.id)!;
      return `<line x1="${x}" y1="${y}" x2="${x + 30}" y2="${y}" stroke="${c}" stroke-width="2"${t.side === 'peer' ? ' stroke-dasharray="6 4"' : ''}/><text x="${x + 36}" y="${y}" dominant-baseline="middle" font-size="12">${esc(t.label)}</text>`;
    })
    .join('\n');
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<title>scriptorium benchmark ${esc(r.date)}: throughput and peak RSS against size</title>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    panel('Throughput (rows/s, log)', 'rows per second', thr, 80, 40, pw, ph, true),
    panel('Peak RSS of the process (MB)', 'peak RSS, MB', mem, 80 + pw + 110, 40, pw, ph, false, { y: 100, label: 'target: 100 MB' }),
    legend,
    `</svg>`,
    '',
  ].join('\n');
}
