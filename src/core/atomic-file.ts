import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Files that appear whole or not at all: write under a temporary name beside the destination, make it
 * durable, then rename it into place. A crash leaves at most a temporary file, never a half-written
 * destination.
 */

/** A fresh temporary path in the same directory as `dest` (same filesystem, so rename is atomic). */
export function tempPathBeside(dest: string, tag = 'tmp'): string {
  const dir = path.dirname(path.resolve(dest));
  return path.join(dir, `.${path.basename(dest)}.${tag}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** fsync a file by path. */
export function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync a directory so that a rename or create inside it survives a crash (no-op where unsupported). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic there.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Make `temp` durable and rename it over `dest`, then make the rename durable. `synced`: the writer has
 * already fsynced `temp` (DurableFileWriter, ZstdFileWriter), so it is not synced again.
 */
export function commitFile(temp: string, dest: string, options: { synced?: boolean } = {}): void {
  if (!options.synced) fsyncFile(temp);
  fs.renameSync(temp, dest);
  fsyncDir(path.dirname(path.resolve(dest)));
}

/** Remove files if they exist; never throws (used on failure paths). */
export function removeQuietly(...files: string[]): void {
  for (const file of files) {
    try {
      fs.rmSync(file, { force: true });
    } catch {
      // best effort: the caller is already reporting the original failure
    }
  }
}
