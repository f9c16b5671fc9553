import { closeSync, openSync, readSync } from 'node:fs';

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
      yield this.bytes.subarray(at, Math.min(at + chunkSize, this.bytes.byteLength));
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
    const out = new Uint8Array(this.byteLength);
    let at = 0;
    for (const chunk of this.chunks(1 << 24)) {
      out.set(chunk, at);
      at += chunk.byteLength;
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
