import { attrInt } from '../../core/graph.js';
import { KernelError, normalizeAxis, required, type KernelFactory } from '../kernel.js';
import { isHalf, makeValue, roundHalf } from '../value.js';

/**
 * Softmax and LogSoftmax. From opset 13 they normalise along one axis (default -1); before
 * that the input is coerced to 2-D at `axis` (default 1) and the whole trailing block is one
 * distribution, so the two versions differ unless axis is the last.
 */
function softmaxFamily(op: string, log: boolean): KernelFactory {
  return {
    prepare(node, opset) {
      const legacy = opset < 13;
      const axisAttr = attrInt(node, 'axis', legacy ? 1 : -1);
      return (inputs) => {
        const x = required(inputs, 0, op);
        if (!(x.data instanceof Float32Array || x.data instanceof Float64Array)) throw new KernelError(`${op} takes floats, not ${x.dtype}`);
        const rank = x.shape.length;
        const axis = normalizeAxis(axisAttr, Math.max(rank, 1), op);
        let outer = 1;
        for (let i = 0; i < axis; i++) outer *= x.shape[i]!;
        let len: number;
        let inner: number;
        if (legacy) {
          len = 1;
          for (let i = axis; i < rank; i++) len *= x.shape[i]!;
          inner = 1;
        } else {
          len = x.shape[axis] ?? 1;
          inner = 1;
          for (let i = axis + 1; i < rank; i++) inner *= x.shape[i]!;
        }
        const out = makeValue(x.dtype, x.shape);
        const src = x.data;
        const dst = out.data as Float32Array | Float64Array;
        for (let o = 0; o < outer; o++) {
          for (let i = 0; i < inner; i++) {
            const base = o * len * inner + i;
            let max = -Infinity;
            for (let j = 0; j < len; j++) max = Math.max(max, src[base + j * inner]!);
            let sum = 0;
            for (let j = 0; j < len; j++) sum += Math.exp(src[base + j * inner]! - max);
            if (log) {
              const logSum = Math.log(sum);
              for (let j = 0; j < len; j++) dst[base + j * inner] = src[base + j * inner]! - max - logSum;
            } else {
              for (let j = 0; j < len; j++) dst[base + j * inner] = Math.exp(src[base + j * inner]! - max) / sum;
            }
          }
        }
        if (isHalf(x.dtype)) roundHalf(x.dtype, dst as Float32Array);
        return [out];
      };
    },
  };
}

export const Softmax = softmaxFamily('Softmax', false);
export const LogSoftmax = softmaxFamily('LogSoftmax', true);
