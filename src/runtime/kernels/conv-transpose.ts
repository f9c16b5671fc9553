import { attrInt, attrInts, attrString } from '../../core/graph.js';
import { floatData, formatDims, KernelError, required, type KernelFactory } from '../kernel.js';
import { makeValue, sizeOfShape, type FloatArray } from '../value.js';
import { gemm } from './sgemm.js';
import { contiguousStrides } from './strided.js';

/**
 * ConvTranspose (the gradient of Conv) for any number of spatial axes: each group's weights
 * [C/group, M/group · prod(kernel)] are applied transposed to the input, giving one column of
 * kernel contributions per input position, which col2im scatters (adds) into the output at
 * position·stride − pad + k·dilation.
 */
export const ConvTranspose: KernelFactory = {
  prepare(node) {
    const group = attrInt(node, 'group', 1);
    const autoPad = attrString(node, 'auto_pad', 'NOTSET');
    return (inputs) => {
      const x = required(inputs, 0, 'ConvTranspose');
      const w = required(inputs, 1, 'ConvTranspose');
      const bias = inputs[2];
      const rank = x.shape.length - 2;
      if (rank < 1 || w.shape.length !== x.shape.length) throw new KernelError(`ConvTranspose: input ${formatDims(x.shape)} and weight ${formatDims(w.shape)} do not fit`);
      const [n, c] = x.shape as [number, number];
      if (w.shape[0] !== c || c % group !== 0) throw new KernelError(`ConvTranspose: weight ${formatDims(w.shape)} does not fit ${c} channels in ${group} groups`);
      const mg = w.shape[1]!;
      const m = mg * group;
      const cg = c / group;
      const input = x.shape.slice(2);
      const kernel = attrInts(node, 'kernel_shape') ?? w.shape.slice(2);
      const per = (key: string, fallback: number) => attrInts(node, key)?.slice() ?? new Array<number>(rank).fill(fallback);
      const strides = per('strides', 1);
      const dilations = per('dilations', 1);
      const outputPadding = per('output_padding', 0);
      const span = kernel.map((k, i) => (k - 1) * dilations[i]! + 1);
      const full = input.map((d, i) => strides[i]! * (d - 1) + outputPadding[i]! + span[i]!);
      let padsBegin: number[];
      let output: number[];
      const requested = attrInts(node, 'output_shape');
      if (requested || autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
        output = requested ? requested.slice(-rank) : input.map((d, i) => d * strides[i]!);
        const total = full.map((f, i) => f - output[i]!);
        // SAME_UPPER puts the odd unit of padding at the end, everything else at the start.
        padsBegin = total.map((t) => (autoPad === 'SAME_UPPER' ? Math.floor(t / 2) : t - Math.floor(t / 2)));
      } else {
        const pads = autoPad === 'VALID' ? new Array<number>(2 * rank).fill(0) : (attrInts(node, 'pads')?.slice() ?? new Array<number>(2 * rank).fill(0));
        padsBegin = pads.slice(0, rank);
        output = full.map((f, i) => f - pads[i]! - pads[i + rank]!);
      }
      const src = floatData(x, 'ConvTranspose');
      const weights = floatData(w, 'ConvTranspose');
      const out = makeValue(x.dtype, [n, m, ...output]);
      const dst = out.data as FloatArray;
      const positions = sizeOfShape(input);
      const kernelSize = sizeOfShape(kernel);
      const rows = mg * kernelSize;
      // Same element type as the input, so float32 takes the blocked GEMM path.
      const col = new (src.constructor as Float32ArrayConstructor)(rows * positions);
      const geometry = { input, output, kernel, strides, dilations, padsBegin };
      for (let b = 0; b < n; b++) {
        for (let g = 0; g < group; g++) {
          // col[rows, positions] = W_gᵀ · X_g, W_g stored [cg, rows].
          gemm(rows, positions, cg, { data: weights, offset: g * cg * rows, rowStride: 1, colStride: rows }, { data: src, offset: (b * c + g * cg) * positions, rowStride: positions, colStride: 1 }, col, 0);
          col2im(col, geometry, mg, dst, (b * m + g * mg) * sizeOfShape(output));
        }
      }
      if (bias) {
        const bs = floatData(bias, 'ConvTranspose');
        const plane = sizeOfShape(output);
        for (let b = 0; b < n; b++) for (let oc = 0; oc < m; oc++) for (let i = (b * m + oc) * plane, end = i + plane; i < end; i++) dst[i] = dst[i]! + bs[oc]!;
      }
      return [out];
    };
  },
};

interface Geometry {
  readonly input: readonly number[];
  readonly output: readonly number[];
  readonly kernel: readonly number[];
  readonly strides: readonly number[];
  readonly dilations: readonly number[];
  readonly padsBegin: readonly number[];
}

/** Adds col[(channel, kernel offset), input position] into the output planes starting at `dstOffset`. */
function col2im(col: FloatArray, g: Geometry, channels: number, dst: FloatArray, dstOffset: number): void {
  const rank = g.input.length;
  const positions = sizeOfShape(g.input);
  const kernelSize = sizeOfShape(g.kernel);
  const outPlane = sizeOfShape(g.output);
  const outStrides = contiguousStrides(g.output);
  const k = new Array<number>(rank).fill(0);
  const p = new Array<number>(rank).fill(0);
  const acc = new Float64Array(channels * outPlane);
  for (let ch = 0; ch < channels; ch++) {
    k.fill(0);
    for (let kk = 0; kk < kernelSize; kk++) {
      const row = (ch * kernelSize + kk) * positions;
      p.fill(0);
      for (let pos = 0; pos < positions; pos++) {
        let at = 0;
        let inside = true;
        for (let d = 0; d < rank; d++) {
          const o = p[d]! * g.strides[d]! - g.padsBegin[d]! + k[d]! * g.dilations[d]!;
          if (o < 0 || o >= g.output[d]!) inside = false;
          at += o * outStrides[d]!;
        }
        if (inside) acc[ch * outPlane + at]! += col[row + pos]!;
        for (let d = rank - 1; d >= 0; d--) {
          if (++p[d]! < g.input[d]!) break;
          p[d] = 0;
        }
      }
      for (let d = rank - 1; d >= 0; d--) {
        if (++k[d]! < g.kernel[d]!) break;
        k[d] = 0;
      }
    }
  }
  for (let i = 0; i < acc.length; i++) dst[dstOffset + i] = acc[i]!;
}
