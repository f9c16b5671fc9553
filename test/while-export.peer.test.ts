import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertModel, loadModel, saveModel } from '../src/api/load.js';
import { opsUsed, type Graph, type Node } from '../src/core/graph.js';
import { Tensor } from '../src/core/tensor.js';
import { readOnnxModel } from '../src/formats/onnx/index.js';
import { liftRecurrentLoops } from '../src/formats/onnx/lift-loop.js';
import { Session } from '../src/runtime/executor.js';
import { tempDir } from './cli-helpers.js';
import { loadInTfjs, tf } from './fixtures/tfjs/peer.js';
import { peerPython, runPeerScript } from './peers.js';

/**
 * Recurrent models over a sequence length the graph leaves open, to TensorFlow (issue 11), against
 * the real frameworks. python/while_peers.py builds torch.nn.LSTM and GRU bundles (2 layers,
 * bidirectional, batch_first, random weights) with torch's outputs at two lengths, and a Keras 3
 * GRU that tf2onnx leaves as a Loop of the cell. The written GraphDef and SavedModel hold While
 * loops and TensorFlow runs the same file at both lengths with torch's outputs; modelbridge reads
 * them back (verification). tf2onnx's Loop is lifted to one GRU node, and only that Loop.
 */
const python = peerPython();

let dir = '';

interface TfCheck {
  readonly errors: Record<string, number>;
  readonly loops: number;
  readonly functions: string[];
}

/** Runs written files in TensorFlow (one Python process) on the reference inputs in `refs`. */
function runInTf(refs: string, files: readonly (readonly ['savedmodel' | 'graphdef', string])[]): TfCheck[] {
  const r = runPeerScript('while_peers.py', ['check', refs, ...files.flat()], { timeoutMs: 120_000 });
  expect(r.status, r.stderr.slice(-2000)).toBe(0);
  return r.stdout.trim().split('\n').slice(-files.length).map((line) => JSON.parse(line) as TfCheck);
}

/** The graph with one node of the Loop's body changed by `edit`. */
function editBody(graph: Graph, edit: (n: Node) => Node): Graph {
  return {
    ...graph,
    nodes: graph.nodes.map((n) => {
      const body = n.attributes['body'];
      if (n.op !== 'Loop' || body?.type !== 'graph') return n;
      return { ...n, attributes: { ...n.attributes, body: { type: 'graph', value: { ...body.value, nodes: body.value.nodes.map(edit) } } } };
    }),
  };
}

describe.skipIf(!python)('LSTM/GRU over an open sequence length to TensorFlow, and tf2onnx\'s GRU Loop', () => {
  beforeAll(() => {
    dir = tempDir('mb-while-peers-');
    const r = runPeerScript('while_peers.py', ['build', dir], { timeoutMs: 300_000 });
    if (r.status !== 0) throw new Error(`python/while_peers.py build failed: ${r.stderr.slice(-2000)}`);
  }, 320_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const kind of ['lstm', 'gru'] as const) {
    it(`torch ${kind.toUpperCase()} (dynamic length) -> GraphDef and SavedModel: While loops TensorFlow runs at lengths 3 and 7 with torch's outputs`, () => {
      const src = join(dir, `torch-${kind}`, 'bundle.safetensors');
      const refs = join(dir, `torch-${kind}`);
      const files = [['graphdef', join(dir, `${kind}.pb`)], ['savedmodel', join(dir, `${kind}-saved`)]] as const;
      for (const [target, out] of files) {
        // Verification reads the written file back (the While loops as LSTM/GRU nodes) and runs it.
        const result = convertModel(src, out, { to: target, force: true, verify: true });
        expect(result.verification?.outputs.compared).toBe(true);
        expect(result.verification?.outputs.maxAbs).toBeLessThan(1e-5);
        const back = loadModel(out, { format: target });
        expect(opsUsed(back.graph!)).toContain(kind.toUpperCase());
      }
      for (const [k, tf] of runInTf(refs, files).entries()) {
        // 2 layers x 2 directions (the two layers' loops share functions: a body and a cond per direction).
        expect(tf.loops, files[k]![0]).toBe(4);
        expect(tf.functions).toHaveLength(4);
        expect(Object.keys(tf.errors).sort()).toEqual(['3', '7']);
        for (const [length, error] of Object.entries(tf.errors)) expect(error, `${files[k]![0]}, length ${length}`).toBeLessThan(1e-4);
      }
    });

    it(`torch ${kind.toUpperCase()} (dynamic length) -> TF.js: loadGraphModel's executeAsync runs the While loops at lengths 3 and 7 with torch's outputs`, async () => {
      const out = join(dir, `${kind}-tfjs`);
      const result = convertModel(join(dir, `torch-${kind}`, 'bundle.safetensors'), out, { to: 'tfjs', force: true, verify: true });
      expect(result.verification?.outputs.compared).toBe(true);
      const json = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')) as { modelTopology: { library: { function?: unknown[] } } };
      expect(json.modelTopology.library.function).toHaveLength(4);
      const model = await loadInTfjs(join(out, 'model.json'));
      for (const length of [3, 7]) {
        const [x, ...want] = JSON.parse(readFileSync(join(dir, `torch-${kind}`, `ref-${length}.json`), 'utf8')) as { shape: number[]; values: number[] }[];
        const feed = tf.tensor(x!.values, x!.shape, 'float32');
        const got = (await model.executeAsync({ [model.inputs[0]!.name]: feed }, model.outputs.map((o) => o.name))) as import('@tensorflow/tfjs-core').Tensor[];
        // Each reference output against the written output of its shape that matches it best.
        const left = await Promise.all(got.map(async (t) => ({ shape: t.shape, values: await t.data() })));
        for (const w of want) {
          const errors = left.map((g) => (g.shape.join() !== w.shape.join() ? Infinity : Math.max(...w.values.map((v, i) => Math.abs(g.values[i]! - v) / Math.max(1, Math.abs(v))))));
          const best = errors.indexOf(Math.min(...errors));
          expect(errors[best], `length ${length}, output [${w.shape.join(', ')}]`).toBeLessThan(1e-4);
          left.splice(best, 1);
        }
        tf.dispose([feed, ...got]);
      }
    });
  }

  it('tf2onnx\'s Loop of a Keras 3 GRU cell is lifted to one GRU node matching the Loop, and written to GraphDef that TensorFlow runs with Keras\'s outputs', () => {
    const file = join(dir, 'keras-gru', 'model.onnx');
    const graph = readOnnxModel(readFileSync(file), file).graph!;
    expect(opsUsed(graph)).toContain('Loop');
    const lifted = liftRecurrentLoops(graph);
    expect(lifted).not.toBe(graph);
    expect(lifted.nodes.map((n) => n.op)).toContain('GRU');
    expect(lifted.nodes.map((n) => n.op)).not.toContain('Loop');
    const gru = lifted.nodes.find((n) => n.op === 'GRU')!;
    expect(gru.attributes['linear_before_reset']).toEqual({ type: 'int', value: 1 });

    // The written GraphDef gives Keras's output in TensorFlow; both graphs agree in the runtime.
    const out = join(dir, 'keras-gru.pb');
    convertModel(file, out, { force: true, verify: true });
    const [tf] = runInTf(join(dir, 'keras-gru'), [['graphdef', out]]);
    expect(tf!.errors['5']).toBeLessThan(1e-4);
    expect(tf!.loops).toBe(0); // a fixed length: unrolled
    const feeds = { [graph.inputs[0]!.name]: Tensor.from('float32', [2, 5, 4], Float32Array.from({ length: 40 }, (_, i) => Math.sin(i))) };
    const a = new Session(graph).run(feeds);
    const b = new Session(lifted).run(feeds);
    const name = graph.outputs[0]!.name;
    const [x, y] = [a[name]!.toFloat32(), b[name]!.toFloat32()];
    expect(y.length).toBe(x.length);
    for (let i = 0; i < x.length; i++) expect(Math.abs(x[i]! - y[i]!)).toBeLessThan(1e-5);
  });

  it('a Loop that is not exactly the cell stays a Loop: other math fails the runtime check, other ops the structure', () => {
    const file = join(dir, 'keras-gru', 'model.onnx');
    const graph = readOnnxModel(readFileSync(file), file).graph!;
    // z ⊙ h + (1 − z) ⊙ ĥ with the roles of h and ĥ swapped: the structure of a GRU, other values.
    const swapped = editBody(graph, (n) => (n.op === 'Sub' && n.inputs.length === 2 ? { ...n, inputs: [n.inputs[1]!, n.inputs[0]!] } : n));
    expect(liftRecurrentLoops(swapped)).toBe(swapped);
    const relu = editBody(graph, (n) => (n.op === 'Tanh' ? { ...n, op: 'Relu' } : n));
    expect(liftRecurrentLoops(relu)).toBe(relu);
    // Written to TF, such a graph is refused naming the Loop, as before.
    const model = loadModel(file);
    expect(() => saveModel({ ...model, graph: relu }, join(dir, 'relu.pb'), { force: true })).toThrow(/no mapping here for op Loop/);
  });
});
