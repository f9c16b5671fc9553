import { expect } from 'vitest';
import { setIntraOpThreads } from '../src/runtime/wasm/gemm.js';

/**
 * What the runtime's tests share: seeded inputs, so a failure reproduces, the float32-against-
 * float64 closeness they assert, and a run on a given number of intra-op threads.
 */

/** Deterministic values in [-1, 1) from a linear congruential generator. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

/** Deterministic uniform values in [-1, 1) (mulberry32), where a test wants a better spread than the LCG's. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

export const random = (n: number, next: () => number): Float32Array => Float32Array.from({ length: n }, () => next());

/** Every element within `tol` relative of (1 + |expected|): float32 summation error against a float64 reference. */
export function expectClose(actual: Float32Array, expected: Float64Array | Float32Array, tol = 2e-5): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!) / (1 + Math.abs(expected[i]!)));
  expect(worst).toBeLessThan(tol);
}

/** Runs `f` with `threads` intra-op threads (what a Session sets for its run), restoring the count after. */
export function withThreads<T>(threads: number, f: () => T): T {
  const previous = setIntraOpThreads(threads);
  try {
    return f();
  } finally {
    setIntraOpThreads(previous);
  }
}
