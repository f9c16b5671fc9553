import { inflateRawSync } from 'node:zlib';
import { claimExpansion } from '../../core/budget.js';
import { formatErrors, type FormatErrors } from '../../core/errors.js';
import { MemorySource, type ByteSource } from '../../core/source.js';
import { MemoryAccess, openAccess, type RandomAccess } from './bytes.js';
import { crc32Update } from './crc32.js';

/**
 * A ZIP reader for torch.save / torch.jit.save archives. It reads the central directory from the
 * end of the file (EOCD, then the ZIP64 locator and EOCD64 when present), tolerates bytes
 * prepended to the archive, and hands out entries as byte ranges: a view into memory for small
 * files, a FileRangeSource for large ones, so a multi-GB checkpoint is never read whole.
 * Entries PyTorch writes are stored; deflated entries (code/ in TorchScript archives, other zip
 * tools) are inflated on request, never beyond their declared size.
 */

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOCATOR = 0x07064b50;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
/** Largest entry read into one buffer (Node's buffer limit is about this). */
const MAX_IN_MEMORY = 2 ** 31 - 1;

export interface ZipEntry {
  readonly index: number;
  readonly name: string;
  readonly flags: number;
  /** 0 = stored, 8 = deflated. */
  readonly method: number;
  /** As recorded; 0 also means "not recorded" (torch.serialization.set_crc32_options(False)). */
  readonly crc32: number;
  readonly compressedSize: number;
  readonly size: number;
  /** File position of the local header (any prefix before the archive included). */
  readonly headerOffset: number;
}

export interface ReadEntryOptions {
  /** Check the CRC-32 (skipped when the archive recorded 0, as torch does with CRCs disabled). */
  readonly verify?: boolean;
  /** Refuse entries whose declared size is larger (guards against decompression bombs). */
  readonly maxSize?: number;
}

export class ZipArchive {
  private readonly byName = new Map<string, ZipEntry>();
  private readonly dataOffsets = new Map<number, number>();

  constructor(
    readonly file: string,
    private readonly bytes: RandomAccess,
    readonly entries: readonly ZipEntry[],
    /** Bytes before the archive proper (self-extractor stubs, concatenations). */
    readonly prefix: number,
    /** File position of the central directory; entry data must end before it. */
    readonly centralDirectory: number,
    private readonly e: FormatErrors,
  ) {
    for (const entry of entries) {
      // Two entries with one name would let different readers see different files.
      e.check(!this.byName.has(entry.name), `zip entry ${JSON.stringify(entry.name)}`, 'each name once in the central directory');
      this.byName.set(entry.name, entry);
    }
  }

  get size(): number {
    return this.bytes.size;
  }

  find(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /** File position of the entry's data, from its local header (as PyTorch's getRecordOffset). */
  dataOffset(entry: ZipEntry): number {
    const known = this.dataOffsets.get(entry.index);
    if (known !== undefined) return known;
    const where = `zip entry ${JSON.stringify(entry.name)} local header at byte ${entry.headerOffset}`;
    this.e.check(entry.headerOffset + 30 <= this.centralDirectory, where, 'a 30-byte local header before the central directory');
    const head = this.bytes.read(entry.headerOffset, 30);
    const view = dataView(head);
    this.e.check(view.getUint32(0, true) === SIG_LOCAL, where, 'the local header signature PK\\x03\\x04');
    const nameLength = view.getUint16(26, true);
    const extraLength = view.getUint16(28, true);
    const data = entry.headerOffset + 30 + nameLength + extraLength;
    this.e.check(data + entry.compressedSize <= this.centralDirectory, where, `the entry's ${entry.compressedSize} bytes to end before the central directory at byte ${this.centralDirectory}`);
    const localName = this.bytes.read(entry.headerOffset + 30, nameLength);
    this.e.check(decodeName(localName, entry.flags) === entry.name, where, `the same name as the central directory (${JSON.stringify(entry.name)})`);
    this.dataOffsets.set(entry.index, data);
    return data;
  }

  /** The entry's bytes without copying when stored (what torch.save writes); deflated ones are inflated. */
  source(entry: ZipEntry, options: ReadEntryOptions = {}): ByteSource {
    if (entry.method !== 0) return new MemorySource(this.read(entry, options));
    this.checkReadable(entry);
    return this.bytes.source(this.dataOffset(entry), entry.size);
  }

  /** The whole entry in memory, inflated when deflated, its CRC checked when asked. */
  read(entry: ZipEntry, options: ReadEntryOptions = {}): Uint8Array {
    const where = `zip entry ${JSON.stringify(entry.name)}`;
    this.checkReadable(entry);
    const limit = Math.min(options.maxSize ?? MAX_IN_MEMORY, MAX_IN_MEMORY);
    this.e.check(entry.size <= limit, where, `at most ${limit} bytes, not ${entry.size}`);
    const raw = this.bytes.read(this.dataOffset(entry), entry.compressedSize);
    let out = raw;
    if (entry.method === 8) {
      // Inflating is the one place a zip's bytes multiply: the declared size is claimed first.
      claimExpansion((w, x) => this.e.fail(w, x), where, 'inflated data', Math.max(0, entry.size - entry.compressedSize));
      try {
        out = new Uint8Array(inflateRawSync(raw, { maxOutputLength: Math.max(entry.size, 1) }));
      } catch {
        this.e.fail(where, `deflate data that inflates to its declared ${entry.size} bytes`);
      }
      this.e.check(out.byteLength === entry.size, where, `${entry.size} bytes after inflating, got ${out.byteLength}`);
    }
    if (options.verify && entry.crc32 !== 0) {
      const actual = crc32Update(0, out);
      this.e.check(actual === entry.crc32, where, `CRC-32 ${hex(entry.crc32)} as recorded, computed ${hex(actual)} (the file is corrupt)`);
    }
    return out;
  }

  /** Checks a stored entry's CRC a chunk at a time, for entries too large to read at once. */
  verify(entry: ZipEntry): void {
    if (entry.method !== 0) {
      this.read(entry, { verify: true });
      return;
    }
    if (entry.crc32 === 0) return;
    let crc = 0;
    for (const chunk of this.source(entry).chunks(1 << 24)) crc = crc32Update(crc, chunk);
    this.e.check(crc === entry.crc32, `zip entry ${JSON.stringify(entry.name)}`, `CRC-32 ${hex(entry.crc32)} as recorded, computed ${hex(crc)} (the file is corrupt)`);
  }

  private checkReadable(entry: ZipEntry): void {
    const where = `zip entry ${JSON.stringify(entry.name)}`;
    this.e.check((entry.flags & 1) === 0, where, 'an unencrypted entry');
    this.e.check(entry.method === 0 || entry.method === 8, where, `stored or deflated data, not compression method ${entry.method}`);
    this.e.check(entry.method !== 0 || entry.compressedSize === entry.size, where, `equal stored and compressed sizes, got ${entry.size} and ${entry.compressedSize}`);
  }
}

/** A ZIP archive held in memory; entries are views into `bytes`. */
export function parseZip(bytes: Uint8Array, file: string): ZipArchive {
  return readZip(new MemoryAccess(bytes, file));
}

/** A ZIP archive on disk: read whole when small, else only its directory and requested entries. */
export function openZip(path: string, options: { lazy?: boolean } = {}): ZipArchive {
  return readZip(openAccess(path, options.lazy));
}

export function readZip(bytes: RandomAccess): ZipArchive {
  const file = bytes.file;
  const e: FormatErrors = formatErrors(file);
  const size = bytes.size;
  e.check(size >= 22, 'end of file', 'a ZIP end-of-central-directory record (the file is too short to be an archive)');
  // The EOCD is the last 22 bytes plus a comment of up to 65535 bytes.
  const tailStart = Math.max(0, size - 22 - U16_MAX);
  const tail = bytes.read(tailStart, size - tailStart);
  const tv = dataView(tail);
  let eocd = -1;
  for (let i = tail.byteLength - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === SIG_EOCD && i + 22 + tv.getUint16(i + 20, true) <= tail.byteLength) {
      eocd = i;
      break;
    }
  }
  e.check(eocd >= 0, 'end of file', 'a ZIP end-of-central-directory record (PK\\x05\\x06)');
  const eocdPos = tailStart + eocd;
  e.check(tv.getUint16(eocd + 4, true) === 0 || tv.getUint16(eocd + 4, true) === U16_MAX, `byte ${eocdPos}`, 'a single-disk archive');
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  // End of the central directory as found in the file; the recorded offsets are relative to the
  // archive start, which differs from the file start when bytes were prepended.
  let cdEnd = eocdPos;
  let prefix: number;

  const locatorPos = eocdPos - 20;
  const locator = locatorPos >= 0 ? bytes.read(locatorPos, 20) : undefined;
  if (locator && dataView(locator).getUint32(0, true) === SIG_LOCATOR) {
    const recorded = u64(dataView(locator), 8, e, `byte ${locatorPos + 8}`);
    // The EOCD64 normally sits right before its locator; else trust the recorded offset.
    let eocd64 = locatorPos - 56;
    if (eocd64 < 0 || dataView(bytes.read(eocd64, 4)).getUint32(0, true) !== SIG_EOCD64) eocd64 = recorded;
    e.check(eocd64 >= 0 && eocd64 + 56 <= locatorPos, `byte ${locatorPos + 8}`, 'the ZIP64 end-of-central-directory record within the file');
    const rec = dataView(bytes.read(eocd64, 56));
    e.check(rec.getUint32(0, true) === SIG_EOCD64, `byte ${eocd64}`, 'a ZIP64 end-of-central-directory record (PK\\x06\\x06)');
    count = u64(rec, 32, e, `byte ${eocd64 + 32}`);
    cdSize = u64(rec, 40, e, `byte ${eocd64 + 40}`);
    cdOffset = u64(rec, 48, e, `byte ${eocd64 + 48}`);
    cdEnd = eocd64;
    prefix = eocd64 - recorded;
  } else {
    e.check(count !== U16_MAX && cdSize !== U32_MAX && cdOffset !== U32_MAX, `byte ${eocdPos}`, 'a ZIP64 locator for an archive whose counts overflow 32 bits');
    prefix = cdEnd - cdSize - cdOffset;
  }
  const cdStart = cdOffset + prefix;
  e.check(prefix >= 0 && cdStart >= 0 && cdStart + cdSize <= cdEnd, `byte ${eocdPos}`, `a central directory of ${cdSize} bytes at archive offset ${cdOffset} that ends before byte ${cdEnd}`);
  e.check(count * 46 <= cdSize, `byte ${eocdPos}`, `room for ${count} entries in a ${cdSize}-byte central directory`);

  const cd = bytes.read(cdStart, cdSize);
  const cv = dataView(cd);
  const entries: ZipEntry[] = [];
  let at = 0;
  for (let index = 0; index < count; index++) {
    const where = `zip central directory entry ${index} at byte ${cdStart + at}`;
    e.check(at + 46 <= cdSize && cv.getUint32(at, true) === SIG_CENTRAL, where, 'a central directory header (PK\\x01\\x02)');
    const flags = cv.getUint16(at + 8, true);
    const method = cv.getUint16(at + 10, true);
    const crc = cv.getUint32(at + 16, true);
    let compressedSize = cv.getUint32(at + 20, true);
    let size = cv.getUint32(at + 24, true);
    const nameLength = cv.getUint16(at + 28, true);
    const extraLength = cv.getUint16(at + 30, true);
    const commentLength = cv.getUint16(at + 32, true);
    const disk = cv.getUint16(at + 34, true);
    let headerOffset = cv.getUint32(at + 42, true);
    const end = at + 46 + nameLength + extraLength + commentLength;
    e.check(end <= cdSize, where, 'its name, extra field and comment within the central directory');
    const name = decodeName(cd.subarray(at + 46, at + 46 + nameLength), flags, e, where);
    // ZIP64 extended information: only the fields whose 32-bit slot is saturated, in this order.
    const zip64 = findExtra(cd.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength), 1, e, where);
    let z = 0;
    const take = (): number => {
      e.check(zip64 !== undefined && z + 8 <= zip64.byteLength, where, 'a ZIP64 extra field holding the saturated sizes and offset');
      const value = u64(dataView(zip64), z, e, where);
      z += 8;
      return value;
    };
    if (size === U32_MAX) size = take();
    if (compressedSize === U32_MAX) compressedSize = take();
    if (headerOffset === U32_MAX) headerOffset = take();
    e.check(disk === 0 || disk === U16_MAX, where, 'an entry on disk 0');
    const absolute = headerOffset + prefix;
    e.check(absolute + 30 <= cdStart, where, `a local header before the central directory, not at byte ${absolute}`);
    entries.push({ index, name, flags, method, crc32: crc, compressedSize, size, headerOffset: absolute });
    at = end;
  }
  return new ZipArchive(file, bytes, entries, prefix, cdStart, e);
}

/** The data of the first extra-field record with this id, or undefined. */
function findExtra(extra: Uint8Array, id: number, e: FormatErrors, where: string): Uint8Array | undefined {
  const view = dataView(extra);
  let at = 0;
  while (at + 4 <= extra.byteLength) {
    const tag = view.getUint16(at, true);
    const length = view.getUint16(at + 2, true);
    e.check(at + 4 + length <= extra.byteLength, where, 'extra-field records within the extra field');
    if (tag === id) return extra.subarray(at + 4, at + 4 + length);
    at += 4 + length;
  }
  return undefined;
}

function decodeName(bytes: Uint8Array, flags: number, e?: FormatErrors, where?: string): string {
  // Bit 11 says UTF-8; otherwise names are CP437, which agrees with latin1 on the ASCII names
  // archives use in practice.
  if (flags & 0x800) {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      if (e) e.fail(where ?? 'zip entry name', 'a UTF-8 file name');
      return '\u{fffd}';
    }
  }
  return new TextDecoder('latin1').decode(bytes);
}

function u64(view: DataView, at: number, e: FormatErrors, where: string): number {
  const value = view.getBigUint64(at, true);
  e.check(value <= BigInt(Number.MAX_SAFE_INTEGER), where, `a size or offset below 2^53, not ${value}`);
  return Number(value);
}

function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
