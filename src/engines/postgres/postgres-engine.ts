import type { Engine } from '../engine.js';
import { PostgresSource } from './postgres-source.js';
import { PostgresTarget } from './postgres-target.js';

/**
 * PostgreSQL behind the engine seam: a snapshot source and a transactional target, both speaking the
 * wire protocol (no pg_dump binary, no server-version lock). The driver is loaded on first use.
 */
export const postgresEngine: Engine = {
  name: 'postgres',
  capabilities: { fileLocation: false, transactionalDdl: true, nativeRowEncoding: false, namedSchemas: true },
  openSource: (location) => PostgresSource.open(location),
  openTarget: (location, options) => PostgresTarget.open(location, options),
};
