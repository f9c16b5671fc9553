import { forEachRow, planBroadcast } from '../broadcast.js';
import { KernelError, required, sameDType, type KernelFactory } from '../kernel.js';
import { makeValue } from '../value.js';
import { applyBinary, type BinaryFunctions } from './binary-core.js';

/** A comparison or logical op: inputs of one dtype, a bool result (1/0 bytes). */
function toBool(op: string, fns: BinaryFunctions): KernelFactory {
  return {
    prepare: () => (inputs) => {
      const a = required(inputs, 0, op);
      const b = required(inputs, 1, op);
      sameDType([a, b], op);
      return [applyBinary(op, a, b, 'bool', fns)];
    },
  };
}

const flag = (x: boolean): number => (x ? 1 : 0);

/**
 * And, Or, Xor over bool bytes in typed loops of their own rather than applyBinary's call per
 * element (BERT combines its [1, 1, S, 1] and [1, 1, 1, S] masks into [1, 1, S, S] with And on
 * every call: ~10 ns an element through the generic walker).
 */
function logical(op: 'And' | 'Or' | 'Xor'): KernelFactory {
  return {
    prepare: () => (inputs) => {
      const a = required(inputs, 0, op);
      const b = required(inputs, 1, op);
      sameDType([a, b], op);
      if (a.dtype !== 'bool') throw new KernelError(`${op} takes bool inputs, not ${a.dtype}`);
      const plan = planBroadcast([a.shape, b.shape], op);
      const out = makeValue('bool', plan.shape);
      const x = a.data as Uint8Array;
      const y = b.data as Uint8Array;
      const z = out.data as Uint8Array;
      const last = plan.dims.length - 1;
      const sa = last < 0 ? 0 : plan.strides[0]![last]!;
      const sb = last < 0 ? 0 : plan.strides[1]![last]!;
      if (last < 0) {
        z[0] = combine(op, x[0]!, y[0]!);
        return [out];
      }
      forEachRow(plan, (o, off, n) => logicalRow(op, x, y, z, o, off[0]!, off[1]!, sa, sb, n));
      return [out];
    },
  };
}

function combine(op: 'And' | 'Or' | 'Xor', p: number, q: number): number {
  return op === 'And' ? flag(p !== 0 && q !== 0) : op === 'Or' ? flag(p !== 0 || q !== 0) : flag((p !== 0) !== (q !== 0));
}

function logicalRow(op: 'And' | 'Or' | 'Xor', x: Uint8Array, y: Uint8Array, z: Uint8Array, o: number, i: number, j: number, sa: number, sb: number, n: number): void {
  const end = o + n;
  if (op === 'And') for (let k = o; k < end; k++, i += sa, j += sb) z[k] = x[i] !== 0 && y[j] !== 0 ? 1 : 0;
  else if (op === 'Or') for (let k = o; k < end; k++, i += sa, j += sb) z[k] = x[i] !== 0 || y[j] !== 0 ? 1 : 0;
  else for (let k = o; k < end; k++, i += sa, j += sb) z[k] = (x[i] !== 0) !== (y[j] !== 0) ? 1 : 0;
}

/**
 * Where(condition, X, Y): X where condition is true, else Y, all three broadcast together.
 * Works on the raw arrays, so every dtype (int64 included) is selected exactly.
 */
const Where: KernelFactory = {
  prepare: () => (inputs) => {
    const c = required(inputs, 0, 'Where');
    const x = required(inputs, 1, 'Where');
    const y = required(inputs, 2, 'Where');
    if (c.dtype !== 'bool') throw new KernelError(`Where: condition must be bool, not ${c.dtype}`);
    const dtype = sameDType([x, y], 'Where');
    const plan = planBroadcast([c.shape, x.shape, y.shape], 'Where');
    const out = makeValue(dtype, plan.shape);
    // a float32 choice between two scalars over a whole condition (an attention mask's 0 and
    // -inf): one typed loop, not the row walker's generic one
    if (out.data instanceof Float32Array && x.data.length === 1 && y.data.length === 1 && c.data.length === plan.size) {
      selectScalars(c.data as Uint8Array, Number(x.data[0]), Number(y.data[0]), out.data);
      return [out];
    }
    const last = plan.dims.length - 1;
    const [sc, sx, sy] = plan.strides.map((s) => s[last]!) as [number, number, number];
    const cond = c.data as Uint8Array;
    const xs = x.data as { readonly [i: number]: number | bigint };
    const ys = y.data as typeof xs;
    const z = out.data as { [i: number]: number | bigint };
    forEachRow(plan, (o, off, n) => {
      let i = off[0]!;
      let j = off[1]!;
      let k = off[2]!;
      for (let e = 0; e < n; e++, i += sc, j += sx, k += sy) z[o + e] = cond[i] ? xs[j]! : ys[k]!;
    });
    return [out];
  },
};

function selectScalars(cond: Uint8Array, a: number, b: number, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = cond[i] ? a : b;
}

export const COMPARE: Readonly<Record<string, KernelFactory>> = {
  Equal: toBool('Equal', { num: (a, b) => flag(a === b), big: (a, b) => flag(a === b) }),
  Less: toBool('Less', { num: (a, b) => flag(a < b), big: (a, b) => flag(a < b) }),
  LessOrEqual: toBool('LessOrEqual', { num: (a, b) => flag(a <= b), big: (a, b) => flag(a <= b) }),
  Greater: toBool('Greater', { num: (a, b) => flag(a > b), big: (a, b) => flag(a > b) }),
  GreaterOrEqual: toBool('GreaterOrEqual', { num: (a, b) => flag(a >= b), big: (a, b) => flag(a >= b) }),
  And: logical('And'),
  Or: logical('Or'),
  Xor: logical('Xor'),
  Where,
};
