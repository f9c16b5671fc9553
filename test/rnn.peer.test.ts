import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/api/load.js';
import { opsUsed } from '../src/core/graph.js';
import type { Tensor } from '../src/core/tensor.js';
import { readOnnxModel, readOnnxTensor, serializeOnnxModel } from '../src/formats/onnx/index.js';
import { Session } from '../src/runtime/executor.js';
import { tempDir } from './cli-helpers.js';
import { peerPython, runPeerScript } from './peers.js';

/**
 * modelbridge's LSTM, GRU and RNN kernels against the real implementations. python/rnn_peers.py
 * (in the peers' venv) builds the models and records reference outputs: single nodes over the
 * spec's attributes run by onnxruntime (ONNX's reference evaluator for float64, which onnxruntime's
 * CPU kernels lack), torch.nn.LSTM/GRU/RNN (2 layers, bidirectional, batch_first, with and without
 * initial states) through both torch.onnx exporters against torch's forward, and Keras LSTM/GRU
 * through tf2onnx against Keras; and If, Loop and Scan models (hand-built, and a scripted torch loop
 * exported by torch.onnx). Each model also runs after modelbridge's ONNX writer rewrote it.
 */
const python = peerPython();

interface PeerCase {
  readonly name: string;
  readonly dir: string;
  readonly inputs: string[];
  readonly outputs: string[];
  readonly reference: string;
}

interface Generated {
  readonly cases: PeerCase[];
  readonly skipped: { name: string; reason: string }[];
}

let dir = '';
let generated: Generated = { cases: [], skipped: [] };

function tensorAt(caseDir: string, file: string): Tensor {
  const path = join(caseDir, file);
  return readOnnxTensor(readFileSync(path), path);
}

/** The worst element, as |got − want| / max(1, |want|), or a line saying why they cannot compare. */
function mismatch(got: Tensor | undefined, want: Tensor, tolerance: number): string | undefined {
  if (!got) return 'missing';
  if (got.dtype !== want.dtype) return `dtype ${got.dtype}, expected ${want.dtype}`;
  if (got.shape.join(',') !== want.shape.join(',')) return `shape [${got.shape.join(', ')}], expected [${want.shape.join(', ')}]`;
  const a = got.toNumbers();
  const b = want.toNumbers();
  let worst = 0;
  let at = -1;
  for (let i = 0; i < b.length; i++) {
    const e = Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!));
    if (!(e <= worst)) {
      worst = e;
      at = i;
    }
  }
  return worst <= tolerance ? undefined : `element ${at}: ${a[at]} against ${b[at]} (relative error ${worst})`;
}

/** Runs a case as read, and as modelbridge's writer rewrites it; returns the problems found. */
function check(c: PeerCase): string[] {
  const file = join(c.dir, 'model.onnx');
  const model = readOnnxModel(readFileSync(file), file);
  const feeds: Record<string, Tensor> = {};
  c.inputs.forEach((name, k) => (feeds[name] = tensorAt(c.dir, `input_${k}.pb`)));
  const wants = c.outputs.map((_, k) => tensorAt(c.dir, `output_${k}.pb`));
  const rewritten = readOnnxModel(serializeOnnxModel(model, { opset: model.graph!.opset }), `${file} (rewritten)`);
  const problems: string[] = [];
  for (const [how, m] of [['read', model], ['rewritten', rewritten]] as const) {
    const outputs = new Session(m.graph!).run(feeds);
    c.outputs.forEach((name, k) => {
      const want = wants[k]!;
      const problem = mismatch(outputs[name], want, want.dtype === 'float64' ? 1e-10 : 1e-4);
      if (problem) problems.push(`${c.name} (${how}, against ${c.reference}) output ${name}: ${problem}`);
    });
  }
  return problems;
}

function checkAll(cases: readonly PeerCase[]): void {
  const problems = cases.flatMap(check);
  expect(problems).toEqual([]);
}

describe.skipIf(!python)('LSTM, GRU, RNN and control flow against onnxruntime, torch and Keras', () => {
  beforeAll(() => {
    dir = tempDir('mb-rnn-peers-');
    const r = runPeerScript('rnn_peers.py', [dir], { timeoutMs: 600_000 });
    if (r.status !== 0) throw new Error(`python/rnn_peers.py exited with ${r.status}: ${r.stderr.trim().slice(-2000)}`);
    generated = JSON.parse(r.stdout) as Generated;
  }, 620_000);
  afterAll(() => {
    if (dir && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  });

  it('single nodes over every attribute and input of the spec match onnxruntime', () => {
    const cases = generated.cases.filter((c) => /^(lstm|gru|rnn)_/.test(c.name));
    expect(cases.length).toBeGreaterThanOrEqual(50);
    // The matrix really covers what it claims: each op in each direction, layout 1, float64.
    for (const op of ['lstm', 'gru', 'rnn']) {
      for (const suffix of ['forward', 'reverse', 'bidirectional', 'bidirectional_seq_lens_initial', 'layout1_bidirectional', 'zero_length', 'float64', 'clip']) {
        expect(cases.map((c) => c.name)).toContain(`${op}_${suffix}`);
      }
    }
    checkAll(cases);
  });

  it('torch.nn.LSTM, GRU and RNN exported by torch.onnx (dynamo=False, opset 17) match torch', () => {
    const cases = generated.cases.filter((c) => /^torch_(lstm|gru|rnn)_torchscript/.test(c.name));
    expect(generated.skipped.filter((s) => s.name.includes('torchscript'))).toEqual([]);
    expect(cases.length).toBe(6);
    for (const c of cases) expect(c.reference, c.name).toMatch(/ops .*\b(LSTM|GRU|RNN)\b/);
    checkAll(cases);
  });

  it('the dynamo exporter\'s files match torch where it exports them', () => {
    const cases = generated.cases.filter((c) => /^torch_(lstm|gru|rnn)_dynamo/.test(c.name));
    const skipped = generated.skipped.filter((s) => s.name.includes('dynamo'));
    if (skipped.length) console.log(`dynamo exports not checked: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
    expect(cases.length + skipped.filter((s) => !cases.some((c) => c.name === s.name)).length).toBe(6);
    checkAll(cases);
  });

  it('Keras LSTM and GRU through tf2onnx match Keras where tf2onnx converts them', () => {
    // tf2onnx lowers the Keras GRU to an ONNX Loop over its cell, the LSTM to ONNX LSTM.
    const cases = generated.cases.filter((c) => /^keras_(lstm|gru)$/.test(c.name));
    const skipped = generated.skipped.filter((s) => /^keras_(lstm|gru)$/.test(s.name));
    if (skipped.length) console.log(`Keras through tf2onnx not checked: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
    expect(cases.length + skipped.length).toBeGreaterThanOrEqual(1);
    checkAll(cases);
  });

  it('Keras 3 LSTM/GRU SavedModels (model.export) import as ONNX LSTM/GRU and match Keras, also after writing ONNX; other loops are refused naming the While', () => {
    const cases = generated.cases.filter((c) => c.name.startsWith('keras_sm_'));
    expect(cases.length).toBe(7);
    const problems: string[] = [];
    for (const c of cases) {
      const dir = join(c.dir, 'saved_model');
      if (c.name.endsWith('_refused')) {
        expect(() => loadModel(dir), c.name).toThrow(/node \S+\/while \(While\): a Keras LSTM or GRU cell in the loop body \(it uses Relu at .*\): only Keras LSTM and GRU loops are imported/);
        continue;
      }
      const model = loadModel(dir);
      const ops = opsUsed(model.graph!);
      expect(ops.includes('LSTM') || ops.includes('GRU'), `${c.name}: ${ops.join(', ')}`).toBe(true);
      const x = tensorAt(c.dir, 'input_0.pb');
      const want = tensorAt(c.dir, 'output_0.pb');
      const onnx = readOnnxModel(serializeOnnxModel(model), `${c.name}.onnx`);
      for (const [how, graph] of [['SavedModel', model.graph!], ['written as ONNX', onnx.graph!]] as const) {
        const input = graph.inputs.find((i) => !graph.initializers.has(i.name))!;
        const got = new Session(graph).run({ [input.name]: x })[graph.outputs[0]!.name];
        const problem = mismatch(got, want, 1e-4);
        if (problem) problems.push(`${c.name} (${how}): ${problem}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('If, Loop and Scan (outer-scope reads, nesting, trip counts and conditions, scan axes and directions) match onnxruntime, a scripted torch loop matches torch', () => {
    const cases = generated.cases.filter((c) => /^(if|loop|scan)_|^torch_flow$/.test(c.name));
    expect(generated.skipped.filter((s) => s.name === 'torch_flow')).toEqual([]);
    expect(cases.map((c) => c.name).sort()).toEqual(
      ['if_outer_else', 'if_outer_then', 'loop_condition_stops', 'loop_trip_count', 'loop_while', 'loop_zero_iterations', 'scan_axes_directions', 'torch_flow'],
    );
    expect(cases.find((c) => c.name === 'torch_flow')!.reference).toMatch(/\bLoop\b/);
    checkAll(cases);
  });
});
