import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/api/load.js';
import { FORMATS } from '../src/formats/registry.js';
import { cli, ROOT, tempDir } from './cli-helpers.js';

/**
 * validate and diff over the OR gate in every format modelbridge writes (samples/or-gate, made by
 * the demo): each file validates clean, round trips through every other format unchanged, and
 * any two of them compare equal; a changed weight inside a TensorFlow checkpoint is named by diff.
 */
const SAMPLES = join(ROOT, 'samples', 'or-gate');
const FILES: Record<string, string> = {
  safetensors: 'or-gate.safetensors',
  pytorch: 'or-gate.pt',
  pt2: 'or-gate.pt2',
  onnx: 'or-gate.onnx',
  savedmodel: 'or-gate-savedmodel',
  graphdef: 'or-gate.pb',
  tfjs: 'or-gate.json',
  tflite: 'or-gate.tflite',
  keras: 'or-gate.keras',
  h5: 'or-gate.h5',
};

/** The formats modelbridge writes. */
const writable = () => FORMATS.filter((f) => !f.readOnly).map((f) => f.name);

interface Report {
  status: string;
  models: { path: string; format: string | null; status: string; checks: { name: string; status: string; message: string }[] }[];
}

describe('every format: validate and diff agree the OR gate is the same model', () => {
  it('the samples cover every registered format', () => {
    expect(Object.keys(FILES).sort()).toEqual(writable().sort());
  });

  it('each sample validates clean in its own format (exit 0, no check failed)', () => {
    const paths = Object.values(FILES).map((f) => join(SAMPLES, f));
    const r = cli(['validate', ...paths, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.models.map((m) => m.format)).toEqual(Object.keys(FILES));
    for (const m of report.models) {
      expect(m.status, `${m.path}: ${JSON.stringify(m.checks)}`).toBe('pass');
      expect(m.checks.find((c) => c.name === 'runs')?.status).toBe('pass');
    }
  });

  it('--roundtrip through every format keeps the weights bit for bit and the outputs', () => {
    const r = cli(['validate', join(SAMPLES, FILES.safetensors!), '--roundtrip', writable().join(','), '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    const hops = report.models[0]!.checks.filter((c) => c.name.startsWith('roundtrip:'));
    expect(hops.map((c) => c.name)).toEqual(writable().map((f) => `roundtrip:${f}`));
    for (const hop of hops) expect(hop.status, `${hop.name}: ${hop.message}`).toBe('pass');
  });

  it('diff finds any two formats equal', () => {
    const names = Object.keys(FILES);
    for (let i = 0; i < names.length; i++) {
      const j = (i + 1) % names.length;
      const r = cli(['diff', join(SAMPLES, FILES[names[i]!]!), join(SAMPLES, FILES[names[j]!]!)]);
      expect(r.code, `${names[i]} vs ${names[j]}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  });

  it('a flipped byte in a SavedModel checkpoint: validate names the tensor (exit 2), diff refuses the file', () => {
    const dir = join(tempDir(), 'flipped');
    cpSync(join(SAMPLES, FILES.savedmodel!), dir, { recursive: true });
    const data = join(dir, 'variables', 'variables.data-00000-of-00001');
    const bytes = readFileSync(data);
    bytes[1]! ^= 0x40;
    writeFileSync(data, bytes);
    const v = cli(['validate', dir]);
    expect(v.code).toBe(2);
    expect(v.stdout).toMatch(/UNREADABLE/);
    expect(v.stdout).toMatch(/tensor "0\.bias" at byte 0: data matching its checksum/);
    const d = cli(['diff', join(SAMPLES, FILES.safetensors!), dir]);
    expect(d.code).toBe(2);
    expect(d.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('diff names a weight changed inside TF.js shards (no checksums there), against the safetensors bundle', () => {
    const dir = tempDir();
    for (const f of [FILES.tfjs!, 'or-gate.group1-shard1of1.bin']) cpSync(join(SAMPLES, f), join(dir, f));
    const shard = join(dir, 'or-gate.group1-shard1of1.bin');
    const bytes = readFileSync(shard);
    bytes.writeFloatLE(bytes.readFloatLE(0) + 0.5, 0);
    writeFileSync(shard, bytes);
    const r = cli(['diff', join(SAMPLES, FILES.safetensors!), join(dir, FILES.tfjs!), '--json']);
    expect(r.code, r.stderr).toBe(1);
    const tensors = (JSON.parse(r.stdout) as { weights: { tensors: { name: string; status: string }[] } }).weights.tensors;
    const changed = tensors.filter((t) => t.status !== 'identical');
    expect(changed).toHaveLength(1);
    expect(loadModel(join(SAMPLES, FILES.safetensors!)).weights.has(changed[0]!.name)).toBe(true);
  });
});
