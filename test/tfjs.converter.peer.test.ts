import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertModel, loadModel } from '../src/api/load.js';
import { Runner } from '../src/api/run.js';
import type { Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { formatErrors } from '../src/core/errors.js';
import { parseManifest, quantize, readGraphModel, readWeights, writeGraphModel } from '../src/formats/tfjs/index.js';
import { converterPeers, makeSavedModels, tensorflowjsConvert, type ConverterCase } from './fixtures/tfjs/converter.js';
import { maxAbsDiff } from './fixtures/tfjs/models.js';
import { loadInTfjs, predictInTfjs, tfjsWeights } from './fixtures/tfjs/peer.js';

/**
 * The Python converter as a peer: real TensorFlow 2.21 saves Keras models (an MLP and a small
 * CNN, every layer with a bias and an activation) as SavedModels and runs them;
 * tensorflowjs_converter 4.22.0 (--input_format=tf_saved_model) turns them into graph models,
 * its Grappler pass fusing _FusedMatMul, _FusedConv2D and FusedDepthwiseConv2dNative with
 * BiasAdd + Relu/Relu6/Elu/Tanh/Sigmoid/Prelu; modelbridge reads those files and predicts TF's
 * outputs within 1e-5. Quantized conversions (uint8, float16) predict as TF.js does on the same
 * file. The same SavedModels converted by modelbridge itself load in TF.js and predict TF's outputs.
 */
const peers = converterPeers();
const tmp = mkdtempSync(join(tmpdir(), 'modelbridge-tfjs-converter-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The fused ops (with their fused_ops) each converted model must hold: the reader's mapping is exercised. */
const EXPECTED_FUSED: Record<string, string[]> = {
  mlp: ['_FusedMatMul[BiasAdd,Relu]', '_FusedMatMul[BiasAdd,Tanh]', '_FusedMatMul[BiasAdd,Elu]', '_FusedMatMul[BiasAdd,Sigmoid]', '_FusedMatMul[BiasAdd]'],
  cnn: ['_FusedConv2D[BiasAdd,Relu]', 'FusedDepthwiseConv2dNative[BiasAdd,Relu6]', '_FusedConv2D[BiasAdd,Prelu]', 'FusedDepthwiseConv2dNative[BiasAdd,Elu]', '_FusedMatMul[BiasAdd]'],
};
const QUANTIZED = { mlp: ['float16', 'uint16'], cnn: ['uint8'] } as const;

let cases: Record<string, ConverterCase> = {};
let versions = { tensorflowjs: '', tensorflow: '' };
const dirOf = (name: string, what: string) => join(tmp, name, what);

function runtime(model: Model, c: ConverterCase): Tensor {
  const runner = new Runner(model);
  const out = runner.run({ [runner.inputNames[0]!]: Tensor.from('float32', c.input.shape, c.input.values) });
  return Object.values(out)[0]!;
}

function fusedOps(json: string): string[] {
  const nodes = (JSON.parse(readFileSync(join(json, 'model.json'), 'utf8')) as { modelTopology: { node: { op: string; attr?: { fused_ops?: { list?: { s?: string[] } } } }[] } }).modelTopology.node;
  return nodes.filter((n) => n.attr?.fused_ops).map((n) => `${n.op}[${(n.attr!.fused_ops!.list?.s ?? []).map((s) => Buffer.from(s, 'base64').toString()).join(',')}]`);
}

describe.skipIf(!peers)('tensorflowjs_converter graph models from real TensorFlow SavedModels', () => {
  beforeAll(() => {
    cases = makeSavedModels(peers!.tf, tmp);
    const jobs = Object.keys(cases).flatMap((name) => [
      ['--input_format=tf_saved_model', dirOf(name, 'saved_model'), dirOf(name, 'converted')],
      ...QUANTIZED[name as keyof typeof QUANTIZED].map((q) => ['--input_format=tf_saved_model', `--quantize_${q}=*`, dirOf(name, 'saved_model'), dirOf(name, `quantized-${q}`)]),
    ]);
    versions = tensorflowjsConvert(peers!.converter, jobs);
  });

  it('the converter is tensorflowjs 4.22.0 on TensorFlow 2.19 and made both models', () => {
    expect(versions).toEqual({ tensorflowjs: '4.22.0', tensorflow: '2.19.0', jobs: 5 });
    expect(Object.keys(cases).sort()).toEqual(['cnn', 'mlp']);
  });

  for (const name of ['mlp', 'cnn'] as const) {
    it(`${name}: the converter's model.json (with ${EXPECTED_FUSED[name]!.length} fused ops) reads and runs in modelbridge as TF predicts, within 1e-5`, async () => {
      const c = cases[name]!;
      const dir = dirOf(name, 'converted');
      const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
      expect(json.convertedBy).toBe('TensorFlow.js Converter v4.22.0');
      expect(fusedOps(dir).sort()).toEqual([...EXPECTED_FUSED[name]!].sort());
      const model = readGraphModel(dir);
      expect([...model.signatures[0]!.inputs.keys()]).toEqual([c.signature.input]);
      expect([...model.signatures[0]!.outputs.keys()]).toEqual([c.signature.output]);
      const y = runtime(model, c);
      expect(y.shape).toEqual(c.output.shape);
      expect(maxAbsDiff(y.toFloat32(), c.output.values)).toBeLessThanOrEqual(1e-5);
      // TF.js itself agrees on the converter's file, where its CPU backend runs it: tfjs-backend-cpu
      // 4.22 has no fused tanh, so the converter's own MLP fails there (modelbridge's writer emits
      // plain ops, which TF.js runs: see the rewritten test below).
      const loaded = await loadInTfjs(join(dir, 'model.json'));
      if (name === 'mlp') {
        await expect(predictInTfjs(loaded, c.input.shape, c.input.values)).rejects.toThrow(/Activation tanh has not been implemented for the CPU backend/);
      } else {
        const tfjs = await predictInTfjs(loaded, c.input.shape, c.input.values);
        expect(maxAbsDiff(tfjs.values, c.output.values)).toBeLessThanOrEqual(1e-5);
        expect(maxAbsDiff(tfjs.values, y.toFloat32())).toBeLessThanOrEqual(1e-5);
      }
    });

    for (const q of QUANTIZED[name]) {
      it(`${name}: the converter's ${q}-quantized model.json: weights dequantized bit for bit as TF.js does, predictions near TF's (and TF.js's within 1e-6 where it runs)`, async () => {
        const c = cases[name]!;
        const dir = dirOf(name, `quantized-${q}`);
        const weights = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')).weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights) as { dtype: string; quantization?: { dtype: string } }[];
        expect(weights.filter((w) => w.dtype === 'float32').every((w) => w.quantization?.dtype === q)).toBe(true);
        const y = runtime(readGraphModel(dir), c).toFloat32();
        // Every weight modelbridge dequantizes from the shards is, bit for bit, the one TF.js does.
        const loaded = await loadInTfjs(join(dir, 'model.json'));
        const theirs = await tfjsWeights(loaded);
        const file = join(dir, 'model.json');
        const e = formatErrors(file);
        const ours = readWeights(parseManifest(JSON.parse(readFileSync(file, 'utf8')).weightsManifest, e), file, e);
        expect(ours.quantized.size).toBe(weights.filter((w) => w.dtype === 'float32').length);
        for (const [key, t] of ours.tensors) {
          if (t.dtype !== 'float32') continue;
          expect([key, maxAbsDiff(t.toFloat32(), theirs.get(key)!.values)]).toEqual([key, 0]);
        }
        // And predicts as modelbridge does (the MLP's fused tanh does not run in TF.js's CPU backend).
        if (name === 'cnn') {
          const tfjs = await predictInTfjs(loaded, c.input.shape, c.input.values);
          expect(maxAbsDiff(tfjs.values, y)).toBeLessThanOrEqual(1e-6);
        }
        expect(maxAbsDiff(y, c.output.values)).toBeLessThanOrEqual(name === 'cnn' ? 0.05 : 5e-3);
      });

      it(`${name}: modelbridge's ${q} quantization of the converter's float32 weights is its quantized file, byte for byte`, () => {
        const read = (what: string) => {
          const file = join(dirOf(name, what), 'model.json');
          const json = JSON.parse(readFileSync(file, 'utf8')) as { weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string; quantization?: { dtype: string; min?: number; scale?: number } }[] }[] };
          const bytes = Buffer.concat(json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(dirOf(name, what), p)))));
          return { file, json, bytes };
        };
        const plain = read('converted');
        const quantized = read(`quantized-${q}`);
        const e = formatErrors(plain.file);
        const originals = readWeights(parseManifest(plain.json.weightsManifest as never, e), plain.file, e).tensors;
        let at = 0;
        let checked = 0;
        for (const spec of quantized.json.weightsManifest.flatMap((g) => g.weights)) {
          const count = spec.shape.reduce((a, b) => a * b, 1);
          const size = spec.quantization ? (spec.quantization.dtype === 'uint8' ? 1 : 2) : 4;
          const stored = quantized.bytes.subarray(at, at + count * size);
          at += count * size;
          if (!spec.quantization) continue;
          const ours = quantize(originals.get(spec.name)!.toFloat32(), q);
          expect(Buffer.from(ours.bytes).equals(stored)).toBe(true);
          if (spec.quantization.min !== undefined) expect([ours.quantization.min, ours.quantization.scale]).toEqual([spec.quantization.min, spec.quantization.scale]);
          checked++;
        }
        expect(at).toBe(quantized.bytes.byteLength);
        expect(checked).toBeGreaterThanOrEqual(5);
      });
    }

    it(`${name}: rewritten by modelbridge, the converter's graph model still predicts TF's outputs in TF.js (1e-5)`, async () => {
      const c = cases[name]!;
      const out = dirOf(name, 'rewritten');
      writeGraphModel(readGraphModel(dirOf(name, 'converted')), out);
      const tfjs = await predictInTfjs(await loadInTfjs(join(out, 'model.json')), c.input.shape, c.input.values);
      expect(maxAbsDiff(tfjs.values, c.output.values)).toBeLessThanOrEqual(1e-5);
    });

    it(`${name}: the same SavedModel converted by modelbridge loads in TF.js and predicts TF's outputs (1e-5)`, async () => {
      const c = cases[name]!;
      const out = dirOf(name, 'modelbridge');
      convertModel(dirOf(name, 'saved_model'), out, { to: 'tfjs', verify: true });
      expect(maxAbsDiff(runtime(loadModel(dirOf(name, 'saved_model')), c).toFloat32(), c.output.values)).toBeLessThanOrEqual(1e-5);
      const tfjs = await predictInTfjs(await loadInTfjs(join(out, 'model.json')), c.input.shape, c.input.values);
      expect(tfjs.shape).toEqual(c.output.shape);
      expect(maxAbsDiff(tfjs.values, c.output.values)).toBeLessThanOrEqual(1e-5);
    });
  }
});
