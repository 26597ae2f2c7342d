/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core loads the page served by
 * `scriptorium serve --jobs` (a real process), presses "Run now", watches the backup's progress advance,
 * sees it complete in the history and the chart, and checks that a table named
 * `<img src=x onerror=alert(1)>` is shown as text (no element, no dialog).
 *
 * With SCRIPTORIUM_SCREENSHOTS=<folder> it also saves screenshots of the main views there (the README's
 * come from `SCRIPTORIUM_SCREENSHOTS=docs/screenshots npx vitest run test/dashboard/browser.test.ts`).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, makeDb, needDist, ROOT, startWith, until, workDir, writeConfig, type Running } from '../daemon/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
/** The flags DEPENDENCIES.md found to work headless on this kind of machine. */
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const EVIL = '<img src=x onerror=alert(1)>';
const TOKEN = 'test-token-0123456789abcdef';

describe('dashboard in Chromium', () => {
  let browser: Browser | undefined;
  let serve: Running | undefined;
  let cleanup: (() => void) | undefined;
  let url = '';
  const shots = process.env.SCRIPTORIUM_SCREENSHOTS ? resolve(ROOT, process.env.SCRIPTORIUM_SCREENSHOTS) : undefined;

  beforeAll(async () => {
    needDist();
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
    const w = workDir();
    cleanup = w.cleanup;
    makeDb(join(w.dir, 'guests.db'), 600_000, 100, EVIL);
    makeDb(join(w.dir, 'small.db'), 2000, 50, 'registrations');
    expect(cli(w.dir, 'init', 'repo', '-q').status).toBe(0);
    // A few earlier runs for the history and the charts.
    writeConfig(w.dir, {
      jobs: {
        guests: { source: 'guests.db', repository: './repo', schedule: '0 0 1 1 *', timezone: 'UTC', tags: ['nightly'] },
        small: { source: 'small.db', repository: './repo', schedule: '0 0 1 1 *' },
      },
    });
    for (let i = 0; i < 3; i++) expect(cli(w.dir, 'run', 'small').status).toBe(0);
    serve = startWith(w.dir, { SCRIPTORIUM_TOKEN: TOKEN, XDG_CONFIG_HOME: join(w.dir, 'xdg') }, 'serve', '--port', '0', '--jobs');
    url = await until('the dashboard to listen', () => /dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(serve!.output())?.[1], 30_000);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    serve?.proc.kill('SIGTERM');
    await serve?.exited;
    cleanup?.();
  });

  it('shows a backup started with Run now advancing live, then in the history and the chart, with a hostile table name as text', async () => {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 1400 } });
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.locator('#jobs tr[data-job="guests"]').waitFor();
    expect(await page.locator('#status').textContent()).toBe('live');
    // Without the token the button is refused; with it the run is accepted.
    await page.locator('#jobs tr[data-job="guests"] button', { hasText: 'Run now' }).click();
    await expect.poll(() => page.locator('#action-result').textContent()).toMatch(/run of guests: a token is needed/);
    await page.fill('#token', TOKEN);
    await page.locator('#jobs tr[data-job="guests"] button', { hasText: 'Run now' }).click();
    await expect.poll(() => page.locator('#action-result').textContent()).toMatch(/run of guests: accepted \(run [0-9a-f]{8}\)/);

    // Live progress advances.
    const rows = page.locator('#live .op .rows');
    await rows.first().waitFor({ timeout: 30_000 });
    const seen = new Set<number>();
    const end = Date.now() + 30_000;
    while (Date.now() < end && seen.size < 2) {
      const text = await rows.first().textContent().catch(() => null);
      if (text) seen.add(Number(text.replace(/,/g, '')));
      await page.waitForTimeout(100);
    }
    expect(seen.size).toBeGreaterThanOrEqual(2);
    const name = page.locator('#live .table-name');
    if (await name.count()) {
      expect(await name.first().textContent()).toBe(EVIL);
      expect(await page.locator('#live img').count()).toBe(0);
    }
    if (shots) {
      mkdirSync(shots, { recursive: true });
      await page.screenshot({ path: join(shots, 'dashboard-live.png'), fullPage: false });
    }

    // Completed: in the history, and a point in the chart for the guests job.
    await page.locator('#history tbody tr', { hasText: 'guests' }).first().waitFor({ timeout: 60_000 });
    const first = page.locator('#history tbody tr', { hasText: 'guests' }).first();
    await expect.poll(async () => first.locator('td').nth(3).textContent(), { timeout: 30_000 }).toBe('ok');
    // The verify after the backup runs too; then nothing is left running.
    await expect.poll(() => page.locator('#live .op').count(), { timeout: 60_000 }).toBe(0);
    await page.selectOption('#chart-job', 'guests');
    await expect.poll(() => page.locator('#chart-duration').getAttribute('data-points')).toBe('1');
    await page.selectOption('#chart-job', 'small');
    await expect.poll(() => page.locator('#chart-duration').getAttribute('data-points')).toBe('3');
    expect(await page.locator('#chart-duration canvas').count()).toBeGreaterThan(0);
    if (shots) await page.screenshot({ path: join(shots, 'dashboard-overview.png'), fullPage: true });

    // The snapshot's tables: the hostile name is text.
    await page.selectOption('#snap-job', 'guests');
    const snapRow = page.locator('#snapshots tbody tr', { hasText: 'job=guests' }).first();
    await snapRow.waitFor({ timeout: 30_000 });
    await snapRow.click();
    const table = page.locator('#snapshot-tables .table-name');
    await table.first().waitFor();
    expect(await table.first().textContent()).toBe(EVIL);
    expect(await page.locator('img').count()).toBe(0);
    if (shots) await page.locator('#snapshots-view').screenshot({ path: join(shots, 'dashboard-snapshots.png') });
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('answers another Host with 421 and sets the CSP', async () => {
    // fetch() will not send a Host of our choosing; http.request does, as a rebinding page's browser would.
    const status = await new Promise<number>((resolveStatus, reject) => {
      const u = new URL(url);
      const req = request({ host: u.hostname, port: u.port, path: '/api/jobs', headers: { Host: `rebind.example:${u.port}` } }, (res) => {
        res.resume();
        resolveStatus(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(421);
    const ok = await fetch(url);
    expect(ok.headers.get('content-security-policy')).toBe("default-src 'self'; frame-ancestors 'none'");
  });
});
