import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../src/core/errors.js';
import { attr, makeNode, opsUsed, outerReads, type Graph, type ValueInfo } from '../src/core/graph.js';
import { defaultSignature, type Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { saveModel } from '../src/api/load.js';
import { readOnnxModel, serializeOnnxModel } from '../src/formats/onnx/index.js';
import { Session } from '../src/runtime/executor.js';
import { tempDir } from './cli-helpers.js';

/**
 * Nested graphs in the IR: outer-scope reads, the executor's implicit inputs, opset conversion
 * keeping what only a nested graph reads, and the one-line refusals of formats that cannot hold a
 * subgraph. ONNX's own If/Loop/Scan node tests run in onnx-conformance.test.ts; real exports in
 * rnn.peer.test.ts.
 */
const f32 = (name: string, shape: ValueInfo['shape']): ValueInfo => ({ name, dtype: 'float32', shape });

/** y = x·scale^n (a Loop of n steps whose body reads the outer initializer `scale`), and the running values. */
function powerLoop(opset = 17): Graph {
  const body: Graph = {
    inputs: [{ name: 'i', dtype: 'int64', shape: [] }, { name: 'c_in', dtype: 'bool', shape: [] }, f32('v_in', [2])],
    outputs: [{ name: 'c_out', dtype: 'bool', shape: [] }, f32('v_out', [2]), f32('seen', [2])],
    initializers: new Map(),
    nodes: [makeNode('Identity', ['c_in'], ['c_out']), makeNode('Mul', ['v_in', 'scale'], ['v_out']), makeNode('Identity', ['v_out'], ['seen'])],
    opset,
    name: 'power_body',
  };
  return {
    inputs: [{ name: 'n', dtype: 'int64', shape: [] }, f32('x', [2])],
    outputs: [f32('y', [2]), f32('steps', [null, 2])],
    initializers: new Map([
      ['scale', Tensor.from('float32', [2], [2, 3])],
      ['go', Tensor.from('bool', [], [1])],
    ]),
    nodes: [makeNode('Loop', ['n', 'go', 'x'], ['y', 'steps'], { body: attr.graph(body) }, 'power')],
    opset,
  };
}

const model = (graph: Graph): Model => ({ format: 'onnx', weights: graph.initializers, graph, signatures: [defaultSignature(graph)], metadata: {} });
const feeds = { n: Tensor.from('int64', [], [3n]), x: Tensor.from('float32', [2], [1, -1]) };

describe('nested graphs', () => {
  const dir = tempDir('mb-control-flow-');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a Loop body reads an outer initializer; the executor hands it over as an implicit input', () => {
    const g = powerLoop();
    expect(outerReads((g.nodes[0]!.attributes['body'] as { value: Graph }).value)).toEqual(['scale']);
    expect(opsUsed(g)).toEqual(['Identity', 'Loop', 'Mul']);
    const out = new Session(g).run(feeds);
    expect(out['y']!.toNumbers()).toEqual([8, -27]);
    expect(out['steps']!.shape).toEqual([3, 2]);
    expect(out['steps']!.toNumbers()).toEqual([2, -3, 4, -9, 8, -27]);
  });

  it('ONNX keeps the nested graph, its name and the outer reads, at its own opset and converted', () => {
    for (const opset of [17, 13, 21]) {
      const back = readOnnxModel(serializeOnnxModel(model(powerLoop()), { opset }), 'loop.onnx');
      const body = back.graph!.nodes[0]!.attributes['body']!;
      expect(body.type).toBe('graph');
      if (body.type === 'graph') expect([body.value.name, body.value.opset, body.value.nodes.map((n) => n.op)]).toEqual(['power_body', opset, ['Identity', 'Mul', 'Identity']]);
      // `scale` is read only inside the body: conversion must not drop it as unreferenced.
      expect([...back.graph!.initializers.keys()].sort()).toEqual(['go', 'scale']);
      expect(new Session(back.graph!).run(feeds)['y']!.toNumbers()).toEqual([8, -27]);
    }
  });

  it('a value only a branch reads is not fused away (MatMul + Relu folding)', () => {
    const branch: Graph = { inputs: [], outputs: [f32('t', null)], initializers: new Map(), nodes: [makeNode('Identity', ['X'], ['t'])], opset: 17 };
    const g: Graph = {
      inputs: [f32('a', [2, 2]), { name: 'c', dtype: 'bool', shape: [] }],
      outputs: [f32('Y', null), f32('z', null)],
      initializers: new Map([['w', Tensor.from('float32', [2, 2], [1, -2, 3, -4])]]),
      nodes: [makeNode('MatMul', ['a', 'w'], ['X']), makeNode('Relu', ['X'], ['Y']), makeNode('If', ['c'], ['z'], { then_branch: attr.graph(branch), else_branch: attr.graph(branch) })],
      opset: 17,
    };
    const out = new Session(g).run({ a: Tensor.from('float32', [2, 2], [1, 1, 1, 1]), c: Tensor.from('bool', [], [1]) });
    expect([out['Y']!.toNumbers(), out['z']!.toNumbers()]).toEqual([[4, 0, 4, 0], [4, -6, 4, -6]]);
  });

  it('an unsupported op inside a nested graph is named like any other', () => {
    const g = powerLoop();
    const body = (g.nodes[0]!.attributes['body'] as { value: Graph }).value;
    const bad: Graph = { ...g, nodes: [{ ...g.nodes[0]!, attributes: { body: attr.graph({ ...body, nodes: [...body.nodes.slice(0, 2), makeNode('Frobnicate', ['v_out'], ['seen'], {}, 'deep')] }) } }] };
    expect(() => new Session(bad)).toThrow(/^unsupported op: Frobnicate \(node deep\)$/);
  });

  it('a body reading a value nothing provides is refused naming the nodes', () => {
    const g = powerLoop();
    const bad: Graph = { ...g, initializers: new Map([...g.initializers].filter(([k]) => k !== 'scale')) };
    expect(() => new Session(bad)).toThrow(/node power \(Loop\) reads scale, which no node, input or initializer provides/);
  });

  it('formats that cannot hold a subgraph refuse in one line naming the node', () => {
    const m = model(powerLoop());
    for (const [file, pattern] of [
      ['loop.safetensors', /^a bundle's module spec cannot hold node power \(Loop\): its attribute body is a nested graph; write ONNX instead$/],
      ['loop.pt', /^a bundle's module spec cannot hold node power \(Loop\)/],
      ['loop.pb', /^TensorFlow has no mapping here for op Loop \(node power\)$/],
    ] as const) {
      let error: unknown;
      try {
        saveModel(m, join(dir, file));
      } catch (e) {
        error = e;
      }
      expect(error, file).toBeInstanceOf(UsageError);
      expect((error as Error).message, file).toMatch(pattern);
      expect((error as Error).message).not.toContain('\n');
    }
  });
});
