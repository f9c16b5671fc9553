import type { DType } from '../../core/dtypes.js';

/**
 * ONNX TensorProto.DataType numbers and modelbridge's dtype names. Codes with no modelbridge
 * dtype (UINT4, INT4, UINT2, INT2) map to undefined, and a reader reports them by ONNX name.
 */
const BY_CODE: Readonly<Record<number, DType>> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  14: 'complex64',
  15: 'complex128',
  16: 'bfloat16',
  17: 'float8_e4m3fn',
  18: 'float8_e4m3fnuz',
  19: 'float8_e5m2',
  20: 'float8_e5m2fnuz',
  // 4-bit floats, two per byte (first element in the low nibble), as in PyTorch's packed type.
  23: 'float4_e2m1fn_x2',
  24: 'float8_e8m0fnu',
};

const ONNX_NAMES = [
  'UNDEFINED', 'FLOAT', 'UINT8', 'INT8', 'UINT16', 'INT16', 'INT32', 'INT64', 'STRING', 'BOOL', 'FLOAT16', 'DOUBLE',
  'UINT32', 'UINT64', 'COMPLEX64', 'COMPLEX128', 'BFLOAT16', 'FLOAT8E4M3FN', 'FLOAT8E4M3FNUZ', 'FLOAT8E5M2',
  'FLOAT8E5M2FNUZ', 'UINT4', 'INT4', 'FLOAT4E2M1', 'FLOAT8E8M0', 'UINT2', 'INT2',
];

const BY_DTYPE: ReadonlyMap<DType, number> = new Map(Object.entries(BY_CODE).map(([code, dtype]) => [dtype, Number(code)]));

export function onnxCodeToDType(code: number): DType | undefined {
  return BY_CODE[code];
}

export function dtypeToOnnxCode(dtype: DType): number | undefined {
  return BY_DTYPE.get(dtype);
}

/** ONNX's name for a data type code, for messages ("INT4", or "code 99" when unknown). */
export function onnxTypeName(code: number): string {
  return ONNX_NAMES[code] ?? `code ${code}`;
}
