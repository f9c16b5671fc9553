import type { KernelFactory } from '../kernel.js';
import { erf, erfFloat32 } from './erf.js';
import { floatUnary, unary } from './unary-core.js';

/** numpy.round: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** max(x, 0) with NaN kept and -0 as +0, as ONNX's reference evaluator gives. */
const relu = (x: number): number => (x > 0 ? x : x === x ? 0 : x);

/** relu over float32; this call site sees only relu, so V8 inlines it. */
function reluFloat32(src: Float32Array, dst: Float32Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = relu(src[i]!);
}

const bigAbs = (x: bigint): bigint => (x < 0n ? -x : x);
const bigSign = (x: bigint): bigint => (x > 0n ? 1n : x < 0n ? -1n : 0n);

/** Elementwise math with no attributes (ONNX names; float-only unless the op allows integers). */
export const UNARY: Readonly<Record<string, KernelFactory>> = {
  Abs: unary('Abs', () => ({ num: Math.abs, big: bigAbs })),
  Neg: unary('Neg', () => ({ num: (x) => -x, big: (x) => -x })),
  Sign: unary('Sign', () => ({ num: (x) => (x > 0 ? 1 : x < 0 ? -1 : x), big: bigSign })),
  // Relu takes signed integers from opset 14.
  Relu: unary('Relu', () => ({ num: relu, big: (x) => (x > 0n ? x : 0n), float32: reluFloat32 })),
  Not: unary('Not', () => ({ num: (x) => (x ? 0 : 1) })),
  BitwiseNot: unary('BitwiseNot', () => ({ num: (x) => ~x, big: (x) => ~x })),
  IsNaN: unary('IsNaN', () => ({ num: (x) => (Number.isNaN(x) ? 1 : 0), floatOnly: true, out: 'bool' })),
  Sigmoid: floatUnary('Sigmoid', (x) => 1 / (1 + Math.exp(-x))),
  Tanh: floatUnary('Tanh', Math.tanh),
  Exp: floatUnary('Exp', Math.exp),
  Log: floatUnary('Log', Math.log),
  Sqrt: floatUnary('Sqrt', Math.sqrt),
  Reciprocal: floatUnary('Reciprocal', (x) => 1 / x),
  Floor: floatUnary('Floor', Math.floor),
  Ceil: floatUnary('Ceil', Math.ceil),
  Round: floatUnary('Round', roundHalfEven),
  Erf: unary('Erf', () => ({ num: erf, floatOnly: true, float32: erfFloat32 })),
  Sin: floatUnary('Sin', Math.sin),
  Cos: floatUnary('Cos', Math.cos),
  Tan: floatUnary('Tan', Math.tan),
  Asin: floatUnary('Asin', Math.asin),
  Acos: floatUnary('Acos', Math.acos),
  Atan: floatUnary('Atan', Math.atan),
  Sinh: floatUnary('Sinh', Math.sinh),
  Cosh: floatUnary('Cosh', Math.cosh),
  Asinh: floatUnary('Asinh', Math.asinh),
  Acosh: floatUnary('Acosh', Math.acosh),
  Atanh: floatUnary('Atanh', Math.atanh),
  Softsign: floatUnary('Softsign', (x) => x / (1 + Math.abs(x))),
  // log(1 + e^x) without overflow for large x.
  Softplus: floatUnary('Softplus', (x) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)))),
  Mish: floatUnary('Mish', (x) => x * Math.tanh(x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)))),
  HardSwish: floatUnary('HardSwish', (x) => x * Math.max(0, Math.min(1, x / 6 + 0.5))),
};
