import { createRequire } from 'node:module';

/**
 * CRC-32C (Castagnoli: reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF), the checksum
 * of LevelDB tables, TensorFlow checkpoints and TFRecord files, plus the "mask" those formats apply
 * before storing a CRC (a CRC stored next to data that itself contains CRCs would otherwise be
 * weak). Checkpoint data files are verified whole and can be gigabytes, so the checksum runs in
 * native code where the optional dependency @node-rs/crc32 installed (SSE4.2 / ARM CRC
 * instructions, >10 GB/s); elsewhere slicing-by-8 over aligned words runs at 1-2 GB/s in plain
 * JavaScript, and large tensors are checked on a worker thread while the reader goes on
 * (background-crc.ts). MODELBRIDGE_CRC32C=js forces the JavaScript code.
 */
const TABLES: Uint32Array = (() => {
  // Eight 256-entry tables in one array: table t at [t * 256, t * 256 + 256).
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c >>> 0;
    }
  }
  return t;
})();

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Continues a CRC-32C over more bytes: `crc32c(b, crc32c(a))` equals `crc32c(a ‖ b)` (LevelDB's
 * Extend). Start with the default 0 for a fresh checksum. Returns an unsigned 32-bit value.
 */
export function crc32c(bytes: Uint8Array, crc = 0): number {
  const native = nativeCrc32c();
  if (native) return native(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), crc) >>> 0;
  return crc32cWith(CRC32C_TABLES, LITTLE_ENDIAN_HOST, bytes, crc);
}

/** The JavaScript CRC-32C, whatever is installed (for tests of the fallback). */
export function crc32cPortable(bytes: Uint8Array, crc = 0): number {
  return crc32cWith(CRC32C_TABLES, LITTLE_ENDIAN_HOST, bytes, crc);
}

type NativeCrc32c = (input: Buffer, initialState?: number) => number;

/**
 * @node-rs/crc32's crc32c, if it loads and gives the known answers (the standard check value and
 * a continued checksum): a broken or mismatched binary falls back to JavaScript, never to a wrong CRC.
 */
function loadNative(): NativeCrc32c | undefined {
  if (process.env['MODELBRIDGE_CRC32C'] === 'js') return undefined;
  try {
    const mod = createRequire(import.meta.url)('@node-rs/crc32') as { crc32c?: unknown };
    const f = mod.crc32c;
    if (typeof f !== 'function') return undefined;
    const native = f as NativeCrc32c;
    const check = Buffer.from('123456789');
    if (native(check) >>> 0 !== 0xe3069283) return undefined;
    if (native(check.subarray(4), native(check.subarray(0, 4))) >>> 0 !== 0xe3069283) return undefined;
    return native;
  } catch {
    return undefined;
  }
}

// Loaded on the first checksum rather than at start-up: loading the native addon is a cost every
// command would pay, and most (inspect, a safetensors or ONNX conversion) never take a CRC-32C.
let native: NativeCrc32c | null | undefined;
const nativeCrc32c = (): NativeCrc32c | null => (native === undefined ? (native = loadNative() ?? null) : native);

/** Which implementation `crc32c` uses: 'native' (@node-rs/crc32) or 'js'. */
export function crc32cBackend(): 'native' | 'js' {
  return nativeCrc32c() ? 'native' : 'js';
}

/** The slicing-by-8 tables, for crc32cWith. */
export const CRC32C_TABLES: Uint32Array = TABLES;

/**
 * crc32c over the given tables. The function uses nothing but its arguments and built-ins, so its
 * source text runs as it is in a worker thread (background-crc.ts): one definition of the
 * checksum for both threads, whatever a bundler renames.
 */
export function crc32cWith(t: Uint32Array, littleEndian: boolean, bytes: Uint8Array, crc: number): number {
  let c = ~crc;
  let i = 0;
  const n = bytes.byteLength;
  if (littleEndian && n >= 64) {
    // Bytes up to a 4-byte boundary, then 8 bytes per step read as two aligned words.
    for (; (bytes.byteOffset + i) & 3; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset + i, ((n - i) >>> 3) * 2);
    for (let w = 0; w < words.length; w += 2) {
      // The low word folds into the running CRC; the high word is only looked up.
      const lo = c ^ words[w]!;
      const hi = words[w + 1]!;
      c =
        t[1792 + (lo & 0xff)]! ^
        t[1536 + ((lo >>> 8) & 0xff)]! ^
        t[1280 + ((lo >>> 16) & 0xff)]! ^
        t[1024 + (lo >>> 24)]! ^
        t[768 + (hi & 0xff)]! ^
        t[512 + ((hi >>> 8) & 0xff)]! ^
        t[256 + ((hi >>> 16) & 0xff)]! ^
        t[hi >>> 24]!;
    }
    i += words.length * 4;
  }
  for (; i < n; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** An incremental CRC-32C for data that arrives in chunks. */
export class Crc32c {
  private crc = 0;

  update(bytes: Uint8Array): this {
    this.crc = crc32c(bytes, this.crc);
    return this;
  }

  /** The CRC of everything so far (the object can keep being updated). */
  get value(): number {
    return this.crc;
  }
}

const MASK_DELTA = 0xa282ead8;

/** Rotate right by 15 and add a constant, as LevelDB's and TensorFlow's crc32c::Mask do. */
export function maskCrc32c(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}

export function unmaskCrc32c(masked: number): number {
  const r = (masked - MASK_DELTA) >>> 0;
  return ((r >>> 17) | (r << 15)) >>> 0;
}
