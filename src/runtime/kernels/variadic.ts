import { floatData, KernelError, sameDType, type KernelFactory } from '../kernel.js';
import { makeValue, type Value } from '../value.js';
import { applyBinary, type BinaryFunctions } from './binary-core.js';

/**
 * Max, Min, Sum and Mean over one or more inputs, all broadcast together (opset 8+). Folding
 * pairwise gives the same result, as broadcasting composes.
 */
function variadic(op: string, fns: BinaryFunctions, finish?: (sum: Value, count: number) => Value): KernelFactory {
  return {
    prepare: () => (inputs) => {
      const values = inputs.filter((v): v is Value => v !== undefined);
      if (values.length === 0) throw new KernelError(`${op} needs at least one input`);
      const dtype = sameDType(values, op);
      let acc = values[0]!;
      for (let i = 1; i < values.length; i++) acc = applyBinary(op, acc, values[i]!, dtype, fns);
      return [finish ? finish(acc, values.length) : acc];
    },
  };
}

// NaN wins, as in numpy.maximum / numpy.minimum, which ONNX's reference uses.
const max: BinaryFunctions = { num: (a, b) => (Number.isNaN(a) || a >= b ? a : b), big: (a, b) => (a >= b ? a : b) };
const min: BinaryFunctions = { num: (a, b) => (Number.isNaN(a) || a <= b ? a : b), big: (a, b) => (a <= b ? a : b) };
const add: BinaryFunctions = { num: (a, b) => a + b, big: (a, b) => a + b };

export const VARIADIC: Readonly<Record<string, KernelFactory>> = {
  Max: variadic('Max', max),
  Min: variadic('Min', min),
  Sum: variadic('Sum', add),
  Mean: variadic('Mean', add, (sum, count) => {
    const src = floatData(sum, 'Mean');
    const out = makeValue(sum.dtype, sum.shape);
    const dst = out.data as Float32Array;
    for (let i = 0; i < src.length; i++) dst[i] = src[i]! / count;
    return out;
  }),
};
