import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertModelBytes, errorLine, releaseModel, inspectFiles, readModel, readModelSync, validateFiles, writeModel } from '../src/api/bytes.js';
import { orBatch } from '../src/api/demo.js';
import { loadModel, saveModel } from '../src/api/load.js';
import { runModel } from '../src/api/run.js';
import { inspectModel } from '../src/api/inspect.js';
import { formatNames } from '../src/formats/registry.js';
import { cli, ROOT, tempDir } from './cli-helpers.js';

/**
 * The bytes API (src/api/bytes.ts) against the path API on the same files: both go through the
 * same readers and writers (the bytes mounted as an in-memory volume), so every answer must be
 * the same, down to the bytes written and the one-line error.
 */

const SAMPLES = join(ROOT, 'samples', 'or-gate');

/** Every file under a folder, relative path -> bytes (what a page gets from a dropped folder). */
function folderFiles(dir: string, under = relative(join(dir, '..'), dir)): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) for (const [k, v] of folderFiles(p, `${under}/${name}`)) out.set(k, v);
    else out.set(`${under}/${name}`, new Uint8Array(readFileSync(p)));
  }
  return out;
}

/** The samples as a page gets them: one file each, TF.js as its JSON with its shard, SavedModel as its folder. */
const SAMPLE_INPUTS: Array<[string, string, () => Parameters<typeof readModelSync>[0]]> = [
  ['or-gate.safetensors', 'safetensors', () => new Uint8Array(readFileSync(join(SAMPLES, 'or-gate.safetensors')))],
  ['or-gate.onnx', 'onnx', () => new Uint8Array(readFileSync(join(SAMPLES, 'or-gate.onnx')))],
  ['or-gate.pt', 'pytorch', () => new Uint8Array(readFileSync(join(SAMPLES, 'or-gate.pt')))],
  ['or-gate.pt2', 'pt2', () => new Uint8Array(readFileSync(join(SAMPLES, 'or-gate.pt2')))],
  ['or-gate.pb', 'graphdef', () => new Uint8Array(readFileSync(join(SAMPLES, 'or-gate.pb')))],
  ['or-gate.tflite', 'tflite', () => new Uint8Array(readFileSync(join(SAMPLES, 'or-gate.tflite')))],
  ['or-gate.json', 'tfjs', () => ({ 'or-gate.json': new Uint8Array(readFileSync(join(SAMPLES, 'or-gate.json'))), 'or-gate.group1-shard1of1.bin': new Uint8Array(readFileSync(join(SAMPLES, 'or-gate.group1-shard1of1.bin'))) })],
  ['or-gate-savedmodel', 'savedmodel', () => folderFiles(join(SAMPLES, 'or-gate-savedmodel'))],
];

function predictions(model: Parameters<typeof runModel>[0]): number[] {
  const y = runModel(model, { x: orBatch() })['y']!;
  return y.toNumbers();
}

describe('bytes API', () => {
  for (const [name, format, files] of SAMPLE_INPUTS) {
    it(`reads ${name} from bytes as the path API reads the file`, () => {
      const model = readModelSync(files(), { name });
      expect(model.format).toBe(format);
      const fromPath = loadModel(join(SAMPLES, name));
      const y = predictions(model);
      // The same readers on the same bytes: bit-identical outputs, and the OR gate's answers.
      expect(y).toEqual(predictions(fromPath));
      expect(y.map((v) => Math.round(v))).toEqual([0, 1, 1, 1]);
      expect(inspectModel(model, name)).toEqual(inspectModel(fromPath, name));
    });
  }

  it('reads Blobs (a File from a page) asynchronously', async () => {
    const bytes = readFileSync(join(SAMPLES, 'or-gate.onnx'));
    const model = await readModel(new Blob([bytes]), { name: 'or-gate.onnx' });
    expect(predictions(model).map((v) => Math.round(v))).toEqual([0, 1, 1, 1]);
    const { report } = await inspectFiles({ 'or-gate.onnx': new Blob([bytes]) });
    expect(report.path).toBe('or-gate.onnx');
    expect(report.format).toBe('onnx');
  });

  it('writes every format as the path API does, byte for byte, and reads it back', () => {
    const model = loadModel(join(SAMPLES, 'or-gate.safetensors'));
    const dir = tempDir('modelbridge-bytes-');
    for (const format of formatNames()) {
      // Keras writes only models read from Keras (their layer configs); h5 is read only.
      if (format === 'h5' || format === 'keras') continue;
      const files = writeModel(model, format);
      expect(files.size, format).toBeGreaterThan(0);
      // The same writer through Node's file system: the same names and bytes (deterministic writers).
      const out = join(dir, format);
      mkdirSync(out);
      const name = ([...files.keys()].find((k) => !k.endsWith('.bin')) ?? [...files.keys()][0]!).split('/')[0]!;
      saveModel(model, format === 'savedmodel' ? join(out, name) + '/' : join(out, name), { format });
      const onDisk = folderFiles(out, '');
      expect([...files.keys()].map((k) => `/${k}`), format).toEqual([...onDisk.keys()]);
      for (const [k, bytes] of files) expect(Buffer.compare(bytes, onDisk.get(`/${k}`)!), `${format} ${k}`).toBe(0);
      const back = readModelSync(files);
      expect(back.format).toBe(format);
      expect(predictions(back).map((v) => Math.round(v)), format).toEqual([0, 1, 1, 1]);
    }
  });

  it('reads back what it writes as several files: ONNX with external data, sharded safetensors', () => {
    const model = loadModel(join(SAMPLES, 'or-gate.safetensors'));
    const onnx = writeModel(model, 'onnx', { externalData: 1, name: 'or.onnx' });
    expect(onnx.size).toBe(2);
    const shards = writeModel(model, 'safetensors', { shardBytes: 16, name: 'or' });
    expect([...shards.keys()].filter((k) => k.startsWith('or/') && k.endsWith('.safetensors')).length).toBeGreaterThan(1);
    for (const files of [onnx, shards]) {
      const back = readModelSync(files);
      expect(predictions(back).map((v) => Math.round(v))).toEqual([0, 1, 1, 1]);
    }
  });

  it('releases a model\'s bytes (its volume is unmounted); writes and failed reads leave none mounted', async () => {
    const { mountedCount } = await import('../src/core/vfs.js');
    const before = mountedCount();
    const model = await readModel(new Uint8Array(readFileSync(join(SAMPLES, 'or-gate.onnx'))), { name: 'or-gate.onnx' });
    expect(mountedCount()).toBe(before + 1);
    writeModel(model, 'savedmodel');
    await readModel(new Uint8Array(8), { name: 'bad.onnx' }).catch(() => undefined);
    expect(mountedCount()).toBe(before + 1);
    releaseModel(model);
    expect(mountedCount()).toBe(before);
    // Small files' tensors are views read at load: the model still runs.
    expect(predictions(model).map((v) => Math.round(v))).toEqual([0, 1, 1, 1]);
  });

  it('converts with verification', () => {
    const model = loadModel(join(SAMPLES, 'or-gate.pt'));
    const r = convertModelBytes(model, 'tfjs', { name: 'web.json' });
    expect([...r.files.keys()]).toEqual(['web.group1-shard1of1.bin', 'web.json']);
    expect(r.verification.weights.identical).toBe(r.verification.weights.tensors);
    expect(r.verification.outputs.compared).toBe(true);
    expect(r.verification.outputs.maxAbs).toBe(0);
  });

  it('validates from bytes, naming the file as given', async () => {
    const report = await validateFiles(new Uint8Array(readFileSync(join(SAMPLES, 'or-gate.tflite'))), { name: 'or-gate.tflite' });
    expect(report.path).toBe('or-gate.tflite');
    expect(report.status).toBe('pass');
    expect(report.checks.every((c) => !c.message.includes('@modelbridge-memory'))).toBe(true);
  });

  it('gives an unreadable file the same one line as the CLI', async () => {
    const dir = tempDir('modelbridge-bytes-');
    const bad = new Uint8Array(readFileSync(join(SAMPLES, 'or-gate.onnx'))).subarray(0, 40);
    writeFileSync(join(dir, 'bad.onnx'), bad);
    const r = cli(['inspect', 'bad.onnx'], dir);
    expect(r.code).toBe(2);
    const error = await readModel(bad, { name: 'bad.onnx' }).then(() => undefined, (e: unknown) => e);
    expect(errorLine(error)).toEqual({ line: r.stderr.trim(), code: 2 });
  });

  it('refuses a model naming a file it was not given, and paths that climb out', async () => {
    const json = new Uint8Array(readFileSync(join(SAMPLES, 'or-gate.json')));
    const error = await readModel({ 'or-gate.json': json }).then(() => undefined, (e: unknown) => e);
    const { line, code } = errorLine(error);
    expect(code).toBe(2);
    expect(line).toMatch(/^error: or-gate\.json: .*or-gate\.group1-shard1of1\.bin/);
    expect(line).not.toContain('@modelbridge-memory');
    await expect(readModel({ '../x.onnx': json })).rejects.toThrow(/relative path inside/);
  });
});
