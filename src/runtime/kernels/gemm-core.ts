/**
 * The matrix product at the heart of MatMul and Gemm: out[M,N] = A[M,K] · B (B as [K,N], or as
 * [N,K] when `bTransposed`). Sums run in float64 registers and are rounded once when stored, so
 * results are at least as accurate as a float32 BLAS.
 */
export type FloatArray = Float32Array | Float64Array;

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
  if (bTransposed) {
    // Rows of A against rows of B: both walks are contiguous.
    for (let i = 0; i < m; i++) {
      const ai = aOffset + i * k;
      const oi = outOffset + i * n;
      for (let j = 0; j < n; j++) {
        const bj = bOffset + j * k;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        let p = 0;
        for (; p + 3 < k; p += 4) {
          s0 += a[ai + p]! * b[bj + p]!;
          s1 += a[ai + p + 1]! * b[bj + p + 1]!;
          s2 += a[ai + p + 2]! * b[bj + p + 2]!;
          s3 += a[ai + p + 3]! * b[bj + p + 3]!;
        }
        for (; p < k; p++) s0 += a[ai + p]! * b[bj + p]!;
        out[oi + j] = s0 + s1 + (s2 + s3);
      }
    }
    return;
  }
  // i-k-j order: each A element scales one contiguous row of B into a row accumulator.
  const acc = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    acc.fill(0);
    const ai = aOffset + i * k;
    for (let p = 0; p < k; p++) {
      const av = a[ai + p]!;
      if (av === 0) continue;
      const bp = bOffset + p * n;
      for (let j = 0; j < n; j++) acc[j]! += av * b[bp + j]!;
    }
    const oi = outOffset + i * n;
    for (let j = 0; j < n; j++) out[oi + j] = acc[j]!;
  }
}
