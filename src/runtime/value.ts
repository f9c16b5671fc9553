import type { DType } from '../core/dtypes.js';
import { bfloat16BitsToFloat32, float16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits } from '../core/half.js';
import { allocate, Tensor, type NumericArray } from '../core/tensor.js';

/**
 * A value inside the runtime: dtype, shape and a typed array of elements. Kernels work on these
 * rather than on Tensors so a run allocates nothing but result arrays. float16 and bfloat16
 * values are held widened in a Float32Array whose elements are always exactly representable in
 * the 16-bit type (each kernel's result is rounded back), which is how ONNX computes them.
 */
export interface Value {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: NumericArray;
}

export function isHalf(dtype: DType): boolean {
  return dtype === 'float16' || dtype === 'bfloat16';
}

/** The array type a dtype computes in. */
export function computeArray(dtype: DType, count: number): NumericArray {
  return isHalf(dtype) ? new Float32Array(count) : allocate(dtype, count);
}

export function makeValue(dtype: DType, shape: readonly number[], data?: NumericArray): Value {
  return { dtype, shape, data: data ?? computeArray(dtype, shape.reduce((a, b) => a * b, 1)) };
}

export function fromTensor(t: Tensor): Value {
  if (t.dtype === 'string') throw new RangeError('string tensors cannot be computed on');
  if (isHalf(t.dtype)) return { dtype: t.dtype, shape: t.shape, data: t.toFloat32() };
  return { dtype: t.dtype, shape: t.shape, data: t.storage() };
}

export function toTensor(v: Value): Tensor {
  if (isHalf(v.dtype)) {
    const f = v.data as Float32Array;
    const bits = new Uint16Array(f.length);
    const encode = v.dtype === 'float16' ? float32ToFloat16Bits : float32ToBfloat16Bits;
    for (let i = 0; i < f.length; i++) bits[i] = encode(f[i]!);
    return Tensor.fromArray(v.dtype, v.shape, bits);
  }
  return Tensor.fromArray(v.dtype, v.shape, v.data);
}

/** Rounds a widened 16-bit float array back onto its type's grid, in place. */
export function roundHalf(dtype: DType, data: Float32Array): void {
  if (dtype === 'float16') for (let i = 0; i < data.length; i++) data[i] = float16BitsToFloat32(float32ToFloat16Bits(data[i]!));
  else if (dtype === 'bfloat16') for (let i = 0; i < data.length; i++) data[i] = bfloat16BitsToFloat32(float32ToBfloat16Bits(data[i]!));
}

export function sizeOfShape(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Reads an int64/int32 tensor value as plain numbers (shapes, axes). */
export function toIntList(v: Value): number[] {
  return Array.from(v.data as ArrayLike<number | bigint>, (x) => Number(x));
}
