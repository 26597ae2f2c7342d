/**
 * The source of a PostgreSQL backup: one `REPEATABLE READ READ ONLY` snapshot, shared by `jobs`
 * connections through `pg_export_snapshot()` / `SET TRANSACTION SNAPSHOT`, whose tables are read
 * as PostgreSQL's own `COPY (SELECT … ORDER BY key) TO STDOUT` text stream: the bytes stored in the
 * repository are the server's, with no per-value work in JavaScript. While the backup takes one
 * table's stream, the other connections already run the next tables' queries (the sort by key
 * happens on the server before the first row), so the server's work overlaps the chunking.
 *
 * A large table with a one-column primary key is read in key ranges (one query each, `WHERE key >=
 * lo AND key < hi ORDER BY key`), taken by the connections like tables, so that one huge table does
 * not wait on one connection: each range's scan or sort starts on its own connection while the one
 * before streams. The ranges are read back to back in key order, so the stream is byte for byte that
 * of the whole table: the same chunks, the same table digest, and nothing for restore or verify to
 * know about. Their bounds come from the key's histogram in `pg_stats` (no read of the table), or,
 * for a table never analyzed, from a `TABLESAMPLE SYSTEM` of about 2,000 rows' worth of its pages.
 */
import { NotFoundError, ScriptoriumError, UsageError } from '../../core/errors.js';
import type { DatabaseSchema, PostgresStatement, TableSchema } from '../../core/schema.js';
import type { DatabaseLocation } from '../engine.js';
import { connect, pgError } from './connect.js';
import { copyOutStream } from './copy-out-stream.js';
import { loadDriver, type PgClient } from './driver.js';
import { readPostgresSchema, type PostgresTable } from './postgres-schema.js';
import { rowsQuery } from './postgres-source.js';
import { quoteIdent, qualified } from './sql-text.js';

/** The manifest's name for the row encoding: PostgreSQL's COPY text format, one row a line. */
export const PG_COPY_TEXT = 'pg-copy-text';

/** Options for {@link PostgresCopySource.open}. */
export interface CopySourceOptions {
  /** Connections that read tables at once (1 to 8; default 1). */
  jobs?: number;
  /** Back up only these tables (default: all). */
  include?: string[];
  /** Leave these tables out. */
  exclude?: string[];
  /** With several jobs, a table of at least this many rows (the server's estimate) is read in key ranges (default {@link SPLIT_ROWS}). */
  splitRows?: number;
}

/** Rows (the server's estimate) from which a table is read in key ranges when there are several jobs. */
export const SPLIT_ROWS = 100_000;

/** One query of the read: a table, or a key range of one (its condition). */
interface Task {
  table: string;
  where?: string;
}

interface Reader {
  client: PgClient;
  /** The COPY this connection has started, not yet taken by {@link PostgresCopySource.rows}. */
  task?: Task;
  stream?: NodeJS.ReadableStream & { destroy(err?: Error): void };
}

/**
 * A consistent view of a PostgreSQL database whose tables are read as COPY text. Call
 * {@link plan} with the tables in the order they will be read, then {@link rows} for each in that
 * order; {@link close} once, also after a failure.
 */
export class PostgresCopySource {
  readonly schema: DatabaseSchema;
  readonly location: DatabaseLocation;
  /** Things the source has that are not carried (each said once, as a notice). */
  readonly warnings: readonly string[];
  readonly #readers: Reader[];
  readonly #tables: Map<string, PostgresTable>;
  readonly #estimates: Map<string, number>;
  /** The key ranges' conditions of each table read in ranges, in key order. */
  readonly #ranges: Map<string, string[]>;
  #order: Task[] = [];
  #next = 0;
  #closed = false;

  private constructor(location: DatabaseLocation, readers: Reader[], schema: DatabaseSchema, tables: Map<string, PostgresTable>, estimates: Map<string, number>, ranges: Map<string, string[]>) {
    this.location = location;
    this.#ranges = ranges;
    this.#readers = readers;
    this.schema = schema;
    this.#tables = tables;
    this.#estimates = estimates;
    this.warnings = (schema.postgres?.notCarried ?? []).map((n) => `not carried from ${location.display}: ${n}`);
  }

  /** Connects, begins the snapshot, reads the schema in it, locks the selected tables and opens the other connections. */
  static async open(location: DatabaseLocation, options: CopySourceOptions = {}): Promise<PostgresCopySource> {
    const jobs = Math.max(1, Math.min(8, Math.floor(options.jobs ?? 1)));
    const first = await connect(location);
    const readers: Reader[] = [{ client: first }];
    try {
      await first.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const read = await readPostgresSchema(first);
      const schema = selectSchema(read.schema, options.include, location, options.exclude);
      const oids = schema.tables.map((t) => read.tables.get(t.name)!.oid);
      // As pg_dump: a table cannot be dropped or altered while it is read (ACCESS SHARE allows every write).
      for (const t of schema.tables) await first.query(`LOCK TABLE ${qualified(t.postgres!.schema, t.postgres!.table)} IN ACCESS SHARE MODE`);
      const estimates = new Map<string, number>();
      if (oids.length > 0) {
        const res = await first.query('SELECT oid::int AS oid, greatest(reltuples, 0)::float8 AS n FROM pg_catalog.pg_class WHERE oid = ANY($1)', [oids]);
        const byOid = new Map((res.rows as Array<{ oid: number; n: number }>).map((r) => [r.oid, r.n]));
        for (const t of schema.tables) estimates.set(t.name, Math.round(byOid.get(read.tables.get(t.name)!.oid) ?? 0));
      }
      const ranges = new Map<string, string[]>();
      if (jobs > 1) {
        const splitRows = Math.max(1, options.splitRows ?? SPLIT_ROWS);
        for (const t of schema.tables) {
          const pt = read.tables.get(t.name)!;
          if ((estimates.get(t.name) ?? 0) < splitRows || t.primaryKey.length !== 1) continue;
          const where = await keyRanges(first, pt, jobs, estimates.get(t.name) ?? 0);
          if (where.length > 1) ranges.set(t.name, where);
        }
      }
      if (jobs > 1 && (schema.tables.length > 1 || ranges.size > 0)) {
        const snapshot = String(((await first.query('SELECT pg_catalog.pg_export_snapshot() AS s')).rows[0] as { s: string }).s);
        const queries = schema.tables.reduce((n, t) => n + (ranges.get(t.name)?.length ?? 1), 0);
        for (let i = 1; i < Math.min(jobs, queries); i++) {
          const client = await connect(location);
          readers.push({ client });
          await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
          await client.query(`SET TRANSACTION SNAPSHOT '${snapshot.replace(/'/g, "''")}'`);
        }
      }
      return new PostgresCopySource(location, readers, readers.length > 1 ? { ...schema, tables: readOrder(schema.tables, estimates) } : schema, read.tables, estimates, ranges);
    } catch (err) {
      await Promise.all(readers.map((r) => r.client.end().catch(() => undefined)));
      throw pgError(err, 'cannot open a snapshot of', location);
    }
  }

  /** Connections that read tables. */
  get jobs(): number {
    return this.#readers.length;
  }

  /** The server's estimate of a table's rows (for progress only). */
  rowEstimate(table: TableSchema): number {
    return this.#estimates.get(table.name) ?? 0;
  }

  /** The leading values of each row that identify it (the primary key's, when it leads the columns). */
  table(name: string): PostgresTable {
    const t = this.#tables.get(name);
    if (!t) throw new NotFoundError(`postgres: no table ${JSON.stringify(name)}`);
    return t;
  }

  /** How many key ranges `table` is read in (1: whole). */
  rangeCount(table: TableSchema): number {
    return this.#ranges.get(table.name)?.length ?? 1;
  }

  /** Says in which order {@link rows} will be asked for, so that the other connections can start ahead. */
  plan(tables: TableSchema[]): void {
    this.#order = tables.flatMap((t) => this.#tasks(t.name));
    this.#next = 0;
  }

  #tasks(name: string): Task[] {
    const where = this.#ranges.get(name);
    return where ? where.map((w) => ({ table: name, where: w })) : [{ table: name }];
  }

  /**
   * The COPY text of `table`'s rows in key order (`COPY (SELECT carried columns … ORDER BY key) TO
   * STDOUT`), in pieces of any size. Read each table to its end before the next.
   */
  async *rows(table: TableSchema): AsyncGenerator<Buffer> {
    for (const task of this.#tasks(table.name)) {
      await this.#fill();
      // A planned task is the same object as this one only when planned: match by table and range.
      let reader = this.#readers.find((r) => r.task?.table === task.table && r.task.where === task.where);
      if (!reader) {
        // Not planned (or planned later): on the first idle connection, now.
        reader = this.#readers.find((r) => r.task === undefined);
        if (!reader) throw new ScriptoriumError('E_INTERNAL', `postgres: table ${JSON.stringify(table.name)} asked for while every connection is busy`);
        await this.#start(reader, task);
      }
      const stream = reader.stream!;
      try {
        for await (const piece of stream as AsyncIterable<Buffer>) yield piece;
      } catch (err) {
        throw pgError(err, `reading table ${JSON.stringify(table.name)} of`, this.location);
      } finally {
        reader.task = undefined;
        reader.stream = undefined;
      }
    }
    await this.#fill();
  }

  /** Starts the next planned queries on idle connections. */
  async #fill(): Promise<void> {
    while (this.#next < this.#order.length) {
      const idle = this.#readers.find((r) => r.task === undefined);
      if (!idle) return;
      await this.#start(idle, this.#order[this.#next++]!);
    }
  }

  async #start(reader: Reader, task: Task): Promise<void> {
    const driver = await loadDriver();
    const t = this.table(task.table);
    reader.task = task;
    reader.stream = reader.client.query(copyOutStream(driver, `COPY (${rowsQuery(t, task.where)}) TO STDOUT`));
    // An error before the stream is taken must not go unhandled; the iterator rethrows it.
    (reader.stream as unknown as NodeJS.EventEmitter).on('error', () => undefined);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // No ROLLBACK: a COPY may still stream after a failure, and a query would wait behind it. Ending
    // the connection ends the read-only transaction; there is nothing to undo.
    for (const r of this.#readers) r.stream?.destroy();
    await Promise.all(this.#readers.map((r) => r.client.end().catch(() => undefined)));
  }
}

/**
 * The conditions of up to `pieces` key ranges of `t` (its one-column primary key), in key order, that
 * together hold every row once: `key < b1`, `key >= b1 AND key < b2`, …, `key >= bn`, compared as
 * {@link rowsQuery} orders (text in "C"). The bounds are values of the key's histogram in pg_stats,
 * or of a small sample when the table has no statistics; fewer than two ranges when neither has any.
 * Only the bounds' spacing depends on them: any bounds give the same rows in the same order.
 */
async function keyRanges(client: PgClient, t: PostgresTable, pieces: number, estimate: number): Promise<string[]> {
  const key = t.table.primaryKey[0]!;
  const i = t.table.columns.findIndex((c) => c.name === key);
  if (i < 0) return [];
  const { schema, table } = t.table.postgres!;
  const type = ((await client.query('SELECT pg_catalog.format_type(atttypid, atttypmod) AS type FROM pg_catalog.pg_attribute WHERE attrelid = $1 AND attname = $2', [t.oid, key])).rows[0] as { type: string } | undefined)?.type;
  if (!type) return [];
  const collate = t.collatable[i] ? ' COLLATE "C"' : '';
  // The histogram's values in the key's own type, distinct and in the read order, as SQL literals.
  let res = await client.query(
    `SELECT pg_catalog.quote_literal(v) AS lit FROM (SELECT DISTINCT b::${type} AS v FROM pg_catalog.pg_stats s, unnest(s.histogram_bounds::text::text[]) AS b
      WHERE s.schemaname = $1 AND s.tablename = $2 AND s.attname = $3 AND NOT s.inherited) x ORDER BY v${collate}`,
    [schema, table, key],
  );
  if (res.rows.length < 2) {
    // Never analyzed: about 2,000 keys from whole pages picked at random (no full read of the table).
    const percent = Math.min(100, Math.max(0.01, (2000 * 100) / Math.max(1, estimate)));
    res = await client.query(`SELECT DISTINCT pg_catalog.quote_literal(${quoteIdent(key)}) AS lit, ${quoteIdent(key)}${collate} AS v FROM ONLY ${qualified(schema, table)} TABLESAMPLE SYSTEM (${percent}) ORDER BY 2`);
  }
  const values = (res.rows as Array<{ lit: string }>).map((r) => `${r.lit}::${type}`);
  const bounds: string[] = [];
  for (let k = 1; k < pieces; k++) {
    const b = values[Math.floor((k * values.length) / pieces)];
    if (b !== undefined && b !== bounds[bounds.length - 1]) bounds.push(b);
  }
  if (bounds.length === 0) return [];
  const col = `${quoteIdent(key)}${collate}`;
  return [`${col} < ${bounds[0]}`, ...bounds.slice(1).map((b, k) => `${col} >= ${bounds[k]} AND ${col} < ${b}`), `${col} >= ${bounds[bounds.length - 1]}`];
}

/**
 * The order tables are read in with several connections: largest first, except that the largest goes
 * second, so that its sort by key (the server's longest wait before a first row) runs on one
 * connection while the backup takes the second largest from another.
 */
function readOrder(tables: TableSchema[], estimates: Map<string, number>): TableSchema[] {
  const sorted = [...tables].sort((a, b) => (estimates.get(b.name) ?? 0) - (estimates.get(a.name) ?? 0));
  if (sorted.length > 1) [sorted[0], sorted[1]] = [sorted[1]!, sorted[0]!];
  return sorted;
}

/**
 * The schema narrowed to `include` (all when undefined): its tables, and of the statements before and
 * after them those that concern only selected tables, but for those in `exclude`. Throws E_NOT_FOUND
 * for an unknown name and E_UNSUPPORTED for a selected table that is not carried (inherited, foreign).
 */
export function selectSchema(schema: DatabaseSchema, include: string[] | undefined, location: DatabaseLocation, exclude: string[] = []): DatabaseSchema {
  const all = schema.tables.map((t) => t.name);
  const known = new Set([...all, ...(schema.unsupported ?? []).map((u) => u.name)]);
  for (const name of [...(include ?? []), ...exclude]) {
    if (!known.has(name)) {
      throw new NotFoundError(`postgres: no table ${JSON.stringify(name)} in ${location.display}`, {
        hint: `Tables outside public are named schema.table. Tables: ${all.slice(0, 20).join(', ')}${all.length > 20 ? ', …' : ''}`,
      });
    }
  }
  const chosen = (name: string): boolean => (include === undefined || include.length === 0 || include.includes(name)) && !exclude.includes(name);
  const refused = (schema.unsupported ?? []).find((u) => chosen(u.name));
  if (refused) throw new UsageError(`postgres: table ${JSON.stringify(refused.name)} ${refused.reason}`, { code: 'E_UNSUPPORTED', hint: refused.hint });
  const tables = schema.tables.filter((t) => chosen(t.name));
  const names = new Set(tables.map((t) => t.name));
  const keep = (s: PostgresStatement): boolean => s.tables.every((t) => names.has(t));
  const pg = schema.postgres!;
  const { unsupported: _u, ...rest } = schema;
  return { ...rest, tables, postgres: { before: pg.before.filter(keep), after: pg.after.filter(keep), notCarried: pg.notCarried } };
}
