import * as zlib from 'node:zlib';

/**
 * CRC-32 (IEEE 802.3, the ZIP checksum), incremental so large entries can be checked and written
 * a chunk at a time. node:zlib's crc32 (Node >= 20.15 / 22.2: zlib's SIMD code) where it exists;
 * slicing-by-4 in plain JavaScript on older Nodes.
 */
const TABLES: Uint32Array[] = (() => {
  const tables = Array.from({ length: 4 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    tables[0]![n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[0]![n]!;
    for (let t = 1; t < 4; t++) {
      c = tables[0]![c & 0xff]! ^ (c >>> 8);
      tables[t]![n] = c >>> 0;
    }
  }
  return tables;
})();

type ZlibCrc32 = (data: Uint8Array, value?: number) => number;
const ZLIB_CRC32: ZlibCrc32 | undefined = (zlib as { crc32?: ZlibCrc32 }).crc32;

/** Continues a CRC: start from crc32Update(0, first), feed its result back for the next chunk. */
export function crc32Update(crc: number, bytes: Uint8Array): number {
  return ZLIB_CRC32 ? ZLIB_CRC32(bytes, crc) >>> 0 : crc32UpdatePortable(crc, bytes);
}

/** The JavaScript CRC-32, whatever Node provides (the fallback, and its tests). */
export function crc32UpdatePortable(crc: number, bytes: Uint8Array): number {
  const [t0, t1, t2, t3] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  let c = ~crc >>> 0;
  let i = 0;
  const n = bytes.byteLength;
  for (; i + 4 <= n; i += 4) {
    c ^= bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    c = t3[c & 0xff]! ^ t2[(c >>> 8) & 0xff]! ^ t1[(c >>> 16) & 0xff]! ^ t0[c >>> 24]!;
  }
  for (; i < n; i++) c = t0[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

export function crc32(bytes: Uint8Array): number {
  return crc32Update(0, bytes);
}
