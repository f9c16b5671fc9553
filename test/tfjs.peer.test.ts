import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/api/load.js';
import { Runner } from '../src/api/run.js';
import { orBatch } from '../src/api/demo.js';
import type { Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { readGraphModel, writeGraphModel, type QuantizationDType } from '../src/formats/tfjs/index.js';
import { trainOrGate } from '../src/train/or-gate.js';
import { CNN, CNN_SIGNATURE, maxAbsDiff, MLP, MLP_SIGNATURE, seededModel, seededValues } from './fixtures/tfjs/models.js';
import { FIXTURES, loadInTfjs, predictInTfjs } from './fixtures/tfjs/peer.js';

/**
 * The proof with the real peer: TF.js 4.22 (tfjs-core, the CPU backend and tfjs-converter's
 * loadGraphModel, the code a browser runs) loads every model.json modelbridge writes and predicts
 * what modelbridge's runtime predicts, within 1e-6. Quantized files are compared with the runtime
 * on the weights as read back (TF.js and modelbridge dequantize the same way), and with the
 * unquantized model within what the quantization allows. The fixtures run in both.
 */
const tmp = mkdtempSync(join(tmpdir(), 'modelbridge-tfjs-peer-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let counter = 0;

function runtime(model: Model, shape: readonly number[], values: readonly number[]): Float32Array {
  const runner = new Runner(model);
  return Object.values(runner.run({ [runner.inputNames[0]!]: Tensor.from('float32', shape, values) }))[0]!.toFloat32();
}

/** Writes `model`, loads it in TF.js, and returns both predictions on one seeded batch. */
async function both(model: Model, shape: readonly number[], quantize?: QuantizationDType) {
  const dir = join(tmp, `${counter++}`);
  const [json] = writeGraphModel(model, dir, quantize ? ({ quantize } as never) : {});
  const values = seededValues(shape.reduce((a, b) => a * b, 1), 7);
  const tfjs = await predictInTfjs(await loadInTfjs(json!), shape, values);
  return { tfjs, original: runtime(model, shape, values), readBack: runtime(readGraphModel(dir), shape, values), json: JSON.parse(readFileSync(json!, 'utf8')) };
}

describe('TF.js loads what modelbridge writes and predicts the same', () => {
  it('the OR gate: the trained predictions within 1e-6', async () => {
    const trained = trainOrGate({ seed: 0 });
    const dir = join(tmp, 'or-gate');
    const [json] = writeGraphModel(trained.model, dir);
    const y = await predictInTfjs(await loadInTfjs(json!), [4, 2], orBatch().toFloat32());
    expect(y.shape).toEqual([4, 1]);
    expect(maxAbsDiff(y.values, runtime(trained.model, [4, 2], Array.from(orBatch().toFloat32())))).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(y.values, trained.predictions)).toBeLessThanOrEqual(1e-6);
    expect(y.values[3]).toBeGreaterThan(0.9);
  });

  for (const [name, spec, signature, shape] of [
    ['an MLP (Linear, ReLU, Dropout, Tanh, LeakyReLU, Sigmoid, LogSoftmax)', MLP, MLP_SIGNATURE, [5, 6]],
    ['a CNN (Conv2d plain/depthwise/same/strided, BatchNorm2d, pools, Flatten, Softmax)', CNN, CNN_SIGNATURE, [3, 3, 12, 12]],
  ] as const) {
    it(`${name}: within 1e-6`, async () => {
      const r = await both(seededModel(spec, signature), shape);
      expect(r.tfjs.shape).toEqual([shape[0], signature.outputs[0]!.shape[1]]);
      expect(maxAbsDiff(r.tfjs.values, r.original)).toBeLessThanOrEqual(1e-6);
      expect(maxAbsDiff(r.readBack, r.original)).toBeLessThanOrEqual(1e-6);
    });

    for (const q of ['float16', 'uint16', 'uint8'] as const) {
      it(`${name}, ${q}-quantized: as the runtime on the dequantized weights (1e-6), near the original`, async () => {
        const r = await both(seededModel(spec, signature), shape, q);
        expect(r.json.weightsManifest[0].weights.every((w: { dtype: string; quantization?: { dtype: string } }) => w.dtype !== 'float32' || w.quantization?.dtype === q)).toBe(true);
        expect(maxAbsDiff(r.tfjs.values, r.readBack)).toBeLessThanOrEqual(1e-6);
        // The whole model's drift: a few quantization steps of its weights, through its layers.
        const allowed = { float16: 5e-3, uint16: 5e-3, uint8: 0.25 }[q];
        expect(maxAbsDiff(r.tfjs.values, r.original)).toBeLessThanOrEqual(allowed);
      });
    }
  }
});

describe('the committed sample', () => {
  it('samples/or-gate/or-gate.json loads in TF.js and predicts as the safetensors sample runs in modelbridge (1e-6)', async () => {
    const samples = fileURLToPath(new URL('../samples/or-gate/', import.meta.url));
    const y = await predictInTfjs(await loadInTfjs(join(samples, 'or-gate.json')), [4, 2], orBatch().toFloat32());
    expect(y.shape).toEqual([4, 1]);
    expect(maxAbsDiff(y.values, runtime(loadModel(join(samples, 'or-gate.safetensors')), [4, 2], Array.from(orBatch().toFloat32())))).toBeLessThanOrEqual(1e-6);
    // OR: (0,0) low, the three others high.
    expect(y.values[0]).toBeLessThan(0.5);
    for (const i of [1, 2, 3]) expect(y.values[i]).toBeGreaterThan(0.5);
  });
});

describe('the tfjs fixtures run alike in TF.js and modelbridge', () => {
  it('load_predict_data/graph_model: [[1,1],[1,1]] -> [0.7567615509, -0.1834937930] twice', async () => {
    for (const file of [FIXTURES.matmul, FIXTURES.matmulNew]) {
      const y = await predictInTfjs(await loadInTfjs(file), [2, 2], [1, 1, 1, 1]);
      expect(maxAbsDiff(y.values, [0.7567615509, -0.183493793, 0.7567615509, -0.183493793])).toBeLessThan(1e-9);
      expect(maxAbsDiff(y.values, runtime(readGraphModel(file), [2, 2], [1, 1, 1, 1]))).toBe(0);
    }
  });

  it('custom_module/dense_model: [[20]] -> 38.17822265625, also after modelbridge rewrites it', async () => {
    const y = await predictInTfjs(await loadInTfjs(join(FIXTURES.dense, 'model.json')), [1, 1], [20]);
    expect(Array.from(y.values)).toEqual([38.17822265625]);
    const dir = join(tmp, 'dense-rewritten');
    const [json] = writeGraphModel(readGraphModel(FIXTURES.dense), dir);
    expect(Array.from((await predictInTfjs(await loadInTfjs(json!), [1, 1], [20])).values)).toEqual([38.17822265625]);
  });

  it('the react-native graph model: TF.js and modelbridge agree on seeded inputs, before and after a rewrite', async () => {
    const x = seededValues(30, 3);
    const y = await predictInTfjs(await loadInTfjs(join(FIXTURES.reactNative, 'model.json')), [3, 10], x);
    expect(y.shape).toEqual([3, 1]);
    expect(maxAbsDiff(y.values, runtime(readGraphModel(FIXTURES.reactNative), [3, 10], x))).toBeLessThanOrEqual(1e-6);
    const dir = join(tmp, 'rn-rewritten');
    const [json] = writeGraphModel(readGraphModel(FIXTURES.reactNative), dir);
    expect(maxAbsDiff((await predictInTfjs(await loadInTfjs(json!), [3, 10], x)).values, y.values)).toBeLessThanOrEqual(1e-6);
  });
});
