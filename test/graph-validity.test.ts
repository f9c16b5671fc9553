import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeNode, type Graph, type Node } from '../src/core/graph.js';
import { defaultSignature, type Model } from '../src/core/model.js';
import { orderGraph } from '../src/core/graph-order.js';
import { serializeOnnxModel } from '../src/formats/onnx/writer.js';
import { cli, tempDir } from './cli-helpers.js';

/** A float32 [1, 2] -> [1, 2] graph of the given nodes, written as ONNX without any checks. */
function onnxFile(dir: string, name: string, nodes: Node[], outputs = ['y']): string {
  const graph: Graph = {
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 2] }],
    outputs: outputs.map((o) => ({ name: o, dtype: 'float32', shape: [1, 2] })),
    initializers: new Map(),
    nodes,
    opset: 17,
  };
  const model: Model = { format: 'onnx', weights: new Map(), graph, signatures: [defaultSignature(graph)], metadata: {} };
  const file = join(dir, name);
  writeFileSync(file, serializeOnnxModel(model));
  return file;
}

describe('graph validity: broken graphs (cycles, dangling reads, values written twice, element types that clash) are refused at read time with one line naming the node', () => {
  const dir = tempDir();
  const cases: [string, Node[], string[], RegExp][] = [
    ['cycle', [makeNode('Relu', ['x'], ['a'], {}, 'first'), makeNode('Add', ['a', 'c'], ['b'], {}, 'loop_add'), makeNode('Relu', ['b'], ['c'], {}, 'loop_relu'), makeNode('Identity', ['b'], ['y'], {}, 'out')], ['y'],
      /node loop_\w+ \((Add|Relu)\): a well-formed graph, but it is part of a cycle through [bc]$/],
    ['dangling', [makeNode('Add', ['x', 'ghost'], ['y'], {}, 'adder')], ['y'], /node adder \(Add\): a well-formed graph, but it reads ghost, which no node, input or initializer provides$/],
    ['duplicate', [makeNode('Relu', ['x'], ['y'], {}, 'one'), makeNode('Sigmoid', ['x'], ['y'], {}, 'two')], ['y'], /node two \(Sigmoid\): a well-formed graph, but it writes y, which is already defined$/],
    ['shadow', [makeNode('Relu', ['x'], ['x'], {}, 'overwrites_input'), makeNode('Identity', ['x'], ['y'])], ['y'], /node overwrites_input \(Relu\): .* writes x, which is already defined$/],
    ['unproduced', [makeNode('Relu', ['x'], ['y'], {}, 'r')], ['y', 'z'], /node graph output z \(output\): a well-formed graph, but it is produced by no node, input or initializer$/],
    // Element types known from the graph: a Shape is int64, an Add of it takes one type.
    ['mixed types', [makeNode('Shape', ['x'], ['s'], {}, 'dims'), makeNode('Relu', ['x'], ['r'], {}, 'act'), makeNode('Add', ['r', 's'], ['y'], {}, 'mixer')], ['y'],
      /node mixer \(Add\): inputs of one element type, but r is float32 and s is int64$/],
    ['mixed comparison', [makeNode('Shape', ['x'], ['s'], {}, 'dims'), makeNode('Less', ['x', 's'], ['b'], {}, 'cmp'), makeNode('Identity', ['b'], ['y'])], ['y'],
      /node cmp \(Less\): inputs of one element type, but x is float32 and s is int64$/],
  ];
  for (const [name, nodes, outputs, message] of cases) {
    it(`${name}: inspect, run and convert refuse it (exit 2), and write nothing`, () => {
      const file = onnxFile(dir, `${name}.onnx`, nodes, outputs);
      for (const args of [['inspect', file], ['run', file, '--input', '[[1,2]]'], ['convert', file, join(dir, `${name}.safetensors`), '--no-verify']]) {
        const r = cli(args);
        expect(r.code, r.stderr).toBe(2);
        const lines = r.stderr.trimEnd().split('\n');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(message);
      }
      expect(cli(['inspect', join(dir, `${name}.safetensors`)]).code).not.toBe(0);
    });
  }

  it('orders a well-formed graph whose nodes are out of order', () => {
    const graph: Graph = {
      inputs: [{ name: 'x', dtype: 'float32', shape: [1] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [1] }],
      initializers: new Map(),
      nodes: [makeNode('Relu', ['a'], ['y'], {}, 'second'), makeNode('Neg', ['x'], ['a'], {}, 'first')],
      opset: 17,
    };
    const ordered = orderGraph(graph);
    expect('nodes' in ordered && ordered.nodes.map((n) => n.name)).toEqual(['first', 'second']);
  });
});
