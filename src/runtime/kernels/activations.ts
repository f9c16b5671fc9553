import { attrFloat, attrInt, attrString } from '../../core/graph.js';
import { KernelError, required, type KernelFactory } from '../kernel.js';
import { isBig, makeValue, type Value } from '../value.js';
import { erf } from './erf.js';
import { unary } from './unary-core.js';

/**
 * Clip: bounds are attributes before opset 11 and optional scalar inputs after (an omitted bound
 * does not clip). NaN passes through, as in numpy.clip.
 */
function clipPrepare(node: Parameters<KernelFactory['prepare']>[0], opset: number) {
  const attrMin = attrFloat(node, 'min', -Infinity);
  const attrMax = attrFloat(node, 'max', Infinity);
  return (inputs: readonly (Value | undefined)[]): Value[] => {
    const x = required(inputs, 0, 'Clip');
    const lo = opset < 11 ? attrMin : inputs[1];
    const hi = opset < 11 ? attrMax : inputs[2];
    const out = makeValue(x.dtype, x.shape);
    if (isBig(x.data)) {
      const src = x.data;
      const dst = out.data as BigInt64Array;
      const l = typeof lo === 'object' ? (lo.data[0] as bigint) : undefined;
      const h = typeof hi === 'object' ? (hi.data[0] as bigint) : undefined;
      for (let i = 0; i < src.length; i++) {
        let v = src[i]!;
        if (l !== undefined && v < l) v = l;
        if (h !== undefined && v > h) v = h;
        dst[i] = v;
      }
      return [out];
    }
    const l = typeof lo === 'object' ? Number(lo.data[0]) : (lo ?? -Infinity);
    const h = typeof hi === 'object' ? Number(hi.data[0]) : (hi ?? Infinity);
    const src = x.data as Float64Array;
    const dst = out.data as Float64Array;
    for (let i = 0; i < src.length; i++) {
      // Lower bound first, then upper: with min > max every element becomes max, as numpy.clip.
      const v = src[i]! < l ? l : src[i]!;
      dst[i] = v > h ? h : v;
    }
    return [out];
  };
}

const Clip: KernelFactory = { prepare: clipPrepare };

/** Activations with attributes (defaults are the spec's). All compute in float64 per element. */
export const ACTIVATIONS: Readonly<Record<string, KernelFactory>> = {
  LeakyRelu: unary('LeakyRelu', (node) => {
    const alpha = attrFloat(node, 'alpha', 0.01);
    return { num: (x) => (x >= 0 ? x : alpha * x), floatOnly: true };
  }),
  Elu: unary('Elu', (node) => {
    const alpha = attrFloat(node, 'alpha', 1);
    return { num: (x) => (x >= 0 ? x : alpha * Math.expm1(x)), floatOnly: true };
  }),
  Celu: unary('Celu', (node) => {
    const alpha = attrFloat(node, 'alpha', 1);
    return { num: (x) => Math.max(0, x) + Math.min(0, alpha * Math.expm1(x / alpha)), floatOnly: true };
  }),
  Selu: unary('Selu', (node) => {
    // The spec's defaults are these float32 values, printed exactly.
    const alpha = attrFloat(node, 'alpha', 1.67326319217681884765625);
    const gamma = attrFloat(node, 'gamma', 1.05070102214813232421875);
    return { num: (x) => (x > 0 ? gamma * x : gamma * alpha * Math.expm1(x)), floatOnly: true };
  }),
  ThresholdedRelu: unary('ThresholdedRelu', (node) => {
    const alpha = attrFloat(node, 'alpha', 1);
    return { num: (x) => (x > alpha ? x : 0), floatOnly: true };
  }),
  HardSigmoid: unary('HardSigmoid', (node) => {
    const alpha = attrFloat(node, 'alpha', 0.2);
    const beta = attrFloat(node, 'beta', 0.5);
    return { num: (x) => Math.max(0, Math.min(1, alpha * x + beta)), floatOnly: true };
  }),
  Shrink: unary('Shrink', (node) => {
    const bias = attrFloat(node, 'bias', 0);
    const lambd = attrFloat(node, 'lambd', 0.5);
    return { num: (x) => (x < -lambd ? x + bias : x > lambd ? x - bias : 0) };
  }),
  Swish: unary('Swish', (node) => {
    const alpha = attrFloat(node, 'alpha', 1);
    return { num: (x) => x / (1 + Math.exp(-alpha * x)), floatOnly: true };
  }),
  Gelu: unary('Gelu', (node) => {
    const approximate = attrString(node, 'approximate', 'none');
    if (approximate === 'tanh') {
      const k = Math.sqrt(2 / Math.PI);
      return { num: (x) => 0.5 * x * (1 + Math.tanh(k * (x + 0.044715 * x * x * x))), floatOnly: true };
    }
    if (approximate !== 'none') throw new KernelError(`Gelu: approximate must be none or tanh, not ${approximate}`);
    return { num: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)), floatOnly: true };
  }),
  IsInf: unary('IsInf', (node) => {
    const positive = attrInt(node, 'detect_positive', 1) !== 0;
    const negative = attrInt(node, 'detect_negative', 1) !== 0;
    return { num: (x) => ((positive && x === Infinity) || (negative && x === -Infinity) ? 1 : 0), floatOnly: true, out: 'bool' };
  }),
  Clip,
};
