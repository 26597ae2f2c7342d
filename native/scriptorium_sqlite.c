/*
** scriptorium's SQLite extension: encodes and decodes rows in C, inside SQLite, so that values never
** cross into JavaScript one at a time and keep their exact storage class.
**
**   SELECT c0, ..., cN FROM scriptorium_rows(mode, spec, data)   table-valued: the rows of a batch
**   SELECT scriptorium_stage(mode, spec, data); SELECT c0, ..., cN FROM scriptorium_rows_staged
**                                                   the same for rows of up to 2000 values
**   SELECT data, rows FROM scriptorium_encode(sql, mode, keys, maxrows, maxbytes)  table-valued: the rows
**                                                   of a query (or of a table's segments, on background
**                                                   readers), encoded in batches (scriptorium_encode.inc)
**   SELECT scriptorium_load_begin(…), scriptorium_load_piece(bytes) …, scriptorium_load_end()
**                                                   one row too large for one piece, given in pieces: its
**                                                   large values spilled and written with blob I/O
**                                                   (scriptorium_load.inc)
**   scriptorium_every(key, n)                       aggregate: every n-th key (splits a table in runs)
**   SELECT data, rows, chunks, ids FROM scriptorium_chunks(sql, …)  table-valued: a table's rows as
**                                                   ndjson, cut into backup chunks (scriptorium_scan.inc)
**   scriptorium_reader(n)                           opens n (or closes, with 0) background readers that
**                                                   scriptorium_chunks and scriptorium_encode read on,
**                                                   each on a thread of its own
**   scriptorium_packer(codec, level) …              a backup's packs, filled and compressed in C from
**                                                   scriptorium_chunks' batches (scriptorium_pack.inc)
**
** A second entry point, sqlite3_scriptoriumguard_init, installs the guard (an authorizer and limits) on
** connections that run schema SQL from outside: the databases restore and import build
** (scriptorium_guard.inc).
**
** mode is 'ndjson' (JSON arrays), 'json' (JSON objects keyed by column name) or 'sql' (SQL tuples).
** For 'json', keys are the column names, each JSON-encoded, joined by '\n'. For scriptorium_rows,
** spec is the column count (ndjson, sql) or the keys (json). The encodings are documented in
** docs/formats.md; both directions are exact for every SQLite value.
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLS 2000   /* values per row: SQLITE_MAX_COLUMN, the most result columns a query has */
#define ROWS_COLS 1997  /* scriptorium_rows: its columns and 3 hidden arguments fit SQLITE_MAX_COLUMN */
enum { M_NDJSON = 0, M_JSON = 1, M_SQL = 2 };

/* ---------------------------------------------------------------- growable buffer */
typedef struct Buf { char *p; sqlite3_int64 n, cap; int oom; } Buf;

/* The most sqlite3_realloc64 allocates at once (SQLITE_MAX_ALLOCATION_SIZE). */
#define BUF_MAX_ALLOC 2147483391LL
/* Input bytes escaped per reservation: a JSON string reserves 6 bytes per input byte for the worst
** case, which for one value of hundreds of MB would ask for more than SQLite allocates at once. */
#define ESCAPE_WINDOW (1 << 16)

/* buf_reserve()'s slow path: grows the buffer (kept out of line, so that the fast path inlines). */
static int buf_grow(Buf *b, sqlite3_int64 extra) __attribute__((noinline));
static int buf_grow(Buf *b, sqlite3_int64 extra) {
  if (b->oom) return 0;
  if (b->n + extra <= b->cap) return 1;
  sqlite3_int64 cap = b->cap ? b->cap * 2 : 65536;
  while (cap < b->n + extra) cap *= 2;
  /* SQLite allocates at most BUF_MAX_ALLOC at once: doubling past it would fail a buffer that fits */
  if (cap > BUF_MAX_ALLOC) cap = b->n + extra > BUF_MAX_ALLOC ? b->n + extra : BUF_MAX_ALLOC;
  char *p = sqlite3_realloc64(b->p, (sqlite3_uint64)cap);
  if (!p) { b->oom = 1; return 0; }
  b->p = p; b->cap = cap;
  return 1;
}
/* Room for `extra` more bytes (0 when out of memory, with b->oom set). Called for every byte written. */
static inline int buf_reserve(Buf *b, sqlite3_int64 extra) {
  if (__builtin_expect(!b->oom && b->n + extra <= b->cap, 1)) return 1;
  return buf_grow(b, extra);
}
static void buf_put(Buf *b, const void *s, sqlite3_int64 n) {
  if (n > 0 && buf_reserve(b, n)) { memcpy(b->p + b->n, s, (size_t)n); b->n += n; }
}
static inline void buf_ch(Buf *b, char c) { if (buf_reserve(b, 1)) b->p[b->n++] = c; }
static void buf_str(Buf *b, const char *s) { buf_put(b, s, (sqlite3_int64)strlen(s)); }

static const char HEX_UP[] = "0123456789ABCDEF";
static const char HEX_LO[] = "0123456789abcdef";

static void put_hex(Buf *b, const unsigned char *s, int n) {
  if (!buf_reserve(b, 2 * (sqlite3_int64)n)) return;
  char *o = b->p + b->n;
  for (int i = 0; i < n; i++) { o[2 * i] = HEX_UP[s[i] >> 4]; o[2 * i + 1] = HEX_UP[s[i] & 15]; }
  b->n += 2 * (sqlite3_int64)n;
}

/* A REAL: %!.17g round-trips every double and always shows a '.' or an exponent. */
static void put_real(Buf *b, double r, int json) {
  char tmp[64];
  if (isinf(r)) { buf_str(b, json ? (r > 0 ? "9.0e+999" : "-9.0e+999") : (r > 0 ? "1e999" : "-1e999")); return; }
  if (r == 0.0 && signbit(r)) { buf_str(b, "-0.0"); return; }
  sqlite3_snprintf(sizeof tmp, tmp, "%!.17g", r);
  buf_str(b, tmp);
}

static void put_int(Buf *b, sqlite3_int64 v) {
  char tmp[24];
  int i = 24;
  sqlite3_uint64 u = v < 0 ? 0 - (sqlite3_uint64)v : (sqlite3_uint64)v;
  do { tmp[--i] = (char)('0' + u % 10); u /= 10; } while (u);
  if (v < 0) tmp[--i] = '-';
  buf_put(b, tmp + i, 24 - i);
}

/* Bytes that a JSON string must escape: control characters, '"' and '\\'. */
static int json_escaped(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }

/* Whether any of the 8 bytes in x is a control character, '"' or '\\' (exact as a yes/no answer). */
static int json_any_escaped(uint64_t x) {
  const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  uint64_t q = x ^ (ones * '"'), s = x ^ (ones * '\\');
  return (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((s - ones) & ~s)) & highs ? 1 : 0;
}

/* Whether any of the 8 bytes in x is NUL, '\'' or '\r' (exact as a yes/no answer). */
static int sql_any_special(uint64_t x) {
  const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  uint64_t q = x ^ (ones * '\''), r = x ^ (ones * '\r');
  return (((x - ones) & ~x) | ((q - ones) & ~q) | ((r - ones) & ~r)) & highs ? 1 : 0;
}

/*
** Copies s[i, n) to *o eight bytes at a time up to the first word holding a byte that a JSON string
** (sql = 0) or a SQL literal (sql = 1) must treat specially; returns where it stopped.
*/
static inline int copy_plain(char **o, const unsigned char *s, int i, int n, int sql) {
  char *out = *o;
  while (i + 8 <= n) {
    uint64_t x;
    memcpy(&x, s + i, 8);
    if (sql ? sql_any_special(x) : json_any_escaped(x)) break;
    memcpy(out, s + i, 8);
    out += 8; i += 8;
  }
  *o = out;
  return i;
}

/* A JSON string: copied eight bytes at a time where nothing needs escaping; reserved window by window. */
static void put_json_body(Buf *b, const unsigned char *s, int n) {
  int i = 0;
  while (i < n) {
    int end = n - i > ESCAPE_WINDOW ? i + ESCAPE_WINDOW : n;
    if (!buf_reserve(b, 6 * (sqlite3_int64)(end - i) + 2)) return;
    char *o = b->p + b->n;
    while (i < end) {
      i = copy_plain(&o, s, i, end, 0);
      int stop = i + 8 < end ? i + 8 : end;
      for (; i < stop; i++) {
        unsigned char c = s[i];
        if (!json_escaped(c)) { *o++ = (char)c; continue; }
        *o++ = '\\';
        switch (c) {
          case '"': *o++ = '"'; break;
          case '\\': *o++ = '\\'; break;
          case '\n': *o++ = 'n'; break;
          case '\r': *o++ = 'r'; break;
          case '\t': *o++ = 't'; break;
          case '\b': *o++ = 'b'; break;
          case '\f': *o++ = 'f'; break;
          default: *o++ = 'u'; *o++ = '0'; *o++ = '0'; *o++ = HEX_LO[c >> 4]; *o++ = HEX_LO[c & 15];
        }
      }
    }
    b->n = o - b->p;
  }
}

/* A JSON string (the body reserves 2 bytes of slack in every window: the quotes never grow it for small text). */
static void put_json_text(Buf *b, const unsigned char *s, int n) {
  buf_ch(b, '"');
  put_json_body(b, s, n);
  buf_ch(b, '"');
}

/*
** A SQL string literal, quotes doubled, copied eight bytes at a time where there is nothing to double.
** Text with NUL (which cannot stand in SQL text) or CR LF (which the sqlite3 shell reads as LF) is
** spelled as its bytes instead: CAST(X'...' AS TEXT).
*/
static void put_sql_string(Buf *b, const unsigned char *s, int n) {
  if (!buf_reserve(b, 2 * (sqlite3_int64)n + 2)) return;
  sqlite3_int64 start = b->n;
  char *o = b->p + b->n;
  *o++ = '\'';
  int i = 0;
  while (i < n) {
    i = copy_plain(&o, s, i, n, 1);
    int stop = i + 8 < n ? i + 8 : n;
    for (; i < stop; i++) {
      unsigned char c = s[i];
      if (c == 0 || (c == '\r' && i + 1 < n && s[i + 1] == '\n')) {
        b->n = start;
        buf_str(b, "CAST(X'"); put_hex(b, s, n); buf_str(b, "' AS TEXT)");
        return;
      }
      *o++ = (char)c;
      if (c == '\'') *o++ = '\'';
    }
  }
  *o++ = '\'';
  b->n = o - b->p;
}

/* A TEXT value's UTF-8 bytes. sqlite3_value_text() copies a value read from a page to add a NUL
** terminator; a UTF-8 value's bytes are the same without it. */
static const unsigned char *text_bytes(sqlite3_value *v, int *n) {
  const unsigned char *s = sqlite3_value_encoding(v) == SQLITE_UTF8 ? sqlite3_value_blob(v) : sqlite3_value_text(v);
  *n = sqlite3_value_bytes(v);
  return s ? s : (const unsigned char *)"";
}

static void put_value(Buf *b, sqlite3_value *v, int mode) {
  int json = mode != M_SQL;
  switch (sqlite3_value_type(v)) {
    case SQLITE_NULL: buf_str(b, json ? "null" : "NULL"); break;
    case SQLITE_INTEGER: put_int(b, sqlite3_value_int64(v)); break;
    case SQLITE_FLOAT: put_real(b, sqlite3_value_double(v), json); break;
    case SQLITE_TEXT: {
      int n;
      const unsigned char *s = text_bytes(v, &n);
      if (json) put_json_text(b, s, n); else put_sql_string(b, s, n);
      break;
    }
    default: {
      const unsigned char *s = sqlite3_value_blob(v);
      int n = sqlite3_value_bytes(v);
      if (json) { buf_str(b, "{\"$blob\":\""); put_hex(b, s, n); buf_str(b, "\"}"); }
      else { buf_str(b, "X'"); put_hex(b, s, n); buf_ch(b, '\''); }
    }
  }
}

static int parse_mode(sqlite3_value *v) {
  const char *m = (const char *)sqlite3_value_text(v);
  if (!m) return -1;
  if (strcmp(m, "ndjson") == 0) return M_NDJSON;
  if (strcmp(m, "json") == 0) return M_JSON;
  if (strcmp(m, "sql") == 0) return M_SQL;
  return -1;
}

/* ---------------------------------------------------------------- rows */
/* The column names of 'json' mode, each JSON-encoded: given joined by '\n', split once. */
typedef struct Keys { int n; const char **k; int *len; char *text; } Keys;

static void keys_free(Keys *k) {
  sqlite3_free(k->text); sqlite3_free(k->k); sqlite3_free(k->len);
  memset(k, 0, sizeof(*k));
}

static int keys_parse(Keys *k, sqlite3_value *v) {
  const char *t = (const char *)sqlite3_value_text(v);
  int n = sqlite3_value_bytes(v);
  if (!t) return 0;
  k->text = sqlite3_malloc(n + 1);
  if (!k->text) return 0;
  memcpy(k->text, t, (size_t)n); k->text[n] = 0;
  int count = 1;
  for (int i = 0; i < n; i++) if (k->text[i] == '\n') count++;
  k->k = sqlite3_malloc(count * (int)sizeof(char *));
  k->len = sqlite3_malloc(count * (int)sizeof(int));
  if (!k->k || !k->len) return 0;
  char *p = k->text;
  for (int i = 0; i < count; i++) {
    char *nl = strchr(p, '\n');
    k->k[i] = p;
    k->len[i] = nl ? (int)(nl - p) : (int)strlen(p);
    if (nl) p = nl + 1;
  }
  k->n = count;
  return 1;
}

/* What separates two rows of a batch (ROW_SEPARATOR in src/core/encoding.ts). */
static const char *row_separator(int mode) { return mode == M_NDJSON ? "\n" : ",\n"; }

/* Rows are encoded by put_row_from() (native/scriptorium_big.inc), which also reads large values in pieces. */

/* ---------------------------------------------------------------- scriptorium_every() */
/* scriptorium_every(key, n): the key of every n-th row (the 1st, the (n+1)-th, ...) as 8-byte
** little-endian integers in one blob. Over a rowid in order, it splits a table into runs of n rows. */
typedef struct Every { Buf out; sqlite3_int64 seen, n; } Every;

static void every_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  Every *e = sqlite3_aggregate_context(ctx, sizeof(Every));
  if (!e) { sqlite3_result_error_nomem(ctx); return; }
  if (e->seen == 0) e->n = sqlite3_value_int64(argv[1]);
  if (e->n < 1) { sqlite3_result_error(ctx, "scriptorium_every: n must be positive", -1); return; }
  if (e->seen++ % e->n != 0) return;
  sqlite3_uint64 v = (sqlite3_uint64)sqlite3_value_int64(argv[0]);
  unsigned char le[8];
  for (int i = 0; i < 8; i++) le[i] = (unsigned char)(v >> (8 * i));
  buf_put(&e->out, le, 8);
}

static void every_final(sqlite3_context *ctx) {
  Every *e = sqlite3_aggregate_context(ctx, 0);
  if (!e || e->out.n == 0) { if (e) sqlite3_free(e->out.p); sqlite3_result_zeroblob(ctx, 0); return; }
  if (e->out.oom) { sqlite3_free(e->out.p); sqlite3_result_error_nomem(ctx); return; }
  sqlite3_result_blob64(ctx, e->out.p, (sqlite3_uint64)e->out.n, sqlite3_free);
}

#include "scriptorium_big.inc"
#include "scriptorium_rows.inc"
#include "scriptorium_load.inc"
#include "scriptorium_scan.inc"
#include "scriptorium_seal.inc"
#include "scriptorium_pack.inc"
#include "scriptorium_encode.inc"
#include "scriptorium_guard.inc"

#ifdef _WIN32
__declspec(dllexport)
#else
__attribute__((visibility("default")))  /* with the guard's, the only symbols exported (the build hides the rest, zstd's too) */
#endif
int sqlite3_scriptorium_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi) {
  SQLITE_EXTENSION_INIT2(pApi);
  (void)pzErrMsg;
  int rc = sqlite3_create_function(db, "scriptorium_every", 2, SQLITE_UTF8 | SQLITE_INNOCUOUS, 0, 0, every_step, every_final);
  if (rc == SQLITE_OK) rc = sqlite3_create_module(db, "scriptorium_rows", &rows_module, 0);
  RowsStage *stage = rc == SQLITE_OK ? sqlite3_malloc(sizeof(RowsStage)) : 0;
  if (rc == SQLITE_OK && !stage) rc = SQLITE_NOMEM;
  if (rc == SQLITE_OK) {
    memset(stage, 0, sizeof(*stage));
    /* The module owns the stage (freed when the connection closes); the function only shares it. */
    rc = sqlite3_create_module_v2(db, "scriptorium_rows_staged", &rows_module, stage, stage_free);
  }
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "scriptorium_stage", 3, SQLITE_UTF8 | SQLITE_DIRECTONLY, stage, stage_func, 0, 0);
  if (rc == SQLITE_OK) rc = big_register(db);
  if (rc == SQLITE_OK) rc = load_register(db);
  ScanShared *shared = rc == SQLITE_OK ? sqlite3_malloc(sizeof(ScanShared)) : 0;
  if (rc == SQLITE_OK && !shared) rc = SQLITE_NOMEM;
  if (rc == SQLITE_OK) {
    memset(shared, 0, sizeof(*shared));
    shared->db = db;
    /* the module owns shared: SQLite frees it (closing the reader) when the connection closes */
    rc = sqlite3_create_module_v2(db, "scriptorium_chunks", &scan_module, shared, scan_shared_free);
  }
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "scriptorium_reader", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, shared, reader_func, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_module(db, "scriptorium_encode", &encode_module, shared);
  if (rc == SQLITE_OK) rc = pack_register(db);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "scriptorium_sha256", 1, SQLITE_UTF8 | SQLITE_INNOCUOUS | SQLITE_DETERMINISTIC, 0, sha256_func, 0, 0);
  return rc;
}
