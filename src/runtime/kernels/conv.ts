import { attrInt, attrInts, attrString, type Node } from '../../core/graph.js';
import { KernelError, required, type KernelFactory } from '../kernel.js';
import { isHalf, makeValue, roundHalf, type Value } from '../value.js';

/** Spatial geometry shared by Conv and the pools (2-D: NCHW). */
interface Geometry {
  kernel: [number, number];
  strides: [number, number];
  dilations: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
  outH: number;
  outW: number;
}

function pair(values: readonly number[] | undefined, fallback: number): [number, number] {
  return [values?.[0] ?? fallback, values?.[1] ?? fallback];
}

function geometry(node: Node, h: number, w: number, kernel: [number, number], ceil: boolean): Geometry {
  const strides = pair(attrInts(node, 'strides'), 1);
  const dilations = pair(attrInts(node, 'dilations'), 1);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  const ek = [dilations[0] * (kernel[0] - 1) + 1, dilations[1] * (kernel[1] - 1) + 1];
  let pads: [number, number, number, number];
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const total = [h, w].map((size, i) => Math.max(0, (Math.ceil(size / strides[i]!) - 1) * strides[i]! + ek[i]! - size));
    const small = total.map((t) => Math.floor(t / 2));
    const big = total.map((t, i) => t - small[i]!);
    pads = autoPad === 'SAME_UPPER' ? [small[0]!, small[1]!, big[0]!, big[1]!] : [big[0]!, big[1]!, small[0]!, small[1]!];
  } else if (autoPad === 'VALID') {
    pads = [0, 0, 0, 0];
  } else {
    const p = attrInts(node, 'pads') ?? [0, 0, 0, 0];
    pads = [p[0] ?? 0, p[1] ?? 0, p[2] ?? 0, p[3] ?? 0];
  }
  const out = (size: number, i: 0 | 1) => {
    const span = size + pads[i]! + pads[i + 2]! - ek[i]!;
    let o = (ceil ? Math.ceil(span / strides[i]) : Math.floor(span / strides[i])) + 1;
    // A window may not start inside the end padding (ONNX and PyTorch agree on this for ceil_mode).
    if (ceil && (o - 1) * strides[i] >= size + pads[i]!) o--;
    return o;
  };
  return { kernel, strides, dilations, pads, outH: out(h, 0), outW: out(w, 1) };
}

function floats(v: Value, op: string): Float32Array | Float64Array {
  if (v.data instanceof Float32Array || v.data instanceof Float64Array) return v.data;
  throw new KernelError(`${op} takes floats, not ${v.dtype}`);
}

function dims4(v: Value, op: string): [number, number, number, number] {
  if (v.shape.length !== 4) throw new KernelError(`${op}: only 2-D (NCHW) inputs are supported, got rank ${v.shape.length}`);
  return v.shape as unknown as [number, number, number, number];
}

/** 2-D convolution with groups, strides, dilations and padding (ONNX Conv). */
export const Conv: KernelFactory = {
  prepare(node) {
    const group = attrInt(node, 'group', 1);
    return (inputs) => {
      const x = required(inputs, 0, 'Conv');
      const wv = required(inputs, 1, 'Conv');
      const bias = inputs[2];
      const [n, c, h, w] = dims4(x, 'Conv');
      const [m, cg, kh, kw] = dims4(wv, 'Conv');
      if (cg * group !== c || m % group !== 0) throw new KernelError(`Conv: weight [${wv.shape.join(', ')}] does not fit ${c} channels in ${group} groups`);
      const g = geometry(node, h, w, [kh, kw], false);
      const out = makeValue(x.dtype, [n, m, g.outH, g.outW]);
      const src = floats(x, 'Conv');
      const wt = floats(wv, 'Conv');
      const b = bias ? floats(bias, 'Conv') : undefined;
      const dst = out.data as Float32Array;
      const mg = m / group;
      for (let bi = 0; bi < n; bi++) {
        for (let oc = 0; oc < m; oc++) {
          const grp = Math.floor(oc / mg);
          for (let oy = 0; oy < g.outH; oy++) {
            for (let ox = 0; ox < g.outW; ox++) {
              let sum = b ? b[oc]! : 0;
              for (let ic = 0; ic < cg; ic++) {
                const plane = ((bi * c + grp * cg + ic) * h) * w;
                const wBase = ((oc * cg + ic) * kh) * kw;
                for (let ky = 0; ky < kh; ky++) {
                  const iy = oy * g.strides[0] - g.pads[0] + ky * g.dilations[0];
                  if (iy < 0 || iy >= h) continue;
                  for (let kx = 0; kx < kw; kx++) {
                    const ix = ox * g.strides[1] - g.pads[1] + kx * g.dilations[1];
                    if (ix < 0 || ix >= w) continue;
                    sum += src[plane + iy * w + ix]! * wt[wBase + ky * kw + kx]!;
                  }
                }
              }
              dst[((bi * m + oc) * g.outH + oy) * g.outW + ox] = sum;
            }
          }
        }
      }
      if (isHalf(out.dtype)) roundHalf(out.dtype, dst);
      return [out];
    };
  },
};

/** Window geometry of a pool over any number of spatial axes (ONNX pads: all begins, then all ends). */
function poolGeometry(node: Node, spatial: readonly number[], kernel: readonly number[], ceil: boolean) {
  const rank = spatial.length;
  const strides = attrInts(node, 'strides') ?? new Array<number>(rank).fill(1);
  const dilations = attrInts(node, 'dilations') ?? new Array<number>(rank).fill(1);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  const span = kernel.map((k, i) => dilations[i]! * (k - 1) + 1);
  let pads: number[];
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const total = spatial.map((size, i) => Math.max(0, (Math.ceil(size / strides[i]!) - 1) * strides[i]! + span[i]! - size));
    const small = total.map((t) => Math.floor(t / 2));
    const big = total.map((t, i) => t - small[i]!);
    pads = autoPad === 'SAME_UPPER' ? [...small, ...big] : [...big, ...small];
  } else if (autoPad === 'VALID') {
    pads = new Array<number>(2 * rank).fill(0);
  } else {
    pads = attrInts(node, 'pads')?.slice() ?? new Array<number>(2 * rank).fill(0);
  }
  const out = spatial.map((size, i) => {
    const room = size + pads[i]! + pads[i + rank]! - span[i]!;
    let o = (ceil ? Math.ceil(room / strides[i]!) : Math.floor(room / strides[i]!)) + 1;
    // A window may not start inside the end padding (ONNX and PyTorch agree on this for ceil_mode).
    if (ceil && (o - 1) * strides[i]! >= size + pads[i]!) o--;
    return o;
  });
  return { strides, dilations, pads, out };
}

/** Steps an odometer over `limits`; returns false when it wraps around. */
function step(counter: number[], limits: readonly number[]): boolean {
  for (let axis = counter.length - 1; axis >= 0; axis--) {
    if (++counter[axis]! < limits[axis]!) return true;
    counter[axis] = 0;
  }
  return false;
}

function pool(op: 'MaxPool' | 'AveragePool'): KernelFactory {
  return {
    prepare(node) {
      const kernel = attrInts(node, 'kernel_shape');
      if (!kernel) throw new KernelError(`${op} needs kernel_shape`);
      const ceil = attrInt(node, 'ceil_mode', 0) !== 0;
      const includePad = attrInt(node, 'count_include_pad', 0) !== 0;
      if (op === 'MaxPool' && node.outputs.length > 1 && node.outputs[1]) throw new KernelError('MaxPool: the Indices output is not supported');
      return (inputs) => {
        const x = required(inputs, 0, op);
        if (x.shape.length !== kernel.length + 2) throw new KernelError(`${op}: input rank ${x.shape.length} does not match a ${kernel.length}-D kernel`);
        if (op === 'AveragePool' && !(x.data instanceof Float32Array || x.data instanceof Float64Array)) throw new KernelError(`AveragePool takes floats, not ${x.dtype}`);
        if (x.data instanceof BigInt64Array || x.data instanceof BigUint64Array) throw new KernelError(`${op} does not take ${x.dtype}`);
        const spatial = x.shape.slice(2);
        const rank = spatial.length;
        const g = poolGeometry(node, spatial, kernel, ceil);
        const planeSize = spatial.reduce((a, b) => a * b, 1);
        const outPlane = g.out.reduce((a, b) => a * b, 1);
        const planes = x.shape[0]! * x.shape[1]!;
        const out = makeValue(x.dtype, [x.shape[0]!, x.shape[1]!, ...g.out]);
        const src = x.data as Float64Array;
        const dst = out.data as Float64Array;
        if (outPlane === 0 || planes === 0) return [out];
        const o = new Array<number>(rank).fill(0);
        const k = new Array<number>(rank).fill(0);
        let at = 0;
        do {
          const base = new Array<number>(rank);
          for (let i = 0; i < rank; i++) base[i] = o[i]! * g.strides[i]! - g.pads[i]!;
          for (let plane = 0; plane < planes; plane++) {
            let acc = op === 'MaxPool' ? -Infinity : 0;
            let count = 0;
            let padded = 0;
            k.fill(0);
            do {
              let offset = 0;
              let inside = true;
              let inPadding = true;
              for (let i = 0; i < rank; i++) {
                const pos = base[i]! + k[i]! * g.dilations[i]!;
                if (pos < 0 || pos >= spatial[i]!) inside = false;
                // count_include_pad counts explicit padding, not the overhang ceil_mode adds.
                if (pos < -g.pads[i]! || pos >= spatial[i]! + g.pads[i + rank]!) inPadding = false;
                offset = offset * spatial[i]! + pos;
              }
              if (!inside) {
                if (inPadding) padded++;
                continue;
              }
              const v = src[plane * planeSize + offset]!;
              if (op === 'MaxPool') acc = v > acc || Number.isNaN(v) ? v : acc;
              else acc += v;
              count++;
            } while (step(k, kernel));
            dst[plane * outPlane + at] = op === 'MaxPool' ? acc : acc / (includePad ? count + padded : count);
          }
          at++;
        } while (step(o, g.out));
        if (isHalf(out.dtype)) roundHalf(out.dtype, out.data as Float32Array);
        return [out];
      };
    },
  };
}

export const MaxPool = pool('MaxPool');
export const AveragePool = pool('AveragePool');

export const GlobalAveragePool: KernelFactory = {
  prepare: () => (inputs) => {
    const x = required(inputs, 0, 'GlobalAveragePool');
    const [n, c] = x.shape as [number, number];
    const spatial = x.shape.slice(2).reduce((a, b) => a * b, 1);
    const out = makeValue(x.dtype, [n, c, ...x.shape.slice(2).map(() => 1)]);
    const src = floats(x, 'GlobalAveragePool');
    const dst = out.data as Float32Array;
    for (let p = 0; p < n * c; p++) {
      let s = 0;
      for (let i = 0; i < spatial; i++) s += src[p * spatial + i]!;
      dst[p] = s / spatial;
    }
    return [out];
  },
};
