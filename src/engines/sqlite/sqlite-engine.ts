import type { DatabaseLocation, Engine, EngineSource } from '../engine.js';
import { selectTables } from './sqlite-schema.js';
import { SqliteSource } from './sqlite-source.js';

/**
 * SQLite behind the engine seam. The source is {@link SqliteSource} itself (its batches come from the
 * extension exactly as before); the import target stays src/import.ts's own SQLite path (a new file
 * built beside the target and renamed into place), so there is no `openTarget` here yet.
 */
export const sqliteEngine: Engine = {
  name: 'sqlite',
  capabilities: { fileLocation: true, transactionalDdl: true, nativeRowEncoding: true, namedSchemas: false },
  async openSource(location: DatabaseLocation): Promise<EngineSource> {
    const src = SqliteSource.open(location.raw, { readers: 'auto' });
    return {
      schema: src.schema,
      get readers() {
        return src.readers;
      },
      warnings: [],
      select: (include, exclude) => selectTables(src.schema, include, exclude),
      rowCount: (table) => src.rowCount(table),
      batches: (table, encoding, options) => src.batches(table, encoding, options),
      close: () => src.close(),
    };
  },
};
