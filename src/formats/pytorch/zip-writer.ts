import type { ByteSource } from '../../core/source.js';
import { crc32Update } from './crc32.js';

/**
 * A streaming ZIP writer that lays an archive out the way PyTorch's PyTorchStreamWriter (miniz
 * with MZ_ZIP_FLAG_WRITE_ZIP64) does, so torch.load, including its mmap path that computes storage
 * offsets from miniz's layout, reads our files exactly as its own:
 *
 * - entries stored, general-purpose flags 0x0808 (UTF-8 name, data descriptor follows), version
 *   fields 0, DOS time and date 0 (fixed timestamps); empty entries use flags 0x0800 and no
 *   descriptor;
 * - the local header's CRC and sizes are 0; the data descriptor after the data carries them,
 *   with 32-bit sizes, or 64-bit ones when the entry is >= 0xFFFFFFFF bytes or starts at or
 *   beyond that offset (then a ZIP64 extra field precedes the padding in the local header);
 * - every entry's data starts on a multiple of `alignment` (64) bytes: the local extra field ends
 *   with a record 'FB' + u16 length + that many 'Z' bytes (PyTorch's getPadding);
 * - the central directory is followed by a ZIP64 end record, its locator and the classic end
 *   record (fields saturated at 0xFFFF / 0xFFFFFFFF when they overflow).
 *
 * Because the sizes follow the data, nothing is buffered: entry bytes stream from their sources.
 */

const U32_MAX = 0xffffffff;
const CHUNK = 8 * 1024 * 1024;

interface CentralRecord {
  readonly name: Uint8Array;
  readonly crc: number;
  readonly size: number;
  readonly offset: number;
}

export class ZipWriter {
  private position = 0;
  private readonly central: CentralRecord[] = [];
  /** CRC-32 of each entry that has a data descriptor, in order (torch hashes these into its id). */
  readonly descriptorCrcs: number[] = [];

  constructor(
    private readonly append: (bytes: Uint8Array) => void,
    private readonly alignment = 64,
  ) {}

  /** Bytes written so far. */
  get offset(): number {
    return this.position;
  }

  /** Adds a stored entry; `data` is streamed a chunk at a time. Returns its CRC-32. */
  add(name: string, data: Uint8Array | ByteSource): number {
    const nameBytes = new TextEncoder().encode(name);
    const size = data.byteLength;
    const cursor = this.position;
    const sizeWide = size >= U32_MAX;
    const offsetWide = cursor >= U32_MAX;
    const zip64 = (sizeWide ? 16 : 0) + (offsetWide ? 8 : 0);
    // getPadding: where the data would start with an empty 'FB' record, then round up.
    const start = cursor + 30 + nameBytes.byteLength + 4 + (zip64 ? 4 + zip64 : 0);
    const padding = (this.alignment - (start % this.alignment)) % this.alignment;
    const extraLength = (zip64 ? 4 + zip64 : 0) + 4 + padding;

    const header = new Uint8Array(30 + nameBytes.byteLength + extraLength);
    const h = new DataView(header.buffer);
    h.setUint32(0, 0x04034b50, true);
    h.setUint16(6, size > 0 ? 0x0808 : 0x0800, true);
    h.setUint16(26, nameBytes.byteLength, true);
    h.setUint16(28, extraLength, true);
    header.set(nameBytes, 30);
    let at = 30 + nameBytes.byteLength;
    if (zip64) {
      h.setUint16(at, 1, true);
      h.setUint16(at + 2, zip64, true);
      at += 4;
      if (sizeWide) {
        // miniz records the uncompressed size and leaves the compressed one 0 here.
        h.setBigUint64(at, BigInt(size), true);
        at += 16;
      }
      if (offsetWide) {
        h.setBigUint64(at, BigInt(cursor), true);
        at += 8;
      }
    }
    header[at] = 0x46; // 'F'
    header[at + 1] = 0x42; // 'B'
    h.setUint16(at + 2, padding, true);
    header.fill(0x5a, at + 4); // 'Z'
    this.write(header);

    let crc = 0;
    let written = 0;
    const chunks = data instanceof Uint8Array ? [data] : data.chunks(CHUNK);
    for (const chunk of chunks) {
      written += chunk.byteLength;
      if (written > size) break;
      crc = crc32Update(crc, chunk);
      this.write(chunk);
    }
    if (written !== size) throw new Error(`zip entry ${name}: its byte source gave ${written} bytes where ${size} were declared`);

    if (size > 0) {
      const wide = sizeWide || offsetWide;
      const descriptor = new Uint8Array(wide ? 24 : 16);
      const d = new DataView(descriptor.buffer);
      d.setUint32(0, 0x08074b50, true);
      d.setUint32(4, crc, true);
      if (wide) {
        d.setBigUint64(8, BigInt(size), true);
        d.setBigUint64(16, BigInt(size), true);
      } else {
        d.setUint32(8, size, true);
        d.setUint32(12, size, true);
      }
      this.write(descriptor);
      this.descriptorCrcs.push(crc);
    }
    this.central.push({ name: nameBytes, crc, size, offset: cursor });
    return crc;
  }

  /** Writes the central directory and the end records. */
  finish(): void {
    const cdOffset = this.position;
    for (const record of this.central) this.write(centralHeader(record));
    const cdSize = this.position - cdOffset;
    const count = this.central.length;

    const eocd64Offset = this.position;
    const tail = new Uint8Array(56 + 20 + 22);
    const t = new DataView(tail.buffer);
    t.setUint32(0, 0x06064b50, true);
    t.setBigUint64(4, 44n, true);
    t.setUint16(12, 0x031e, true); // made by: UNIX, spec 3.0 (miniz's constant)
    t.setUint16(14, 0x002d, true); // needed: 4.5 (ZIP64)
    t.setBigUint64(24, BigInt(count), true);
    t.setBigUint64(32, BigInt(count), true);
    t.setBigUint64(40, BigInt(cdSize), true);
    t.setBigUint64(48, BigInt(cdOffset), true);
    t.setUint32(56, 0x07064b50, true);
    t.setBigUint64(64, BigInt(eocd64Offset), true);
    t.setUint32(72, 1, true);
    t.setUint32(76, 0x06054b50, true);
    t.setUint16(84, Math.min(count, 0xffff), true);
    t.setUint16(86, Math.min(count, 0xffff), true);
    t.setUint32(88, Math.min(cdSize, U32_MAX), true);
    t.setUint32(92, Math.min(cdOffset, U32_MAX), true);
    this.write(tail);
  }

  private write(bytes: Uint8Array): void {
    this.append(bytes);
    this.position += bytes.byteLength;
  }
}

function centralHeader(record: CentralRecord): Uint8Array {
  const sizeWide = record.size >= U32_MAX;
  const offsetWide = record.offset >= U32_MAX;
  const zip64 = (sizeWide ? 16 : 0) + (offsetWide ? 8 : 0);
  const extraLength = zip64 ? 4 + zip64 : 0;
  const out = new Uint8Array(46 + record.name.byteLength + extraLength);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x02014b50, true);
  v.setUint16(8, record.size > 0 ? 0x0808 : 0x0800, true);
  v.setUint32(16, record.crc, true);
  v.setUint32(20, sizeWide ? U32_MAX : record.size, true);
  v.setUint32(24, sizeWide ? U32_MAX : record.size, true);
  v.setUint16(28, record.name.byteLength, true);
  v.setUint16(30, extraLength, true);
  v.setUint32(42, offsetWide ? U32_MAX : record.offset, true);
  out.set(record.name, 46);
  let at = 46 + record.name.byteLength;
  if (zip64) {
    v.setUint16(at, 1, true);
    v.setUint16(at + 2, zip64, true);
    at += 4;
    if (sizeWide) {
      v.setBigUint64(at, BigInt(record.size), true);
      v.setBigUint64(at + 8, BigInt(record.size), true);
      at += 16;
    }
    if (offsetWide) v.setBigUint64(at, BigInt(record.offset), true);
  }
  return out;
}
