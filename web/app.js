// The dashboard page. Every value from the server goes into the DOM as text (textContent, text nodes),
// never as HTML: table names, tags, paths and error messages are data, not markup.
'use strict';

const $ = (id) => document.getElementById(id);

/** An element with properties and children; strings become text nodes. */
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'onclick') e.addEventListener('click', v);
    else if (k === 'style') e.style.cssText = v;
    else e.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const fmtTime = (iso) => (iso ? iso.replace('T', ' ').slice(0, 19) : '-');
const fmtNum = (n) => (n === undefined || n === null ? '-' : Math.round(n).toLocaleString('en-US'));
const fmtSec = (ms) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`);
const fmtBytes = (n) => {
  if (n === undefined) return '-';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${u[i]}`;
};

const tokenInput = $('token');
tokenInput.value = sessionStorage.getItem('scriptorium-token') || '';
tokenInput.addEventListener('change', () => sessionStorage.setItem('scriptorium-token', tokenInput.value));
const authHeaders = () => (tokenInput.value ? { Authorization: `Bearer ${tokenInput.value}` } : {});

async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...authHeaders(), ...(init.headers || {}) } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok && res.status !== 202) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

let jobs = [];
let operations = [];
let backups = [];
const charts = {};

function renderJobs() {
  const tbody = $('jobs').tBodies[0];
  tbody.replaceChildren(...jobs.map((j) => el('tr', { 'data-job': j.name },
    el('td', {}, j.name), el('td', {}, j.schedule), el('td', { class: j.state === 'running' ? 'running' : '' }, j.state),
    el('td', {}, fmtTime(j.lastRun && j.lastRun.at)),
    el('td', { class: j.lastRun ? j.lastRun.status : '' }, j.lastRun ? `${j.lastRun.status}${j.lastRun.error ? ` ${j.lastRun.error.code}: ${j.lastRun.error.message}` : ''}` : '-'),
    el('td', {}, j.due ? 'due now' : fmtTime(j.next)),
    el('td', {}, el('button', { onclick: () => act(j.name, 'run') }, 'Run now'), el('button', { onclick: () => act(j.name, 'verify') }, 'Verify now')),
  )));
  for (const id of ['chart-job', 'snap-job']) {
    const sel = $(id);
    const current = sel.value;
    sel.replaceChildren(...jobs.map((j) => el('option', { value: j.name }, j.name)));
    if (current && jobs.some((j) => j.name === current)) sel.value = current;
  }
}

async function act(job, what) {
  try {
    const r = await api(`/api/jobs/${encodeURIComponent(job)}/${what}`, { method: 'POST' });
    $('action-result').textContent = `${what} of ${job}: accepted${r.run ? ` (run ${r.run.slice(0, 8)})` : ''}`;
  } catch (err) {
    $('action-result').textContent = `${what} of ${job}: ${err.message}`;
  }
}

const live = new Map();
function renderLive() {
  const box = $('live');
  if (live.size === 0) return box.replaceChildren(el('p', { class: 'muted' }, 'nothing is running'));
  box.replaceChildren(...[...live.values()].map((op) => {
    const s = op.started;
    const p = op.progress;
    const pct = p && p.rowsTotal ? Math.min(100, (100 * p.rowsDone) / p.rowsTotal) : 0;
    return el('div', { class: 'op', 'data-op': s.id },
      el('div', {}, `${s.kind}${s.job ? ` of job ${s.job}` : ''} (pid ${op.pid}): `, el('span', { class: 'rows' }, p ? fmtNum(p.rowsDone) : '0'),
        p && p.rowsTotal ? ` of ${fmtNum(p.rowsTotal)} rows` : ' rows',
        p ? `, ${fmtNum(p.rowsPerSecond)} rows/s` : '', p && p.etaSeconds !== undefined ? `, ETA ${Math.ceil(p.etaSeconds)} s` : '',
        p && p.table ? ', table ' : '', p && p.table ? el('span', { class: 'table-name' }, p.table) : ''),
      el('div', { class: 'bar' }, el('div', { style: `width:${pct.toFixed(1)}%` })));
  }));
}

function renderHistory() {
  const rows = operations.slice(-100).reverse();
  $('history').tBodies[0].replaceChildren(...rows.map((r) => el('tr', {},
    el('td', {}, fmtTime(r.endedAt)), el('td', {}, r.job || '-'), el('td', {}, r.kind),
    el('td', { class: r.ok ? 'ok' : 'failed' }, r.ok ? 'ok' : `${r.error ? r.error.code : 'failed'}`),
    el('td', { class: 'num' }, fmtSec(r.durationMs)), el('td', { class: 'num' }, fmtNum(r.rows)), el('td', { class: 'num' }, fmtNum(r.rowsPerSecond)),
    el('td', { class: 'num' }, (r.peakRssBytes / 1048576).toFixed(1)), el('td', {}, targetText(r)))));
}

function targetsOf(jobName) {
  const j = jobs.find((x) => x.name === jobName);
  return (j && j.targets) || {};
}

function targetText(r) {
  if (r.kind !== 'backup' || !r.ok || !r.job) return '';
  const t = targetsOf(r.job);
  const missed = [];
  if (t.maxDurationMs !== undefined && r.durationMs > t.maxDurationMs) missed.push('duration');
  if (t.maxMemoryMB !== undefined && r.peakRssBytes / 1048576 > t.maxMemoryMB) missed.push('memory');
  if (t.minRowsPerSecond !== undefined && r.rows > 0 && r.rowsPerSecond < t.minRowsPerSecond) missed.push('throughput');
  return missed.length ? `missed: ${missed.join(', ')}` : 'met';
}

function chart(id, label, xs, ys, target) {
  const box = $(id);
  const width = Math.max(300, box.clientWidth || 420);
  const data = [xs, ys, xs.map(() => (target === undefined ? null : target))];
  const opts = {
    width, height: 200,
    series: [{}, { label, stroke: '#2f6fed', width: 2, points: { show: true } }, { label: 'target', stroke: '#b42318', dash: [6, 4], width: 1, points: { show: false } }],
    axes: [{}, { size: 60 }],
    legend: { show: true },
  };
  if (charts[id]) charts[id].destroy();
  box.replaceChildren();
  charts[id] = new uPlot(opts, data, box);
  box.setAttribute('data-points', String(xs.length));
}

function renderCharts() {
  if (typeof uPlot === 'undefined') return;
  const job = $('chart-job').value;
  const rows = backups.filter((r) => r.ok && (!job || r.job === job));
  const xs = rows.map((r) => Date.parse(r.endedAt) / 1000);
  const t = targetsOf(job);
  chart('chart-duration', 'duration s', xs, rows.map((r) => r.durationMs / 1000), t.maxDurationMs === undefined ? undefined : t.maxDurationMs / 1000);
  chart('chart-throughput', 'rows/s', xs, rows.map((r) => r.rowsPerSecond), t.minRowsPerSecond);
  chart('chart-size', 'MiB read', xs, rows.map((r) => Math.max(r.bytesIn, r.bytesOut) / 1048576), undefined);
  chart('chart-memory', 'peak MiB', xs, rows.map((r) => r.peakRssBytes / 1048576), t.maxMemoryMB);
}

async function renderSnapshots() {
  const job = $('snap-job').value;
  if (!job) return;
  try {
    const { snapshots } = await api(`/api/jobs/${encodeURIComponent(job)}/snapshots`);
    $('snapshots').tBodies[0].replaceChildren(...snapshots.slice().reverse().map((s) => el('tr', { class: 'clickable', onclick: () => showSnapshot(job, s.id) },
      el('td', {}, s.id.slice(0, 8)), el('td', {}, fmtTime(s.time)), el('td', {}, s.tags.join(', ')), el('td', { class: 'num' }, s.tables),
      el('td', { class: 'num' }, fmtNum(s.rows)), el('td', { class: 'num' }, fmtBytes(s.bytes)), el('td', { class: 'num' }, fmtBytes(s.storedBytes)))));
  } catch (err) {
    $('snapshots').tBodies[0].replaceChildren(el('tr', {}, el('td', { colspan: 7 }, `cannot list: ${err.message}`)));
  }
}

async function showSnapshot(job, id) {
  const s = await api(`/api/jobs/${encodeURIComponent(job)}/snapshots/${id}`);
  $('snapshot-detail').replaceChildren(el('h3', {}, `snapshot ${s.id.slice(0, 8)} of ${s.source}`),
    el('table', { id: 'snapshot-tables' }, el('thead', {}, el('tr', {}, el('th', {}, 'table'), el('th', {}, 'rows'), el('th', {}, 'size'), el('th', {}, 'chunks'))),
      el('tbody', {}, ...s.tables.map((t) => el('tr', {}, el('td', { class: 'table-name' }, t.name), el('td', { class: 'num' }, fmtNum(t.rows)), el('td', { class: 'num' }, fmtBytes(t.bytes)), el('td', { class: 'num' }, t.chunks))))));
}

async function renderAlerts() {
  const { events } = await api('/api/alerts');
  const misses = operations.filter((r) => targetText(r).startsWith('missed')).map((r) => ({ at: r.endedAt, job: r.job, what: 'target', state: 'missed', message: `${r.kind} ${targetText(r)}` }));
  const rows = [
    ...events.map((e) => ({ at: e.at, job: e.job || '-', what: e.t === 'alert' ? e.condition : e.t === 'skip' ? `skipped (${e.reason})` : `delivery ${e.channel}`, state: e.t === 'alert' ? e.state : e.t === 'delivery' ? 'failed' : '', message: e.message || e.error || (e.slot ? `slot ${fmtTime(e.slot)}` : '') })),
    ...misses,
  ].sort((a, b) => (a.at < b.at ? 1 : -1)).slice(0, 200);
  $('alerts').tBodies[0].replaceChildren(...rows.map((r) => el('tr', {}, el('td', {}, fmtTime(r.at)), el('td', {}, r.job), el('td', {}, r.what), el('td', { class: r.state }, r.state), el('td', {}, r.message))));
}

async function refresh() {
  try {
    // Recent operations for the history and the misses, and the backups of the charts: small answers, however long the history.
    const [j, o, b] = await Promise.all([api('/api/jobs'), api('/api/operations?limit=200'), api('/api/operations?limit=500&kind=backup')]);
    jobs = j.jobs;
    operations = o.operations;
    backups = b.operations;
    renderJobs();
    renderHistory();
    renderCharts();
    await Promise.all([renderSnapshots(), renderAlerts()]);
  } catch (err) {
    $('status').textContent = `error: ${err.message}`;
  }
}

let refreshTimer;
const refreshSoon = () => { clearTimeout(refreshTimer); refreshTimer = setTimeout(refresh, 300); };

/** Server-sent events read with fetch (so the token can go in a header, as EventSource cannot send one). */
async function events() {
  for (;;) {
    try {
      const res = await fetch('/api/events', { headers: authHeaders() });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      $('status').textContent = 'live';
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          onEvent(event, data ? JSON.parse(data) : {});
        }
      }
    } catch (err) {
      $('status').textContent = `reconnecting (${err.message})`;
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function onEvent(event, data) {
  if (event === 'hello') {
    live.clear();
    for (const op of data.live) live.set(op.started.id, op);
    renderLive();
  } else if (event === 'progress') {
    if (!live.has(data.started.id)) refreshSoon(); // a run began: its job's state changed
    live.set(data.started.id, data);
    renderLive();
  } else if (event === 'ended') {
    live.delete(data.id);
    renderLive();
    refreshSoon();
  } else if (event === 'record') {
    refreshSoon();
  }
}

$('chart-job').addEventListener('change', renderCharts);
$('snap-job').addEventListener('change', renderSnapshots);
window.addEventListener('load', () => {
  refresh();
  events();
  setInterval(refresh, 30000);
});
