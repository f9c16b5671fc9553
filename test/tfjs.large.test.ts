import { readdirSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertModel, loadModel, saveModel } from '../src/api/load.js';
import { FormatError } from '../src/core/errors.js';
import { ConcatSource, FileRangeSource } from '../src/core/source.js';
import { Tensor } from '../src/core/tensor.js';
import { lowerModule } from '../src/module/lower.js';
import type { ModuleSpec } from '../src/module/spec.js';
import { tempDir } from './cli-helpers.js';

/**
 * A TF.js model of 64 MiB or more is read lazily: every weight is a range of its shard files
 * (several, when it spans shards), so inspecting or converting it never holds the model.
 */
describe('a large TF.js graph model', () => {
  it('reads weights as ranges of the shard files, bit for bit, and converts back unchanged', () => {
    const n = 4200; // 70.6 MB of float32 weights: 17 shards of 4 MiB
    const spec: ModuleSpec = { type: 'Sequential', modules: [{ type: 'Linear', in_features: n, out_features: n, bias: true }] };
    const weight = new Float32Array(n * n).map((_, i) => Math.cos(i * 0.001));
    const weights = new Map([
      ['0.weight', Tensor.fromArray('float32', [n, n], weight)],
      ['0.bias', Tensor.fromArray('float32', [n], new Float32Array(n).fill(0.25))],
    ]);
    const lowered = lowerModule(spec, weights, 'big');
    const dir = tempDir();
    const source = join(dir, 'big.safetensors');
    saveModel({ format: 'safetensors', weights, graph: lowered.graph, signatures: [lowered.signature], module: spec, metadata: {} }, source);
    const tfjs = join(dir, 'web');
    convertModel(source, tfjs, { to: 'tfjs', verify: true });
    expect(readdirSync(tfjs).filter((f) => f.endsWith('.bin')).length).toBeGreaterThan(16);

    const model = loadModel(tfjs);
    const sources = [...model.weights.values()].map((t) => t.source);
    expect(sources.every((s) => s instanceof FileRangeSource || s instanceof ConcatSource)).toBe(true);
    expect(sources.some((s) => s instanceof ConcatSource)).toBe(true);
    expect(Buffer.compare(model.weights.get('0.weight')!.bytes(), Buffer.from(weight.buffer))).toBe(0);

    const back = join(dir, 'back.safetensors');
    convertModel(tfjs, back, { verify: true });
    expect(Buffer.compare(loadModel(back).weights.get('0.weight')!.bytes(), Buffer.from(weight.buffer))).toBe(0);

    // A shard cut short is found from the file sizes alone, before any weight is read.
    const shards = readdirSync(tfjs).filter((f) => f.endsWith('.bin')).sort();
    truncateSync(join(tfjs, shards[3]!), 1000);
    expect(() => loadModel(tfjs)).toThrow(FormatError);
    expect(() => loadModel(tfjs)).toThrow(/shard group1-shard\d+of\d+\.bin.*bytes in its group/);
  }, 120_000);
});
