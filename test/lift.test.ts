import { describe, expect, it } from 'vitest';
import { Runner } from '../src/api/run.js';
import { attr, makeNode, type Graph } from '../src/core/graph.js';
import { defaultSignature, type Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { bundleFromModel, modelFromBundle } from '../src/module/bundle.js';
import { liftModule } from '../src/module/lift.js';
import { OR_MODULE, trainOrGate } from '../src/train/or-gate.js';

const graphModel = (graph: Graph): Model => ({ format: 'memory', weights: graph.initializers, graph, signatures: [defaultSignature(graph)], metadata: {} });

describe('lifting a graph back to a torch.nn Sequential', () => {
  it('recovers the spec and the state dict the lowering started from', () => {
    const { model } = trainOrGate();
    const lifted = liftModule(model.graph!, model.signatures[0]!)!;
    expect(lifted.module).toEqual({ ...OR_MODULE, modules: OR_MODULE.modules!.map((m) => (m.type === 'Linear' ? { ...m } : m)) });
    for (const [name, t] of model.weights) expect(lifted.weights.get(name)).toBe(t);
  });

  it('turns a Keras-style MatMul + Add with a kernel [in, out] into Linear with the weight transposed', () => {
    const kernel = Tensor.from('float32', [3, 2], [1, 2, 3, 4, 5, 6]); // [in=3, out=2]
    const graph: Graph = {
      inputs: [{ name: 'dense_input', dtype: 'float32', shape: [null, 3] }],
      outputs: [{ name: 'probs', dtype: 'float32', shape: [null, 2] }],
      initializers: new Map([
        ['dense/kernel', kernel],
        ['dense/bias', Tensor.from('float32', [2], [0.5, -0.5])],
      ]),
      nodes: [
        makeNode('MatMul', ['dense_input', 'dense/kernel'], ['mm']),
        makeNode('Add', ['mm', 'dense/bias'], ['logits']),
        makeNode('Softmax', ['logits'], ['probs'], { axis: attr.int(-1) }),
      ],
      opset: 17,
    };
    const model = graphModel(graph);
    const bundle = bundleFromModel(model);
    expect(JSON.parse(bundle.metadata['modelbridge.module']!)).toEqual({
      type: 'Sequential',
      modules: [{ type: 'Linear', in_features: 3, out_features: 2, bias: true }, { type: 'Softmax', dim: -1 }],
    });
    expect(Array.from(bundle.tensors.get('0.weight')!.toFloat32())).toEqual([1, 3, 5, 2, 4, 6]);
    const x = Tensor.from('float32', [2, 3], [1, 0, -1, 0.5, 2, 1]);
    const before = new Runner(model).run({ dense_input: x })['probs']!;
    const after = new Runner(modelFromBundle(bundle, 'safetensors', 'lifted')).run({ dense_input: x })['probs']!;
    expect(Array.from(after.toFloat32())).toEqual(Array.from(before.toFloat32()));
  });

  it('leaves branching graphs to the general Graph form', () => {
    const w = Tensor.from('float32', [2, 2], [1, 0, 0, 1]);
    const graph: Graph = {
      inputs: [{ name: 'x', dtype: 'float32', shape: [null, 2] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [null, 2] }],
      initializers: new Map([['w', w]]),
      nodes: [makeNode('MatMul', ['x', 'w'], ['h']), makeNode('Add', ['h', 'x'], ['y'])],
      opset: 17,
    };
    expect(liftModule(graph, defaultSignature(graph))).toBeUndefined();
    expect(JSON.parse(bundleFromModel(graphModel(graph)).metadata['modelbridge.module']!).type).toBe('Graph');
  });
});
