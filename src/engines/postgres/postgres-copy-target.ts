/**
 * The target of a PostgreSQL restore: one connection, one transaction. Tables are created, filled with
 * `COPY … FROM STDIN` (FREEZE: they were created in this transaction) from the exact bytes a backup
 * stored and read back and hashed ({@link digest}), then the statements after the rows run (keys,
 * indexes, foreign keys, views, sequence values, comments; after-statements.ts). Nothing of this
 * transaction is visible to others before {@link commit}; {@link abort} (after any failure) leaves the
 * database as it was, since PostgreSQL's DDL is transactional. (A parallel restore's other connections
 * commit their tables in a staging schema, where the restoring role, superusers and pg_read_all_data
 * can see them, before this one moves them in: {@link StagingArea}.)
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { IntegrityError, ScriptoriumError } from '../../core/errors.js';
import { GarbageGate } from '../../core/memory.js';
import type { DatabaseSchema, PostgresStatement, TableSchema } from '../../core/schema.js';
import type { DatabaseLocation } from '../engine.js';
import { afterStatements, onTable } from './after-statements.js';
import { connect, pgCode, pgError } from './connect.js';
import { copyOutStream } from './copy-out-stream.js';
import { loadDriver, type PgClient } from './driver.js';
import type { PostgresTable } from './postgres-schema.js';
import { rowsQuery } from './postgres-source.js';
import { kindOfType } from './row-codec.js';
import { qualified, quoteIdent } from './sql-text.js';
import { statementProblem } from './statement-guard.js';

/** Options for {@link PostgresCopyTarget.open}. */
export interface CopyTargetOptions {
  /** Processes per index build (the server's parallel index build: the leader and jobs - 1 workers). */
  jobs?: number;
  /** What the target is for, in messages (`restore`, `verify --drill`). */
  operation?: string;
  /** maintenance_work_mem for its index builds, in MB (default 256; a parallel restore's connections share that). */
  maintenanceMb?: number;
}

/** One table's digest as read back: rows and the SHA-256 of its COPY text in key order. */
export interface CopyDigest {
  rows: number;
  sha256: string;
  /** The order the rows were read in. */
  order: 'load' | 'key';
}

/** A transactional restore into one PostgreSQL database. */
export class PostgresCopyTarget {
  readonly location: DatabaseLocation;
  readonly #client: PgClient;
  readonly #operation: string;
  readonly #tables = new Map<string, PostgresTable>();
  /**
   * Ordinary tables created here and filled by one COPY since: their heap holds the rows in load
   * order (the snapshot's key order), so a plain sequential read gives them back in that order.
   */
  readonly #inLoadOrder = new Set<string>();
  /** Qualified names of the ordinary tables created here (a key can be taken over from an index only on those). */
  readonly #plain = new Set<string>();
  /** Tables a COPY has started on. */
  readonly #loaded = new Set<string>();
  /** The schema each created table is in now: its own, or a staging schema. */
  readonly #schemaOf = new Map<string, string>();
  #done = false;
  /** A COPY in flight (destroyed by abort). */
  #copy: (NodeJS.WritableStream & { destroy(err?: Error): void }) | undefined;

  private constructor(client: PgClient, location: DatabaseLocation, operation: string) {
    this.#client = client;
    this.location = location;
    this.#operation = operation;
  }

  static async open(location: DatabaseLocation, options: CopyTargetOptions = {}): Promise<PostgresCopyTarget> {
    const client = await connect(location);
    const jobs = Math.max(1, Math.min(8, Math.floor(options.jobs ?? 1)));
    try {
      // READ COMMITTED whatever the database's default: each statement sees what the other
      // connections of a parallel restore committed (their staged tables' catalog rows).
      await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
      // Index builds after the load: in memory where they fit, and with the server's parallel workers.
      // A sequential read starts at the first page (not where another scan of the table is), so it
      // returns a freshly loaded table's rows in load order.
      const memory = Math.max(16, Math.floor(options.maintenanceMb ?? 256));
      await client.query(`SET LOCAL maintenance_work_mem = '${memory}MB'; SET LOCAL max_parallel_maintenance_workers = ${jobs - 1}; SET LOCAL synchronize_seqscans = off`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw pgError(err, 'cannot begin a transaction on', location);
    }
    return new PostgresCopyTarget(client, location, options.operation ?? 'restore');
  }

  /** Runs one statement of the snapshot, after its shape is checked; names it when the server refuses it. */
  async #run(kind: PostgresStatement['kind'] | 'table', name: string, sql: string): Promise<void> {
    const problem = statementProblem(kind, sql);
    if (problem !== undefined) {
      throw new IntegrityError('E_CORRUPT', `${this.#operation}: the ${kind} statement of ${JSON.stringify(name)} is ${problem}`, {
        hint: 'The manifest was edited: its snapshot cannot be trusted. Nothing was written to the target.',
      });
    }
    try {
      await this.#client.query(sql, []); // extended protocol: exactly one statement
    } catch (err) {
      const e = err as { code?: string };
      if (e.code === '42P07' || e.code === '42710' || e.code === '42P06') {
        throw new ScriptoriumError('E_TARGET_EXISTS', `${this.#operation}: ${kind} ${JSON.stringify(name)} already exists in ${this.location.display}`, {
          hint: 'Restore into an empty database (createdb new_db), or drop the existing objects first. Nothing was written to the target.',
          cause: err,
        });
      }
      throw pgError(err, `${kind} ${JSON.stringify(name)} failed in`, this.location);
    }
  }

  /** Creates what comes before the tables (schemas, extensions, types, sequences). */
  async begin(schema: DatabaseSchema): Promise<void> {
    for (const s of schema.postgres?.before ?? []) await this.#run(s.kind, s.name, s.sql);
  }

  /**
   * Creates one table; checks that its columns are those the snapshot's rows carry. With `into` (a
   * staging schema, see {@link StagingArea}) the table is made there under its own name, from the same
   * statement with only its name replaced; it returns false, having created nothing, when the statement
   * needs an object this connection cannot see (a type, sequence or extension the restore's main
   * transaction creates): that table is then loaded by the main transaction.
   */
  async createTable(table: TableSchema, options: { into?: string } = {}): Promise<boolean> {
    const pg = table.postgres!;
    const q = qualified(pg.schema, pg.table);
    const sql = String(table.sql);
    const prefix = [`CREATE TABLE ${q} (`, `CREATE UNLOGGED TABLE ${q} (`].find((p) => sql.startsWith(p));
    if (prefix === undefined) {
      throw new IntegrityError('E_CORRUPT', `${this.#operation}: the CREATE TABLE statement of ${JSON.stringify(table.name)} does not create ${q}`, { hint: 'The manifest was edited; nothing was written to the target.' });
    }
    const at = options.into === undefined ? q : qualified(options.into, pg.table);
    if (options.into === undefined) await this.#run('table', table.name, sql);
    else {
      const staged = `${prefix.slice(0, prefix.length - q.length - 2)}${at} (${sql.slice(prefix.length)}`;
      if (!(await this.#inSavepoint(() => this.#run('table', table.name, staged)))) return false;
    }
    this.#schemaOf.set(table.name, options.into ?? pg.schema);
    await this.#register(table, at);
    return true;
  }

  /**
   * Runs `statements` in a savepoint; false, with the savepoint rolled back, when one fails with one of
   * `codes`: by default, when it names an object this transaction cannot see (for a connection beside
   * the main one: a type, sequence, schema or function only the main transaction has).
   */
  async #inSavepoint(statements: () => Promise<void>, codes: readonly string[] = UNSEEN_OBJECT): Promise<boolean> {
    await this.#client.query('SAVEPOINT staged');
    try {
      await statements();
    } catch (err) {
      const code = pgCode(err);
      if (code !== undefined && codes.includes(code)) {
        await this.#client.query('ROLLBACK TO SAVEPOINT staged');
        return false;
      }
      throw err;
    }
    await this.#client.query('RELEASE SAVEPOINT staged');
    return true;
  }

  /** What was created (at `at`) decides how rows are read back: the target's catalog, not the manifest. */
  async #register(table: TableSchema, at: string): Promise<void> {
    const res = await this.#client.query(
      `SELECT a.attname, a.attgenerated, t.typcollation <> 0 AS collatable, t.oid::int AS base
       FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
       WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [at],
    );
    const created = (res.rows as { attname: string; attgenerated: string; collatable: boolean; base: number }[]).filter((r) => r.attgenerated === '');
    const columns = table.columns.map((c) => c.name);
    if (created.length !== columns.length || created.some((r, i) => r.attname !== columns[i])) {
      throw new IntegrityError('E_CORRUPT', `${this.#operation}: table ${JSON.stringify(table.name)}: its CREATE TABLE makes the columns ${created.map((r) => r.attname).join(', ')}, the manifest describes ${columns.join(', ')}`, {
        hint: 'The manifest is damaged or was edited; nothing was written to the target.',
      });
    }
    this.#tables.set(table.name, { table, oid: 0, kinds: created.map((r) => kindOfType(r.base)), collatable: created.map((r) => r.collatable) });
    const kind = await this.#client.query(`SELECT relkind FROM pg_catalog.pg_class WHERE oid = $1::regclass`, [at]);
    // Keyed by the table's own name: that is where the statements after the rows find it.
    if ((kind.rows[0] as { relkind?: string } | undefined)?.relkind === 'r') this.#plain.add(qualified(table.postgres!.schema, table.postgres!.table));
  }

  /**
   * Runs now, on this connection, the statements after the rows that concern `table` alone (its
   * indexes, and its primary key, unique and check constraints: after-statements.ts's onTable), on
   * the table where it is (in a staging schema too), so that they are built beside the other
   * connections' loads instead of after them all. Not for a partition, whose keys and indexes come
   * with its parent's. `after`: the statements after the rows that name `table` first (its
   * `tables[0]`). Returns those it ran; on a staging connection, one that needs an object only the
   * main transaction sees is left to it.
   */
  async tableStatements(table: TableSchema, after: readonly PostgresStatement[]): Promise<Set<PostgresStatement>> {
    const pg = table.postgres!;
    const done = new Set<PostgresStatement>();
    if (after.some((s) => s.kind === 'attach-partition')) return done;
    const schema = this.#schemaOf.get(table.name)!;
    const plain = new Set(this.#plain.has(qualified(pg.schema, pg.table)) ? [qualified(schema, pg.table)] : []);
    for (const s of after) {
      const moved = s.tables[0] === table.name ? onTable(s, pg.schema, pg.table, schema) : undefined;
      if (!moved) continue;
      const run = async (): Promise<void> => {
        for (const r of afterStatements([moved], plain)) await this.#run(r.kind, r.name, r.sql);
      };
      if (schema === pg.schema) await run();
      else if (!(await this.#inSavepoint(run))) continue;
      done.add(s);
    }
    return done;
  }

  /**
   * Takes over a table that another connection created in the staging schema `from`, filled, checked
   * and committed: moves it (with its identity sequences and TOAST table) to its own schema, inside
   * this transaction, so it appears there only when this one commits. Returns false, having moved
   * nothing, when a name the server gave it in the staging schema (an identity sequence's, its row
   * type's) is taken in its own: loaded here instead, it gets the name it had in the source (the one
   * left over is dropped with the staging schema).
   */
  async adopt(table: TableSchema, from: string): Promise<boolean> {
    const pg = table.postgres!;
    const at = qualified(from, pg.table);
    const moved = await this.#inSavepoint(async () => {
      try {
        await this.#client.query(`ALTER TABLE ${at} SET SCHEMA ${quoteIdent(pg.schema)}`);
      } catch (err) {
        throw pgError(err, `moving table ${JSON.stringify(table.name)} from the staging schema into`, this.location);
      }
    }, NAME_TAKEN);
    if (!moved) return false;
    this.#schemaOf.set(table.name, pg.schema);
    this.#loaded.add(table.name);
    await this.#register(table, qualified(pg.schema, pg.table));
    return true;
  }

  /**
   * Refuses, as creating them here would, `tables` that already exist in the target: before any of
   * them is loaded on another connection, to be moved here only at the end.
   */
  async refuseExisting(tables: readonly TableSchema[]): Promise<void> {
    const names = tables.map((t) => qualified(t.postgres!.schema, t.postgres!.table));
    const res = await this.#client.query(`SELECT n FROM unnest($1::text[]) n WHERE pg_catalog.to_regclass(n) IS NOT NULL`, [names]);
    const found = (res.rows as { n: string }[]).map((r) => tables[names.indexOf(r.n)]!.name);
    if (found.length > 0) {
      throw new ScriptoriumError('E_TARGET_EXISTS', `${this.#operation}: table ${JSON.stringify(found[0])} already exists in ${this.location.display}`, {
        hint: 'Restore into an empty database (createdb new_db), or drop the existing objects first. Nothing was written to the target.',
      });
    }
  }

  /** Runs a statement of the restore's own (not the snapshot's) in this transaction. */
  async run(sql: string): Promise<void> {
    try {
      await this.#client.query(sql);
    } catch (err) {
      throw pgError(err, `${sql.split(' ').slice(0, 3).join(' ')} failed in`, this.location);
    }
  }

  /**
   * Loads a table's rows: `data` is COPY text (whole rows, each ending in `\n`), in pieces that are
   * views valid until the next one is asked for (they are copied into {@link SendBuffers}, whose
   * messages may cut a row: the server joins CopyData messages into one stream). Returns
   * the rows the server took.
   */
  async load(table: TableSchema, data: AsyncIterable<Buffer>): Promise<number> {
    const t = this.#table(table);
    const { copyFrom } = await loadDriver();
    const q = qualified(this.#schemaOf.get(table.name)!, table.postgres!.table);
    this.#inLoadOrder.delete(table.name);
    const fresh = this.#plain.has(qualified(table.postgres!.schema, table.postgres!.table)) && !this.#loaded.has(table.name);
    this.#loaded.add(table.name);
    const stream = this.#client.query(copyFrom(`COPY ${q} (${table.columns.map((c) => quoteIdent(c.name)).join(', ')}) FROM STDIN WITH (FREEZE)`));
    this.#copy = stream;
    const buffers = new SendBuffers(stream);
    const events = stream as unknown as NodeJS.EventEmitter;
    const failed = new Promise<never>((_, reject) => events.once('error', reject));
    failed.catch(() => undefined);
    // A COPY destroyed by abort() may report again when its connection ends: not a crash.
    events.on('error', () => undefined);
    const finished = once(events, 'finish');
    finished.catch(() => undefined);
    const send = async (view: Buffer): Promise<void> => {
      if (!stream.write(view)) await Promise.race([once(events, 'drain'), failed]);
    };
    try {
      let out = buffers.take();
      let n = 0;
      for await (const piece of data) {
        for (let at = 0; at < piece.length; ) {
          const took = piece.copy(out, n, at, Math.min(piece.length, at + out.length - n));
          at += took;
          n += took;
          if (n === out.length) {
            await send(out);
            out = buffers.take();
            n = 0;
          }
        }
      }
      if (n > 0) await send(out.subarray(0, n));
      stream.end();
      await Promise.race([finished, failed]);
    } catch (err) {
      stream.destroy(err instanceof Error ? err : new Error(String(err)));
      if (err instanceof ScriptoriumError) throw err;
      throw pgError(err, `loading table ${JSON.stringify(t.table.name)} into`, this.location);
    } finally {
      this.#copy = undefined;
    }
    if (fresh) this.#inLoadOrder.add(table.name);
    return Number((stream as unknown as { rowCount?: number }).rowCount ?? 0);
  }

  /**
   * Creates what comes after the rows (keys, indexes, foreign keys, views, sequence values, comments),
   * but for `done` (run already, by {@link tableStatements} of this or another connection).
   */
  async finish(schema: DatabaseSchema, done: ReadonlySet<PostgresStatement> = new Set()): Promise<void> {
    for (const s of afterStatements((schema.postgres?.after ?? []).filter((x) => !done.has(x)), this.#plain)) await this.#run(s.kind, s.name, s.sql);
  }

  /**
   * A loaded table read back as COPY text: its row count and SHA-256, which must be the manifest's
   * table digest (of the rows in key order). `order: 'load'` reads a table filled by one COPY (since
   * it was created here) sequentially, in the order its rows were loaded, with no sort: the
   * snapshot's rows come in key order, so this is the key order unless the load was not (then the
   * digest differs, and the caller reads again in key order). Other tables, and `order: 'key'`, are
   * read with `ORDER BY` the key (or ctid).
   */
  async digest(table: TableSchema, order: 'load' | 'key' = 'key'): Promise<CopyDigest> {
    const t = this.#table(table);
    const driver = await loadDriver();
    const q = qualified(this.#schemaOf.get(table.name)!, table.postgres!.table);
    // COPY of a table (not a query) reads only that table, never its inheritance children.
    const read = order === 'load' && this.#inLoadOrder.has(table.name) ? 'load' : 'key';
    const sql = read === 'load'
      ? `COPY ${q} (${table.columns.map((c) => quoteIdent(c.name)).join(', ')}) TO STDOUT`
      : `COPY (${rowsQuery(t, undefined, q)}) TO STDOUT`;
    const hash = createHash('sha256');
    // The pieces die young, outside the V8 heap, which does not see them pile up: collect as they go.
    const gate = new GarbageGate();
    let rows = 0;
    try {
      const stream = this.#client.query(copyOutStream(driver, sql));
      // One cut short by abort() may report again when its connection ends: not a crash.
      stream.on('error', () => undefined);
      for await (const piece of stream as AsyncIterable<Buffer>) {
        hash.update(piece);
        gate.add(piece.length);
        for (let at = piece.indexOf(10); at >= 0; at = piece.indexOf(10, at + 1)) rows++;
      }
    } catch (err) {
      throw pgError(err, `reading back table ${JSON.stringify(table.name)} of`, this.location);
    }
    return { rows, sha256: hash.digest('hex'), order: read };
  }

  #table(table: TableSchema): PostgresTable {
    const t = this.#tables.get(table.name);
    if (!t) throw new IntegrityError('E_CORRUPT', `${this.#operation}: rows for table ${JSON.stringify(table.name)}, which the snapshot's schema does not list`);
    return t;
  }

  /** Makes everything visible at once. */
  async commit(): Promise<void> {
    try {
      await this.#client.query('COMMIT');
    } catch (err) {
      throw pgError(err, `cannot commit the ${this.#operation} into`, this.location);
    } finally {
      this.#done = true;
      await this.#client.end().catch(() => undefined);
    }
  }

  /** Undoes everything (a drill's end, or after a failure); never throws. */
  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    this.#copy?.destroy(new Error(`${this.#operation} aborted`));
    // No ROLLBACK first: a COPY may be in flight, and a query would wait behind it. Ending the
    // connection makes the server roll back the open transaction (every table and statement) itself.
    await this.#client.end().catch(() => undefined);
  }
}

/**
 * The schemas a parallel restore stages its large tables in, one per schema of the snapshot's (so a
 * table keeps its name, and the names the server derives from it: identity sequences, TOAST). Each
 * table is created, filled, read back and committed there by a connection of its own, then moved to
 * its own schema by the main transaction ({@link PostgresCopyTarget.adopt}), which drops the emptied
 * schemas before it commits: nothing appears in the target's own schemas before that commit. A staging
 * schema is the restoring role's and grants nothing to others (superusers and pg_read_all_data can still
 * read it, as they can read the target); a failed restore drops it with what is in it ({@link drop}),
 * and one killed before it could leaves it behind, named `scriptorium_restore_…`, for `DROP SCHEMA …
 * CASCADE`.
 */
export class StagingArea {
  readonly #location: DatabaseLocation;
  /** Snapshot schema -> its staging schema. */
  readonly #names: Map<string, string>;

  private constructor(location: DatabaseLocation, names: Map<string, string>) {
    this.#location = location;
    this.#names = names;
  }

  /**
   * Creates a staging schema for each of `schemas` (committed, on a connection of its own); undefined
   * when the role may not create schemas in the database, or the server takes no more connections (the
   * restore then loads on one connection).
   */
  static async create(location: DatabaseLocation, schemas: readonly string[]): Promise<StagingArea | undefined> {
    let client: PgClient;
    try {
      client = await connect(location);
    } catch (err) {
      // The server takes no more connections: then neither would it take the loading ones.
      if (pgCode(err) === '53300') return undefined;
      throw err;
    }
    const tag = randomBytes(4).toString('hex');
    const names = new Map<string, string>();
    try {
      for (const schema of schemas) {
        const name = `scriptorium_restore_${tag}_${names.size}`;
        await client.query(`CREATE SCHEMA ${quoteIdent(name)}`);
        names.set(schema, name);
      }
    } catch (err) {
      for (const name of names.values()) await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(name)} CASCADE`).catch(() => undefined);
      if (pgCode(err) === '42501') return undefined; // no CREATE on the database
      throw pgError(err, 'cannot create a staging schema in', location);
    } finally {
      await client.end().catch(() => undefined);
    }
    return new StagingArea(location, names);
  }

  /** The staging schema of `table`. */
  schemaOf(table: TableSchema): string {
    return this.#names.get(table.postgres!.schema)!;
  }

  /** The staging schemas' names. */
  get schemas(): string[] {
    return [...this.#names.values()];
  }

  /**
   * Drops the staging schemas and whatever is still in them (after a failure or a drill, once the main
   * transaction is gone, which gives back the tables it had moved); never throws: returns the schemas
   * it could not drop.
   */
  async drop(): Promise<string[]> {
    let client: PgClient;
    try {
      client = await connect(this.#location);
    } catch {
      return this.schemas;
    }
    const left: string[] = [];
    for (const name of this.schemas) {
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(name)} CASCADE`);
      } catch {
        left.push(name);
      }
    }
    await client.end().catch(() => undefined);
    return left;
  }
}

/** SQLSTATEs of an undefined object, table (a sequence in a default), schema, function: the main transaction's. */
const UNSEEN_OBJECT = ['42704', '42P01', '3F000', '42883'];
/** SQLSTATEs of a relation or other object whose name is taken. */
const NAME_TAKEN = ['42P07', '42710'];

/** Bytes of one {@link SendBuffers} buffer (a CopyData message; rows may be cut between two). */
const SEND_BYTES = 256 << 10;
/** Free buffers a {@link SendBuffers} keeps. */
const SEND_KEEP = 4;

/** What {@link SendBuffers} uses of pg-copy-streams' CopyStreamQuery (7.x). */
interface CopyInternals {
  flushChunk?: (chunk: Buffer) => boolean;
  /** pg's connection, while the COPY runs. */
  connection?: { stream: NodeJS.WritableStream & { writableLength: number } } | null;
  writableLength: number;
}

/**
 * The buffers a COPY's data is sent from, each used again once the socket has handed all of it to the
 * kernel (the callback of the socket's write of it, which pg-copy-streams makes for each CopyData
 * message: its `flushChunk` is wrapped). A restore's rows then cross in a few buffers, not in a fresh
 * copy a batch: those wait in the socket while the server is busy, outlive young collections, and
 * were freed late (measured with two loads at once: 15-20 MB more at the peak). With another
 * pg-copy-streams, whose internals differ, no buffer is given back and each is a fresh one.
 */
class SendBuffers {
  readonly #free: Buffer[] = [];
  /** The buffers in flight, by their memory, each with the number of its current use. */
  readonly #busy = new Map<ArrayBufferLike, { buffer: Buffer; use: number }>();
  #uses = 0;
  readonly #copy: CopyInternals;

  constructor(stream: object) {
    const copy = (this.#copy = stream as CopyInternals);
    const flushChunk = copy.flushChunk;
    if (typeof flushChunk !== 'function') return;
    copy.flushChunk = (chunk: Buffer): boolean => {
      const memory = chunk.buffer;
      const socket = copy.connection?.stream;
      const busy = this.#busy.get(memory);
      if (!socket || !busy) return flushChunk.call(copy, chunk);
      const header = Buffer.from([0x64, 0, 0, 0, 0]); // CopyData, and its length
      header.writeUInt32BE(chunk.length + 4, 1);
      socket.write(header);
      // The use this write is of: a late callback never frees the buffer's next use.
      const use = busy.use;
      return socket.write(chunk, () => this.#release(memory, use));
    };
  }

  /** A buffer of SEND_BYTES, free until it is sent. */
  take(): Buffer {
    // Nothing queued in the COPY stream or the socket: every buffer sent is in the kernel (a write's
    // callback comes on a later tick than its completion).
    const socket = this.#copy.connection?.stream;
    if (this.#free.length === 0 && socket && this.#copy.writableLength === 0 && socket.writableLength === 0) {
      for (const [memory, { use }] of [...this.#busy]) this.#release(memory, use);
    }
    const buffer = this.#free.pop() ?? Buffer.allocUnsafeSlow(SEND_BYTES);
    this.#busy.set(buffer.buffer, { buffer, use: ++this.#uses });
    return buffer;
  }

  #release(memory: ArrayBufferLike, use: number): void {
    const busy = this.#busy.get(memory);
    if (!busy || busy.use !== use) return;
    this.#busy.delete(memory);
    if (this.#free.length < SEND_KEEP) this.#free.push(busy.buffer);
  }
}
