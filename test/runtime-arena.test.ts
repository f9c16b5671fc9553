import { describe, expect, it } from 'vitest';
import { attr, makeNode, type Graph } from '../src/core/graph.js';
import { Tensor } from '../src/core/tensor.js';
import { Arena } from '../src/runtime/arena.js';
import { Session } from '../src/runtime/executor.js';

const f32 = (shape: number[], values: number[]) => Tensor.from('float32', shape, values);
const iota = (n: number, scale = 1): number[] => Array.from({ length: n }, (_, i) => (i - n / 2) * scale);

/** Activations of 64x128 floats: large enough to be pooled (the arena leaves small ones alone). */
const ROWS = 64;
const COLS = 128;

/**
 * in0 [64, 128] → Relu → a; a → Reshape [128, 64] → b (b shares a's array); a → Neg → c →
 * Exp → e (a's own slot is dropped after Neg, its array still read through b); Abs(b) + e →
 * Softmax. Every activation is float32 and large, so each comes from the arena.
 */
function chain(): Graph {
  const shape = new Map([['shape', Tensor.from('int64', [2], [BigInt(COLS), BigInt(ROWS)])]]);
  return {
    inputs: [{ name: 'in0', dtype: 'float32', shape: [ROWS, COLS] }],
    outputs: [
      { name: 'out', dtype: 'float32', shape: null },
      { name: 'b', dtype: 'float32', shape: null },
    ],
    initializers: shape,
    nodes: [
      makeNode('Relu', ['in0'], ['a']),
      makeNode('Reshape', ['a', 'shape'], ['b']),
      makeNode('Neg', ['a'], ['c']),
      makeNode('Exp', ['c'], ['e']),
      makeNode('Reshape', ['e', 'shape'], ['e2']),
      makeNode('Abs', ['b'], ['d']),
      makeNode('Add', ['d', 'e2'], ['sum']),
      makeNode('Softmax', ['sum'], ['out'], { axis: attr.int(-1) }),
    ],
    opset: 17,
  };
}

/** The same graph computed directly, for the expected values. */
function expected(x: number[]): { out: number[]; b: number[] } {
  const a = x.map((v) => Math.fround(Math.max(0, v)));
  const sum = a.map((v) => Math.fround(Math.abs(v) + Math.fround(Math.exp(-v))));
  const out: number[] = [];
  for (let r = 0; r < COLS; r++) {
    const row = sum.slice(r * ROWS, r * ROWS + ROWS);
    const max = Math.max(...row);
    const exps = row.map((v) => Math.exp(v - max));
    const total = exps.reduce((p, q) => p + q, 0);
    out.push(...exps.map((v) => Math.fround(v / total)));
  }
  return { out, b: a };
}

describe('the Session arena (float32 activations reused between steps and runs)', () => {
  it('gives the same results run after run, never reuses an array a live value still reads, and leaves inputs and earlier outputs alone', () => {
    const session = new Session(chain(), { threads: 1 });
    const runs = [iota(ROWS * COLS, 1e-3), iota(ROWS * COLS, -2e-3), iota(ROWS * COLS, 5e-4)];
    const kept: { out: Tensor; b: Tensor; input: Tensor; copy: number[] }[] = [];
    for (const x of runs) {
      const input = f32([ROWS, COLS], x);
      const result = session.run({ in0: input });
      kept.push({ out: result['out']!, b: result['b']!, input, copy: x });
    }
    kept.forEach(({ out, b, input, copy }) => {
      const want = expected(copy);
      let worst = 0;
      for (const [i, v] of Array.from(out.toFloat32()).entries()) worst = Math.max(worst, Math.abs(v - want.out[i]!));
      expect(worst).toBeLessThan(1e-6);
      expect(Array.from(b.toFloat32())).toEqual(want.b);
      expect(Array.from(input.toFloat32())).toEqual(copy.map(Math.fround));
    });
  });

  it('hands back a dropped array zeroed, only for the same size, and only arrays it handed out', () => {
    const n = 8192;
    const arena = new Arena();
    const a = arena.take(n);
    a.fill(7);
    arena.give(a);
    expect(arena.take(n / 2)).not.toBe(a);
    const again = arena.take(n);
    expect(again).toBe(a);
    expect(again.every((v) => v === 0)).toBe(true);
    again.fill(3);
    arena.give(again);
    expect(arena.take(n, false).every((v) => v === 3)).toBe(true); // for a kernel that writes every element
    expect(arena.owns(a)).toBe(true);
    expect(arena.owns(a.subarray(0, n / 2))).toBe(false);
    expect(arena.owns(new Float32Array(n))).toBe(false);
    expect(arena.owns(arena.take(16))).toBe(false); // small arrays are not pooled
  });

  it('keeps no more than its limit waiting', () => {
    const n = 4096;
    const arena = new Arena(n * 4);
    const a = arena.take(n);
    const b = arena.take(n);
    arena.give(a);
    arena.give(b); // twice the limit: b is left to the collector
    expect(arena.take(n)).toBe(a);
    expect(arena.take(n)).not.toBe(b);
  });
});
