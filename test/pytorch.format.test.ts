import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Runner } from '../src/api/run.js';
import { UsageError } from '../src/core/errors.js';
import type { Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { pytorchFormat } from '../src/formats/pytorch/format.js';
import { writePytorchFile } from '../src/formats/pytorch/writer.js';
import { probe } from '../src/formats/registry.js';
import { OR_INPUTS, OR_MODULE, trainOrGate } from '../src/train/or-gate.js';
import { tempDir } from './cli-helpers.js';
import { fixture, local, python, runPython } from './fixtures/pytorch/helpers.js';

/** The FormatHandler: detection from the first bytes, and models (module spec included) through .pt files. */

const temp = tempDir('modelbridge-pytorch-format-');
afterAll(() => rmSync(temp, { recursive: true, force: true }));

const index = readFileSync(fixture('PYTORCH_INDEX.tsv'), 'utf8').trim().split('\n').slice(1).map((line) => line.split('\t'));

function predict(model: Model): number[] {
  const runner = new Runner(model);
  return OR_INPUTS.map((x) => runner.run({ x: Tensor.from('float32', [1, 2], x) })['y']!.toFloat32()[0]!);
}

describe('detect', () => {
  it('recognises every torch.save, torch.jit.save and legacy fixture from its first 64 bytes', () => {
    const checkpoints = index.filter(([, , kind]) => !kind!.startsWith('CRAFTED')).map(([path]) => path!.slice(2));
    expect(checkpoints.length).toBeGreaterThan(60);
    for (const path of checkpoints) expect(pytorchFormat.detect(probe(fixture(path))), path).toBe(true);
  });

  it('claims pickle-looking .pt files so that the reader can refuse them precisely', () => {
    expect(pytorchFormat.detect(probe(fixture('picklescan/negative/pytorch_magic_bypass.pt')))).toBe(true);
  });

  it('leaves other files alone: safetensors, npz, raw .bin shards, non-pickles, directories', () => {
    for (const path of ['candle/candle-examples/jfk-codes.safetensors', 'candle/candle-core/tests/test.npz', 'picklescan/negative/bad_pytorch.pt', 'burn/pytorch/tests/reader/test_data/broken.pt']) {
      expect(pytorchFormat.detect(probe(fixture(path))), path).toBe(false);
    }
    const shard = join(temp, 'group1-shard1of1.bin');
    writeFileSync(shard, Buffer.from(new Float32Array([-1.5, 2, 3, 4]).buffer));
    expect(pytorchFormat.detect(probe(shard))).toBe(false);
    expect(pytorchFormat.detect(probe(temp))).toBe(false);
  });
});

describe('models through .pt files', () => {
  it('write a runnable model and read back the same module, weights and predictions', () => {
    const { model } = trainOrGate({ seed: 3 });
    const file = join(temp, 'or.pt');
    expect(pytorchFormat.write(model, file, {})).toEqual([file]);
    const back = pytorchFormat.read(file, {});
    expect(back.format).toBe('pytorch');
    expect(back.module).toEqual(OR_MODULE);
    expect(back.metadata).toEqual(model.metadata);
    for (const [name, t] of model.weights) expect(Buffer.compare(back.weights.get(name)!.bytes(), t.bytes()), name).toBe(0);
    expect(predict(back)).toEqual(predict(model));
  });

  it('run a bare state dict when given the module (--module)', () => {
    const { model } = trainOrGate({ seed: 4 });
    const file = join(temp, 'bare.pt');
    writePytorchFile(file, model.weights);
    expect(pytorchFormat.read(file, {}).graph).toBeUndefined();
    expect(predict(pytorchFormat.read(file, { module: OR_MODULE }))).toEqual(predict(model));
  });

  it('refuse tensors PyTorch cannot hold with a UsageError', () => {
    const model: Model = { format: 'memory', weights: new Map([['names', Tensor.fromStrings([1], [new Uint8Array([0x61])])]]), signatures: [], metadata: {} };
    expect(() => pytorchFormat.write(model, join(temp, 'strings.pt'), {})).toThrow(UsageError);
  });

  it('read TorchScript weights and legacy checkpoints as plain state dicts', () => {
    expect([...pytorchFormat.read(fixture('tch-rs/tests/foo.pt'), {}).weights.keys()]).toEqual(['value']);
    expect([...pytorchFormat.read(fixture('burn/pytorch/tests/reader/test_data/simple_legacy.pt'), {}).weights.keys()]).toEqual(['weight', 'bias', 'running_mean']);
    expect(pytorchFormat.read(local('views.pt'), {}).weights.size).toBe(12);
  });
});

describe.skipIf(!python)('the same model in real PyTorch', () => {
  it('loads into torch.nn.Sequential with weights_only=True and predicts what modelbridge predicts', () => {
    const { model } = trainOrGate({ seed: 5 });
    const file = join(temp, 'or-torch.pt');
    pytorchFormat.write(model, file, {});
    const out = runPython(
      `
import json, sys, torch
net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sigmoid(), torch.nn.Linear(2, 1), torch.nn.Sigmoid())
net.load_state_dict(torch.load(sys.argv[1], weights_only=True))
x = torch.tensor(json.loads(sys.argv[2]), dtype=torch.float32)
print(json.dumps(net(x).flatten().tolist()))`,
      [file, JSON.stringify(OR_INPUTS)],
    );
    const theirs = JSON.parse(out) as number[];
    const ours = predict(model);
    theirs.forEach((y, i) => expect(y).toBeCloseTo(ours[i]!, 6));
  });
});
