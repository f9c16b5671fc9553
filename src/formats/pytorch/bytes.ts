import { closeSync, fstatSync, openSync, readSync } from '../../core/vfs.js';
import { formatErrors, type FormatErrors } from '../../core/errors.js';
import { FileRangeSource, MemorySource, type ByteSource } from '../../core/source.js';

/**
 * Random access to a checkpoint's bytes: a buffer (small files, tests), or a file read through
 * short-lived descriptors so that a multi-GB checkpoint is never held whole. `source` hands out a
 * range without reading it: a view into the buffer, or a FileRangeSource.
 */
export interface RandomAccess {
  readonly file: string;
  readonly size: number;
  /** `length` bytes at `position` (a view for buffers, a copy for files). */
  read(position: number, length: number): Uint8Array;
  source(position: number, length: number): ByteSource;
}

export class MemoryAccess implements RandomAccess {
  constructor(
    readonly bytes: Uint8Array,
    readonly file: string,
  ) {}
  get size(): number {
    return this.bytes.byteLength;
  }
  read(position: number, length: number): Uint8Array {
    return this.bytes.subarray(position, position + length);
  }
  source(position: number, length: number): ByteSource {
    return new MemorySource(this.read(position, length));
  }
}

export class FileAccess implements RandomAccess {
  private readonly e: FormatErrors;

  constructor(
    readonly file: string,
    readonly size: number,
  ) {
    this.e = formatErrors(file);
  }

  read(position: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    let fd: number | undefined;
    try {
      fd = openSync(this.file, 'r');
      while (done < length) {
        const got = readSync(fd, out, done, Math.min(length - done, 1 << 30), position + done);
        if (got <= 0) break;
        done += got;
      }
    } catch (error) {
      this.e.fail(`byte ${position + done}`, `readable bytes (${describe(error)})`);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    this.e.check(done === length, `byte ${position + done}`, `${length - done} more bytes (the file ends or shrank while reading)`);
    return out;
  }

  source(position: number, length: number): ByteSource {
    return new FileRangeSource(this.file, position, length);
  }
}

/** Files this size and larger are left on disk; smaller ones are read whole (one read, views after). */
export const LAZY_THRESHOLD = 64 * 1024 * 1024;

/** Opens a file for random access; missing or unreadable files are FormatErrors like bad ones. */
export function openAccess(path: string, lazy?: boolean): RandomAccess {
  const e: FormatErrors = formatErrors(path);
  let size = 0;
  let directory = false;
  try {
    const fd = openSync(path, 'r');
    try {
      const stat = fstatSync(fd);
      [size, directory] = [stat.size, stat.isDirectory()];
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    e.fail('file', `a readable file (${describe(error)})`);
  }
  e.check(!directory, 'file', 'a checkpoint file, not a directory');
  const file = new FileAccess(path, size);
  return (lazy ?? size >= LAZY_THRESHOLD) ? file : new MemoryAccess(file.read(0, size), path);
}

/** A sub-range of a source without reading the rest: views stay views, file ranges stay ranges. */
export function sliceSource(source: ByteSource, start: number, length: number): ByteSource {
  if (start === 0 && length === source.byteLength) return source;
  if (source instanceof MemorySource) return new MemorySource(source.bytes.subarray(start, start + length));
  if (source instanceof FileRangeSource) return new FileRangeSource(source.path, source.offset + start, length);
  return new MemorySource(source.read().subarray(start, start + length));
}

function describe(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : String(error);
}
