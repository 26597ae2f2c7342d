import type { ColumnSchema, DatabaseSchema, PostgresStatement, TableSchema, UnsupportedTable } from '../../core/schema.js';
import type { PgClient } from './driver.js';
import { kindOfType, type ValueKind } from './row-codec.js';
import { qualified, quoteIdent, quoteLiteral } from './sql-text.js';

/** Schemas that belong to the server, never carried. */
const SYSTEM = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'`;
/** Objects that belong to an extension are recreated by CREATE EXTENSION, not carried one by one. */
const NOT_EXTENSION = (cls: string, oid: string): string => `NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '${cls}'::regclass AND e.objid = ${oid} AND e.deptype = 'e')`;

/** A table as read, with what loading and reading it needs besides its {@link TableSchema}. */
export interface PostgresTable {
  table: TableSchema;
  oid: number;
  /** The kinds of the carried columns' values, in column order. */
  kinds: ValueKind[];
  /** Whether each carried column's type has a collation (its key order is then taken in "C", the same on every server). */
  collatable: boolean[];
}

/** The schema of a PostgreSQL database, and the tables' oids and value kinds. */
export interface PostgresSchemaRead {
  schema: DatabaseSchema;
  tables: Map<string, PostgresTable>;
}

/** The name a table is known by: `schema.table`, or `table` in `public`. */
export function tableName(schema: string, table: string): string {
  return schema === 'public' ? table : `${schema}.${table}`;
}

type Row = Record<string, unknown>;

async function rows(client: PgClient, sql: string, params: unknown[] = []): Promise<Row[]> {
  return (await client.query(sql, params)).rows as Row[];
}

/**
 * Reads the schema inside the caller's transaction (so it is the snapshot's schema): tables with their
 * columns (types, defaults, identity, generated, collation), constraints, indexes, views and
 * materialized views, sequences with their values, enums, domains, composite types, schemas,
 * extensions and comments. What is not carried is listed in `notCarried`; inherited (not partition)
 * and foreign tables are `unsupported` (refused when selected).
 *
 * Declarative partitioning: each leaf partition is a table whose rows are carried (read and loaded on
 * its own, so every row lands in the partition it came from); each partitioned table (the root and any
 * sub-partitioned level) is a `partitioned-table` statement before the tables (its columns and
 * `PARTITION BY` as pg_get_partkeydef prints it); once the rows are in, `attach-partition` statements
 * (`ALTER TABLE ONLY parent ATTACH PARTITION child FOR VALUES … | DEFAULT`, the bound as
 * pg_get_expr(relpartbound) prints it) rebuild the tree, which makes the server check every row
 * against its bound, before keys and indexes are added to the partitioned tables (which recurse into
 * the partitions). A statement about a partitioned table names the leaves under it in `tables`.
 */
export async function readPostgresSchema(client: PgClient): Promise<PostgresSchemaRead> {
  const version = String((await rows(client, 'SHOW server_version'))[0]!.server_version);
  const before: PostgresStatement[] = [];
  const after: PostgresStatement[] = [];
  const notCarried: string[] = [];
  const unsupported: UnsupportedTable[] = [];

  for (const r of await rows(client, `SELECT n.nspname, obj_description(n.oid, 'pg_namespace') AS comment FROM pg_namespace n WHERE ${SYSTEM} AND ${NOT_EXTENSION('pg_namespace', 'n.oid')} ORDER BY n.oid`)) {
    const name = String(r.nspname);
    if (name !== 'public') before.push({ kind: 'schema', name, tables: [], sql: `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(name)}` });
    if (r.comment !== null && name !== 'public') after.push({ kind: 'comment', name, tables: [], sql: `COMMENT ON SCHEMA ${quoteIdent(name)} IS ${quoteLiteral(String(r.comment))}` });
  }
  for (const r of await rows(client, `SELECT x.extname, n.nspname FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace WHERE x.extname <> 'plpgsql' ORDER BY x.oid`)) {
    before.push({ kind: 'extension', name: String(r.extname), tables: [], sql: `CREATE EXTENSION IF NOT EXISTS ${quoteIdent(String(r.extname))} WITH SCHEMA ${quoteIdent(String(r.nspname))}` });
  }
  await readTypes(client, before, after, notCarried);

  const rels = await rows(client, `SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence, c.relispartition, c.relrowsecurity, c.relacl IS NOT NULL AS acl, c.reloptions, c.relnatts,
      obj_description(c.oid, 'pg_class') AS comment, EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid) AS inherits
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND ${SYSTEM} AND ${NOT_EXTENSION('pg_class', 'c.oid')} ORDER BY c.oid`);
  // Plain tables and leaf partitions carry rows; partitioned tables (relkind p) are created before them.
  const tableRels = rels.filter((r) => r.relkind === 'p' || (r.relkind === 'r' && (r.relispartition || !r.inherits)));
  for (const r of rels) {
    const name = tableName(String(r.nspname), String(r.relname));
    if (r.relkind === 'f') unsupported.push({ name, reason: `is a foreign table${r.relispartition ? ' (a partition)' : ''} (its rows live elsewhere)`, hint: 'Leave it out with --exclude-tables.' });
    else if (r.relkind === 'r' && r.inherits && !r.relispartition) unsupported.push({ name, reason: 'inherits from another table (INHERITS, not a partition), which scriptorium does not carry yet', hint: 'Leave it out with --exclude-tables.' });
    if (r.relrowsecurity) notCarried.push(`row-level security of ${name} (its policies are not carried; rows are read with row_security = off)`);
    if (r.acl) notCarried.push(`privileges on ${name}`);
  }
  const partitioned: PostgresStatement[] = [];
  const tables = await readTables(client, tableRels, partitioned, after);
  // Two tables known by one name (table b of schema a, and table "a.b" of public): a selection, a
  // manifest or an export could not tell them apart, and one would be left out.
  const named = new Map<string, Row[]>();
  for (const r of tableRels) {
    const name = tableName(String(r.nspname), String(r.relname));
    named.set(name, [...(named.get(name) ?? []), r]);
  }
  for (const [name, same] of named) {
    if (same.length < 2) continue;
    tables.delete(name);
    const which = same.map((r) => `${quoteIdent(String(r.relname))} of schema ${quoteIdent(String(r.nspname))}`).join(' and ');
    unsupported.push({ name, reason: `names ${same.length} tables (${which}), which scriptorium cannot tell apart`, hint: 'Rename one of them (ALTER TABLE … RENAME TO …), or leave both out with --exclude-tables.' });
  }
  // A table with no column whose values are carried (none at all, or only generated ones).
  for (const [name, t] of tables) {
    if (t.table.columns.length > 0) continue;
    tables.delete(name);
    unsupported.push({ name, reason: 'has no columns whose values are carried (no columns at all, or only generated ones), which scriptorium does not carry yet', hint: 'Leave it out with --exclude-tables, or give it a column.' });
  }

  for (const r of rels.filter((x) => x.relkind === 'v' || x.relkind === 'm')) {
    const name = tableName(String(r.nspname), String(r.relname));
    const def = String((await rows(client, 'SELECT pg_get_viewdef($1::oid, true) AS d', [r.oid]))[0]!.d).replace(/;\s*$/, '');
    const uses = await rows(client, `SELECT DISTINCT n.nspname, c.relname FROM pg_rewrite w JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid AND d.refclassid = 'pg_class'::regclass
        JOIN pg_class c ON c.oid = d.refobjid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE w.ev_class = $1 AND d.refobjid <> $1 AND c.relkind IN ('r', 'p')`, [r.oid]);
    const q = qualified(String(r.nspname), String(r.relname));
    // A view's options (check_option, security_barrier, security_invoker) and a materialized view's storage parameters.
    const options = viewOptions(r.reloptions);
    const sql = r.relkind === 'm' ? `CREATE MATERIALIZED VIEW ${q}${options} AS ${def} WITH DATA` : `CREATE VIEW ${q}${options} AS ${def}`;
    const usesNames = uses.map((u) => tableName(String(u.nspname), String(u.relname)));
    after.push({ kind: 'view', name, tables: usesNames, sql });
    if (r.comment !== null) after.push({ kind: 'comment', name, tables: usesNames, sql: `COMMENT ON ${r.relkind === 'm' ? 'MATERIALIZED VIEW' : 'VIEW'} ${q} IS ${quoteLiteral(String(r.comment))}` });
    for (const c of await rows(client, 'SELECT attname, col_description(attrelid, attnum) AS comment, atthasdef FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum', [r.oid])) {
      if (c.comment !== null) after.push({ kind: 'comment', name, tables: usesNames, sql: `COMMENT ON COLUMN ${q}.${quoteIdent(String(c.attname))} IS ${quoteLiteral(String(c.comment))}` });
      if (c.atthasdef === true) notCarried.push(`the default of column ${String(c.attname)} of view ${name} (ALTER VIEW … SET DEFAULT)`);
    }
    if (r.relkind !== 'm') continue;
    // A materialized view's indexes, once it is built (they go with it when a selection leaves it out).
    for (const i of await rows(client, `SELECT ic.relname, pg_get_indexdef(i.indexrelid) AS def, obj_description(i.indexrelid, 'pg_class') AS comment, n.nspname
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace WHERE i.indrelid = $1 ORDER BY i.indexrelid`, [r.oid])) {
      after.push({ kind: 'index', name: String(i.relname), tables: usesNames, sql: String(i.def) });
      if (i.comment !== null) after.push({ kind: 'comment', name: String(i.relname), tables: usesNames, sql: `COMMENT ON INDEX ${qualified(String(i.nspname), String(i.relname))} IS ${quoteLiteral(String(i.comment))}` });
    }
  }
  await readSequences(client, rels.filter((r) => r.relkind === 'S'), before, after);
  // After the sequences and types: a partitioned table's defaults and columns may use them.
  before.push(...partitioned);
  namePartitionLeaves(tableRels, before, after);
  await noteNotCarried(client, notCarried);
  const schema: DatabaseSchema = {
    engine: 'postgres',
    engineVersion: version,
    tables: [...tables.values()].map((t) => t.table),
    objects: [],
    meta: {},
    postgres: { before, after, notCarried },
    ...(unsupported.length > 0 ? { unsupported } : {}),
  };
  return { schema, tables };
}

/**
 * Enums, domains, composite and range types, in creation (oid) order: each may use an earlier one. What
 * a type needs that is not carried (a range's canonical function, its subtype_diff) is said in `notCarried`.
 */
async function readTypes(client: PgClient, before: PostgresStatement[], after: PostgresStatement[], notCarried: string[]): Promise<void> {
  const types = await rows(client, `SELECT t.oid, n.nspname, t.typname, t.typtype, format_type(t.typbasetype, t.typtypmod) AS base, t.typnotnull, t.typdefault, t.typrelid,
      obj_description(t.oid, 'pg_type') AS comment,
      CASE WHEN t.typtype = 'd' AND t.typcollation <> 0 AND t.typcollation <> (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype)
        THEN (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = t.typcollation) END AS collation
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE ${SYSTEM} AND ${NOT_EXTENSION('pg_type', 't.oid')}
      AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))
    ORDER BY t.oid`);
  for (const t of types) {
    const q = qualified(String(t.nspname), String(t.typname));
    const name = tableName(String(t.nspname), String(t.typname));
    const later: PostgresStatement[] = [];
    let sql: string;
    if (t.typtype === 'e') {
      const labels = await rows(client, 'SELECT enumlabel FROM pg_enum WHERE enumtypid = $1 ORDER BY enumsortorder', [t.oid]);
      sql = `CREATE TYPE ${q} AS ENUM (${labels.map((l) => quoteLiteral(String(l.enumlabel))).join(', ')})`;
    } else if (t.typtype === 'd') {
      const checks = await rows(client, `SELECT conname, pg_get_constraintdef(oid, true) AS def, convalidated FROM pg_constraint WHERE contypid = $1 AND contype = 'c' ORDER BY oid`, [t.oid]);
      // A check added NOT VALID (values stored before it may break it) is added as it was: CREATE DOMAIN takes no NOT VALID.
      const valid = checks.filter((c) => c.convalidated !== false);
      sql = `CREATE DOMAIN ${q} AS ${String(t.base)}${t.collation !== null ? ` COLLATE ${String(t.collation)}` : ''}${t.typdefault !== null ? ` DEFAULT ${String(t.typdefault)}` : ''}${t.typnotnull ? ' NOT NULL' : ''}${valid.map((c) => ` CONSTRAINT ${quoteIdent(String(c.conname))} ${String(c.def)}`).join('')}`;
      for (const c of checks.filter((x) => x.convalidated === false)) later.push({ kind: 'type', name, tables: [], sql: `ALTER DOMAIN ${q} ADD CONSTRAINT ${quoteIdent(String(c.conname))} ${String(c.def)}` });
    } else if (t.typtype === 'r') {
      const r = (await rows(client, `SELECT format_type(r.rngsubtype, NULL) AS subtype, r.rngcanonical::oid <> 0 AS canonical, r.rngsubdiff::oid AS subdiff,
          (SELECT quote_ident(mn.nspname) || '.' || quote_ident(m.typname) FROM pg_type m JOIN pg_namespace mn ON mn.oid = m.typnamespace WHERE m.oid = r.rngmultitypid) AS multirange,
          CASE WHEN NOT oc.opcdefault THEN quote_ident(on_.nspname) || '.' || quote_ident(oc.opcname) END AS opclass,
          CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation THEN (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = r.rngcollation) END AS collation,
          (SELECT p.oid FROM pg_proc p WHERE p.oid = r.rngsubdiff AND p.pronamespace = 'pg_catalog'::regnamespace) IS NOT NULL AS builtin_diff,
          (SELECT quote_ident(pn.nspname) || '.' || quote_ident(p.proname) FROM pg_proc p JOIN pg_namespace pn ON pn.oid = p.pronamespace WHERE p.oid = r.rngsubdiff) AS diff
        FROM pg_range r JOIN pg_type st ON st.oid = r.rngsubtype JOIN pg_opclass oc ON oc.oid = r.rngsubopc JOIN pg_namespace on_ ON on_.oid = oc.opcnamespace WHERE r.rngtypid = $1`, [t.oid]))[0]!;
      if (r.canonical === true) {
        // Its canonical function (C, in the source) is not carried: without it the range would compare differently.
        notCarried.push(`range type ${name} (its canonical function is not carried; columns of it fail on import)`);
        continue;
      }
      const options = [`SUBTYPE = ${String(r.subtype)}`];
      if (r.opclass !== null) options.push(`SUBTYPE_OPCLASS = ${String(r.opclass)}`);
      if (r.collation !== null) options.push(`COLLATION = ${String(r.collation)}`);
      if (Number(r.subdiff) !== 0 && r.builtin_diff === true) options.push(`SUBTYPE_DIFF = ${String(r.diff)}`);
      else if (Number(r.subdiff) !== 0) notCarried.push(`the subtype_diff function of range type ${name} (GiST indexes on it are built without)`);
      if (r.multirange !== null) options.push(`MULTIRANGE_TYPE_NAME = ${String(r.multirange)}`);
      sql = `CREATE TYPE ${q} AS RANGE (${options.join(', ')})`;
    } else {
      const attrs = await rows(client, 'SELECT attname, format_type(atttypid, atttypmod) AS type, col_description(attrelid, attnum) AS comment FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum', [t.typrelid]);
      sql = `CREATE TYPE ${q} AS (${attrs.map((a) => `${quoteIdent(String(a.attname))} ${String(a.type)}`).join(', ')})`;
      for (const a of attrs.filter((x) => x.comment !== null)) after.push({ kind: 'comment', name: String(t.typname), tables: [], sql: `COMMENT ON COLUMN ${q}.${quoteIdent(String(a.attname))} IS ${quoteLiteral(String(a.comment))}` });
    }
    before.push({ kind: 'type', name, tables: [], sql }, ...later);
    if (t.comment !== null) after.push({ kind: 'comment', name: String(t.typname), tables: [], sql: `COMMENT ON ${t.typtype === 'd' ? 'DOMAIN' : 'TYPE'} ${q} IS ${quoteLiteral(String(t.comment))}` });
  }
}

/**
 * Tables, leaf partitions and partitioned tables: columns, CREATE TABLE (into `partitioned` for a
 * partitioned one, which holds no rows), then (for `after`) partitions attached, their constraints,
 * indexes, identity values and comments. Returns the tables that carry rows.
 */
async function readTables(client: PgClient, rels: Row[], partitioned: PostgresStatement[], after: PostgresStatement[]): Promise<Map<string, PostgresTable>> {
  const out = new Map<string, PostgresTable>();
  if (rels.length === 0) return out;
  const oids = rels.map((r) => r.oid);
  // The partition key of a partitioned table, and the parent and bound of a partition.
  const parts = new Map<unknown, Row>();
  for (const p of await rows(client, `SELECT c.oid, pg_get_partkeydef(c.oid) AS key, pg_get_expr(c.relpartbound, c.oid) AS bound, i.inhparent AS parent
      FROM pg_class c LEFT JOIN pg_inherits i ON c.relispartition AND i.inhrelid = c.oid WHERE c.oid = ANY($1) AND (c.relkind = 'p' OR c.relispartition)`, [oids])) {
    parts.set(p.oid, p);
  }
  const inTree = (oid: unknown): boolean => parts.has(oid);
  const depth = (oid: unknown): number => {
    let d = 0;
    for (let p = parts.get(oid); p?.parent != null && d < 100; p = parts.get(p.parent)) d++;
    return d;
  };
  const cols = await rows(client, `SELECT a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull, a.attidentity, a.attgenerated,
      pg_get_expr(d.adbin, d.adrelid) AS def, t.typcollation <> 0 AS collatable, col_description(a.attrelid, a.attnum) AS comment,
      CASE WHEN t.typtype = 'd' THEN coalesce((SELECT CASE WHEN b.typtype = 'd' THEN b.typbasetype ELSE b.oid END FROM pg_type b WHERE b.oid = t.typbasetype), t.typbasetype) ELSE t.oid END AS base,
      CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0 THEN (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END AS collation,
      s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle
    FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      LEFT JOIN pg_depend sd ON a.attidentity <> '' AND sd.refobjid = a.attrelid AND sd.refobjsubid = a.attnum AND sd.classid = 'pg_class'::regclass AND sd.deptype = 'i'
      LEFT JOIN pg_sequence s ON s.seqrelid = sd.objid
    WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum`, [oids]);
  const cons = await rows(client, `SELECT c.conrelid, c.conname, c.contype, c.conkey, c.conparentid <> 0 AS inherited_key, c.coninhcount > 0 AS inherited, pg_get_constraintdef(c.oid, true) AS def, obj_description(c.oid, 'pg_constraint') AS comment,
      (SELECT n.nspname || '.' || r.relname FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace WHERE r.oid = c.confrelid) AS refers, (SELECT n.nspname FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace WHERE r.oid = c.confrelid) AS refschema, (SELECT r.relname FROM pg_class r WHERE r.oid = c.confrelid) AS reftable
    FROM pg_constraint c WHERE c.conrelid = ANY($1) AND c.contype IN ('p', 'u', 'c', 'x', 'f') ORDER BY c.contype = 'f', c.oid`, [oids]);
  const idx = await rows(client, `SELECT i.indrelid, ic.relname, ic.relkind = 'I' AS partitioned, pg_get_indexdef(i.indexrelid) AS def, obj_description(i.indexrelid, 'pg_class') AS comment, n.nspname
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
    WHERE i.indrelid = ANY($1) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x')) ORDER BY i.indexrelid`, [oids]);

  for (const r of rels) {
    const schemaName = String(r.nspname);
    const relname = String(r.relname);
    const name = tableName(schemaName, relname);
    const q = qualified(schemaName, relname);
    const mine = cols.filter((c) => c.attrelid === r.oid);
    const pk = cons.find((c) => c.conrelid === r.oid && c.contype === 'p');
    const pkNums = (pk?.conkey as number[] | undefined) ?? [];
    const columns: ColumnSchema[] = [];
    const kinds: ValueKind[] = [];
    const collatable: boolean[] = [];
    const defs: string[] = [];
    for (const c of mine) {
      const colName = String(c.attname);
      let def = `${quoteIdent(colName)} ${String(c.type)}`;
      if (c.collation !== null) def += ` COLLATE ${String(c.collation)}`;
      // A partition's identity column is its parent's (PostgreSQL 17): created there, attached with it.
      const identity = (c.attidentity === 'a' || c.attidentity === 'd') && !r.relispartition;
      if (c.attgenerated === 's') def += ` GENERATED ALWAYS AS (${String(c.def)}) STORED`;
      else if (identity) {
        def += ` GENERATED ${c.attidentity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY (START WITH ${String(c.seqstart)} INCREMENT BY ${String(c.seqincrement)} MINVALUE ${String(c.seqmin)} MAXVALUE ${String(c.seqmax)} CACHE ${String(c.seqcache)}${c.seqcycle ? ' CYCLE' : ''})`;
      } else if (c.def !== null) def += ` DEFAULT ${String(c.def)}`;
      if (c.attnotnull) def += ' NOT NULL';
      defs.push(def);
      if (c.comment !== null) after.push({ kind: 'comment', name, tables: [name], sql: `COMMENT ON COLUMN ${q}.${quoteIdent(colName)} IS ${quoteLiteral(String(c.comment))}` });
      if (identity) after.push({ kind: 'sequence-value', name, tables: [name], sql: await identityValue(client, q, colName) });
      if (c.attgenerated === 's' || r.relkind === 'p') continue; // recomputed by the target, never carried (a partitioned table carries none)
      const pos = pkNums.indexOf(Number(c.attnum));
      columns.push({ name: colName, type: String(c.type), notNull: c.attnotnull === true, pk: pos + 1 });
      kinds.push(kindOfType(Number(c.base)));
      collatable.push(c.collatable === true);
    }
    // In a partition tree the checks come with the table: a partition must have its parent's before it
    // is attached, and a partitioned table takes no ALTER TABLE ONLY … ADD CHECK.
    if (inTree(r.oid)) {
      for (const c of cons.filter((k) => k.conrelid === r.oid && k.contype === 'c')) defs.push(`CONSTRAINT ${quoteIdent(String(c.conname))} ${String(c.def)}`);
    }
    const persistence = r.relpersistence === 'u' ? 'UNLOGGED ' : '';
    const sql = `CREATE ${persistence}TABLE ${q} (\n  ${defs.join(',\n  ')}\n)`;
    const part = parts.get(r.oid);
    if (part?.parent != null) {
      const parent = rels.find((p) => p.oid === part.parent);
      if (parent) after.push({ kind: 'attach-partition', name, tables: [name, tableName(String(parent.nspname), String(parent.relname))], sql: `ALTER TABLE ONLY ${qualified(String(parent.nspname), String(parent.relname))} ATTACH PARTITION ${q} ${String(part.bound)}` });
    }
    if (r.relkind === 'p') {
      partitioned.push({ kind: 'partitioned-table', name, tables: [name], sql: `${sql} PARTITION BY ${String(part!.key)}` });
      if (r.comment !== null) after.push({ kind: 'comment', name, tables: [name], sql: `COMMENT ON TABLE ${q} IS ${quoteLiteral(String(r.comment))}` });
      continue;
    }
    const primaryKey = pkNums.map((n) => String(mine.find((c) => Number(c.attnum) === n)!.attname));
    const table: TableSchema = { name, sql, columns, primaryKey, withoutRowid: false, postgres: { schema: schemaName, table: relname } };
    out.set(name, { table, oid: Number(r.oid), kinds, collatable });
    if (r.comment !== null) after.push({ kind: 'comment', name, tables: [name], sql: `COMMENT ON TABLE ${q} IS ${quoteLiteral(String(r.comment))}` });
  }
  // The partitions go into the tree before any key or index: those on a partitioned table recurse into them.
  const attaches = after.filter((s) => s.kind === 'attach-partition');
  for (const a of attaches) after.splice(after.indexOf(a), 1);
  after.unshift(...attaches);
  const fkComments = new Map<PostgresStatement, PostgresStatement>();
  const copiedFkComments: PostgresStatement[] = [];
  for (const c of cons) {
    const rel = rels.find((r) => r.oid === c.conrelid)!;
    const name = tableName(String(rel.nspname), String(rel.relname));
    const q = qualified(String(rel.nspname), String(rel.relname));
    const tables = c.contype === 'f' ? [name, tableName(String(c.refschema), String(c.reftable))] : [name];
    // A partition's copy of its parent's key or foreign key is made by the parent's (it recurses); its checks are in its CREATE TABLE.
    // (A foreign key to a partitioned table has such copies on its own table too, one per partition.)
    if (c.inherited_key === true || (inTree(rel.oid) && c.contype === 'c')) {
      // (A partition's copy of a foreign key exists once its parent's key is made: after every foreign key.)
      if (c.comment !== null) (c.contype === 'f' ? copiedFkComments : after).push({ kind: 'comment', name: String(c.conname), tables, sql: `COMMENT ON CONSTRAINT ${quoteIdent(String(c.conname))} ON ${q} IS ${quoteLiteral(String(c.comment))}` });
      continue;
    }
    const only = rel.relkind === 'p' ? '' : 'ONLY ';
    const constraint: PostgresStatement = { kind: c.contype === 'f' ? 'foreign-key' : 'constraint', name: String(c.conname), tables, sql: `ALTER TABLE ${only}${q} ADD CONSTRAINT ${quoteIdent(String(c.conname))} ${String(c.def)}` };
    after.push(constraint);
    if (c.comment === null) continue;
    const comment: PostgresStatement = { kind: 'comment', name: String(c.conname), tables, sql: `COMMENT ON CONSTRAINT ${quoteIdent(String(c.conname))} ON ${q} IS ${quoteLiteral(String(c.comment))}` };
    // A foreign key's comment goes where its key goes (last, below): before it, there is nothing to comment on.
    if (constraint.kind === 'foreign-key') fkComments.set(constraint, comment);
    else after.push(comment);
  }
  // Foreign keys last: after every table's keys and indexes (a foreign key needs the referenced key).
  const fks = after.filter((s) => s.kind === 'foreign-key');
  // A partitioned table's index after its partitions' (deepest level first): CREATE INDEX on it (without
  // ONLY) attaches the partitions' matching indexes, each with its own name, and builds the missing ones.
  const relOf = (i: Row): Row => rels.find((r) => r.oid === i.indrelid)!;
  const ordered = [...idx.filter((i) => i.partitioned !== true), ...idx.filter((i) => i.partitioned === true).sort((a, b) => depth(relOf(b).oid) - depth(relOf(a).oid))];
  for (const i of ordered) {
    const rel = relOf(i);
    const name = tableName(String(rel.nspname), String(rel.relname));
    const def = i.partitioned === true ? String(i.def).replace(/^(CREATE (?:UNIQUE )?INDEX \S+ ON )ONLY /, '$1') : String(i.def);
    after.push({ kind: 'index', name: String(i.relname), tables: [name], sql: def });
    if (i.comment !== null) after.push({ kind: 'comment', name: String(i.relname), tables: [name], sql: `COMMENT ON INDEX ${qualified(String(i.nspname), String(i.relname))} IS ${quoteLiteral(String(i.comment))}` });
  }
  for (const fk of fks) after.splice(after.indexOf(fk), 1);
  for (const fk of fks) {
    after.push(fk);
    const comment = fkComments.get(fk);
    if (comment) after.push(comment);
  }
  after.push(...copiedFkComments);
  return out;
}

/**
 * In every statement, a partitioned table's name stands for the leaves under it: a statement is kept
 * when all the tables it names are selected (select), and a partitioned table is selected with its
 * leaves. A tree whose leaves are not all selected loses its partitioned tables; its selected leaves
 * come back as plain tables.
 */
function namePartitionLeaves(rels: Row[], before: PostgresStatement[], after: PostgresStatement[]): void {
  const name = (r: Row): string => tableName(String(r.nspname), String(r.relname));
  const parentOf = new Map<string, string>();
  for (const s of after) if (s.kind === 'attach-partition') parentOf.set(s.tables[0]!, s.tables[1]!);
  const leaves = new Map<string, string[]>();
  for (const r of rels.filter((x) => x.relkind === 'p')) leaves.set(name(r), []);
  for (const r of rels.filter((x) => x.relkind !== 'p')) {
    for (let p = parentOf.get(name(r)), n = 0; p !== undefined && n < 100; p = parentOf.get(p), n++) leaves.get(p)?.push(name(r));
  }
  for (const s of [...before, ...after]) s.tables = [...new Set(s.tables.flatMap((t) => leaves.get(t) ?? [t]))];
}

/** The statement that sets an identity column's sequence to its current value. */
async function identityValue(client: PgClient, table: string, column: string): Promise<string> {
  const seq = String((await rows(client, 'SELECT pg_get_serial_sequence($1, $2) AS s', [table, column]))[0]!.s);
  const v = (await rows(client, `SELECT last_value::text AS v, is_called FROM ${seq}`))[0]!;
  return `SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence(${quoteLiteral(table)}, ${quoteLiteral(column)}), ${String(v.v)}, ${v.is_called ? 'true' : 'false'})`;
}

/** Sequences other than identity ones: created before the tables (defaults use them), values and owners after. */
async function readSequences(client: PgClient, seqs: Row[], before: PostgresStatement[], after: PostgresStatement[]): Promise<void> {
  for (const r of seqs) {
    const identity = await rows(client, `SELECT 1 FROM pg_depend WHERE classid = 'pg_class'::regclass AND objid = $1 AND deptype = 'i'`, [r.oid]);
    if (identity.length > 0) continue;
    const q = qualified(String(r.nspname), String(r.relname));
    const name = tableName(String(r.nspname), String(r.relname));
    const s = (await rows(client, `SELECT format_type(seqtypid, NULL) AS type, seqstart, seqincrement, seqmin, seqmax, seqcache, seqcycle FROM pg_sequence WHERE seqrelid = $1`, [r.oid]))[0]!;
    before.push({
      kind: 'sequence',
      name,
      tables: [],
      sql: `CREATE SEQUENCE ${q} AS ${String(s.type)} INCREMENT BY ${String(s.seqincrement)} MINVALUE ${String(s.seqmin)} MAXVALUE ${String(s.seqmax)} START WITH ${String(s.seqstart)} CACHE ${String(s.seqcache)}${s.seqcycle ? ' CYCLE' : ' NO CYCLE'}`,
    });
    const v = (await rows(client, `SELECT last_value::text AS v, is_called FROM ${q}`))[0]!;
    after.push({ kind: 'sequence-value', name, tables: [], sql: `SELECT pg_catalog.setval(${quoteLiteral(q)}, ${String(v.v)}, ${v.is_called ? 'true' : 'false'})` });
    const owner = await rows(client, `SELECT n.nspname, c.relname, a.attname FROM pg_depend d JOIN pg_class c ON c.oid = d.refobjid JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid WHERE d.classid = 'pg_class'::regclass AND d.objid = $1 AND d.deptype = 'a' AND d.refclassid = 'pg_class'::regclass`, [r.oid]);
    if (owner.length > 0) {
      const o = owner[0]!;
      const table = tableName(String(o.nspname), String(o.relname));
      after.push({ kind: 'owned-by', name, tables: [table], sql: `ALTER SEQUENCE ${q} OWNED BY ${qualified(String(o.nspname), String(o.relname))}.${quoteIdent(String(o.attname))}` });
    }
    if (r.comment !== null) after.push({ kind: 'comment', name, tables: [], sql: `COMMENT ON SEQUENCE ${q} IS ${quoteLiteral(String(r.comment))}` });
  }
}

/**
 * ` WITH (…)` for a view's or materialized view's options as the server keeps them (`name=value`), or
 * nothing. A value that is not a plain word or number is quoted.
 */
function viewOptions(reloptions: unknown): string {
  if (!Array.isArray(reloptions) || reloptions.length === 0) return '';
  const parts = reloptions.map((o) => {
    const [key, ...rest] = String(o).split('=');
    const value = rest.join('=');
    return `${/^[a-z_]+$/.test(key!) ? key : quoteIdent(key!)}=${/^[A-Za-z0-9_.]+$/.test(value) ? value : quoteLiteral(value)}`;
  });
  return ` WITH (${parts.join(', ')})`;
}

/** What the database has that is not carried yet: said, never dropped silently. */
async function noteNotCarried(client: PgClient, notes: string[]): Promise<void> {
  const count = async (what: string, sql: string): Promise<void> => {
    const n = Number((await rows(client, sql))[0]!.n);
    if (n > 0) notes.push(`${n} ${what}`);
  };
  // (Not the functions a type makes for itself, such as a range type's constructors: they come with it.)
  await count('functions or procedures (CREATE FUNCTION is not carried; defaults, checks or views that call them fail on import)', `SELECT count(*) AS n FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ${SYSTEM} AND ${NOT_EXTENSION('pg_proc', 'p.oid')}
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.refclassid = 'pg_type'::regclass AND d.deptype = 'i')`);
  await count('triggers', `SELECT count(*) AS n FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal AND ${SYSTEM}`);
  await count('row-level security policies', `SELECT count(*) AS n FROM pg_policy`);
  await count('large objects', `SELECT count(*) AS n FROM pg_largeobject_metadata`);
  await count('rules', `SELECT count(*) AS n FROM pg_rewrite w JOIN pg_class c ON c.oid = w.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace WHERE w.rulename <> '_RETURN' AND ${SYSTEM}`);
  await count('publications', `SELECT count(*) AS n FROM pg_publication`);
  await count('collations of its own', `SELECT count(*) AS n FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace WHERE ${SYSTEM} AND ${NOT_EXTENSION('pg_collation', 'co.oid')}`);
  await count('extended statistics objects (CREATE STATISTICS)', `SELECT count(*) AS n FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE ${SYSTEM} AND ${NOT_EXTENSION('pg_statistic_ext', 's.oid')}`);
  // Physical settings: they change how rows are stored, vacuumed, planned or replicated, not what they are.
  const name = `CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END`;
  const table = `JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND ${SYSTEM} AND ${NOT_EXTENSION('pg_class', 'c.oid')}`;
  const listed = async (what: string, sql: string): Promise<void> => {
    const names = (await rows(client, sql)).map((r) => String(r.name));
    if (names.length > 0) notes.push(`${what}: ${names.slice(0, 5).join(', ')}${names.length > 5 ? ` and ${names.length - 5} more` : ''}`);
  };
  await listed('storage parameters of tables (WITH (fillfactor, autovacuum_…, toast.…))', `SELECT DISTINCT ${name} AS name FROM pg_class c ${table}
      AND (c.reloptions IS NOT NULL OR (SELECT t.reloptions FROM pg_class t WHERE t.oid = c.reltoastrelid) IS NOT NULL) ORDER BY 1`);
  await listed('column STORAGE, COMPRESSION, STATISTICS or attribute options (n_distinct) of tables', `SELECT DISTINCT ${name} AS name FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      JOIN pg_type ty ON ty.oid = a.atttypid ${table} AND (a.attstorage <> ty.typstorage OR a.attcompression <> '' OR coalesce(a.attstattarget::int, -1) >= 0 OR a.attoptions IS NOT NULL) ORDER BY 1`);
  await listed('REPLICA IDENTITY settings of tables', `SELECT ${name} AS name FROM pg_class c ${table} AND c.relreplident <> 'd' ORDER BY 1`);
  await listed('CLUSTER ON markers, index storage parameters of keys, or index column statistics', `SELECT DISTINCT ${name} AS name FROM pg_class c JOIN pg_index i ON i.indrelid = c.oid JOIN pg_class ic ON ic.oid = i.indexrelid ${table}
      AND (i.indisclustered OR (ic.reloptions IS NOT NULL AND EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x')))
        OR EXISTS (SELECT 1 FROM pg_attribute ia WHERE ia.attrelid = ic.oid AND coalesce(ia.attstattarget::int, -1) >= 0)) ORDER BY 1`);
  await listed('UNLOGGED on sequences (they come back logged)', `SELECT ${name} AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND c.relpersistence = 'u' AND ${SYSTEM} ORDER BY 1`);
}
