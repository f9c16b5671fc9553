import type { FloatArray } from '../value.js';

/**
 * The JavaScript matrix product behind MatMul, Gemm and Conv (see gemm-core.ts for dispatch):
 *
 *   out[outOffset + i·n + j] = Σ_p A(i, p) · B(p, j)      (i < m, j < n, p < k)
 *
 * with A(i, p) = a[a.offset + i·a.rowStride + p·a.colStride], and B likewise, so a transposed
 * operand is just swapped strides and never copied. Sums run in float64 and are rounded to the
 * output type when stored (the blocked path: once per KC steps of k), so results are at least as
 * accurate as a float32 BLAS.
 *
 * Large float32 products take a cache-blocked path (GotoBLAS' scheme, scalar): B is packed into
 * panels of NR columns and A into blocks of MR rows, both k-major, for slices of KC steps of k;
 * a 4×4 micro-kernel then keeps its tile of C in 16 local variables (registers), doing 16
 * multiply-adds per 8 loads. A slice of A (4·KC floats) and one panel of B (KC·4 floats) stay
 * in L1 while the micro-kernel sweeps over them. Everything else takes a plain loop.
 */
export interface MatrixOperand {
  readonly data: FloatArray;
  readonly offset: number;
  readonly rowStride: number;
  readonly colStride: number;
}

const MR = 4;
const NR = 4;
const KC = 256;
/** Below this many multiply-adds the packing costs more than it saves. */
const BLOCKED_MIN_WORK = 16384;

// Scratch buffers, grown on demand and reused: the runtime is single-threaded and never
// re-enters a product from inside one.
let packedA = new Float32Array(MR * KC);
let packedB = new Float32Array(0);
let rowAccumulator = new Float64Array(0);
const edgeTile = new Float32Array(MR * NR);

export function gemm(m: number, n: number, k: number, a: MatrixOperand, b: MatrixOperand, out: FloatArray, outOffset: number): void {
  if (m === 0 || n === 0) return;
  if (k === 0) {
    out.fill(0, outOffset, outOffset + m * n);
    return;
  }
  if (a.data instanceof Float32Array && b.data instanceof Float32Array && out instanceof Float32Array && m >= MR && n >= NR && m * n * k >= BLOCKED_MIN_WORK) {
    blockedFloat32(m, n, k, a, b, out, outOffset);
  } else {
    plainGemm(m, n, k, a, b, out, outOffset);
  }
}

/** Row-at-a-time product for small or skinny shapes and float64. */
function plainGemm(m: number, n: number, k: number, a: MatrixOperand, b: MatrixOperand, out: FloatArray, outOffset: number): void {
  const A = a.data;
  const B = b.data;
  if (b.colStride === 1) {
    // Rows of B are contiguous: scale-and-add them into a float64 row (i-k-j order).
    if (rowAccumulator.length < n) rowAccumulator = new Float64Array(n);
    const acc = rowAccumulator;
    for (let i = 0; i < m; i++) {
      acc.fill(0, 0, n);
      const ai = a.offset + i * a.rowStride;
      for (let p = 0; p < k; p++) {
        const av = A[ai + p * a.colStride]!;
        if (av === 0) continue;
        const bp = b.offset + p * b.rowStride;
        for (let j = 0; j < n; j++) acc[j]! += av * B[bp + j]!;
      }
      const oi = outOffset + i * n;
      for (let j = 0; j < n; j++) out[oi + j] = acc[j]!;
    }
    return;
  }
  // B's columns are contiguous (a transposed weight, as Gemm transB=1 and Linear store it): dot products.
  for (let i = 0; i < m; i++) {
    const ai = a.offset + i * a.rowStride;
    const oi = outOffset + i * n;
    for (let j = 0; j < n; j++) {
      const bj = b.offset + j * b.colStride;
      let s0 = 0;
      let s1 = 0;
      let p = 0;
      for (; p + 1 < k; p += 2) {
        s0 += A[ai + p * a.colStride]! * B[bj + p * b.rowStride]!;
        s1 += A[ai + (p + 1) * a.colStride]! * B[bj + (p + 1) * b.rowStride]!;
      }
      if (p < k) s0 += A[ai + p * a.colStride]! * B[bj + p * b.rowStride]!;
      out[oi + j] = s0 + s1;
    }
  }
}

function blockedFloat32(m: number, n: number, k: number, a: MatrixOperand, b: MatrixOperand, out: Float32Array, outOffset: number): void {
  const panels = Math.ceil(n / NR);
  const panelSize = KC * NR;
  if (packedB.length < panels * panelSize) packedB = new Float32Array(panels * panelSize);
  // Equal slices (784 = 2 × 392, not 512 + 272), so no slice is a short, overhead-heavy remainder.
  const step = Math.ceil(k / Math.ceil(k / KC));
  for (let k0 = 0; k0 < k; k0 += step) {
    const kc = Math.min(step, k - k0);
    packB(b, k0, kc, n, panels);
    for (let i0 = 0; i0 < m; i0 += MR) {
      const rows = Math.min(MR, m - i0);
      packA(a, i0, rows, k0, kc);
      for (let jp = 0; jp < panels; jp++) {
        const j0 = jp * NR;
        const cols = Math.min(NR, n - j0);
        if (rows === MR && cols === NR) {
          microKernel4x4(kc, packedB, jp * panelSize, out, outOffset + i0 * n + j0, n, k0 > 0);
        } else {
          // Edge tile: compute the full 4×4 from zero-padded panels, keep the valid part.
          microKernel4x4(kc, packedB, jp * panelSize, edgeTile, 0, NR, false);
          for (let r = 0; r < rows; r++) {
            const o = outOffset + (i0 + r) * n + j0;
            for (let c = 0; c < cols; c++) out[o + c] = (k0 > 0 ? out[o + c]! : 0) + edgeTile[r * NR + c]!;
          }
        }
      }
    }
  }
}

/** packedB[panel][p][c] = B(k0 + p, panel·NR + c), zero past column n. */
function packB(b: MatrixOperand, k0: number, kc: number, n: number, panels: number): void {
  const B = b.data;
  const dst = packedB;
  const panelSize = KC * NR;
  for (let jp = 0; jp < panels; jp++) {
    const base = jp * panelSize;
    for (let c = 0; c < NR; c++) {
      const j = jp * NR + c;
      if (j >= n) {
        for (let p = 0; p < kc; p++) dst[base + p * NR + c] = 0;
        continue;
      }
      let src = b.offset + k0 * b.rowStride + j * b.colStride;
      for (let p = 0; p < kc; p++, src += b.rowStride) dst[base + p * NR + c] = B[src]!;
    }
  }
}

/** packedA[p][r] = A(i0 + r, k0 + p), zero past row m. */
function packA(a: MatrixOperand, i0: number, rows: number, k0: number, kc: number): void {
  const A = a.data;
  const dst = packedA;
  for (let r = 0; r < MR; r++) {
    if (r >= rows) {
      for (let p = 0; p < kc; p++) dst[p * MR + r] = 0;
      continue;
    }
    let src = a.offset + (i0 + r) * a.rowStride + k0 * a.colStride;
    for (let p = 0; p < kc; p++, src += a.colStride) dst[p * MR + r] = A[src]!;
  }
}

/** C[4×4 at c, row stride ldc] (+)= packedA-block · panel. Sixteen accumulators, no array traffic. */
function microKernel4x4(kc: number, B: Float32Array, bOffset: number, C: Float32Array, c: number, ldc: number, accumulate: boolean): void {
  const A = packedA;
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let p = 0, ai = 0, bi = bOffset; p < kc; p++, ai += 4, bi += 4) {
    const a0 = A[ai]!, a1 = A[ai + 1]!, a2 = A[ai + 2]!, a3 = A[ai + 3]!;
    const b0 = B[bi]!, b1 = B[bi + 1]!, b2 = B[bi + 2]!, b3 = B[bi + 3]!;
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
  }
  if (accumulate) {
    c00 += C[c]!; c01 += C[c + 1]!; c02 += C[c + 2]!; c03 += C[c + 3]!;
    c10 += C[c + ldc]!; c11 += C[c + ldc + 1]!; c12 += C[c + ldc + 2]!; c13 += C[c + ldc + 3]!;
    c20 += C[c + 2 * ldc]!; c21 += C[c + 2 * ldc + 1]!; c22 += C[c + 2 * ldc + 2]!; c23 += C[c + 2 * ldc + 3]!;
    c30 += C[c + 3 * ldc]!; c31 += C[c + 3 * ldc + 1]!; c32 += C[c + 3 * ldc + 2]!; c33 += C[c + 3 * ldc + 3]!;
  }
  C[c] = c00; C[c + 1] = c01; C[c + 2] = c02; C[c + 3] = c03;
  c += ldc;
  C[c] = c10; C[c + 1] = c11; C[c + 2] = c12; C[c + 3] = c13;
  c += ldc;
  C[c] = c20; C[c + 1] = c21; C[c + 2] = c22; C[c + 3] = c23;
  c += ldc;
  C[c] = c30; C[c + 1] = c31; C[c + 2] = c32; C[c + 3] = c33;
}
