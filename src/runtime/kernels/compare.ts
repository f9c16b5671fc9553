import { forEachRow, planBroadcast } from '../broadcast.js';
import { KernelError, required, sameDType, type KernelFactory } from '../kernel.js';
import { makeValue } from '../value.js';
import { applyBinary, type BinaryFunctions } from './binary-core.js';

/** A comparison or logical op: inputs of one dtype, a bool result (1/0 bytes). */
function toBool(op: string, fns: BinaryFunctions, boolInputs = false): KernelFactory {
  return {
    prepare: () => (inputs) => {
      const a = required(inputs, 0, op);
      const b = required(inputs, 1, op);
      sameDType([a, b], op);
      if (boolInputs && a.dtype !== 'bool') throw new KernelError(`${op} takes bool inputs, not ${a.dtype}`);
      return [applyBinary(op, a, b, 'bool', fns)];
    },
  };
}

const flag = (x: boolean): number => (x ? 1 : 0);

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
  And: toBool('And', { num: (a, b) => flag(a !== 0 && b !== 0) }, true),
  Or: toBool('Or', { num: (a, b) => flag(a !== 0 || b !== 0) }, true),
  Xor: toBool('Xor', { num: (a, b) => flag((a !== 0) !== (b !== 0)) }, true),
  Where,
};
