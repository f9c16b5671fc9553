import { describe, expect, it } from 'vitest';
import { attr, makeNode, type Graph } from '../src/core/graph.js';
import { Tensor } from '../src/core/tensor.js';
import { Arena } from '../src/runtime/arena.js';
import { Session } from '../src/runtime/executor.js';

const f32 = (shape: number[], values: number[]) => Tensor.from('float32', shape, values);
const iota = (n: number, scale = 1) => Array.from({ length: n }, (_, i) => (i - n / 2) * scale);

/**
 * in0 [4, 8] → Relu → a; a → Reshape [8, 4] → b (b shares a's array); a → Neg → c;
 * b → Abs → d; c → Exp → e (a kept by nobody then); d + e... every activation float32, so each
 * comes from the arena, and a's array is read through b after a's own slot is dropped.
 */
function chain(): Graph {
  const shape = new Map([['shape', Tensor.from('int64', [2], [8n, 4n])]]);
  return {
    inputs: [{ name: 'in0', dtype: 'float32', shape: [4, 8] }],
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
  for (let r = 0; r < 8; r++) {
    const row = sum.slice(r * 4, r * 4 + 4);
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
    const runs = [iota(32, 0.25), iota(32, -0.5), iota(32, 0.125)];
    const kept: { out: Tensor; b: Tensor; input: Tensor; copy: number[] }[] = [];
    for (const x of runs) {
      const input = f32([4, 8], x);
      const result = session.run({ in0: input });
      kept.push({ out: result['out']!, b: result['b']!, input, copy: x });
    }
    kept.forEach(({ out, b, input, copy }) => {
      const want = expected(copy);
      for (const [i, v] of Array.from(out.toFloat32()).entries()) expect(Math.abs(v - want.out[i]!)).toBeLessThan(1e-6);
      expect(Array.from(b.toFloat32())).toEqual(want.b);
      expect(Array.from(input.toFloat32())).toEqual(copy.map(Math.fround));
    });
  });

  it('hands back a dropped array zeroed, only for the same size, and only arrays it handed out', () => {
    const arena = new Arena();
    const a = arena.take(16);
    a.fill(7);
    arena.give(a);
    expect(arena.take(8)).not.toBe(a);
    const again = arena.take(16);
    expect(again).toBe(a);
    expect(Array.from(again)).toEqual(new Array(16).fill(0));
    again.fill(3);
    arena.give(again);
    expect(Array.from(arena.take(16, false))).toEqual(new Array(16).fill(3)); // for a kernel that writes every element
    expect(arena.owns(a)).toBe(true);
    expect(arena.owns(a.subarray(0, 8))).toBe(false);
    expect(arena.owns(new Float32Array(16))).toBe(false);
  });

  it('keeps no more than its limit waiting', () => {
    const arena = new Arena(64);
    const a = arena.take(16);
    const b = arena.take(16);
    arena.give(a);
    arena.give(b); // 128 bytes would exceed the 64-byte limit: b is left to the collector
    expect(arena.take(16)).toBe(a);
    expect(arena.take(16)).not.toBe(b);
  });
});
