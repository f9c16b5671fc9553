import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { orBatch } from '../src/api/demo.js';
import { compareWeights } from '../src/api/diff.js';
import { convertModel, loadModel } from '../src/api/load.js';
import { Runner } from '../src/api/run.js';
import type { Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { readSavedModel, writeSavedModel } from '../src/formats/savedmodel/index.js';
import { trainOrGate } from '../src/train/or-gate.js';
import { feedsJson, fromJson, maxDiff, relDiff, sampleInput, tfBatch, type JsonTensor, type TfRequest } from './fixtures/tf/peer.js';
import { FIXTURES } from './cli-helpers.js';
import { flatten, nestedShape, peerMakeZoo, peerPredict, peerPython, readZooCase, type ZooEntry } from './peers.js';

/**
 * SavedModels against real TensorFlow (and PyTorch) from the peers' venv: what modelbridge writes
 * loads in tf.saved_model.load and serves the runtime's outputs, saved_model_cli lists it, its
 * variables train; what TensorFlow writes (and the fixtures without documented outputs) modelbridge
 * runs to TensorFlow's outputs. TensorFlow takes seconds to start, so every request goes to one
 * tf_peer.py process in beforeAll and the tests check its answers.
 */

const python = peerPython();

interface Written {
  readonly name: string;
  readonly model: Model;
  readonly dir: string;
  readonly inputs: Record<string, Tensor>;
  /** The source framework's own outputs, when it has them (PyTorch for the zoo bundles). */
  readonly expected?: Tensor;
}

interface TrainStep {
  variables: { name: string; shape: number[]; dtype: string; trainable: boolean }[];
  gradients: boolean[];
  before: Record<string, JsonTensor>;
  after: Record<string, JsonTensor>;
}

describe.skipIf(!python)('SavedModels against TensorFlow', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mb-savedmodel-peer-'));
  const written: Written[] = [];
  /** loader v1: TF 2.21's tf.saved_model.load cannot rebuild TF 2.3 Keras optimizers ('add_slot'); its TF1 loader runs the graph. */
  const fixtures: { name: string; path: string; signature: string; inputs: Record<string, Tensor>; loader?: 'v1' }[] = [];
  const answers = new Map<string, unknown>();
  let zoo: ZooEntry[] = [];

  beforeAll(() => {
    // Modelbridge's own models: the OR gate, and PyTorch's MLP and CNN bundles (one through ONNX).
    const or = trainOrGate({ seed: 0 }).model;
    written.push({ name: 'or', model: or, dir: join(dir, 'or'), inputs: { x: orBatch() } });
    zoo = peerMakeZoo(join(dir, 'zoo'));
    for (const name of ['mlp', 'cnn']) {
      const entry = zoo.find((z) => z.name === name)!;
      const c = readZooCase(entry);
      const x = Tensor.from('float32', nestedShape(c.input), flatten(c.input));
      const expected = Tensor.from('float32', nestedShape(c.output), flatten(c.output));
      written.push({ name, model: loadModel(entry.bundle), dir: join(dir, name), inputs: { x }, expected });
      if (name === 'cnn') {
        const onnx = join(dir, 'cnn.onnx');
        convertModel(entry.bundle, onnx, { verify: true });
        written.push({ name: 'cnn-onnx', model: loadModel(onnx), dir: join(dir, 'cnn-onnx'), inputs: { x }, expected });
      }
    }
    for (const w of written) writeSavedModel(w.model, w.dir);

    const fx = (p: string) => join(FIXTURES, p);
    fixtures.push(
      { name: 'keras_single', path: fx('tf-rust/examples/keras_single_input_saved_model'), signature: 'serving_default', inputs: { test_in_input: sampleInput('float32', [3, 5], 1) }, loader: 'v1' },
      { name: 'keras_multi', path: fx('tf-rust/examples/keras_multiple_inputs_saved_model'), signature: 'serving_default', inputs: { test_in1: sampleInput('float32', [3, 5], 2), test_in2: sampleInput('float32', [3, 5], 3) }, loader: 'v1' },
      { name: 'regression_train', path: fx('tf-rust/examples/regression_savedmodel'), signature: 'train', inputs: { x: Tensor.from('float32', [4], [1, 2, 3, 4]), y: Tensor.from('float32', [4], [3, 5, 7, 9]) } },
      { name: 'redundant', path: fx('tf2onnx/models/saved_model_with_redundant_inputs'), signature: 'serving_default', inputs: { x: sampleInput('float32', [1, 10], 4), y: sampleInput('float32', [1, 10], 5) } },
      { name: 'keras_cnn', path: join(__dirname, 'fixtures', 'tf', 'keras_cnn'), signature: 'serving_default', inputs: { inputs: sampleInput('float32', [2, 9, 9, 3], 6) } },
      { name: 'half_plus_two_tf2', path: fx('tf-serving/testdata/saved_model_half_plus_two_tf2_cpu/00000123'), signature: 'serving_default', inputs: { x: Tensor.from('float32', [1], [3]) } },
    );

    const requests: [string, TfRequest][] = [
      ['train-or:module', { cmd: 'train-or', args: ['module', join(dir, 'tf-or-module')] }],
      ['train-or:keras', { cmd: 'train-or', args: ['keras', join(dir, 'tf-or-keras')] }],
      ...written.map((w): [string, TfRequest] => [`run:${w.name}`, { cmd: 'run-savedmodel', args: [w.dir, 'serving_default'], input: feedsJson(w.inputs) }]),
      ['run-v1:or', { cmd: 'run-v1', args: [join(dir, 'or'), 'serving_default'], input: feedsJson({ x: orBatch() }) }],
      ['show:or', { cmd: 'show', args: [join(dir, 'or')] }],
      ['train-step:mlp', { cmd: 'train-step', args: [join(dir, 'mlp'), 'serving_default'], input: feedsJson(written.find((w) => w.name === 'mlp')!.inputs) }],
      ...fixtures.map((f): [string, TfRequest] => [`fixture:${f.name}`, { cmd: f.loader === 'v1' ? 'run-v1' : 'run-savedmodel', args: [f.path, f.signature], input: feedsJson(f.inputs) }]),
    ];
    const results = tfBatch(requests.map(([, r]) => r));
    requests.forEach(([key], i) => answers.set(key, results[i]));
  }, 600_000);

  /** TensorFlow's answer to one request; a failed request fails the test that needs it. */
  function answer<T>(key: string): T {
    const a = answers.get(key);
    if (a instanceof Error) throw a;
    if (a === undefined) throw new Error(`no answer for ${key}`);
    return a as T;
  }

  it('tf.saved_model.load serves what modelbridge writes: the OR gate, an MLP, a CNN (from safetensors and from ONNX) within 1e-6', () => {
    for (const w of written) {
      const served = fromJson(answer<Record<string, JsonTensor>>(`run:${w.name}`)['y']!);
      const ours = new Runner(w.model).run(w.inputs)['y']!;
      expect(maxDiff(served, ours), w.name).toBeLessThanOrEqual(1e-6);
      // And reading the SavedModel back runs to the same outputs as TensorFlow serves.
      expect(maxDiff(new Runner(readSavedModel(w.dir)).run(w.inputs)['y']!, served), w.name).toBeLessThanOrEqual(1e-6);
      if (w.expected) expect(relDiff(served, w.expected), `${w.name} vs PyTorch`).toBeLessThanOrEqual(1e-5);
    }
    // The TF1 loader in a session (tf.compat.v1.saved_model.load) restores it through the SaverDef.
    const v1 = fromJson(answer<Record<string, JsonTensor>>('run-v1:or')['y']!);
    expect(maxDiff(v1, new Runner(written[0]!.model).run({ x: orBatch() })['y']!)).toBeLessThanOrEqual(1e-6);
  });

  it('saved_model_cli show --all lists the signature with its dtypes and shapes', () => {
    const shown = answer<{ status: number; stdout: string }>('show:or');
    expect(shown.status).toBe(0);
    expect(shown.stdout).toMatch(/MetaGraphDef with tag-set: 'serve'/);
    expect(shown.stdout).toMatch(/signature_def\['serving_default'\]:[\s\S]*inputs\['x'\] tensor_info:\s+dtype: DT_FLOAT\s+shape: \(-1, 2\)\s+name: x:0/);
    expect(shown.stdout).toMatch(/outputs\['y'\] tensor_info:\s+dtype: DT_FLOAT\s+shape: \(-1, 1\)/);
    expect(shown.stdout).toMatch(/Method name is: tensorflow\/serving\/predict/);
  });

  it('the variables are trainable tf.Variables restored from the TensorBundle: one gradient step changes the output', () => {
    const step = answer<TrainStep>('train-step:mlp');
    const mlp = written.find((w) => w.name === 'mlp')!;
    expect(step.variables.map((v) => v.name.replace(/:0$/, '')).sort()).toEqual([...mlp.model.weights.keys()].sort());
    for (const v of step.variables) {
      expect(v.trainable, v.name).toBe(true);
      // Same values (a Dense kernel may be stored transposed, in TF's layout).
      expect(v.shape.reduce((a, b) => a * b, 1), v.name).toBe(mlp.model.weights.get(v.name.replace(/:0$/, ''))!.size);
    }
    expect(step.gradients.every(Boolean)).toBe(true);
    const before = fromJson(step.before['y']!);
    expect(maxDiff(before, new Runner(mlp.model).run(mlp.inputs)['y']!)).toBeLessThanOrEqual(1e-6);
    expect(maxDiff(fromJson(step.after['y']!), before)).toBeGreaterThan(1e-4);
  });

  it('reads the OR gate TensorFlow trained and saved (tf.Module and Keras export) to TensorFlow\'s 4 predictions', () => {
    for (const kind of ['module', 'keras']) {
      const { predictions } = answer<{ predictions: number[] }>(`train-or:${kind}`);
      const model = readSavedModel(join(dir, `tf-or-${kind}`));
      const y = Object.values(new Runner(model).run({ x: orBatch() }))[0]!;
      expect(y.shape, kind).toEqual([4, 1]);
      y.toNumbers().forEach((v, i) => expect(Math.abs(v - predictions[i]!), `${kind} ${i}`).toBeLessThanOrEqual(1e-6));
      // It learnt OR.
      expect(predictions.map((p) => p > 0.5), kind).toEqual([false, true, true, true]);
    }
  });

  it('fixtures without documented outputs run to the outputs TensorFlow computes', () => {
    for (const f of fixtures) {
      const served = answer<Record<string, JsonTensor>>(`fixture:${f.name}`);
      const ours = new Runner(readSavedModel(f.path, { signature: f.signature })).run(f.inputs);
      expect(Object.keys(ours).sort(), f.name).toEqual(Object.keys(served).sort());
      for (const [key, t] of Object.entries(served)) expect(relDiff(ours[key]!, fromJson(t)), `${f.name} ${key}`).toBeLessThanOrEqual(1e-5);
    }
  });

  it('SavedModel -> .pt loads in PyTorch (torch.load weights_only) with the same outputs and bit-identical weights', () => {
    for (const [name, source] of [['keras', join(FIXTURES, 'tf-rust/examples/keras_single_input_saved_model')], ['tf-or', join(dir, 'tf-or-module')]] as const) {
      const pt = join(dir, `${name}.pt`);
      convertModel(source, pt, { verify: true });
      const original = readSavedModel(source);
      const [key] = [...original.signatures[0]!.inputs.keys()];
      const x = name === 'tf-or' ? orBatch() : sampleInput('float32', [3, 5], 7);
      const torch = peerPredict(pt, x.toNumbers().reduce<number[][]>((rows, v, i) => (i % x.shape[1]! ? rows[rows.length - 1]!.push(v) : rows.push([v]), rows), []));
      const ours = Object.values(new Runner(original).run({ [key!]: x }))[0]!;
      expect(maxDiff(Tensor.from('float32', torch.shapes[0]!, flatten(torch.outputs[0]!)), ours), name).toBeLessThanOrEqual(1e-6);
      const fromTorch = new Map(Object.entries(torch.weights).map(([k, v]) => [k, Tensor.from('float32', loadModel(pt).weights.get(k)!.shape, v.map(Number))]));
      const diff = compareWeights(original.weights, fromTorch, { atol: 0, rtol: 0 });
      expect(diff.counts.identical, name).toBe(original.weights.size);
    }
  });
});
