import { mkdirSync } from '../../core/vfs.js';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../../core/atomic.js';
import { checksummed } from '../../core/background-crc.js';
import { Crc32c, maskCrc32c } from '../../core/crc32c.js';
import { UsageError } from '../../core/errors.js';
import { WireWriter } from '../../core/protowire.js';
import type { Tensor } from '../../core/tensor.js';
import { dtypeToTfCode } from './dtypes.js';
import { defaultHeader, encodeEntry, encodeHeader, type BundleEntry } from './proto.js';
import { dataFileName, indexFileName } from './reader.js';
import { compareBytes, TableBuilder } from './table.js';

/**
 * Writes a TensorFlow checkpoint as TensorFlow's BundleWriter does: one data file with each
 * tensor's bytes in the order they are added (optionally padded to an alignment), then the index
 * table with the header under the empty key and one BundleEntryProto per tensor in key order.
 * Given the tensors of a single-shard checkpoint TensorFlow wrote, in readTensorBundle's (data)
 * order, both files come out byte for byte the same, unless TensorFlow snappy-compressed an index
 * block: BundleWriter never does, but some older exports in the wild were written that way.
 *
 * The data file is completed before the index (whose entries hold the data's offsets and CRCs),
 * as TensorFlow does; each file replaces its predecessor atomically.
 */

export interface WriteBundleOptions {
  /** Zero padding after each tensor up to a multiple of this (BundleWriter's data_alignment; default 1, none). */
  readonly alignment?: number;
  /**
   * Order of the tensors in the data file: 'insertion' (the Map's order, like BundleWriter's Add
   * order) or 'key' (sorted like the index). Default 'insertion'.
   */
  readonly order?: 'insertion' | 'key';
}

const CHUNK = 1 << 23;

/** Writes `<prefix>.data-00000-of-00001` and `<prefix>.index` atomically; returns both paths. */
export function writeTensorBundle(prefix: string, tensors: ReadonlyMap<string, Tensor>, options: WriteBundleOptions = {}): string[] {
  const alignment = options.alignment ?? 1;
  if (!Number.isSafeInteger(alignment) || alignment < 1) throw new UsageError(`alignment must be a positive integer, got ${alignment}`);
  const named = [...tensors].map(([name, tensor]) => ({ name, key: checkedKey(name), tensor, code: checkedDType(name, tensor) }));
  if (options.order === 'key') named.sort((a, b) => compareBytes(a.key, b.key));

  mkdirSync(dirname(prefix), { recursive: true });
  const dataFile = dataFileName(prefix, 0, 1);
  const entries: { key: Uint8Array; entry: BundleEntry }[] = [];
  writeFileAtomic(dataFile, (append) => {
    let size = 0;
    for (const { key, tensor, code } of named) {
      const written = tensor.dtype === 'string' ? writeStrings(tensor.strings!, append) : writeBytes(tensor, append);
      const entry: BundleEntry = {
        dtype: code,
        shape: [...tensor.shape],
        unknownRank: false,
        shardId: 0,
        offset: size,
        size: written.size,
        crc32c: maskCrc32c(written.crc),
        slices: 0,
      };
      size += entry.size;
      const pad = (alignment - (size % alignment)) % alignment;
      if (pad > 0) append(new Uint8Array(pad));
      size += pad;
      entries.push({ key, entry });
    }
  });

  const table = new TableBuilder();
  table.add(new Uint8Array(0), encodeHeader(defaultHeader()));
  entries.sort((a, b) => compareBytes(a.key, b.key));
  for (const { key, entry } of entries) table.add(key, encodeEntry(entry));
  const index = table.finish();
  const indexFile = indexFileName(prefix);
  writeFileAtomic(indexFile, (append) => append(index));
  return [indexFile, dataFile];
}

type Append = (bytes: Uint8Array) => void;

/**
 * A numeric tensor's bytes, streamed a chunk at a time; their size and CRC-32C. A source that
 * vouches for its CRC (a checkpoint tensor verified as it streams) gives it, else it is computed.
 */
function writeBytes(tensor: Tensor, append: Append): { size: number; crc: number } {
  const known = tensor.source.crc32c;
  let crc = known ?? 0;
  let size = 0;
  // Unless the source vouches for its CRC, a large tensor is checksummed on a worker thread while it is written.
  const chunks = tensor.source.chunks(CHUNK);
  for (const chunk of known === undefined ? checksummed(chunks, tensor.source.byteLength, (c) => (crc = c)) : chunks) {
    append(chunk);
    size += chunk.byteLength;
  }
  return { size, crc };
}

/**
 * DT_STRING as TensorFlow stores it: varint64 lengths, the masked CRC-32C of the lengths, then the
 * bytes. The CRCs take each length as u32 LE (u64 LE beyond 4 GiB), not as the varint written;
 * the tensor's CRC continues over the 4 checksum bytes and the string bytes.
 */
function writeStrings(strings: readonly Uint8Array[], append: Append): { size: number; crc: number } {
  const lengths = new WireWriter();
  const crc = new Crc32c();
  const word = new Uint8Array(8);
  const view = new DataView(word.buffer);
  for (const s of strings) {
    lengths.writeVarint(s.byteLength);
    if (s.byteLength <= 0xffffffff) {
      view.setUint32(0, s.byteLength, true);
      crc.update(word.subarray(0, 4));
    } else {
      view.setBigUint64(0, BigInt(s.byteLength), true);
      crc.update(word);
    }
  }
  const checksum = new WireWriter().writeFixed32(maskCrc32c(crc.value)).finish();
  crc.update(checksum);
  append(lengths.finish());
  append(checksum);
  let size = lengths.length + 4;
  for (const s of strings) {
    crc.update(s);
    append(s);
    size += s.byteLength;
  }
  return { size, crc: crc.value };
}

const utf8 = new TextEncoder();

function checkedKey(name: string): Uint8Array {
  if (name === '') throw new UsageError('a checkpoint tensor cannot have the empty name (it is the header key)');
  const key = utf8.encode(name);
  // Lone surrogates would encode as U+FFFD and could collide with another name.
  if (new TextDecoder().decode(key) !== name) throw new UsageError(`tensor name ${JSON.stringify(name)} is not valid Unicode`);
  return key;
}

function checkedDType(name: string, tensor: Tensor): number {
  const code = dtypeToTfCode(tensor.dtype);
  if (code === undefined) throw new UsageError(`tensor ${JSON.stringify(name)}: TensorFlow checkpoints cannot hold ${tensor.dtype}`);
  return code;
}
