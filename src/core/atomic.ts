import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Writes a file atomically: everything goes to a temporary file beside the target, which is
 * renamed over it only when complete, so a failure never leaves a partial output behind.
 * `write` receives a function that appends bytes.
 */
export function writeFileAtomic(path: string, write: (append: (bytes: Uint8Array) => void) => void): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(temp, 'wx');
  let ok = false;
  try {
    write((bytes) => {
      let done = 0;
      while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
    });
    fsyncSync(fd);
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) rmSync(temp, { force: true });
  }
  renameSync(temp, path);
}

export function writeBytesAtomic(path: string, bytes: Uint8Array): void {
  writeFileAtomic(path, (append) => append(bytes));
}

/** Refuses to replace an existing output unless forced; the CLI's --force maps here. */
export function assertWritable(path: string, force: boolean): void {
  if (!force && existsSync(path)) {
    throw new OutputExistsError(path);
  }
}

export class OutputExistsError extends Error {
  override readonly name = 'OutputExistsError';
  constructor(readonly path: string) {
    super(`${path} already exists (use --force to overwrite)`);
  }
}
