import { attrInt, attrString } from '../../core/graph.js';
import { KernelError, required, sameDType, type KernelFactory } from '../kernel.js';
import { isBig, makeValue, type Value } from '../value.js';
import { applyBinary, float32Arithmetic, type BinaryFunctions } from './binary-core.js';

/** An elementwise op over two inputs of one dtype, with the result in that dtype. */
function sameTypeBinary(op: string, fns: BinaryFunctions): KernelFactory {
  return {
    prepare: () => (inputs) => {
      const a = required(inputs, 0, op);
      const b = required(inputs, 1, op);
      return [applyBinary(op, a, b, sameDType([a, b], op), fns)];
    },
  };
}

function arithmetic(op: 'Add' | 'Sub' | 'Mul' | 'Div', fns: BinaryFunctions): KernelFactory {
  return {
    prepare: () => (inputs) => {
      const a = required(inputs, 0, op);
      const b = required(inputs, 1, op);
      return [float32Arithmetic(op, a, b) ?? applyBinary(op, a, b, sameDType([a, b], op), fns)];
    },
  };
}

const bigDiv = (a: bigint, b: bigint): bigint => {
  if (b === 0n) throw new KernelError('Div: integer division by zero');
  return a / b; // BigInt division truncates toward zero, like C and ONNX's reference
};

/**
 * Pow: the exponent may have its own type (opset 12+). Computed in float64 (exact for the integer
 * cases the tests use), then stored in the base's type.
 */
const Pow: KernelFactory = {
  prepare: () => (inputs) => {
    const a = required(inputs, 0, 'Pow');
    const b = required(inputs, 1, 'Pow');
    const toNumbers = (v: Value): Value => (isBig(v.data) ? { dtype: 'float64', shape: v.shape, data: Float64Array.from(v.data, Number) } : v);
    if (isBig(a.data)) {
      const r = applyBinary('Pow', toNumbers(a), toNumbers(b), 'float64', { num: (x, y) => x ** y });
      const out = makeValue(a.dtype, r.shape);
      const dst = out.data as BigInt64Array;
      r.data.forEach((v, i) => (dst[i] = BigInt(Math.trunc(Number(v)))));
      return [out];
    }
    const integer = !(a.data instanceof Float32Array || a.data instanceof Float64Array);
    return [applyBinary('Pow', a, toNumbers(b), a.dtype, { num: integer ? (x, y) => Math.trunc(x ** y) : (x, y) => x ** y })];
  },
};

/** Mod: fmod = 0 takes the divisor's sign (Python %), fmod = 1 the dividend's (C fmod). */
const Mod: KernelFactory = {
  prepare(node) {
    const fmod = attrInt(node, 'fmod', 0) !== 0;
    return (inputs) => {
      const a = required(inputs, 0, 'Mod');
      const b = required(inputs, 1, 'Mod');
      const dtype = sameDType([a, b], 'Mod');
      const isFloat = a.data instanceof Float32Array || a.data instanceof Float64Array;
      if (isFloat && !fmod) throw new KernelError('Mod: floating-point inputs need fmod = 1');
      const num = fmod
        ? (x: number, y: number) => x % y
        : (x: number, y: number) => {
            if (y === 0) return 0;
            const r = x % y;
            return r !== 0 && r < 0 !== y < 0 ? r + y : r;
          };
      const big = fmod
        ? (x: bigint, y: bigint) => (y === 0n ? 0n : x % y)
        : (x: bigint, y: bigint) => {
            if (y === 0n) return 0n;
            const r = x % y;
            return r !== 0n && r < 0n !== y < 0n ? r + y : r;
          };
      return [applyBinary('Mod', a, b, dtype, { num, big })];
    };
  },
};

/** BitShift on unsigned integers; shifting out every bit gives 0 (not JS's shift-count modulo). */
const BitShift: KernelFactory = {
  prepare(node) {
    const left = attrString(node, 'direction', '') === 'LEFT';
    if (!left && attrString(node, 'direction', '') !== 'RIGHT') throw new KernelError('BitShift: direction must be LEFT or RIGHT');
    return (inputs) => {
      const a = required(inputs, 0, 'BitShift');
      const b = required(inputs, 1, 'BitShift');
      const dtype = sameDType([a, b], 'BitShift');
      const bits = dtype === 'uint8' ? 8 : dtype === 'uint16' ? 16 : 32;
      const num = left
        ? (x: number, s: number) => (s >= bits ? 0 : x * 2 ** s) // the store wraps to the type's width
        : (x: number, s: number) => (s >= bits ? 0 : Math.floor(x / 2 ** s));
      const big = left ? (x: bigint, s: bigint) => (s >= 64n ? 0n : x << s) : (x: bigint, s: bigint) => (s >= 64n ? 0n : x >> s);
      return [applyBinary('BitShift', a, b, dtype, { num, big })];
    };
  },
};

/** PRelu: slope broadcast onto X (unidirectional in the spec; numpy broadcasting covers it). */
const PRelu: KernelFactory = {
  prepare: () => (inputs) => {
    const x = required(inputs, 0, 'PRelu');
    const slope = required(inputs, 1, 'PRelu');
    return [
      applyBinary('PRelu', x, slope, sameDType([x, slope], 'PRelu'), {
        num: (v, s) => (v < 0 ? v * s : v),
        big: (v, s) => (v < 0n ? v * s : v),
      }),
    ];
  },
};

export const ARITHMETIC: Readonly<Record<string, KernelFactory>> = {
  Add: arithmetic('Add', { num: (a, b) => a + b, big: (a, b) => a + b }),
  Sub: arithmetic('Sub', { num: (a, b) => a - b, big: (a, b) => a - b }),
  // Math.imul keeps int32/uint32 products exact modulo 2^32, where a float64 product would round.
  Mul: arithmetic('Mul', { num: (a, b) => a * b, int: (a, b) => (Math.abs(a * b) < 2 ** 53 ? a * b : Math.imul(a, b)), big: (a, b) => a * b }),
  // Integer division truncates toward zero.
  Div: arithmetic('Div', { num: (a, b) => a / b, int: (a, b) => Math.trunc(a / b), big: bigDiv }),
  Pow,
  Mod,
  BitShift,
  PRelu,
  BitwiseAnd: sameTypeBinary('BitwiseAnd', { num: (a, b) => a & b, big: (a, b) => a & b }),
  BitwiseOr: sameTypeBinary('BitwiseOr', { num: (a, b) => a | b, big: (a, b) => a | b }),
  BitwiseXor: sameTypeBinary('BitwiseXor', { num: (a, b) => a ^ b, big: (a, b) => a ^ b }),
};
