import { readFileSync, statSync } from '../../core/vfs.js';
import { checksummed } from '../../core/background-crc.js';
import { Crc32c, crc32c, unmaskCrc32c } from '../../core/crc32c.js';
import { byteLengthOf } from '../../core/dtypes.js';
import { FormatError, formatErrors, type FormatErrors } from '../../core/errors.js';
import { WireError, WireReader } from '../../core/protowire.js';
import { elementCount, formatShape } from '../../core/shape.js';
import { FileRangeSource, MemorySource, type ByteSource } from '../../core/source.js';
import { Tensor } from '../../core/tensor.js';
import { tfCodeToDType, tfTypeName } from './dtypes.js';
import { decodeEntry, decodeHeader, ENDIANNESS_LITTLE, type BundleEntry, type BundleHeader } from './proto.js';
import { readTable, showKey } from './table.js';

/**
 * Reads a TensorFlow checkpoint (TensorBundle, "V2" format): `<prefix>.index`, a table mapping
 * each tensor name to its BundleEntryProto (the empty key holds the BundleHeaderProto), and the
 * data files `<prefix>.data-NNNNN-of-MMMMM` holding the bytes. Every tensor's CRC-32C is checked
 * unless told not to, as TensorFlow itself does on restore.
 */

export interface TensorBundle {
  /** In data order (by shard, then offset), so writing them back in this order keeps the layout. */
  tensors: Map<string, Tensor>;
  header: BundleHeader;
  /** Every entry as stored, in key order. */
  entries: Map<string, BundleEntry>;
}

export interface ReadBundleOptions {
  /**
   * Check each tensor's CRC-32C against the index (default true). Tensors read into memory are
   * checked at once; tensors left in the file (lazy) when they are first read, whole or to the end
   * of a stream, so a conversion reads the data once. A mismatch is a FormatError naming the tensor.
   */
  verify?: boolean;
  /** Leave tensor bytes in the data files (FileRangeSource). Default: for data files of LAZY_THRESHOLD bytes or more. */
  lazy?: boolean;
}

export const LAZY_THRESHOLD = 64 * 1024 * 1024;

/** TensorBundle's only format version (kTensorBundleVersion); readers accept producers from 0. */
const BUNDLE_VERSION = 1;

export function indexFileName(prefix: string): string {
  return `${prefix}.index`;
}

export function dataFileName(prefix: string, shard: number, numShards: number): string {
  return `${prefix}.data-${String(shard).padStart(5, '0')}-of-${String(numShards).padStart(5, '0')}`;
}

/** A checkpoint's index: header and entries, every entry checked to describe a readable tensor. */
export function parseBundleIndex(bytes: Uint8Array, file: string): { header: BundleHeader; entries: Map<string, BundleEntry> } {
  const e: FormatErrors = formatErrors(file);
  const table = readTable(bytes, file);
  const first = table[0];
  e.check(first !== undefined && first.key.byteLength === 0, 'first entry', 'the bundle header (an entry with the empty key)');
  const header = decoded(e, 'header entry', () => decodeHeader(first.value));
  checkHeader(header, e);
  const keys = new TextDecoder('utf-8', { fatal: true });
  const entries = new Map<string, BundleEntry>();
  for (const { key, value } of table.slice(1)) {
    // The slices of a partitioned variable have keys encoded by EncodeTensorNameSlice, which start
    // with a 0 byte (so they sort first); the variable's own entry lists them.
    e.check(key[0] !== 0, `entry ${showKey(key)}`, 'a whole tensor (this is a slice of a partitioned variable; those are not supported)');
    let name: string;
    try {
      name = keys.decode(key);
    } catch {
      e.fail(`entry ${showKey(key)}`, 'a tensor name in UTF-8');
    }
    const where = `tensor ${JSON.stringify(name)}`;
    const entry = decoded(e, where, () => decodeEntry(value));
    checkEntry(entry, header, where, e);
    entries.set(name, entry);
  }
  return { header, entries };
}

function decoded<T>(e: FormatErrors, where: string, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    if (err instanceof WireError) e.fail(where, `a valid protobuf message: ${err.message}`);
    throw err;
  }
}

function checkHeader(h: BundleHeader, e: FormatErrors): void {
  // TensorFlow's CheckVersions with producer 1, minimum producer 0.
  const v = h.version;
  e.check(v.producer >= 0, 'header version', `producer >= 0, got ${v.producer}`);
  e.check(v.minConsumer <= BUNDLE_VERSION, 'header version', `a checkpoint readable by format version ${BUNDLE_VERSION} (it needs ${v.minConsumer})`);
  e.check(!v.badConsumers.includes(BUNDLE_VERSION), 'header version', `format version ${BUNDLE_VERSION} not listed as a bad consumer`);
  e.check(h.endianness === ENDIANNESS_LITTLE, 'header endianness', `little-endian data (big-endian checkpoints are not supported), got ${h.endianness}`);
  e.check(h.numShards >= 1, 'header num_shards', `at least 1 data file, got ${h.numShards}`);
}

function checkEntry(entry: BundleEntry, header: BundleHeader, where: string, e: FormatErrors): void {
  e.check(entry.slices === 0, where, 'a whole tensor (partitioned/sliced variables are not supported)');
  e.check(!entry.unknownRank, where, 'a shape of known rank');
  e.check(entry.shape.every((d) => d >= 0), where, `dimension sizes >= 0, got ${formatShape(entry.shape)}`);
  const dtype = tfCodeToDType(entry.dtype);
  e.check(dtype !== undefined, where, `a supported dtype, got ${tfTypeName(entry.dtype)}`);
  e.check(entry.shardId >= 0 && entry.shardId < header.numShards, where, `shard_id below num_shards ${header.numShards}, got ${entry.shardId}`);
  e.check(entry.offset >= 0 && entry.size >= 0, where, `offset and size >= 0, got ${entry.offset} and ${entry.size}`);
  const count = elementCount(entry.shape);
  e.check(count !== undefined, where, `a shape of countable size, got ${formatShape(entry.shape)}`);
  if (dtype === 'string') {
    // At least one length byte per string, plus the 4-byte length checksum when there are any.
    e.check(count === 0 ? entry.size === 0 || entry.size === 4 : entry.size >= count + 4, where, `a size that holds ${count} strings, got ${entry.size}`);
  } else {
    const bytes = byteLengthOf(dtype, count);
    e.check(bytes !== undefined, where, `a ${dtype} shape of countable byte size, got ${formatShape(entry.shape)}`);
    e.check(bytes === entry.size, where, `size ${bytes} for ${dtype} ${formatShape(entry.shape)}, got ${entry.size}`);
  }
}

/** Where the bytes of one data file come from. */
interface Shard {
  readonly file: string;
  readonly size: number;
  /** Tensors stay in the file and are read on demand (large data files). */
  readonly lazy?: boolean;
  range(offset: number, size: number): ByteSource;
}

/** Decodes a checkpoint held in memory: the index file and the data files by shard id. */
export function decodeTensorBundle(index: Uint8Array, data: readonly Uint8Array[], options: { verify?: boolean; prefix?: string } = {}): TensorBundle {
  const prefix = options.prefix ?? 'checkpoint';
  const { header, entries } = parseBundleIndex(index, indexFileName(prefix));
  return assemble(header, entries, options.verify ?? true, (id) => {
    const file = dataFileName(prefix, id, header.numShards);
    const bytes = data[id];
    if (!bytes) return formatErrors(file).fail('file', 'the data file (not given)');
    return { file, size: bytes.byteLength, range: (offset, size) => new MemorySource(bytes.subarray(offset, offset + size)) };
  });
}

/** Reads `<prefix>.index` and the data files it refers to. */
export function readTensorBundle(prefix: string, options: ReadBundleOptions = {}): TensorBundle {
  const indexFile = indexFileName(prefix);
  const { header, entries } = parseBundleIndex(readWhole(indexFile), indexFile);
  return assemble(header, entries, options.verify ?? true, (id) => {
    const file = dataFileName(prefix, id, header.numShards);
    const size = fileSize(file);
    if (options.lazy ?? size >= LAZY_THRESHOLD) return { file, size, lazy: true, range: (offset, n) => new FileRangeSource(file, offset, n) };
    const bytes = readWhole(file);
    return { file, size: bytes.byteLength, range: (offset, n) => new MemorySource(bytes.subarray(offset, offset + n)) };
  });
}

/** The outcome of checking one tensor's bytes against the CRC-32C its entry stores. */
export interface TensorCheck {
  readonly name: string;
  /** undefined when the bytes match; else the reader's one-line error. */
  readonly error?: FormatError;
}

/**
 * Checks a checkpoint the way `validate` reports it: the index (its block CRCs, footer, header and
 * entries) must parse, else this throws the FormatError; then every tensor is read and checked on
 * its own, so one corrupt tensor (or missing data file) is reported without hiding the others.
 */
export function verifyTensorBundle(prefix: string): { header: BundleHeader; tensors: TensorCheck[] } {
  const indexFile = indexFileName(prefix);
  const { header, entries } = parseBundleIndex(readWhole(indexFile), indexFile);
  const shards = new Map<number, Shard>();
  const open = (id: number): Shard => {
    const known = shards.get(id);
    if (known) return known;
    const file = dataFileName(prefix, id, header.numShards);
    const size = fileSize(file);
    const shard: Shard = { file, size, range: (offset, n) => new FileRangeSource(file, offset, n) };
    shards.set(id, shard);
    return shard;
  };
  const tensors = [...entries].map(([name, entry]): TensorCheck => {
    try {
      assemble(header, new Map([[name, entry]]), true, open);
      return { name };
    } catch (err) {
      if (err instanceof FormatError) return { name, error: err };
      throw err;
    }
  });
  return { header, tensors };
}

function assemble(header: BundleHeader, entries: Map<string, BundleEntry>, verify: boolean, open: (id: number) => Shard): TensorBundle {
  const shards = new Map<number, Shard>();
  const ordered = [...entries].sort(([ka, a], [kb, b]) => a.shardId - b.shardId || a.offset - b.offset || (ka < kb ? -1 : 1));
  const tensors = new Map<string, Tensor>();
  for (const [name, entry] of ordered) {
    let shard = shards.get(entry.shardId);
    if (!shard) shards.set(entry.shardId, (shard = open(entry.shardId)));
    const e: FormatErrors = formatErrors(shard.file);
    const where = `tensor ${JSON.stringify(name)} at byte ${entry.offset}`;
    e.check(entry.offset <= shard.size && entry.size <= shard.size - entry.offset, where, `${entry.size} bytes inside the ${shard.size}-byte data file`);
    const dtype = tfCodeToDType(entry.dtype)!;
    // Tensors left in a large file are checked as they are read (one pass instead of two); a
    // mismatch then fails whatever read them, before anything it wrote is kept.
    const checkLater = verify && shard.lazy === true && dtype !== 'string';
    const range = shard.range(entry.offset, entry.size);
    const source = checkLater ? new CheckedSource(range, unmaskCrc32c(entry.crc32c), (crc) => checkCrc(entry, crc, where, e)) : range;
    const tensor = dtype === 'string' ? stringTensor(entry, source.read(), verify, where, e) : new Tensor(dtype, entry.shape, source);
    if (verify && !checkLater && dtype !== 'string') {
      const crc = new Crc32c();
      for (const chunk of source.chunks(1 << 23)) crc.update(chunk);
      checkCrc(entry, crc.value, where, e);
    }
    tensors.set(name, tensor);
  }
  return { tensors, header, entries };
}

/**
 * A tensor's bytes whose CRC-32C is checked the first time they are read whole (read(), or
 * chunks() run to the end); `check` throws on a mismatch. Later reads trust the first. It vouches
 * for the stored CRC (`crc32c`), so a TensorBundle writer streaming it computes no second one.
 */
class CheckedSource implements ByteSource {
  private checked = false;

  constructor(
    private readonly inner: ByteSource,
    readonly crc32c: number,
    private readonly check: (crc: number) => void,
  ) {}

  get byteLength(): number {
    return this.inner.byteLength;
  }

  read(): Uint8Array {
    const bytes = this.inner.read();
    if (!this.checked) this.finish(new Crc32c().update(bytes).value);
    return bytes;
  }

  *chunks(chunkSize: number): Iterable<Uint8Array> {
    if (this.checked) return yield* this.inner.chunks(chunkSize);
    // A large tensor is checksummed on a worker thread while the caller uses its chunks.
    yield* checksummed(this.inner.chunks(chunkSize), this.byteLength, (crc) => this.finish(crc));
  }

  private finish(crc: number): void {
    this.check(crc);
    this.checked = true;
  }
}

function checkCrc(entry: BundleEntry, actual: number, where: string, e: FormatErrors): void {
  const stored = unmaskCrc32c(entry.crc32c);
  e.check(stored === actual, where, `data matching its checksum ${hex(stored)}, computed ${hex(actual)}`);
}

/**
 * DT_STRING data: a varint64 length per element, a masked CRC-32C of those lengths (each taken as
 * u32 LE, or u64 LE above 4 GiB, not as varints), then the bytes of every element. The entry's
 * CRC covers the lengths the same way, the 4 checksum bytes and the string bytes.
 */
function stringTensor(entry: BundleEntry, bytes: Uint8Array, verify: boolean, where: string, e: FormatErrors): Tensor {
  const count = elementCount(entry.shape)!;
  if (bytes.byteLength === 0) {
    // TensorFlow's reader accepts an empty record for a tensor without elements.
    if (verify) checkCrc(entry, 0, where, e);
    return Tensor.fromStrings(entry.shape, []);
  }
  const r = new WireReader(bytes);
  const lengths: number[] = [];
  let crc = 0;
  const word = new Uint8Array(8);
  const view = new DataView(word.buffer);
  try {
    for (let i = 0; i < count; i++) {
      const length = r.varint();
      lengths.push(length);
      if (length <= 0xffffffff) {
        view.setUint32(0, length, true);
        crc = crc32c(word.subarray(0, 4), crc);
      } else {
        view.setBigUint64(0, BigInt(length), true);
        crc = crc32c(word, crc);
      }
    }
  } catch (err) {
    if (err instanceof WireError) e.fail(where, `${count} varint string lengths: ${err.message}`);
    throw err;
  }
  const checksumAt = r.pos;
  e.check(checksumAt + 4 <= bytes.byteLength, where, 'the lengths checksum after the string lengths');
  const stored = bytes.subarray(checksumAt, checksumAt + 4);
  if (verify) {
    const expected = unmaskCrc32c(new DataView(stored.buffer, stored.byteOffset, 4).getUint32(0, true));
    e.check(expected === crc, where, `string lengths matching their checksum ${hex(expected)}, computed ${hex(crc)}`);
    crc = crc32c(stored, crc);
  }
  const strings: Uint8Array[] = [];
  let at = checksumAt + 4;
  for (const [i, length] of lengths.entries()) {
    e.check(length <= bytes.byteLength - at, where, `string ${i} of ${length} bytes inside the tensor's ${entry.size} bytes`);
    strings.push(bytes.subarray(at, at + length));
    at += length;
  }
  e.check(at === bytes.byteLength, where, `strings filling the tensor's ${entry.size} bytes, got ${at}`);
  if (verify) checkCrc(entry, crc32c(bytes.subarray(checksumAt + 4), crc), where, e);
  return Tensor.fromStrings(entry.shape, strings);
}

function readWhole(file: string): Uint8Array {
  fileSize(file);
  try {
    const b = readFileSync(file);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (err) {
    return formatErrors(file).fail('file', `a readable file (${describe(err)})`);
  }
}

function fileSize(file: string): number {
  let stat;
  try {
    stat = statSync(file);
  } catch (err) {
    return formatErrors(file).fail('file', `a readable file (${describe(err)})`);
  }
  // A FIFO or device in place of a data file would block or never end.
  if (!stat.isFile()) formatErrors(file).fail('file', 'a regular file');
  return stat.size;
}

function describe(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : String(err);
}

function hex(v: number): string {
  return `0x${v.toString(16).padStart(8, '0')}`;
}
