/** The fidelity suite's source database: one table per case of edge values, and a schema of every carried kind. */
import { runSql } from './pg-helpers.js';

/** name → [column type, SQL of the values (one per row)] */
export const CASES: Record<string, [string, string[]]> = {
  int2_limits: ['smallint', ['-32768', '32767', '0']],
  int4_limits: ['integer', ['-2147483648', '2147483647']],
  int8_extremes: ['bigint', ['-9223372036854775808', '9223372036854775807', '-1']],
  numeric_many_digits: ['numeric', ["'12345678901234567890123456789012345678901234567890.123456789012345678901234567890'", "'NaN'", "'-0.000000000000000000000000000001'", "'1.50'"]],
  numeric_scaled: ['numeric(30,10)', ["'12345678901234567890.0123456789'", "'-0.5'"]],
  float8_specials: ['double precision', ["'-0'", "'NaN'", "'Infinity'", "'-Infinity'", '1.7976931348623157e308', '5e-324', '0.1', '1e21', '0.30000000000000004']],
  float4_specials: ['real', ["'-0'", "'NaN'", "'Infinity'", "'-Infinity'", '3.4028235e38', '1.4e-45', '0.1']],
  boolean_values: ['boolean', ['true', 'false']],
  unicode_text: ['text', ["'ภาษาไทย, Ελληνικά, 中文, emoji 😀 and 👩‍👩‍👧'", "U&'\\FFFF \\+10FFFF \\+01F600'", "'tab\tnewline\ncr\rbackslash\\\\ quote'' dq\"'", "(SELECT string_agg(chr(c), '') FROM generate_series(1, 127) c)", "''"]],
  varchar_and_char: ['varchar(12)', ["'short'", "'twelve chars'"]],
  bytea_all_bytes: ['bytea', ["(SELECT string_agg(set_byte('\\x00'::bytea, 0, b), ''::bytea) FROM generate_series(0, 255) b)", "'\\x'", "'\\x5c30'"]],
  timestamptz_zones: ['timestamptz', ["'2024-03-31 02:30:00 Europe/Berlin'", "'2024-10-27 02:30:00+02'", "'infinity'", "'-infinity'", "'4713-01-01 00:00:00+00 BC'", "'2000-01-01 00:00:00.123456+05:45'"]],
  timestamp_and_date: ['timestamp', ["'1999-12-31 23:59:59.999999'", "'infinity'", "'0001-01-01 00:00:00 BC'"]],
  date_values: ['date', ["'2024-02-29'", "'-infinity'", "'5874897-12-31'"]],
  time_values: ['timetz', ["'24:00:00+00'", "'12:34:56.789-03:30'"]],
  interval_values: ['interval', ["'1 year 2 mons 3 days 04:05:06.789'", "'-1 day +02:00'", "'178000000 years'"]],
  uuid_values: ['uuid', ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'00000000-0000-0000-0000-000000000000'"]],
  json_kept_as_written: ['json', ['\'{"a": 1,  "a": 2, "big": 12345678901234567890}\'', "'[1, 2.50, null]'", `'"text"'`]],
  jsonb_values: ['jsonb', ['\'{"b": [1, 2.50, null], "a": "x\\u00e9", "n": 1e400}\'', "'[]'"]],
  int_arrays: ['integer[]', ["'{1,NULL,3}'", "'{}'", "'{{1,2},{3,4}}'", "'[0:1]={7,8}'"]],
  text_arrays: ['text[]', [`'{"a b","c\\"d",NULL,"NULL","",é}'`, "ARRAY[NULL, NULL]::text[]"]],
  inet_values: ['inet', ["'192.168.0.1/24'", "'::1'"]],
};

export async function buildSource(url: string): Promise<void> {
  const statements = [
    'CREATE SCHEMA sales',
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'very ''happy''')",
    'CREATE DOMAIN posint AS integer CONSTRAINT positive CHECK (VALUE > 0)',
    'CREATE TYPE sales.pair AS (a integer, b text)',
    'CREATE SEQUENCE sales.order_no START 1000 INCREMENT 5',
  ];
  for (const [name, [type, values]] of Object.entries(CASES)) {
    statements.push(`CREATE TABLE ${name} (id integer PRIMARY KEY, v ${type})`);
    values.forEach((v, i) => statements.push(`INSERT INTO ${name} VALUES (${i + 1}, ${v})`));
    statements.push(`INSERT INTO ${name} VALUES (${values.length + 1}, NULL)`);
  }
  statements.push(
    `CREATE TABLE typed (id bigint GENERATED ALWAYS AS IDENTITY (START WITH 10 INCREMENT BY 10) PRIMARY KEY, m mood NOT NULL DEFAULT 'ok', p posint, pr sales.pair,
       twice bigint GENERATED ALWAYS AS (p * 2) STORED, note text COLLATE "C" CHECK (length(note) < 100))`,
    "INSERT INTO typed (m, p, pr, note) VALUES ('happy', 21, ROW(1, 'x y'), 'first'), ('very ''happy''', 1, NULL, NULL), ('sad', NULL, ROW(NULL, NULL), 'third')",
    `CREATE TABLE sales.orders (no integer DEFAULT nextval('sales.order_no') PRIMARY KEY, typed_id bigint REFERENCES typed (id) ON DELETE CASCADE, note text, UNIQUE (note))`,
    'ALTER SEQUENCE sales.order_no OWNED BY sales.orders.no',
    "INSERT INTO sales.orders (typed_id, note) VALUES (10, 'a'), (20, 'b'), (20, NULL)",
    'CREATE INDEX orders_partial ON sales.orders (note) WHERE note IS NOT NULL',
    'CREATE INDEX typed_expression ON typed (lower(note), (p + 1))',
    'CREATE VIEW sales.order_notes AS SELECT no, upper(note) AS shout FROM sales.orders WHERE note IS NOT NULL',
    'CREATE MATERIALIZED VIEW typed_count AS SELECT m, count(*) AS n FROM typed GROUP BY m',
    `CREATE TABLE "Ünïcode ""quoted"" name" ("Spalte Ä" text, "x" serial)`,
    `INSERT INTO "Ünïcode ""quoted"" name" ("Spalte Ä") VALUES ('ü'), ('ü'), (NULL)`,
    "COMMENT ON TABLE typed IS 'every kind of column'",
    "COMMENT ON COLUMN typed.note IS 'a note, with ''quotes'''",
    "COMMENT ON SCHEMA sales IS 'the sales schema'",
    // A foreign key's comment (it is made after every key: its comment must come after it), a key's, an index's.
    "COMMENT ON CONSTRAINT orders_typed_id_fkey ON sales.orders IS 'the typed row it belongs to'",
    "COMMENT ON CONSTRAINT orders_pkey ON sales.orders IS 'by number'",
    "COMMENT ON INDEX sales.orders_partial IS 'notes only'",
    // Types: a range type of its own (with its multirange), a domain's collation and a check added NOT
    // VALID, a composite type's attribute comment; views' options, column comments, a materialized view's index.
    'CREATE TYPE floatrange AS RANGE (subtype = float8, subtype_diff = float8mi)',
    "CREATE TABLE ranged (id integer PRIMARY KEY, r floatrange, m floatmultirange)",
    "INSERT INTO ranged VALUES (1, '[1.5,2)', '{[1,2), [3,4]}'), (2, 'empty', '{}'), (3, NULL, NULL)",
    `CREATE DOMAIN ctext AS text COLLATE "C" DEFAULT 'dd'`,
    'CREATE DOMAIN laterpos AS integer',
    'ALTER DOMAIN laterpos ADD CONSTRAINT laterpos_check CHECK (VALUE > 0) NOT VALID',
    'CREATE TABLE domained (id integer PRIMARY KEY, c ctext, l laterpos)',
    "INSERT INTO domained VALUES (1, 'b', 1), (2, 'a', NULL)",
    "COMMENT ON COLUMN sales.pair.b IS 'the second'",
    'CREATE VIEW checked AS SELECT id, note FROM typed WHERE id < 1000 WITH CASCADED CHECK OPTION',
    'CREATE VIEW barrier WITH (security_barrier) AS SELECT id, m FROM typed',
    "COMMENT ON COLUMN barrier.m IS 'the mood'",
    'CREATE INDEX typed_count_m ON typed_count (m)',
    "COMMENT ON COLUMN typed_count.n IS 'how many'",
    "SELECT setval('sales.order_no', 5000)",
  );
  for (const sql of statements) await runSql(url, sql);
}

