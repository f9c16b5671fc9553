import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Writes a file atomically: everything goes to a temporary file beside the target, which is
 * renamed over it only when complete, so a failure never leaves a partial output behind.
 * `write` receives a function that appends bytes.
 */
export function writeFileAtomic(path: string, write: (append: (bytes: Uint8Array) => void) => void): void {
  writeFilesAtomic((files) => {
    const file = files.add(path);
    write((bytes) => file.append(bytes));
  });
}

export function writeBytesAtomic(path: string, bytes: Uint8Array): void {
  writeFileAtomic(path, (append) => append(bytes));
}

/** A file of an AtomicFileSet being written: bytes go to its temporary file. */
export interface PendingFile {
  append(bytes: Uint8Array): void;
}

/**
 * Many files written as one output (a TF.js model's hundreds of 4 MiB shards and its model.json).
 * Each goes to a temporary file beside its target; `commit` syncs them all and only then renames
 * them, in the order they were added, so a failure before the commit leaves none of them behind.
 * One pass of fsyncs at the end lets the kernel write the files back together, where a sync per
 * file would wait for the disk once per shard.
 */
export class AtomicFileSet {
  private readonly files: { readonly path: string; readonly temp: string; fd: number | undefined }[] = [];

  /** Starts the next file, closing the one before (a set writes one file at a time). */
  add(path: string): PendingFile {
    this.closeLast();
    const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
    const file = { path, temp, fd: openSync(temp, 'wx') as number | undefined };
    this.files.push(file);
    return {
      append(bytes) {
        if (file.fd === undefined) throw new Error(`${path} was already closed`);
        let done = 0;
        while (done < bytes.byteLength) done += writeSync(file.fd, bytes, done, bytes.byteLength - done);
      },
    };
  }

  /** Syncs every file, then renames each over its target. */
  commit(): void {
    this.closeLast();
    for (const f of this.files) {
      const fd = openSync(f.temp, 'r+');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    for (const f of this.files) renameSync(f.temp, f.path);
    this.files.length = 0;
  }

  /** Removes every temporary file not yet committed (safe to call after a commit). */
  abort(): void {
    this.closeLast();
    for (const f of this.files) rmSync(f.temp, { force: true });
    this.files.length = 0;
  }

  private closeLast(): void {
    const last = this.files.at(-1);
    if (last?.fd !== undefined) {
      closeSync(last.fd);
      last.fd = undefined;
    }
  }
}

/** Writes files through an AtomicFileSet: all of them, or on any error none. */
export function writeFilesAtomic(write: (files: AtomicFileSet) => void): void {
  const files = new AtomicFileSet();
  try {
    write(files);
    files.commit();
  } finally {
    files.abort();
  }
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
