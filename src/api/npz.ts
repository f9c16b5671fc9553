import { inflateRawSync } from 'node:zlib';
import { claimExpansion } from '../core/budget.js';
import { FormatError, formatErrors, type FormatErrors } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { readNpy } from '../formats/npy/npy.js';
import { crc32Update } from '../formats/pytorch/crc32.js';

/**
 * NumPy's .npz: a zip archive of .npy files (numpy.savez stores them, savez_compressed deflates
 * them). This is a small zip reader for that: the central directory (with ZIP64 sizes and offsets,
 * which numpy always writes), stored and deflated members, and every member's CRC-32 checked.
 */

export interface ZipEntry {
  readonly name: string;
  /** 0 stored, 8 deflated. */
  readonly method: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localOffset: number;
}

const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const EOCD64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX32 = 0xffffffff;

/** The entries of a zip archive held in memory, from its central directory. */
export function readZipEntries(bytes: Uint8Array, file: string): ZipEntry[] {
  const e: FormatErrors = formatErrors(file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let at = bytes.byteLength - 22; at >= Math.max(0, bytes.byteLength - 22 - 0xffff); at--) {
    if (view.getUint32(at, true) === EOCD) {
      eocd = at;
      break;
    }
  }
  e.check(eocd >= 0, 'end of file', 'a zip end-of-central-directory record (is this an .npz file?)');
  let count = view.getUint16(eocd + 10, true);
  let cdSize = view.getUint32(eocd + 12, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  if ((count === 0xffff || cdSize === MAX32 || cdOffset === MAX32) && eocd >= 20 && view.getUint32(eocd - 20, true) === EOCD64_LOCATOR) {
    const at = safe(view.getBigUint64(eocd - 20 + 8, true), e, eocd - 12);
    e.check(at + 56 <= bytes.byteLength && view.getUint32(at, true) === EOCD64, `byte ${at}`, 'a ZIP64 end-of-central-directory record');
    count = safe(view.getBigUint64(at + 32, true), e, at + 32);
    cdSize = safe(view.getBigUint64(at + 40, true), e, at + 40);
    cdOffset = safe(view.getBigUint64(at + 48, true), e, at + 48);
  }
  e.check(cdOffset + cdSize <= bytes.byteLength, `byte ${eocd + 16}`, `a central directory within the file (at ${cdOffset}, ${cdSize} bytes)`);
  const entries: ZipEntry[] = [];
  let at = cdOffset;
  for (let i = 0; i < count; i++) {
    e.check(at + 46 <= bytes.byteLength && view.getUint32(at, true) === CENTRAL, `byte ${at}`, `central directory entry ${i + 1} of ${count}`);
    const flags = view.getUint16(at + 8, true);
    const method = view.getUint16(at + 10, true);
    const crc32 = view.getUint32(at + 16, true);
    let compressedSize = view.getUint32(at + 20, true);
    let size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    let localOffset = view.getUint32(at + 42, true);
    const end = at + 46 + nameLength + extraLength + commentLength;
    e.check(end <= bytes.byteLength, `byte ${at}`, 'a central directory entry within the file');
    const name = new TextDecoder(flags & 0x800 ? 'utf-8' : 'latin1').decode(bytes.subarray(at + 46, at + 46 + nameLength));
    // ZIP64 extra field (id 1): the 64-bit values of exactly the fields that are 0xFFFFFFFF, in order.
    for (let x = at + 46 + nameLength; x + 4 <= at + 46 + nameLength + extraLength; ) {
      const id = view.getUint16(x, true);
      const length = view.getUint16(x + 2, true);
      if (id === 1) {
        let p = x + 4;
        const next = (): number => {
          e.check(p + 8 <= x + 4 + length, `byte ${x}`, `a complete ZIP64 extra field for ${name}`);
          const v = safe(view.getBigUint64(p, true), e, p);
          p += 8;
          return v;
        };
        if (size === MAX32) size = next();
        if (compressedSize === MAX32) compressedSize = next();
        if (localOffset === MAX32) localOffset = next();
      }
      x += 4 + length;
    }
    entries.push({ name, method, crc32, compressedSize, size, localOffset });
    at = end;
  }
  return entries;
}

/** A member's bytes, inflated if deflated, with its size and CRC-32 checked. */
export function readZipEntry(bytes: Uint8Array, entry: ZipEntry, file: string): Uint8Array {
  const e: FormatErrors = formatErrors(file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = entry.localOffset;
  const where = `member ${JSON.stringify(entry.name)}`;
  e.check(at + 30 <= bytes.byteLength && view.getUint32(at, true) === LOCAL, `${where} at byte ${at}`, 'a local file header');
  const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
  e.check(start + entry.compressedSize <= bytes.byteLength, where, `${entry.compressedSize} bytes of data within the file`);
  const raw = bytes.subarray(start, start + entry.compressedSize);
  let data: Uint8Array;
  if (entry.method === 0) data = raw;
  else if (entry.method === 8) {
    // The declared size is claimed before inflating, and inflating stops there.
    claimExpansion(e.fail, where, 'inflated data', Math.max(0, entry.size - entry.compressedSize));
    try {
      data = inflateRawSync(raw, { maxOutputLength: Math.max(entry.size, 1) });
    } catch (error) {
      throw new FormatError(file, where, `valid deflate data (${(error as Error).message})`);
    }
  } else return e.fail(where, `stored or deflated data, not compression method ${entry.method}`);
  e.check(data.byteLength === entry.size, where, `${entry.size} bytes once extracted, got ${data.byteLength}`);
  const crc = crc32(data);
  e.check(crc === entry.crc32, where, `CRC-32 ${hex(entry.crc32)}, computed ${hex(crc)} (the member is corrupt)`);
  return data;
}

/** Every array of an .npz file, by name (the member name without ".npy"), in archive order. */
export function readNpz(bytes: Uint8Array, file: string): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const entry of readZipEntries(bytes, file)) {
    if (entry.name.endsWith('/')) continue;
    const name = entry.name.replace(/\.npy$/, '');
    out.set(name, readNpy(readZipEntry(bytes, entry, file), `${file}: ${entry.name}`));
  }
  return out;
}

function safe(v: bigint, e: FormatErrors, at: number): number {
  e.check(v <= BigInt(Number.MAX_SAFE_INTEGER), `byte ${at}`, 'a 64-bit size or offset below 2^53');
  return Number(v);
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** CRC-32 (IEEE, as zip uses): the zip reader's, native where Node has it. */
export function crc32(data: Uint8Array): number {
  return crc32Update(0, data);
}
