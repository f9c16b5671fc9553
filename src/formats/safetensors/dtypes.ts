import { dtypeBits, type DType } from '../../core/dtypes.js';

/**
 * safetensors dtype codes, in the order of the reference `enum Dtype` (increasing alignment).
 * The order is part of the format: the reference serializer lays tensors out by descending
 * position in this list, which is what keeps every tensor aligned to its element size.
 */
export const SAFETENSORS_DTYPES = [
  'BOOL',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'C64',
  'F64',
  'I64',
  'U64',
] as const;

export type SafetensorsDType = (typeof SAFETENSORS_DTYPES)[number];

/** Our name for each code. F4 counts single fp4 values, as our float4_e2m1fn_x2 does (4 bits each). */
const TO_DTYPE: Readonly<Record<SafetensorsDType, DType>> = {
  BOOL: 'bool',
  F4: 'float4_e2m1fn_x2',
  F6_E2M3: 'float6_e2m3fn',
  F6_E3M2: 'float6_e3m2fn',
  U8: 'uint8',
  I8: 'int8',
  F8_E5M2: 'float8_e5m2',
  F8_E4M3: 'float8_e4m3fn',
  F8_E8M0: 'float8_e8m0fnu',
  F8_E4M3FNUZ: 'float8_e4m3fnuz',
  F8_E5M2FNUZ: 'float8_e5m2fnuz',
  I16: 'int16',
  U16: 'uint16',
  F16: 'float16',
  BF16: 'bfloat16',
  I32: 'int32',
  U32: 'uint32',
  F32: 'float32',
  C64: 'complex64',
  F64: 'float64',
  I64: 'int64',
  U64: 'uint64',
};

const FROM_DTYPE: ReadonlyMap<DType, SafetensorsDType> = new Map(
  SAFETENSORS_DTYPES.map((code) => [TO_DTYPE[code], code] as const),
);

const RANK: ReadonlyMap<string, number> = new Map(SAFETENSORS_DTYPES.map((code, i) => [code, i] as const));

export function isSafetensorsDType(code: string): code is SafetensorsDType {
  return RANK.has(code);
}

export function toDType(code: SafetensorsDType): DType {
  return TO_DTYPE[code];
}

/** The code for one of our dtypes, or undefined when safetensors cannot store it (complex128, string). */
export function fromDType(dtype: DType): SafetensorsDType | undefined {
  return FROM_DTYPE.get(dtype);
}

/** Position in the reference enum; the writer orders tensors by this, largest first. */
export function dtypeRank(code: SafetensorsDType): number {
  return RANK.get(code)!;
}

/** Bits per element (the reference `bitsize()`); sub-byte for F4 and F6. */
export function bitsOf(code: SafetensorsDType): number {
  return dtypeBits(TO_DTYPE[code]);
}
