import { describe, expect, it } from 'vitest';
import { PG_SKIP, freshDatabase, textRows } from './pg-helpers.js';

describe.skipIf(PG_SKIP)('PostgreSQL test harness', () => {
  it('runs a real server on loopback with fsync off, one database per test', async () => {
    const url = await freshDatabase();
    const [[version, fsync, addr]] = (await textRows(url, "SELECT current_setting('server_version_num'), current_setting('fsync'), inet_server_addr()::text")) as string[][];
    expect(Number(version)).toBeGreaterThanOrEqual(140000);
    expect(fsync).toBe('off');
    expect(addr).toBe('127.0.0.1/32');
  });
});
