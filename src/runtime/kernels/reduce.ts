import { attrInt, attrInts, type Node } from '../../core/graph.js';
import { KernelError, normalizeAxes, normalizeAxis, required, type KernelFactory } from '../kernel.js';
import { int64Value, isBig, makeValue, sizeOfShape, toIntList, type SmallArray, type Value } from '../value.js';
import { contiguousStrides } from './strided.js';

/**
 * The Reduce* family: each input element is folded into the output element it maps to (reduced
 * axes collapse to index 0), in float64 for floats and small integers, BigInt for 64-bit ones.
 * `axesInputFrom` is the opset in which axes moved from an attribute to input 1 (13 for
 * ReduceSum, 18 for the rest); with no axes every axis is reduced, unless noop_with_empty_axes.
 */
interface Reduction {
  readonly init: number;
  readonly fold: (acc: number, x: number) => number;
  readonly finish?: (acc: number, count: number) => number;
  readonly bigFold?: (acc: bigint, x: bigint) => bigint;
  readonly bigInit?: bigint;
  /** What a no-op reduction (empty axes with noop_with_empty_axes) returns per element. */
  readonly identity?: (x: number) => number;
}

function reduceKernel(op: string, axesInputFrom: number, r: Reduction): KernelFactory {
  return {
    prepare(node: Node, opset: number) {
      const keepDims = attrInt(node, 'keepdims', 1) !== 0;
      const noop = attrInt(node, 'noop_with_empty_axes', 0) !== 0;
      return (inputs) => {
        const x = required(inputs, 0, op);
        const rank = x.shape.length;
        const given = opset < axesInputFrom ? attrInts(node, 'axes')?.slice() : inputs[1] ? toIntList(inputs[1]) : undefined;
        if ((!given || given.length === 0) && noop) return [noopResult(x, r)];
        const axes = given && given.length ? normalizeAxes(given, rank, op) : Array.from({ length: rank }, (_, i) => i);
        return [reduce(x, axes, keepDims, r, op)];
      };
    },
  };
}

function noopResult(x: Value, r: Reduction): Value {
  if (!r.identity || isBig(x.data)) return x;
  const out = makeValue(x.dtype, x.shape);
  const src = x.data as SmallArray;
  const dst = out.data as SmallArray;
  for (let i = 0; i < src.length; i++) dst[i] = r.identity(src[i]!);
  return out;
}

function reduce(x: Value, axes: readonly number[], keepDims: boolean, r: Reduction, op: string): Value {
  const rank = x.shape.length;
  const reduced = x.shape.map((_, i) => axes.includes(i));
  const keptShape = x.shape.map((d, i) => (reduced[i] ? 1 : d));
  const outStrides = contiguousStrides(keptShape).map((s, i) => (reduced[i] ? 0 : s));
  const outSize = sizeOfShape(keptShape);
  const count = sizeOfShape(x.shape) / Math.max(outSize, 1);
  const shape = keepDims ? keptShape : x.shape.filter((_, i) => !reduced[i]);
  const out = makeValue(x.dtype, shape);
  const total = x.data.length;
  const counter = new Array<number>(rank).fill(0);
  if (isBig(x.data)) {
    if (!r.bigFold) throw new KernelError(`${op} does not take ${x.dtype}`);
    const acc = new Array<bigint>(outSize).fill(r.bigInit ?? 0n);
    const src = x.data;
    let o = 0;
    for (let i = 0; i < total; i++) {
      acc[o] = r.bigFold(acc[o]!, src[i]!);
      o = advance(counter, x.shape, outStrides, o);
    }
    const dst = out.data as BigInt64Array;
    // Integer mean truncates, like the reference's cast back to the input type.
    for (let j = 0; j < outSize; j++) dst[j] = r.finish ? acc[j]! / BigInt(count) : acc[j]!;
    return out;
  }
  const acc = new Float64Array(outSize).fill(r.init);
  const src = x.data as SmallArray;
  let o = 0;
  for (let i = 0; i < total; i++) {
    acc[o] = r.fold(acc[o]!, src[i]!);
    o = advance(counter, x.shape, outStrides, o);
  }
  const dst = out.data as SmallArray;
  const integer = !(dst instanceof Float32Array || dst instanceof Float64Array);
  for (let j = 0; j < outSize; j++) {
    const v = r.finish ? r.finish(acc[j]!, count) : acc[j]!;
    dst[j] = integer ? Math.trunc(v) : v;
  }
  return out;
}

/** Steps the input odometer and returns the next output index. */
function advance(counter: number[], shape: readonly number[], outStrides: readonly number[], o: number): number {
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    counter[axis]!++;
    o += outStrides[axis]!;
    if (counter[axis]! < shape[axis]!) return o;
    o -= outStrides[axis]! * shape[axis]!;
    counter[axis] = 0;
  }
  return o;
}

// numpy propagates NaN through max/min, and ONNX's reference is numpy.
const maxFold = (a: number, x: number) => (x > a || Number.isNaN(x) ? x : a);
const minFold = (a: number, x: number) => (x < a || Number.isNaN(x) ? x : a);
const bigMax = (a: bigint, x: bigint) => (x > a ? x : a);
const bigMin = (a: bigint, x: bigint) => (x < a ? x : a);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** ArgMax/ArgMin along one axis (int64 indices); ties go to the first, or the last with select_last_index. */
function argKernel(op: string, better: (x: number | bigint, best: number | bigint) => boolean): KernelFactory {
  return {
    prepare(node) {
      const axisAttr = attrInt(node, 'axis', 0);
      const keepDims = attrInt(node, 'keepdims', 1) !== 0;
      const last = attrInt(node, 'select_last_index', 0) !== 0;
      return (inputs) => {
        const x = required(inputs, 0, op);
        const axis = normalizeAxis(axisAttr, x.shape.length, op);
        const len = x.shape[axis]!;
        const outer = sizeOfShape(x.shape.slice(0, axis));
        const inner = sizeOfShape(x.shape.slice(axis + 1));
        const result = new Array<number>(outer * inner);
        const src = x.data as { readonly [i: number]: number | bigint };
        for (let o = 0; o < outer; o++) {
          for (let i = 0; i < inner; i++) {
            let best = src[o * len * inner + i]!;
            let at = 0;
            for (let j = 1; j < len; j++) {
              const v = src[(o * len + j) * inner + i]!;
              if (better(v, best) || (last && v === best)) {
                best = v;
                at = j;
              }
            }
            result[o * inner + i] = at;
          }
        }
        const shape = keepDims ? x.shape.map((d, i) => (i === axis ? 1 : d)) : x.shape.filter((_, i) => i !== axis);
        return [int64Value(shape, result)];
      };
    },
  };
}

/**
 * CumSum / CumProd along an axis given as input 1; `exclusive` shifts by one (starting from the
 * identity), `reverse` runs from the end.
 */
function cumulative(op: string, product: boolean): KernelFactory {
  return {
    prepare(node: Node) {
      const exclusive = attrInt(node, 'exclusive', 0) !== 0;
      const reverse = attrInt(node, 'reverse', 0) !== 0;
      return (inputs: readonly (Value | undefined)[]): Value[] => {
        const x = required(inputs, 0, op);
        const axis = normalizeAxis(Number(required(inputs, 1, op).data[0]), x.shape.length, op);
        const len = x.shape[axis]!;
        const outer = sizeOfShape(x.shape.slice(0, axis));
        const inner = sizeOfShape(x.shape.slice(axis + 1));
        const out = makeValue(x.dtype, x.shape);
        const big = isBig(x.data);
        const src = x.data as { readonly [i: number]: number | bigint };
        const dst = out.data as { [i: number]: number | bigint };
        const identity = product ? 1 : 0;
        for (let o = 0; o < outer; o++) {
          for (let i = 0; i < inner; i++) {
            let acc: number | bigint = big ? BigInt(identity) : identity;
            for (let step = 0; step < len; step++) {
              const j = reverse ? len - 1 - step : step;
              const at = (o * len + j) * inner + i;
              const v = src[at]!;
              if (exclusive) dst[at] = acc;
              if (big) acc = product ? (acc as bigint) * (v as bigint) : (acc as bigint) + (v as bigint);
              else acc = product ? (acc as number) * (v as number) : (acc as number) + (v as number);
              if (!exclusive) dst[at] = acc;
            }
          }
        }
        return [out];
      };
    },
  };
}

export const REDUCE_OPS: Readonly<Record<string, KernelFactory>> = {
  ReduceSum: reduceKernel('ReduceSum', 13, { init: 0, fold: (a, x) => a + x, bigFold: (a, x) => a + x }),
  ReduceMean: reduceKernel('ReduceMean', 18, { init: 0, fold: (a, x) => a + x, finish: (a, n) => a / n, bigFold: (a, x) => a + x }),
  ReduceMax: reduceKernel('ReduceMax', 18, { init: -Infinity, fold: maxFold, bigFold: bigMax, bigInit: INT64_MIN }),
  ReduceMin: reduceKernel('ReduceMin', 18, { init: Infinity, fold: minFold, bigFold: bigMin, bigInit: INT64_MAX }),
  ReduceProd: reduceKernel('ReduceProd', 18, { init: 1, fold: (a, x) => a * x, bigFold: (a, x) => a * x, bigInit: 1n }),
  ReduceL1: reduceKernel('ReduceL1', 18, { init: 0, fold: (a, x) => a + Math.abs(x), bigFold: (a, x) => a + (x < 0n ? -x : x), identity: Math.abs }),
  ReduceL2: reduceKernel('ReduceL2', 18, { init: 0, fold: (a, x) => a + x * x, finish: (a) => Math.sqrt(a), identity: Math.abs }),
  ReduceSumSquare: reduceKernel('ReduceSumSquare', 18, { init: 0, fold: (a, x) => a + x * x, bigFold: (a, x) => a + x * x, identity: (x) => x * x }),
  ReduceLogSum: reduceKernel('ReduceLogSum', 18, { init: 0, fold: (a, x) => a + x, finish: (a) => Math.log(a), identity: Math.log }),
  ReduceLogSumExp: reduceKernel('ReduceLogSumExp', 18, { init: 0, fold: (a, x) => a + Math.exp(x), finish: (a) => Math.log(a) }),
  ArgMax: argKernel('ArgMax', (x, best) => x > best),
  ArgMin: argKernel('ArgMin', (x, best) => x < best),
  CumSum: cumulative('CumSum', false),
  CumProd: cumulative('CumProd', true),
};
