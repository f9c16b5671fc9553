/**
 * Element types known to modelbridge. Names follow PyTorch's spelling (float32, bfloat16,
 * float8_e4m3fn); each format maps its own codes onto these in its folder.
 */
export const DTYPES = {
  float32: { bits: 32, kind: 'float' },
  float64: { bits: 64, kind: 'float' },
  float16: { bits: 16, kind: 'float' },
  bfloat16: { bits: 16, kind: 'float' },
  int8: { bits: 8, kind: 'int' },
  int16: { bits: 16, kind: 'int' },
  int32: { bits: 32, kind: 'int' },
  int64: { bits: 64, kind: 'int' },
  uint8: { bits: 8, kind: 'uint' },
  uint16: { bits: 16, kind: 'uint' },
  uint32: { bits: 32, kind: 'uint' },
  uint64: { bits: 64, kind: 'uint' },
  bool: { bits: 8, kind: 'bool' },
  complex64: { bits: 64, kind: 'complex' },
  complex128: { bits: 128, kind: 'complex' },
  // Storage-only types: carried bit-exactly through conversions, not computed on.
  float8_e4m3fn: { bits: 8, kind: 'storage' },
  float8_e5m2: { bits: 8, kind: 'storage' },
  float8_e4m3fnuz: { bits: 8, kind: 'storage' },
  float8_e5m2fnuz: { bits: 8, kind: 'storage' },
  float8_e8m0fnu: { bits: 8, kind: 'storage' },
  float6_e2m3fn: { bits: 6, kind: 'storage' },
  float6_e3m2fn: { bits: 6, kind: 'storage' },
  float4_e2m1fn_x2: { bits: 4, kind: 'storage' },
  // Variable-length strings exist in TensorFlow and ONNX only; they have no fixed bit size.
  string: { bits: 0, kind: 'string' },
} as const;

export type DType = keyof typeof DTYPES;
export type DTypeKind = (typeof DTYPES)[DType]['kind'];

export function isDType(name: string): name is DType {
  return Object.prototype.hasOwnProperty.call(DTYPES, name);
}

export function dtypeBits(dtype: DType): number {
  return DTYPES[dtype].bits;
}

/** Bytes an element takes; only for byte-sized types (not the sub-byte float4/float6, not string). */
export function dtypeSize(dtype: DType): number {
  const bits = DTYPES[dtype].bits;
  if (bits === 0 || bits % 8 !== 0) throw new RangeError(`dtype ${dtype} has no whole byte size`);
  return bits / 8;
}

/** Byte length of `count` elements, or undefined if they do not fill whole bytes. */
export function byteLengthOf(dtype: DType, count: number): number | undefined {
  const bits = DTYPES[dtype].bits * count;
  if (!Number.isSafeInteger(bits) || bits % 8 !== 0) return undefined;
  return bits / 8;
}

export function isFloat(dtype: DType): boolean {
  return DTYPES[dtype].kind === 'float';
}

export function isInteger(dtype: DType): boolean {
  const kind = DTYPES[dtype].kind;
  return kind === 'int' || kind === 'uint';
}
