import type { DType } from '../../core/dtypes.js';
import { forEachRow, planBroadcast } from '../broadcast.js';
import { KernelError } from '../kernel.js';
import { isBig, makeValue, type SmallArray, type Value } from '../value.js';

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
  const plan = planBroadcast([a.shape, b.shape], op);
  const out = makeValue('float32', plan.shape);
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
