import { attrInt } from '../../core/graph.js';
import { floatData, normalizeAxis, required, type KernelFactory } from '../kernel.js';
import { makeValue } from '../value.js';
import { wasmSoftmax } from '../wasm/gemm.js';

type Mode = 'softmax' | 'logsoftmax' | 'hardmax';

/**
 * Softmax, LogSoftmax and Hardmax. From opset 13 they work along one axis (default -1); before
 * that the input is coerced to 2-D at `axis` (default 1) and the whole trailing block is one
 * distribution, so the two versions differ unless axis is the last.
 */
/** Scratch for one row of exponentials, grown on demand (kernels never re-enter). */
let row = new Float64Array(0);

function softmaxFamily(op: string, mode: Mode): KernelFactory {
  return {
    prepare(node, opset) {
      const legacy = opset < 13;
      const axisAttr = attrInt(node, 'axis', legacy ? 1 : -1);
      return (inputs) => {
        const x = required(inputs, 0, op);
        const src = floatData(x, op);
        const rank = x.shape.length;
        // A scalar is one distribution of one element.
        const axis = rank === 0 ? 0 : normalizeAxis(axisAttr, rank, op);
        let outer = 1;
        for (let i = 0; i < axis; i++) outer *= x.shape[i]!;
        let len = 1;
        let inner = 1;
        if (legacy) {
          for (let i = axis; i < rank; i++) len *= x.shape[i]!;
        } else {
          len = x.shape[axis] ?? 1;
          for (let i = axis + 1; i < rank; i++) inner *= x.shape[i]!;
        }
        const out = makeValue(x.dtype, x.shape);
        const dst = out.data as Float32Array | Float64Array;
        // float32 rows along the last axis (attention's scores): in the module, exp and all
        if (mode === 'softmax' && x.dtype === 'float32' && inner === 1 && len >= 8 && src instanceof Float32Array && dst instanceof Float32Array &&
          wasmSoftmax(src, dst, outer, len)) {
          return [out];
        }
        for (let o = 0; o < outer; o++) {
          for (let i = 0; i < inner; i++) {
            const base = o * len * inner + i;
            let max = -Infinity;
            let arg = 0;
            for (let j = 0; j < len; j++) {
              const v = src[base + j * inner]!;
              if (v > max) {
                max = v;
                arg = j;
              }
            }
            if (mode === 'hardmax') {
              // The first maximum wins, as numpy.argmax.
              for (let j = 0; j < len; j++) dst[base + j * inner] = j === arg ? 1 : 0;
              continue;
            }
            let sum = 0;
            if (mode === 'softmax') {
              // each exp once, kept in float64 so the quotients are the same as recomputing them
              if (row.length < len) row = new Float64Array(len);
              for (let j = 0; j < len; j++) sum += row[j] = Math.exp(src[base + j * inner]! - max);
              for (let j = 0; j < len; j++) dst[base + j * inner] = row[j]! / sum;
              continue;
            }
            for (let j = 0; j < len; j++) sum += Math.exp(src[base + j * inner]! - max);
            if (mode === 'logsoftmax') {
              const logSum = Math.log(sum);
              for (let j = 0; j < len; j++) dst[base + j * inner] = src[base + j * inner]! - max - logSum;
            } else {
              for (let j = 0; j < len; j++) dst[base + j * inner] = Math.exp(src[base + j * inner]! - max) / sum;
            }
          }
        }
        return [out];
      };
    },
  };
}

export const SOFTMAX: Readonly<Record<string, KernelFactory>> = {
  Softmax: softmaxFamily('Softmax', 'softmax'),
  LogSoftmax: softmaxFamily('LogSoftmax', 'logsoftmax'),
  Hardmax: softmaxFamily('Hardmax', 'hardmax'),
};
