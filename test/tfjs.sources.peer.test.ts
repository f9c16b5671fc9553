import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convertModel, loadModel, saveModel } from '../src/api/load.js';
import { orBatch } from '../src/api/demo.js';
import { Runner } from '../src/api/run.js';
import type { Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import type { QuantizationDType } from '../src/formats/tfjs/index.js';
import { trainOrGate } from '../src/train/or-gate.js';
import { CNN, CNN_SIGNATURE, maxAbsDiff, MLP, MLP_SIGNATURE, seededModel, seededValues } from './fixtures/tfjs/models.js';
import { loadInTfjs, predictInTfjs, tfjsWeights } from './fixtures/tfjs/peer.js';

/**
 * Issue 6's proof "coming from each source format": the OR gate, an MLP and a small CNN are
 * written by modelbridge as a safetensors bundle, a torch.save .pt (with the module spec), an
 * ONNX file and a SavedModel; `convertModel(source, dir, {to: 'tfjs'})` turns each file into a
 * graph model, and the real TF.js (tfjs-core + tfjs-backend-cpu + tfjs-converter's
 * loadGraphModel) loads it and predicts what modelbridge's runtime predicts on the source file,
 * within 1e-6. Quantized graph models are held to the quantization bound twice over: the weights
 * TF.js dequantizes are within half a step (uint8/uint16) or float16's rounding of the weights
 * TF.js loads from the unquantized file, and TF.js's predictions equal modelbridge's on the same
 * quantized file within 1e-6.
 */
const tmp = mkdtempSync(join(tmpdir(), 'modelbridge-tfjs-sources-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const SOURCES = [
  ['safetensors', 'model.safetensors'],
  ['pytorch', 'model.pt'],
  ['onnx', 'model.onnx'],
  ['savedmodel', 'saved_model'],
] as const;

interface Case {
  readonly name: string;
  readonly model: () => Model;
  readonly shape: readonly number[];
  readonly input: () => number[];
  readonly outputShape: readonly number[];
}

const CASES: readonly Case[] = [
  { name: 'the OR gate', model: () => trainOrGate({ seed: 0 }).model, shape: [4, 2], input: () => Array.from(orBatch().toFloat32()), outputShape: [4, 1] },
  { name: 'an MLP', model: () => seededModel(MLP, MLP_SIGNATURE), shape: [5, 6], input: () => seededValues(30, 7), outputShape: [5, 4] },
  { name: 'a small CNN', model: () => seededModel(CNN, CNN_SIGNATURE), shape: [3, 3, 12, 12], input: () => seededValues(3 * 3 * 12 * 12, 7), outputShape: [3, 5] },
];

function runtime(model: Model, shape: readonly number[], values: readonly number[]): Float32Array {
  const runner = new Runner(model);
  return Object.values(runner.run({ [runner.inputNames[0]!]: Tensor.from('float32', shape, values) }))[0]!.toFloat32();
}

let counter = 0;
/** The source file of `format` for a case (written once per case and format). */
const sources = new Map<string, string>();
function source(c: Case, format: string, file: string): string {
  const key = `${c.name}/${format}`;
  let path = sources.get(key);
  if (!path) {
    const dir = join(tmp, `${counter++}-${format}`);
    mkdirSync(dir);
    path = join(dir, file);
    saveModel(c.model(), path, { format });
    sources.set(key, path);
  }
  return path;
}

/** Converts the source to a graph model (verified by convertModel) and returns its model.json. */
function toTfjs(src: string, quantize?: QuantizationDType): string {
  const out = join(tmp, `${counter++}-tfjs`);
  const { files } = convertModel(src, out, { to: 'tfjs', verify: true, ...(quantize ? { quantize } : {}) });
  expect(files[0]).toBe(join(out, 'model.json'));
  return files[0]!;
}

for (const c of CASES) {
  describe(`${c.name}: TF.js runs the graph model modelbridge converts from each source format`, () => {
    for (const [format, file] of SOURCES) {
      it(`from ${format}: loadGraphModel predicts as modelbridge's runtime on the ${format} file, within 1e-6`, async () => {
        const src = source(c, format, file);
        const model = loadModel(src);
        expect(model.format).toBe(format);
        const json = toTfjs(src);
        const x = c.input();
        const y = await predictInTfjs(await loadInTfjs(json), c.shape, x);
        expect(y.shape).toEqual(c.outputShape);
        expect(maxAbsDiff(y.values, runtime(model, c.shape, x))).toBeLessThanOrEqual(1e-6);
        expect(maxAbsDiff(y.values, runtime(c.model(), c.shape, x))).toBeLessThanOrEqual(1e-6);
        const meta = JSON.parse(readFileSync(json, 'utf8')) as { format: string; signature: unknown; userDefinedMetadata?: Record<string, string> };
        expect(meta.format).toBe('graph-model');
        expect(meta.signature).toBeDefined();
        // The torch module spec rides along from the formats that carry it.
        if (model.module) expect(JSON.parse(meta.userDefinedMetadata!['modelbridge.module']!)).toEqual(model.module);
      });

      for (const q of ['float16', 'uint16', 'uint8'] as const) {
        it(`from ${format}, ${q}-quantized: TF.js's dequantized weights within the quantization bound, predictions as modelbridge's on the same file within 1e-6`, async () => {
          const src = source(c, format, file);
          const plain = await loadInTfjs(toTfjs(src));
          const json = toTfjs(src, q);
          const quantized = await loadInTfjs(json);
          const manifest = (JSON.parse(readFileSync(json, 'utf8')) as { weightsManifest: { weights: { name: string; dtype: string; quantization?: { dtype: string; scale?: number } }[] }[] }).weightsManifest[0]!.weights;
          const exact = await tfjsWeights(plain);
          const dequantized = await tfjsWeights(quantized);
          expect([...dequantized.keys()].sort()).toEqual([...exact.keys()].sort());
          let checked = 0;
          for (const spec of manifest) {
            const a = exact.get(spec.name)!.values;
            const b = dequantized.get(spec.name)!.values;
            if (spec.dtype !== 'float32') {
              expect(Array.from(b)).toEqual(Array.from(a));
              continue;
            }
            expect(spec.quantization?.dtype).toBe(q);
            checked++;
            for (let i = 0; i < a.length; i++) {
              // Half a step of the affine grid (plus float32 rounding of min + q * scale), or
              // float16's round-to-nearest: half an ulp, 2^-11 relative (2^-25 absolute below its normals).
              const bound = q === 'float16' ? Math.max(Math.abs(a[i]!) * 2 ** -11, 2 ** -25) : spec.quantization!.scale! / 2 + Math.abs(a[i]!) * 2 ** -22 + 1e-7;
              expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(bound);
            }
          }
          expect(checked).toBeGreaterThan(0);
          const x = c.input();
          const y = await predictInTfjs(quantized, c.shape, x);
          expect(maxAbsDiff(y.values, runtime(loadModel(json), c.shape, x))).toBeLessThanOrEqual(1e-6);
        });
      }
    }
  });
}
