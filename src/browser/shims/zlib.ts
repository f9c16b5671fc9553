import { inflateSync } from 'fflate';

/**
 * node:zlib for the browser bundle: raw inflate (zip entries: .pt archives, .npz) through fflate,
 * the library the web page also zips with. No crc32: src/formats/pytorch/crc32.ts then uses its
 * JavaScript CRC, as on Nodes before zlib.crc32.
 */
export function inflateRawSync(bytes: Uint8Array): Uint8Array {
  return inflateSync(bytes);
}

/** None here: callers test for it and compute CRC-32 in JavaScript. */
export const crc32: undefined = undefined;
