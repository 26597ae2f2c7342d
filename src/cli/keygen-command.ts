/**
 * `scriptorium keygen [-o FILE]`: an X25519 key pair in age-keygen's format, so that one key works with
 * both tools. The secret goes only to the file (mode 0600, never overwritten) or, without -o, to
 * stdout as age-keygen does; the public key is printed for `--recipient`.
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { X25519Identity } from '../codecs/age-keys.js';
import { ScriptoriumError } from '../core/errors.js';
import { printError } from './output.js';

/** The identity file's text, exactly as age-keygen lays it out. */
export function identityFileText(createdAt: Date, recipient: string, secretKey: string): string {
  return `# created: ${createdAt.toISOString().replace(/\.\d{3}Z$/, 'Z')}\n# public key: ${recipient}\n${secretKey}\n`;
}

export function registerKeygenCommand(program: Command): void {
  program
    .command('keygen')
    .description('write an age X25519 key pair (identity file for --identity; prints the public key for --recipient)')
    .option('-o, --output <file>', 'write the identity to this file (mode 0600; never overwritten) instead of stdout')
    .option('--json', 'print the public key and file as JSON')
    .action((o: { output?: string; json?: boolean }) => {
      try {
        const { identity, secretKey } = X25519Identity.generate();
        const recipient = identity.recipient.toString();
        const text = identityFileText(new Date(), recipient, secretKey);
        if (o.output === undefined || o.output === '-') {
          if (!process.stdout.isTTY) process.stderr.write(`Public key: ${recipient}\n`);
          process.stdout.write(text);
          return;
        }
        let fd: number;
        try {
          fd = fs.openSync(o.output, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EEXIST') {
            throw new ScriptoriumError('E_TARGET_EXISTS', `keygen: ${o.output} already exists`, { hint: 'Choose a new file name; an existing key is never overwritten.' });
          }
          throw new ScriptoriumError('E_IO', `keygen: cannot create ${o.output}: ${code ?? 'error'}`, { hint: 'Check that the directory exists and is writable.' });
        }
        try {
          fs.writeFileSync(fd, text);
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        process.stdout.write(o.json ? `${JSON.stringify({ recipient, identityFile: o.output })}\n` : `Public key: ${recipient}\n`);
      } catch (err) {
        process.exitCode = printError(err);
      }
    });
}
