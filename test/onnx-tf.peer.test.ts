import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertModel, loadModel } from '../src/api/load.js';
import { Runner } from '../src/api/run.js';
import type { Tensor } from '../src/core/tensor.js';
import { FIXTURES, tempDir } from './cli-helpers.js';
import { relDiff, sampleInput, tfPeer, tfRunSavedModel } from './fixtures/tf/peer.js';
import { peerPython } from './peers.js';

/**
 * ONNX and TensorFlow, both directions, with the real tools: tf2onnx (from the peers' venv)
 * turns SavedModels that real TensorFlow wrote into ONNX, and modelbridge must run those files
 * with TensorFlow's outputs; modelbridge's own SavedModel -> ONNX -> SavedModel chain must give
 * back a SavedModel that TensorFlow serves with the original outputs. Under CI=true a missing
 * peers environment fails the run; elsewhere these tests skip with a warning.
 */
const python = peerPython();

/** tf2onnx's command line, as users run it. */
function tf2onnx(savedModel: string, output: string): void {
  const r = spawnSync(python!, ['-m', 'tf2onnx.convert', '--saved-model', savedModel, '--output', output, '--opset', '17'], {
    encoding: 'utf8',
    timeout: 170_000,
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3', PYTHONDONTWRITEBYTECODE: '1' },
  });
  if (r.status !== 0) throw new Error(`tf2onnx exited with ${r.status}: ${r.stderr.slice(-2000)}`);
}

/** The one input of a model and a deterministic batch for it (unknown dims become `batch`). */
function inputFor(path: string, batch: number): { key: string; x: Tensor } {
  const runner = new Runner(loadModel(path));
  const [key] = runner.inputNames;
  const info = runner.model.graph!.inputs.find((i) => i.name === runner.signature.inputs.get(key!))!;
  // Unknown rank (TF1's regression model): a vector of `batch` values.
  const shape = info.shape ? info.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : batch)) : [batch];
  return { key: key!, x: sampleInput('float32', shape, 3) };
}

function runOnly(path: string, key: string, x: Tensor): Tensor {
  const outputs = new Runner(loadModel(path)).run({ [key]: x });
  const values = Object.values(outputs);
  expect(values).toHaveLength(1);
  return values[0]!;
}

describe.skipIf(!python)('tf2onnx output from real TensorFlow runs in modelbridge with TensorFlow outputs', () => {
  for (const name of ['dense', 'cnn']) {
    it(`Keras ${name}: tf.saved_model.save -> tf2onnx -> modelbridge`, () => {
      const dir = tempDir();
      const savedModel = join(dir, 'saved');
      tfPeer(['make', name, savedModel]);
      const onnx = join(dir, `${name}.onnx`);
      tf2onnx(savedModel, onnx);

      const { key, x } = inputFor(savedModel, 3);
      const expected = Object.values(tfRunSavedModel(savedModel, 'serving_default', { [key]: x }))[0]!;
      const onnxInput = new Runner(loadModel(onnx)).inputNames;
      expect(onnxInput).toHaveLength(1);
      const actual = runOnly(onnx, onnxInput[0]!, x);
      expect(relDiff(actual, expected)).toBeLessThanOrEqual(1e-5);
    }, 240_000);
  }

  it("tf2onnx's own regression SavedModel (TF 1.11): modelbridge reads tf2onnx's ONNX and TF's SavedModel alike", () => {
    const savedModel = join(FIXTURES, 'tf2onnx', 'models', 'regression', 'saved_model');
    const onnx = join(tempDir(), 'regression.onnx');
    tf2onnx(savedModel, onnx);
    // TF leaves X's rank unknown; tf2onnx declares it as a scalar (an empty shape), so scalars it is.
    const onnxInput = new Runner(loadModel(onnx)).inputNames;
    expect(onnxInput).toEqual(['x']);
    for (const seed of [1, 2, 3]) {
      const x = sampleInput('float32', [], seed);
      const expected = tfRunSavedModel(savedModel, 'serving_default', { X: x }, 'v1')['pred']!;
      const actual = runOnly(onnx, 'x', x);
      expect(relDiff(actual, expected)).toBeLessThanOrEqual(1e-6);
      // PROVENANCE.md documents the trained model: pred = X * 0.21396178 + 1.0495254.
      expect(Math.abs(actual.toNumbers()[0]! - (x.toNumbers()[0]! * 0.21396178 + 1.0495254))).toBeLessThanOrEqual(1e-6);
    }
  }, 240_000);
});

describe.skipIf(!python)('SavedModel <-> ONNX in modelbridge keeps what TensorFlow computes', () => {
  for (const name of ['dense', 'cnn']) {
    it(`Keras ${name}: SavedModel -> ONNX -> SavedModel, served by TensorFlow with the original outputs`, () => {
      const dir = tempDir();
      const original = join(dir, 'original');
      tfPeer(['make', name, original]);
      const onnx = join(dir, 'model.onnx');
      const back = join(dir, 'back');
      convertModel(original, onnx, { verify: true });
      convertModel(onnx, back, { to: 'savedmodel', verify: true });

      const { key, x } = inputFor(original, 2);
      const expected = Object.values(tfRunSavedModel(original, 'serving_default', { [key]: x }))[0]!;
      expect(relDiff(runOnly(onnx, new Runner(loadModel(onnx)).inputNames[0]!, x), expected)).toBeLessThanOrEqual(1e-5);
      const backKey = new Runner(loadModel(back)).inputNames[0]!;
      const served = Object.values(tfRunSavedModel(back, 'serving_default', { [backKey]: x }))[0]!;
      expect(relDiff(served, expected)).toBeLessThanOrEqual(1e-5);
    }, 240_000);
  }
});
