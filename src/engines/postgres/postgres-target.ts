import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { DigestBuilder, type RowBatch, type TableDigest } from '../../core/encoding.js';
import { IntegrityError, ScriptoriumError } from '../../core/errors.js';
import { GarbageGate } from '../../core/memory.js';
import type { DatabaseSchema, PostgresStatement, TableSchema } from '../../core/schema.js';
import { rowColumns } from '../../core/schema.js';
import type { DatabaseLocation, EngineTarget, LossyValues, TargetOptions } from '../engine.js';
import { afterStatements } from './after-statements.js';
import { connect, pgError } from './connect.js';
import { loadDriver, type PgClient } from './driver.js';
import { tableName, type PostgresTable } from './postgres-schema.js';
import { copyBatches } from './postgres-source.js';
import { CopyRowEncoder, describeLossy, SqlTupleEncoder, type ColumnClass } from './copy-in.js';
import { kindOfType } from './row-codec.js';
import { statementProblem } from './statement-guard.js';
import { qualified, quoteIdent } from './sql-text.js';
import { sqliteColumnType } from './type-map.js';

const NDJSON_SEPARATOR = Buffer.from('\n');
const JSON_SEPARATOR = Buffer.from(',\n');

/** How a created column of base type `oid` loads (a SQLite export's NUMERIC column takes numbers only). */
function columnClass(oid: number, fromSqlite: boolean): ColumnClass {
  if (oid === 1700 && fromSqlite) return 'numeric';
  return kindOfType(oid);
}

/** One table being loaded: its COPY stream and the two digests that grow with it. */
interface Loading {
  pg: PostgresTable;
  /** The names a file's row carries, in order. */
  columns: string[];
  stream: NodeJS.WritableStream & { destroy(err?: Error): void };
  /** Over each row's bytes as the file has them (compared with the file's digest). */
  file: Hash;
  /** Over the rows as the values sent should read back (compared with the loaded table). */
  sent: Hash;
  rows: number;
  /** Turns the file's rows into COPY text, noting values that cannot be carried exactly. */
  encoder: CopyRowEncoder;
  /** For a sql script's rows: their tuples into COPY text. */
  tuples: SqlTupleEncoder;
  finished: Promise<unknown>;
  /** The COPY has ended and the server has taken every row. */
  ended: boolean;
}

/**
 * Loads one export into a PostgreSQL database inside one transaction: tables with `COPY … FROM STDIN`,
 * then constraints, indexes, foreign keys, views, sequence values and comments. Nothing is visible to
 * others before {@link commit}, and {@link abort} (after any failure) leaves the database as it was:
 * PostgreSQL's DDL is transactional.
 */
export class PostgresTarget implements EngineTarget {
  readonly location: DatabaseLocation;
  readonly #client: PgClient;
  readonly #tables = new Map<string, PostgresTable>();
  /** Qualified names of the ordinary tables created here (a key can be taken over from an index only on those). */
  readonly #plain = new Set<string>();
  readonly #loading = new Map<string, Loading>();
  /** Each created table's column classes (how its values load, docs/cross-engine.md). */
  readonly #classes = new Map<string, ColumnClass[]>();
  readonly #allowLossy: boolean;
  /** The rows come as a PostgreSQL sql export's tuples (TargetOptions.sqlScript). */
  readonly #script: boolean;
  /** The file comes from SQLite: its tables are created from their columns (types mapped, docs/postgres.md). */
  #fromSqlite = false;
  #done = false;

  private constructor(client: PgClient, location: DatabaseLocation, options: TargetOptions) {
    this.#client = client;
    this.location = location;
    this.#allowLossy = options.allowLossy ?? false;
    this.#script = options.sqlScript ?? false;
  }

  static async open(location: DatabaseLocation, options: TargetOptions = {}): Promise<PostgresTarget> {
    const client = await connect(location);
    try {
      await client.query('BEGIN');
    } catch (err) {
      await client.end().catch(() => undefined);
      throw pgError(err, 'cannot begin a transaction on', location);
    }
    return new PostgresTarget(client, location, options);
  }

  /** Runs one statement from the file, after its shape is checked; names it when the server refuses it. */
  async #run(kind: PostgresStatement['kind'] | 'table', name: string, sql: string): Promise<void> {
    const problem = statementProblem(kind, sql);
    if (problem !== undefined) {
      throw new ScriptoriumError('E_UNSUPPORTED_SQL', `import: the ${kind} statement of ${JSON.stringify(name)} is ${problem}: ${String(sql).slice(0, 80)}`, {
        hint: 'import runs only the statements scriptorium writes; the file was edited or is not a scriptorium export. Nothing was written to the target.',
      });
    }
    try {
      await this.#client.query(sql, []); // extended protocol: exactly one statement
    } catch (err) {
      const e = err as { code?: string };
      if (e.code === '42P07' || e.code === '42710') {
        throw new ScriptoriumError('E_TARGET_EXISTS', `import: ${kind} ${JSON.stringify(name)} already exists in ${this.location.display}`, {
          hint: 'Import into an empty database (createdb new_db), or drop the existing objects first. Nothing was written to the target.',
          cause: err,
        });
      }
      throw pgError(err, `${kind} ${JSON.stringify(name)} failed in`, this.location);
    }
  }

  async begin(schema: DatabaseSchema): Promise<void> {
    this.#fromSqlite = schema.engine === 'sqlite';
    if (!this.#fromSqlite && schema.engine !== 'postgres') throw new IntegrityError('E_CORRUPT', `import: the file's engine ${JSON.stringify(schema.engine)} is unknown`);
    for (const s of schema.postgres?.before ?? []) await this.#run(s.kind, s.name, s.sql);
  }

  async createTable(table: TableSchema): Promise<void> {
    if (this.#tables.has(table.name)) throw new IntegrityError('E_CORRUPT', `import: the file describes table ${JSON.stringify(table.name)} twice`);
    await this.#endAll(); // a statement waits behind an open COPY on the same connection: end it first
    let q: string;
    if (this.#fromSqlite) {
      q = qualified('public', table.name);
      const cols = rowColumns(table).map((name, i) => {
        const c = i === 0 && table.rowidAlias ? { name, type: 'INTEGER', notNull: true } : table.columns[table.rowidAlias ? i - 1 : i]!;
        return `${quoteIdent(c.name)} ${sqliteColumnType(c.type)}${c.notNull ? ' NOT NULL' : ''}`;
      });
      await this.#run('table', table.name, `CREATE TABLE ${q} (${cols.join(', ')})`);
    } else {
      const pg = table.postgres;
      if (!pg || typeof pg.schema !== 'string' || typeof pg.table !== 'string' || tableName(pg.schema, pg.table) !== table.name) {
        throw new IntegrityError('E_CORRUPT', `import: the file's schema of table ${JSON.stringify(table.name)} does not name its PostgreSQL schema and table`);
      }
      q = qualified(pg.schema, pg.table);
      if (!String(table.sql).startsWith(`CREATE TABLE ${q} (`) && !String(table.sql).startsWith(`CREATE UNLOGGED TABLE ${q} (`)) {
        throw new ScriptoriumError('E_UNSUPPORTED_SQL', `import: the CREATE TABLE statement of ${JSON.stringify(table.name)} does not create ${q}`, { hint: 'The file was edited; nothing was written to the target.' });
      }
      await this.#run('table', table.name, table.sql);
    }
    // What was created decides how values are loaded and read: the target's catalog, not the file.
    const res = await this.#client.query(
      `SELECT a.attname, a.attgenerated, t.typcollation <> 0 AS collatable,
         CASE WHEN t.typtype = 'd' THEN coalesce((SELECT CASE WHEN b.typtype = 'd' THEN b.typbasetype ELSE b.oid END FROM pg_catalog.pg_type b WHERE b.oid = t.typbasetype), t.typbasetype) ELSE t.oid END AS base
       FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
       WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [q],
    );
    const created = (res.rows as { attname: string; attgenerated: string; collatable: boolean; base: number }[]).filter((r) => r.attgenerated === '');
    // A sql script's CREATE TABLE is its only description: the columns are those it made.
    const columns = this.#fromSqlite ? rowColumns(table) : this.#script && table.columns.length === 0 ? created.map((r) => r.attname) : table.columns.map((c) => c.name);
    if (created.length !== columns.length || created.some((r, i) => r.attname !== columns[i])) {
      throw new IntegrityError('E_CORRUPT', `import: table ${JSON.stringify(table.name)}: its CREATE TABLE makes the columns ${created.map((r) => r.attname).join(', ')}, the file describes ${columns.join(', ')}`, {
        hint: 'The file is damaged or was edited; nothing was written to the target.',
      });
    }
    // A SQLite export has its rows in rowid order, not key order (a TEXT key): read back in load (ctid) order.
    const loaded: TableSchema = this.#fromSqlite
      ? { name: table.name, sql: '', columns: columns.map((name) => ({ name, type: '', notNull: false, pk: table.primaryKey.indexOf(name) + 1 })), primaryKey: [], withoutRowid: false, postgres: { schema: 'public', table: table.name } }
      : this.#script
        ? { ...table, columns: columns.map((name) => ({ name, type: '', notNull: false, pk: 0 })) }
        : table;
    this.#classes.set(table.name, created.map((r) => columnClass(Number(r.base), this.#fromSqlite)));
    this.#tables.set(table.name, { table: loaded, oid: 0, kinds: created.map((r) => kindOfType(Number(r.base))), collatable: created.map((r) => r.collatable) });
    const kind = await this.#client.query(`SELECT relkind FROM pg_catalog.pg_class WHERE oid = $1::regclass`, [q]);
    if ((kind.rows[0] as { relkind?: string } | undefined)?.relkind === 'r') this.#plain.add(q);
  }

  async #start(table: TableSchema, objects = false): Promise<Loading> {
    const pg = this.#tables.get(table.name);
    if (!pg) throw new IntegrityError('E_CORRUPT', `import: rows for table ${JSON.stringify(table.name)}, which the file's schema does not list`);
    const { copyFrom } = await loadDriver();
    const q = qualified(pg.table.postgres!.schema, pg.table.postgres!.table);
    const columns = pg.table.columns.map((c) => c.name);
    const stream = this.#client.query(copyFrom(`COPY ${q} (${columns.map(quoteIdent).join(', ')}) FROM STDIN`));
    const finished = once(stream as unknown as NodeJS.EventEmitter, 'finish');
    finished.catch(() => undefined);
    const encoder = new CopyRowEncoder({ table: table.name, columns, classes: this.#classes.get(table.name)!, fromSqlite: this.#fromSqlite, allowLossy: this.#allowLossy, objects });
    const loading: Loading = { pg, columns, stream, file: createHash('sha256'), sent: createHash('sha256'), rows: 0, encoder, tuples: new SqlTupleEncoder(table.name, columns.length), finished, ended: false };
    this.#loading.set(table.name, loading);
    return loading;
  }

  async load(table: TableSchema, encoding: 'ndjson' | 'json' | 'sql', batch: RowBatch, line = 0): Promise<number> {
    // One COPY at a time on a connection: a table whose rows begin ends the one before.
    for (const other of this.#loading.values()) if (other.pg.table.name !== table.name && !other.ended) await this.#end(other);
    const loading = this.#loading.get(table.name) ?? (await this.#start(table, encoding === 'json'));
    if (loading.ended) throw new IntegrityError('E_CORRUPT', `import: the rows of table ${JSON.stringify(table.name)} come in two places`, { hint: 'The file is damaged or was edited; nothing was written to the target.' });
    if (encoding === 'sql') {
      if (!this.#script) throw new IntegrityError('E_CORRUPT', `import: sql rows for table ${JSON.stringify(table.name)} in a json or ndjson file`);
      const names = loading.pg.table.columns.map((c) => c.name);
      if (table.columns.map((c) => c.name).join('\0') !== names.join('\0')) {
        throw new ScriptoriumError('E_UNSUPPORTED_SQL', `sql: line ${line}: the INSERT into ${JSON.stringify(table.name)} names the columns ${table.columns.map((c) => c.name).join(', ')}; its CREATE TABLE made ${names.join(', ')}`, {
          hint: 'The file was edited; nothing was written to the target.',
        });
      }
      const { copy, rows } = loading.tuples.encode(batch.data, line, loading.file);
      loading.rows += rows;
      if (copy.length > 0 && !loading.stream.write(copy)) await Promise.race([once(loading.stream as unknown as NodeJS.EventEmitter, 'drain'), loading.finished]);
      return rows;
    }
    const { copy, rows } = loading.encoder.encode(batch.data, encoding === 'ndjson' ? NDJSON_SEPARATOR : JSON_SEPARATOR, loading.file, loading.sent);
    loading.rows += rows;
    // Once a value cannot be carried exactly (without --allow-lossy) nothing more is sent: the rest is only checked.
    if (copy.length > 0 && !loading.encoder.blocked && !loading.stream.write(copy)) await Promise.race([once(loading.stream as unknown as NodeJS.EventEmitter, 'drain'), loading.finished]);
    return rows;
  }

  /** Every value of the file so far that cannot be carried exactly, by table, column and kind. */
  lossyValues(): LossyValues[] {
    return [...this.#loading.values()].flatMap((l) => l.encoder.lossy);
  }

  async verify(table: TableSchema, expected: TableDigest | undefined): Promise<{ rows: number; sha256?: string; verified: boolean }> {
    const lossy = this.lossyValues();
    if (lossy.length > 0 && !this.#allowLossy) {
      const values = lossy.reduce((a, l) => a + l.count, 0);
      throw new ScriptoriumError('E_LOSSY', `import: ${values} value${values === 1 ? '' : 's'} cannot be carried exactly into ${this.location.display}:\n${describeLossy(lossy)}`, {
        hint: 'Nothing was written to the target. Pass --allow-lossy to load them as docs/cross-engine.md says (each kind is listed above), or fix them in the source first.',
      });
    }
    await this.#endAll();
    const loading = this.#loading.get(table.name) ?? (await this.#start(table));
    if (!loading.ended) await this.#end(loading);
    const file = loading.file.digest('hex');
    if (expected && (expected.rows !== loading.rows || expected.sha256 !== file)) {
      throw new IntegrityError('E_DIGEST_MISMATCH', `import: table ${JSON.stringify(table.name)} does not match its digest (expected ${expected.rows} rows, sha256 ${expected.sha256.slice(0, 12)}…; the file has ${loading.rows} rows, sha256 ${file.slice(0, 12)}…)`, {
        hint: 'The file was changed or damaged after export; nothing was written to the target.',
      });
    }
    if (this.#script) {
      // The tuples were written by the same encoder that reads the table back: the load is exact when
      // the table reads back as the file's digest says.
      const back = new DigestBuilder('sql');
      for await (const b of copyBatches(this.#client, loading.pg, 'sql', 500)) back.add(b);
      const held = back.finish();
      if (!expected || held.rows !== expected.rows || held.sha256 !== expected.sha256) {
        throw new IntegrityError('E_DIGEST_MISMATCH', `import: table ${JSON.stringify(table.name)} in ${this.location.display} does not read back as the file's digest says (${loading.rows} rows sent, ${held.rows} held): PostgreSQL changed some value on the way in`, {
          hint: 'The file was edited, or the target converts some value differently from the source; nothing was written to the target.',
        });
      }
      return { rows: loading.rows, sha256: file, verified: true };
    }
    // What the table holds now, read as the values sent should read: any value the server changed shows.
    const digest = new DigestBuilder('ndjson');
    // Each batch is new memory outside the V8 heap, which does not see it pile up: collect as it goes
    // (a SQLite snapshot's restore into PostgreSQL peaked at 113 MB at 100k rows without).
    const gate = new GarbageGate(512 << 10);
    for await (const b of copyBatches(this.#client, loading.pg, 'ndjson', 2000)) {
      digest.add(b);
      gate.add(b.data.length);
    }
    const held = digest.finish();
    const sent = loading.sent.digest('hex');
    if (held.rows !== loading.rows || held.sha256 !== sent) {
      throw new IntegrityError('E_DIGEST_MISMATCH', `import: table ${JSON.stringify(table.name)} in ${this.location.display} does not hold the values sent (${loading.rows} rows sent, ${held.rows} held): PostgreSQL changed some value on the way in`, {
        hint: this.#fromSqlite
          ? 'A SQLite value does not fit its PostgreSQL column exactly (text in a numeric column, a float in an integer one, …); see docs/postgres.md. Nothing was written to the target.'
          : 'The target converts some value differently from the source (another server version or setting?); nothing was written to the target.',
      });
    }
    return { rows: loading.rows, ...(expected ? { sha256: file } : {}), verified: expected !== undefined };
  }

  async #endAll(): Promise<void> {
    for (const l of this.#loading.values()) if (!l.ended) await this.#end(l);
  }

  async #end(loading: Loading): Promise<void> {
    loading.ended = true;
    loading.stream.end();
    try {
      await loading.finished;
    } catch (err) {
      throw pgError(err, `loading table ${JSON.stringify(loading.pg.table.name)} into`, this.location);
    }
  }

  async finish(schema: DatabaseSchema): Promise<void> {
    await this.#endAll();
    const after: PostgresStatement[] = this.#fromSqlite
      ? schema.tables.filter((t) => t.primaryKey.length > 0).map((t) => ({
          kind: 'constraint', name: t.name, tables: [t.name],
          sql: `ALTER TABLE ONLY ${qualified('public', t.name)} ADD CONSTRAINT ${quoteIdent(`${t.name}_pkey`)} PRIMARY KEY (${t.primaryKey.map(quoteIdent).join(', ')})`,
        }))
      : schema.postgres?.after ?? [];
    for (const s of afterStatements(after, this.#plain)) await this.#run(s.kind, s.name, s.sql);
  }

  async commit(): Promise<void> {
    try {
      await this.#client.query('COMMIT');
    } catch (err) {
      throw pgError(err, 'cannot commit the import into', this.location);
    } finally {
      this.#done = true;
      await this.#client.end().catch(() => undefined);
    }
  }

  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    for (const l of this.#loading.values()) if (!l.ended) l.stream.destroy(new Error('import aborted'));
    // The connection ends without a ROLLBACK: a COPY may be in flight, and a query would wait behind it.
    // The server rolls back the open transaction (every table, row and statement of the import) itself.
    await this.#client.end().catch(() => undefined);
  }
}
