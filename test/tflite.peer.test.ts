import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertModel, loadModel } from '../src/api/load.js';
import { runModel } from '../src/api/run.js';
import type { Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { parseTflite } from '../src/formats/tflite/index.js';
import { tfliteBytes } from '../src/formats/tflite/writer.js';
import { writeOutputs } from '../src/cli/inputs.js';
import { cli, ROOT, tempDir } from './cli-helpers.js';
import { peerPython, runPeerScript } from './peers.js';
import { excess, FLOAT, npz } from './tflite-helpers.js';

/**
 * TFLite against the real thing: python/tflite_peers.py builds seeded Keras models (the OR gate,
 * an MLP, a Conv/BatchNorm CNN, a depthwise MobileNet-like block, a transformer block), converts
 * each with tf.lite.TFLiteConverter (float32; float16 weights; dynamic-range int8; full-integer
 * int8 from a representative dataset) and runs it in LiteRT. Then:
 *  - modelbridge reads every file and runs it to LiteRT's outputs;
 *  - `modelbridge convert` turns every file into ONNX, which onnxruntime runs to the same;
 *  - `modelbridge convert --to tflite` writes .tflite from the SavedModels and from the ONNX
 *    files, which LiteRT runs to modelbridge's outputs.
 */
const python = peerPython();

interface Case {
  readonly name: string;
  readonly model: string;
  readonly flavour: 'float32' | 'float16' | 'dynamic_int8' | 'int8' | 'int8io' | 'nosig';
  readonly file: string;
  readonly savedmodel: string;
  readonly ops: string[];
}

interface Job {
  readonly kind: 'tflite' | 'onnx';
  readonly model: string;
  readonly inputs: string;
  readonly outputs: string;
}

let dir = '';
let cases: Case[] = [];

const inputsOf = (c: Case) => npz(c.file.replace(/\.tflite$/, '.in.npz'));
const litertOf = (c: Case) => npz(c.file.replace(/\.tflite$/, '.out.npz'));

/** The model's outputs on the case's input, by signature key (the single input fed by position). */
function run(model: Model, inputs: Map<string, Tensor>): Tensor[] {
  const sig = model.signatures[0]!;
  const feeds = Object.fromEntries([...sig.inputs.keys()].map((k, i) => [k, inputs.get(k) ?? [...inputs.values()][i]!]));
  const out = runModel(model, feeds);
  return [...sig.outputs.keys()].map((k) => out[k]!);
}

/**
 * The tolerance an output is held to (excess() counts in its units): float results within 1e-5 relative; a
 * full-integer model within one step of its output's quantization (LiteRT requantizes in
 * integers, modelbridge rounds the float result); dynamic-range int8 within 2% of the output's
 * range, since LiteRT also quantizes each input row on the fly (asymmetric_quantize_inputs),
 * which modelbridge's float arithmetic does not.
 */
function toleranceFor(c: Case): (v: number, scale: number) => number {
  // Integer-only outputs are int8 values: one step is 1.
  if (c.flavour === 'int8io') return () => 1.0001;
  if (c.flavour === 'int8') {
    const q = quantStep(c);
    return () => q * 1.0001;
  }
  if (c.flavour === 'dynamic_int8') {
    const range = [...litertOf(c).values()].flatMap((t) => [...t.toFloat32()]).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    return () => 0.02 * range;
  }
  return FLOAT;
}

/** The quantization step of an int8 model's output: the scale of the tensor its final DEQUANTIZE reads. */
function quantStep(c: Case): number {
  const file = parseTflite(c.file, new Uint8Array(readFileSync(c.file)));
  const sub = file.subgraphs[0]!;
  const out = sub.outputs[0]!;
  const deq = sub.operators.find((o) => o.outputs.includes(out) && o.code === 6);
  const scale = deq ? sub.tensors[deq.inputs[0]!]!.quantization?.scale[0] : undefined;
  expect(scale, `${c.name}: its output comes from a DEQUANTIZE of an int8 tensor`).toBeGreaterThan(0);
  return scale!;
}

function batch(jobs: Job[]): { model: string; ops?: string[]; error?: string }[] {
  const path = join(dir, `jobs-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(jobs));
  const r = runPeerScript('tflite_peers.py', ['batch', path], { timeoutMs: 300_000 });
  if (r.status !== 0) throw new Error(`tflite_peers.py batch exited with ${r.status}: ${r.stderr.trim().slice(-2000)}`);
  return JSON.parse(r.stdout) as { model: string; ops?: string[]; error?: string }[];
}

describe.skipIf(!python)('TFLite against TFLiteConverter, LiteRT and onnxruntime', () => {
  beforeAll(() => {
    dir = tempDir('mb-tflite-peers-');
    const r = runPeerScript('tflite_peers.py', ['make', dir], { timeoutMs: 600_000 });
    if (r.status !== 0) throw new Error(`python/tflite_peers.py exited with ${r.status}: ${r.stderr.trim().slice(-2000)}`);
    cases = JSON.parse(r.stdout) as Case[];
  }, 620_000);
  afterAll(() => {
    if (dir && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  });

  it('the converter made what the cases claim: every flavour, the ops of each model', () => {
    expect(cases.length).toBe(22);
    const ops = (name: string) => cases.find((c) => c.name === name)!.ops;
    expect(ops('cnn_float32')).toEqual(expect.arrayContaining(['CONV_2D', 'MAX_POOL_2D', 'AVERAGE_POOL_2D', 'FULLY_CONNECTED', 'RESHAPE', 'SOFTMAX']));
    expect(ops('mobilenet_block_float32')).toEqual(expect.arrayContaining(['DEPTHWISE_CONV_2D', 'HARD_SWISH', 'MEAN', 'ADD']));
    expect(ops('transformer_float32')).toEqual(expect.arrayContaining(['BATCH_MATMUL', 'TRANSPOSE', 'GELU', 'CONCATENATION', 'SOFTMAX', 'RSQRT', 'SQUARED_DIFFERENCE']));
    expect(ops('mlp_float16')).toContain('DEQUANTIZE');
    expect(ops('cnn_int8')).toEqual(expect.arrayContaining(['QUANTIZE', 'DEQUANTIZE']));
    // Integer-only: no QUANTIZE/DEQUANTIZE at the edges, int8 in and out.
    expect(ops('cnn_int8io')).not.toContain('DEQUANTIZE');
    // Dynamic-range quantization stored int8 weights: the file shrank against float32.
    const size = (name: string) => readFileSync(cases.find((c) => c.name === name)!.file).byteLength;
    expect(size('mlp_dynamic_int8')).toBeLessThan(size('mlp_float32') / 2);
    expect(size('mlp_float16')).toBeLessThan(size('mlp_float32') * 0.7);
  });

  it('modelbridge reads every file and runs it to LiteRT (float 1e-5 relative, full int8 within one step)', () => {
    const report: string[] = [];
    for (const c of cases) {
      const model = loadModel(c.file);
      expect(model.format).toBe('tflite');
      const got = run(model, inputsOf(c));
      const want = [...litertOf(c).values()];
      const tol = toleranceFor(c);
      got.forEach((t, k) => {
        const e = excess(t, want[k]!, tol);
        if (!(e <= 1)) report.push(`${c.name} output ${k}: ${e.toFixed(2)} x tolerance`);
      });
    }
    expect(report).toEqual([]);
  });

  it('convert to ONNX: onnxruntime runs every converted file to modelbridge and LiteRT', () => {
    const jobs: Job[] = [];
    for (const c of cases) {
      const onnx = c.file.replace(/\.tflite$/, '.onnx');
      // Through the CLI for the CNN's files; in-process (the same convertModel) for the rest,
      // which saves a Node start per file.
      if (c.model === 'cnn') {
        const r = cli(['convert', c.file, onnx, '--quiet']);
        expect(r.stderr, `${c.name}: ${r.stderr}`).toBe('');
        expect(r.code).toBe(0);
      } else {
        expect(convertModel(c.file, onnx, { verify: true }).verification, c.name).toBeDefined();
      }
      jobs.push({ kind: 'onnx', model: onnx, inputs: c.file.replace(/\.tflite$/, '.in.npz'), outputs: onnx.replace(/\.onnx$/, '.ort.npz') });
    }
    const results = batch(jobs);
    expect(results.filter((r) => r.error)).toEqual([]);
    const report: string[] = [];
    cases.forEach((c, i) => {
      const ort = [...npz(jobs[i]!.outputs).values()];
      const ours = run(loadModel(c.file), inputsOf(c));
      const litert = [...litertOf(c).values()];
      ort.forEach((t, k) => {
        const mine = excess(t, ours[k]!, FLOAT);
        const theirs = excess(t, litert[k]!, toleranceFor(c));
        if (!(mine <= 1 && theirs <= 1)) report.push(`${c.name} output ${k}: ${mine.toFixed(2)} x tolerance from modelbridge, ${theirs.toFixed(2)} from LiteRT`);
      });
    });
    expect(report).toEqual([]);
  });

  it('convert --to tflite from SavedModel, ONNX, safetensors, .pt, TF.js and GraphDef sources: LiteRT runs what modelbridge wrote to modelbridge', () => {
    const sources: { name: string; source: string; inputs: string }[] = [];
    for (const model of ['or_gate', 'mlp', 'cnn', 'mobilenet_block']) {
      const c = cases.find((x) => x.name === `${model}_float32`)!;
      sources.push({ name: `${model} (SavedModel)`, source: c.savedmodel, inputs: c.file.replace(/\.tflite$/, '.in.npz') });
    }
    for (const model of ['or_gate', 'mlp', 'cnn', 'mobilenet_block', 'transformer']) {
      const c = cases.find((x) => x.name === `${model}_float32`)!;
      const onnx = join(dir, `${model}.source.onnx`);
      const r = cli(['convert', c.file, onnx, '--quiet']);
      expect(r.code, r.stderr).toBe(0);
      sources.push({ name: `${model} (ONNX)`, source: onnx, inputs: c.file.replace(/\.tflite$/, '.in.npz') });
    }
    // The OR gate as the demo writes it in every other format (safetensors and .pt bundles with
    // their module spec, TF.js, GraphDef), all four inputs at once: LiteRT resizes the batch.
    const or4 = join(dir, 'or4.npz');
    writeOutputs(or4, { x: Tensor.from('float32', [4, 2], [0, 0, 0, 1, 1, 0, 1, 1]) }, true);
    for (const f of ['or-gate.safetensors', 'or-gate.pt', 'or-gate.json', 'or-gate.pb']) sources.push({ name: `OR gate (${f})`, source: join(ROOT, 'samples', 'or-gate', f), inputs: or4 });
    const jobs: Job[] = sources.map((s, i) => {
      const out = join(dir, `written-${i}.tflite`);
      const r = cli(['convert', s.source, out, '--quiet']);
      expect(r.stderr, `${s.name}: ${r.stderr}`).toBe('');
      expect(r.code).toBe(0);
      return { kind: 'tflite', model: out, inputs: s.inputs, outputs: out.replace(/\.tflite$/, '.litert.npz') };
    });
    // The layout of models past 2 GB, buffers after the FlatBuffer at offsets: LiteRT reads it too.
    const cnn = sources.find((x) => x.name === 'cnn (SavedModel)')!;
    const offsetFile = join(dir, 'cnn-offset-buffers.tflite');
    writeFileSync(offsetFile, tfliteBytes(loadModel(cnn.source), { offsetBuffers: true }));
    expect(parseTflite(offsetFile, new Uint8Array(readFileSync(offsetFile))).buffers.filter((b) => b.kind === 'file').length).toBeGreaterThan(3);
    sources.push({ ...cnn, name: 'cnn (SavedModel, offset buffers)' });
    jobs.push({ kind: 'tflite', model: offsetFile, inputs: cnn.inputs, outputs: offsetFile.replace(/\.tflite$/, '.litert.npz') });
    const results = batch(jobs);
    expect(results.filter((r) => r.error)).toEqual([]);
    const report: string[] = [];
    sources.forEach((s, i) => {
      const ours = run(loadModel(s.source), npz(s.inputs));
      const litert = [...npz(jobs[i]!.outputs).values()];
      expect(litert.length, s.name).toBe(ours.length);
      ours.forEach((t, k) => {
        const e = excess(litert[k]!, t, FLOAT);
        if (!(e <= 1)) report.push(`${s.name} output ${k}: ${e.toFixed(2)} x tolerance`);
      });
    });
    expect(report).toEqual([]);
    // The CNN was written with real TFLite convolutions, not something LiteRT merely tolerates.
    expect(results[2]!.ops).toEqual(expect.arrayContaining(['CONV_2D', 'MAX_POOL_2D', 'FULLY_CONNECTED']));
    expect(results[3]!.ops).toEqual(expect.arrayContaining(['DEPTHWISE_CONV_2D']));
  });

  it('convert --quantize float16|dynamic-int8 stores the weights TFLiteConverter stores, and LiteRT runs them', () => {
    const jobs: Job[] = [];
    const written: { case: Case; mode: string; file: string }[] = [];
    for (const model of ['mlp', 'cnn']) {
      const c = cases.find((x) => x.name === `${model}_float32`)!;
      for (const mode of ['float16', 'dynamic-int8']) {
        const out = join(dir, `${model}.${mode}.tflite`);
        const r = cli(['convert', c.savedmodel, out, '--quantize', mode, '--quiet']);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toMatch(new RegExp(`quantized to ${mode} within its bound`));
        written.push({ case: c, mode, file: out });
        jobs.push({ kind: 'tflite', model: out, inputs: c.file.replace(/\.tflite$/, '.in.npz'), outputs: out.replace(/\.tflite$/, '.litert.npz') });
      }
    }
    const results = batch(jobs);
    expect(results.filter((r) => r.error)).toEqual([]);
    // Weights as TFLiteConverter quantizes them: the MLP's FULLY_CONNECTED weights byte for byte
    // (int8 values and per-channel scales; float16 halves behind DEQUANTIZE).
    const weightsOf = (file: string, mode: string) => {
      const m = parseTflite(file, new Uint8Array(readFileSync(file)));
      const g = m.subgraphs[0]!;
      const bytes = (t: number) => {
        const b = m.buffers[g.tensors[t]!.buffer]!;
        return b.kind === 'inline' ? Buffer.from(b.data).toString('hex') : '';
      };
      // Matrices only: Keras's zero biases the converter drops altogether.
      if (mode === 'float16') return g.operators.filter((o) => o.code === 6 && g.tensors[o.inputs[0]!]!.type === 1 && g.tensors[o.inputs[0]!]!.shape.length === 2).map((o) => bytes(o.inputs[0]!)).sort();
      return g.operators.filter((o) => o.code === 9 && g.tensors[o.inputs[1]!]!.type === 9).map((o) => `${bytes(o.inputs[1]!)} ${g.tensors[o.inputs[1]!]!.quantization!.scale.join()}`);
    };
    for (const [mode, flavour] of [['float16', 'float16'], ['dynamic-int8', 'dynamic_int8']] as const) {
      const ours = weightsOf(join(dir, `mlp.${mode}.tflite`), mode);
      const theirs = weightsOf(cases.find((x) => x.name === `mlp_${flavour}`)!.file, mode);
      expect(ours.length, mode).toBeGreaterThanOrEqual(2);
      expect(ours, mode).toEqual(theirs);
    }
    // LiteRT runs what was written to modelbridge's reading of it (dynamic-range: LiteRT's own
    // input quantization aside) and near the converter's quantized model.
    const report: string[] = [];
    written.forEach((w, i) => {
      const litert = [...npz(jobs[i]!.outputs).values()];
      const ours = run(loadModel(w.file), inputsOf(w.case));
      const flavour = cases.find((x) => x.name === `${w.case.model}_${w.mode.replace('-', '_')}`)!;
      const tol = toleranceFor(flavour);
      const converter = [...litertOf(flavour).values()];
      litert.forEach((t, k) => {
        const mine = excess(t, ours[k]!, tol);
        // The converter also folds BatchNorm into the convolution before rounding: 1e-3 relative.
        const theirs = excess(t, converter[k]!, (v, scale) => Math.max(tol(v, scale), 1e-3 * Math.max(v, scale)));
        if (!(mine <= 1 && theirs <= 1)) report.push(`${w.case.model} ${w.mode} output ${k}: ${mine.toFixed(2)} x tolerance from modelbridge, ${theirs.toFixed(2)} from the converter's file`);
      });
    });
    expect(report).toEqual([]);
  });
});
