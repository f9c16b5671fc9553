/**
 * Conversions for protobufjs' 64-bit integers (the ONNX and TensorFlow schemas both decode
 * int64 fields this way). Sizes, axes and attribute ints become numbers (checked to be exact);
 * tensor elements become BigInt so int64/uint64 data stays bit-exact.
 */

/** A 64-bit integer as protobufjs decodes it (a Long), or a number. */
export type Int64 = number | { readonly low: number; readonly high: number; readonly unsigned: boolean };

const TWO_32 = 4294967296;

/**
 * The value as a number, or undefined when it is beyond ±2^53 and a number would round it. An
 * absent field (null or undefined) is proto3's default, 0.
 */
export function int64ToNumber(value: Int64 | null | undefined): number | undefined {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return value;
  const low = value.low >>> 0;
  const n = value.unsigned ? (value.high >>> 0) * TWO_32 + low : value.high * TWO_32 + low;
  return Number.isSafeInteger(n) ? n : undefined;
}

export function int64ToBigInt(value: Int64, unsigned: boolean): bigint {
  if (typeof value === 'number') return unsigned ? BigInt.asUintN(64, BigInt(value)) : BigInt(value);
  const bits = (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
  return unsigned ? bits : BigInt.asIntN(64, bits);
}

/** Writes the two's-complement bits of an int64/uint64 into a little-endian pair of uint32 words. */
export function int64Words(value: Int64): [low: number, high: number] {
  if (typeof value === 'number') {
    const bits = BigInt.asUintN(64, BigInt(value));
    return [Number(bits & 0xffffffffn), Number(bits >> 32n)];
  }
  return [value.low >>> 0, value.high >>> 0];
}
