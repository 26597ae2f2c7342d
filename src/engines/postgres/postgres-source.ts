import type { RowBatch, RowEncoding } from '../../core/encoding.js';
import { NotFoundError, UsageError } from '../../core/errors.js';
import type { DatabaseSchema, PostgresStatement, TableSchema } from '../../core/schema.js';
import type { DatabaseLocation, EngineSource } from '../engine.js';
import { connect, pgError } from './connect.js';
import { loadDriver, type PgClient } from './driver.js';
import { readPostgresSchema, type PostgresTable } from './postgres-schema.js';
import { CopyTextEncoder } from './copy-out.js';
import { copyOutStream } from './copy-out-stream.js';
import { sqlCopyRow } from './row-codec.js';
import { quoteIdent, qualified } from './sql-text.js';

/** Bytes after which a batch is handed out even when it has fewer rows than asked for. */
const BATCH_BYTES = 1 << 20;

/**
 * The query whose rows a table is read and compared by: its carried columns, in key order; with
 * `where` (a condition on the key, see postgres-copy-source.ts's ranges), only the rows it holds;
 * `from`: where the table is (by default its own name; a restore's staging schema, see StagingArea).
 */
export function rowsQuery(t: PostgresTable, where?: string, from = qualified(t.table.postgres!.schema, t.table.postgres!.table)): string {
  const { table } = t;
  const cols = table.columns.map((c) => quoteIdent(c.name)).join(', ');
  // Key order in the "C" collation: the same order on any server, whatever its default collation.
  const order = table.primaryKey.length > 0
    ? table.primaryKey.map((k) => {
        const i = table.columns.findIndex((c) => c.name === k);
        return `${quoteIdent(k)}${t.collatable[i] ? ' COLLATE "C"' : ''}`;
      }).join(', ')
    : 'ctid'; // no key: physical order, which is the load order of a table a COPY has just filled
  return `SELECT ${cols} FROM ONLY ${from}${where ? ` WHERE ${where}` : ''} ORDER BY ${order}`;
}

/**
 * Encodes a table's rows from `COPY (query) TO STDOUT` (text format) into `encoding`, in batches.
 * Used for export and, on a target, to read back what was loaded.
 */
export async function* copyBatches(client: PgClient, t: PostgresTable, encoding: RowEncoding, batchRows: number): AsyncGenerator<RowBatch> {
  const stream = client.query(copyOutStream(await loadDriver(), `COPY (${rowsQuery(t)}) TO STDOUT`));
  if (encoding !== 'sql') {
    // Byte ranges in, byte ranges out: no string per value (copy-out.ts).
    const keys = encoding === 'json' ? t.table.columns.map((c) => c.name) : null;
    const encoder = new CopyTextEncoder(t.kinds, { keys, separator: encoding === 'ndjson' ? '\n' : ',\n', batchRows, batchBytes: BATCH_BYTES });
    for await (const chunk of stream as AsyncIterable<Buffer>) yield* encoder.push(chunk);
    const last = encoder.finish();
    if (last) yield last;
    return;
  }
  let rest = '';
  let parts: string[] = [];
  let bytes = 0;
  const take = (): RowBatch => {
    const batch = { data: Buffer.from(parts.join(',\n')), rows: parts.length };
    parts = [];
    bytes = 0;
    return batch;
  };
  // The decoder keeps a character cut between two chunks whole.
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const text = rest + decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      const line = text.slice(start, nl);
      start = nl + 1;
      const row = sqlCopyRow(line, t.kinds);
      parts.push(row);
      bytes += row.length;
      if (parts.length >= batchRows || bytes >= BATCH_BYTES) yield take();
    }
    rest = text.slice(start);
  }
  if (rest.length > 0) throw new Error('postgres: COPY output ended inside a row');
  if (parts.length > 0) yield take();
}

/**
 * A consistent read view of a PostgreSQL database: one connection in one `REPEATABLE READ READ ONLY`
 * transaction for the source's whole life, so the schema and every table are read at the same
 * snapshot while others write. Rows come through `COPY … TO STDOUT`.
 */
export class PostgresSource implements EngineSource {
  readonly schema: DatabaseSchema;
  readonly readers = 1;
  readonly warnings: readonly string[];
  readonly #client: PgClient;
  readonly #location: DatabaseLocation;
  readonly #tables: Map<string, PostgresTable>;
  #closed = false;

  private constructor(client: PgClient, location: DatabaseLocation, schema: DatabaseSchema, tables: Map<string, PostgresTable>) {
    this.#client = client;
    this.#location = location;
    this.schema = schema;
    this.#tables = tables;
    this.warnings = (schema.postgres?.notCarried ?? []).map((n) => `not carried from ${location.display}: ${n}`);
  }

  /** Connects, begins the snapshot and reads the schema in it. */
  static async open(location: DatabaseLocation): Promise<PostgresSource> {
    const client = await connect(location);
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const { schema, tables } = await readPostgresSchema(client);
      return new PostgresSource(client, location, schema, tables);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw pgError(err, 'cannot read the schema of', location);
    }
  }

  select(include?: string[], exclude?: string[]): DatabaseSchema {
    const all = this.schema.tables.map((t) => t.name);
    const known = new Set([...all, ...(this.schema.unsupported ?? []).map((u) => u.name)]);
    for (const name of [...(include ?? []), ...(exclude ?? [])]) {
      if (!known.has(name)) {
        throw new NotFoundError(`postgres: no table ${JSON.stringify(name)} in ${this.#location.display}`, {
          hint: `Tables outside public are named schema.table. Tables: ${all.slice(0, 20).join(', ')}${all.length > 20 ? ', …' : ''}`,
        });
      }
    }
    const chosen = (name: string): boolean => (include === undefined || include.includes(name)) && !(exclude ?? []).includes(name);
    const refused = (this.schema.unsupported ?? []).find((u) => chosen(u.name));
    if (refused) throw new UsageError(`postgres: table ${JSON.stringify(refused.name)} ${refused.reason}`, { code: 'E_UNSUPPORTED', hint: refused.hint });
    const tables = this.schema.tables.filter((t) => chosen(t.name));
    const names = new Set(tables.map((t) => t.name));
    const keep = (s: PostgresStatement): boolean => s.tables.every((t) => names.has(t));
    const pg = this.schema.postgres!;
    const { unsupported: _u, ...rest } = this.schema;
    return { ...rest, tables, postgres: { before: pg.before.filter(keep), after: pg.after.filter(keep), notCarried: pg.notCarried } };
  }

  async rowCount(table: TableSchema): Promise<number> {
    const t = this.#table(table);
    const res = await this.#client.query(`SELECT count(*)::text AS n FROM ONLY ${qualified(t.table.postgres!.schema, t.table.postgres!.table)}`);
    return Number((res.rows[0] as { n: string }).n);
  }

  async *batches(table: TableSchema, encoding: RowEncoding, options: { batchRows: number }): AsyncGenerator<RowBatch> {
    try {
      yield* copyBatches(this.#client, this.#table(table), encoding, options.batchRows);
    } catch (err) {
      throw pgError(err, `reading table ${JSON.stringify(table.name)} of`, this.#location);
    }
  }

  #table(table: TableSchema): PostgresTable {
    const t = this.#tables.get(table.name);
    if (!t) throw new NotFoundError(`postgres: no table ${JSON.stringify(table.name)}`);
    return t;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // No ROLLBACK first: after a failure a COPY may still be streaming, and a query would wait behind
    // it for ever. Ending the connection ends the read-only transaction; there is nothing to undo.
    await this.#client.end().catch(() => undefined);
  }
}
