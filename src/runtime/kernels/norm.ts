import { attrFloat, attrInt } from '../../core/graph.js';
import { KernelError, normalizeAxis, required, type KernelFactory } from '../kernel.js';
import { isHalf, makeValue, roundHalf, sizeOfShape, type Value } from '../value.js';

function floats(v: Value, op: string): Float32Array | Float64Array {
  if (v.data instanceof Float32Array || v.data instanceof Float64Array) return v.data;
  throw new KernelError(`${op} takes floats, not ${v.dtype}`);
}

/** Inference-mode BatchNormalization: y = scale · (x − mean) / sqrt(var + epsilon) + B, per channel (axis 1). */
export const BatchNormalization: KernelFactory = {
  prepare(node) {
    const epsilon = attrFloat(node, 'epsilon', 1e-5);
    if (attrInt(node, 'training_mode', 0) !== 0) throw new KernelError('BatchNormalization: training_mode is not supported');
    return (inputs) => {
      const x = required(inputs, 0, 'BatchNormalization');
      const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => floats(required(inputs, i, 'BatchNormalization'), 'BatchNormalization'));
      const n = x.shape[0] ?? 1;
      const c = x.shape[1] ?? 1;
      const spatial = sizeOfShape(x.shape.slice(2));
      const out = makeValue(x.dtype, x.shape);
      const src = floats(x, 'BatchNormalization');
      const dst = out.data as Float32Array;
      for (let ch = 0; ch < c; ch++) {
        const k = scale![ch]! / Math.sqrt(variance![ch]! + epsilon);
        for (let b = 0; b < n; b++) {
          const base = (b * c + ch) * spatial;
          for (let i = 0; i < spatial; i++) dst[base + i] = (src[base + i]! - mean![ch]!) * k + bias![ch]!;
        }
      }
      if (isHalf(out.dtype)) roundHalf(out.dtype, dst);
      return [out];
    };
  },
};

/** LayerNormalization (opset 17): normalise over the axes from `axis` on, then scale and shift. */
export const LayerNormalization: KernelFactory = {
  prepare(node) {
    const axisAttr = attrInt(node, 'axis', -1);
    const epsilon = attrFloat(node, 'epsilon', 1e-5);
    return (inputs) => {
      const x = required(inputs, 0, 'LayerNormalization');
      const scale = floats(required(inputs, 1, 'LayerNormalization'), 'LayerNormalization');
      const biasV = inputs[2];
      const bias = biasV ? floats(biasV, 'LayerNormalization') : undefined;
      const axis = normalizeAxis(axisAttr, x.shape.length, 'LayerNormalization');
      const len = sizeOfShape(x.shape.slice(axis));
      const rows = sizeOfShape(x.shape.slice(0, axis));
      const out = makeValue(x.dtype, x.shape);
      // The optional Mean and InvStdDev outputs keep the normalised axes as size 1 (float32 here).
      const statShape = x.shape.map((d, i) => (i < axis ? d : 1));
      const meanOut = makeValue('float32', statShape);
      const invOut = makeValue('float32', statShape);
      const src = floats(x, 'LayerNormalization');
      const dst = out.data as Float32Array;
      for (let r = 0; r < rows; r++) {
        const base = r * len;
        let mean = 0;
        for (let i = 0; i < len; i++) mean += src[base + i]!;
        mean /= len;
        let variance = 0;
        for (let i = 0; i < len; i++) variance += (src[base + i]! - mean) ** 2;
        variance /= len;
        const inv = 1 / Math.sqrt(variance + epsilon);
        meanOut.data[r] = mean;
        invOut.data[r] = inv;
        for (let i = 0; i < len; i++) {
          dst[base + i] = (src[base + i]! - mean) * inv * scale[i % scale.length]! + (bias ? bias[i % bias.length]! : 0);
        }
      }
      if (isHalf(out.dtype)) roundHalf(out.dtype, dst);
      return [out, meanOut, invOut];
    };
  },
};
