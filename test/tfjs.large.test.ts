import { readdirSync, readFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertModel, loadModel, saveModel } from '../src/api/load.js';
import { FormatError } from '../src/core/errors.js';
import { ConcatSource, FileRangeSource, type ByteSource } from '../src/core/source.js';
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

  /** A weight source that streams (chunks) but refuses to be read whole, failing after `failAfter` chunks if given. */
  function streamOnly(bytes: Uint8Array, failAfter?: number): ByteSource & { wholeReads: number } {
    return {
      byteLength: bytes.byteLength,
      wholeReads: 0,
      read() {
        this.wholeReads++;
        return bytes;
      },
      *chunks(size: number) {
        for (let at = 0, n = 0; at < bytes.byteLength; at += size, n++) {
          if (n === failAfter) throw new Error('source failed mid-stream');
          yield bytes.subarray(at, at + size);
        }
      },
    };
  }

  it('writes the shards by streaming each weight, never holding it whole, across shard boundaries', () => {
    const n = 1500; // 9 MB: a weight spanning three 4 MiB shards, and the bias after it
    const spec: ModuleSpec = { type: 'Sequential', modules: [{ type: 'Linear', in_features: n, out_features: n, bias: true }] };
    const weight = new Float32Array(n * n).map((_, i) => Math.sin(i * 0.01));
    const bias = new Float32Array(n).map((_, i) => i / n);
    const source = streamOnly(new Uint8Array(weight.buffer));
    const weights = new Map([
      ['0.weight', new Tensor('float32', [n, n], source)],
      ['0.bias', Tensor.fromArray('float32', [n], bias)],
    ]);
    const lowered = lowerModule(spec, weights, 'streamed');
    const dir = join(tempDir(), 'web');
    saveModel({ format: 'safetensors', weights, graph: lowered.graph, signatures: [lowered.signature], module: spec, metadata: {} }, dir, { format: 'tfjs' });
    expect(source.wholeReads).toBe(0);
    const shards = readdirSync(dir).filter((f) => f.endsWith('.bin')).sort();
    expect(shards).toEqual(['group1-shard1of3.bin', 'group1-shard2of3.bin', 'group1-shard3of3.bin']);
    const all = Buffer.concat(shards.map((f) => readFileSync(join(dir, f))));
    // The shards are the weights back to back in manifest order, whichever order that is.
    const w = Buffer.from(weight.buffer);
    const b = Buffer.from(bias.buffer);
    expect([Buffer.concat([w, b]), Buffer.concat([b, w])].some((x) => x.equals(all))).toBe(true);
    expect(Buffer.compare(loadModel(dir).weights.get('0.weight')!.bytes(), w)).toBe(0);
  });

  it('a weight failing mid-stream leaves no shard, no model.json and no temporary file', () => {
    const n = 1500;
    const spec: ModuleSpec = { type: 'Sequential', modules: [{ type: 'Linear', in_features: n, out_features: n, bias: false }] };
    const weights = new Map([['0.weight', new Tensor('float32', [n, n], streamOnly(new Uint8Array(n * n * 4), 1))]]);
    const lowered = lowerModule(spec, weights, 'failing');
    const parent = tempDir();
    const dir = join(parent, 'web');
    // 1 MiB shards: the first shards are complete before the source fails.
    expect(() => saveModel({ format: 'safetensors', weights, graph: lowered.graph, signatures: [lowered.signature], module: spec, metadata: {} }, dir, { format: 'tfjs', shardBytes: 1 << 20 })).toThrow('source failed mid-stream');
    // Outputs are staged beside the target: nothing of it, and no temporary, is left in its folder.
    expect(readdirSync(parent)).toEqual([]);
  });
});
