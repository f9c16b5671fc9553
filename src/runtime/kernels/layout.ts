import { attrInt, attrInts, attrString } from '../../core/graph.js';
import { formatDims, KernelError, normalizeAxis, required, sameDType, type KernelFactory } from '../kernel.js';
import { makeValue, sizeOfShape, toIntList, type Value } from '../value.js';
import { contiguousStrides, copyStrided } from './strided.js';

/** Ops that move elements around without computing on them. All work for every dtype. */

const Transpose: KernelFactory = {
  prepare(node) {
    const permAttr = attrInts(node, 'perm');
    return (inputs) => {
      const x = required(inputs, 0, 'Transpose');
      const rank = x.shape.length;
      const perm = permAttr ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
      if (perm.length !== rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) throw new KernelError(`Transpose: perm [${perm.join(', ')}] is not a permutation of rank ${rank}`);
      const inStrides = contiguousStrides(x.shape);
      const shape = perm.map((p) => x.shape[p]!);
      const out = makeValue(x.dtype, shape);
      copyStrided(x.data, out.data, shape, perm.map((p) => inStrides[p]!), 0);
      return [out];
    };
  },
};

const Concat: KernelFactory = {
  prepare(node) {
    const axisAttr = attrInt(node, 'axis', 0);
    return (inputs) => {
      const parts = inputs.filter((v): v is Value => v !== undefined);
      if (!parts.length) throw new KernelError('Concat needs inputs');
      const first = parts[0]!;
      const dtype = sameDType(parts, 'Concat');
      const rank = first.shape.length;
      const axis = normalizeAxis(axisAttr, rank, 'Concat');
      for (const p of parts) {
        if (p.shape.length !== rank || p.shape.some((d, i) => i !== axis && d !== first.shape[i])) {
          throw new KernelError(`Concat: ${formatDims(p.shape)} does not match ${formatDims(first.shape)} off axis ${axis}`);
        }
      }
      const shape = [...first.shape];
      shape[axis] = parts.reduce((n, p) => n + p.shape[axis]!, 0);
      const out = makeValue(dtype, shape);
      const outer = sizeOfShape(shape.slice(0, axis));
      const inner = sizeOfShape(shape.slice(axis + 1));
      const dst = out.data as Uint8Array;
      let at = 0;
      for (let o = 0; o < outer; o++) {
        for (const p of parts) {
          const block = p.shape[axis]! * inner;
          dst.set((p.data as Uint8Array).subarray(o * block, (o + 1) * block), at);
          at += block;
        }
      }
      return [out];
    };
  },
};

/**
 * Split along an axis: sizes from the `split` attribute (before opset 13) or input (13+), else
 * equal parts; opset 18's num_outputs makes ceil-sized parts with a smaller last one.
 */
const Split: KernelFactory = {
  prepare(node, opset) {
    const axisAttr = attrInt(node, 'axis', 0);
    const count = node.outputs.length;
    const numOutputs = attrInt(node, 'num_outputs', 0);
    return (inputs) => {
      const x = required(inputs, 0, 'Split');
      const axis = normalizeAxis(axisAttr, x.shape.length, 'Split');
      const dim = x.shape[axis]!;
      let sizes = opset < 13 ? attrInts(node, 'split')?.slice() : inputs[1] ? toIntList(inputs[1]) : undefined;
      if (!sizes) {
        if (numOutputs > 0) {
          const each = Math.ceil(dim / numOutputs);
          sizes = Array.from({ length: numOutputs }, (_, i) => Math.max(0, Math.min(each, dim - i * each)));
        } else {
          if (dim % count !== 0) throw new KernelError(`Split: ${dim} does not split into ${count} equal parts`);
          sizes = new Array<number>(count).fill(dim / count);
        }
      }
      if (sizes.reduce((a, b) => a + b, 0) !== dim) throw new KernelError(`Split: sizes [${sizes.join(', ')}] do not add up to ${dim}`);
      const strides = contiguousStrides(x.shape);
      let start = 0;
      return sizes.map((size) => {
        const shape = [...x.shape];
        shape[axis] = size;
        const out = makeValue(x.dtype, shape);
        copyStrided(x.data, out.data, shape, strides, start * strides[axis]!);
        start += size;
        return out;
      });
    };
  },
};

/** Slice: starts/ends/axes attributes before opset 10; inputs (with steps) from 10. */
const Slice: KernelFactory = {
  prepare(node, opset) {
    return (inputs) => {
      const x = required(inputs, 0, 'Slice');
      const rank = x.shape.length;
      let starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined;
      if (opset < 10) {
        starts = attrInts(node, 'starts')?.slice() ?? [];
        ends = attrInts(node, 'ends')?.slice() ?? [];
        axes = attrInts(node, 'axes')?.slice();
      } else {
        starts = toIntList(required(inputs, 1, 'Slice'));
        ends = toIntList(required(inputs, 2, 'Slice'));
        axes = inputs[3] ? toIntList(inputs[3]) : undefined;
        steps = inputs[4] ? toIntList(inputs[4]) : undefined;
      }
      axes ??= starts.map((_, i) => i);
      if (ends.length !== starts.length || axes.length !== starts.length) throw new KernelError('Slice: starts, ends and axes differ in length');
      const shape = [...x.shape];
      const inStrides = contiguousStrides(x.shape);
      const strides = [...inStrides];
      let base = 0;
      axes.forEach((a, i) => {
        const axis = normalizeAxis(a, rank, 'Slice');
        const dim = x.shape[axis]!;
        const step = steps?.[i] ?? 1;
        if (step === 0) throw new KernelError('Slice: step 0');
        let start = starts[i]!;
        let end = ends[i]!;
        if (start < 0) start += dim;
        if (end < 0) end += dim;
        if (step > 0) {
          start = Math.min(Math.max(start, 0), dim);
          end = Math.min(Math.max(end, 0), dim);
        } else {
          start = Math.min(Math.max(start, 0), dim - 1);
          end = Math.min(Math.max(end, -1), dim - 1);
        }
        shape[axis] = Math.max(0, Math.ceil((end - start) / step));
        base += start * inStrides[axis]!;
        strides[axis] = step * inStrides[axis]!;
      });
      const out = makeValue(x.dtype, shape);
      copyStrided(x.data, out.data, shape, strides, base);
      return [out];
    };
  },
};

/** Tile: repeats the input `repeats[axis]` times along each axis. */
const Tile: KernelFactory = {
  prepare: () => (inputs) => {
    const x = required(inputs, 0, 'Tile');
    const repeats = toIntList(required(inputs, 1, 'Tile'));
    if (repeats.length !== x.shape.length) throw new KernelError(`Tile: ${repeats.length} repeats for rank ${x.shape.length}`);
    // A tiled axis is a (repeat, size) pair of axes where the repeat axis has stride 0.
    const inStrides = contiguousStrides(x.shape);
    const shape = x.shape.flatMap((d, i) => [repeats[i]!, d]);
    const strides = x.shape.flatMap((_, i) => [0, inStrides[i]!]);
    const out = makeValue(x.dtype, x.shape.map((d, i) => d * repeats[i]!));
    copyStrided(x.data, out.data, shape, strides, 0);
    return [out];
  },
};

/**
 * Pad: pads [begin..., end...] (negative crops). Attribute form before opset 11, inputs after
 * (constant_value, and from 18 the axes the pads apply to). Modes constant, edge, reflect, wrap.
 */
const Pad: KernelFactory = {
  prepare(node, opset) {
    const mode = attrString(node, 'mode', 'constant');
    if (!['constant', 'edge', 'reflect', 'wrap'].includes(mode)) throw new KernelError(`Pad: unknown mode ${mode}`);
    return (inputs) => {
      const x = required(inputs, 0, 'Pad');
      const rank = x.shape.length;
      let pads: number[];
      let fill: number | bigint = 0;
      if (opset < 11) {
        pads = attrInts(node, 'pads')?.slice() ?? [];
        fill = node.attributes['value']?.type === 'float' ? (node.attributes['value'].value as number) : 0;
      } else {
        const given = toIntList(required(inputs, 1, 'Pad'));
        const axes = inputs[3] ? toIntList(inputs[3]).map((a) => normalizeAxis(a, rank, 'Pad')) : Array.from({ length: rank }, (_, i) => i);
        if (given.length !== 2 * axes.length) throw new KernelError(`Pad: ${given.length} pads for ${axes.length} axes`);
        pads = new Array<number>(2 * rank).fill(0);
        axes.forEach((a, i) => {
          pads[a] = given[i]!;
          pads[a + rank] = given[i + axes.length]!;
        });
        if (inputs[2] && inputs[2].data.length) fill = inputs[2].data[0]!;
      }
      if (pads.length !== 2 * rank) throw new KernelError(`Pad: ${pads.length} pads for rank ${rank}`);
      const shape = x.shape.map((d, i) => d + pads[i]! + pads[i + rank]!);
      if (shape.some((d) => d < 0)) throw new KernelError(`Pad: pads [${pads.join(', ')}] crop ${formatDims(x.shape)} below zero`);
      const out = makeValue(x.dtype, shape);
      const src = x.data as { readonly [i: number]: number | bigint };
      const dst = out.data as { [i: number]: number | bigint };
      const fillValue = typeof src[0] === 'bigint' || x.data instanceof BigInt64Array || x.data instanceof BigUint64Array ? BigInt(fill) : Number(fill);
      const inStrides = contiguousStrides(x.shape);
      const total = sizeOfShape(shape);
      const index = new Array<number>(rank).fill(0);
      for (let o = 0; o < total; o++) {
        let at = 0;
        let inside = true;
        for (let axis = 0; axis < rank && inside; axis++) {
          const dim = x.shape[axis]!;
          let i = index[axis]! - pads[axis]!;
          if (i < 0 || i >= dim) {
            if (mode === 'constant' || dim === 0) inside = false;
            else if (mode === 'edge') i = i < 0 ? 0 : dim - 1;
            else if (mode === 'wrap') i = ((i % dim) + dim) % dim;
            else i = reflect(i, dim);
          }
          at += i * inStrides[axis]!;
        }
        dst[o] = inside ? src[at]! : fillValue;
        for (let axis = rank - 1; axis >= 0; axis--) {
          if (++index[axis]! < shape[axis]!) break;
          index[axis] = 0;
        }
      }
      return [out];
    };
  },
};

/** Mirror an out-of-range index back into [0, dim) without repeating the edge (numpy 'reflect'). */
function reflect(i: number, dim: number): number {
  if (dim === 1) return 0;
  const period = 2 * (dim - 1);
  const r = ((i % period) + period) % period;
  return r < dim ? r : period - r;
}

/** DepthToSpace (DCR or CRD) and SpaceToDepth: a reshape, a transpose and a reshape, done as one copy. */
function depthSpace(op: 'DepthToSpace' | 'SpaceToDepth'): KernelFactory {
  return {
    prepare(node) {
      const b = attrInt(node, 'blocksize', 0);
      const mode = attrString(node, 'mode', 'DCR');
      if (b < 1) throw new KernelError(`${op}: blocksize must be positive`);
      return (inputs) => {
        const x = required(inputs, 0, op);
        if (x.shape.length !== 4) throw new KernelError(`${op} takes NCHW input`);
        const [n, c, h, w] = x.shape as [number, number, number, number];
        let shape: number[];
        let strides: number[];
        let outShape: number[];
        if (op === 'DepthToSpace') {
          if (c % (b * b) !== 0) throw new KernelError(`DepthToSpace: ${c} channels do not divide by ${b * b}`);
          const co = c / (b * b);
          // Output axes [n, co, h, b1, w, b2]; input channel = DCR: (b1·b + b2)·co + co_i, CRD: co_i·b² + b1·b + b2.
          const [sn, sc, sh, sw] = contiguousStrides(x.shape) as [number, number, number, number];
          const ch = (k: number) => k * sc;
          strides = mode === 'CRD' ? [sn, ch(b * b), sh, ch(b), sw, ch(1)] : [sn, ch(1), sh, ch(b * co), sw, ch(co)];
          shape = [n, co, h, b, w, b];
          outShape = [n, co, h * b, w * b];
        } else {
          if (h % b !== 0 || w % b !== 0) throw new KernelError(`SpaceToDepth: ${h}x${w} does not divide by ${b}`);
          const [sn, sc, sh, sw] = contiguousStrides(x.shape) as [number, number, number, number];
          // Output axes [n, b1, b2, c, h/b, w/b]: channel = (b1·b + b2)·c + c_i.
          shape = [n, b, b, c, h / b, w / b];
          strides = [sn, sh, sw, sc, sh * b, sw * b];
          outShape = [n, c * b * b, h / b, w / b];
        }
        const out = makeValue(x.dtype, outShape);
        copyStrided(x.data, out.data, shape, strides, 0);
        return [out];
      };
    },
  };
}

/** Trilu: keeps the upper (j - i >= k) or lower (j - i <= k) triangle of the last two axes. */
const Trilu: KernelFactory = {
  prepare(node) {
    const upper = attrInt(node, 'upper', 1) !== 0;
    return (inputs) => {
      const x = required(inputs, 0, 'Trilu');
      const k = inputs[1] ? Number(inputs[1].data[0]) : 0;
      const rank = x.shape.length;
      if (rank < 2) throw new KernelError('Trilu takes inputs of rank 2 or more');
      const rows = x.shape[rank - 2]!;
      const cols = x.shape[rank - 1]!;
      const out = makeValue(x.dtype, x.shape);
      (out.data as Uint8Array).set(x.data as Uint8Array);
      const dst = out.data as { [i: number]: number | bigint };
      const zero = out.data instanceof BigInt64Array || out.data instanceof BigUint64Array ? 0n : 0;
      const matrices = sizeOfShape(x.shape) / Math.max(1, rows * cols);
      for (let t = 0; t < matrices; t++) {
        for (let i = 0; i < rows; i++) {
          for (let j = 0; j < cols; j++) {
            const keep = upper ? j - i >= k : j - i <= k;
            if (!keep) dst[(t * rows + i) * cols + j] = zero;
          }
        }
      }
      return [out];
    };
  },
};

export const LAYOUT_OPS: Readonly<Record<string, KernelFactory>> = {
  Transpose,
  Concat,
  Split,
  Slice,
  Tile,
  Pad,
  DepthToSpace: depthSpace('DepthToSpace'),
  SpaceToDepth: depthSpace('SpaceToDepth'),
  Trilu,
};
