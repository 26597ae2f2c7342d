/**
 * The errors scriptorium throws. Every one carries a stable `code` (for scripts and tests), a message
 * that names the operation and the object, and a `hint` that tells the user what to do next.
 *
 * `TypeError` is still used for programming mistakes in library calls (wrong argument types).
 */

/** Stable error codes. Scripts may match on these; never rename one. */
export type ErrorCode =
  | 'E_USAGE'
  | 'E_NOT_FOUND'
  | 'E_NOT_SQLITE'
  | 'E_UNKNOWN_FORMAT'
  | 'E_UNKNOWN_COMPRESSION'
  | 'E_TRUNCATED'
  | 'E_CORRUPT'
  | 'E_DIGEST_MISMATCH'
  | 'E_AUTH'
  | 'E_UNSUPPORTED_SQL'
  | 'E_TARGET_EXISTS'
  | 'E_TARGET_BUSY'
  | 'E_TARGET_CHANGED'
  | 'E_LOSSY'
  | 'E_VERSION'
  | 'E_NOT_REPOSITORY'
  | 'E_LOCKED'
  | 'E_IO'
  | 'E_NO_SPACE'
  | 'E_UNSUPPORTED'
  | 'E_INTERNAL'
  | (string & {});

export interface ErrorOptions {
  hint?: string;
  cause?: unknown;
}

/** Base class of every error scriptorium raises on purpose. */
export class ScriptoriumError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
  }

  toJSON(): { code: string; message: string; hint?: string } {
    return { code: this.code, message: this.message, ...(this.hint ? { hint: this.hint } : {}) };
  }
}

/** The user asked for something that cannot be done as asked (bad flag, unknown format, ...). */
export class UsageError extends ScriptoriumError {
  constructor(message: string, options: ErrorOptions & { code?: ErrorCode } = {}) {
    super(options.code ?? 'E_USAGE', message, options);
  }
}

/** A file, table, snapshot or repository that was named does not exist. */
export class NotFoundError extends ScriptoriumError {
  constructor(message: string, options: ErrorOptions & { code?: ErrorCode } = {}) {
    super(options.code ?? 'E_NOT_FOUND', message, options);
  }
}

/** Data is damaged: truncated, corrupted, or its digest does not match. */
export class IntegrityError extends ScriptoriumError {
  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(code, message, options);
  }
}

/**
 * Encrypted data did not authenticate: a wrong passphrase or key, or bytes that were changed (an AEAD
 * tag or a MAC did not match). Nothing that failed is used.
 */
export class AuthError extends ScriptoriumError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('E_AUTH', message, options);
  }
}

/** True for errors that scriptorium raised on purpose (as opposed to bugs). */
export function isScriptoriumError(err: unknown): err is ScriptoriumError {
  return err instanceof ScriptoriumError;
}

/**
 * The error a SQLite failure means to a user (a better-sqlite3 `SqliteError`, whose `code` is SQLite's,
 * such as SQLITE_CORRUPT), or undefined for anything else. Without it the CLI would call a damaged
 * database "a bug".
 */
export function fromSqliteError(err: unknown): ScriptoriumError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return undefined;
  const message = `sqlite: ${(err as Error).message} (${code})`;
  switch (code.split('_').slice(0, 2).join('_')) { // SQLITE_IOERR_READ and the like: their primary code
    case 'SQLITE_CORRUPT':
    case 'SQLITE_NOTADB':
      return new IntegrityError('E_CORRUPT', message, {
        hint: 'The database file is damaged. Check it with `sqlite3 <db> "PRAGMA integrity_check"`; restore it from a backup, or recover what can be read with the sqlite3 shell\'s `.recover`.',
        cause: err,
      });
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return new ScriptoriumError('E_LOCKED', message, { hint: 'Another process holds a lock on the database for longer than we wait; try again when it is done.', cause: err });
    case 'SQLITE_FULL':
      return new ScriptoriumError('E_NO_SPACE', message, { hint: 'The disk is full: free some space and try again. Nothing was written in place of what existed.', cause: err });
    case 'SQLITE_READONLY':
    case 'SQLITE_CANTOPEN':
    case 'SQLITE_PERM':
    case 'SQLITE_IOERR':
      return new ScriptoriumError('E_IO', message, { hint: 'Check that the file and its directory exist and are readable (and writable, for a target).', cause: err });
    default:
      return undefined;
  }
}

/**
 * The error a failed file-system call means to a user when the cause is a full disk or quota (ENOSPC,
 * EDQUOT), naming where it happened; undefined for any other failure.
 *
 * @example
 * ```ts
 * try { fs.writeSync(fd, data); } catch (err) { throw noSpaceError(err, `export: write ${file}`) ?? err; }
 * ```
 */
export function noSpaceError(err: unknown, where: string): ScriptoriumError | undefined {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return undefined;
  return new ScriptoriumError('E_NO_SPACE', `${where}: no space left on the device (${code})`, {
    hint: 'Free some space (or raise the quota) and try again; nothing that existed before was changed.',
    cause: err,
  });
}
