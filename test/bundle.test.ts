import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, saveModel } from '../src/api/load.js';
import { Runner } from '../src/api/run.js';
import { FormatError } from '../src/core/errors.js';
import { attr, makeNode, type Graph } from '../src/core/graph.js';
import { defaultSignature, type Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { modelFromBundle } from '../src/module/bundle.js';
import { OR_MODULE, trainOrGate } from '../src/train/or-gate.js';
import { tempDir } from './cli-helpers.js';

function twoInputGraph(): Graph {
  // Not a stack of modules: two inputs, a constant from a tensor attribute, a residual sum.
  const w = Tensor.from('float32', [3, 2], [1, -2, 0.5, 4, -1, 3]);
  const nodes = [
    makeNode('Constant', [], ['k'], { value: attr.tensor(Tensor.from('float32', [2], [0.25, -0.75])) }),
    makeNode('MatMul', ['a', 'w'], ['aw']),
    makeNode('Add', ['aw', 'b'], ['sum']),
    makeNode('Mul', ['sum', 'k'], ['scaled']),
    makeNode('Concat', ['scaled', 'b'], ['out'], { axis: attr.int(1) }),
  ];
  return {
    inputs: [
      { name: 'a', dtype: 'float32', shape: ['batch', 3] },
      { name: 'b', dtype: 'float32', shape: ['batch', 2] },
    ],
    outputs: [{ name: 'out', dtype: 'float32', shape: ['batch', 4] }],
    initializers: new Map([['w', w]]),
    nodes,
    opset: 17,
  };
}

describe('bundles', () => {
  it('store a graph that is no module stack in the general Graph form, which runs identically', () => {
    const graph = twoInputGraph();
    const model: Model = { format: 'memory', weights: graph.initializers, graph, signatures: [defaultSignature(graph)], metadata: {} };
    const feeds = { a: Tensor.from('float32', [2, 3], [1, 2, 3, -1, 0.5, 2]), b: Tensor.from('float32', [2, 2], [0.5, 1, -3, 2]) };
    const before = new Runner(model).run(feeds)['out']!;
    const file = join(tempDir(), 'graph.safetensors');
    saveModel(model, file);
    const reloaded = loadModel(file);
    expect(reloaded.graph!.nodes.map((n) => n.op)).toEqual(['Constant', 'MatMul', 'Add', 'Mul', 'Concat']);
    const after = new Runner(reloaded).run(feeds)['out']!;
    expect(after.shape).toEqual([2, 4]);
    expect(Array.from(after.toFloat32())).toEqual(Array.from(before.toFloat32()));
    expect(Array.from(after.toFloat32().subarray(0, 4))).toEqual([(1 + 1 - 3 + 0.5) * 0.25, (-2 + 8 + 9 + 1) * -0.75, 0.5, 1]);
  });

  it('write the module spec, and reading gives the same spec, weights bit for bit and the same graph', () => {
    const { model } = trainOrGate({ seed: 5 });
    const file = join(tempDir(), 'or.safetensors');
    saveModel(model, file);
    const back = loadModel(file);
    expect(back.module).toEqual(OR_MODULE);
    expect([...back.weights.keys()].sort()).toEqual(['0.bias', '0.weight', '2.bias', '2.weight']);
    for (const [name, t] of model.weights) expect(Buffer.compare(back.weights.get(name)!.bytes(), t.bytes())).toBe(0);
    expect(back.graph!.nodes).toEqual(model.graph!.nodes);
  });

  const weights = trainOrGate().model.weights;
  const fromSpec = (spec: unknown, tensors = weights) =>
    modelFromBundle({ tensors, metadata: { 'modelbridge.module': JSON.stringify(spec) } }, 'safetensors', 'm.safetensors');
  const rejects = (spec: unknown, pattern: RegExp, tensors = weights) => {
    let error: unknown;
    try {
      fromSpec(spec, tensors);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FormatError);
    expect(String((error as Error).message)).toMatch(pattern);
  };

  it('reject a spec that does not fit the state dict, naming the tensor or module', () => {
    rejects({ type: 'Sequential', modules: [{ type: 'Linear', in_features: 2, out_features: 2 }] }, /tensor 2\.(weight|bias).*not used/);
    rejects({ type: 'Sequential', modules: [{ type: 'Linear', in_features: 2, out_features: 3 }, { type: 'Sigmoid' }, { type: 'Linear', in_features: 2, out_features: 1 }] }, /tensor 0\.weight.*shape \[3, 2\]/);
    rejects({ type: 'Sequential', modules: [{ type: 'Conv3d' }] }, /unknown module type "Conv3d"/);
    rejects({ type: 'Sequential', modules: [{ type: 'Linear', in_features: 'two', out_features: 2 }] }, /module spec at 0.*in_features must be an integer/);
    rejects({ type: 'Sequential' }, /needs a "modules" list/);
    rejects({ type: 'Graph', opset: 17, inputs: [], outputs: [], nodes: [{ op: 'Relu' }] }, /nodes\[0\]/);
    rejects({ type: 'Graph', opset: 17, inputs: [], outputs: [], nodes: [{ op: 'Constant', name: 'c', inputs: [], outputs: ['c'], attributes: { value: { tensor: 'nope' } } }] }, /a tensor stored in the bundle/);
  });

  it('lower Linear on rank-3 input to MatMul + Add (Gemm is 2-D only)', () => {
    const model = modelFromBundle(
      {
        tensors: new Map([
          ['weight', Tensor.from('float32', [2, 3], [1, 0, 0, 0, 1, 1])],
          ['bias', Tensor.from('float32', [2], [10, 20])],
        ]),
        metadata: {
          'modelbridge.module': JSON.stringify({ type: 'Linear', in_features: 3, out_features: 2 }),
          'modelbridge.signature': JSON.stringify({ inputs: [{ name: 'x', dtype: 'float32', shape: [-1, -1, 3] }], outputs: [{ name: 'y', dtype: 'float32', shape: [-1, -1, 2] }] }),
        },
      },
      'safetensors',
      'linear.safetensors',
    );
    const y = new Runner(model).run({ x: Tensor.from('float32', [1, 2, 3], [1, 2, 3, 4, 5, 6]) })['y']!;
    expect(y.shape).toEqual([1, 2, 2]);
    expect(Array.from(y.toFloat32())).toEqual([11, 25, 14, 31]);
  });
});
