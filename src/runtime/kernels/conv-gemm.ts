import { isConstant } from '../constants.js';
import { markFused } from '../fuse.js';
import { float32Output, float32Resident, makeValue, type Value } from '../value.js';
import { bands, GemmCall, packA, packAStack, packedConstant, PoolKind, residentPtr, type PackedMatrix } from '../wasm/gemm.js';
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
    // the result straight into an array in the module's memory (the next kernel reads it there)
    const resident = float32Resident([n, m, oh, ow]);
    const cPtr = xPtr && (resident ? residentPtr(resident.data) : call.alloc(n * m * positions * 4));
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
    const out = resident ?? float32Output([n, m, oh, ow]);
    call.get(cPtr, out.data as Float32Array, 0, n * m * positions);
    return clamp || residual ? markFused(out) : out;
  } finally {
    call.end();
  }
}

/**
 * MODELBRIDGE_WINOGRAD=0 keeps 3x3 convolutions on the implicit GEMM (to compare the two, or
 * for results that match im2col's summation order).
 */
const WINOGRAD = process.env.MODELBRIDGE_WINOGRAD !== '0';

/** Fewer channels than this (an RGB input layer) leave too short a product per transform. */
const WINOGRAD_MIN_CHANNELS = 8;

/** The transformed input and the 16 products of a chunk of images take at most this much of the module's memory (tests pass less, to cut a batch into chunks). */
const WINOGRAD_CHUNK_BYTES = 64 * 2 ** 20;

/** What a thread's padded input rows for the input transform may take (of its core's L2). */
const WINOGRAD_SCRATCH_BYTES = 512 * 1024;

/** Transformed weights packed for the batched product: 16 matrices [M, C], `stride` bytes apart. */
type WinogradWeights = PackedMatrix & { readonly stride: number };

/**
 * 2-D float32 3x3 convolution with unit strides and dilations, one group, constant weights, as
 * Winograd F(2x2, 3x3) (see winograd_in in gemm.wat): per 2x2 output tile 16 multiply-adds per
 * channel pair instead of 36, so 2.25x fewer than the implicit GEMM, for the cost of the two
 * transforms (a few additions per input and output value) and of rounding that differs from
 * the direct sum by a few float32 ulps of the terms (the transforms only add, subtract and
 * halve). Bias, a folded residual and a folded clamp are applied by the output transform.
 * One difference beyond rounding: an infinite input value makes NaN of the outputs whose tiles
 * read it (the transforms subtract it from itself), where the direct sum gives an infinity.
 *
 * Returns undefined where it does not apply or cannot run (no WebAssembly, memory ran out):
 * the caller then takes the implicit GEMM.
 */
export function convWinograd(
  x: Value, w: Value, bias: Value | undefined, win: Window, clamp: readonly [number, number] | undefined, residual?: Value,
  chunkBytes = WINOGRAD_CHUNK_BYTES,
): Value | undefined {
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const [m, cg, kh, kw] = w.shape as [number, number, number, number];
  if (!WINOGRAD || kh !== 3 || kw !== 3 || cg !== c || c < WINOGRAD_MIN_CHANNELS || m < 4 || !isConstant(w)) return undefined;
  if (win.strides.some((s) => s !== 1) || win.dilations.some((d) => d !== 1)) return undefined;
  const [oh, ow] = win.output as [number, number];
  const [pt, pl] = win.padsBegin as [number, number];
  if (n === 0 || oh <= 0 || ow <= 0) return undefined;
  const ty = Math.ceil(oh / 2);
  const tx = Math.ceil(ow / 8) * 4; // tiles per row, a multiple of 4 (the transforms' lanes)
  const perImage = ty * tx;
  const chunk = Math.min(n, Math.floor(chunkBytes / (16 * (c + m) * perImage * 4)));
  if (chunk < 1) return undefined;
  const weights = packedConstant(w, `winograd:${m}:${c}`, () => packAStack(winogradWeights(w.data as Float32Array, m, c), 16, m, c)) as WinogradWeights | null;
  if (!weights) return undefined;
  const call = GemmCall.begin();
  if (!call) return undefined;
  try {
    const xPtr = call.put(x.data as Float32Array);
    const resident = float32Resident([n, m, oh, ow]);
    const outPtr = xPtr && (resident ? residentPtr(resident.data) : call.alloc(n * m * oh * ow * 4 + 32));
    const biasPtr = bias ? outPtr && call.put(bias.data as Float32Array) : outPtr;
    const residualPtr = residual ? biasPtr && call.put(residual.data as Float32Array) : biasPtr;
    if (!residualPtr) return undefined;
    const sw = Math.ceil((2 * tx + 4) / 4) * 4;
    // tile rows per pass of the input transform: the padded rows of all channels they read stay in L2
    const band = Math.max(1, Math.min(ty, Math.floor((WINOGRAD_SCRATCH_BYTES / (c * sw * 4) - 2) / 2)));
    const [lo, hi] = clamp ?? [0, 0];
    const perThread = call.spreadCount(n * c * perImage * 16);
    if (perThread > 1 && n >= perThread && Math.ceil(n / perThread) <= chunk) {
      // a batch: each thread transforms, multiplies and transforms back images of its own, with
      // buffers of its own, in one hand-over (the phases' three cost a wake-up each, and the
      // product's split by the 16 operands made every thread read every image's transforms)
      const descs: number[] = [];
      for (const [b0, b1] of bands(n, perThread, 1)) {
        const images = b1 - b0;
        const cols = images * perImage;
        const strideV = staggered(Math.ceil(cols / 8) * 8 * c * 4);
        const strideC = staggered(m * cols * 4);
        const v = call.alloc(16 * strideV);
        const prod = v && call.alloc(16 * strideC);
        const scratch = prod && call.alloc(c * (2 * band + 2) * sw * 4 + 64);
        const outScratch = scratch && call.alloc(64);
        const image = b0 * m * oh * ow * 4;
        const inDesc = outScratch && call.putInts([xPtr + b0 * c * h * wd * 4, c, h, wd, pt, pl, ty, tx, 0, images * ty, band, v, strideV, scratch, sw]);
        const job = inDesc && call.jobDescriptor({
          m, n: cols, k: c, aMode: 1, a: weights.ptr, lda: c, bMode: 2, b: v, ldb: 0, c: prod, ldc: cols,
          biasMode: 0, bias: 0, batch: 16, strideA: weights.stride, strideB: strideV, strideC,
        });
        const outDesc = job && call.putInts([
          prod, m, cols, strideC, outPtr + image, oh, ow, ty, tx, 0, m, images,
          bias ? biasPtr : 0, residual ? residualPtr + image : 0, clamp ? 1 : 0, 0, 0, outScratch,
        ]);
        const all = outDesc && call.putInts([inDesc, job, outDesc]);
        if (!all) return undefined;
        call.setFloats(outDesc + 60, [lo, hi]);
        descs.push(all);
      }
      call.runEach(PoolKind.WinogradAll, descs);
      const out = resident ?? float32Output([n, m, oh, ow]);
      call.get(outPtr, out.data as Float32Array, 0, n * m * oh * ow);
      return clamp || residual ? markFused(out) : out;
    }
    const cols = chunk * perImage;
    const strideV = staggered(Math.ceil(cols / 8) * 8 * c * 4);
    const strideC = staggered(m * cols * 4);
    const v = call.alloc(16 * strideV);
    const prod = v && call.alloc(16 * strideC);
    if (!prod) return undefined;
    const threads = call.spreadCount(chunk * c * perImage * 16);
    const outParts = bands(m, call.spreadCount(chunk * m * perImage * 16), 1);
    const scratch: number[] = [];
    for (let t = 0; t < threads; t++) {
      const at = call.alloc(c * (2 * band + 2) * sw * 4 + 64);
      if (!at) return undefined;
      scratch.push(at);
    }
    const outScratch = call.alloc(64 * outParts.length);
    if (!outScratch) return undefined;
    for (let b0 = 0; b0 < n; b0 += chunk) {
      const images = Math.min(chunk, n - b0);
      const inDescs: number[] = [];
      for (const [t, [r0, r1]] of bands(images * ty, threads, 1).entries()) {
        const d = call.putInts([xPtr + b0 * c * h * wd * 4, c, h, wd, pt, pl, ty, tx, r0, r1, band, v, strideV, scratch[t]!, sw]);
        if (!d) return undefined;
        inDescs.push(d);
      }
      call.runEach(PoolKind.WinogradIn, inDescs);
      const done = call.run({
        m, n: images * perImage, k: c,
        aMode: 1, a: weights.ptr, lda: c,
        bMode: 2, b: v, ldb: 0,
        c: prod, ldc: images * perImage,
        biasMode: 0, bias: 0,
        batch: 16, strideA: weights.stride, strideB: strideV, strideC,
      });
      if (!done) return undefined;
      const outDescs: number[] = [];
      for (const [t, [m0, m1]] of outParts.entries()) {
        const image = b0 * m * oh * ow * 4;
        const d = call.putInts([
          prod, m, images * perImage, strideC, outPtr + image, oh, ow, ty, tx, m0, m1, images,
          bias ? biasPtr : 0, residual ? residualPtr + image : 0, clamp ? 1 : 0, 0, 0, outScratch + t * 64,
        ]);
        if (!d) return undefined;
        call.setFloats(d + 60, [lo, hi]);
        outDescs.push(d);
      }
      call.runEach(PoolKind.WinogradOut, outDescs);
    }
    const out = resident ?? float32Output([n, m, oh, ow]);
    call.get(outPtr, out.data as Float32Array, 0, n * m * oh * ow);
    return clamp || residual ? markFused(out) : out;
  } finally {
    call.end();
  }
}

/**
 * A stride between the 16 transformed operands (or products) that is an odd number of cache
 * lines: the transforms touch all 16 at once, and 16 streams a multiple of 4 KiB apart (ResNet's
 * and the CNN's sizes: 128 KiB, 256 KiB) fall into one set of L1 and of L2, which hold 12-16
 * lines each: the CNN's output transform took 3x longer.
 */
function staggered(bytes: number): number {
  const lines = Math.ceil(bytes / 64);
  return (lines % 2 === 0 ? lines + 1 : lines) * 64;
}

/**
 * G g G^T for every filter g (3x3) of weights [M, C, 3, 3], G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2
 * 1/2; 0 0 1], as 16 matrices [M, C] (matrix i*4 + k holds entry (i, k) of every filter's
 * 4x4), in float64 and rounded once.
 */
export function winogradWeights(w: Float32Array, m: number, c: number): Float32Array {
  const out = new Float32Array(16 * m * c);
  const gg = new Float64Array(12);
  const plane = m * c;
  for (let f = 0; f < plane; f++) {
    const g = f * 9;
    // G g: 4 rows of 3
    for (let col = 0; col < 3; col++) {
      const g0 = w[g + col]!;
      const g1 = w[g + 3 + col]!;
      const g2 = w[g + 6 + col]!;
      gg[col] = g0;
      gg[3 + col] = (g0 + g1 + g2) / 2;
      gg[6 + col] = (g0 - g1 + g2) / 2;
      gg[9 + col] = g2;
    }
    // (G g) G^T: each row's 3 values to 4
    for (let i = 0; i < 4; i++) {
      const r0 = gg[i * 3]!;
      const r1 = gg[i * 3 + 1]!;
      const r2 = gg[i * 3 + 2]!;
      out[(i * 4) * plane + f] = r0;
      out[(i * 4 + 1) * plane + f] = (r0 + r1 + r2) / 2;
      out[(i * 4 + 2) * plane + f] = (r0 - r1 + r2) / 2;
      out[(i * 4 + 3) * plane + f] = r2;
    }
  }
  return out;
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
