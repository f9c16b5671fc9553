import { attrInt } from '../../core/graph.js';
import { KernelError, normalizeAxis, required, type KernelFactory } from '../kernel.js';
import { int64Value, makeValue, sizeOfShape, toIntList, type Value } from '../value.js';

type Load = { readonly [i: number]: number | bigint };
type Store = { [i: number]: number | bigint };

/**
 * TopK: the k largest (or smallest) elements along an axis, with their int64 indices. Equal
 * values keep index order (the lower index first), as ONNX's reference sorts stably.
 */
const TopK: KernelFactory = {
  prepare(node) {
    const axisAttr = attrInt(node, 'axis', -1);
    const largest = attrInt(node, 'largest', 1) !== 0;
    return (inputs) => {
      const x = required(inputs, 0, 'TopK');
      const k = Number(required(inputs, 1, 'TopK').data[0]);
      const axis = normalizeAxis(axisAttr, x.shape.length, 'TopK');
      const len = x.shape[axis]!;
      if (k < 0 || k > len) throw new KernelError(`TopK: k = ${k} is outside [0, ${len}]`);
      const outer = sizeOfShape(x.shape.slice(0, axis));
      const inner = sizeOfShape(x.shape.slice(axis + 1));
      const shape = x.shape.map((d, i) => (i === axis ? k : d));
      const values = makeValue(x.dtype, shape);
      const indices = new Array<number>(sizeOfShape(shape));
      const src = x.data as Load;
      const dst = values.data as Store;
      const order = Array.from({ length: len }, (_, i) => i);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          const at = (j: number) => src[(o * len + j) * inner + i]!;
          order.sort((a, b) => {
            const va = at(a);
            const vb = at(b);
            if (va === vb) return a - b;
            return (largest ? va < vb : va > vb) ? 1 : -1;
          });
          for (let j = 0; j < k; j++) {
            const to = (o * k + j) * inner + i;
            dst[to] = at(order[j]!);
            indices[to] = order[j]!;
          }
          order.sort((a, b) => a - b);
        }
      }
      return [values, int64Value(shape, indices)];
    };
  },
};

/** Compress: the slices along `axis` (or elements of the flattened input) where condition is true. */
const Compress: KernelFactory = {
  prepare(node) {
    const axisAttr = node.attributes['axis'] ? attrInt(node, 'axis', 0) : undefined;
    return (inputs) => {
      let x = required(inputs, 0, 'Compress');
      const condition = required(inputs, 1, 'Compress').data;
      if (axisAttr === undefined) x = { dtype: x.dtype, shape: [x.data.length], data: x.data };
      const axis = normalizeAxis(axisAttr ?? 0, x.shape.length, 'Compress');
      const len = x.shape[axis]!;
      const keep: number[] = [];
      for (let j = 0; j < Math.min(len, condition.length); j++) if (condition[j]) keep.push(j);
      const outer = sizeOfShape(x.shape.slice(0, axis));
      const inner = sizeOfShape(x.shape.slice(axis + 1));
      const out = makeValue(x.dtype, x.shape.map((d, i) => (i === axis ? keep.length : d)));
      const src = x.data as Uint8Array;
      const dst = out.data as Uint8Array;
      let at = 0;
      for (let o = 0; o < outer; o++) {
        for (const j of keep) {
          dst.set(src.subarray((o * len + j) * inner, (o * len + j + 1) * inner), at);
          at += inner;
        }
      }
      return [out];
    };
  },
};

/** ReverseSequence: reverses the first sequence_lens[b] steps along the time axis of each batch entry. */
const ReverseSequence: KernelFactory = {
  prepare(node) {
    const batchAxis = attrInt(node, 'batch_axis', 1);
    const timeAxis = attrInt(node, 'time_axis', 0);
    return (inputs) => {
      const x = required(inputs, 0, 'ReverseSequence');
      const lens = toIntList(required(inputs, 1, 'ReverseSequence'));
      const rank = x.shape.length;
      const strides = x.shape.map((_, i) => sizeOfShape(x.shape.slice(i + 1)));
      const out: Value = makeValue(x.dtype, x.shape);
      const src = x.data as Load;
      const dst = out.data as Store;
      const index = new Array<number>(rank).fill(0);
      for (let e = 0; e < x.data.length; e++) {
        const t = index[timeAxis]!;
        const len = lens[index[batchAxis]!]!;
        const from = t < len ? e + (len - 1 - 2 * t) * strides[timeAxis]! : e;
        dst[e] = src[from]!;
        for (let d = rank - 1; d >= 0; d--) {
          if (++index[d]! < x.shape[d]!) break;
          index[d] = 0;
        }
      }
      return [out];
    };
  },
};

export const SELECTION_OPS: Readonly<Record<string, KernelFactory>> = { TopK, Compress, ReverseSequence };
