import type { DType } from '../../core/dtypes.js';
import type { Node } from '../../core/graph.js';
import { KernelError, required, type KernelFactory } from '../kernel.js';
import { isBig, isFloatDType, makeValue, type SmallArray } from '../value.js';

/**
 * One elementwise function of one input. `num` runs on floats (in float64, rounded once when
 * stored) and, unless `floatOnly`, on integers up to 32 bits; `big` on int64/uint64. `out`
 * fixes the result dtype (bool for IsNaN); by default it is the input's.
 */
export interface UnarySpec {
  readonly num: (x: number) => number;
  readonly big?: (x: bigint) => bigint | number;
  readonly floatOnly?: boolean;
  readonly out?: DType;
  /**
   * The same function as a loop of its own over float32, the runtime's fast path. The shared loop
   * below calls `num` from one call site that every op goes through, which V8 cannot inline: about
   * 10 ns an element, a sixth of an MLP's time in its Relus.
   */
  readonly float32?: (src: Float32Array, dst: Float32Array) => void;
}

export function unary(op: string, make: (node: Node, opset: number) => UnarySpec): KernelFactory {
  return {
    prepare(node, opset) {
      const spec = make(node, opset);
      return (inputs) => {
        const x = required(inputs, 0, op);
        if (spec.floatOnly && !isFloatDType(x.dtype)) throw new KernelError(`${op} takes floating-point inputs, not ${x.dtype}`);
        const out = makeValue(spec.out ?? x.dtype, x.shape);
        if (spec.float32 && x.dtype === 'float32' && out.dtype === 'float32') {
          spec.float32(x.data as Float32Array, out.data as Float32Array);
          return [out];
        }
        const dst = out.data as { [i: number]: number | bigint };
        const n = x.data.length;
        if (isBig(x.data)) {
          const g = spec.big;
          if (!g) throw new KernelError(`${op} does not take ${x.dtype}`);
          const src = x.data;
          for (let i = 0; i < n; i++) dst[i] = g(src[i]!);
        } else {
          const f = spec.num;
          const src = x.data as SmallArray;
          for (let i = 0; i < n; i++) dst[i] = f(src[i]!);
        }
        return [out];
      };
    },
  };
}

/** A float-only function with no attributes. */
export function floatUnary(op: string, f: (x: number) => number): KernelFactory {
  return unary(op, () => ({ num: f, floatOnly: true }));
}
