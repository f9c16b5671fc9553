import { describe, expect, it } from 'vitest';
import { attr, makeNode, type Graph, type Node } from '../src/core/graph.js';
import { Tensor } from '../src/core/tensor.js';
import { Session } from '../src/runtime/executor.js';

const stepsOf = (s: Session): readonly { node: Node }[] => (s as unknown as { steps: { node: Node }[] }).steps;

/**
 * BERT's embedding ids in small: position ids from a constant, expanded to the input's batch by a
 * shape computed from constants (ConstantOfShape, Mul, Equal, Where), gathered from a table, and
 * added to the input. Everything but the final Add depends on constants only.
 */
function embeddingGraph(constantsAsInputs: boolean): Graph {
  const ids = Tensor.from('int64', [1, 6], [0, 1, 2, 3, 4, 5]);
  const table = Tensor.from('float32', [6, 4], Array.from({ length: 24 }, (_, i) => i / 7 - 1));
  const nodes: Node[] = [
    makeNode('Constant', [], ['two'], { value: attr.tensor(Tensor.from('int64', [1], [2])) }),
    makeNode('ConstantOfShape', ['two'], ['ones'], { value: attr.tensor(Tensor.from('int64', [1], [1])) }),
    makeNode('Constant', [], ['minus'], { value: attr.tensor(Tensor.from('int64', [], [-1])) }),
    makeNode('Mul', ['ones', 'minus'], ['neg']),
    makeNode('Constant', [], ['want'], { value: attr.tensor(Tensor.from('int64', [2], [3, -1])) }),
    makeNode('Equal', ['want', 'neg'], ['isMinus']),
    makeNode('Where', ['isMinus', 'ones', 'want'], ['shape']),
    makeNode('Expand', ['ids', 'shape'], ['expanded']),
    makeNode('Gather', ['table', 'expanded'], ['rows']),
    makeNode('Add', ['x', 'rows'], ['out']),
  ];
  return {
    inputs: [{ name: 'x', dtype: 'float32', shape: [3, 6, 4] }, ...(constantsAsInputs ? [{ name: 'ids', dtype: 'int64', shape: [1, 6] }] : [])],
    outputs: [{ name: 'out', dtype: 'float32', shape: null }, { name: 'shape', dtype: 'int64', shape: null }],
    initializers: new Map(constantsAsInputs ? [['table', table]] : [['ids', ids], ['table', table]]),
    nodes,
    opset: 17,
  } as unknown as Graph;
}

describe('constant folding when a session is made', () => {
  const x = Tensor.from('float32', [3, 6, 4], Array.from({ length: 72 }, (_, i) => Math.sin(i)));

  it('computes the steps that read only constants once, leaving the input-dependent ones; the results are the unfolded graph\'s, run after run', () => {
    const folded = new Session(embeddingGraph(false), { threads: 1 });
    // everything up to the Gather is folded: only the Add reads the input
    expect(stepsOf(folded).map((s) => s.node.op)).toEqual(['Add']);
    const unfolded = new Session(embeddingGraph(true), { threads: 1 });
    // (its shape arithmetic still folds: only what reads the ids input stays)
    expect(stepsOf(unfolded).map((s) => s.node.op)).toEqual(['Expand', 'Gather', 'Add']);
    const ids = Tensor.from('int64', [1, 6], [0, 1, 2, 3, 4, 5]);
    const want = unfolded.run({ x, ids });
    for (let run = 0; run < 3; run++) {
      const got = folded.run({ x });
      expect(got.out!.toFloat32()).toEqual(want.out!.toFloat32());
      // a folded value that is a graph output is there on every run
      expect(got.shape!.toNumbers()).toEqual([3, 1]);
    }
  });

  it('leaves a step whose kernel fails on its constants, so the run reports it by node as before', () => {
    const graph = {
      inputs: [{ name: 'x', dtype: 'float32', shape: [2] }],
      outputs: [{ name: 'out', dtype: 'float32', shape: null }],
      initializers: new Map([['a', Tensor.from('float32', [3], [1, 2, 3])], ['b', Tensor.from('float32', [2], [1, 2])]]),
      nodes: [makeNode('Add', ['a', 'b'], ['bad'], {}, 'bad_add'), makeNode('Add', ['x', 'bad'], ['out'])],
      opset: 17,
    } as unknown as Graph;
    const session = new Session(graph);
    expect(stepsOf(session).length).toBe(2);
    expect(() => session.run({ x: Tensor.from('float32', [2], [0, 0]) })).toThrow(/bad_add/);
  });

  it('does not fold Dropout (training_mode draws random numbers)', () => {
    const graph = {
      inputs: [],
      outputs: [{ name: 'out', dtype: 'float32', shape: null }],
      initializers: new Map([['a', Tensor.from('float32', [3], [1, 2, 3])]]),
      nodes: [makeNode('Dropout', ['a'], ['out'])],
      opset: 17,
    } as unknown as Graph;
    const session = new Session(graph);
    expect(stepsOf(session).map((s) => s.node.op)).toEqual(['Dropout']);
    expect(session.run({}).out!.toNumbers()).toEqual([1, 2, 3]);
  });
});

describe('a session that reports every value it computes (observe)', () => {
  it('names each value with its shape once, folded constants included, unfused, and computes the same outputs', () => {
    const g = embeddingGraph(false);
    // MatMul + Add + Relu would be one fused step; observed, each keeps its name.
    const w = Tensor.from('float32', [4, 4], Array.from({ length: 16 }, (_, i) => (i % 5) / 3 - 0.5));
    const b = Tensor.from('float32', [4], [0.1, -0.2, 0.3, -0.4]);
    const graph: Graph = {
      ...g,
      initializers: new Map([...g.initializers, ['w', w], ['b', b]]),
      nodes: [...g.nodes, makeNode('MatMul', ['out', 'w'], ['p']), makeNode('Add', ['p', 'b'], ['q']), makeNode('Relu', ['q'], ['y'])],
      outputs: [{ name: 'y', dtype: 'float32', shape: null }],
    };
    const x = Tensor.from('float32', [3, 6, 4], Array.from({ length: 72 }, (_, i) => Math.cos(i)));
    const seen = new Map<string, readonly number[]>();
    const counts = new Map<string, number>();
    const observed = new Session(graph, {
      observe: (name, shape) => {
        seen.set(name, shape);
        counts.set(name, (counts.get(name) ?? 0) + 1);
      },
    });
    const folded = [...seen.keys()];
    // The steps on constants ran when the session was made, and were reported then.
    expect(folded).toEqual(expect.arrayContaining(['two', 'ones', 'shape', 'expanded', 'rows']));
    expect(folded).not.toContain('out');
    const y = observed.run({ x }).y!;
    const every = graph.nodes.flatMap((n) => n.outputs);
    expect([...seen.keys()].sort()).toEqual([...every].sort());
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    expect(seen.get('p')).toEqual([3, 6, 4]);
    expect(seen.get('shape')).toEqual([2]);
    expect(y.toFloat32()).toEqual(new Session(graph).run({ x }).y!.toFloat32());
  });
});
