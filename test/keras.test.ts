import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, saveModel } from '../src/api/load.js';
import { runModel } from '../src/api/run.js';
import { Tensor } from '../src/core/tensor.js';
import { writeH5, type H5WriteDataset, type H5WriteGroup } from '../src/formats/keras/h5.js';
import { ZipWriter } from '../src/formats/pytorch/zip-writer.js';
import { detectFormat } from '../src/formats/registry.js';
import { cli, ROOT, tempDir } from './cli-helpers.js';

/**
 * Keras files made here, without Keras: config.json and model.weights.h5 laid out as Keras 3's
 * saving_lib writes them (through h5wasm), and a legacy .h5 as legacy_h5_format writes it. They
 * check reading against hand-computed outputs, writing, and that each broken file is refused in
 * one line (test/keras.peer.test.ts checks real Keras files against Keras).
 */

const f32 = (values: number[], shape: number[]): H5WriteDataset => ({ dtype: 'float32', shape, data: new Uint8Array(new Float32Array(values).buffer) });

const KERNEL = [1, -2, 0.5, 3, -1, 2]; // [3, 2]
const BIAS = [0.25, -0.5];

function denseConfig(layerClass = 'Dense', units = 2): object {
  return {
    module: 'keras',
    class_name: 'Sequential',
    config: {
      name: 'tiny',
      layers: [
        { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 3], dtype: 'float32', name: 'x' } },
        { module: 'keras.layers', class_name: layerClass, config: { name: 'fc', units, activation: 'relu', use_bias: true } },
      ],
    },
  };
}

function weightsH5(kernel: H5WriteDataset = f32(KERNEL, [3, 2]), withBias = true): Uint8Array {
  const vars: [string, H5WriteDataset][] = [['0', kernel]];
  if (withBias) vars.push(['1', f32(BIAS, [2])]);
  const root: H5WriteGroup = {
    children: [
      ['layers', { children: [['dense', { children: [['vars', { children: vars }]] }]] }],
      ['vars', { children: [] }],
    ],
  };
  return writeH5(root);
}

function kerasArchive(config: object, weights: Uint8Array): Uint8Array {
  const chunks: Uint8Array[] = [];
  const zip = new ZipWriter((b) => chunks.push(b.slice()), 1);
  zip.add('metadata.json', new TextEncoder().encode('{"keras_version": "3.15.1"}'));
  zip.add('config.json', new TextEncoder().encode(JSON.stringify(config)));
  zip.add('model.weights.h5', weights);
  zip.finish();
  return Buffer.concat(chunks);
}

/** A legacy HDF5 model: model_config on the root, model_weights/<layer>/<weight name> datasets. */
function legacyH5(withBias: boolean): Uint8Array {
  const config = denseConfig();
  const fc: [string, H5WriteDataset][] = [['kernel', f32(KERNEL, [3, 2])]];
  if (withBias) fc.push(['bias', f32(BIAS, [2])]);
  return writeH5({
    attrs: [['model_config', JSON.stringify(config)], ['keras_version', '3.15.1'], ['backend', 'tensorflow']],
    children: [
      [
        'model_weights',
        {
          attrs: [['layer_names', ['fc']]],
          children: [['fc', { attrs: [['weight_names', ['fc/kernel', 'fc/bias']]], children: [['fc', { children: fc }]] }]],
        },
      ],
    ],
  });
}

/** relu(x . kernel + bias) by hand. */
function expected(x: number[]): number[] {
  return [0, 1].map((o) => Math.max(0, x.reduce((a, v, i) => a + v * KERNEL[i * 2 + o]!, BIAS[o]!)));
}

let dir = '';

function refusal(file: string, pattern: RegExp, code = 2): void {
  const r = cli(['inspect', file]);
  expect(r.code, r.stderr).toBe(code);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain(file);
  expect(lines[0]).toMatch(pattern);
  expect(lines[0]).not.toMatch(/\n|at .*\.ts:\d+/);
}

describe('Keras files', () => {
  beforeAll(() => {
    dir = tempDir('mb-keras-');
    writeFileSync(join(dir, 'tiny.keras'), kerasArchive(denseConfig(), weightsH5()));
    writeFileSync(join(dir, 'tiny.h5'), legacyH5(true));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('detects .keras and .h5 by their bytes, whatever the name', () => {
    writeFileSync(join(dir, 'archive.bin'), readFileSync(join(dir, 'tiny.keras')));
    writeFileSync(join(dir, 'legacy.model'), readFileSync(join(dir, 'tiny.h5')));
    expect(detectFormat(join(dir, 'archive.bin')).name).toBe('keras');
    expect(detectFormat(join(dir, 'legacy.model')).name).toBe('h5');
  });

  it('reads a .keras archive and a legacy .h5 and computes relu(x . kernel + bias)', () => {
    const x = [0.5, -1, 2];
    for (const file of ['tiny.keras', 'tiny.h5']) {
      const model = loadModel(join(dir, file));
      expect(model.weights.get('fc/kernel')?.toNumbers()).toEqual(KERNEL);
      const out = runModel(model, { x: Tensor.from('float32', [1, 3], x) });
      expect([...Object.keys(out)]).toEqual(['fc']);
      const got = Array.from(out['fc']!.toFloat32());
      expected(x).forEach((v, i) => expect(got[i]).toBeCloseTo(v, 6));
    }
  });

  it('writes .keras deterministically and reads it back to the same model, from .keras and from .h5', () => {
    const a = join(dir, 'copy-a.keras');
    const b = join(dir, 'copy-b.keras');
    const c = join(dir, 'from-h5.keras');
    saveModel(loadModel(join(dir, 'tiny.keras')), a);
    saveModel(loadModel(join(dir, 'tiny.keras')), b);
    saveModel(loadModel(join(dir, 'tiny.h5')), c);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    for (const file of [a, c]) {
      const back = loadModel(file);
      expect(back.format).toBe('keras');
      expect(back.weights.get('fc/kernel')?.toNumbers()).toEqual(KERNEL);
      expect(back.weights.get('fc/bias')?.toNumbers()).toEqual(BIAS);
    }
    const r = cli(['convert', join(dir, 'tiny.keras'), join(dir, 'cli.keras')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/verified: 2 tensors bit-identical/);
  });

  it('refuses to write .keras or .h5 for a model with no Keras config, in one line', () => {
    const onnx = join(dir, 'tiny.onnx');
    expect(cli(['convert', join(dir, 'tiny.keras'), onnx]).code).toBe(0);
    const st = join(dir, 'tiny.safetensors');
    expect(cli(['convert', join(dir, 'tiny.keras'), st]).code).toBe(0);
    // The safetensors bundle names the layer the torch way (0.weight): still a dense chain, written as one.
    const back = join(dir, 'back.keras');
    const r = cli(['convert', st, back]);
    expect(r.code, r.stderr).toBe(0);
    const x = [0.5, -1, 2];
    const got = Array.from(Object.values(runModel(loadModel(back), { x: Tensor.from('float32', [1, 3], x) }))[0]!.toFloat32());
    expected(x).forEach((v, i) => expect(got[i]).toBeCloseTo(v, 6));
    // A convolution from ONNX has no Keras config and is no dense chain.
    const conv = join(ROOT, 'test', 'fixtures', 'upstream', 'onnx', 'node', 'test_conv_with_strides_padding', 'model.onnx');
    const r2 = cli(['convert', conv, join(dir, 'conv.keras')]);
    expect(r2.code).toBe(1);
    expect(r2.stderr.trim().split('\n')).toHaveLength(1);
    expect(r2.stderr).toMatch(/Keras needs its layers' config/);
    const h5 = cli(['convert', conv, join(dir, 'conv.h5')]);
    expect(h5.code).toBe(1);
    expect(h5.stderr.trim().split('\n')).toHaveLength(1);
    expect(h5.stderr).toMatch(/cannot write a Keras file of this onnx model: Keras needs its layers' config/);
  });

  it('writes legacy .h5 deterministically, laid out as Keras writes it, and reads it back', () => {
    const a = join(dir, 'out-a.h5');
    const b = join(dir, 'out-b.h5');
    saveModel(loadModel(join(dir, 'tiny.keras')), a);
    saveModel(loadModel(join(dir, 'tiny.h5')), b);
    // From .keras or from .h5: the same model gives the same bytes (no HDF5 timestamps).
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    expect(detectFormat(a).name).toBe('h5');
    const back = loadModel(a);
    expect(back.format).toBe('h5');
    expect(back.weights.get('fc/kernel')?.toNumbers()).toEqual(KERNEL);
    expect(back.weights.get('fc/bias')?.toNumbers()).toEqual(BIAS);
    const r = cli(['convert', join(dir, 'tiny.keras'), join(dir, 'cli.h5')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/verified: 2 tensors bit-identical/);
    // And back to .keras: the same archive as written straight from the .keras file.
    saveModel(loadModel(a), join(dir, 'via-h5.keras'));
    saveModel(loadModel(join(dir, 'tiny.keras')), join(dir, 'direct.keras'));
    expect(readFileSync(join(dir, 'via-h5.keras')).equals(readFileSync(join(dir, 'direct.keras')))).toBe(true);
  });

  it('refuses a truncated .keras in one line', () => {
    const bytes = readFileSync(join(dir, 'tiny.keras'));
    const file = join(dir, 'truncated.keras');
    writeFileSync(file, bytes.subarray(0, Math.floor(bytes.byteLength / 2)));
    refusal(file, /zip|end of central directory|truncated/i);
  });

  it('refuses an .h5 missing a weight dataset in one line', () => {
    const file = join(dir, 'missing.h5');
    writeFileSync(file, legacyH5(false));
    refusal(file, /model_weights\/fc.*2 weights for Dense layer fc \(kernel, bias\), found 1|fc\/bias.*missing/);
  });

  it('refuses a .keras missing a weight dataset in one line', () => {
    const file = join(dir, 'missing.keras');
    writeFileSync(file, kerasArchive(denseConfig(), weightsH5(undefined, false)));
    refusal(file, /layers\/dense\/vars\/1: a dataset holding Dense layer fc's bias \(missing\)/);
  });

  it('refuses an unknown and a custom layer class in one line naming class and layer', () => {
    const unknown = join(dir, 'unknown.keras');
    writeFileSync(unknown, kerasArchive(denseConfig('FancyDense'), weightsH5()));
    refusal(unknown, /layer fc \(FancyDense\).*unsupported class FancyDense/);
    const custom = join(dir, 'custom.keras');
    writeFileSync(custom, kerasArchive(denseConfig('my_package>MyDense'), weightsH5()));
    refusal(custom, /layer fc \(MyDense\).*custom class my_package>MyDense/);
  });

  it('refuses a weight of the wrong shape in one line', () => {
    const file = join(dir, 'shape.keras');
    writeFileSync(file, kerasArchive(denseConfig(), weightsH5(f32([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]))));
    refusal(file, /layers\/dense\/vars\/0: Dense layer fc's kernel of shape \[3, 2\], not \[4, 2\]/);
  });

  it('refuses a .h5 weight of the wrong shape in one line', () => {
    const file = join(dir, 'shape.h5');
    const config = denseConfig();
    writeFileSync(
      file,
      writeH5({
        attrs: [['model_config', JSON.stringify(config)], ['keras_version', '3.15.1'], ['backend', 'tensorflow']],
        children: [['model_weights', { attrs: [['layer_names', ['fc']]], children: [['fc', { attrs: [['weight_names', ['fc/kernel', 'fc/bias']]], children: [['fc', { children: [['kernel', f32([1, 2, 3, 4, 5, 6, 7, 8], [4, 2])], ['bias', f32(BIAS, [2])]] }]] }]] }]],
      }),
    );
    refusal(file, /model_weights\/fc\/fc\/kernel: Dense layer fc's kernel of shape \[3, 2\], not \[4, 2\]/);
  });

  it('refuses a Keras mask reaching a layer that would use it otherwise, in one line naming the layer', () => {
    // Embedding(mask_zero=True) then Softmax: Keras's Softmax would hide the masked steps; not built here.
    const config = {
      module: 'keras',
      class_name: 'Sequential',
      config: {
        name: 'masked',
        layers: [
          { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 4], dtype: 'int32', name: 'ids' } },
          { module: 'keras.layers', class_name: 'Embedding', config: { name: 'emb', input_dim: 5, output_dim: 2, mask_zero: true } },
          { module: 'keras.layers', class_name: 'Softmax', config: { name: 'sm', axis: -1 } },
        ],
      },
    };
    const weights = writeH5({ children: [['layers', { children: [['embedding', { children: [['vars', { children: [['0', f32([...Array(10).keys()], [5, 2])]] }]] }]] }], ['vars', { children: [] }]] });
    const file = join(dir, 'masked-softmax.keras');
    writeFileSync(file, kerasArchive(config, weights));
    refusal(file, /layer sm \(Softmax\).*an input without a Keras mask \(a masked input to Softmax is not supported\)/);
  });

  it('refuses an HDF5 file that is not a Keras model, and garbage after the signature, in one line', () => {
    const weightsOnly = join(dir, 'weights-only.h5');
    writeFileSync(weightsOnly, weightsH5());
    refusal(weightsOnly, /model_config/);
    const garbage = join(dir, 'garbage.h5');
    writeFileSync(garbage, Buffer.concat([Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(200, 7)]));
    refusal(garbage, /an HDF5 file that HDF5 can read/);
  });
});
