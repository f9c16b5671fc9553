import { byteLengthOf, type DType } from '../../core/dtypes.js';
import type { FormatErrors } from '../../core/errors.js';
import { elementCount, formatShape, type Shape } from '../../core/shape.js';
import { allocate, Tensor } from '../../core/tensor.js';
import { claimExpansion } from '../../core/budget.js';
import { dtypeToTfCode, tfCodeToDType, tfTypeName } from '../tensorbundle/dtypes.js';
import type { TensorProto, TensorShapeProto } from './messages.js';
import { int64ToBigInt, int64ToNumber, type Int64 } from '../../core/int64.js';

/**
 * TensorProto <-> Tensor. A TensorProto holds its elements either as raw little-endian bytes
 * (tensor_content) or in the typed list for its dtype; a typed list shorter than the tensor is
 * completed by repeating its last value (an empty one means zeros), as TensorFlow's
 * Tensor::FromProto does, which is how `tf.zeros`-like constants stay one value long.
 */

/** A static shape: sizes, with null for unknown sizes; null when even the rank is unknown. */
export function shapeFromProto(shape: TensorShapeProto | null | undefined): (number | null)[] | null {
  if (!shape) return [];
  if (shape.unknown_rank) return null;
  return shape.dim.map((d) => {
    const n = int64ToNumber(d.size);
    return n === undefined || n < 0 ? null : n;
  });
}

export function shapeToProto(shape: readonly (number | string | null)[] | null): object {
  if (shape === null) return { unknown_rank: true };
  return { dim: shape.map((d) => ({ size: typeof d === 'number' ? d : -1 })) };
}

/** The dtype a TF type code names, or a FormatError naming the code. */
export function dtypeOf(code: number, e: FormatErrors, where: string): DType {
  const dtype = tfCodeToDType(code);
  if (!dtype) e.fail(where, `a supported element type, not ${tfTypeName(code)}`);
  return dtype;
}

export function tfCode(dtype: DType): number {
  const code = dtypeToTfCode(dtype);
  if (code === undefined) throw new RangeError(`TensorFlow has no type for ${dtype}`);
  return code;
}

/** The typed list that holds a dtype's values, and how to store one value into a storage array. */
function typedValues(p: TensorProto, dtype: DType): ArrayLike<number | bigint | boolean | Int64> | undefined {
  switch (dtype) {
    case 'float32':
      return p.float_val;
    case 'float64':
      return p.double_val;
    case 'int32':
    case 'int16':
    case 'int8':
    case 'uint8':
    case 'uint16':
      return p.int_val;
    case 'int64':
      return p.int64_val;
    case 'uint32':
      return p.uint32_val;
    case 'uint64':
      return p.uint64_val;
    case 'bool':
      return p.bool_val;
    case 'float16':
    case 'bfloat16':
      return p.half_val;
    case 'complex64':
      return p.scomplex_val;
    case 'complex128':
      return p.dcomplex_val;
    default:
      return dtype.startsWith('float8') ? p.float8_val : undefined;
  }
}

/** Decodes a TensorProto; `where` names it in errors (e.g. "node dense/kernel attr value"). */
/**
 * TensorProtos that stand for a tensor modelbridge already holds (TF.js weights, left in their
 * shard files), so the TF importer takes the tensor itself instead of bytes copied into the proto.
 */
const STAND_INS = new WeakMap<TensorProto, Tensor>();

/** Marks `proto` (shape and dtype filled, no values) as standing for `tensor`. */
export function standIn(proto: TensorProto, tensor: Tensor): TensorProto {
  STAND_INS.set(proto, tensor);
  return proto;
}

/** The tensor a stand-in proto stands for, if it is one. */
export function heldTensor(p: TensorProto): Tensor | undefined {
  return STAND_INS.get(p);
}

export function tensorFromProto(p: TensorProto, e: FormatErrors, where: string): Tensor {
  const held = STAND_INS.get(p);
  if (held) return held;
  const dtype = dtypeOf(p.dtype, e, `${where} dtype`);
  const dims = shapeFromProto(p.tensor_shape);
  e.check(dims !== null && dims.every((d) => d !== null), `${where} shape`, 'a fully known shape');
  const shape = dims as number[];
  const count = elementCount(shape);
  e.check(count !== undefined, `${where} shape`, `a shape of safe size, not ${formatShape(shape)}`);
  if (dtype === 'string') {
    const list = p.string_val;
    e.check(list.length <= count, `${where} string_val`, `at most ${count} strings, found ${list.length}`);
    // TF repeats the last string to fill the shape: each repeat is an element slot we allocate.
    if (list.length < count) claimExpansion(e.fail, `${where} string_val`, `a string constant broadcast to ${formatShape(shape)}`, (count - list.length) * 8);
    const strings = Array.from({ length: count }, (_, i) => list[Math.min(i, list.length - 1)] ?? new Uint8Array(0));
    return Tensor.fromStrings(shape, strings);
  }
  const byteLength = byteLengthOf(dtype, count);
  e.check(byteLength !== undefined, `${where}`, `whole bytes for ${count} ${dtype} elements`);
  if (p.tensor_content.byteLength > 0) {
    e.check(p.tensor_content.byteLength === byteLength, `${where} tensor_content`, `${byteLength} bytes for ${dtype} ${formatShape(shape)}, found ${p.tensor_content.byteLength}`);
    return Tensor.fromBytes(dtype, shape, p.tensor_content);
  }
  const values = typedValues(p, dtype);
  e.check(values !== undefined, `${where}`, `tensor_content for ${dtype}`);
  const perElement = dtype === 'complex64' || dtype === 'complex128' ? 2 : 1;
  const stored = values.length;
  e.check(stored <= count * perElement, `${where} values`, `at most ${count * perElement} values, found ${stored}`);
  e.check(stored % perElement === 0, `${where} values`, 'real and imaginary parts in pairs');
  // TF repeats the last value to fill the shape: a few bytes in the file, the whole tensor here.
  if (stored < count * perElement) claimExpansion(e.fail, `${where} values`, `a constant broadcast to ${formatShape(shape)} ${dtype}`, byteLength);
  const out = allocate(dtype, count);
  // Past the stored values the last element (both parts, for complex) repeats.
  const source = (i: number) => values[i < stored ? i : stored - perElement + (i % perElement)]!;
  const total = stored > 0 ? count * perElement : 0;
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    const unsigned = out instanceof BigUint64Array;
    for (let i = 0; i < total; i++) out[i] = int64ToBigInt(source(i) as Int64, unsigned);
  } else {
    for (let i = 0; i < total; i++) {
      const v = source(i);
      out[i] = typeof v === 'boolean' ? (v ? 1 : 0) : typeof v === 'number' ? v : (int64ToNumber(v as Int64) ?? 0);
    }
  }
  return Tensor.fromArray(dtype, shape, out);
}

/** A TensorProto (plain object, for encodeMessage) holding the tensor's bytes as TF writes them. */
export function tensorToProto(t: Tensor): object {
  const base = { dtype: tfCode(t.dtype), tensor_shape: shapeToProto(t.shape) };
  if (t.dtype === 'string') return { ...base, string_val: [...t.strings!] };
  return t.byteLength ? { ...base, tensor_content: t.bytes() } : base;
}

/** A TensorProto of `shape` filled with one value (written once: TF repeats it). */
export function filledTensorProto(dtype: DType, shape: Shape, value: number): object {
  const base = { dtype: tfCode(dtype), tensor_shape: shapeToProto(shape) };
  switch (dtype) {
    case 'float32':
      return { ...base, float_val: [value] };
    case 'float64':
      return { ...base, double_val: [value] };
    case 'int64':
      return { ...base, int64_val: [value] };
    case 'bool':
      return { ...base, bool_val: [value !== 0] };
    default:
      return tensorToProto(Tensor.from(dtype, shape, new Array<number>(elementCount(shape) ?? 0).fill(value)));
  }
}
