import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel, saveModel } from '../src/api/load.js';
import { Runner } from '../src/api/run.js';
import { cli } from './cli-helpers.js';
import { fromJson, ok, peerBatch, relDiff, type JsonTensor } from './fixtures/verdicts/peer.js';
import { peerPython } from './peers.js';

/**
 * Issue 11: converting a torch.onnx.export (dynamo, opset 18) model to ONNX at the default opset 17
 * (or to GraphDef) failed verification with "tensor val_226 is missing after writing" although the
 * file was right: ReduceMean's axes input becomes an attribute below opset 18, and its initializer
 * goes. This checks the written opset-17 file with onnx.checker and onnxruntime against torch, and
 * that `convert` verifies it (the verifier counts the axes as a constant folded into the graph).
 */

const python = peerPython();

interface Reduced {
  readonly x: JsonTensor;
  readonly values: Record<string, JsonTensor>;
}

interface OnnxRun {
  readonly outputs: string[];
  readonly values: Record<string, JsonTensor>;
}

const OUTPUTS = ['centered', 'peak'];

describe.skipIf(!python)('ReduceMean and ReduceMax of an opset-18 dynamo export written at opset 17', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mb-verdicts-reduce-'));
  const source = join(dir, 'reduce18.onnx');
  const written = join(dir, 'reduce17.onnx');
  let torchRun: Reduced;
  let ortRun: OnnxRun | Error;

  beforeAll(() => {
    torchRun = ok(peerBatch([{ cmd: 'torch-reduce', args: [source] }])[0]);
    saveModel(loadModel(source), written, { format: 'onnx', opset: 17 });
    ortRun = peerBatch([{ cmd: 'onnx', args: [written], input: { inputs: { x: torchRun.x } } }])[0] as OnnxRun | Error;
  }, 600_000);

  it('the export is opset 18 with the axes as inputs', () => {
    const g = loadModel(source).graph!;
    expect(g.opset).toBe(18);
    for (const op of ['ReduceMean', 'ReduceMax']) {
      const node = g.nodes.find((n) => n.op === op)!;
      expect(node.inputs, op).toHaveLength(2);
      expect(g.initializers.has(node.inputs[1]!), op).toBe(true);
    }
  });

  it('the opset-17 file has axes attributes, passes onnx.checker (full) and runs in onnxruntime to torch\'s outputs', () => {
    const g = loadModel(written).graph!;
    expect(g.opset).toBe(17);
    expect(g.nodes.find((n) => n.op === 'ReduceMean')!.attributes['axes']).toEqual({ type: 'ints', value: [-1] });
    expect(g.nodes.find((n) => n.op === 'ReduceMax')!.attributes['axes']).toEqual({ type: 'ints', value: [1] });
    const run = ok<OnnxRun>(ortRun);
    expect(run.outputs).toEqual(OUTPUTS);
    for (const k of OUTPUTS) expect(relDiff(fromJson(run.values[k]!), fromJson(torchRun.values[k]!)), k).toBeLessThan(1e-5);
  });

  it('modelbridge runs the opset-17 file to torch\'s outputs', () => {
    const out = new Runner(loadModel(written)).run({ x: fromJson(torchRun.x) });
    for (const k of OUTPUTS) expect(relDiff(out[k]!, fromJson(torchRun.values[k]!)), k).toBeLessThan(1e-5);
  });

  for (const [target, file] of [
    ['ONNX at the default opset', 'cli17.onnx'],
    ['GraphDef', 'cli.pb'],
  ] as const) {
    it(`convert to ${target} verifies (exit 0) instead of failing on the removed axes tensor`, () => {
      const r = cli(['convert', source, join(dir, file)]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/verified/);
      expect(r.stdout).not.toMatch(/missing/);
    });
  }
});
