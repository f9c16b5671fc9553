import { describe, expect, it, vi } from 'vitest';
import { matmulInto } from '../src/runtime/kernels/gemm-core.js';
import { wasmSgemm, wasmSgemmAvailable } from '../src/runtime/wasm/gemm.js';
import { mulberry32 as rng } from './runtime-helpers.js';


function randomF32(n: number, next: () => number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = next();
  return x;
}

/**
 * Checks out[outOffset..] against a float64 reference of A·B. The bound is normwise: float32
 * sums of k products are within ~k·2^-24 of Σ|a·b| (and far closer in practice), so 1e-5 of
 * Σ|a·b| is loose for rounding yet catches any wrong index, missing term or stale tile.
 */
function expectProduct(
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
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      let abs = 0;
      for (let p = 0; p < k; p++) {
        const prod = a[aOffset + i * k + p]! * b[bOffset + (bTransposed ? j * k + p : p * n + j)]!;
        sum += prod;
        abs += Math.abs(prod);
      }
      const got = out[outOffset + i * n + j]!;
      if (!(Math.abs(got - sum) <= 1e-5 * abs + 1e-30)) {
        throw new Error(`${m}x${n}x${k} ${bTransposed ? 'B [N,K]' : 'B [K,N]'}: out[${i},${j}] = ${got}, want ${sum} (Σ|ab| = ${abs})`);
      }
    }
  }
}

/** Runs wasmSgemm on random operands placed at nonzero offsets, checks the product and that
 *  nothing outside out[outOffset, outOffset + m·n) was written. */
function checkShape(m: number, n: number, k: number, bTransposed: boolean, seed: number): void {
  const next = rng(seed);
  const aOffset = 1 + (seed % 7);
  const bOffset = 3 + (seed % 5);
  const outOffset = 2 + (seed % 3);
  const a = randomF32(aOffset + m * k + 4, next);
  const b = randomF32(bOffset + k * n + 4, next);
  const out = new Float32Array(outOffset + m * n + 5).fill(12345);
  wasmSgemm(out, outOffset, a, aOffset, b, bOffset, m, n, k, bTransposed);
  expectProduct(out, outOffset, a, aOffset, b, bOffset, m, n, k, bTransposed);
  for (let i = 0; i < outOffset; i++) expect(out[i]).toBe(12345);
  for (let i = outOffset + m * n; i < out.length; i++) expect(out[i]).toBe(12345);
}

describe('float32 GEMM in WebAssembly SIMD', () => {
  it('is available on this runtime (Node 20+ has SIMD128)', () => {
    expect(wasmSgemmAvailable()).toBe(true);
  });

  const edges = [1, 3, 5, 17, 63, 64, 65, 127];
  for (const bTransposed of [true, false]) {
    it(`matches a float64 reference on edge shapes, B as ${bTransposed ? '[N,K]' : '[K,N]'}`, () => {
      let seed = bTransposed ? 1 : 100_000;
      for (const m of edges) for (const n of edges) for (const k of [1, 2, 3, 4, 5, 8, 17, 64, 65, 127]) checkShape(m, n, k, bTransposed, seed++);
    });

    it(`handles K across the kernel's 256-wide slices, B as ${bTransposed ? '[N,K]' : '[K,N]'}`, () => {
      let seed = bTransposed ? 7 : 70_000;
      for (const [m, n, k] of [
        [4, 8, 255],
        [4, 8, 256],
        [5, 9, 257],
        [3, 17, 511],
        [9, 7, 513],
        [17, 33, 784],
        [64, 10, 512],
      ] as const) {
        checkShape(m, n, k, bTransposed, seed++);
      }
    });
  }

  it('matches the reference on random shapes', () => {
    const next = rng(42);
    const dim = (max: number) => 1 + Math.floor(((next() + 1) / 2) * max);
    for (let t = 0; t < 60; t++) checkShape(dim(70), dim(90), dim(300), t % 2 === 0, 1000 + t);
  });

  it('computes the MLP layer shapes (64x784 · (512x784)ᵀ)', () => {
    checkShape(64, 512, 784, true, 5);
    checkShape(64, 10, 512, true, 6);
  });

  it('keeps working after the memory grows and across calls of different sizes', () => {
    checkShape(3, 5, 7, true, 11);
    checkShape(300, 257, 600, false, 12); // grows memory past its first page
    checkShape(2, 9, 3, false, 13);
    checkShape(130, 70, 1030, true, 14);
  });

  it('may write into an output that views the same buffer as its inputs', () => {
    const next = rng(9);
    const buf = randomF32(8 * 16 + 16 * 12 + 8 * 12, next);
    const a = buf.subarray(0, 8 * 16);
    const b = buf.subarray(8 * 16, 8 * 16 + 16 * 12);
    const aCopy = a.slice();
    const bCopy = b.slice();
    // the output overlaps A: the product is taken from copies, so it must still be right
    wasmSgemm(buf, 4, buf, 0, buf, 8 * 16, 8, 12, 16, false);
    expectProduct(buf, 4, aCopy, 0, bCopy, 0, 8, 12, 16, false);
  });
});

describe('matmulInto routing', () => {
  it('sends large float32 products to the wasm kernel', () => {
    const next = rng(3);
    const [m, n, k] = [64, 512, 784];
    const a = randomF32(m * k, next);
    const b = randomF32(n * k, next);
    const viaCore = new Float32Array(m * n);
    const viaWasm = new Float32Array(m * n);
    matmulInto(viaCore, 0, a, 0, b, 0, m, n, k, true);
    wasmSgemm(viaWasm, 0, a, 0, b, 0, m, n, k, true);
    expect(viaCore).toEqual(viaWasm);
    expectProduct(viaCore, 0, a, 0, b, 0, m, n, k, true);
  });

  it('keeps tiny float32 products (the OR gate) in JS with float64 sums', () => {
    // 1 + 2^-24 + 2^-24: float64 then one rounding gives 1 + 2^-23; a float32 running sum
    // gives 1 (each half-ulp addition rounds back to even)
    const a = new Float32Array([1, 2 ** -24, 2 ** -24]);
    const b = new Float32Array([1, 1, 1]);
    const out = new Float32Array(1);
    matmulInto(out, 0, a, 0, b, 0, 1, 1, 3, true);
    expect(out[0]).toBe(1 + 2 ** -23);
    const or = new Float32Array(2);
    matmulInto(or, 0, new Float32Array([1, 0]), 0, new Float32Array([0.5, -2, 3, 4]), 0, 1, 2, 2, true);
    expect(Array.from(or)).toEqual([0.5, 3]);
  });

  it('keeps float64 products in JS with float64 sums', () => {
    const [m, n, k] = [8, 8, 8];
    const a = new Float64Array(m * k).fill(2 ** -30);
    for (let i = 0; i < m; i++) a[i * k] = 1;
    const b = new Float64Array(n * k).fill(1);
    const out = new Float64Array(m * n);
    matmulInto(out, 0, a, 0, b, 0, m, n, k, true);
    expect(Array.from(out)).toEqual(new Array(m * n).fill(1 + 7 * 2 ** -30));
  });

  it('agrees with the reference across the size threshold, both layouts', () => {
    let seed = 500;
    for (const [m, n, k] of [
      [1, 2, 2],
      [4, 4, 4],
      [8, 8, 8],
      [1, 8, 64],
      [1, 2, 4096],
      [64, 1, 64],
      [16, 2, 16],
      [1, 10, 512],
    ] as const) {
      for (const bTransposed of [true, false]) {
        const next = rng(seed++);
        const a = randomF32(m * k, next);
        const b = randomF32(n * k, next);
        const out = new Float32Array(m * n);
        matmulInto(out, 0, a, 0, b, 0, m, n, k, bTransposed);
        expectProduct(out, 0, a, 0, b, 0, m, n, k, bTransposed);
      }
    }
  });
});

describe('without WebAssembly SIMD', () => {
  /** Fresh copies of the modules, loaded while `WebAssembly` is replaced by `replacement`. */
  async function loadWithout(replacement: unknown) {
    vi.stubGlobal('WebAssembly', replacement);
    vi.resetModules();
    try {
      const wasm = await import('../src/runtime/wasm/gemm.js');
      const core = await import('../src/runtime/kernels/gemm-core.js');
      expect(wasm.wasmSgemmAvailable()).toBe(false); // loads (and fails) while stubbed
      return { wasm, core };
    } finally {
      vi.unstubAllGlobals();
      vi.resetModules();
    }
  }

  for (const [what, replacement] of [
    ['no WebAssembly at all', undefined],
    [
      'a compile error (an engine without SIMD128)',
      {
        Module: class {
          constructor() {
            throw new Error('CompileError: invalid SIMD opcode');
          }
        },
        Instance: class {},
      },
    ],
  ] as const) {
    it(`falls back to JS on ${what}`, async () => {
      const { wasm, core } = await loadWithout(replacement);
      let seed = 900;
      for (const [m, n, k] of [
        [5, 9, 17],
        [64, 10, 512],
        [1, 3, 2],
      ] as const) {
        for (const bTransposed of [true, false]) {
          const next = rng(seed++);
          const a = randomF32(2 + m * k, next);
          const b = randomF32(3 + n * k, next);
          const out = new Float32Array(1 + m * n);
          wasm.wasmSgemm(out, 1, a, 2, b, 3, m, n, k, bTransposed);
          expectProduct(out, 1, a, 2, b, 3, m, n, k, bTransposed);
          const viaCore = new Float32Array(m * n);
          core.matmulInto(viaCore, 0, a, 2, b, 3, m, n, k, bTransposed);
          expectProduct(viaCore, 0, a, 2, b, 3, m, n, k, bTransposed);
        }
      }
    });
  }
});

describe('the two forms of the WebAssembly kernel', () => {
  /** A fresh copy of the module, its kernel compiled while MODELBRIDGE_GEMM is `value`. */
  async function loadWith(value: string | undefined) {
    vi.stubEnv('MODELBRIDGE_GEMM', value);
    vi.resetModules();
    try {
      const wasm = await import('../src/runtime/wasm/gemm.js');
      wasm.gemmKernel(); // compiles now, under the stubbed variable
      return wasm;
    } finally {
      vi.unstubAllEnvs();
      vi.resetModules();
    }
  }

  it('runs the relaxed-SIMD (FMA) form by default on Node 20+, and the SIMD128 form on request; both match the reference', async () => {
    const relaxed = await loadWith(undefined);
    const plain = await loadWith('simd128');
    expect(relaxed.gemmKernel()).toBe('relaxed-simd');
    expect(plain.gemmKernel()).toBe('simd128');
    let seed = 3000;
    for (const [m, n, k] of [
      [4, 8, 1],
      [5, 9, 17],
      [64, 512, 784],
      [33, 70, 300],
    ] as const) {
      const next = rng(seed++);
      const a = randomF32(m * k, next);
      const b = randomF32(n * k, next);
      const viaRelaxed = new Float32Array(m * n);
      const viaPlain = new Float32Array(m * n);
      relaxed.wasmSgemm(viaRelaxed, 0, a, 0, b, 0, m, n, k, true);
      plain.wasmSgemm(viaPlain, 0, a, 0, b, 0, m, n, k, true);
      expectProduct(viaRelaxed, 0, a, 0, b, 0, m, n, k, true);
      expectProduct(viaPlain, 0, a, 0, b, 0, m, n, k, true);
    }
  });
});
