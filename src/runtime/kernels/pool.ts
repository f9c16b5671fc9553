import { attrFloat, attrInt, attrInts } from '../../core/graph.js';
import { formatDims, KernelError, required, type KernelFactory } from '../kernel.js';
import { float32Resident, int64Value, makeValue, sizeOfShape, type SmallArray, type Value } from '../value.js';
import { wasmMaxPool2d } from '../wasm/gemm.js';
import { contiguousStrides } from './strided.js';
import { windowOf, type Window } from './window.js';

type Kind = 'max' | 'average' | 'lp';

/**
 * MaxPool, AveragePool and LpPool over any number of spatial axes. Each output element visits
 * its window directly (pools have no weights to batch into a GEMM). AveragePool divides by the
 * window cells inside the input, or, with count_include_pad, also by those in the explicit
 * padding (not the overhang ceil_mode adds). MaxPool's optional Indices output is the flat index
 * into the input: row-major, or with storage_order 1 column-major within each plane.
 */
function pool(op: string, kind: Kind): KernelFactory {
  return {
    prepare(node) {
      const kernel = attrInts(node, 'kernel_shape');
      if (!kernel) throw new KernelError(`${op} needs kernel_shape`);
      const ceil = attrInt(node, 'ceil_mode', 0) !== 0;
      const includePad = attrInt(node, 'count_include_pad', 0) !== 0;
      const p = attrInt(node, 'p', 2);
      const wantsIndices = node.outputs.length > 1 && node.outputs[1] !== '';
      const columnMajor = attrInt(node, 'storage_order', 0) !== 0;
      return (inputs) => {
        const x = required(inputs, 0, op);
        if (x.shape.length < 3) throw new KernelError(`${op}: input ${formatDims(x.shape)} has no spatial axes`);
        const win = windowOf(node, x.shape.slice(2), kernel, ceil, op);
        const planes = x.shape[0]! * x.shape[1]!;
        const shape = [x.shape[0]!, x.shape[1]!, ...win.output];
        // a float32 2-D MaxPool runs in the WebAssembly module: its result can stay in the module's memory
        const resident = kind === 'max' && x.dtype === 'float32' && win.input.length === 2 && !wantsIndices ? float32Resident(shape) : null;
        const out = resident ?? makeValue(x.dtype, shape);
        const indices = wantsIndices ? new Array<number>(out.data.length) : undefined;
        if (!indices && kind !== 'lp' && win.input.length === 2) {
          pool2d(kind, x.data as SmallArray, out.data as SmallArray, planes, win, includePad);
          return [out];
        }
        runPool(kind, x, win, planes, out.data as SmallArray, includePad, p, indices, columnMajor);
        return indices ? [out, int64Value(out.shape, indices)] : [out];
      };
    },
  };
}

/**
 * The 2-D MaxPool and AveragePool, plane by plane and row by row (the general loop below takes
 * each output position across all planes, which strides through memory a plane at a time).
 * Same window cells, same order, same NaN rule as the general loop.
 */
function pool2d(kind: 'max' | 'average', src: SmallArray, dst: SmallArray, planes: number, win: Window, includePad: boolean): void {
  const [h, w] = win.input as [number, number];
  const [oh, ow] = win.output as [number, number];
  const [kh, kw] = win.kernel as [number, number];
  const [sh, sw] = win.strides as [number, number];
  const [dh, dw] = win.dilations as [number, number];
  const [ph, pw] = win.padsBegin as [number, number];
  if (kind === 'max') {
    // float32 (and float16/bfloat16, held widened in a Float32Array; a max is exact in any of them)
    if (src instanceof Float32Array && dst instanceof Float32Array && wasmMaxPool2d(src, dst, planes, win)) return;
    maxPool2d(src, dst, planes, h, w, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw);
    return;
  }
  // the divisor per output row and column: window cells inside the input (or inside the explicit padding)
  const count = (out: number, size: number, k: number, s: number, d: number, pb: number, pe: number) =>
    Array.from({ length: out }, (_, o) => {
      let n = 0;
      for (let i = 0, at = o * s - pb; i < k; i++, at += d) if (includePad ? at >= -pb && at < size + pe : at >= 0 && at < size) n++;
      return n;
    });
  const rows = count(oh, h, kh, sh, dh, ph, win.padsEnd[0]!);
  const cols = count(ow, w, kw, sw, dw, pw, win.padsEnd[1]!);
  let at = 0;
  for (let plane = 0; plane < planes; plane++) {
    const base = plane * h * w;
    for (let y = 0; y < oh; y++) {
      const h0 = y * sh - ph;
      for (let x = 0; x < ow; x++) {
        const w0 = x * sw - pw;
        let acc = 0;
        for (let i = 0, ih = h0; i < kh; i++, ih += dh) {
          if (ih < 0 || ih >= h) continue;
          const row = base + ih * w;
          for (let j = 0, iw = w0; j < kw; j++, iw += dw) {
            if (iw < 0 || iw >= w) continue;
            acc += src[row + iw]!;
          }
        }
        dst[at++] = acc / (rows[y]! * cols[x]!);
      }
    }
  }
}

/** Kept apart from the average so V8 compiles this loop on its own, small and monomorphic. */
function maxPool2d(src: SmallArray, dst: SmallArray, planes: number, h: number, w: number, oh: number, ow: number, kh: number, kw: number, sh: number, sw: number, dh: number, dw: number, ph: number, pw: number): void {
  let at = 0;
  for (let plane = 0; plane < planes; plane++) {
    const base = plane * h * w;
    for (let y = 0; y < oh; y++) {
      const h0 = y * sh - ph;
      for (let x = 0; x < ow; x++) {
        const w0 = x * sw - pw;
        let best = -Infinity;
        for (let i = 0, ih = h0; i < kh; i++, ih += dh) {
          if (ih < 0 || ih >= h) continue;
          const row = base + ih * w;
          for (let j = 0, iw = w0; j < kw; j++, iw += dw) {
            if (iw < 0 || iw >= w) continue;
            const v = src[row + iw]!;
            if (v > best || v !== v) best = v;
          }
        }
        dst[at++] = best;
      }
    }
  }
}

function runPool(kind: Kind, x: Value, win: Window, planes: number, dst: SmallArray, includePad: boolean, p: number, indices: number[] | undefined, columnMajor: boolean): void {
  const src = x.data as SmallArray;
  const rank = win.input.length;
  const planeIn = sizeOfShape(win.input);
  const planeOut = sizeOfShape(win.output);
  const kernelSize = sizeOfShape(win.kernel);
  const inStrides = contiguousStrides(win.input);
  const o = new Array<number>(rank).fill(0);
  const k = new Array<number>(rank).fill(0);
  const offsets = new Array<number>(kernelSize);
  // Where each window cell is reported in MaxPool's Indices: its offset in the row- or column-major plane.
  const indexStrides = columnMajor ? win.input.map((_, d) => sizeOfShape(win.input.slice(0, d))) : inStrides;
  const indexOffsets = new Array<number>(kernelSize);
  for (let pos = 0; pos < planeOut; pos++) {
    // The window's cells inside the input (same for every plane), and how many fall in the padding.
    let inside = 0;
    let padded = 0;
    k.fill(0);
    for (let kk = 0; kk < kernelSize; kk++) {
      let offset = 0;
      let indexOffset = 0;
      let valid = true;
      let inPadding = true;
      for (let d = 0; d < rank; d++) {
        const coord = o[d]! * win.strides[d]! - win.padsBegin[d]! + k[d]! * win.dilations[d]!;
        if (coord < 0 || coord >= win.input[d]!) valid = false;
        if (coord < -win.padsBegin[d]! || coord >= win.input[d]! + win.padsEnd[d]!) inPadding = false;
        offset += coord * inStrides[d]!;
        indexOffset += coord * indexStrides[d]!;
      }
      if (valid) {
        indexOffsets[inside] = indexOffset;
        offsets[inside++] = offset;
      }
      else if (inPadding) padded++;
      for (let d = rank - 1; d >= 0; d--) {
        if (++k[d]! < win.kernel[d]!) break;
        k[d] = 0;
      }
    }
    const divisor = includePad ? inside + padded : inside;
    for (let plane = 0; plane < planes; plane++) {
      const base = plane * planeIn;
      const at = plane * planeOut + pos;
      if (kind === 'max') {
        let best = -Infinity;
        let arg = 0;
        for (let i = 0; i < inside; i++) {
          const v = src[base + offsets[i]!]!;
          if (v > best || Number.isNaN(v)) {
            best = v;
            arg = i;
          }
        }
        dst[at] = best;
        if (indices) indices[at] = base + (indexOffsets[arg] ?? 0);
      } else {
        let acc = 0;
        if (kind === 'lp') for (let i = 0; i < inside; i++) acc += Math.abs(src[base + offsets[i]!]!) ** p;
        else for (let i = 0; i < inside; i++) acc += src[base + offsets[i]!]!;
        dst[at] = kind === 'lp' ? acc ** (1 / p) : acc / divisor;
      }
    }
    for (let d = rank - 1; d >= 0; d--) {
      if (++o[d]! < win.output[d]!) break;
      o[d] = 0;
    }
  }
}

/** GlobalAveragePool / GlobalMaxPool / GlobalLpPool: one window covering each whole plane. */
function globalPool(op: string, kind: Kind): KernelFactory {
  return {
    prepare(node) {
      const p = attrFloat(node, 'p', 2);
      return (inputs) => {
        const x = required(inputs, 0, op);
        if (x.shape.length < 2) throw new KernelError(`${op} takes N x C x ... inputs`);
        const planes = x.shape[0]! * x.shape[1]!;
        const spatial = sizeOfShape(x.shape.slice(2));
        const out = makeValue(x.dtype, [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map(() => 1)]);
        const src = x.data as SmallArray;
        const dst = out.data as SmallArray;
        if (kind === 'average' && src instanceof Float32Array && dst instanceof Float32Array) {
          averagePlanes(src, dst, planes, spatial);
          return [out];
        }
        for (let plane = 0; plane < planes; plane++) {
          let acc = kind === 'max' ? -Infinity : 0;
          for (let i = plane * spatial, end = i + spatial; i < end; i++) {
            const v = src[i]!;
            if (kind === 'max') acc = v > acc ? v : acc;
            else if (kind === 'lp') acc += Math.abs(v) ** p;
            else acc += v;
          }
          dst[plane] = kind === 'average' ? acc / spatial : kind === 'lp' ? acc ** (1 / p) : acc;
        }
        return [out];
      };
    },
  };
}

/**
 * GlobalAveragePool over float32 planes: four float64 partial sums per plane, so the adds do
 * not wait on each other (one running sum is bound by the add's latency: ~3x slower on the
 * bench CNN's 16x64x16x16). The float64 sum of float32 values is exact to well below float32's
 * rounding either way.
 */
function averagePlanes(src: Float32Array, dst: Float32Array, planes: number, spatial: number): void {
  for (let plane = 0; plane < planes; plane++) {
    const start = plane * spatial;
    const end = start + spatial;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let i = start;
    for (; i + 4 <= end; i += 4) {
      a0 += src[i]!;
      a1 += src[i + 1]!;
      a2 += src[i + 2]!;
      a3 += src[i + 3]!;
    }
    for (; i < end; i++) a0 += src[i]!;
    dst[plane] = (a0 + a1 + (a2 + a3)) / spatial;
  }
}

export const POOL_OPS: Readonly<Record<string, KernelFactory>> = {
  MaxPool: pool('MaxPool', 'max'),
  AveragePool: pool('AveragePool', 'average'),
  LpPool: pool('LpPool', 'lp'),
  GlobalAveragePool: globalPool('GlobalAveragePool', 'average'),
  GlobalMaxPool: globalPool('GlobalMaxPool', 'max'),
  GlobalLpPool: globalPool('GlobalLpPool', 'lp'),
};
