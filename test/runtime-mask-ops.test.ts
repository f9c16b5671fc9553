import { describe, expect, it } from 'vitest';
import { makeNode, type Graph } from '../src/core/graph.js';
import { Tensor } from '../src/core/tensor.js';
import { Session } from '../src/runtime/executor.js';

/** One node over fed inputs (nothing folds), returning its output. */
function run(op: string, inputs: Record<string, Tensor>): Tensor {
  const graph = {
    inputs: Object.entries(inputs).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })),
    outputs: [{ name: 'out', dtype: 'float32', shape: null }],
    initializers: new Map(),
    nodes: [makeNode(op, Object.keys(inputs), ['out'])],
    opset: 17,
  } as unknown as Graph;
  return new Session(graph, { threads: 1 }).run(inputs).out!;
}

describe('the attention mask\'s ops on their fast paths', () => {
  const cond = Tensor.from('bool', [1, 1, 3, 4], [1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1]);

  it('Where between two float32 scalars over a whole condition: each element chosen', () => {
    const out = run('Where', { c: cond, x: Tensor.from('float32', [], [0]), y: Tensor.from('float32', [1, 1], [-Infinity]) });
    expect(out.shape).toEqual([1, 1, 3, 4]);
    expect(out.toNumbers()).toEqual(cond.toNumbers().map((v) => (v ? 0 : -Infinity)));
  });

  it('Where with scalars but a condition that broadcasts still broadcasts it', () => {
    const row = Tensor.from('bool', [1, 4], [1, 0, 0, 1]);
    const out = run('Where', { c: row, x: Tensor.from('float32', [3, 1], [1, 2, 3]), y: Tensor.from('float32', [], [-1]) });
    expect(out.toNumbers()).toEqual([1, -1, -1, 1, 2, -1, -1, 2, 3, -1, -1, 3]);
  });

  it('Expand to the shape the input already has (leading 1s added) gives the input\'s values under the new shape', () => {
    const out = run('Expand', { x: cond, shape: Tensor.from('int64', [5], [1, 1, 1, 3, 4]) });
    expect(out.shape).toEqual([1, 1, 1, 3, 4]);
    expect(out.toNumbers()).toEqual(cond.toNumbers());
    const wider = run('Expand', { x: cond, shape: Tensor.from('int64', [4], [2, 1, 3, 4]) });
    expect(wider.toNumbers()).toEqual([...cond.toNumbers(), ...cond.toNumbers()]);
  });
});

describe('And, Or, Xor over bool bytes', () => {
  it('broadcast [1, 1, S, 1] with [1, 1, 1, S] (BERT\'s mask), same shapes and a scalar, each op\'s truth table', () => {
    const col = Tensor.from('bool', [1, 1, 3, 1], [1, 0, 1]);
    const row = Tensor.from('bool', [1, 1, 1, 4], [1, 1, 0, 1]);
    const outer = (f: (p: number, q: number) => number) => [1, 0, 1].flatMap((p) => [1, 1, 0, 1].map((q) => f(p, q)));
    const and = run('And', { a: col, b: row });
    expect(and.shape).toEqual([1, 1, 3, 4]);
    expect(and.toNumbers()).toEqual(outer((p, q) => p & q));
    expect(run('Or', { a: col, b: row }).toNumbers()).toEqual(outer((p, q) => p | q));
    expect(run('Xor', { a: row, b: col }).toNumbers()).toEqual(outer((p, q) => p ^ q));
    const p = Tensor.from('bool', [4], [0, 0, 1, 1]);
    const q = Tensor.from('bool', [4], [0, 1, 0, 1]);
    expect(run('And', { a: p, b: q }).toNumbers()).toEqual([0, 0, 0, 1]);
    expect(run('Or', { a: p, b: q }).toNumbers()).toEqual([0, 1, 1, 1]);
    expect(run('Xor', { a: p, b: q }).toNumbers()).toEqual([0, 1, 1, 0]);
    expect(run('And', { a: Tensor.from('bool', [], [1]), b: Tensor.from('bool', [], [1]) }).toNumbers()).toEqual([1]);
    expect(() => run('And', { a: Tensor.from('int32', [1], [1]), b: Tensor.from('int32', [1], [1]) })).toThrow(/bool/);
  });
});
