import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/api/load.js';
import { Tensor } from '../src/core/tensor.js';
import { Session } from '../src/runtime/executor.js';
import { tempDir } from './cli-helpers.js';
import { peerPython, ROOT } from './peers.js';

/**
 * Real models through the fast paths (implicit-GEMM convolutions, packed MatMul weights, folded
 * bias and activations, the worker threads): ResNet-18 and BERT-tiny, exported by torch.onnx from
 * random weights (bench/models.py), must give onnxruntime-node's outputs within 1e-4 of the
 * output's scale, on one thread and on two, and the two must agree bit for bit.
 */
const python = peerPython();

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

interface Feed {
  readonly ours: Tensor;
  readonly theirs: ort.Tensor;
}

function floats(shape: number[], next: () => number): Feed {
  const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => next() * 2 - 1);
  return { ours: Tensor.from('float32', shape, data), theirs: new ort.Tensor('float32', data, shape) };
}

function int64s(shape: number[], value: (i: number) => number): Feed {
  const data = BigInt64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => BigInt(value(i)));
  return { ours: Tensor.from('int64', shape, data), theirs: new ort.Tensor('int64', data, shape) };
}

const CASES: { name: string; output: string; feeds: () => Record<string, Feed> }[] = [
  { name: 'resnet18', output: 'y', feeds: () => ({ x: floats([1, 3, 224, 224], seeded(1)) }) },
  {
    name: 'bert-tiny',
    output: 'last_hidden_state',
    feeds: () => {
      const next = seeded(2);
      // the last 28 positions are padding, so the attention mask's path is exercised
      return { input_ids: int64s([1, 128], () => Math.floor(next() * 30522)), attention_mask: int64s([1, 128], (i) => (i < 100 ? 1 : 0)) };
    },
  },
];

describe.skipIf(!python)('real models against onnxruntime-node, 1 and 2 threads', () => {
  let dir = '';
  beforeAll(() => {
    dir = tempDir('modelbridge-runtime-models-');
    const r = spawnSync(python!, [join(ROOT, 'bench', 'models.py'), dir, ...CASES.map((c) => c.name)], {
      encoding: 'utf8',
      timeout: 600_000,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
    if (r.status !== 0) throw new Error(`bench/models.py failed:\n${r.stderr}`);
  }, 600_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const c of CASES) {
    it(`${c.name}: within 1e-4 of onnxruntime, threads 1 and 2 identical`, async () => {
      const file = join(dir, `${c.name}.onnx`);
      const feeds = c.feeds();
      const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, logSeverityLevel: 3 });
      const theirs = (await session.run(Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, f.theirs]))))[c.output]!.data as Float32Array;
      const model = loadModel(file);
      const ourFeeds = Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, f.ours]));
      const one = new Session(model.graph!, { threads: 1 }).run(ourFeeds)[c.output]!.toFloat32();
      const two = new Session(model.graph!, { threads: 2 }).run(ourFeeds)[c.output]!.toFloat32();
      expect(one.length).toBe(theirs.length);
      let scale = 0;
      let worst = 0;
      for (let i = 0; i < theirs.length; i++) {
        scale = Math.max(scale, Math.abs(theirs[i]!));
        worst = Math.max(worst, Math.abs(one[i]! - theirs[i]!));
      }
      expect(scale).toBeGreaterThan(0.1);
      expect(worst / scale).toBeLessThan(1e-4);
      expect(two).toEqual(one);
    }, 300_000);
  }
});
