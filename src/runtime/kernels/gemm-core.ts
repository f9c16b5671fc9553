import type { FloatArray } from '../value.js';
import { wasmSgemm, wasmSgemmAvailable } from '../wasm/gemm.js';
import { gemm } from './sgemm.js';

export type { FloatArray } from '../value.js';

/**
 * From this many multiply-adds a float32 product goes to the WebAssembly SIMD kernel. Measured
 * on x86_64 (Node 20) against the JS loops: below ~512 the wasm call and its copies cost about
 * what the product does (the OR gate's 1×2·2×2: ~0.05 µs in JS, ~0.15 µs through wasm); from
 * 512 up wasm wins 1.2-18× (8×8·8×8: 0.19 µs against 0.54 µs).
 */
const WASM_MIN_WORK = 512;

/**
 * The wasm kernel computes whole 4×8 tiles, padding M to a multiple of 4 and N to one of 8, so
 * skinny products that would waste 7/8 or more of that work (1×2·2×4096, a single output
 * column) stay in JS, where they are faster.
 */
function useWasm(m: number, n: number, k: number): boolean {
  const work = m * n * k;
  return work >= WASM_MIN_WORK && Math.ceil(m / 4) * 4 * Math.ceil(n / 8) * 8 * k < 8 * work && wasmSgemmAvailable();
}

/**
 * The one entry point MatMul, Gemm and Conv use for a matrix product:
 *
 *   out[outOffset..] (M×N, row-major) = A[M,K] · B,   B as [K,N], or as [N,K] when `bTransposed`
 *
 * Large float32 products run in the WebAssembly SIMD kernel (src/runtime/wasm) when this
 * JavaScript engine has it; everything else (small products such as the OR gate, float64, no
 * SIMD) runs in the cache-blocked JS kernel of sgemm.ts, which sums in float64.
 */
export function matmulInto(
  out: FloatArray,
  outOffset: number,
  a: FloatArray,
  aOffset: number,
  b: FloatArray,
  bOffset: number,
  m: number,
  n: number,
  k: number,
  bTransposed: boolean,
): void {
  if (out instanceof Float32Array && a instanceof Float32Array && b instanceof Float32Array && useWasm(m, n, k)) {
    wasmSgemm(out, outOffset, a, aOffset, b, bOffset, m, n, k, bTransposed);
    return;
  }
  gemm(
    m,
    n,
    k,
    { data: a, offset: aOffset, rowStride: k, colStride: 1 },
    bTransposed ? { data: b, offset: bOffset, rowStride: 1, colStride: k } : { data: b, offset: bOffset, rowStride: n, colStride: 1 },
    out,
    outOffset,
  );
}
