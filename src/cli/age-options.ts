/**
 * The CLI's encryption flags for export and import, turned into the library's options. A passphrase
 * only ever comes from SCRIPTORIUM_PASSWORD, --password-file or a terminal prompt (there is no
 * --password flag: arguments are visible to every user in the process list).
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { parseIdentityFile, parseRecipientsFile, X25519Recipient, type X25519Identity } from '../codecs/age-keys.js';
import type { AgeKeys } from '../codecs/age-reader.js';
import type { AgeEncryption } from '../codecs/age-writer.js';
import { NotFoundError, UsageError } from '../core/errors.js';
import { readPassphrase } from '../core/passphrase.js';

export const IDENTITY_ENV = 'SCRIPTORIUM_IDENTITY_FILE';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export interface EncryptFlags {
  encrypt?: boolean;
  recipient?: string[];
  recipientsFile?: string[];
  passwordFile?: string;
}

export interface DecryptFlags {
  identity?: string[];
  passwordFile?: string;
}

/** Adds --encrypt, --recipient, --recipients-file and --password-file to export. */
export function withEncryptOptions(cmd: Command): Command {
  return cmd
    .option('--encrypt', 'encrypt with a passphrase (SCRIPTORIUM_PASSWORD, --password-file, or asked on the terminal) as an age file')
    .option('-r, --recipient <age1…>', 'encrypt to this age public key (repeatable) as an age file', collect)
    .option('-R, --recipients-file <file>', 'encrypt to the age public keys listed in this file (repeatable)', collect)
    .option('--password-file <file>', 'read the passphrase from the first line of this file');
}

/** Adds --identity and --password-file to import. */
export function withDecryptOptions(cmd: Command): Command {
  return cmd
    .option('-i, --identity <file>', `age identity file for an encrypted input (repeatable; default $${IDENTITY_ENV})`, collect)
    .option('--password-file <file>', 'read the passphrase of an encrypted input from the first line of this file');
}

function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new NotFoundError(`cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { hint: `Check the path of the ${what}.` });
  }
}

/** The export's encryption from its flags, or undefined for a plain export. */
export async function exportEncryption(o: EncryptFlags): Promise<AgeEncryption | undefined> {
  const recipients: X25519Recipient[] = [
    ...(o.recipient ?? []).map((r) => X25519Recipient.parse(r)),
    ...(o.recipientsFile ?? []).flatMap((f) => parseRecipientsFile(readText(f, 'recipients file'), f)),
  ];
  if (o.encrypt && recipients.length > 0) {
    throw new UsageError('--encrypt (a passphrase) and --recipient cannot be combined', {
      hint: 'An age file is encrypted either to one passphrase or to public keys: choose one.',
    });
  }
  if (recipients.length > 0) return { kind: 'recipients', recipients };
  if (o.passwordFile !== undefined && !o.encrypt) {
    throw new UsageError('--password-file is given without --encrypt', { hint: 'Add --encrypt to encrypt the export with that passphrase.' });
  }
  if (!o.encrypt) return undefined;
  const passphrase = await readPassphrase({ ...(o.passwordFile !== undefined ? { passwordFile: o.passwordFile } : {}), confirm: true, prompt: 'Passphrase for the export' });
  return { kind: 'passphrase', passphrase };
}

/** The keys import may use on an age file: identities now, the passphrase only if the file needs one. */
export function importKeys(o: DecryptFlags, env: NodeJS.ProcessEnv = process.env): AgeKeys {
  const files = o.identity ?? (env[IDENTITY_ENV] ? [env[IDENTITY_ENV]!] : []);
  const identities: X25519Identity[] = files.flatMap((f) => parseIdentityFile(readText(f, 'identity file'), f));
  return {
    identities,
    passphrase: () => readPassphrase({ ...(o.passwordFile !== undefined ? { passwordFile: o.passwordFile } : {}), prompt: 'Passphrase of the encrypted input' }),
  };
}
