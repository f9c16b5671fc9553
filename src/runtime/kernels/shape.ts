import type { DType } from '../../core/dtypes.js';
import { attrInt, attrInts, type Node } from '../../core/graph.js';
import type { NumericArray } from '../../core/tensor.js';
import { KernelError, normalizeAxis, required, type KernelFactory } from '../kernel.js';
import { computeArray, fromTensor, isHalf, makeValue, roundHalf, sizeOfShape, toIntList, type Value } from '../value.js';

const passThrough: KernelFactory = { prepare: () => (inputs) => [required(inputs, 0, 'Identity')] };

/**
 * Dropout at inference: the input passes through and the optional mask is all true. Training
 * mode draws random masks, which no runtime can reproduce bit for bit, so it is refused.
 */
export const Dropout: KernelFactory = {
  prepare: (node) => (inputs) => {
    const x = required(inputs, 0, 'Dropout');
    const training = inputs[2];
    if (training && training.data[0]) throw new KernelError('Dropout: training_mode=true (random masks) is not supported; modelbridge runs inference');
    if (node.outputs.length < 2 || !node.outputs[1]) return [x];
    const mask = makeValue('bool', x.shape);
    (mask.data as Uint8Array).fill(1);
    return [x, mask];
  },
};

/** Reshape (opset 5+: shape is an input). 0 copies the input's size unless allowzero; one -1 is inferred. */
export const Reshape: KernelFactory = {
  prepare(node) {
    const allowZero = attrInt(node, 'allowzero', 0) !== 0;
    return (inputs) => {
      const x = required(inputs, 0, 'Reshape');
      const target = toIntList(required(inputs, 1, 'Reshape'));
      const shape = target.map((d, i) => (d === 0 && !allowZero ? (x.shape[i] ?? 0) : d));
      const known = shape.reduce((n, d) => (d === -1 ? n : n * d), 1);
      const unknown = shape.filter((d) => d === -1).length;
      const total = sizeOfShape(x.shape);
      if (unknown > 1) throw new KernelError('Reshape: at most one -1');
      if (unknown === 1) {
        if (known === 0 || total % known !== 0) throw new KernelError(`Reshape: cannot infer -1 for ${total} elements into [${target.join(', ')}]`);
        shape[shape.indexOf(-1)] = total / known;
      }
      if (sizeOfShape(shape) !== total) throw new KernelError(`Reshape: [${x.shape.join(', ')}] has ${total} elements, [${shape.join(', ')}] needs ${sizeOfShape(shape)}`);
      return [{ dtype: x.dtype, shape, data: x.data }];
    };
  },
};

export const Flatten: KernelFactory = {
  prepare(node) {
    const axisAttr = attrInt(node, 'axis', 1);
    return (inputs) => {
      const x = required(inputs, 0, 'Flatten');
      const axis = axisAttr < 0 ? axisAttr + x.shape.length : axisAttr;
      if (axis < 0 || axis > x.shape.length) throw new KernelError(`Flatten: axis ${axisAttr} out of range`);
      const rows = sizeOfShape(x.shape.slice(0, axis));
      return [{ dtype: x.dtype, shape: [rows, sizeOfShape(x.shape.slice(axis))], data: x.data }];
    };
  },
};

export const Transpose: KernelFactory = {
  prepare(node) {
    const permAttr = attrInts(node, 'perm');
    return (inputs) => {
      const x = required(inputs, 0, 'Transpose');
      const rank = x.shape.length;
      const perm = permAttr ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
      if (perm.length !== rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) throw new KernelError(`Transpose: perm [${perm.join(', ')}] is not a permutation of rank ${rank}`);
      const shape = perm.map((p) => x.shape[p]!);
      const out = makeValue(x.dtype, shape);
      const inStrides = new Array<number>(rank);
      for (let i = rank - 1, s = 1; i >= 0; i--) {
        inStrides[i] = s;
        s *= x.shape[i]!;
      }
      const strides = perm.map((p) => inStrides[p]!);
      const src = x.data as Float64Array;
      const dst = out.data as Float64Array;
      const counter = new Array<number>(rank).fill(0);
      let at = 0;
      for (let o = 0; o < dst.length; o++) {
        dst[o] = src[at]!;
        for (let axis = rank - 1; axis >= 0; axis--) {
          counter[axis]!++;
          at += strides[axis]!;
          if (counter[axis]! < shape[axis]!) break;
          at -= strides[axis]! * shape[axis]!;
          counter[axis] = 0;
        }
      }
      return [out];
    };
  },
};

export const Concat: KernelFactory = {
  prepare(node) {
    const axisAttr = attrInt(node, 'axis', 0);
    return (inputs) => {
      const parts = inputs.filter((v): v is Value => v !== undefined);
      const first = parts[0];
      if (!first) throw new KernelError('Concat needs inputs');
      const rank = first.shape.length;
      const axis = normalizeAxis(axisAttr, rank, 'Concat');
      for (const p of parts) {
        if (p.dtype !== first.dtype || p.shape.length !== rank || p.shape.some((d, i) => i !== axis && d !== first.shape[i])) {
          throw new KernelError(`Concat: [${p.shape.join(', ')}] does not match [${first.shape.join(', ')}] off axis ${axis}`);
        }
      }
      const shape = [...first.shape];
      shape[axis] = parts.reduce((n, p) => n + p.shape[axis]!, 0);
      const out = makeValue(first.dtype, shape);
      const outer = sizeOfShape(shape.slice(0, axis));
      const inner = sizeOfShape(shape.slice(axis + 1));
      const dst = out.data as Float64Array;
      let at = 0;
      for (let o = 0; o < outer; o++) {
        for (const p of parts) {
          const block = p.shape[axis]! * inner;
          dst.set((p.data as Float64Array).subarray(o * block, (o + 1) * block), at);
          at += block;
        }
      }
      return [out];
    };
  },
};

/** ONNX TensorProto.DataType numbers for Cast's `to` attribute. */
const ONNX_TYPES: Readonly<Record<number, DType>> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};

export function onnxTypeToDType(code: number): DType | undefined {
  return ONNX_TYPES[code];
}

function castValue(x: Value, to: DType): Value {
  const n = x.data.length;
  const out = computeArray(to, n) as NumericArray;
  const src = x.data;
  const bigOut = out instanceof BigInt64Array || out instanceof BigUint64Array;
  for (let i = 0; i < n; i++) {
    const v = src[i]!;
    if (bigOut) {
      const num = typeof v === 'bigint' ? v : BigInt(Number.isFinite(v) ? Math.trunc(v) : 0);
      (out as BigInt64Array)[i] = num;
    } else if (to === 'bool') {
      (out as Uint8Array)[i] = Number(v) !== 0 ? 1 : 0;
    } else {
      // Float to int truncates toward zero; typed arrays wrap out-of-range values like C casts.
      const num = Number(v);
      (out as Float64Array)[i] = to === 'float32' || to === 'float64' || isHalf(to) ? num : Math.trunc(num);
    }
  }
  if (isHalf(to)) roundHalf(to, out as Float32Array);
  return { dtype: to, shape: x.shape, data: out };
}

export const Cast: KernelFactory = {
  prepare(node) {
    const to = onnxTypeToDType(attrInt(node, 'to', 1));
    if (!to) throw new KernelError(`Cast: unsupported target type ${attrInt(node, 'to', 0)}`);
    return (inputs) => {
      const x = required(inputs, 0, 'Cast');
      return [x.dtype === to ? x : castValue(x, to)];
    };
  },
};

export const Constant: KernelFactory = {
  prepare(node: Node) {
    const a = node.attributes['value'];
    if (!a || a.type !== 'tensor') throw new KernelError('Constant: only the tensor `value` form is supported');
    const value = fromTensor(a.value);
    return () => [value];
  },
};

export const SHAPE_KERNELS: Readonly<Record<string, KernelFactory>> = {
  Identity: passThrough,
  Dropout,
  Reshape,
  Flatten,
  Transpose,
  Concat,
  Cast,
  Constant,
};
