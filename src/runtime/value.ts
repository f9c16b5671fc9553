import type { DType } from '../core/dtypes.js';
import { UsageError } from '../core/errors.js';
import { bfloat16BitsToFloat32, float16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits } from '../core/half.js';
import { allocate, Tensor, type NumericArray } from '../core/tensor.js';
import { activeArena } from './arena.js';

/**
 * A value inside the runtime: dtype, shape and a typed array of elements. Kernels work on these
 * rather than on Tensors so a run allocates nothing but result arrays. float16 and bfloat16
 * values are held widened in a Float32Array whose elements are always exactly representable in
 * the 16-bit type (the executor rounds each result back), which is how ONNX computes them.
 * Kernels never write into their inputs: outputs may share an input's array (Reshape does).
 */
export interface Value {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: NumericArray;
}

export type BigArray = BigInt64Array | BigUint64Array;
export type FloatArray = Float32Array | Float64Array;
/** Arrays whose elements are JS numbers (everything but the 64-bit integers). */
export type SmallArray = Exclude<NumericArray, BigArray>;

/** The dtypes the runtime computes on; strings, complex and the 8/4-bit storage floats it does not. */
const COMPUTABLE: ReadonlySet<DType> = new Set<DType>([
  'float32', 'float64', 'float16', 'bfloat16',
  'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'bool',
]);

export function isComputable(dtype: DType): boolean {
  return COMPUTABLE.has(dtype);
}

export function isHalf(dtype: DType): boolean {
  return dtype === 'float16' || dtype === 'bfloat16';
}

export function isFloatDType(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16' || dtype === 'bfloat16';
}

export function isBig(data: NumericArray): data is BigArray {
  return data instanceof BigInt64Array || data instanceof BigUint64Array;
}

/** The array type a dtype computes in (float32 arrays from the running Session's arena, see arena.ts). */
export function computeArray(dtype: DType, count: number): NumericArray {
  if (dtype === 'float32' || isHalf(dtype)) {
    const arena = activeArena();
    return arena ? arena.take(count) : new Float32Array(count);
  }
  return allocate(dtype, count);
}

export function sizeOfShape(shape: readonly number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) n *= shape[i]!;
  return n;
}

/**
 * A float32 result whose every element the caller is about to write (a GEMM's output copied out
 * of the module): from the arena without zeroing, which is a pass over memory of its own.
 */
export function float32Output(shape: readonly number[]): Value {
  const count = sizeOfShape(shape);
  const arena = activeArena();
  return { dtype: 'float32', shape, data: arena ? arena.take(count, false) : new Float32Array(count) };
}

/**
 * A float32 result in the WebAssembly module's memory (see arena.ts), for a kernel of the module
 * that writes every element, from the running Session's arena. Null outside a run (the arena
 * keeps a resident array alive as long as views of it may exist) and where the module's memory
 * cannot hold it: the caller then writes through a copy.
 */
export function float32Resident(shape: readonly number[]): Value | null {
  const data = activeArena()?.takeResident(sizeOfShape(shape));
  return data ? { dtype: 'float32', shape, data } : null;
}

export function makeValue(dtype: DType, shape: readonly number[], data?: NumericArray): Value {
  return { dtype, shape, data: data ?? computeArray(dtype, sizeOfShape(shape)) };
}

export function fromTensor(t: Tensor, what: string): Value {
  if (!isComputable(t.dtype)) throw new UsageError(`${what} is ${t.dtype}, which the runtime does not compute on`);
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

/** Rounds a widened 16-bit float array onto its type's grid, in place (idempotent). */
export function roundHalf(dtype: DType, data: Float32Array): void {
  if (dtype === 'float16') for (let i = 0; i < data.length; i++) data[i] = float16BitsToFloat32(float32ToFloat16Bits(data[i]!));
  else if (dtype === 'bfloat16') for (let i = 0; i < data.length; i++) data[i] = bfloat16BitsToFloat32(float32ToBfloat16Bits(data[i]!));
}

/** Reads an int64/int32 value as plain numbers (shapes, axes, indices). */
export function toIntList(v: Value): number[] {
  const out = new Array<number>(v.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(v.data[i]!);
  return out;
}

/** A 1-D int64 value from numbers (Shape, NonZero, ArgMax outputs). */
export function int64Value(shape: readonly number[], values: ArrayLike<number>): Value {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]!);
  return { dtype: 'int64', shape, data };
}
