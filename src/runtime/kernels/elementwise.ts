import type { DType } from '../../core/dtypes.js';
import { attrFloat, attrString, type Node } from '../../core/graph.js';
import type { NumericArray } from '../../core/tensor.js';
import { broadcastShapes, broadcastStrides, forEachBroadcast } from '../broadcast.js';
import { KernelError, required, type KernelFactory } from '../kernel.js';
import { isHalf, makeValue, roundHalf, sizeOfShape, type Value } from '../value.js';

type NumberOp = (a: number, b: number) => number;
type BigOp = (a: bigint, b: bigint) => bigint;

function isBig(data: NumericArray): data is BigInt64Array | BigUint64Array {
  return data instanceof BigInt64Array || data instanceof BigUint64Array;
}

/** Elementwise binary op with multidirectional broadcasting; results keep the input dtype. */
function binary(op: string, f: NumberOp, g: BigOp, integerF: NumberOp = f): KernelFactory {
  return {
    prepare: () => (inputs) => {
      const a = required(inputs, 0, op);
      const b = required(inputs, 1, op);
      if (a.dtype !== b.dtype) throw new KernelError(`${op}: inputs are ${a.dtype} and ${b.dtype}; ONNX requires one type`);
      return [applyBinary(a, b, a.dtype, f, g, integerF, op)];
    },
  };
}

function applyBinary(a: Value, b: Value, dtype: DType, f: NumberOp, g: BigOp, integerF: NumberOp, op: string): Value {
  const sameShape = a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
  const shape = sameShape ? a.shape : broadcastShapes(a.shape, b.shape, op);
  const out = makeValue(dtype, shape);
  const x = a.data;
  const y = b.data;
  const z = out.data;
  if (isBig(x) && isBig(y) && isBig(z)) {
    if (sameShape) for (let i = 0; i < z.length; i++) z[i] = g(x[i]!, y[i]!);
    else forEachBroadcast(shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape), (o, i, j) => (z[o] = g(x[i]!, y[j]!)));
    return out;
  }
  const xs = x as Exclude<NumericArray, BigInt64Array | BigUint64Array>;
  const ys = y as typeof xs;
  const zs = z as typeof xs;
  const fn = dtype === 'float32' || dtype === 'float64' || isHalf(dtype) ? f : integerF;
  if (sameShape) {
    for (let i = 0; i < zs.length; i++) zs[i] = fn(xs[i]!, ys[i]!);
  } else if (b.shape.length <= a.shape.length && sizeOfShape(b.shape) === a.shape[a.shape.length - 1] && b.shape.every((d, i, s) => i === s.length - 1 || d === 1) && sizeOfShape(shape) === xs.length) {
    // The common bias case: b is a vector along a's last axis.
    const n = ys.length;
    for (let i = 0; i < zs.length; i++) zs[i] = fn(xs[i]!, ys[i % n]!);
  } else {
    forEachBroadcast(shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape), (o, i, j) => (zs[o] = fn(xs[i]!, ys[j]!)));
  }
  if (isHalf(dtype)) roundHalf(dtype, out.data as Float32Array);
  return out;
}

const truncDiv: NumberOp = (a, b) => Math.trunc(a / b);

export const BINARY: Readonly<Record<string, KernelFactory>> = {
  Add: binary('Add', (a, b) => a + b, (a, b) => a + b),
  Sub: binary('Sub', (a, b) => a - b, (a, b) => a - b),
  Mul: binary('Mul', (a, b) => a * b, (a, b) => a * b),
  // Integer division truncates toward zero, as C and the ONNX reference do.
  Div: binary('Div', (a, b) => a / b, (a, b) => a / b, truncDiv),
};

/** Pow lets the exponent have its own type (T1); the result has the base's type. */
export const Pow: KernelFactory = {
  prepare: () => (inputs) => {
    const a = required(inputs, 0, 'Pow');
    const b = required(inputs, 1, 'Pow');
    const exponent = b.dtype === a.dtype ? b : { dtype: a.dtype, shape: b.shape, data: convertData(b.data, a.data) };
    return [applyBinary(a, exponent, a.dtype, (x, y) => x ** y, (x, y) => (y < 0n ? 0n : x ** y), (x, y) => Math.trunc(x ** y), 'Pow')];
  },
};

/** Copies `data` into an array of the same kind as `like` (number <-> bigint as needed). */
function convertData(data: NumericArray, like: NumericArray): NumericArray {
  const Ctor = like.constructor as new (n: number) => NumericArray;
  const out = new Ctor(data.length);
  const big = isBig(out);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    (out as unknown as (number | bigint)[])[i] = big ? BigInt(Math.trunc(Number(v))) : Number(v);
  }
  return out;
}

/** Elementwise unary float op; `prepare` may read attributes. */
function unary(op: string, make: (node: Node) => (x: number) => number): KernelFactory {
  return {
    prepare(node) {
      const f = make(node);
      return (inputs) => {
        const x = required(inputs, 0, op);
        const out = makeValue(x.dtype, x.shape);
        const src = x.data as Float32Array;
        const dst = out.data as Float32Array;
        if (isBig(x.data)) throw new KernelError(`${op} does not take ${x.dtype}`);
        for (let i = 0; i < dst.length; i++) dst[i] = f(src[i]!);
        if (isHalf(x.dtype)) roundHalf(x.dtype, dst);
        return [out];
      };
    },
  };
}

const erf = (x: number): number => {
  // Abramowitz-Stegun is too coarse for float32 parity; use the series / continued-fraction pair.
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = x;
    let term = x;
    const x2 = x * x;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (ax > 6) return Math.sign(x);
  // erfc continued fraction (Lentz), accurate for |x| >= 2.5.
  let f = ax;
  let c = ax;
  let d = 0;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    d = ax + an * d;
    d = d === 0 ? 1e-300 : 1 / d;
    c = ax + an / c;
    if (c === 0) c = 1e-300;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / (f * Math.sqrt(Math.PI));
  return Math.sign(x) * (1 - erfc);
};

export const UNARY: Readonly<Record<string, KernelFactory>> = {
  Sigmoid: unary('Sigmoid', () => (x) => 1 / (1 + Math.exp(-x))),
  Relu: unary('Relu', () => (x) => (x > 0 ? x : 0)),
  Tanh: unary('Tanh', () => Math.tanh),
  Exp: unary('Exp', () => Math.exp),
  Log: unary('Log', () => Math.log),
  Sqrt: unary('Sqrt', () => Math.sqrt),
  Neg: unary('Neg', () => (x) => -x),
  Abs: unary('Abs', () => Math.abs),
  Erf: unary('Erf', () => erf),
  LeakyRelu: unary('LeakyRelu', (node) => {
    const alpha = attrFloat(node, 'alpha', 0.01);
    return (x) => (x >= 0 ? x : alpha * x);
  }),
  Elu: unary('Elu', (node) => {
    const alpha = attrFloat(node, 'alpha', 1);
    return (x) => (x >= 0 ? x : alpha * (Math.exp(x) - 1));
  }),
  Gelu: unary('Gelu', (node) => {
    const approximate = attrString(node, 'approximate', 'none');
    if (approximate === 'tanh') {
      const k = Math.sqrt(2 / Math.PI);
      return (x) => 0.5 * x * (1 + Math.tanh(k * (x + 0.044715 * x * x * x)));
    }
    return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
  }),
};
