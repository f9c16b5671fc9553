import { attrInt, attrInts } from '../../core/graph.js';
import { floatData, formatDims, KernelError, required, type KernelFactory } from '../kernel.js';
import { fusionOf } from '../fuse.js';
import { makeValue, sizeOfShape, type FloatArray } from '../value.js';
import { convDepthwise, convGemm, convWinograd } from './conv-gemm.js';
import { matmulInto } from './gemm-core.js';
import { contiguousStrides } from './strided.js';
import { windowOf, type Window } from './window.js';

/**
 * Conv for any number of spatial axes (NCHW, NCDHW, NCL), with groups, strides, dilations and
 * padding, as im2col + GEMM: each group's input windows are unrolled into a [C/group · prod(kernel),
 * prod(output)] matrix, which the group's weights [M/group, C/group · prod(kernel)] multiply.
 * A 1×1 convolution with unit strides and no padding skips the unrolling: the input already is
 * that matrix.
 */
export const Conv: KernelFactory = {
  prepare(node) {
    const group = attrInt(node, 'group', 1);
    const kernelAttr = attrInts(node, 'kernel_shape');
    const fusion = fusionOf(node);
    // a folded residual Add (fuse.ts) is the fused node's fourth input; when this kernel cannot
    // add it (a broadcast residual, another dtype), it leaves the Add and the clamp to the chain
    const folded = fusion?.residual !== undefined;
    return (inputs) => {
      const x = required(inputs, 0, 'Conv');
      const w = required(inputs, 1, 'Conv');
      const bias = inputs[2];
      if (x.shape.length < 3) throw new KernelError(`Conv: input ${formatDims(x.shape)} has no spatial axes`);
      if (w.shape.length !== x.shape.length) throw new KernelError(`Conv: weight ${formatDims(w.shape)} and input ${formatDims(x.shape)} differ in rank`);
      const [n, c] = x.shape as [number, number];
      const [m, cg] = w.shape as [number, number];
      if (cg * group !== c || m % group !== 0) throw new KernelError(`Conv: weight ${formatDims(w.shape)} does not fit ${c} channels in ${group} groups`);
      const kernel = kernelAttr ?? w.shape.slice(2);
      const win = windowOf(node, x.shape.slice(2), kernel, false, 'Conv');
      if (
        x.dtype === 'float32' && w.dtype === 'float32' && x.shape.length === 4 && (!bias || (bias.dtype === 'float32' && bias.data.length === m)) &&
        kernel.every((k, i) => k === w.shape[i + 2])
      ) {
        const residual = folded ? inputs[3] : undefined;
        const fits = residual !== undefined && residual.dtype === 'float32' && residual.shape.length === 4 &&
          [n, m, ...win.output].every((d, i) => residual.shape[i] === d);
        const clamp = folded && !fits ? undefined : fusion?.clamp;
        if (cg === 1 && group > 1) return [convDepthwise(x, w, bias, group, win, folded ? undefined : clamp)];
        const winograd = group === 1 ? convWinograd(x, w, bias, win, clamp, fits ? residual : undefined) : undefined;
        if (winograd) return [winograd];
        const fast = convGemm(x, w, bias, group, win, clamp, fits ? residual : undefined);
        if (fast) return [fast];
      }
      const src = floatData(x, 'Conv');
      const weights = floatData(w, 'Conv');
      const out = makeValue(x.dtype, [n, m, ...win.output]);
      const dst = out.data as FloatArray;
      const planeIn = sizeOfShape(win.input);
      const positions = sizeOfShape(win.output);
      const mg = m / group;
      const depth = cg * sizeOfShape(kernel);
      const pointwise = kernel.every((k) => k === 1) && win.strides.every((s) => s === 1) && win.padsBegin.every((p) => p === 0) && win.padsEnd.every((p) => p === 0);
      const col = pointwise ? src : new (src.constructor as Float32ArrayConstructor)(depth * positions);
      for (let b = 0; b < n; b++) {
        for (let g = 0; g < group; g++) {
          const plane0 = (b * c + g * cg) * planeIn;
          if (!pointwise) im2col(src, plane0, cg, planeIn, win, col);
          matmulInto(dst, (b * m + g * mg) * positions, weights, g * mg * depth, col, pointwise ? plane0 : 0, mg, positions, depth, false);
        }
      }
      if (bias) {
        const bs = floatData(bias, 'Conv');
        for (let b = 0; b < n; b++) {
          for (let oc = 0; oc < m; oc++) {
            const base = (b * m + oc) * positions;
            const v = bs[oc]!;
            for (let i = 0; i < positions; i++) dst[base + i] = dst[base + i]! + v;
          }
        }
      }
      return [out];
    };
  },
};

/**
 * Unrolls the windows of `channels` input planes starting at `plane0` into `col`: row
 * (channel, kernel offset), column = output position; positions in the padding read 0.
 */
function im2col(src: FloatArray, plane0: number, channels: number, planeSize: number, win: Window, col: FloatArray): void {
  const rank = win.input.length;
  const last = rank - 1;
  const inStrides = contiguousStrides(win.input);
  const kernelSize = sizeOfShape(win.kernel);
  const outLast = win.output[last]!;
  const outer = sizeOfShape(win.output.slice(0, last));
  const inLast = win.input[last]!;
  const stepLast = win.strides[last]!;
  const k = new Array<number>(rank).fill(0);
  const o = new Array<number>(Math.max(last, 0)).fill(0);
  let at = 0;
  for (let ch = 0; ch < channels; ch++) {
    const plane = plane0 + ch * planeSize;
    k.fill(0);
    for (let kk = 0; kk < kernelSize; kk++) {
      o.fill(0);
      const shift = k[last]! * win.dilations[last]! - win.padsBegin[last]!;
      for (let t = 0; t < outer; t++) {
        let offset = plane;
        let inside = true;
        for (let d = 0; d < last; d++) {
          const coord = o[d]! * win.strides[d]! - win.padsBegin[d]! + k[d]! * win.dilations[d]!;
          if (coord < 0 || coord >= win.input[d]!) inside = false;
          offset += coord * inStrides[d]!;
        }
        if (!inside) {
          col.fill(0, at, at + outLast);
        } else {
          for (let ox = 0, xi = shift; ox < outLast; ox++, xi += stepLast) col[at + ox] = xi >= 0 && xi < inLast ? src[offset + xi]! : 0;
        }
        at += outLast;
        for (let d = last - 1; d >= 0; d--) {
          if (++o[d]! < win.output[d]!) break;
          o[d] = 0;
        }
      }
      for (let d = last; d >= 0; d--) {
        if (++k[d]! < win.kernel[d]!) break;
        k[d] = 0;
      }
    }
  }
}
