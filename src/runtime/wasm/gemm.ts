/**
 * float32 GEMM in WebAssembly SIMD128 (gemm.wat, assembled into gemm-bytes.ts by
 * scripts/build-wasm.mjs). The module is compiled synchronously on first use; where WebAssembly
 * or its SIMD is missing, `wasmSgemmAvailable()` is false and `wasmSgemm` computes the same
 * product in plain JS (float32 rounding of a float64 sum), so callers never need a second path.
 */
import { compileWasm, WASM_PAGE, type WasmMemory } from '../../core/wasm/module.js';
import { GEMM_WASM_BASE64 } from './gemm-bytes.js';

interface GemmExports {
  memory: WasmMemory;
  sgemm(m: number, n: number, k: number, bTrans: number, a: number, b: number, c: number, work: number): void;
}

const PAGE = WASM_PAGE;
/** Bytes [0, 128) are the module's scratch tile; caller regions start here. */
const BASE = 128;
/** Larger products than this (total bytes in wasm memory) stay on the JS path. */
const MAX_BYTES = 0x7fff0000;

let state: { exports: GemmExports; f32: Float32Array } | null | undefined;

function load(): { exports: GemmExports; f32: Float32Array } | null {
  if (state !== undefined) return state;
  state = null;
  try {
    const exports = compileWasm(GEMM_WASM_BASE64)?.instantiate<GemmExports>();
    if (exports) state = { exports, f32: new Float32Array(exports.memory.buffer) };
  } catch {
    state = null; // no WebAssembly, or no SIMD128: the JS path serves
  }
  return state;
}

/** True when the WebAssembly SIMD kernel can run here (compiles the module on first call). */
export function wasmSgemmAvailable(): boolean {
  return load() !== null;
}

/** Rounds a byte count up to a cache line (plain arithmetic: counts may pass 2^31). */
const align64 = (x: number): number => Math.ceil(x / 64) * 64;

/**
 * out[outOffset..] (M×N, row-major) = A[M,K] · B, with B as [K,N] or, when `bTransposed`, as
 * [N,K]. Sums are float32, as in BLAS sgemm. Inputs may alias the output.
 */
export function wasmSgemm(
  out: Float32Array,
  outOffset: number,
  a: Float32Array,
  aOffset: number,
  b: Float32Array,
  bOffset: number,
  m: number,
  n: number,
  k: number,
  bTransposed: boolean,
): void {
  if (m <= 0 || n <= 0) return;
  const s = k > 0 ? load() : null;
  const aBytes = align64(m * k * 4);
  const bBytes = align64(k * n * 4);
  const cBytes = align64(m * n * 4);
  const workBytes = align64((Math.ceil(m / 4) * 4 + Math.ceil(n / 8) * 8) * k * 4);
  const total = BASE + aBytes + bBytes + cBytes + workBytes;
  if (s === null || total > MAX_BYTES) {
    jsSgemm(out, outOffset, a, aOffset, b, bOffset, m, n, k, bTransposed);
    return;
  }
  const { exports } = s;
  const have = exports.memory.buffer.byteLength;
  if (total > have) {
    try {
      exports.memory.grow(Math.ceil((total - have) / PAGE));
    } catch {
      jsSgemm(out, outOffset, a, aOffset, b, bOffset, m, n, k, bTransposed);
      return;
    }
  }
  if (s.f32.buffer !== exports.memory.buffer) s.f32 = new Float32Array(exports.memory.buffer);
  const f32 = s.f32;
  const aPtr = BASE;
  const bPtr = aPtr + aBytes;
  const cPtr = bPtr + bBytes;
  const workPtr = cPtr + cBytes;
  f32.set(a.subarray(aOffset, aOffset + m * k), aPtr >> 2);
  f32.set(b.subarray(bOffset, bOffset + k * n), bPtr >> 2);
  exports.sgemm(m, n, k, bTransposed ? 1 : 0, aPtr, bPtr, cPtr, workPtr);
  out.set(f32.subarray(cPtr >> 2, (cPtr >> 2) + m * n), outOffset);
}

/** The same product in plain JS, for runtimes without WebAssembly SIMD. */
function jsSgemm(
  out: Float32Array,
  outOffset: number,
  a: Float32Array,
  aOffset: number,
  b: Float32Array,
  bOffset: number,
  m: number,
  n: number,
  k: number,
  bTransposed: boolean,
): void {
  const rowB = bTransposed ? k : 1;
  const colB = bTransposed ? 1 : n;
  const acc = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = a[aOffset + i * k + p]!;
      const bp = bOffset + p * colB;
      for (let j = 0; j < n; j++) acc[i * n + j]! += av * b[bp + j * rowB]!;
    }
  }
  out.set(acc, outOffset);
}
