/*
** scriptorium's SQLite extension: encodes and decodes rows in C, inside SQLite, so that values never
** cross into JavaScript one at a time and keep their exact storage class.
**
**   scriptorium_batch(mode, keys, v1, ..., vn)      aggregate: the rows of a batch, encoded and joined
**   SELECT c0, ..., cN FROM scriptorium_rows(mode, spec, data)   table-valued: the rows of a batch
**   SELECT data, rows, chunks, ids FROM scriptorium_chunks(sql, …)  table-valued: a table's rows as
**                                                   ndjson, cut into backup chunks (scriptorium_scan.inc)
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

#define MAX_COLS 1000
enum { M_NDJSON = 0, M_JSON = 1, M_SQL = 2 };

/* ---------------------------------------------------------------- growable buffer */
typedef struct Buf { char *p; sqlite3_int64 n, cap; int oom; } Buf;

static int buf_reserve(Buf *b, sqlite3_int64 extra) {
  if (b->oom) return 0;
  if (b->n + extra <= b->cap) return 1;
  sqlite3_int64 cap = b->cap ? b->cap * 2 : 65536;
  while (cap < b->n + extra) cap *= 2;
  char *p = sqlite3_realloc64(b->p, (sqlite3_uint64)cap);
  if (!p) { b->oom = 1; return 0; }
  b->p = p; b->cap = cap;
  return 1;
}
static void buf_put(Buf *b, const void *s, sqlite3_int64 n) {
  if (n > 0 && buf_reserve(b, n)) { memcpy(b->p + b->n, s, (size_t)n); b->n += n; }
}
static void buf_ch(Buf *b, char c) { if (buf_reserve(b, 1)) b->p[b->n++] = c; }
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

static void put_json_string(Buf *b, const unsigned char *s, int n) {
  buf_ch(b, '"');
  int start = 0;
  for (int i = 0; i < n; i++) {
    unsigned char c = s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    buf_put(b, s + start, i - start);
    start = i + 1;
    switch (c) {
      case '"': buf_str(b, "\\\""); break;
      case '\\': buf_str(b, "\\\\"); break;
      case '\n': buf_str(b, "\\n"); break;
      case '\r': buf_str(b, "\\r"); break;
      case '\t': buf_str(b, "\\t"); break;
      case '\b': buf_str(b, "\\b"); break;
      case '\f': buf_str(b, "\\f"); break;
      default: {
        char u[7] = {'\\', 'u', '0', '0', HEX_LO[c >> 4], HEX_LO[c & 15], 0};
        buf_str(b, u);
      }
    }
  }
  buf_put(b, s + start, n - start);
  buf_ch(b, '"');
}

/* The sqlite3 shell reads CR LF inside a string literal as LF: such text is spelled as bytes too. */
static int has_crlf(const unsigned char *s, int n) {
  const unsigned char *p = s, *end = s + n;
  while (p < end && (p = memchr(p, '\r', (size_t)(end - p))) != 0) {
    if (p + 1 < end && p[1] == '\n') return 1;
    p++;
  }
  return 0;
}

static void put_sql_string(Buf *b, const unsigned char *s, int n) {
  if (n > 0 && (memchr(s, 0, (size_t)n) || has_crlf(s, n))) { /* NUL cannot stand in SQL text: spell the bytes */
    buf_str(b, "CAST(X'"); put_hex(b, s, n); buf_str(b, "' AS TEXT)");
    return;
  }
  buf_ch(b, '\'');
  int start = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] != '\'') continue;
    buf_put(b, s + start, i + 1 - start);
    buf_ch(b, '\'');
    start = i + 1;
  }
  buf_put(b, s + start, n - start);
  buf_ch(b, '\'');
}

static void put_value(Buf *b, sqlite3_value *v, int mode) {
  int json = mode != M_SQL;
  switch (sqlite3_value_type(v)) {
    case SQLITE_NULL: buf_str(b, json ? "null" : "NULL"); break;
    case SQLITE_INTEGER: put_int(b, sqlite3_value_int64(v)); break;
    case SQLITE_FLOAT: put_real(b, sqlite3_value_double(v), json); break;
    case SQLITE_TEXT: {
      const unsigned char *s = sqlite3_value_text(v);
      int n = sqlite3_value_bytes(v);
      if (json) put_json_string(b, s, n); else put_sql_string(b, s, n);
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

/* ---------------------------------------------------------------- scriptorium_batch() */
typedef struct Batch { Buf out; int mode; sqlite3_int64 rows; int nkeys; const char **keys; int *keylen; char *keytext; } Batch;

/* Splits the '\n'-joined JSON-encoded names once per batch. */
static int batch_keys(Batch *a, sqlite3_value *v) {
  const char *t = (const char *)sqlite3_value_text(v);
  int n = sqlite3_value_bytes(v);
  if (!t) return 0;
  a->keytext = sqlite3_malloc(n + 1);
  if (!a->keytext) return 0;
  memcpy(a->keytext, t, (size_t)n); a->keytext[n] = 0;
  int count = 1;
  for (int i = 0; i < n; i++) if (a->keytext[i] == '\n') count++;
  a->keys = sqlite3_malloc(count * (int)sizeof(char *));
  a->keylen = sqlite3_malloc(count * (int)sizeof(int));
  if (!a->keys || !a->keylen) return 0;
  char *p = a->keytext;
  for (int k = 0; k < count; k++) {
    char *nl = strchr(p, '\n');
    a->keys[k] = p;
    a->keylen[k] = nl ? (int)(nl - p) : (int)strlen(p);
    if (nl) p = nl + 1;
  }
  a->nkeys = count;
  return 1;
}

static void batch_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  Batch *a = sqlite3_aggregate_context(ctx, sizeof(Batch));
  if (!a) { sqlite3_result_error_nomem(ctx); return; }
  if (a->rows == 0) {
    a->mode = parse_mode(argv[0]);
    if (a->mode < 0) { sqlite3_result_error(ctx, "scriptorium_batch: mode must be ndjson, json or sql", -1); return; }
    if (a->mode == M_JSON && !batch_keys(a, argv[1])) { sqlite3_result_error(ctx, "scriptorium_batch: json needs keys", -1); return; }
  } else {
    buf_str(&a->out, a->mode == M_NDJSON ? "\n" : ",\n");
  }
  int n = argc - 2;
  if (a->mode == M_JSON && n != a->nkeys) { sqlite3_result_error(ctx, "scriptorium_batch: key count differs from value count", -1); return; }
  buf_ch(&a->out, a->mode == M_NDJSON ? '[' : a->mode == M_JSON ? '{' : '(');
  for (int i = 0; i < n; i++) {
    if (i) buf_ch(&a->out, ',');
    if (a->mode == M_JSON) { buf_put(&a->out, a->keys[i], a->keylen[i]); buf_ch(&a->out, ':'); }
    put_value(&a->out, argv[i + 2], a->mode);
  }
  buf_ch(&a->out, a->mode == M_NDJSON ? ']' : a->mode == M_JSON ? '}' : ')');
  a->rows++;
}

static void batch_final(sqlite3_context *ctx) {
  Batch *a = sqlite3_aggregate_context(ctx, 0);
  if (!a || a->rows == 0) { sqlite3_result_null(ctx); if (a) sqlite3_free(a->out.p); return; }
  sqlite3_free(a->keytext); sqlite3_free(a->keys); sqlite3_free(a->keylen);
  if (a->out.oom) { sqlite3_free(a->out.p); sqlite3_result_error_nomem(ctx); return; }
  sqlite3_result_blob64(ctx, a->out.p, (sqlite3_uint64)a->out.n, sqlite3_free);
}

#include "scriptorium_rows.inc"
#include "scriptorium_scan.inc"

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_scriptorium_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi) {
  SQLITE_EXTENSION_INIT2(pApi);
  (void)pzErrMsg;
  int rc = sqlite3_create_function(db, "scriptorium_batch", -1, SQLITE_UTF8 | SQLITE_INNOCUOUS, 0, 0, batch_step, batch_final);
  if (rc == SQLITE_OK) rc = sqlite3_create_module(db, "scriptorium_rows", &rows_module, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_module(db, "scriptorium_chunks", &scan_module, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "scriptorium_sha256", 1, SQLITE_UTF8 | SQLITE_INNOCUOUS | SQLITE_DETERMINISTIC, 0, sha256_func, 0, 0);
  return rc;
}
