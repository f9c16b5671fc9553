import { describe, expect, it } from 'vitest';
import type { Attribute, Graph, Node } from '../src/core/graph.js';
import { Tensor } from '../src/core/tensor.js';
import { Session } from '../src/runtime/executor.js';
import { expectClose, random, rng } from './runtime-helpers.js';

/**
 * A session that runs once (a conversion's output check) uses its constant weights in place: a
 * weight larger than the 8 MiB block streams through WebAssembly memory a block at a time (rows
 * of a transposed B as whole output columns; rows of a plain B as partial sums carried from block
 * to block, the bias with the first, the clamp with the last). The result must be the
 * definition's, and the packed path's up to float32 summation order.
 */

const node = (op: string, inputs: string[], outputs: string[], attributes: Record<string, Attribute> = {}): Node => ({ name: outputs[0]!, op, domain: '', inputs, outputs, attributes });

function graph(nodes: Node[], input: readonly number[], initializers: Record<string, Tensor>): Graph {
  return {
    inputs: [{ name: 'x', dtype: 'float32', shape: input }],
    outputs: [{ name: 'y', dtype: 'float32', shape: null }],
    initializers: new Map(Object.entries(initializers)),
    nodes,
    opset: 17,
  } as unknown as Graph;
}

/** y = x · (B or Bᵀ) + bias, optionally Relu, in float64. */
function reference(x: Float32Array, b: Float32Array, bias: Float32Array, m: number, k: number, n: number, transposed: boolean, relu: boolean): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = bias[j]!;
      for (let p = 0; p < k; p++) s += x[i * k + p]! * (transposed ? b[j * k + p]! : b[p * n + j]!);
      out[i * n + j] = relu ? Math.max(0, s) : s;
    }
  }
  return out;
}


describe('a session that runs once streams large weights', () => {
  // k * n * 4 bytes = 9.2 MB: two blocks either way.
  const k = 1536;
  const n = 1500;
  const next = rng(7);
  const w = random(k * n, next);
  const bias = random(n, next);

  for (const m of [1, 3]) {
    const x = Tensor.from('float32', [m, k], random(m * k, next));
    it(`Gemm transB=1 with a bias, ${m} row(s)`, () => {
      const g = graph([node('Gemm', ['x', 'w', 'b'], ['y'], { transB: { type: 'int', value: 1 } })], [m, k], { w: Tensor.from('float32', [n, k], w), b: Tensor.from('float32', [n], bias) });
      const once = new Session(g, { once: true, threads: 1 }).run({ x }).y!.toFloat32();
      expectClose(once, reference(x.toFloat32(), w, bias, m, k, n, true, false), 1e-5);
      expectClose(once, new Session(g, { threads: 1 }).run({ x }).y!.toFloat32(), 1e-5);
    });
    it(`MatMul + Add + Relu (one fused product: bias with the first block, clamp with the last), ${m} row(s)`, () => {
      const g = graph(
        [node('MatMul', ['x', 'w'], ['p']), node('Add', ['p', 'b'], ['q']), node('Relu', ['q'], ['y'])],
        [m, k],
        { w: Tensor.from('float32', [k, n], w), b: Tensor.from('float32', [n], bias) },
      );
      const once = new Session(g, { once: true, threads: 2 }).run({ x }).y!.toFloat32();
      const expected = reference(x.toFloat32(), w, bias, m, k, n, false, true);
      expectClose(once, expected, 1e-5);
      expect(once.some((v) => v === 0) && once.some((v) => v > 0)).toBe(true);
      expectClose(once, new Session(g, { threads: 2 }).run({ x }).y!.toFloat32(), 1e-5);
    });
  }

  it('gives the same result on every run of the same session', () => {
    const x = Tensor.from('float32', [1, k], random(k, next));
    const g = graph([node('MatMul', ['x', 'w'], ['y'])], [1, k], { w: Tensor.from('float32', [k, n], w) });
    const s = new Session(g, { once: true });
    expect(s.run({ x }).y!.toFloat32()).toEqual(s.run({ x }).y!.toFloat32());
  });
});
