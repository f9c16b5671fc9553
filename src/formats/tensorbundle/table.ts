import { crc32c, maskCrc32c, unmaskCrc32c } from '../../core/crc32c.js';
import { formatErrors, type FormatErrors } from '../../core/errors.js';
import { WireError, WireReader, WireWriter } from '../../core/protowire.js';
import { SnappyError, snappyDecompress, snappyMaxExpansion, snappyUncompressedLength } from '../../core/snappy.js';
import { claimExpansion } from '../../core/budget.js';

/**
 * LevelDB-format sorted tables ("SSTables"), as TensorFlow's TSL table code reads and writes them
 * for checkpoint indexes: data blocks of prefix-compressed keys with restart points, each block
 * followed by a type byte and a masked CRC-32C, then a metaindex block, an index block and a
 * 48-byte footer. The reader takes the whole file in memory (indexes are small) and returns every
 * entry in key order; the writer reproduces TableBuilder byte for byte (without compression).
 */

export const FOOTER_LENGTH = 48;
const TRAILER_LENGTH = 5;
const MAGIC_LO = 0x8b80fb57;
const MAGIC_HI = 0xdb477524;
const NO_COMPRESSION = 0;
const SNAPPY_COMPRESSION = 1;

export interface TableEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

interface BlockHandle {
  offset: number;
  size: number;
}

/** Every entry of a table file held in `bytes`, in key order. Malformed input raises FormatError. */
export function readTable(bytes: Uint8Array, file: string): TableEntry[] {
  const e: FormatErrors = formatErrors(file);
  e.check(bytes.byteLength >= FOOTER_LENGTH, 'file', `a table of at least ${FOOTER_LENGTH} bytes (the footer), got ${bytes.byteLength}`);
  const footerAt = bytes.byteLength - FOOTER_LENGTH;
  const magicOk = readU32(bytes, footerAt + 40) === MAGIC_LO && readU32(bytes, footerAt + 44) === MAGIC_HI;
  e.check(magicOk, `footer at byte ${footerAt}`, 'the table magic number 0xdb4775248b80fb57 (not a LevelDB table)');
  const footer = new WireReader(bytes, footerAt, footerAt + 40);
  decodeHandle(footer, `footer at byte ${footerAt}: metaindex handle`, e);
  const indexHandle = decodeHandle(footer, `footer at byte ${footerAt}: index handle`, e);
  const index = readBlock(bytes, indexHandle, 'index block', footerAt, e);

  const entries: TableEntry[] = [];
  let previous: Uint8Array | undefined;
  // Data blocks must come in file order without overlapping: then no block is decoded twice and
  // the work stays proportional to the file size, whatever the index says.
  let nextBlockAt = 0;
  for (const [n, ie] of parseBlock(index, 'index block', e).entries()) {
    const handle = decodeHandle(new WireReader(ie.value), `index block entry ${n}`, e);
    const where = `data block ${n} at byte ${handle.offset}`;
    e.check(handle.offset >= nextBlockAt, where, `blocks in file order (this one starts before the end of the previous, byte ${nextBlockAt})`);
    nextBlockAt = handle.offset + handle.size + TRAILER_LENGTH;
    for (const entry of parseBlock(readBlock(bytes, handle, where, footerAt, e), where, e)) {
      if (previous) e.check(compareBytes(previous, entry.key) < 0, where, `keys in strictly increasing order (${showKey(entry.key)} follows ${showKey(previous)})`);
      entries.push(entry);
      previous = entry.key;
    }
  }
  return entries;
}

function decodeHandle(r: WireReader, where: string, e: FormatErrors): BlockHandle {
  try {
    return { offset: r.varint(), size: r.varint() };
  } catch (err) {
    if (err instanceof WireError) e.fail(where, `a block handle (two varints): ${err.message}`);
    throw err;
  }
}

/** A block's contents after checking its trailer's CRC and decompressing it if need be. */
function readBlock(bytes: Uint8Array, h: BlockHandle, where: string, end: number, e: FormatErrors): Uint8Array {
  const fits = h.offset <= end && h.size <= end - h.offset - TRAILER_LENGTH;
  e.check(fits, where, `${h.size} bytes and a ${TRAILER_LENGTH}-byte trailer inside the ${end} bytes before the footer`);
  const typeAt = h.offset + h.size;
  const stored = unmaskCrc32c(readU32(bytes, typeAt + 1));
  // The checksum covers the stored (possibly compressed) bytes and the type byte.
  const actual = crc32c(bytes.subarray(h.offset, typeAt + 1));
  e.check(stored === actual, where, `block checksum ${hex(stored)}, computed ${hex(actual)}`);
  const type = bytes[typeAt]!;
  const raw = bytes.subarray(h.offset, typeAt);
  if (type === NO_COMPRESSION) return raw;
  e.check(type === SNAPPY_COMPRESSION, where, `compression type 0 (none) or 1 (snappy), got ${type}`);
  // What decompression adds beyond the stored bytes counts against the memory budget.
  const declared = (() => {
    try {
      return snappyUncompressedLength(raw).length;
    } catch {
      return 0;
    }
  })();
  if (declared > raw.byteLength) claimExpansion(e.fail, where, 'a snappy block', declared - raw.byteLength);
  try {
    return snappyDecompress(raw, snappyMaxExpansion(raw.byteLength));
  } catch (err) {
    if (err instanceof SnappyError) e.fail(where, `valid snappy data: ${err.message}`);
    throw err;
  }
}

/**
 * The entries of one block. Keys are rebuilt from the shared prefix of the previous key; values are
 * views into the block. Restart points must be entry starts with no shared prefix, as TensorFlow's
 * binary search assumes.
 */
function parseBlock(block: Uint8Array, where: string, e: FormatErrors): TableEntry[] {
  e.check(block.byteLength >= 4, where, `at least 4 bytes (the restart count), got ${block.byteLength}`);
  const numRestarts = readU32(block, block.byteLength - 4);
  e.check(numRestarts <= (block.byteLength - 4) / 4, where, `a restart count that fits the block, got ${numRestarts}`);
  // LevelDB reads a block without restart points as empty.
  if (numRestarts === 0) return [];
  const limit = block.byteLength - 4 * (numRestarts + 1);
  const restarts: number[] = [];
  for (let i = 0; i < numRestarts; i++) restarts.push(readU32(block, limit + 4 * i));
  e.check(restarts[0] === 0, where, `restart points starting at 0, got ${restarts[0]}`);
  // Prefix compression can make the rebuilt keys much larger than the block; TensorFlow's restart
  // interval of 16 keeps them under 16 times its size. Capping guards against a quadratic blow-up.
  let keyBudget = 64 * block.byteLength + (1 << 20);
  const out: TableEntry[] = [];
  const r = new WireReader(block, 0, limit);
  let previous = new Uint8Array(0);
  let nextRestart = 0;
  while (!r.done) {
    const at = r.pos;
    let shared: number;
    let nonShared: number;
    let valueLength: number;
    try {
      shared = r.varint32();
      nonShared = r.varint32();
      valueLength = r.varint32();
    } catch (err) {
      if (err instanceof WireError) e.fail(`${where}, entry at byte ${at}`, `three varint32 lengths: ${err.message}`);
      throw err;
    }
    if (nextRestart < numRestarts && restarts[nextRestart] === at) {
      e.check(shared === 0, `${where}, entry at byte ${at}`, `a full key at a restart point, got ${shared} shared bytes`);
      nextRestart++;
    }
    e.check(shared <= previous.byteLength, `${where}, entry at byte ${at}`, `at most ${previous.byteLength} shared key bytes, got ${shared}`);
    e.check(nonShared + valueLength <= limit - r.pos, `${where}, entry at byte ${at}`, `key and value inside the block's entries`);
    keyBudget -= shared + nonShared;
    // The shared prefix is rebuilt from the previous key: bytes the file does not hold.
    if (shared > 0) claimExpansion(e.fail, `${where}, entry at byte ${at}`, 'keys rebuilt from shared prefixes', shared);
    e.check(keyBudget >= 0, where, 'keys of a plausible total size (prefix compression expands too far)');
    const key = new Uint8Array(shared + nonShared);
    key.set(previous.subarray(0, shared));
    key.set(block.subarray(r.pos, r.pos + nonShared), shared);
    r.pos += nonShared;
    out.push({ key, value: block.subarray(r.pos, r.pos + valueLength) });
    r.pos += valueLength;
    previous = key;
  }
  // An empty block (like the metaindex) has the one restart point 0, at the end of no entries.
  while (nextRestart < numRestarts && restarts[nextRestart] === limit) nextRestart++;
  e.check(nextRestart === numRestarts, where, `restart points at entry starts in increasing order (${numRestarts - nextRestart} are not)`);
  return out;
}

export interface TableOptions {
  /** Uncompressed bytes per data block before it is flushed (TSL default 262144). */
  readonly blockSize?: number;
  /** Keys between full (unshared) keys (TSL default 16). */
  readonly restartInterval?: number;
}

/**
 * Builds a table the way TSL's TableBuilder does with compression off: same block boundaries,
 * same shortened index keys, same bytes. Keys must be added in strictly increasing byte order.
 */
export class TableBuilder {
  private readonly out = new WireWriter();
  private readonly blockSize: number;
  private readonly data: BlockBuilder;
  private readonly index = new BlockBuilder(1);
  private lastKey: Uint8Array = new Uint8Array(0);
  private entries = 0;
  // An index entry waits for the next block's first key so it can be shortened.
  private pendingHandle: BlockHandle | undefined;

  constructor(options: TableOptions = {}) {
    this.blockSize = options.blockSize ?? 262144;
    this.data = new BlockBuilder(options.restartInterval ?? 16);
  }

  add(key: Uint8Array, value: Uint8Array): void {
    if (this.entries > 0) {
      if (compareBytes(key, this.lastKey) <= 0) throw new RangeError(`table keys must increase: ${showKey(key)} after ${showKey(this.lastKey)}`);
      // TensorFlow's addition: an entry of two blocks' worth or more starts a block of its own.
      if (key.byteLength + value.byteLength >= 2 * this.blockSize) this.flush();
    }
    if (this.pendingHandle) {
      this.addIndexEntry(shortestSeparator(this.lastKey, key), this.pendingHandle);
      this.pendingHandle = undefined;
    }
    this.lastKey = key.slice();
    this.entries++;
    this.data.add(key, value);
    if (this.data.sizeEstimate() >= this.blockSize) this.flush();
  }

  /** Ends the table: last data block, an empty metaindex block, the index block and the footer. */
  finish(): Uint8Array {
    this.flush();
    const metaindex = this.writeBlock(new BlockBuilder(16));
    if (this.pendingHandle) {
      this.addIndexEntry(shortSuccessor(this.lastKey), this.pendingHandle);
      this.pendingHandle = undefined;
    }
    const index = this.writeBlock(this.index);
    const footer = new WireWriter().writeVarint(metaindex.offset).writeVarint(metaindex.size);
    footer.writeVarint(index.offset).writeVarint(index.size);
    this.out.writeBytes(footer.finish()).writeBytes(new Uint8Array(40 - footer.length));
    this.out.writeFixed32(MAGIC_LO).writeFixed32(MAGIC_HI);
    return this.out.finish();
  }

  private flush(): void {
    if (this.data.empty) return;
    this.pendingHandle = this.writeBlock(this.data);
  }

  private addIndexEntry(key: Uint8Array, handle: BlockHandle): void {
    this.index.add(key, new WireWriter().writeVarint(handle.offset).writeVarint(handle.size).finish());
  }

  private writeBlock(block: BlockBuilder): BlockHandle {
    const contents = block.finish();
    const handle = { offset: this.out.length, size: contents.byteLength };
    const type = new Uint8Array([NO_COMPRESSION]);
    this.out.writeBytes(contents).writeBytes(type);
    this.out.writeFixed32(maskCrc32c(crc32c(type, crc32c(contents))));
    block.reset();
    return handle;
  }
}

class BlockBuilder {
  private buf = new WireWriter();
  private restarts = [0];
  private counter = 0;
  private lastKey: Uint8Array = new Uint8Array(0);

  constructor(private readonly restartInterval: number) {}

  get empty(): boolean {
    return this.buf.length === 0;
  }

  sizeEstimate(): number {
    return this.buf.length + 4 * this.restarts.length + 4;
  }

  add(key: Uint8Array, value: Uint8Array): void {
    let shared = 0;
    if (this.counter < this.restartInterval) {
      const n = Math.min(key.byteLength, this.lastKey.byteLength);
      while (shared < n && key[shared] === this.lastKey[shared]) shared++;
    } else {
      this.restarts.push(this.buf.length);
      this.counter = 0;
    }
    this.buf.writeVarint(shared).writeVarint(key.byteLength - shared).writeVarint(value.byteLength);
    this.buf.writeBytes(key.subarray(shared)).writeBytes(value);
    this.lastKey = key;
    this.counter++;
  }

  finish(): Uint8Array {
    for (const r of this.restarts) this.buf.writeFixed32(r);
    this.buf.writeFixed32(this.restarts.length);
    return this.buf.finish();
  }

  reset(): void {
    this.buf = new WireWriter();
    this.restarts = [0];
    this.counter = 0;
    this.lastKey = new Uint8Array(0);
  }
}

/** TSL's FindShortestSeparator: a short key k with start <= k < limit. */
function shortestSeparator(start: Uint8Array, limit: Uint8Array): Uint8Array {
  const n = Math.min(start.byteLength, limit.byteLength);
  let i = 0;
  while (i < n && start[i] === limit[i]) i++;
  // When one key is a prefix of the other there is nothing to shorten.
  if (i >= n) return start;
  const b = start[i]!;
  if (b < 0xff && b + 1 < limit[i]!) {
    const out = start.slice(0, i + 1);
    out[i] = b + 1;
    return out;
  }
  return start;
}

/** TSL's FindShortSuccessor: a short key >= `key` (first byte that can be incremented, truncated). */
function shortSuccessor(key: Uint8Array): Uint8Array {
  for (let i = 0; i < key.byteLength; i++) {
    if (key[i] !== 0xff) {
      const out = key.slice(0, i + 1);
      out[i] = key[i]! + 1;
      return out;
    }
  }
  return key;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.byteLength - b.byteLength;
}

function readU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

function hex(v: number): string {
  return `0x${v.toString(16).padStart(8, '0')}`;
}

/** A key for messages: quoted text, with bytes that are not printable ASCII escaped. */
export function showKey(key: Uint8Array): string {
  let s = '';
  for (const b of key.subarray(0, 200)) s += b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return `"${s}${key.byteLength > 200 ? '...' : ''}"`;
}
