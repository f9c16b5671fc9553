import { describe, expect, it } from 'vitest';
import { nameEndpoints } from '../src/core/endpoints.js';
import { makeNode, type Graph } from '../src/core/graph.js';
import { Tensor } from '../src/core/tensor.js';
import { Session } from '../src/runtime/executor.js';

/**
 * nameEndpoints (the SavedModel reader's naming of a graph's inputs and outputs after the
 * signature's keys) in the cases a signature can make awkward: a key that is already an internal
 * value's name, an output that is an input, one value under two keys, a key that is a weight's
 * name. Whatever it renames, the graph computes the same values under the new names.
 */

const x = Tensor.from('float32', [2], [1, -2]);
const w = Tensor.from('float32', [2], [0.5, 3]);

/** in:0 -> Mul(w) -> "Call:0" -> Relu -> "Call:1"; an internal value named "relu" feeds nothing. */
function graph(): Graph {
  return {
    inputs: [{ name: 'serving_x:0', dtype: 'float32', shape: [2] }],
    outputs: [
      { name: 'Call:0', dtype: 'float32', shape: [2] },
      { name: 'Call:1', dtype: 'float32', shape: [2] },
    ],
    initializers: new Map([['w', w]]),
    nodes: [makeNode('Mul', ['serving_x:0', 'w'], ['Call:0']), makeNode('Relu', ['Call:0'], ['Call:1']), makeNode('Neg', ['Call:0'], ['relu'])],
    opset: 17,
  };
}

function run(g: Graph, input: string): Record<string, number[]> {
  const out = new Session(g).run({ [input]: x });
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.toNumbers()]));
}

describe('nameEndpoints', () => {
  it('renames inputs and outputs to the keys, moving an internal value called like a key aside', () => {
    const named = nameEndpoints(graph(), [['serving_x:0', 'x']], [
      ['Call:0', 'scaled'],
      ['Call:1', 'relu'],
    ]);
    expect(named.inputs).toEqual(['x']);
    expect(named.outputs).toEqual(['scaled', 'relu']);
    expect(named.graph.inputs.map((i) => i.name)).toEqual(['x']);
    expect(named.graph.outputs.map((o) => o.name)).toEqual(['scaled', 'relu']);
    const values = new Set(named.graph.nodes.flatMap((n) => n.outputs));
    expect(values.size).toBe(3);
    expect(run(named.graph, 'x')).toEqual({ scaled: [0.5, -6], relu: [0.5, 0] });
  });

  it('an output that is an input, and one value under two keys, get Identity nodes', () => {
    const named = nameEndpoints(graph(), [['serving_x:0', 'x']], [
      ['serving_x:0', 'echo'],
      ['Call:1', 'a'],
      ['Call:1', 'b'],
    ]);
    expect(named.outputs).toEqual(['echo', 'a', 'b']);
    expect(named.graph.nodes.filter((n) => n.op === 'Identity').map((n) => n.outputs[0])).toEqual(['echo', 'a', 'b']);
    expect(named.graph.outputs.map((o) => o.name)).toEqual(['echo', 'a', 'b']);
    expect(run(named.graph, 'x')).toEqual({ echo: [1, -2], a: [0.5, 0], b: [0.5, 0] });
  });

  it('a key that is a weight\'s name leaves that endpoint as it was (weights keep their names)', () => {
    const named = nameEndpoints(graph(), [['serving_x:0', 'x']], [
      ['Call:0', 'w'],
      ['Call:1', 'y'],
    ]);
    expect(named.outputs).toEqual(['Call:0', 'y']);
    expect([...named.graph.initializers.keys()]).toEqual(['w']);
    expect(run(named.graph, 'x')).toEqual({ 'Call:0': [0.5, -6], y: [0.5, 0] });
  });

  it('keys that are already the names change nothing', () => {
    const g = graph();
    const named = nameEndpoints(g, [['serving_x:0', 'serving_x:0']], [
      ['Call:0', 'Call:0'],
      ['Call:1', 'Call:1'],
    ]);
    expect(named.graph).toBe(g);
  });
});
