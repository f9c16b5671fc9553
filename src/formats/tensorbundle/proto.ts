import { WireReader, WireType, WireWriter } from '../../core/protowire.js';

/**
 * The messages of a checkpoint's index (tensorflow/core/protobuf/tensor_bundle.proto, with
 * VersionDef, TensorShapeProto and TensorSliceProto from framework/). Decoders throw WireError;
 * encoders write fields in field-number order and omit proto3 defaults, as TensorFlow's C++
 * SerializeAsString does, so re-encoding what TensorFlow wrote gives the same bytes.
 */

export interface VersionDef {
  producer: number;
  minConsumer: number;
  badConsumers: number[];
}

export const ENDIANNESS_LITTLE = 0;
export const ENDIANNESS_BIG = 1;

export interface BundleHeader {
  numShards: number;
  /** ENDIANNESS_LITTLE or ENDIANNESS_BIG (other values are kept for the reader to reject). */
  endianness: number;
  version: VersionDef;
}

export interface BundleEntry {
  /** TensorFlow DataType code. */
  dtype: number;
  /** Dimension sizes as stored (a reader still has to check they are valid). */
  shape: number[];
  /** TensorShapeProto.unknown_rank: never valid in a checkpoint. */
  unknownRank: boolean;
  shardId: number;
  offset: number;
  size: number;
  /** Masked CRC-32C of the tensor's bytes in the data file. */
  crc32c: number;
  /** Number of TensorSliceProtos: nonzero only for the full-tensor entry of a partitioned variable. */
  slices: number;
}

/** The header TensorFlow's BundleWriter writes: one shard, little-endian, format version 1. */
export function defaultHeader(): BundleHeader {
  return { numShards: 1, endianness: ENDIANNESS_LITTLE, version: { producer: 1, minConsumer: 0, badConsumers: [] } };
}

export function decodeHeader(bytes: Uint8Array): BundleHeader {
  const header = defaultHeader();
  header.numShards = 0;
  header.version.producer = 0;
  const r = new WireReader(bytes);
  for (let k = r.key(); k; k = r.key()) {
    const [field, wire] = k;
    if (field === 1 && wire === WireType.VARINT) header.numShards = r.int32();
    else if (field === 2 && wire === WireType.VARINT) header.endianness = r.int32();
    else if (field === 3 && wire === WireType.LEN) header.version = decodeVersion(r.message());
    else r.skip(wire);
  }
  return header;
}

function decodeVersion(r: WireReader): VersionDef {
  const v: VersionDef = { producer: 0, minConsumer: 0, badConsumers: [] };
  for (let k = r.key(); k; k = r.key()) {
    const [field, wire] = k;
    if (field === 1 && wire === WireType.VARINT) v.producer = r.int32();
    else if (field === 2 && wire === WireType.VARINT) v.minConsumer = r.int32();
    else if (field === 3) v.badConsumers.push(...r.repeated(wire, WireType.VARINT, (s) => s.int32()));
    else r.skip(wire);
  }
  return v;
}

export function encodeHeader(header: BundleHeader): Uint8Array {
  const w = new WireWriter();
  if (header.numShards !== 0) w.varint(1, header.numShards);
  if (header.endianness !== 0) w.varint(2, header.endianness);
  w.message(3, (v) => {
    const { producer, minConsumer, badConsumers } = header.version;
    if (producer !== 0) v.varint(1, producer);
    if (minConsumer !== 0) v.varint(2, minConsumer);
    if (badConsumers.length > 0) v.packedVarints(3, badConsumers);
  });
  return w.finish();
}

export function decodeEntry(bytes: Uint8Array): BundleEntry {
  const e: BundleEntry = { dtype: 0, shape: [], unknownRank: false, shardId: 0, offset: 0, size: 0, crc32c: 0, slices: 0 };
  const r = new WireReader(bytes);
  for (let k = r.key(); k; k = r.key()) {
    const [field, wire] = k;
    if (field === 1 && wire === WireType.VARINT) e.dtype = r.int32();
    else if (field === 2 && wire === WireType.LEN) decodeShape(r.message(), e);
    else if (field === 3 && wire === WireType.VARINT) e.shardId = r.int32();
    else if (field === 4 && wire === WireType.VARINT) e.offset = r.int64Number();
    else if (field === 5 && wire === WireType.VARINT) e.size = r.int64Number();
    else if (field === 6 && wire === WireType.I32) e.crc32c = r.fixed32();
    else if (field === 7 && wire === WireType.LEN) {
      r.skip(wire);
      e.slices++;
    } else r.skip(wire);
  }
  return e;
}

/** TensorShapeProto: 2 dim (Dim: 1 size int64, 2 name string), 3 unknown_rank bool. */
function decodeShape(r: WireReader, e: BundleEntry): void {
  // Appending to e.shape also merges a shape field that occurs twice, as protobuf parsers do.
  for (let k = r.key(); k; k = r.key()) {
    const [field, wire] = k;
    if (field === 2 && wire === WireType.LEN) {
      const dim = r.message();
      let size = 0;
      for (let d = dim.key(); d; d = dim.key()) {
        if (d[0] === 1 && d[1] === WireType.VARINT) size = dim.int64Number();
        else dim.skip(d[1]);
      }
      e.shape.push(size);
    } else if (field === 3 && wire === WireType.VARINT) e.unknownRank = r.bool();
    else r.skip(wire);
  }
}

export function encodeEntry(e: BundleEntry): Uint8Array {
  if (e.slices !== 0 || e.unknownRank) throw new RangeError('cannot encode sliced or unknown-rank entries');
  const w = new WireWriter();
  if (e.dtype !== 0) w.varint(1, e.dtype);
  // TensorFlow always sets the shape, so it is written even for a scalar (as an empty message).
  w.message(2, (s) => {
    for (const size of e.shape) s.message(2, (d) => (size !== 0 ? d.varint(1, size) : d));
  });
  if (e.shardId !== 0) w.varint(3, e.shardId);
  if (e.offset !== 0) w.varint(4, e.offset);
  if (e.size !== 0) w.varint(5, e.size);
  if (e.crc32c !== 0) w.fixed32(6, e.crc32c);
  return w.finish();
}
