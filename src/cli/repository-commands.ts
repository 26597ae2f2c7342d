/** The repository commands: init, backup, snapshots, restore, verify, forget, prune, diff, unlock. */
import { lstatSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { UsageError } from '../core/errors.js';
import type { CompressionCodec, SnapshotSummary } from '../repository/index.js';
import { formatBytes, formatCount, type OutputOptions } from './output.js';
import { list, wholeNumber } from './options.js';
import { runOperation } from './run.js';
import { IDENTITY_ENV } from './age-options.js';
// Small, and loaded before the command runs, so that deriveKeyEarly starts at once.
import { PASSWORD_ENV, readPassphrase } from '../core/passphrase.js';
import { deriveKeyAhead, dropKeyAhead } from '../repository/crypto/repository-crypto.js';
import { FsStore } from '../stores/fs-store.js';
import { locationScheme } from '../stores/registry.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** SCRIPTORIUM_SCRYPT_LOG_N for new passphrase keys (tests set it low), else the repository default. */
function scryptLogN(): number | undefined {
  const raw = process.env.SCRIPTORIUM_SCRYPT_LOG_N;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 10 || n > 22) throw new UsageError(`SCRIPTORIUM_SCRYPT_LOG_N=${JSON.stringify(raw)} is not a work factor from 10 to 22 for repository keys`, { hint: 'Unset it to use the default (15).' });
  return n;
}

/**
 * How to unlock an encrypted repository, from the flags: a passphrase is read (file, environment or
 * prompt) only if the repository turns out to be encrypted; identity files are read now. Giving either
 * makes backup refuse an unencrypted repository.
 */
async function repoKeys(o: RepoOptions) {
  const { parseIdentityFile } = await import('../codecs/age-keys.js');
  const { readFileSync } = await import('node:fs');
  const files = o.identity ?? (process.env[IDENTITY_ENV] ? [process.env[IDENTITY_ENV]!] : []);
  const identities = files.flatMap((f) => {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read the identity file ${f}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { code: 'E_NOT_FOUND', hint: 'Check the path given to --identity.' });
    }
    return parseIdentityFile(text, f);
  });
  const logN = scryptLogN();
  return {
    identities,
    passphrase: () => readPassphrase({ ...(o.passwordFile !== undefined ? { passwordFile: o.passwordFile } : {}), prompt: 'Repository passphrase' }),
    expectEncrypted: o.passwordFile !== undefined || !!process.env[PASSWORD_ENV] || identities.length > 0,
    ...(logN === undefined ? {} : { scryptLogN: logN }),
  };
}

/** init's encryption from --encrypt / --recipient (a passphrase in both: in public-key mode it is the backup host's). */
async function encryptionSettings(o: RepoOptions & { encrypt?: boolean; recipient?: string }) {
  if (!o.encrypt && o.recipient === undefined) {
    if (o.passwordFile !== undefined) throw new UsageError('--password-file is given without --encrypt or --recipient', { hint: 'Add --encrypt to create an encrypted repository.' });
    return {};
  }
  const { X25519Recipient } = await import('../codecs/age-keys.js');
  const recipient = o.recipient === undefined ? undefined : X25519Recipient.parse(o.recipient);
  const passphrase = await readPassphrase({
    ...(o.passwordFile !== undefined ? { passwordFile: o.passwordFile } : {}), confirm: true,
    prompt: recipient ? 'Passphrase for backups (it does not read data)' : 'Passphrase for the new repository',
  });
  const logN = scryptLogN();
  return { encryption: { passphrase, ...(recipient ? { recipient } : {}), ...(logN === undefined ? {} : { scryptLogN: logN }) } };
}

/** The new passphrase of `key add` / `key passwd`: --new-password-file, SCRIPTORIUM_NEW_PASSWORD, or asked twice. */
function newPassphrase(o: { newPasswordFile?: string }): () => Promise<Buffer> {
  return async () => {
    return readPassphrase({
      ...(o.newPasswordFile !== undefined ? { passwordFile: o.newPasswordFile } : {}),
      env: { SCRIPTORIUM_PASSWORD: process.env.SCRIPTORIUM_NEW_PASSWORD },
      confirm: true, prompt: 'New passphrase',
    });
  };
}

type RepoOptions = OutputOptions & S3Flags & { repo?: string; lockWait?: number; lock?: boolean; passwordFile?: string; identity?: string[] };
import { addS3Options, CommandStores, withObjectLock, type S3Flags } from './s3-options.js';


/** Each command's store registry (with its S3 settings), made once per parsed options object. */
const commandStores = new WeakMap<object, CommandStores>();
function storesOf(o: RepoOptions): CommandStores {
  let stores = commandStores.get(o);
  if (!stores) commandStores.set(o, (stores = new CommandStores(o)));
  return stores;
}
/** The store registry option every repository operation takes. */
const storeOptions = (o: RepoOptions) => ({ stores: storesOf(o).registry });


/** Adds --repo (or $SCRIPTORIUM_REPO), --lock-wait and the output flags to a command. */
function repoCommand(program: Command, name: string, description: string): Command {
  return addS3Options(program
    .command(name)
    .description(description)
    .addOption(new Option('-r, --repo <repo>', 'repository: a directory or s3://bucket/prefix').env('SCRIPTORIUM_REPO')))
    .option('--lock-wait <seconds>', 'how long to wait for a conflicting operation to finish', wholeNumber)
    .option('--password-file <file>', 'encrypted repository: read its passphrase from the first line of this file (else SCRIPTORIUM_PASSWORD, else asked)')
    .option('-i, --identity <file>', `public-key repository: age identity file that reads its data (repeatable; default $${IDENTITY_ENV})`, collect)
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'print a machine-readable summary')
    .option('--debug', 'print stack traces with errors');
}

/**
 * Starts the scrypt that opening a local encrypted repository will need (about 0.1 s, which a backup
 * would spend waiting), so that it runs on the thread pool while the command loads its code and opens
 * its source; the open takes its result (see deriveAhead). Only with a passphrase that needs no prompt
 * (--password-file or SCRIPTORIUM_PASSWORD) and no identity. Whatever fails here is left to the open,
 * which does all of it again and reports it.
 */
function deriveKeyEarly(o: RepoOptions): void {
  const repo = o.repo;
  // A plain path (as the store registry reads it): s3://, memory: and file: URLs are left to the open.
  if (!repo || locationScheme(repo) !== 'file' || /^file:/i.test(repo) || (o.identity?.length ?? 0) > 0 || process.env[IDENTITY_ENV]) return;
  if (o.passwordFile === undefined ? !process.env[PASSWORD_ENV] : !isPlainFile(o.passwordFile)) return;
  void (async () => {
    const passphrase = await readPassphrase(o.passwordFile !== undefined ? { passwordFile: o.passwordFile } : {});
    try {
      await deriveKeyAhead(new FsStore(repo), passphrase);
    } finally {
      passphrase.fill(0);
    }
  })().catch(() => undefined);
}

/**
 * Whether `file` can be read twice with the same answer: a regular file, not a link (/dev/stdin is
 * one, to a pipe or, on macOS and BSD, to a descriptor whose offset a first read would move) and
 * nothing under /dev or /proc. Anything else is read once, by the open.
 */
function isPlainFile(file: string): boolean {
  if (/^\/(?:dev|proc)\//.test(resolve(file))) return false;
  try {
    return lstatSync(file).isFile();
  } catch {
    return false;
  }
}

function repoOf(o: RepoOptions): string {
  if (!o.repo) throw new UsageError('no repository given', { hint: 'Pass --repo <dir> or set SCRIPTORIUM_REPO.' });
  return o.repo;
}

/**
 * Runs one operation through the CLI's runner (progress, summary or JSON, errors and exit status). On
 * an S3 repository the result also carries `requests`: the requests made, by kind. An operation that
 * opens the repository (all but init) starts its key's derivation first (see deriveKeyEarly).
 */
async function act<T extends object>(o: RepoOptions, fn: Parameters<typeof runOperation<T>>[1], summary: (r: T) => string, opensRepository = true): Promise<void> {
  if (opensRepository) deriveKeyEarly(o);
  try {
    await runOperation(o, async (onEvent) => {
      // The history records the requests too (those made until the operation completed: a lock's release comes after).
      const result = await fn((e) => {
        const requests = e.type === 'completed' ? storesOf(o).requests() : undefined;
        onEvent(requests && e.type === 'completed' ? { ...e, result: { ...e.result, requests } } : e);
      });
      const requests = storesOf(o).requests();
      return requests ? { ...result, requests } : result;
    }, summary);
  } finally {
    dropKeyAhead(); // one that no open took (the command failed before it): its copy of the passphrase goes
  }
}

/** The repository code, loaded only by the command that runs (it is not needed to start up). */
// backup and restore, whose time is measured against their peers, import only their own modules.
const repository = () => import('../repository/index.js');

const lockWait = async (o: RepoOptions) => ({
  keys: await repoKeys(o),
  ...storeOptions(o),
  ...(o.lockWait === undefined ? {} : { lockWaitMs: o.lockWait * 1000 }),
  ...(o.lock === false ? { noLock: true } : {}),
  onNotice: (message: string) => {
    if (!o.quiet) process.stderr.write(`scriptorium: ${message}\n`);
  },
});
/** --engine and --jobs, checked. */
async function engineJobs(o: { engine?: string; jobs?: number }) {
  const { parseEngine } = await import('../engines/registry.js');
  if (o.jobs !== undefined && (o.jobs < 1 || o.jobs > 8)) throw new UsageError(`--jobs ${o.jobs} is not from 1 to 8`, { hint: 'Pass --jobs 1 … 8, or leave it out (CPUs, at most 4).' });
  return { ...(o.engine !== undefined ? { engine: parseEngine(o.engine) } : {}), ...(o.jobs !== undefined ? { jobs: o.jobs } : {}) };
}
const NO_LOCK = '--no-lock';
const NO_LOCK_HELP = 'take no lock: read a repository you cannot write (as restic)';

/** The line that names what prune and verify left alone, or '' when there is nothing. */
function straysLine(strays: string[]): string {
  if (strays.length === 0) return '';
  const shown = strays.slice(0, 10).join(', ') + (strays.length > 10 ? `, … (${strays.length - 10} more)` : '');
  return `\nleft alone: ${strays.length} files that are not repository objects: ${shown}`;
}
const short = (id: string) => id.slice(0, 8);

/**
 * Registers the repository commands on `program`.
 *
 * @example
 * ```ts
 * const program = new Command('scriptorium');
 * registerRepositoryCommands(program);
 * await program.parseAsync(['node', 'scriptorium', 'snapshots', '--repo', '/backups']);
 * ```
 */
export function registerRepositoryCommands(program: Command): void {
  repoCommand(program, 'init', 'create a backup repository')
    .argument('[repo]', 'where (default: --repo / $SCRIPTORIUM_REPO)')
    .option('--compression <codec>', 'zstd | gzip | none', 'zstd')
    .option('--level <n>', 'compression level (zstd -7..22, gzip 1..9)', Number)
    .option('--chunk-size <bytes>', 'average chunk size', wholeNumber)
    .option('--pack-size <bytes>', 'pack size (uncompressed)', wholeNumber)
    .option('--encrypt', 'encrypt the repository (format version 2) with a passphrase: SCRIPTORIUM_PASSWORD, --password-file, or asked twice')
    .option('--recipient <age1…>', 'public-key mode: seal data to this age public key; backups need only the passphrase, reading data needs the identity')
    .option('--object-lock <days>', 's3 only: retain every snapshot, index and pack this many days with S3 Object Lock (bucket must have it enabled)', wholeNumber)
    .action((repo: string | undefined, o: RepoOptions & { compression: string; level?: number; chunkSize?: number; packSize?: number; encrypt?: boolean; recipient?: string; objectLock?: number }) =>
      act(o, async (onEvent) => {
        const encryption = await encryptionSettings(o);
        const run = async (location: string | import('../stores/store.js').Store) => (await repository()).init(location, {
          ...encryption,
          compression: o.compression as CompressionCodec, onEvent, ...storeOptions(o),
          ...(o.level === undefined ? {} : { compressionLevel: o.level }),
          ...(o.chunkSize === undefined ? {} : { chunkBytes: o.chunkSize }),
          ...(o.packSize === undefined ? {} : { packBytes: o.packSize }),
        });
        const location = repo ?? repoOf(o);
        return o.objectLock === undefined ? run(location) : withObjectLock(location, o.objectLock, storesOf(o), run);
      }, (c) => `created repository ${c.id.slice(0, 8)} at ${repo ?? o.repo} (format version ${c.version}, ${c.compression.codec}` +
        `${c.encryption ? `, encrypted${c.encryption.recipient ? `: data sealed to ${c.encryption.recipient}, readable only with its identity` : ' with a passphrase'}` : ''})`, false),
    );

  repoCommand(program, 'backup', 'take a snapshot of a database (SQLite file or postgres:// URL) into the repository')
    .argument('<db>', 'SQLite database file, or postgres://user@host/db (with --engine postgres, - means the PG* variables)')
    .option('--tag <tag>', 'label the snapshot (repeatable, or a,b)', list)
    .option('--tables <a,b>', 'only these tables', list)
    .option('--exclude-tables <c,d>', 'all tables but these', list)
    .option('--engine <engine>', 'sqlite | postgres (default: from the location)')
    .option('--jobs <n>', 'PostgreSQL: connections that share the snapshot (default: CPUs, at most 4)', wholeNumber)
    .action((db: string, o: RepoOptions & { tag?: string[]; tables?: string[]; excludeTables?: string[]; engine?: string; jobs?: number }) =>
      act(o, async (onEvent) => (await import('../repository/backup.js')).backup(db, repoOf(o), {
        tags: o.tag ?? [], ...(o.tables ? { tables: o.tables } : {}), ...(o.excludeTables ? { excludeTables: o.excludeTables } : {}), ...(await engineJobs(o)), onEvent, ...(await lockWait(o)),
      }), (s) =>
        `snapshot ${short(s.id)} saved: ${formatCount(s.stats.rows)} rows in ${s.tables.length} tables, ${formatBytes(s.stats.bytes)} logical; ` +
        `${formatCount(s.stats.newChunks)} of ${formatCount(s.stats.chunks)} chunks new, ${formatBytes(s.stats.storedBytes + s.manifestBytes)} added to the repository ` +
        `in ${(s.stats.durationMs / 1000).toFixed(2)} s`),
    );

  repoCommand(program, 'snapshots', 'list the snapshots in the repository')
    .option(NO_LOCK, 'accepted for symmetry: listing takes no lock anyway')
    .action((o: RepoOptions) =>
      act(o, async () => ({ snapshots: await (await repository()).snapshots(repoOf(o), { keys: await repoKeys(o), ...storeOptions(o) }) }), ({ snapshots: list }) => renderSnapshots(list)),
    );

  repoCommand(program, 'restore', 'restore a snapshot into a new database (all or nothing)')
    .argument('<snapshot>', 'snapshot id, unique prefix, or latest')
    .requiredOption('--into <db>', 'database file to create, or postgres://… (an existing database without the snapshot\'s tables)')
    .option('--tables <a,b>', 'only these tables', list)
    .option('--force', 'replace an existing database (only after the restore is verified)')
    .option('--engine <engine>', 'sqlite | postgres (default: from the location)')
    .option('--jobs <n>', 'PostgreSQL: tables loaded at once (large ones on connections of their own, through a staging schema) and workers per index build (default: CPUs, at most 4)', wholeNumber)
    .option('--no-read-back', 'PostgreSQL: check the digests over the bytes sent only, without reading every table back')
    .option('--allow-lossy', 'into the other engine: load values that cannot be carried exactly, converted as docs/cross-engine.md says (without it they are reported and nothing is written)')
    .option(NO_LOCK, NO_LOCK_HELP)
    .action((ref: string, o: RepoOptions & { into: string; tables?: string[]; force?: boolean; engine?: string; jobs?: number; readBack?: boolean; allowLossy?: boolean }) =>
      act(o, async (onEvent) => (await import('../repository/restore.js')).restore(ref, repoOf(o), {
        into: o.into, force: o.force ?? false, ...(o.tables ? { tables: o.tables } : {}), ...(await engineJobs(o)), ...(o.readBack === false ? { readBack: false } : {}), ...(o.allowLossy ? { allowLossy: true } : {}), onEvent, ...(await lockWait(o)),
      }), (r) =>
        `restored snapshot ${short(r.snapshot)} into ${r.into}: ${formatCount(r.rows)} rows in ${r.tables.length} tables, every table verified by digest`),
    );

  repoCommand(program, 'verify', 'check the repository (structure; --read-data: every chunk and digest; --drill: a test restore)')
    .option('--read-data', 'read every chunk, check its hash and every table digest')
    .option('--drill', 'restore the latest snapshot into a temporary database and compare')
    .option('--into <db>', 'with --drill: restore into this PostgreSQL database (postgres://…) inside a transaction that is rolled back')
    .option('--engine <engine>', 'sqlite | postgres (the engine of --into, default: from the location)')
    .option('--jobs <n>', 'PostgreSQL: parallel workers per index build of the drill', wholeNumber)
    .option(NO_LOCK, NO_LOCK_HELP)
    .action((o: RepoOptions & { readData?: boolean; drill?: boolean; into?: string; engine?: string; jobs?: number }) =>
      act(o, async (onEvent) => (await repository()).verify(repoOf(o), {
        readData: o.readData ?? false, drill: o.drill ?? false, ...(o.into !== undefined ? { drillInto: o.into } : {}), ...(await engineJobs(o)), onEvent, ...(await lockWait(o)),
      }), (r) =>
        `no problems found: ${r.snapshots} snapshots, ${formatCount(r.packs)} packs, ${formatCount(r.chunks)} chunk references` +
        `${o.readData ? `, ${r.tablesRead} distinct tables read and their digests checked, ${formatCount(r.unreferencedPacks)} unreferenced packs read` : ''}${r.drilled ? `, drill restore of ${short(r.drilled)} verified` : ''}` +
        straysLine(r.strays)),
    );

  repoCommand(program, 'forget', 'remove snapshots by id or by retention policy (restic semantics)')
    .argument('[ids...]', 'snapshot ids to forget (instead of a policy)')
    .option('--keep-last <n>', 'keep the n newest snapshots', wholeNumber)
    .option('--keep-hourly <n>', 'keep the newest snapshot of each of the last n hours that have one', wholeNumber)
    .option('--keep-daily <n>', 'likewise for days', wholeNumber)
    .option('--keep-weekly <n>', 'likewise for ISO weeks', wholeNumber)
    .option('--keep-monthly <n>', 'likewise for months', wholeNumber)
    .option('--keep-yearly <n>', 'likewise for years', wholeNumber)
    .option('--keep-tag <tag>', 'keep snapshots with this tag (repeatable)', list)
    .option('--dry-run', 'only show what would be removed')
    .option('--prune', 'prune unreferenced data afterwards')
    .action((ids: string[], o: RepoOptions & Record<string, unknown>) =>
      act(o, async (onEvent) => (await repository()).forget(repoOf(o), {
        ids, onEvent, ...(await lockWait(o)), dryRun: !!o.dryRun, prune: !!o.prune,
        keepLast: o.keepLast as number | undefined, keepHourly: o.keepHourly as number | undefined, keepDaily: o.keepDaily as number | undefined,
        keepWeekly: o.keepWeekly as number | undefined, keepMonthly: o.keepMonthly as number | undefined, keepYearly: o.keepYearly as number | undefined,
        keepTags: o.keepTag as string[] | undefined,
      }), (r) => [
        ...r.kept.map((k) => `keep   ${short(k.id)}  ${k.time}  (${k.reasons.join(', ')})`),
        ...r.removed.map((k) => `${o.dryRun ? 'would remove' : 'remove'} ${short(k.id)}  ${k.time ?? ''}`),
        ...r.held.map((k) => `held   ${short(k.id)}  ${k.time ?? ''}  (Object Lock until ${k.until}: not removed)`),
        `${r.removed.length} snapshot(s) ${o.dryRun ? 'would be ' : ''}removed, ${r.kept.length} kept` +
          (r.held.length > 0 ? `, ${r.held.length} held by Object Lock until ${r.held.map((k) => k.until).sort().at(-1)}` : '') +
          (r.pruned ? `; pruned ${r.pruned.packsDeleted} packs (${formatBytes(r.pruned.bytesDeleted)})${straysLine(r.pruned.strays)}` : ''),
      ].join('\n')),
    );

  repoCommand(program, 'prune', 'delete data no snapshot references (needs the exclusive lock)')
    .option('--dry-run', 'only show what would be deleted')
    .action((o: RepoOptions & { dryRun?: boolean }) =>
      act(o, async (onEvent) => (await repository()).prune(repoOf(o), { dryRun: o.dryRun ?? false, onEvent, ...(await lockWait(o)) }), (r) =>
        `${r.dryRun ? 'would delete' : 'deleted'} ${r.packsDeleted} unreferenced packs (${formatBytes(r.bytesDeleted)}), kept ${r.packsKept}` +
        `${r.staleLocksRemoved ? `, removed ${r.staleLocksRemoved} stale locks` : ''}` +
        `${r.freedSpaceFirst ? ' (the disk was full: packs deleted before the new index was written)' : ''}` +
        `${r.packsHeld ? `; ${r.packsHeld} unused packs held by Object Lock (until ${r.heldUntil}) stay until then` : ''}` + straysLine(r.strays)),
    );

  repoCommand(program, 'diff', 'show per table what changed between two snapshots')
    .argument('<a>', 'older snapshot')
    .argument('<b>', 'newer snapshot (or latest)')
    .option(NO_LOCK, NO_LOCK_HELP)
    .action((a: string, b: string, o: RepoOptions) =>
      act(o, async (onEvent) => (await repository()).diff(a, b, repoOf(o), { onEvent, ...(await lockWait(o)) }), (d) => [
        `snapshot ${short(d.a)} → ${short(d.b)}`,
        ...d.tables.map((t) => `${t.status.padEnd(9)} ${t.name}: ${formatCount(t.rowsBefore)} → ${formatCount(t.rowsAfter)} rows; ` +
          `+${formatCount(t.rowsAdded)} −${formatCount(t.rowsRemoved)} ~${formatCount(t.rowsChanged)} rows; ` +
          `chunks +${t.chunksAdded} −${t.chunksRemoved} (${t.chunksShared} shared)${t.schemaChanged ? '; schema changed' : ''}`),
      ].join('\n')),
    );

  const key = program.command('key').description('manage the passphrases of an encrypted repository (no data is re-encrypted)');
  repoCommand(key, 'list', 'list the key objects (the one used marked *)')
    .action((o: RepoOptions) =>
      act(o, async () => (await repository()).keyList(repoOf(o), { keys: await repoKeys(o), ...storeOptions(o) }), (r) =>
        r.keys.map((k) => `${k.current ? '*' : ' '} ${k.id}  ${k.kind.padEnd(10)}  ${k.created}${k.recipient ? `  ${k.recipient}` : ''}`).join('\n')),
    );
  repoCommand(key, 'add', 'add a passphrase (the new one: --new-password-file, SCRIPTORIUM_NEW_PASSWORD, or asked twice)')
    .option('--new-password-file <file>', 'read the new passphrase from the first line of this file')
    .action((o: RepoOptions & { newPasswordFile?: string }) =>
      act(o, async () => (await repository()).keyAdd(repoOf(o), newPassphrase(o), await lockWait(o)), (r) => `added key ${r.added}`),
    );
  repoCommand(key, 'remove', 'remove a key (never the last one, nor the one used to open the repository)')
    .argument('<id>', 'key id or unique prefix (from `key list`)')
    .action((id: string, o: RepoOptions) =>
      act(o, async () => (await repository()).keyRemove(repoOf(o), id, await lockWait(o)), (r) => `removed key ${r.removed}`),
    );
  repoCommand(key, 'passwd', 'change the passphrase used to open the repository')
    .option('--new-password-file <file>', 'read the new passphrase from the first line of this file')
    .action((o: RepoOptions & { newPasswordFile?: string }) =>
      act(o, async () => (await repository()).keyPasswd(repoOf(o), newPassphrase(o), await lockWait(o)), (r) => `changed the passphrase: key ${r.removed} replaced by ${r.added}`),
    );

  repoCommand(program, 'unlock', 'remove stale locks (of processes gone from this host, or not refreshed for a while)')
    .option('--older-than <minutes>', 'also remove locks not refreshed for this long (default 5: every lock that old is stale)', wholeNumber)
    .action((o: RepoOptions & { olderThan?: number }) =>
      act(o, async () => (await repository()).unlock(repoOf(o), { keys: await repoKeys(o), ...storeOptions(o), ...(o.olderThan === undefined ? {} : { olderThanMs: o.olderThan * 60_000 }) }), (r) => [
        ...r.removed.map((l) => `removed ${l.kind} lock of ${l.operation} (pid ${l.pid} on ${l.host}, ${l.time}): ${l.reason}`),
        ...r.future.map((l) => `left ${l.kind} lock of ${l.operation} (pid ${l.pid} on ${l.host}): ${l.reason}`),
        ...r.held.map((l) => `left ${l.kind} lock: ${l.reason}`),
        `${r.removed.length} stale lock(s) removed, ${r.future.length + r.held.length} left`,
      ].join('\n')),
    );
}

function renderSnapshots(list: SnapshotSummary[]): string {
  if (list.length === 0) return 'no snapshots';
  const head = ['id', 'time', 'host', 'tags', 'tables', 'rows', 'size', 'added'];
  const rows = list.map((s) => [short(s.id), s.time.replace('T', ' ').slice(0, 19), s.host, s.tags.join(','), String(s.tables),
    formatCount(s.rows), formatBytes(s.bytes), formatBytes(s.storedBytes)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i < 4 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line), `${list.length} snapshot(s)`].join('\n');
}
