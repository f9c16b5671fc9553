import type { DType } from '../../core/dtypes.js';

/**
 * TensorFlow's DataType enum (tensorflow/core/framework/types.proto) and modelbridge's dtype names.
 * Codes with no modelbridge dtype (quantized types, resource, variant, 4-bit and 2-bit integers,
 * float8_e4m3b11fnuz) map to undefined and a reader names them with tfTypeName. TF's float4_e2m1fn
 * keeps one element per byte, unlike modelbridge's packed float4_e2m1fn_x2, so it is not mapped.
 */
const BY_CODE: Readonly<Record<number, DType>> = {
  1: 'float32',
  2: 'float64',
  3: 'int32',
  4: 'uint8',
  5: 'int16',
  6: 'int8',
  7: 'string',
  8: 'complex64',
  9: 'int64',
  10: 'bool',
  14: 'bfloat16',
  17: 'uint16',
  18: 'complex128',
  19: 'float16',
  22: 'uint32',
  23: 'uint64',
  24: 'float8_e5m2',
  25: 'float8_e4m3fn',
  26: 'float8_e4m3fnuz',
  28: 'float8_e5m2fnuz',
};

const TF_NAMES = [
  'DT_INVALID', 'DT_FLOAT', 'DT_DOUBLE', 'DT_INT32', 'DT_UINT8', 'DT_INT16', 'DT_INT8', 'DT_STRING', 'DT_COMPLEX64',
  'DT_INT64', 'DT_BOOL', 'DT_QINT8', 'DT_QUINT8', 'DT_QINT32', 'DT_BFLOAT16', 'DT_QINT16', 'DT_QUINT16', 'DT_UINT16',
  'DT_COMPLEX128', 'DT_HALF', 'DT_RESOURCE', 'DT_VARIANT', 'DT_UINT32', 'DT_UINT64', 'DT_FLOAT8_E5M2',
  'DT_FLOAT8_E4M3FN', 'DT_FLOAT8_E4M3FNUZ', 'DT_FLOAT8_E4M3B11FNUZ', 'DT_FLOAT8_E5M2FNUZ', 'DT_INT4', 'DT_UINT4',
  'DT_INT2', 'DT_UINT2', 'DT_FLOAT4_E2M1FN',
];

const BY_DTYPE: ReadonlyMap<DType, number> = new Map(Object.entries(BY_CODE).map(([code, dtype]) => [dtype, Number(code)]));

export function tfCodeToDType(code: number): DType | undefined {
  return BY_CODE[code];
}

export function dtypeToTfCode(dtype: DType): number | undefined {
  return BY_DTYPE.get(dtype);
}

/** TensorFlow's name for a DataType code ("DT_VARIANT", "DT_FLOAT_REF", or "code 99" when unknown). */
export function tfTypeName(code: number): string {
  if (code > 100 && TF_NAMES[code - 100]) return `${TF_NAMES[code - 100]}_REF`;
  return TF_NAMES[code] ?? `code ${code}`;
}
