/**
 * Raw Snappy block decompression (google/snappy format_description.txt): a varint32 uncompressed
 * length, then literals and back-references. Used by LevelDB-style tables (TensorFlow checkpoint
 * indexes) and later by other containers. Every read and write is bounds-checked and the output is
 * allocated once, at the declared length, only after that length has passed the caller's limit:
 * hostile input raises SnappyError, never an out-of-range access or an oversized allocation.
 */
export class SnappyError extends Error {
  override readonly name = 'SnappyError';

  constructor(
    message: string,
    /** Byte offset in the compressed input where the problem was found. */
    readonly offset: number,
  ) {
    super(`${message} (at compressed byte ${offset})`);
  }
}

/**
 * The most bytes `compressedLength` bytes of valid Snappy can expand to: the densest element is a
 * 3-byte copy producing 64 bytes. Callers without a better bound can pass this as the limit.
 */
export function snappyMaxExpansion(compressedLength: number): number {
  return Math.ceil((compressedLength * 64) / 3);
}

/** The uncompressed length a stream declares, and how many bytes that header takes. */
export function snappyUncompressedLength(input: Uint8Array): { length: number; headerBytes: number } {
  let length = 0;
  for (let i = 0; i < 5; i++) {
    if (i >= input.byteLength) throw new SnappyError('truncated length header', i);
    const b = input[i]!;
    // The fifth byte may carry only the top 4 bits of a 32-bit length.
    if (i === 4 && b > 0x0f) throw new SnappyError('length header exceeds 32 bits', i);
    length += (b & 0x7f) * 2 ** (7 * i);
    if (b < 0x80) return { length, headerBytes: i + 1 };
  }
  throw new SnappyError('length header exceeds 32 bits', 4);
}

/** Decompresses a raw Snappy block whose declared length must not exceed `maxLength`. */
export function snappyDecompress(input: Uint8Array, maxLength: number): Uint8Array {
  const { length, headerBytes } = snappyUncompressedLength(input);
  if (length > maxLength) throw new SnappyError(`declared length ${length} exceeds the limit ${maxLength}`, 0);
  const out = new Uint8Array(length);
  const n = input.byteLength;
  let ip = headerBytes;
  let op = 0;
  while (ip < n) {
    const at = ip;
    const tag = input[ip++]!;
    const kind = tag & 3;
    if (kind === 0) {
      // Literal: lengths up to 60 in the tag, longer ones in the 1-4 bytes that follow.
      let len = (tag >>> 2) + 1;
      if (len > 60) {
        const extra = len - 60;
        if (ip + extra > n) throw new SnappyError('truncated literal length', at);
        len = 0;
        for (let k = extra - 1; k >= 0; k--) len = len * 256 + input[ip + k]!;
        len += 1;
        ip += extra;
      }
      if (len > n - ip) throw new SnappyError(`literal of ${len} bytes runs past the input`, at);
      if (len > length - op) throw new SnappyError(`literal of ${len} bytes overflows the declared length ${length}`, at);
      out.set(input.subarray(ip, ip + len), op);
      ip += len;
      op += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (kind === 1) {
      if (ip + 1 > n) throw new SnappyError('truncated copy', at);
      len = ((tag >>> 2) & 7) + 4;
      offset = ((tag >>> 5) << 8) | input[ip]!;
      ip += 1;
    } else if (kind === 2) {
      if (ip + 2 > n) throw new SnappyError('truncated copy', at);
      len = (tag >>> 2) + 1;
      offset = input[ip]! | (input[ip + 1]! << 8);
      ip += 2;
    } else {
      if (ip + 4 > n) throw new SnappyError('truncated copy', at);
      len = (tag >>> 2) + 1;
      offset = (input[ip]! | (input[ip + 1]! << 8) | (input[ip + 2]! << 16) | (input[ip + 3]! << 24)) >>> 0;
      ip += 4;
    }
    if (offset === 0 || offset > op) throw new SnappyError(`copy offset ${offset} outside the ${op} bytes produced`, at);
    if (len > length - op) throw new SnappyError(`copy of ${len} bytes overflows the declared length ${length}`, at);
    if (offset >= len) {
      out.copyWithin(op, op - offset, op - offset + len);
      op += len;
    } else {
      // Overlapping copy: each byte may be one this copy just wrote (run-length encoding).
      for (const end = op + len; op < end; op++) out[op] = out[op - offset]!;
    }
  }
  if (op !== length) throw new SnappyError(`stream ends after ${op} of the declared ${length} bytes`, n);
  return out;
}
