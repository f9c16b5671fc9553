import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  flatten,
  nestedShape,
  peerInspect,
  peerMakeZoo,
  peerPredict,
  peerPython,
  peerTrainOr,
  readZooCase,
  runPeer,
  runPeerScript,
  type ZooEntry,
} from './peers.js';

// Throws under CI=true when the environment is missing, which fails this file.
const python = peerPython();

describe.skipIf(!python)('Python peers (real PyTorch)', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'modelbridge-peers-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('python/test_modelbridge_spec.py passes', () => {
    const r = runPeerScript('test_modelbridge_spec.py');
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/\b0 failed\b/);
  });

  describe('make-zoo', () => {
    let zoo: ZooEntry[] = [];
    beforeAll(() => {
      zoo = peerMakeZoo(join(dir, 'zoo'));
    });

    it('writes each bundle with a case of finite torch outputs', () => {
      expect(zoo.map((e) => e.name)).toEqual(['mlp', 'cnn', 'cnn_options', 'norm_mlp', 'named']);
      for (const entry of zoo) {
        expect(existsSync(entry.bundle), entry.bundle).toBe(true);
        expect(existsSync(entry.case), entry.case).toBe(true);
        const c = readZooCase(entry);
        expect(nestedShape(c.input)).toEqual(entry.input_shape);
        expect(nestedShape(c.output)).toEqual(entry.output_shape);
        expect(entry.input_shape[0]).toBe(2);
        for (const v of [...flatten(c.input), ...flatten(c.output)]) expect(Number.isFinite(v), entry.name).toBe(true);
      }
    });

    it('stores the module spec, the signature and format "pt" in the metadata', () => {
      for (const entry of zoo) {
        const { metadata, tensors } = peerInspect(entry.bundle);
        expect(metadata['format']).toBe('pt');
        const spec = JSON.parse(metadata['modelbridge.module']!) as { type: string };
        expect(spec.type).toBe('Sequential');
        const signature = JSON.parse(metadata['modelbridge.signature']!) as { inputs: { shape: number[] }[]; outputs: { shape: number[] }[] };
        expect(signature.inputs[0]!.shape).toEqual([-1, ...entry.input_shape.slice(1)]);
        expect(signature.outputs[0]!.shape).toEqual([-1, ...entry.output_shape.slice(1)]);
        expect(Object.keys(tensors).length).toBeGreaterThan(0);
      }
      const cnn = peerInspect(zoo.find((e) => e.name === 'cnn')!.bundle);
      expect(cnn.tensors['1.num_batches_tracked']).toEqual({ dtype: 'I64', shape: [] });
      const named = peerInspect(zoo.find((e) => e.name === 'named')!.bundle);
      expect(Object.keys(named.tensors).sort()).toEqual(['block.fc.bias', 'block.fc.weight', 'fc1.bias', 'fc1.weight', 'fc2.weight']);
    });

    it('is deterministic: a second zoo has the same bytes', () => {
      const again = peerMakeZoo(join(dir, 'zoo-again'));
      for (const [i, entry] of zoo.entries()) {
        expect(readFileSync(again[i]!.bundle).equals(readFileSync(entry.bundle)), entry.name).toBe(true);
        expect(readFileSync(again[i]!.case, 'utf8')).toBe(readFileSync(entry.case, 'utf8'));
      }
    });

    it('predict loads each bundle back and reproduces the stored output exactly', () => {
      for (const entry of zoo) {
        const c = readZooCase(entry);
        const p = peerPredict(entry.bundle, c.input);
        expect(p.shapes).toEqual([entry.output_shape]);
        expect(p.outputs[0], entry.name).toEqual(c.output);
      }
    });
  });

  it('train-or trains the OR gate in PyTorch and saves a bundle that predicts the same', () => {
    const out = join(dir, 'or.safetensors');
    const { predictions, loss } = peerTrainOr(out, 0);
    expect(loss).toBeLessThan(0.01);
    expect(predictions[0]).toBeLessThan(0.2);
    for (const p of predictions.slice(1)) expect(p).toBeGreaterThan(0.8);
    const p = peerPredict(out, [
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ]);
    expect(flatten(p.outputs[0]!)).toEqual(predictions);
    expect(Object.keys(p.weights)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    expect(p.weights['0.weight']).toHaveLength(4);
    const signature = JSON.parse(peerInspect(out).metadata['modelbridge.signature']!);
    expect(signature).toEqual({
      inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 2] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 1] }],
    });
  });

  it('reports expected failures as one line on stderr with exit code 2', () => {
    const cases: string[][] = [
      ['predict', join(dir, 'missing.safetensors'), '--inputs', '[[0,0]]'],
      ['predict', join(dir, 'or.safetensors'), '--inputs', '[[0,0,0]]'],
      ['predict', join(dir, 'or.safetensors'), '--inputs', 'not json'],
      ['frobnicate'],
    ];
    for (const args of cases) {
      const r = runPeer(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^cross_check: error: .+\n$/);
      expect(r.stderr).not.toContain('Traceback');
    }
  });
});
