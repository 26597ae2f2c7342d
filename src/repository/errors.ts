/** The errors the repository raises, all `ScriptoriumError`s with a stable code and a hint. */
import { IntegrityError, NotFoundError, ScriptoriumError, UsageError } from '../core/errors.js';

/** Where in a repository a problem was found: any of snapshot, table, chunk and pack that apply. */
export interface ProblemLocation {
  snapshot?: string;
  table?: string;
  chunk?: string;
  pack?: string;
}

/** One problem found by verify or met by restore. */
export interface Problem extends ProblemLocation {
  code: string;
  message: string;
}

/** Formats a location as `snapshot 1a2b3c4d, table "regs", chunk 9f8e…(pack 12ab…)`. */
export function describeLocation(where: ProblemLocation): string {
  const parts: string[] = [];
  if (where.snapshot) parts.push(`snapshot ${where.snapshot.slice(0, 8)}`);
  if (where.table !== undefined) parts.push(`table ${JSON.stringify(where.table)}`);
  if (where.chunk) parts.push(`chunk ${where.chunk.slice(0, 16)}`);
  if (where.pack) parts.push(`pack ${where.pack.slice(0, 16)}`);
  return parts.join(', ');
}

/** Damaged repository data: a corrupted or truncated pack, index or manifest, or a digest mismatch. */
export class RepositoryIntegrityError extends IntegrityError {
  readonly problems: Problem[];

  constructor(problems: Problem[], operation: string) {
    const first = problems[0];
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
    const where = first ? describeLocation(first) : '';
    super(
      (first?.code as 'E_CORRUPT' | undefined) ?? 'E_CORRUPT',
      `${operation}: ${where}${where ? ': ' : ''}${first?.message ?? 'damaged data'}${more}`,
      {
        hint:
          'The repository holds damaged data. Snapshots that do not use it still restore; run ' +
          '`scriptorium verify --read-data` to list every damaged snapshot, then `forget` them and back up again.',
      },
    );
    this.problems = problems;
  }
}

/** The path holds no repository (no `config`, or `why`: a config that is not a repository's). */
export function notRepository(location: string, cause?: unknown, why = 'no config file'): NotFoundError {
  return new NotFoundError(`repository: ${location} is not a scriptorium repository (${why})`, {
    code: 'E_NOT_REPOSITORY',
    hint: 'Check --repo / SCRIPTORIUM_REPO, or create one with `scriptorium init <repo>`.',
    cause,
  });
}

/** The repository was written by a newer scriptorium. */
export function newerVersion(location: string, found: number, supported: number): ScriptoriumError {
  return new ScriptoriumError(
    'E_VERSION',
    `repository: ${location} has format version ${found}; this scriptorium reads up to version ${supported}`,
    { hint: 'Upgrade scriptorium to read this repository; it was written by a newer release.' },
  );
}

/** No snapshot matches the id the user gave. */
export function unknownSnapshot(id: string, location: string): NotFoundError {
  return new NotFoundError(`repository: no snapshot ${JSON.stringify(id)} in ${location}`, {
    hint: 'List snapshots with `scriptorium snapshots`; an id may be shortened to any unique prefix, or be `latest`.',
  });
}

/** A snapshot id prefix that matches more than one snapshot. */
export function ambiguousSnapshot(id: string, matches: string[]): UsageError {
  return new UsageError(`repository: snapshot id ${JSON.stringify(id)} is ambiguous (${matches.length} snapshots match)`, {
    hint: `Use more characters, e.g. ${matches.slice(0, 2).map((m) => m.slice(0, 12)).join(' or ')}.`,
  });
}

/** Another process holds a lock that conflicts with ours. */
export class LockedError extends ScriptoriumError {
  constructor(message: string) {
    super('E_LOCKED', message, {
      hint:
        'Another scriptorium process is using the repository; wait for it (or pass a longer --lock-wait). ' +
        'Locks of processes that died are ignored once they are stale (dead pid on this host, or 5 minutes without refresh).',
    });
  }
}
