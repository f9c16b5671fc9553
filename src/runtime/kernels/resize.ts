import { attrFloat, attrInt, attrInts, attrString, type Node } from '../../core/graph.js';
import { attrFloats, floatData, formatDims, KernelError, normalizeAxes, required, type KernelFactory } from '../kernel.js';
import { makeValue, sizeOfShape, toIntList, type SmallArray, type Value } from '../value.js';

/**
 * Resize (opset 11+) and Upsample, as ONNX's reference defines them: each output coordinate is
 * mapped back to the input (coordinate_transformation_mode), and the result is a weighted sum of
 * the `n` input elements nearest to it (n = 2 for nearest and linear, 4 for cubic, more with
 * antialias when downsampling), with the input edge-padded. Axes are interpolated one at a time
 * (separable), in float64.
 */
interface ResizeOptions {
  readonly mode: 'nearest' | 'linear' | 'cubic';
  readonly transform: string;
  readonly nearestMode: string;
  readonly cubicA: number;
  readonly excludeOutside: boolean;
  readonly extrapolation: number;
  readonly antialias: boolean;
}

/** Interpolation weights for taps at ceil(x)-n/2 .. , given x's fractional position `ratio` in (0, 1]. */
function coefficients(o: ResizeOptions, ratio: number, scale: number): number[] {
  if (o.mode === 'nearest') {
    if (ratio === 1) return [0, 1];
    switch (o.nearestMode) {
      case 'round_prefer_ceil':
        return ratio < 0.5 ? [1, 0] : [0, 1];
      case 'floor':
        return [1, 0];
      case 'ceil':
        return [0, 1];
      default: // round_prefer_floor
        return ratio <= 0.5 ? [1, 0] : [0, 1];
    }
  }
  if (o.mode === 'linear') {
    if (!o.antialias) return [1 - ratio, ratio];
    // A triangle filter stretched by 1/scale when downsampling.
    const s = Math.min(scale, 1);
    const start = Math.floor(-1 / s) + 1;
    const weights = Array.from({ length: 2 - 2 * start }, (_, i) => Math.min(1, Math.max(0, 1 - Math.abs((start + i - ratio) * s))));
    return normalized(weights);
  }
  const A = o.cubicA;
  if (!o.antialias) {
    const r = ratio;
    const q = 1 - ratio;
    return [
      ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A,
      ((A + 2) * r - (A + 3)) * r * r + 1,
      ((A + 2) * q - (A + 3)) * q * q + 1,
      ((A * (q + 1) - 5 * A) * (q + 1) + 8 * A) * (q + 1) - 4 * A,
    ];
  }
  const s = Math.min(scale, 1);
  const cubic = (x: number) => {
    const a = Math.abs(x);
    if (a <= 1) return (A + 2) * a ** 3 - (A + 3) * a * a + 1;
    if (a < 2) return A * a ** 3 - 5 * A * a * a + 8 * A * a - 4 * A;
    return 0;
  };
  const start = Math.floor(-2 / s) + 1;
  return normalized(Array.from({ length: 2 - 2 * start }, (_, i) => cubic(s * (start + i - ratio))));
}

function normalized(weights: number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => w / sum);
}

/** Per output index along one axis: the taps (clamped input indices) and weights, or null for extrapolation. */
type AxisPlan = ({ taps: number[]; weights: number[] } | null)[];

function planAxis(o: ResizeOptions, inLen: number, outLen: number, scale: number, roi: [number, number]): AxisPlan {
  const outWidth = scale * inLen; // ONNX's reference uses the unrounded width here
  const plan: AxisPlan = [];
  for (let x = 0; x < outLen; x++) {
    let xo: number;
    switch (o.transform) {
      case 'align_corners':
        xo = outWidth === 1 ? 0 : (x * (inLen - 1)) / (outWidth - 1);
        break;
      case 'asymmetric':
        xo = x / scale;
        break;
      case 'tf_crop_and_resize':
        xo = (outWidth === 1 ? ((roi[1] - roi[0]) * (inLen - 1)) / 2 : (x * (roi[1] - roi[0]) * (inLen - 1)) / (outWidth - 1)) + roi[0] * (inLen - 1);
        break;
      case 'pytorch_half_pixel':
        xo = outWidth === 1 ? -0.5 : (x + 0.5) / scale - 0.5;
        break;
      case 'half_pixel_symmetric': {
        const center = inLen / 2;
        xo = center * (1 - outLen / outWidth) + (x + 0.5) / scale - 0.5;
        break;
      }
      case 'half_pixel':
        xo = (x + 0.5) / scale - 0.5;
        break;
      default:
        throw new KernelError(`Resize: unknown coordinate_transformation_mode ${o.transform}`);
    }
    if (o.transform === 'tf_crop_and_resize' && (xo < 0 || xo > inLen - 1)) {
      plan.push(null);
      continue;
    }
    // The fraction is taken in (0, 1]: an integer position counts as the right end of the previous cell.
    const base = Number.isInteger(xo) ? xo - 1 : Math.floor(xo);
    const ratio = Number.isInteger(xo) ? 1 : xo - base;
    let weights = coefficients(o, ratio, scale);
    const n = weights.length;
    // The n nearest positions of the edge-padded input (padding n/2 each side), as the reference picks them.
    const first = Math.min(Math.max(base - n / 2 + 1, -n / 2), inLen + n / 2 - n);
    const positions = Array.from({ length: n }, (_, j) => first + j);
    if (o.excludeOutside) {
      weights = normalized(weights.map((w, j) => (positions[j]! < 0 || positions[j]! >= inLen ? 0 : w)));
    }
    plan.push({ taps: positions.map((p) => Math.min(Math.max(p, 0), inLen - 1)), weights });
  }
  return plan;
}

/** Interpolates along one axis: [outer, inLen, inner] -> [outer, outLen, inner]. */
function resizeAxis(src: Float64Array, shape: readonly number[], axis: number, plan: AxisPlan, extrapolation: number): Float64Array {
  const outer = sizeOfShape(shape.slice(0, axis));
  const inner = sizeOfShape(shape.slice(axis + 1));
  const inLen = shape[axis]!;
  const outLen = plan.length;
  const dst = new Float64Array(outer * outLen * inner);
  for (let o = 0; o < outer; o++) {
    for (let x = 0; x < outLen; x++) {
      const p = plan[x]!;
      const at = (o * outLen + x) * inner;
      if (!p) {
        dst.fill(extrapolation, at, at + inner);
        continue;
      }
      for (let j = 0; j < p.taps.length; j++) {
        const w = p.weights[j]!;
        if (w === 0) continue;
        const from = (o * inLen + p.taps[j]!) * inner;
        for (let i = 0; i < inner; i++) dst[at + i]! += w * src[from + i]!;
      }
    }
  }
  return dst;
}

function resize(x: Value, outShape: readonly number[], scales: readonly number[], o: ResizeOptions, roi: readonly number[]): Value {
  const rank = x.shape.length;
  let data: Float64Array = Float64Array.from(x.data as SmallArray);
  let shape = [...x.shape];
  for (let axis = 0; axis < rank; axis++) {
    // An axis kept at scale 1 with an identity mapping needs no pass.
    if (outShape[axis] === shape[axis] && scales[axis] === 1 && o.transform !== 'tf_crop_and_resize') continue;
    const plan = planAxis(o, shape[axis]!, outShape[axis]!, scales[axis]!, [roi[axis] ?? 0, roi[axis + rank] ?? 1]);
    data = resizeAxis(data, shape, axis, plan, o.extrapolation);
    shape[axis] = outShape[axis]!;
  }
  const out = makeValue(x.dtype, outShape);
  const dst = out.data as SmallArray;
  const integer = !(dst instanceof Float32Array || dst instanceof Float64Array);
  // Integer outputs truncate, as the reference's cast back to the input type does.
  for (let i = 0; i < data.length; i++) dst[i] = integer ? Math.trunc(data[i]!) : data[i]!;
  return out;
}

function options(node: Node): ResizeOptions {
  const mode = attrString(node, 'mode', 'nearest');
  if (mode !== 'nearest' && mode !== 'linear' && mode !== 'cubic') throw new KernelError(`Resize: unknown mode ${mode}`);
  return {
    mode,
    transform: attrString(node, 'coordinate_transformation_mode', 'half_pixel'),
    nearestMode: attrString(node, 'nearest_mode', 'round_prefer_floor'),
    cubicA: attrFloat(node, 'cubic_coeff_a', -0.75),
    excludeOutside: attrInt(node, 'exclude_outside', 0) !== 0,
    extrapolation: attrFloat(node, 'extrapolation_value', 0),
    antialias: attrInt(node, 'antialias', 0) !== 0,
  };
}

export const Resize: KernelFactory = {
  prepare(node) {
    const o = options(node);
    const axesAttr = attrInts(node, 'axes');
    const policy = attrString(node, 'keep_aspect_ratio_policy', 'stretch');
    return (inputs) => {
      const x = required(inputs, 0, 'Resize');
      const rank = x.shape.length;
      const axes = axesAttr ? normalizeAxes(axesAttr, rank, 'Resize') : Array.from({ length: rank }, (_, i) => i);
      const roiGiven = inputs[1] && inputs[1].data.length ? Array.from(floatData(inputs[1], 'Resize')) : undefined;
      const scalesGiven = inputs[2] && inputs[2].data.length ? Array.from(floatData(inputs[2], 'Resize')) : undefined;
      const sizesGiven = inputs[3] && inputs[3].data.length ? toIntList(inputs[3]) : undefined;
      const scales = new Array<number>(rank).fill(1);
      const outShape = [...x.shape];
      const roi = [...new Array<number>(rank).fill(0), ...new Array<number>(rank).fill(1)];
      if (roiGiven) axes.forEach((a, i) => ((roi[a] = roiGiven[i]!), (roi[a + rank] = roiGiven[i + axes.length]!)));
      if (scalesGiven) {
        if (scalesGiven.length !== axes.length) throw new KernelError(`Resize: ${scalesGiven.length} scales for ${axes.length} axes`);
        axes.forEach((a, i) => {
          scales[a] = scalesGiven[i]!;
          outShape[a] = Math.floor(x.shape[a]! * scalesGiven[i]!);
        });
      } else if (sizesGiven) {
        if (sizesGiven.length !== axes.length) throw new KernelError(`Resize: ${sizesGiven.length} sizes for ${axes.length} axes`);
        axes.forEach((a, i) => ((outShape[a] = sizesGiven[i]!), (scales[a] = sizesGiven[i]! / x.shape[a]!)));
        if (policy !== 'stretch') {
          const picked = axes.map((a) => scales[a]!);
          const scale = policy === 'not_larger' ? Math.min(...picked) : Math.max(...picked);
          for (const a of axes) {
            scales[a] = scale;
            outShape[a] = Math.floor(scale * x.shape[a]! + 0.5);
          }
        }
      } else {
        throw new KernelError('Resize needs scales or sizes');
      }
      return [resize(x, outShape, scales, o, roi)];
    };
  },
};

/** Upsample (opsets 7-9): scales as an attribute (7) or input (9), asymmetric coordinates, nearest rounds down. */
export const Upsample: KernelFactory = {
  prepare(node, opset) {
    const mode = attrString(node, 'mode', 'nearest');
    if (mode !== 'nearest' && mode !== 'linear') throw new KernelError(`Upsample: unknown mode ${mode}`);
    const o: ResizeOptions = { mode, transform: 'asymmetric', nearestMode: 'floor', cubicA: -0.75, excludeOutside: false, extrapolation: 0, antialias: false };
    const scalesAttr = attrFloats(node, 'scales');
    return (inputs) => {
      const x = required(inputs, 0, 'Upsample');
      const scales = opset < 9 ? scalesAttr?.slice() : Array.from(floatData(required(inputs, 1, 'Upsample'), 'Upsample'));
      if (!scales || scales.length !== x.shape.length) throw new KernelError(`Upsample: scales must have one value per axis of ${formatDims(x.shape)}`);
      const outShape = x.shape.map((d, i) => Math.floor(d * scales[i]!));
      return [resize(x, outShape, scales, o, [])];
    };
  },
};
