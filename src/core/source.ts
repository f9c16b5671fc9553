import { closeSync, openSync, readSync } from './vfs.js';
import { progressAdvance, progressRead, withReadsMuted } from './progress.js';
import { bytesEqual } from './bytes.js';

/**
 * Where a tensor's bytes live. Small files are read whole and tensors are views into that
 * buffer (no copy); large files hand out file ranges that are read only when a writer or the
 * runtime asks, a chunk at a time, so a multi-GB checkpoint never sits in one buffer.
 */
export interface ByteSource {
  readonly byteLength: number;
  /** All bytes in one array (a view where possible; allocates for file ranges). */
  read(): Uint8Array;
  /** The bytes in chunks of at most `chunkSize`, for streaming writers. */
  chunks(chunkSize: number): Iterable<Uint8Array>;
  /**
   * The bytes' CRC-32C, when the source knows it and vouches for it: a checkpoint tensor whose
   * stored checksum its own chunks() verify (they throw at the end if the bytes differ). A writer
   * that needs the CRC takes it instead of computing it a second time.
   */
  readonly crc32c?: number;
}

export class MemorySource implements ByteSource {
  constructor(readonly bytes: Uint8Array) {}

  get byteLength(): number {
    return this.bytes.byteLength;
  }

  read(): Uint8Array {
    return this.bytes;
  }

  *chunks(chunkSize: number): Iterable<Uint8Array> {
    for (let at = 0; at < this.bytes.byteLength; at += chunkSize) {
      const end = Math.min(at + chunkSize, this.bytes.byteLength);
      progressRead(end - at);
      yield this.bytes.subarray(at, end);
    }
  }
}

/** A byte range of a file, read on demand. The file is opened per read, never held open. */
export class FileRangeSource implements ByteSource {
  constructor(
    readonly path: string,
    readonly offset: number,
    readonly byteLength: number,
  ) {}

  read(): Uint8Array {
    // Straight into the result, 16 MiB a call (progress moves as it goes): through chunks()'
    // buffer it was a second copy of every byte, a fifth of a large transpose's time.
    const out = new Uint8Array(this.byteLength);
    const fd = openSync(this.path, 'r');
    try {
      let done = 0;
      while (done < this.byteLength) {
        const got = readSync(fd, out, done, Math.min(1 << 24, this.byteLength - done), this.offset + done);
        if (got <= 0) throw new Error(`${this.path}: file shrank while reading at byte ${this.offset + done}`);
        progressRead(got);
        done += got;
      }
    } finally {
      closeSync(fd);
    }
    return out;
  }

  *chunks(chunkSize: number): Iterable<Uint8Array> {
    const fd = openSync(this.path, 'r');
    const buffer = takeBuffer(Math.min(chunkSize, Math.max(this.byteLength, 1)));
    try {
      let done = 0;
      while (done < this.byteLength) {
        const want = Math.min(buffer.byteLength, this.byteLength - done);
        const got = readSync(fd, buffer, 0, want, this.offset + done);
        if (got <= 0) throw new Error(`${this.path}: file shrank while reading at byte ${this.offset + done}`);
        progressRead(got);
        // The buffer is reused: consumers must copy or write it out before the next chunk.
        yield buffer.subarray(0, got);
        done += got;
      }
    } finally {
      closeSync(fd);
      returnBuffer(buffer);
    }
  }
}

/** Several sources read as one (a tensor that spans two files, as TF.js weight shards allow). */
export class ConcatSource implements ByteSource {
  readonly byteLength: number;

  constructor(private readonly parts: readonly ByteSource[]) {
    this.byteLength = parts.reduce((n, p) => n + p.byteLength, 0);
  }

  read(): Uint8Array {
    const out = new Uint8Array(this.byteLength);
    let at = 0;
    for (const part of this.parts) {
      out.set(part.read(), at);
      at += part.byteLength;
    }
    return out;
  }

  *chunks(chunkSize: number): Iterable<Uint8Array> {
    for (const part of this.parts) yield* part.chunks(chunkSize);
  }
}

/**
 * Chunk buffers are reused across tensors: allocating a fresh multi-MB buffer per tensor costs
 * page faults and RSS on every tensor of a large model. A small free list (not one shared buffer)
 * keeps two sources streamed at once, as diff does, from overwriting each other.
 */
const freeBuffers: Uint8Array[] = [];

function takeBuffer(size: number): Uint8Array {
  const i = freeBuffers.findIndex((b) => b.byteLength >= size);
  const found = i >= 0 ? freeBuffers.splice(i, 1)[0]! : new Uint8Array(size);
  return found.subarray(0, size);
}

function returnBuffer(buffer: Uint8Array): void {
  const whole = new Uint8Array(buffer.buffer, 0, buffer.buffer.byteLength);
  if (freeBuffers.length < 4) freeBuffers.push(whole);
}

/** Bytes per read when two sources are compared. */
const COMPARE_CHUNK = 8 << 20;

/**
 * Whether two sources hold the same bytes, read in lockstep a chunk at a time and compared with
 * Buffer.equals (memcmp: ~10 GB/s, against ~0.05 GB/s for a decode-and-compare loop in JS).
 * Nothing is held beyond one chunk of each; the two streams may cut their chunks differently.
 * `onBytes` hears how many bytes have been compared so far (progress).
 */
export function sameBytes(a: ByteSource, b: ByteSource, onBytes?: (bytes: number) => void): boolean {
  return withReadsMuted(() => compareStreams(a, b, onBytes));
}

function compareStreams(a: ByteSource, b: ByteSource, onBytes?: (bytes: number) => void): boolean {
  if (a.byteLength !== b.byteLength) return false;
  if (a.byteLength === 0) return true;
  const ia = a.chunks(COMPARE_CHUNK)[Symbol.iterator]();
  const ib = b.chunks(COMPARE_CHUNK)[Symbol.iterator]();
  try {
    let ca: Uint8Array = new Uint8Array(0);
    let cb: Uint8Array = new Uint8Array(0);
    let done = 0;
    while (done < a.byteLength) {
      if (ca.byteLength === 0) ca = nextChunk(ia);
      if (cb.byteLength === 0) cb = nextChunk(ib);
      // A stream that ends early (or yields nothing) differs from one that goes on.
      if (ca.byteLength === 0 || cb.byteLength === 0) return false;
      const n = Math.min(ca.byteLength, cb.byteLength);
      if (!bytesEqual(ca, cb, n)) return false;
      ca = ca.subarray(n);
      cb = cb.subarray(n);
      done += n;
      progressAdvance(n);
      onBytes?.(n);
    }
    return true;
  } finally {
    // Early exits still close the files and hand back the chunk buffers.
    ia.return?.();
    ib.return?.();
  }
}

/** The next non-empty chunk, or an empty one at the end of the stream. */
function nextChunk(it: Iterator<Uint8Array>): Uint8Array {
  for (;;) {
    const r = it.next();
    if (r.done) return new Uint8Array(0);
    if (r.value.byteLength > 0) return r.value;
  }
}
