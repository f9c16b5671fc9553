import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadModel, saveModel } from '../src/api/load.js';
import { runModel } from '../src/api/run.js';
import { makeNode, type Graph } from '../src/core/graph.js';
import { defaultSignature, type Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { Session } from '../src/runtime/executor.js';
import { tempDir } from './cli-helpers.js';

/**
 * The TF export runs the graph to learn what static inference cannot tell: a size of 1 may be
 * inference's reading of an unknown one, so it runs the graph with unknown sizes set to 2 and to
 * 3 and keeps a size both runs agree on. With every input size fixed the two runs are the same
 * run; a model's whole forward pass is not spent twice on it.
 */
function convTransposeModel(input: (number | string)[]): Model {
  const w = Tensor.from('float32', [3, 2, 2, 2], Array.from({ length: 24 }, (_, i) => (i % 7) * 0.25 - 0.5));
  const graph: Graph = {
    inputs: [{ name: 'x', dtype: 'float32', shape: input }],
    outputs: [{ name: 'y', dtype: 'float32', shape: null }],
    initializers: new Map([['w', w]]),
    // an image of height 1: the static size the export looks for is a 1
    nodes: [makeNode('ConvTranspose', ['x', 'w'], ['y'], { strides: { type: 'ints', value: [2, 2] } })],
    opset: 17,
  };
  return { format: 'onnx', weights: new Map([['w', w]]), graph, signatures: [defaultSignature(graph)], metadata: {} };
}

describe('the TF export learning sizes by running the graph', () => {
  afterEach(() => vi.restoreAllMocks());

  it('runs a graph whose input sizes are all fixed once, and one with an open size twice; both export what the source computes', () => {
    const dir = tempDir();
    const x = Tensor.from('float32', [1, 3, 1, 5], Array.from({ length: 15 }, (_, i) => i * 0.1 - 0.7));
    for (const [input, runs] of [[[1, 3, 1, 5], 1], [['batch', 3, 1, 5], 2]] as const) {
      const model = convTransposeModel([...input]);
      const spy = vi.spyOn(Session.prototype, 'run');
      const out = join(dir, `web-${runs}`);
      saveModel(model, out, { format: 'tfjs' });
      expect(spy.mock.calls.length, `input ${JSON.stringify(input)}`).toBe(runs);
      spy.mockRestore();
      const want = runModel(model, { x }).y!.toFloat32();
      const got = runModel(loadModel(out), { x }).y!.toFloat32();
      expect([...got]).toEqual([...want]);
    }
  });
});
