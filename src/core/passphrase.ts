/**
 * Where a passphrase comes from: a file (`--password-file`), the environment (SCRIPTORIUM_PASSWORD), or
 * a prompt without echo on the terminal, in that order; never from a command-line argument, which any
 * user of the machine can read in the process list. The passphrase is returned as bytes, so that the
 * caller can wipe it, and it never appears in an error.
 */
import * as fs from 'node:fs';
import * as tty from 'node:tty';
import { NotFoundError, UsageError } from './errors.js';

export const PASSWORD_ENV = 'SCRIPTORIUM_PASSWORD';

export interface PassphraseOptions {
  /** A file whose first line is the passphrase. */
  passwordFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Ask twice on a terminal (for a new passphrase). */
  confirm?: boolean;
  /** What the prompt says, e.g. "Passphrase for the export". */
  prompt?: string;
}

/** The passphrase from the first source that has one; a usage error when none does. */
export async function readPassphrase(options: PassphraseOptions = {}): Promise<Buffer> {
  const env = options.env ?? process.env;
  let value: Buffer | undefined;
  if (options.passwordFile !== undefined) value = readPasswordFile(options.passwordFile);
  else if (env[PASSWORD_ENV] !== undefined && env[PASSWORD_ENV] !== '') value = Buffer.from(env[PASSWORD_ENV]!, 'utf8');
  else {
    const prompt = options.prompt ?? 'Passphrase';
    value = await promptHidden(`${prompt}: `);
    if (value && options.confirm) {
      const again = await promptHidden(`${prompt} (again): `);
      if (!again || !again.equals(value)) {
        value.fill(0);
        again?.fill(0);
        throw new UsageError('the two passphrases differ', { hint: 'Type the same passphrase twice.' });
      }
      again.fill(0);
    }
    if (!value) {
      throw new UsageError('a passphrase is needed and there is no terminal to ask for it', {
        hint: `Set ${PASSWORD_ENV} or pass --password-file FILE (a passphrase is never taken from an argument).`,
      });
    }
  }
  if (value.length === 0) throw new UsageError('the passphrase is empty', { hint: 'Use a passphrase that is not empty.' });
  return value;
}

/** The first line of `file`, without its line ending. */
function readPasswordFile(file: string): Buffer {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (err) {
    throw new NotFoundError(`cannot read the password file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, {
      hint: 'Check the path given to --password-file.',
    });
  }
  let end = data.indexOf(0x0a);
  if (end < 0) end = data.length;
  if (end > 0 && data[end - 1] === 0x0d) end--;
  const line = Buffer.from(data.subarray(0, end));
  data.fill(0);
  return line;
}

/**
 * Reads one line from the controlling terminal with echo off; undefined when there is none (a
 * service, CI). It uses /dev/tty, so it works while stdin carries data (`import -`).
 */
async function promptHidden(prompt: string): Promise<Buffer | undefined> {
  let fd: number;
  try {
    fd = fs.openSync('/dev/tty', 'r+');
  } catch {
    return undefined;
  }
  if (!tty.isatty(fd)) {
    fs.closeSync(fd);
    return undefined;
  }
  const input = new tty.ReadStream(fd);
  // Echo off before the prompt appears, so that nothing typed after it is ever shown.
  input.setRawMode(true);
  fs.writeSync(fd, prompt);
  const bytes: number[] = [];
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      input.on('data', (data: Buffer) => {
        for (const b of data) {
          if (b === 0x0d || b === 0x0a) {
            resolve(Buffer.from(bytes));
            return;
          }
          if (b === 0x03 || b === 0x04) {
            reject(new UsageError('no passphrase was entered', { hint: 'Run again and type the passphrase, or set SCRIPTORIUM_PASSWORD.' }));
            return;
          }
          if (b === 0x7f || b === 0x08) {
            // Erase one character: its UTF-8 continuation bytes, then its first byte.
            while (bytes.length > 0 && (bytes[bytes.length - 1]! & 0xc0) === 0x80) bytes.pop();
            bytes.pop();
          } else bytes.push(b);
        }
      });
      input.once('error', reject);
    });
  } finally {
    bytes.fill(0);
    input.setRawMode(false);
    fs.writeSync(fd, '\n');
    input.destroy();
  }
}
