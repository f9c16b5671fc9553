import { attrInt, type Node } from '../../core/graph.js';
import { onnxCodeToDType } from '../../formats/onnx/dtypes.js';
import { attrFloats, attrTensor, KernelError, required, type KernelFactory } from '../kernel.js';
import { fromTensor, isBig, makeValue, toIntList, type Value } from '../value.js';
import { castValue } from './cast.js';

/** The value of a Constant node, from whichever of its (mutually exclusive) attributes is set. */
function constantValue(node: Node): Value {
  const tensor = attrTensor(node, 'value') ?? attrTensor(node, 'sparse_value');
  if (tensor) return fromTensor(tensor, `Constant ${node.name}`);
  const a = node.attributes;
  const f = a['value_float'];
  if (f && (f.type === 'float' || f.type === 'int')) return { dtype: 'float32', shape: [], data: Float32Array.of(f.value) };
  const fs = attrFloats(node, 'value_floats');
  if (fs) return { dtype: 'float32', shape: [fs.length], data: Float32Array.from(fs) };
  const i = a['value_int'];
  if (i && i.type === 'int') return { dtype: 'int64', shape: [], data: BigInt64Array.of(BigInt(i.value)) };
  const is = a['value_ints'];
  if (is && is.type === 'ints') return { dtype: 'int64', shape: [is.value.length], data: BigInt64Array.from(is.value, (v) => BigInt(v)) };
  throw new KernelError('Constant: no numeric value attribute (string constants are not supported)');
}

/** Constant: the value is decoded once, when the session is built. */
const Constant: KernelFactory = {
  prepare(node) {
    const value = constantValue(node);
    return () => [value];
  },
};

/** ConstantOfShape: a tensor of the given shape filled with `value` (default float32 0). */
const ConstantOfShape: KernelFactory = {
  prepare(node) {
    const t = attrTensor(node, 'value');
    const fill: Value = t ? fromTensor(t, `ConstantOfShape ${node.name} value`) : { dtype: 'float32', shape: [1], data: new Float32Array(1) };
    if (fill.data.length !== 1) throw new KernelError('ConstantOfShape: value must have one element');
    return (inputs) => {
      const shape = toIntList(required(inputs, 0, 'ConstantOfShape'));
      const out = makeValue(fill.dtype, shape);
      if (isBig(out.data)) out.data.fill(fill.data[0] as bigint);
      else (out.data as Float32Array).fill(fill.data[0] as number);
      return [out];
    };
  },
};

/** Range: start, start + delta, ... up to (excluding) limit, in the inputs' dtype. */
const Range: KernelFactory = {
  prepare: () => (inputs) => {
    const [start, limit, delta] = [0, 1, 2].map((i) => required(inputs, i, 'Range'));
    if (isBig(start!.data)) {
      const s = start!.data[0] as bigint;
      const l = limit!.data[0] as bigint;
      const d = delta!.data[0] as bigint;
      if (d === 0n) throw new KernelError('Range: delta is 0');
      const span = l - s;
      const count = span === 0n || span > 0n !== d > 0n ? 0 : Number((span + d - (d > 0n ? 1n : -1n)) / d);
      const out = makeValue(start!.dtype, [count]);
      for (let i = 0; i < count; i++) (out.data as BigInt64Array)[i] = s + BigInt(i) * d;
      return [out];
    }
    const s = Number(start!.data[0]);
    const l = Number(limit!.data[0]);
    const d = Number(delta!.data[0]);
    if (d === 0) throw new KernelError('Range: delta is 0');
    const count = Math.max(Math.ceil((l - s) / d), 0);
    const out = makeValue(start!.dtype, [count]);
    for (let i = 0; i < count; i++) (out.data as Float64Array)[i] = s + i * d;
    return [out];
  },
};

/** EyeLike: ones on the k-th diagonal of a 2-D shape, in `dtype` or the input's dtype. */
const EyeLike: KernelFactory = {
  prepare(node) {
    const k = attrInt(node, 'k', 0);
    const code = attrInt(node, 'dtype', -1);
    const dtype = code >= 0 ? onnxCodeToDType(code) : undefined;
    if (code >= 0 && !dtype) throw new KernelError(`EyeLike: unsupported dtype code ${code}`);
    return (inputs) => {
      const x = required(inputs, 0, 'EyeLike');
      if (x.shape.length !== 2) throw new KernelError('EyeLike takes a 2-D input');
      const [rows, cols] = x.shape as [number, number];
      const eye = makeValue('float64', [rows, cols]);
      for (let i = 0; i < rows; i++) if (i + k >= 0 && i + k < cols) (eye.data as Float64Array)[i * cols + i + k] = 1;
      return [castValue(eye, dtype ?? x.dtype)];
    };
  },
};

export const CONSTANT_OPS: Readonly<Record<string, KernelFactory>> = { Constant, ConstantOfShape, Range, EyeLike };
