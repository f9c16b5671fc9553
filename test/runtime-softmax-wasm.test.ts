import { describe, expect, it } from 'vitest';
import { wasmSoftmax } from '../src/runtime/wasm/gemm.js';
import { mulberry32 as rng } from './runtime-helpers.js';


/** The JS kernel's arithmetic: float64 exp(x - max) / sum, rounded to float32. */
function reference(src: Float32Array, rows: number, len: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let j = 0; j < len; j++) if (src[r * len + j]! > max) max = src[r * len + j]!;
    const e = Array.from({ length: len }, (_, j) => Math.exp(src[r * len + j]! - max));
    const sum = e.reduce((a, b) => a + b, 0);
    for (let j = 0; j < len; j++) out[r * len + j] = e[j]! / sum;
  }
  return out;
}

describe('Softmax rows in the WebAssembly module', () => {
  it('matches the float64 JS arithmetic on attention-like rows of any length (float32 results equal but for rare last-bit rounding)', () => {
    const next = rng(5);
    for (const [rows, len, spread] of [[6, 197, 8], [4, 128, 30], [3, 9, 1], [5, 8, 200], [2, 1000, 50], [3, 13, 700]] as const) {
      const src = Float32Array.from({ length: rows * len }, () => next() * spread);
      const got = new Float32Array(src.length).fill(7);
      expect(wasmSoftmax(src, got, rows, len)).toBe(true);
      const want = reference(src, rows, len);
      let differ = 0;
      for (let i = 0; i < src.length; i++) {
        if (got[i] === want[i]) continue;
        differ++;
        expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(Math.abs(want[i]!) * 2 ** -23);
      }
      expect(differ).toBeLessThanOrEqual(Math.ceil(src.length / 1000));
    }
  });

  it('gives NaN rows for a NaN or +inf, exact 1/len for equal values, and underflows to 0 far below the max', () => {
    const len = 9;
    const rows = [
      [1, 2, NaN, 4, 5, 6, 7, 8, 9],
      [1, Infinity, 3, 4, 5, 6, 7, 8, 9],
      new Array(len).fill(-Infinity),
      new Array(len).fill(3),
      [0, -1000, -800, -750, -700, -100, -2, -1, 0],
    ];
    const src = Float32Array.from(rows.flat());
    const got = new Float32Array(src.length);
    expect(wasmSoftmax(src, got, rows.length, len)).toBe(true);
    const want = reference(src, rows.length, len);
    for (let i = 0; i < src.length; i++) {
      if (Number.isNaN(want[i])) expect(got[i]).toBeNaN();
      else expect(got[i]).toBe(want[i]);
    }
    expect(got.slice(3 * len, 4 * len)).toEqual(new Float32Array(len).fill(Math.fround(1 / len)));
  });
});
