/**
 * erf(x) to float64 accuracy (the float32 approximations in the literature are too coarse to
 * match ONNX's reference within its tolerance near zero): the Maclaurin series for |x| < 2.5,
 * erfc's continued fraction (evaluated with Lentz's method) beyond.
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (Number.isNaN(x)) return NaN;
  if (ax < 2.5) {
    let sum = x;
    let term = x;
    const x2 = x * x;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (ax > 6) return Math.sign(x);
  let f = ax;
  let c = ax;
  let d = 0;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    d = ax + an * d;
    d = d === 0 ? 1e-300 : 1 / d;
    c = ax + an / c;
    if (c === 0) c = 1e-300;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / (f * Math.sqrt(Math.PI));
  return Math.sign(x) * (1 - erfc);
}

/**
 * erf for float32 results, the runtime's hot path (transformers call it on every activation of
 * every GELU), without a loop or an exp: on (-4, 4), 128 segments of width 1/16, each a degree-8
 * Taylor polynomial about its midpoint c, whose coefficients come once from erf above and the
 * Hermite polynomials (erf⁽ⁿ⁾(c) = 2/√π · (-1)ⁿ⁻¹ Hₙ₋₁(c) e^(-c²)). Segments on both sides of 0
 * rather than erf(|x|) and a sign: GELU's inputs are + and - at random, and a branch on the sign
 * mispredicts half the time. Measured against erf on ±[1e-4, 4) in steps of 1e-6: within
 * 1.3e-12 relative (16 segments of degree 12 on |x| measured 1.7e-12); checked to round to the
 * same float32 as erf on [-5, 5] in steps of 1e-5 but at 1e-4 itself, where the linear branch
 * below takes over. From 4 on, erf rounds to ±1 in float32 (1 - erf(4) is 1.5e-8, under half an
 * ulp).
 */
const SEGMENTS = 128;
const DEGREE = 8;
/** Per segment: the DEGREE + 1 coefficients, then the midpoint. */
const STRIDE = DEGREE + 2;
const TAYLOR = (() => {
  const t = new Float64Array(SEGMENTS * STRIDE);
  for (let s = 0; s < SEGMENTS; s++) {
    const c = (s + 0.5) / 16 - 4;
    const g = (2 / Math.sqrt(Math.PI)) * Math.exp(-c * c);
    const at = s * STRIDE;
    t[at] = erf(c);
    let h0 = 1; // H_{n-2}
    let h1 = 2 * c; // H_{n-1}
    let factorial = 1;
    for (let n = 1; n <= DEGREE; n++) {
      factorial *= n;
      const h = n === 1 ? h0 : h1;
      t[at + n] = (g * ((n - 1) % 2 ? -1 : 1) * h) / factorial;
      if (n >= 2) {
        const next = 2 * c * h1 - 2 * (n - 1) * h0;
        h0 = h1;
        h1 = next;
      }
    }
    t[at + DEGREE + 1] = c;
  }
  return t;
})();

export function erfForFloat32(x: number): number {
  if (!(x > -4 && x < 4)) return x !== x ? NaN : x < 0 ? -1 : 1;
  // below 1e-4 the series' second term is under 4e-9 of the first (and -0 stays -0)
  if (Math.abs(x) < 1e-4) return x * 1.1283791670955126;
  const T = TAYLOR;
  // the segment from x + 4 (any neighbouring one would do as well); t from the exact midpoint
  const c = (((x + 4) * 16) | 0) * STRIDE;
  const t = x - T[c + DEGREE + 1]!;
  // Estrin's scheme instead of Horner's: the same polynomial in 3 dependent multiply-add levels
  // rather than 8, so the loop over an array is bound by throughput, not latency
  const t2 = t * t;
  const t4 = t2 * t2;
  const q0 = T[c]! + T[c + 1]! * t + (T[c + 2]! + T[c + 3]! * t) * t2;
  const q1 = T[c + 4]! + T[c + 5]! * t + (T[c + 6]! + T[c + 7]! * t) * t2;
  return q0 + q1 * t4 + T[c + 8]! * (t4 * t4);
}

/** Erf over a float32 array in a loop of its own (the shared unary loop's call cannot be inlined). */
export function erfFloat32(src: Float32Array, dst: Float32Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = erfForFloat32(src[i]!);
}

/**
 * Eigen's float32 rational approximation of erf (also XLA's and TVM's), for the folded GELU:
 * x clamped to [-4, 4], erf = x·P(x²)/Q(x²) by Horner, clamped to [-1, 1], and x·2/√π below
 * 1e-4 (where x·P underflows for subnormal x). Every step is rounded to float32, so this is bit
 * for bit the WebAssembly GELU's erf (gelu in gemm.wat, f32x4 ops without FMA). Within 5e-7
 * relative of erf (tested), a few float32 ulps: about 15 float32 operations instead of the
 * segment table's gather of 10 doubles, which is what lets the module run 4 lanes per step.
 */
const f32 = Math.fround;
const P = [-2.72614225801306e-10, 2.77068142495902e-8, -2.10102402082508e-6, -5.69250639462346e-5, -7.34990630326855e-4, -2.95459980854025e-3, -1.60960333262415e-2].map(f32) as [number, number, number, number, number, number, number];
const Q = [-1.45660718464996e-5, -2.13374055278905e-4, -1.68282697438203e-3, -7.37332916720468e-3, -1.42647390514189e-2].map(f32) as [number, number, number, number, number];
const TWO_OVER_SQRT_PI_32 = f32(1.1283791670955126);
const LINEAR_BELOW = f32(1e-4);

export function erfRational32(x: number): number {
  if (Math.abs(x) < LINEAR_BELOW) return f32(x * TWO_OVER_SQRT_PI_32);
  // the module's f32x4.pmin/pmax, compare and select: a NaN compares false and passes through
  let c = 4 < x ? 4 : x;
  c = c < -4 ? -4 : c;
  const x2 = f32(c * c);
  let p = f32(f32(x2 * P[0]) + P[1]);
  p = f32(f32(x2 * p) + P[2]);
  p = f32(f32(x2 * p) + P[3]);
  p = f32(f32(x2 * p) + P[4]);
  p = f32(f32(x2 * p) + P[5]);
  p = f32(f32(x2 * p) + P[6]);
  p = f32(c * p);
  let q = f32(f32(x2 * Q[0]) + Q[1]);
  q = f32(f32(x2 * q) + Q[2]);
  q = f32(f32(x2 * q) + Q[3]);
  q = f32(f32(x2 * q) + Q[4]);
  const r = f32(p / q);
  return r > 1 ? 1 : r < -1 ? -1 : r;
}
