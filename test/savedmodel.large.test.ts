import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, saveModel } from '../src/api/load.js';
import { Tensor } from '../src/core/tensor.js';
import { readTensorBundle } from '../src/formats/tensorbundle/reader.js';
import { lowerModule } from '../src/module/lower.js';
import type { ModuleSpec } from '../src/module/spec.js';
import { cli, tempDir } from './cli-helpers.js';

/**
 * A SavedModel whose data file is large enough to be read lazily (>= 64 MiB): its tensors are
 * checked against their CRC-32C while a conversion streams them, so a corrupt one still fails the
 * command with one line naming it, and leaves no output behind.
 */
describe('a large SavedModel', () => {
  it('converts in one pass, and a flipped byte fails the conversion naming the tensor, output removed', () => {
    const n = 4200; // 4200 x 4200 float32: 70.6 MB, past the 64 MiB lazy threshold
    const spec: ModuleSpec = { type: 'Sequential', modules: [{ type: 'Linear', in_features: n, out_features: n, bias: true }] };
    const weight = new Float32Array(n * n).map((_, i) => Math.sin(i));
    const weights = new Map([
      ['0.weight', Tensor.fromArray('float32', [n, n], weight)],
      ['0.bias', Tensor.fromArray('float32', [n], new Float32Array(n).fill(0.5))],
    ]);
    const lowered = lowerModule(spec, weights, 'big');
    const dir = tempDir();
    const saved = join(dir, 'saved');
    saveModel({ format: 'safetensors', weights, graph: lowered.graph, signatures: [lowered.signature], module: spec, metadata: {} }, saved, { format: 'savedmodel' });

    // Clean: converts, weights bit-identical (read back through the lazy, checking path).
    const good = join(dir, 'good.safetensors');
    const ok = cli(['convert', saved, good]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(Buffer.compare(loadModel(good).weights.get('0.weight')!.bytes(), Buffer.from(weight.buffer))).toBe(0);

    // SavedModel -> SavedModel: the checkpoint's CRCs are taken from the verified source, not
    // recomputed, and must still be right: the rewrite is byte-identical to what was written.
    const again = join(dir, 'again');
    const same = cli(['convert', saved, again, '--to', 'savedmodel']);
    expect(same.code, same.stderr).toBe(0);
    for (const f of ['variables.index', 'variables.data-00000-of-00001']) {
      expect(Buffer.compare(readFileSync(join(again, 'variables', f)), readFileSync(join(saved, 'variables', f))), f).toBe(0);
    }

    const data = join(saved, 'variables', 'variables.data-00000-of-00001');
    const bytes = readFileSync(data);
    expect(bytes.byteLength).toBeGreaterThanOrEqual(64 * 1024 * 1024);
    const entry = [...readTensorBundle(join(saved, 'variables', 'variables'), { verify: false }).entries].find(([, e]) => e.size === n * n * 4)!;
    bytes[entry[1].offset + 12345]! ^= 0x10;
    writeFileSync(data, bytes);

    const out = join(dir, 'out', 'bad.safetensors');
    const r = cli(['convert', saved, out]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`variables\\.data-00000-of-00001: tensor "${entry[0]}" at byte ${entry[1].offset}: data matching its checksum`));
    expect(existsSync(out)).toBe(false);
    expect(existsSync(join(dir, 'out')) ? readdirSync(join(dir, 'out')) : []).toEqual([]);
    // Nor is a corrupt tensor copied into a new checkpoint under its old, now wrong, checksum.
    const copy = cli(['convert', saved, join(dir, 'copy'), '--to', 'savedmodel']);
    expect(copy.code).toBe(2);
    expect(copy.stderr).toMatch(/data matching its checksum/);
    expect(existsSync(join(dir, 'copy'))).toBe(false);
  }, 120_000);
});
