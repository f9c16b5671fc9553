import type { DType } from '../../core/dtypes.js';
import { forEachRow, planBroadcast } from '../broadcast.js';
import { KernelError } from '../kernel.js';
import { float32Output, isBig, makeValue, type SmallArray, type Value } from '../value.js';

/**
 * The shared machinery of elementwise binary ops: multidirectional broadcasting walked in rows
 * (see planBroadcast), with one scalar function per element class. `num` serves floats and the
 * integer types up to 32 bits (a typed-array store wraps like C), `big` the 64-bit integers.
 * Results of `num` for boolean outputs are 1/0.
 */
export interface BinaryFunctions {
  readonly num: (a: number, b: number) => number;
  readonly int?: (a: number, b: number) => number;
  readonly big?: (a: bigint, b: bigint) => number | bigint;
}

type Store = { [i: number]: number | bigint };
type Load<T> = { readonly [i: number]: T };

export function applyBinary(op: string, a: Value, b: Value, outDtype: DType, fns: BinaryFunctions): Value {
  const plan = planBroadcast([a.shape, b.shape], op);
  const out = makeValue(outDtype, plan.shape);
  const last = plan.dims.length - 1;
  const sa = plan.strides[0]![last]!;
  const sb = plan.strides[1]![last]!;
  const z = out.data as Store;
  if (isBig(a.data) || isBig(b.data)) {
    const g = fns.big;
    if (!g || !isBig(a.data) || !isBig(b.data)) throw new KernelError(`${op} does not take ${a.dtype} and ${b.dtype}`);
    const x = a.data as Load<bigint>;
    const y = b.data as Load<bigint>;
    forEachRow(plan, (o, off, n) => {
      let i = off[0]!;
      let j = off[1]!;
      for (let k = 0; k < n; k++, i += sa, j += sb) z[o + k] = g(x[i]!, y[j]!);
    });
    return out;
  }
  const isFloat = a.data instanceof Float32Array || a.data instanceof Float64Array;
  const f = isFloat ? fns.num : (fns.int ?? fns.num);
  const x = a.data as SmallArray;
  const y = b.data as SmallArray;
  forEachRow(plan, (o, off, n) => {
    let i = off[0]!;
    let j = off[1]!;
    for (let k = 0; k < n; k++, i += sa, j += sb) z[o + k] = f(x[i]!, y[j]!);
  });
  return out;
}

/**
 * Same-dtype float32 arithmetic without a function call per element: the hot path of bias adds
 * and residual connections. Returns undefined for any other case.
 */
export function float32Arithmetic(op: 'Add' | 'Sub' | 'Mul' | 'Div', a: Value, b: Value): Value | undefined {
  if (!(a.data instanceof Float32Array) || !(b.data instanceof Float32Array) || a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  const simple = simpleFloat32(op, a, b);
  if (simple) return simple;
  const plan = planBroadcast([a.shape, b.shape], op);
  const out = float32Output( plan.shape);
  const z = out.data as Float32Array;
  const x = a.data;
  const y = b.data;
  const last = plan.dims.length - 1;
  const sa = plan.strides[0]![last]!;
  const sb = plan.strides[1]![last]!;
  forEachRow(plan, (o, off, n) => {
    let i = off[0]!;
    let j = off[1]!;
    const end = o + n;
    switch (op) {
      case 'Add':
        for (let k = o; k < end; k++, i += sa, j += sb) z[k] = x[i]! + y[j]!;
        break;
      case 'Sub':
        for (let k = o; k < end; k++, i += sa, j += sb) z[k] = x[i]! - y[j]!;
        break;
      case 'Mul':
        for (let k = o; k < end; k++, i += sa, j += sb) z[k] = x[i]! * y[j]!;
        break;
      case 'Div':
        for (let k = o; k < end; k++, i += sa, j += sb) z[k] = x[i]! / y[j]!;
        break;
    }
  });
  return out;
}

const OP_CODES = { Add: 0, Sub: 1, Mul: 2, Div: 3 } as const;

/**
 * The shapes transformers and CNNs use most, without the row walker's callback (which V8 does
 * not inline, several times slower per element): equal shapes, a scalar on either side, and a
 * row broadcast over the last axis (a bias). Undefined for any other pair.
 */
function simpleFloat32(op: 'Add' | 'Sub' | 'Mul' | 'Div', a: Value, b: Value): Value | undefined {
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  const code = OP_CODES[op];
  const sameShape = a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
  if (sameShape) {
    const out = float32Output( a.shape);
    elementwise(code, x, y, out.data as Float32Array, x.length);
    return out;
  }
  if (y.length === 1 && b.shape.length <= a.shape.length) {
    const out = float32Output( a.shape);
    withScalar(code, x, y[0]!, out.data as Float32Array, false);
    return out;
  }
  if (x.length === 1 && a.shape.length <= b.shape.length) {
    const out = float32Output( b.shape);
    withScalar(code, y, x[0]!, out.data as Float32Array, true);
    return out;
  }
  // b is a's trailing block, repeated over a's leading axes: [..., N] op [N] (a bias), or
  // [1, H, S, S] op [1, 1, S, S] (attention scores plus their mask)
  if (y.length > 0 && b.shape.length <= a.shape.length && x.length % y.length === 0 && trailingBlock(a.shape, b.shape)) {
    const out = float32Output(a.shape);
    const z = out.data as Float32Array;
    const n = y.length;
    for (let row = 0; row < x.length; row += n) elementwiseAt(code, x, y, z, row, n);
    return out;
  }
  return undefined;
}

/** True when `b`, without its leading 1s, is the tail of `a` (so b broadcasts as whole copies of itself). */
function trailingBlock(a: readonly number[], b: readonly number[]): boolean {
  let start = 0;
  while (start < b.length && b[start] === 1) start++;
  const offset = a.length - b.length;
  for (let i = start; i < b.length; i++) if (b[i] !== a[offset + i]) return false;
  return true;
}

function elementwise(code: number, x: Float32Array, y: Float32Array, z: Float32Array, n: number): void {
  if (code === 0) for (let i = 0; i < n; i++) z[i] = x[i]! + y[i]!;
  else if (code === 1) for (let i = 0; i < n; i++) z[i] = x[i]! - y[i]!;
  else if (code === 2) for (let i = 0; i < n; i++) z[i] = x[i]! * y[i]!;
  else for (let i = 0; i < n; i++) z[i] = x[i]! / y[i]!;
}

/** z[row..row+n] = x[row..] op y[0..n]. */
function elementwiseAt(code: number, x: Float32Array, y: Float32Array, z: Float32Array, row: number, n: number): void {
  if (code === 0) for (let i = 0; i < n; i++) z[row + i] = x[row + i]! + y[i]!;
  else if (code === 1) for (let i = 0; i < n; i++) z[row + i] = x[row + i]! - y[i]!;
  else if (code === 2) for (let i = 0; i < n; i++) z[row + i] = x[row + i]! * y[i]!;
  else for (let i = 0; i < n; i++) z[row + i] = x[row + i]! / y[i]!;
}

/** z = x op s, or s op x when `scalarFirst`. */
function withScalar(code: number, x: Float32Array, s: number, z: Float32Array, scalarFirst: boolean): void {
  const n = x.length;
  if (code === 0) for (let i = 0; i < n; i++) z[i] = x[i]! + s;
  else if (code === 2) for (let i = 0; i < n; i++) z[i] = x[i]! * s;
  else if (code === 1) {
    if (scalarFirst) for (let i = 0; i < n; i++) z[i] = s - x[i]!;
    else for (let i = 0; i < n; i++) z[i] = x[i]! - s;
  } else if (scalarFirst) for (let i = 0; i < n; i++) z[i] = s / x[i]!;
  else for (let i = 0; i < n; i++) z[i] = x[i]! / s;
}
