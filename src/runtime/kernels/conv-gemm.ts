import { isConstant } from '../constants.js';
import { markFused } from '../fuse.js';
import { float32Output, makeValue, type Value } from '../value.js';
import { GemmCall, packA, packedConstant, type PackedMatrix } from '../wasm/gemm.js';
import type { Window } from './window.js';

/**
 * 2-D float32 convolution as an implicit GEMM in the WebAssembly kernel: per group,
 * C[M/group, OH·OW] = W[M/group, C/group·KH·KW] · B, where the B panels are gathered straight
 * from the NCHW input by the module (no im2col matrix), the weights are packed once (for a
 * constant), and the bias, a folded residual Add (an array of the output's shape) and a folded
 * Relu/Clip are applied to each tile as it is finished.
 * The images of a batch are one job, which the module's threads share.
 *
 * Returns undefined when the WebAssembly kernel cannot run here (or memory ran out): the
 * caller's general path then computes the same convolution.
 */
export function convGemm(
  x: Value, w: Value, bias: Value | undefined, group: number, win: Window, clamp: readonly [number, number] | undefined, residual?: Value,
): Value | undefined {
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const [m, cg, kh, kw] = w.shape as [number, number, number, number];
  const [oh, ow] = win.output as [number, number];
  const mg = m / group;
  const depth = cg * kh * kw;
  const positions = oh * ow;
  const plane = h * wd;
  if (n === 0 || m === 0 || positions === 0) return undefined;
  const weights = w.data as Float32Array;
  let packed: (PackedMatrix | null)[] | null = null;
  if (isConstant(w)) {
    packed = [];
    for (let g = 0; g < group; g++) packed.push(packedConstant(w, `conv:${g}:${mg}:${depth}`, () => packA(weights, g * mg * depth, mg, depth)));
    if (packed.some((p) => p === null)) return undefined;
  }
  const call = GemmCall.begin();
  if (!call) return undefined;
  try {
    const xPtr = call.put(x.data as Float32Array);
    const cPtr = xPtr && call.alloc(n * m * positions * 4);
    const biasPtr = bias ? cPtr && call.put(bias.data as Float32Array) : cPtr;
    const residualPtr = residual ? biasPtr && call.put(residual.data as Float32Array) : biasPtr;
    if (!residualPtr) return undefined;
    const pointwise = kh === 1 && kw === 1 && win.strides.every((s) => s === 1) && win.padsBegin.every((p) => p === 0) && win.padsEnd.every((p) => p === 0);
    for (let g = 0; g < group; g++) {
      const aPtr = packed ? packed[g]!.ptr : call.packA(weights, g * mg * depth, mg, depth);
      const imageX = xPtr + g * cg * plane * 4;
      const desc = pointwise
        ? imageX
        : call.putInts([imageX, cg, h, wd, oh, ow, kh, kw, win.strides[0]!, win.strides[1]!, win.padsBegin[0]!, win.padsBegin[1]!, win.dilations[0]!, win.dilations[1]!]);
      if (!aPtr || !desc) return undefined;
      const done = call.run({
        m: mg, n: positions, k: depth,
        aMode: 1, a: aPtr, lda: depth,
        bMode: pointwise ? 0 : 3, b: desc, ldb: plane,
        c: cPtr + g * mg * positions * 4, ldc: positions,
        biasMode: bias ? 1 : 0, bias: bias ? biasPtr + g * mg * 4 : 0,
        clamp,
        batch: n, strideA: 0, strideB: c * plane * 4, strideC: m * positions * 4,
        residual: residual ? residualPtr + g * mg * positions * 4 : 0,
      });
      if (!done) return undefined;
    }
    const out = float32Output([n, m, oh, ow]);
    call.get(cPtr, out.data as Float32Array, 0, n * m * positions);
    return clamp || residual ? markFused(out) : out;
  } finally {
    call.end();
  }
}

/**
 * 2-D float32 depthwise convolution (one input channel per group, MobileNet's 3x3 layers), as a
 * direct loop: a GEMM per channel would be one row of a 4-row tile. Sums in float64; the bias
 * and a folded Relu/Clip are applied as each output is stored.
 */
export function convDepthwise(x: Value, w: Value, bias: Value | undefined, group: number, win: Window, clamp: readonly [number, number] | undefined): Value {
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const [m, , kh, kw] = w.shape as [number, number, number, number];
  const [oh, ow] = win.output as [number, number];
  const [sh, sw] = win.strides as [number, number];
  const [dh, dw] = win.dilations as [number, number];
  const [ph, pw] = win.padsBegin as [number, number];
  const mg = m / group;
  const src = x.data as Float32Array;
  const weights = w.data as Float32Array;
  const b = bias?.data as Float32Array | undefined;
  const lo = clamp ? clamp[0] : -Infinity;
  const hi = clamp ? clamp[1] : Infinity;
  const out = makeValue('float32', [n, m, oh, ow]);
  const dst = out.data as Float32Array;
  let at = 0;
  for (let img = 0; img < n; img++) {
    for (let o = 0; o < m; o++) {
      const plane = (img * c + Math.floor(o / mg)) * h * wd;
      const kernel = o * kh * kw;
      const start = b ? b[o]! : 0;
      for (let y = 0; y < oh; y++) {
        const y0 = y * sh - ph;
        for (let x0 = 0; x0 < ow; x0++) {
          const xs = x0 * sw - pw;
          let acc = 0;
          for (let i = 0, iy = y0; i < kh; i++, iy += dh) {
            if (iy < 0 || iy >= h) continue;
            const row = plane + iy * wd;
            const k = kernel + i * kw;
            for (let j = 0, ix = xs; j < kw; j++, ix += dw) {
              if (ix < 0 || ix >= wd) continue;
              acc += src[row + ix]! * weights[k + j]!;
            }
          }
          const v = Math.fround(acc) + start;
          dst[at++] = clamp ? Math.min(Math.max(v, lo), hi) : v;
        }
      }
    }
  }
  return clamp ? markFused(out) : out;
}
