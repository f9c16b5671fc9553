import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo, orBatch } from '../src/api/demo.js';
import { convertModel, loadModel, saveModel } from '../src/api/load.js';
import { FORMATS } from '../src/formats/registry.js';
import { parseModuleSpec } from '../src/module/bundle.js';
import { Runner } from '../src/api/run.js';
import { Tensor } from '../src/core/tensor.js';
import { tempDir } from './cli-helpers.js';
import { flatten, nestedShape, peerMakeZoo, peerPredict, peerPython, peerTrainOr, readZooCase, runPeerJson, type ZooEntry } from './peers.js';
import { readFileSync, rmSync } from 'node:fs';

// Throws under CI=true when the peers environment is missing, which fails this file;
// elsewhere the tests skip with a warning that says why.
const python = peerPython();

function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  expect(a.length).toBe(b.length);
  return Math.max(0, ...a.map((v, i) => Math.abs(v - b[i]!)));
}

describe.skipIf(!python)('cross-language: modelbridge and real PyTorch agree', () => {
  let dir = '';
  beforeAll(() => {
    dir = tempDir('modelbridge-cross-');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("PyTorch loads the demo's safetensors bundle, rebuilds the module from its spec and predicts the same", () => {
    const { rows, trained } = runDemo(join(dir, 'demo'), 0);
    const bundle = rows.find((r) => r.format === 'safetensors')!.file;
    const torch = peerPredict(bundle, [[0, 0], [0, 1], [1, 0], [1, 1]]);
    const torchY = flatten(torch.outputs[0]!);
    expect(maxAbsDiff(torchY, rows.find((r) => r.format === 'safetensors')!.predictions)).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(torchY, trained.predictions)).toBeLessThanOrEqual(1e-6);
    // The weights PyTorch loaded are the trained float32 weights, bit for bit.
    for (const [name, tensor] of trained.model.weights) {
      expect(Float32Array.from(torch.weights[name]!.map(Number))).toEqual(tensor.toFloat32());
    }
  });

  it("modelbridge reads PyTorch's OR gate bundle and predicts what PyTorch predicts", () => {
    const torch = peerTrainOr(join(dir, 'torch-or.safetensors'), 0);
    const model = loadModel(torch.bundle);
    const y = new Runner(model).run({ x: orBatch() })['y']!;
    expect(maxAbsDiff(Array.from(y.toFloat32()), torch.predictions)).toBeLessThanOrEqual(1e-6);
    // And back: a bundle modelbridge rewrites still loads in PyTorch with the same answers.
    const again = join(dir, 'torch-or-rewritten.safetensors');
    saveModel(model, again);
    expect(maxAbsDiff(flatten(peerPredict(again, [[0, 0], [0, 1], [1, 0], [1, 1]]).outputs[0]!), torch.predictions)).toBeLessThanOrEqual(1e-6);
  });

  it('a torch.save OR gate converts to every format and back: same predictions, bit-identical weights, torch.load(weights_only=True) accepts it', () => {
    const trained = runPeerJson(['train-or', join(dir, 'torch-or.pt'), '--seed', '1']) as { predictions: number[]; bundle: string; spec: string };
    const module = parseModuleSpec(readFileSync(trained.spec, 'utf8'), trained.spec);
    const original = loadModel(trained.bundle, { module });
    const reference = new Map([...original.weights].map(([k, t]) => [k, Buffer.from(t.bytes())]));
    let current = trained.bundle;
    // Every format modelbridge writes; Keras (.keras, .h5) last before PyTorch, because a Keras model names its
    // weights the Keras way (dense/kernel [in, out]): there they are compared by value, and the
    // PyTorch hop after it must give torch's names and layouts back.
    const kerasNamed = (f: { name: string }) => f.name === 'keras' || f.name === 'h5';
    const chain = [...FORMATS.filter((f) => !f.readOnly && !kerasNamed(f)), ...FORMATS.filter((f) => !f.readOnly && kerasNamed(f))];
    for (const format of [...chain, FORMATS.find((f) => f.name === 'pytorch')!]) {
      const next = join(dir, `chain-${format.name}-${Math.random().toString(36).slice(2)}${format.extensions[0]}`);
      convertModel(current, next, { module: current === trained.bundle ? module : undefined, to: format.name });
      const model = loadModel(next);
      const y = new Runner(model).run({ x: orBatch() })['y']!;
      expect(maxAbsDiff(Array.from(y.toFloat32()), trained.predictions), format.name).toBeLessThanOrEqual(1e-6);
      if (kerasNamed(format)) {
        // Kernels are stored [in, out]: the same values, each weight transposed.
        const values = (ts: Iterable<Tensor>) => [...ts].map((t) => Array.from(t.toFloat32()).sort((a, b) => a - b).join()).sort();
        expect(values(model.weights.values()), format.name).toEqual(values(original.weights.values()));
      } else {
        for (const [name, bytes] of reference) {
          expect([...model.weights.keys()], `${format.name} keeps ${name}`).toContain(name);
          expect(Buffer.compare(Buffer.from(model.weights.get(name)!.bytes()), bytes), `${format.name} ${name}`).toBe(0);
        }
      }
      current = next;
    }
    // The last file is a .pt written by modelbridge: PyTorch loads it with weights_only=True,
    // rebuilds the module from the spec inside it and predicts the same.
    const torch = peerPredict(current, [[0, 0], [0, 1], [1, 0], [1, 1]]);
    expect(maxAbsDiff(flatten(torch.outputs[0]!), trained.predictions)).toBeLessThanOrEqual(1e-6);
  });

  describe('bundles written by Python for every supported module type', () => {
    let zoo: ZooEntry[] = [];
    beforeAll(() => {
      zoo = peerMakeZoo(join(dir, 'zoo'));
    });

    it('run in modelbridge with PyTorch outputs', () => {
      expect(zoo.length).toBeGreaterThanOrEqual(5);
      for (const entry of zoo) {
        const c = readZooCase(entry);
        const model = loadModel(entry.bundle);
        const runner = new Runner(model);
        const x = Tensor.from('float32', nestedShape(c.input), flatten(c.input));
        const y = runner.run({ [runner.inputNames[0]!]: x });
        const out = Object.values(y)[0]!;
        expect(out.shape, entry.name).toEqual(nestedShape(c.output));
        const diff = maxAbsDiff(Array.from(out.toFloat32()), flatten(c.output));
        expect(diff, `${entry.name}: max |diff| ${diff}`).toBeLessThanOrEqual(1e-5);
      }
    });
  });
});
