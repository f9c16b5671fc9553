import { attrInt, attrString } from '../../core/graph.js';
import { formatDims, KernelError, normalizeAxis, required, type KernelFactory } from '../kernel.js';
import { int64Value, isBig, makeValue, sizeOfShape, toIntList, type Value } from '../value.js';
import { contiguousStrides } from './strided.js';

type Load = { readonly [i: number]: number | bigint };
type Store = { [i: number]: number | bigint };

/** An index into a dimension of size `dim`: negative counts from the end; out of range is an error. */
function resolveIndex(i: number, dim: number, op: string): number {
  const r = i < 0 ? i + dim : i;
  if (r < 0 || r >= dim) throw new KernelError(`${op}: index ${i} is out of range for a dimension of ${dim}`);
  return r;
}

/** Gather: takes whole slices along `axis` at the given indices. */
const Gather: KernelFactory = {
  prepare(node) {
    const axisAttr = attrInt(node, 'axis', 0);
    return (inputs) => {
      const x = required(inputs, 0, 'Gather');
      const idx = required(inputs, 1, 'Gather');
      const axis = normalizeAxis(axisAttr, x.shape.length, 'Gather');
      const dim = x.shape[axis]!;
      const outer = sizeOfShape(x.shape.slice(0, axis));
      const inner = sizeOfShape(x.shape.slice(axis + 1));
      const indices = toIntList(idx).map((i) => resolveIndex(i, dim, 'Gather'));
      const out = makeValue(x.dtype, [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)]);
      const src = x.data as Uint8Array;
      const dst = out.data as Uint8Array;
      let at = 0;
      for (let o = 0; o < outer; o++) {
        for (const i of indices) {
          const from = (o * dim + i) * inner;
          dst.set(src.subarray(from, from + inner), at);
          at += inner;
        }
      }
      return [out];
    };
  },
};

/** Decomposes a flat row-major index into the multi-index of `shape`. */
function unravel(flat: number, shape: readonly number[], into: number[]): void {
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    const d = shape[axis]!;
    into[axis] = flat % d;
    flat = Math.floor(flat / d);
  }
}

/** GatherElements: out[i] = data[i with the axis coordinate replaced by indices[i]]. */
const GatherElements: KernelFactory = {
  prepare(node) {
    const axisAttr = attrInt(node, 'axis', 0);
    return (inputs) => {
      const x = required(inputs, 0, 'GatherElements');
      const idx = required(inputs, 1, 'GatherElements');
      const rank = x.shape.length;
      if (idx.shape.length !== rank) throw new KernelError('GatherElements: data and indices must have the same rank');
      const axis = normalizeAxis(axisAttr, rank, 'GatherElements');
      const strides = contiguousStrides(x.shape);
      const out = makeValue(x.dtype, idx.shape);
      const src = x.data as Load;
      const dst = out.data as Store;
      const coords = new Array<number>(rank).fill(0);
      for (let o = 0; o < out.data.length; o++) {
        unravel(o, idx.shape, coords);
        coords[axis] = resolveIndex(Number(idx.data[o]!), x.shape[axis]!, 'GatherElements');
        let at = 0;
        for (let d = 0; d < rank; d++) at += coords[d]! * strides[d]!;
        dst[o] = src[at]!;
      }
      return [out];
    };
  },
};

/** GatherND with batch_dims: each index tuple (last axis of indices) selects a slice of data. */
const GatherND: KernelFactory = {
  prepare(node) {
    const batchDims = attrInt(node, 'batch_dims', 0);
    return (inputs) => {
      const x = required(inputs, 0, 'GatherND');
      const idx = required(inputs, 1, 'GatherND');
      const k = idx.shape[idx.shape.length - 1]!;
      if (batchDims + k > x.shape.length) throw new KernelError(`GatherND: index tuples of ${k} do not fit ${formatDims(x.shape)} after ${batchDims} batch axes`);
      const batch = sizeOfShape(x.shape.slice(0, batchDims));
      const sliceShape = x.shape.slice(batchDims + k);
      const slice = sizeOfShape(sliceShape);
      const tuples = sizeOfShape(idx.shape.slice(0, -1)) / Math.max(1, batch);
      const perBatch = sizeOfShape(x.shape.slice(batchDims));
      const strides = contiguousStrides(x.shape.slice(batchDims));
      const out = makeValue(x.dtype, [...idx.shape.slice(0, -1), ...sliceShape]);
      const src = x.data as Uint8Array;
      const dst = out.data as Uint8Array;
      const ind = toIntList(idx);
      let at = 0;
      for (let b = 0; b < batch; b++) {
        for (let t = 0; t < tuples; t++) {
          let from = b * perBatch;
          for (let j = 0; j < k; j++) from += resolveIndex(ind[(b * tuples + t) * k + j]!, x.shape[batchDims + j]!, 'GatherND') * strides[j]!;
          dst.set(src.subarray(from, from + slice), at);
          at += slice;
        }
      }
      return [out];
    };
  },
};

type Combine = (old: number | bigint, update: number | bigint) => number | bigint;

function combiner(reduction: string, op: string): Combine {
  switch (reduction) {
    case 'none':
      return (_, u) => u;
    case 'add':
      return (a, u) => (typeof a === 'bigint' ? a + (u as bigint) : a + (u as number));
    case 'mul':
      return (a, u) => (typeof a === 'bigint' ? a * (u as bigint) : a * (u as number));
    case 'max':
      return (a, u) => (u > a ? u : a);
    case 'min':
      return (a, u) => (u < a ? u : a);
    default:
      throw new KernelError(`${op}: unknown reduction ${reduction}`);
  }
}

function copyOf(x: Value): Value {
  const out = makeValue(x.dtype, x.shape);
  (out.data as Uint8Array).set(x.data as Uint8Array);
  return out;
}

/** ScatterElements: a copy of data with updates written (or reduced) at the GatherElements positions. */
const ScatterElements: KernelFactory = {
  prepare(node) {
    const axisAttr = attrInt(node, 'axis', 0);
    const combine = combiner(attrString(node, 'reduction', 'none'), 'ScatterElements');
    return (inputs) => {
      const x = required(inputs, 0, 'ScatterElements');
      const idx = required(inputs, 1, 'ScatterElements');
      const upd = required(inputs, 2, 'ScatterElements');
      const rank = x.shape.length;
      const axis = normalizeAxis(axisAttr, rank, 'ScatterElements');
      const strides = contiguousStrides(x.shape);
      const out = copyOf(x);
      const dst = out.data as Store;
      const updates = upd.data as Load;
      const coords = new Array<number>(rank).fill(0);
      for (let u = 0; u < idx.data.length; u++) {
        unravel(u, idx.shape, coords);
        coords[axis] = resolveIndex(Number(idx.data[u]!), x.shape[axis]!, 'ScatterElements');
        let at = 0;
        for (let d = 0; d < rank; d++) at += coords[d]! * strides[d]!;
        dst[at] = combine(dst[at]!, updates[u]!);
      }
      return [out];
    };
  },
};

/** ScatterND: a copy of data with update slices written (or reduced) at index tuples. */
const ScatterND: KernelFactory = {
  prepare(node) {
    const combine = combiner(attrString(node, 'reduction', 'none'), 'ScatterND');
    return (inputs) => {
      const x = required(inputs, 0, 'ScatterND');
      const idx = required(inputs, 1, 'ScatterND');
      const upd = required(inputs, 2, 'ScatterND');
      const k = idx.shape[idx.shape.length - 1]!;
      const slice = sizeOfShape(x.shape.slice(k));
      const strides = contiguousStrides(x.shape);
      const out = copyOf(x);
      const dst = out.data as Store;
      const updates = upd.data as Load;
      const ind = toIntList(idx);
      const tuples = ind.length / Math.max(1, k);
      for (let t = 0; t < tuples; t++) {
        let at = 0;
        for (let j = 0; j < k; j++) at += resolveIndex(ind[t * k + j]!, x.shape[j]!, 'ScatterND') * strides[j]!;
        for (let e = 0; e < slice; e++) dst[at + e] = combine(dst[at + e]!, updates[t * slice + e]!);
      }
      return [out];
    };
  },
};

/** OneHot: values[1] where the index along the new axis equals the input index, values[0] elsewhere. */
const OneHot: KernelFactory = {
  prepare(node) {
    const axisAttr = attrInt(node, 'axis', -1);
    return (inputs) => {
      const idx = required(inputs, 0, 'OneHot');
      const depth = Math.trunc(Number(required(inputs, 1, 'OneHot').data[0]));
      const values = required(inputs, 2, 'OneHot');
      const rank = idx.shape.length + 1;
      const axis = normalizeAxis(axisAttr, rank, 'OneHot');
      const outer = sizeOfShape(idx.shape.slice(0, axis));
      const inner = sizeOfShape(idx.shape.slice(axis));
      const out = makeValue(values.dtype, [...idx.shape.slice(0, axis), depth, ...idx.shape.slice(axis)]);
      const [off, on] = [values.data[0]!, values.data[1]!];
      const dst = out.data as Store;
      for (let i = 0; i < out.data.length; i++) dst[i] = off;
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          let v = Math.trunc(Number(idx.data[o * inner + i]!));
          if (v < 0) v += depth;
          if (v >= 0 && v < depth) dst[(o * depth + v) * inner + i] = on;
        }
      }
      return [out];
    };
  },
};

/** NonZero: the coordinates of non-zero elements, as int64 [rank, count] in row-major order. */
const NonZero: KernelFactory = {
  prepare: () => (inputs) => {
    const x = required(inputs, 0, 'NonZero');
    const rank = x.shape.length;
    const hits: number[] = [];
    const big = isBig(x.data);
    for (let i = 0; i < x.data.length; i++) if (big ? x.data[i] !== 0n : x.data[i] !== 0) hits.push(i);
    const coords = new Array<number>(Math.max(rank, 1)).fill(0);
    const flat = new Array<number>(rank * hits.length);
    hits.forEach((h, j) => {
      unravel(h, x.shape, coords);
      for (let d = 0; d < rank; d++) flat[d * hits.length + j] = coords[d]!;
    });
    return [int64Value([rank, hits.length], flat)];
  },
};

export const GATHER_OPS: Readonly<Record<string, KernelFactory>> = {
  Gather,
  GatherElements,
  GatherND,
  ScatterElements,
  ScatterND,
  OneHot,
  NonZero,
};
