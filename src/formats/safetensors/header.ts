import type { DType } from '../../core/dtypes.js';
import { FormatError } from '../../core/errors.js';
import { elementCount } from '../../core/shape.js';
import { bitsOf, toDType, type SafetensorsDType } from './dtypes.js';
import { parseHeaderJson, type RawEntry } from './json.js';

/**
 * Validation of a safetensors header, shared by the in-memory and the file readers so both accept
 * and reject exactly the same files. It applies the reference parser's rules in the reference's
 * order (formats.md 3.3), so a bad file fails with the error the reference would report; the
 * reference's error name ends every message in parentheses, e.g. "... (InvalidOffset)".
 */

/** The reference's MAX_HEADER_SIZE. */
export const MAX_HEADER_SIZE = 100_000_000;

export interface HeaderEntry {
  readonly name: string;
  readonly code: SafetensorsDType;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Byte range in the data section (add dataOffset for a file position). */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  readonly metadata: Record<string, string> | undefined;
  /** Sorted by data offset, the order of the bytes in the file. */
  readonly entries: readonly HeaderEntry[];
  /** File position of the data section: 8 + header length. */
  readonly dataOffset: number;
}

/** The reference's error names that a header can produce. */
export type SafetensorsErrorName =
  | 'HeaderTooSmall'
  | 'HeaderTooLarge'
  | 'InvalidHeaderLength'
  | 'InvalidHeader'
  | 'InvalidHeaderDeserialization'
  | 'InvalidOffset'
  | 'ValidationOverflow'
  | 'MisalignedSlice'
  | 'TensorInvalidInfo'
  | 'MetadataIncompleteBuffer';

export function headerError(file: string, where: string, expected: string, name: SafetensorsErrorName): FormatError {
  return new FormatError(file, where, `${expected} (${name})`);
}

const U64_LIMIT = 1n << 64n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Rules 1-3: the u64 header length in the first 8 bytes. `prefix` holds the first
 * min(8, fileLength) bytes of the file. Returns the header length N.
 */
export function readHeaderLength(prefix: Uint8Array, fileLength: number, file: string): number {
  if (fileLength < 8 || prefix.byteLength < 8) {
    throw headerError(file, 'byte 0', `an 8-byte header length, but the file has ${fileLength} bytes`, 'HeaderTooSmall');
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE)) {
    throw headerError(file, 'byte 0', `a header length of at most ${MAX_HEADER_SIZE} bytes, not ${n}`, 'HeaderTooLarge');
  }
  const length = Number(n);
  if (8 + length > fileLength) {
    throw headerError(file, 'byte 0', `a header length within the file: ${length} bytes from byte 8 passes its end at ${fileLength}`, 'InvalidHeaderLength');
  }
  return length;
}

/**
 * Rules 4-8: decodes and checks the header bytes (the N bytes after the length) of a file of
 * `fileLength` bytes. Everything about the file except the tensor bytes themselves is checked here.
 */
export function parseHeader(headerBytes: Uint8Array, fileLength: number, file: string): SafetensorsHeader {
  const dataOffset = 8 + headerBytes.byteLength;
  let text: string;
  try {
    // ignoreBOM keeps a leading BOM in the text so the JSON parser rejects it, as serde_json does.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw headerError(file, `bytes 8-${dataOffset}`, 'a header in valid UTF-8', 'InvalidHeader');
  }
  const raw = parseHeaderJson(text, (at, expected) => {
    throw headerError(file, `header byte ${8 + utf8Length(text.slice(0, at))}`, expected, 'InvalidHeaderDeserialization');
  });

  // The reference sorts by (begin, end) and then walks the buffer from 0: each tensor must start
  // where the previous one ended. That forbids gaps and overlapping (aliased) tensors alike.
  const sorted = [...raw.entries].sort((a, b) => compare(a.begin, b.begin) || compare(a.end, b.end));
  const entries: HeaderEntry[] = [];
  let start = 0n;
  for (const entry of sorted) {
    if (entry.begin !== start || entry.end < entry.begin) {
      throw headerError(file, tensorWhere(entry), `data_offsets starting at ${start}, where the previous tensor ends, with end >= begin; got [${entry.begin}, ${entry.end}]`, 'InvalidOffset');
    }
    start = entry.end;
    checkSize(entry, file);
    entries.push({
      name: entry.name,
      code: entry.dtype,
      dtype: toDType(entry.dtype),
      shape: entry.shape.map(Number),
      // Safe as numbers: the last end is checked against the file length below.
      begin: Number(entry.begin),
      end: Number(entry.end),
    });
  }
  if (BigInt(dataOffset) + start !== BigInt(fileLength)) {
    throw headerError(file, 'end of file', `the data section to end exactly at the end of the file: tensors end at byte ${BigInt(dataOffset) + start}, the file at ${fileLength}`, 'MetadataIncompleteBuffer');
  }
  return { metadata: raw.metadata, entries, dataOffset };
}

/** Rule 7: the byte range must be exactly the tensor's size, computed without overflow. */
function checkSize(entry: RawEntry, file: string): void {
  const fail = (expected: string, name: SafetensorsErrorName) => headerError(file, tensorWhere(entry), expected, name);
  let count = 1n;
  for (const dim of entry.shape) {
    count *= dim;
    // The reference multiplies in usize (64 bits) and fails on overflow even if a later dim is 0.
    if (count >= U64_LIMIT) throw fail(`a shape whose element count fits in 64 bits, not [${entry.shape.join(', ')}]`, 'ValidationOverflow');
  }
  const bits = count * BigInt(bitsOf(entry.dtype));
  if (bits >= U64_LIMIT) throw fail(`a shape whose size in bits fits in 64 bits, not [${entry.shape.join(', ')}] of ${entry.dtype}`, 'ValidationOverflow');
  if (bits % 8n !== 0n) throw fail(`a whole number of bytes: [${entry.shape.join(', ')}] of ${entry.dtype} is ${bits} bits`, 'MisalignedSlice');
  if (entry.end - entry.begin !== bits / 8n) {
    throw fail(`data_offsets spanning ${bits / 8n} bytes for [${entry.shape.join(', ')}] of ${entry.dtype}, not ${entry.end - entry.begin}`, 'TensorInvalidInfo');
  }
  // Stricter than the reference, which accepts e.g. [2^60, 0]: our shapes are JavaScript numbers,
  // exact only up to 2^53, and every partial product must stay exact for shape arithmetic.
  if (elementCount(entry.shape.map(Number)) === undefined || entry.shape.some((d) => d > MAX_SAFE)) {
    throw fail(`shape dimensions and partial products below 2^53 (JavaScript's exact integer range), not [${entry.shape.join(', ')}]`, 'ValidationOverflow');
  }
}

function tensorWhere(entry: RawEntry): string {
  return `tensor ${JSON.stringify(entry.name)}`;
}

function compare(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function utf8Length(text: string): number {
  return new TextEncoder().encode(text).byteLength;
}
