import { attrFloat, attrInt, attrInts } from '../../core/graph.js';
import { floatData, KernelError, normalizeAxes, normalizeAxis, required, type KernelFactory } from '../kernel.js';
import { makeValue, sizeOfShape, type FloatArray, type Value } from '../value.js';
import { wasmLayerNorm } from '../wasm/gemm.js';

/** Normalisations. Statistics are accumulated in float64 regardless of the input type. */

/**
 * BatchNormalization over axis 1: y = scale · (x − mean) / sqrt(var + epsilon) + B. Inference
 * uses the given mean and var; training_mode (opset 14+) uses the batch's own statistics and
 * also returns the updated running mean and variance (momentum-weighted).
 */
const BatchNormalization: KernelFactory = {
  prepare(node) {
    const epsilon = attrFloat(node, 'epsilon', 1e-5);
    const momentum = attrFloat(node, 'momentum', 0.9);
    const training = attrInt(node, 'training_mode', 0) !== 0;
    return (inputs) => {
      const x = required(inputs, 0, 'BatchNormalization');
      const [scale, bias, inputMean, inputVar] = [1, 2, 3, 4].map((i) => floatData(required(inputs, i, 'BatchNormalization'), 'BatchNormalization')) as [FloatArray, FloatArray, FloatArray, FloatArray];
      const n = x.shape[0] ?? 1;
      const c = x.shape[1] ?? 1;
      const spatial = sizeOfShape(x.shape.slice(2));
      const src = floatData(x, 'BatchNormalization');
      const mean = training ? new Float64Array(c) : inputMean;
      const variance = training ? new Float64Array(c) : inputVar;
      if (training) {
        const count = n * spatial;
        for (let ch = 0; ch < c; ch++) {
          let s = 0;
          for (let b = 0; b < n; b++) for (let i = 0, base = (b * c + ch) * spatial; i < spatial; i++) s += src[base + i]!;
          const mu = s / count;
          let v = 0;
          for (let b = 0; b < n; b++) for (let i = 0, base = (b * c + ch) * spatial; i < spatial; i++) v += (src[base + i]! - mu) ** 2;
          mean[ch] = mu;
          variance[ch] = v / count;
        }
      }
      const out = makeValue(x.dtype, x.shape);
      const dst = out.data as FloatArray;
      for (let ch = 0; ch < c; ch++) {
        const k = scale[ch]! / Math.sqrt(variance[ch]! + epsilon);
        for (let b = 0; b < n; b++) {
          const base = (b * c + ch) * spatial;
          for (let i = 0; i < spatial; i++) dst[base + i] = (src[base + i]! - mean[ch]!) * k + bias[ch]!;
        }
      }
      if (!training) return [out];
      const running = (given: FloatArray, current: FloatArray, dtype: Value['dtype']): Value => {
        const v = makeValue(dtype, [c]);
        for (let ch = 0; ch < c; ch++) (v.data as FloatArray)[ch] = given[ch]! * momentum + current[ch]! * (1 - momentum);
        return v;
      };
      return [out, running(inputMean, mean, inputs[3]!.dtype), running(inputVar, variance, inputs[4]!.dtype)];
    };
  },
};

/**
 * Normalises each row of `len` elements (after `rows` leading ones) to zero mean and unit
 * variance, then applies per-element scale and bias (broadcast by wrapping their index).
 * Returns the per-row mean and 1/sqrt(var + epsilon) for LayerNormalization's extra outputs.
 */
function normalizeRows(src: FloatArray, dst: FloatArray, rows: number, len: number, epsilon: number, scale: FloatArray | undefined, bias: FloatArray | undefined, rms = false): { mean: Float64Array; inv: Float64Array } {
  const means = new Float64Array(rows);
  const invs = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * len;
    let mean = 0;
    if (!rms) {
      for (let i = 0; i < len; i++) mean += src[base + i]!;
      mean /= len;
    }
    let variance = 0;
    for (let i = 0; i < len; i++) {
      const d = src[base + i]! - mean;
      variance += d * d;
    }
    variance /= len;
    const inv = 1 / Math.sqrt(variance + epsilon);
    means[r] = mean;
    invs[r] = inv;
    if (scale && scale.length === len && (!bias || bias.length === len)) {
      // the usual layout (scale and bias over the whole normalised row): no index wrapping
      if (bias) for (let i = 0; i < len; i++) dst[base + i] = (src[base + i]! - mean) * inv * scale[i]! + bias[i]!;
      else for (let i = 0; i < len; i++) dst[base + i] = (src[base + i]! - mean) * inv * scale[i]!;
      continue;
    }
    for (let i = 0; i < len; i++) {
      let y = (src[base + i]! - mean) * inv;
      if (scale) y *= scale[i % scale.length]!;
      if (bias) y += bias[i % bias.length]!;
      dst[base + i] = y;
    }
  }
  return { mean: means, inv: invs };
}

/** LayerNormalization (opset 17): over the axes from `axis` on; optional Mean and InvStdDev outputs. */
const LayerNormalization: KernelFactory = {
  prepare(node) {
    const axisAttr = attrInt(node, 'axis', -1);
    const epsilon = attrFloat(node, 'epsilon', 1e-5);
    const outputs = node.outputs.length;
    return (inputs) => {
      const x = required(inputs, 0, 'LayerNormalization');
      const scale = floatData(required(inputs, 1, 'LayerNormalization'), 'LayerNormalization');
      const bias = inputs[2] ? floatData(inputs[2], 'LayerNormalization') : undefined;
      const axis = normalizeAxis(axisAttr, x.shape.length, 'LayerNormalization');
      const len = sizeOfShape(x.shape.slice(axis));
      const rows = sizeOfShape(x.shape.slice(0, axis));
      const out = makeValue(x.dtype, x.shape);
      const src = floatData(x, 'LayerNormalization');
      // float32 with a whole-row scale (and bias), the statistics not asked for (a transformer's):
      // in the module, the same bits, the rows over the intra-op threads
      if (outputs < 2 && src instanceof Float32Array && scale instanceof Float32Array && (bias === undefined || bias instanceof Float32Array) &&
        wasmLayerNorm(src, out.data as Float32Array, rows, len, scale, bias, epsilon)) {
        return [out];
      }
      const stats = normalizeRows(src, out.data as FloatArray, rows, len, epsilon, scale, bias);
      if (outputs < 2) return [out];
      // Statistics come out in float32 (stash_type 1), shaped like X with the normalised axes as 1.
      const statShape = x.shape.map((d, i) => (i < axis ? d : 1));
      return [out, makeValue('float32', statShape, Float32Array.from(stats.mean)), makeValue('float32', statShape, Float32Array.from(stats.inv))];
    };
  },
};

/** RMSNormalization (opset 23): x / sqrt(mean(x²) + epsilon) · scale over the axes from `axis` on. */
const RMSNormalization: KernelFactory = {
  prepare(node) {
    const axisAttr = attrInt(node, 'axis', -1);
    const epsilon = attrFloat(node, 'epsilon', 1e-5);
    return (inputs) => {
      const x = required(inputs, 0, 'RMSNormalization');
      const scale = floatData(required(inputs, 1, 'RMSNormalization'), 'RMSNormalization');
      const axis = normalizeAxis(axisAttr, x.shape.length, 'RMSNormalization');
      const out = makeValue(x.dtype, x.shape);
      normalizeRows(floatData(x, 'RMSNormalization'), out.data as FloatArray, sizeOfShape(x.shape.slice(0, axis)), sizeOfShape(x.shape.slice(axis)), epsilon, scale, undefined, true);
      return [out];
    };
  },
};

/** InstanceNormalization: each (n, c) plane normalised on its own, then per-channel scale and B. */
const InstanceNormalization: KernelFactory = {
  prepare(node) {
    const epsilon = attrFloat(node, 'epsilon', 1e-5);
    return (inputs) => {
      const x = required(inputs, 0, 'InstanceNormalization');
      const scale = floatData(required(inputs, 1, 'InstanceNormalization'), 'InstanceNormalization');
      const bias = floatData(required(inputs, 2, 'InstanceNormalization'), 'InstanceNormalization');
      const [n, c] = x.shape as [number, number];
      const spatial = sizeOfShape(x.shape.slice(2));
      const out = makeValue(x.dtype, x.shape);
      const src = floatData(x, 'InstanceNormalization');
      const dst = out.data as FloatArray;
      normalizeRows(src, dst, n * c, spatial, epsilon, undefined, undefined);
      for (let p = 0; p < n * c; p++) {
        const s = scale[p % c]!;
        const b = bias[p % c]!;
        for (let i = p * spatial; i < (p + 1) * spatial; i++) dst[i] = dst[i]! * s + b;
      }
      return [out];
    };
  },
};

/** Statistics over arbitrary axes: calls visit(indices of one group) for each group of reduced elements. */
function forEachGroup(shape: readonly number[], axes: readonly number[], visit: (indices: number[]) => void): void {
  const kept = shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const strides = shape.map((_, i) => sizeOfShape(shape.slice(i + 1)));
  const keptCount = sizeOfShape(kept.map((i) => shape[i]!));
  const groupCount = sizeOfShape(axes.map((i) => shape[i]!));
  for (let g = 0; g < keptCount; g++) {
    let base = 0;
    let rest = g;
    for (let j = kept.length - 1; j >= 0; j--) {
      const axis = kept[j]!;
      base += (rest % shape[axis]!) * strides[axis]!;
      rest = Math.floor(rest / shape[axis]!);
    }
    const indices = new Array<number>(groupCount);
    for (let e = 0; e < groupCount; e++) {
      let at = base;
      let r = e;
      for (let j = axes.length - 1; j >= 0; j--) {
        const axis = axes[j]!;
        at += (r % shape[axis]!) * strides[axis]!;
        r = Math.floor(r / shape[axis]!);
      }
      indices[e] = at;
    }
    visit(indices);
  }
}

/** LpNormalization: x / ||x||_p along one axis (p = 1 or 2). */
const LpNormalization: KernelFactory = {
  prepare(node) {
    const axisAttr = attrInt(node, 'axis', -1);
    const p = attrInt(node, 'p', 2);
    return (inputs) => {
      const x = required(inputs, 0, 'LpNormalization');
      const src = floatData(x, 'LpNormalization');
      const out = makeValue(x.dtype, x.shape);
      const dst = out.data as FloatArray;
      forEachGroup(x.shape, [normalizeAxis(axisAttr, x.shape.length, 'LpNormalization')], (idx) => {
        let norm = 0;
        for (const i of idx) norm += p === 1 ? Math.abs(src[i]!) : src[i]! ** 2;
        if (p !== 1) norm = Math.sqrt(norm);
        for (const i of idx) dst[i] = norm === 0 ? 0 : src[i]! / norm;
      });
      return [out];
    };
  },
};

/** MeanVarianceNormalization: (x − mean) / sqrt(var) over `axes` (default N, H, W), with a 1e-9 floor as the reference. */
const MeanVarianceNormalization: KernelFactory = {
  prepare(node) {
    const axesAttr = attrInts(node, 'axes') ?? [0, 2, 3];
    return (inputs) => {
      const x = required(inputs, 0, 'MeanVarianceNormalization');
      const src = floatData(x, 'MeanVarianceNormalization');
      const out = makeValue(x.dtype, x.shape);
      const dst = out.data as FloatArray;
      forEachGroup(x.shape, normalizeAxes(axesAttr, x.shape.length, 'MeanVarianceNormalization'), (idx) => {
        let mean = 0;
        for (const i of idx) mean += src[i]!;
        mean /= idx.length;
        let variance = 0;
        for (const i of idx) variance += (src[i]! - mean) ** 2;
        variance /= idx.length;
        const std = Math.sqrt(variance) + 1e-9;
        for (const i of idx) dst[i] = (src[i]! - mean) / std;
      });
      return [out];
    };
  },
};

/**
 * GroupNormalization: channels split into num_groups groups, each (n, group) normalised over its
 * channels and spatial positions. Scale and bias are per channel from opset 21, per group before.
 */
const GroupNormalization: KernelFactory = {
  prepare(node, opset) {
    const groups = attrInt(node, 'num_groups', 0);
    const epsilon = attrFloat(node, 'epsilon', 1e-5);
    return (inputs) => {
      const x = required(inputs, 0, 'GroupNormalization');
      const scale = floatData(required(inputs, 1, 'GroupNormalization'), 'GroupNormalization');
      const bias = floatData(required(inputs, 2, 'GroupNormalization'), 'GroupNormalization');
      const [n, c] = x.shape as [number, number];
      if (groups <= 0 || c % groups !== 0) throw new KernelError(`GroupNormalization: ${c} channels do not split into ${groups} groups`);
      const perGroup = c / groups;
      const spatial = sizeOfShape(x.shape.slice(2));
      const out = makeValue(x.dtype, x.shape);
      const dst = out.data as FloatArray;
      normalizeRows(floatData(x, 'GroupNormalization'), dst, n * groups, perGroup * spatial, epsilon, undefined, undefined);
      for (let b = 0; b < n; b++) {
        for (let ch = 0; ch < c; ch++) {
          const k = opset >= 21 ? ch : Math.floor(ch / perGroup);
          for (let i = (b * c + ch) * spatial, end = i + spatial; i < end; i++) dst[i] = dst[i]! * scale[k]! + bias[k]!;
        }
      }
      return [out];
    };
  },
};

/** LRN: x / (bias + alpha/size · Σ x² over the `size` neighbouring channels)^beta. */
const LRN: KernelFactory = {
  prepare(node) {
    const size = attrInt(node, 'size', 0);
    const alpha = attrFloat(node, 'alpha', 1e-4);
    const beta = attrFloat(node, 'beta', 0.75);
    const bias = attrFloat(node, 'bias', 1);
    if (size < 1) throw new KernelError('LRN needs a positive size');
    return (inputs) => {
      const x = required(inputs, 0, 'LRN');
      const [n, c] = x.shape as [number, number];
      const spatial = sizeOfShape(x.shape.slice(2));
      const src = floatData(x, 'LRN');
      const out = makeValue(x.dtype, x.shape);
      const dst = out.data as FloatArray;
      const before = Math.floor((size - 1) / 2);
      const after = Math.ceil((size - 1) / 2);
      for (let b = 0; b < n; b++) {
        for (let ch = 0; ch < c; ch++) {
          for (let i = 0; i < spatial; i++) {
            let sum = 0;
            for (let j = Math.max(0, ch - before); j <= Math.min(c - 1, ch + after); j++) sum += src[(b * c + j) * spatial + i]! ** 2;
            const at = (b * c + ch) * spatial + i;
            dst[at] = src[at]! / (bias + (alpha / size) * sum) ** beta;
          }
        }
      }
      return [out];
    };
  },
};

export const NORM_OPS: Readonly<Record<string, KernelFactory>> = {
  GroupNormalization,
  LRN,
  BatchNormalization,
  LayerNormalization,
  RMSNormalization,
  InstanceNormalization,
  LpNormalization,
  MeanVarianceNormalization,
};
