import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, saveModel } from '../src/api/load.js';
import { readNpz } from '../src/api/npz.js';
import { runModel } from '../src/api/run.js';
import type { Tensor } from '../src/core/tensor.js';
import { cli, ROOT, tempDir } from './cli-helpers.js';
import { peerPython, runPeerScript } from './peers.js';

/**
 * Keras files against Keras itself. python/keras_peers.py builds models with Keras 3 (random
 * weights, fixed seeds; MobileNetV2 and EfficientNetB0 with weights=None at 32x32, a Conv/BN CNN,
 * LSTM and GRU classifiers, SimpleRNN and Bidirectional layers, an Embedding/Conv1D text model,
 * a transformer block (MultiHeadAttention, residuals, LayerNormalization), a Functional model with two inputs,
 * two outputs, a shared layer and a nested Sequential, every built-in activation, Keras masks from
 * Embedding(mask_zero=True) and Masking through LSTM, GRU, SimpleRNN, Bidirectional,
 * GlobalAveragePooling1D and MultiHeadAttention, with zeros mid-sequence and at the ends), saves each as
 * .keras and .h5, and records model.predict's outputs. modelbridge must read both files and
 * match them within 1e-5 x max(1, |ref|); the CLI's conversions to ONNX and SavedModel must run
 * in onnxruntime and TensorFlow within 1e-4 x max(1, |ref|) (the zoo's tolerance: another
 * runtime sums in another order), and the .keras files modelbridge writes must load in
 * keras.saving.load_model and predict what Keras predicted.
 */
const python = peerPython();

interface Case {
  readonly name: string;
  readonly inputs: string[];
  readonly outputs: string[];
}

interface Checked {
  readonly path: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly outputs?: string[];
}

let dir = '';
let cases: Case[] = [];

const npz = (path: string) => readNpz(new Uint8Array(readFileSync(path)), path);

/** The worst |got - want| / max(1, |want|), or a line saying why they cannot compare. */
function mismatch(got: Tensor | undefined, want: Tensor, tolerance: number): string | undefined {
  if (!got) return 'missing';
  if (got.shape.join(',') !== want.shape.join(',')) return `shape [${got.shape.join(', ')}], expected [${want.shape.join(', ')}]`;
  const a = got.toFloat32();
  const b = want.toFloat32();
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

function compare(label: string, got: ReadonlyMap<string, Tensor> | Record<string, Tensor>, c: Case, tolerance: number): string[] {
  const want = npz(join(dir, `${c.name}.outputs.npz`));
  const map = got instanceof Map ? got : new Map(Object.entries(got));
  return c.outputs.flatMap((name) => {
    const problem = mismatch(map.get(name), want.get(name)!, tolerance);
    return problem ? [`${label} output ${name}: ${problem}`] : [];
  });
}

/** Runs python/keras_peers.py check over files; each file's outputs by name. */
function checkInPython(entries: { kind: 'onnx' | 'savedmodel' | 'keras'; path: string; c: Case }[]): Map<string, Checked & { values?: Map<string, Tensor> }> {
  const manifest = entries.map((x, i) => ({ kind: x.kind, path: x.path, inputs: join(dir, `${x.c.name}.inputs.npz`), out: join(dir, `check-${i}.npz`) }));
  const path = join(dir, `manifest-${Date.now()}.json`);
  writeFileSync(path, JSON.stringify(manifest));
  const r = runPeerScript('keras_peers.py', ['check', path], { timeoutMs: 600_000 });
  if (r.status !== 0) throw new Error(`python/keras_peers.py check exited with ${r.status}: ${r.stderr.trim().slice(-2000)}`);
  const report = JSON.parse(r.stdout) as Checked[];
  return new Map(report.map((x, i) => [x.path, { ...x, values: x.ok ? npz(manifest[i]!.out) : undefined }]));
}

describe.skipIf(!python)('Keras .keras and .h5 files against Keras 3', () => {
  beforeAll(() => {
    dir = tempDir('mb-keras-peers-');
    const r = runPeerScript('keras_peers.py', ['build', dir], { timeoutMs: 600_000 });
    if (r.status !== 0) throw new Error(`python/keras_peers.py build exited with ${r.status}: ${r.stderr.trim().slice(-2000)}`);
    cases = JSON.parse(r.stdout) as Case[];
  }, 620_000);
  afterAll(() => {
    if (dir && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  });

  it('reads every model from .keras and .h5 and matches model.predict within 1e-5', () => {
    expect(cases.map((c) => c.name).sort()).toEqual(['activations', 'cnn', 'efficientnetb0', 'gru', 'lstm', 'masked', 'masked_attention', 'mobilenetv2', 'rnns', 'text', 'transformer', 'two_in_two_out', 'upsample']);
    const problems: string[] = [];
    for (const c of cases) {
      const inputs = Object.fromEntries(npz(join(dir, `${c.name}.inputs.npz`)));
      for (const ext of ['keras', 'h5']) {
        const model = loadModel(join(dir, `${c.name}.${ext}`));
        expect(model.format).toBe(ext);
        // The signature names the inputs and outputs as Keras does: by their layers.
        expect([...model.signatures[0]!.inputs.keys()], `${c.name}.${ext}`).toEqual(c.inputs);
        expect([...model.signatures[0]!.outputs.keys()], `${c.name}.${ext}`).toEqual(c.outputs);
        problems.push(...compare(`${c.name}.${ext}`, runModel(model, inputs), c, 1e-5));
      }
    }
    expect(problems).toEqual([]);
  });

  it('reads tf.keras 2 .h5 files (Keras 2 configs and weight names) and matches their predict', () => {
    // tf_keras lives in .peers/tfjs-venv (tensorflowjs pins it); scripts/peers-env.sh makes both.
    const tfjsPython = join(ROOT, '.peers', 'tfjs-venv', 'bin', 'python');
    if (!existsSync(tfjsPython) && process.env.CI !== 'true') return;
    const r = spawnSync(tfjsPython, [join(ROOT, 'python', 'keras_peers.py'), 'build-tf-keras', dir], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const k2 = JSON.parse(r.stdout) as Case[];
    expect(k2.map((c) => c.name)).toEqual(['tfkeras_cnn', 'tfkeras_func']);
    const problems: string[] = [];
    for (const c of k2) {
      const model = loadModel(join(dir, `${c.name}.h5`));
      expect([...model.signatures[0]!.outputs.keys()]).toEqual(c.outputs);
      problems.push(...compare(`${c.name}.h5`, runModel(model, Object.fromEntries(npz(join(dir, `${c.name}.inputs.npz`)))), c, 1e-5));
    }
    expect(problems).toEqual([]);
  });

  it('keeps Keras weight names and converts a CNN to PyTorch-layout safetensors', () => {
    const model = loadModel(join(dir, 'cnn.keras'));
    // A conv filter keeps its Keras name, transposed once to OIHW; BatchNorm statistics as Keras names them.
    expect(model.weights.get('conv1/kernel')?.shape).toEqual([8, 3, 3, 3]);
    expect(model.weights.has('bn1/moving_variance')).toBe(true);
    const out = join(dir, 'cnn.safetensors');
    const r = cli(['convert', join(dir, 'cnn.keras'), out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/verified: \d+ tensors bit-identical/);
    const back = loadModel(out);
    const inputs = Object.fromEntries(npz(join(dir, 'cnn.inputs.npz')));
    expect(compare('cnn.safetensors', runModel(back, inputs), cases.find((c) => c.name === 'cnn')!, 1e-5)).toEqual([]);
  });

  it('converts each model to ONNX and SavedModel with the CLI; onnxruntime and TensorFlow run them', { timeout: 400_000 }, () => {
    // LSTM and GRU export to TF unrolled over their fixed length (masked ones step by step); a 1-D
    // convolution as TF's conv1d (a Conv2D between ExpandDims and Squeeze), a transposed one as
    // Conv2DBackpropInput, and both read back (so verified) as the ONNX Conv and ConvTranspose they were.
    const entries: { kind: 'onnx' | 'savedmodel'; path: string; c: Case }[] = [];
    // EfficientNetB0 (16 MB) is read above; converting it too would double this file's CI time.
    for (const c of cases.filter((x) => x.name !== 'efficientnetb0')) {
      for (const kind of ['onnx', 'savedmodel'] as const) {
        const out = join(dir, `${c.name}.conv.${kind === 'onnx' ? 'onnx' : 'savedmodel'}`);
        const r = cli(['convert', join(dir, `${c.name}.keras`), out, '--to', kind, '--quiet']);
        expect(r.stderr, `${c.name} -> ${kind}`).toBe('');
        expect(r.code).toBe(0);
        entries.push({ kind, path: out, c });
      }
    }
    expect(entries).toHaveLength(24);
    const checked = checkInPython(entries);
    const problems: string[] = [];
    for (const x of entries) {
      const got = checked.get(x.path)!;
      if (!got.ok) problems.push(`${x.path}: ${got.error}`);
      else problems.push(...compare(x.path, got.values!, x.c, 1e-4));
    }
    expect(problems).toEqual([]);
  });

  it('writes legacy .h5 files that keras.saving.load_model loads and predicts the same; .keras -> .h5 -> .keras keeps names and bytes', { timeout: 400_000 }, () => {
    const entries: { kind: 'keras'; path: string; c: Case }[] = [];
    for (const c of cases.filter((x) => x.name !== 'efficientnetb0')) {
      const model = loadModel(join(dir, `${c.name}.keras`));
      const out = join(dir, `${c.name}.written.h5`);
      saveModel(model, out);
      entries.push({ kind: 'keras', path: out, c });
      // Read back: the same weights under the same Keras names, bit for bit, and the archive written from it is the direct one's.
      const back = loadModel(out);
      expect(back.format).toBe('h5');
      expect([...back.weights.keys()].sort(), c.name).toEqual([...model.weights.keys()].sort());
      for (const [name, w] of model.weights) expect(Buffer.from(back.weights.get(name)!.bytes()).equals(Buffer.from(w.bytes())), `${c.name} ${name}`).toBe(true);
      const again = join(dir, `${c.name}.via-h5.keras`);
      saveModel(back, again);
      const direct = join(dir, `${c.name}.direct.keras`);
      saveModel(model, direct);
      expect(readFileSync(again).equals(readFileSync(direct)), c.name).toBe(true);
    }
    // From Keras's own .h5 too.
    const fromH5 = join(dir, 'two_in_two_out.from-h5.h5');
    saveModel(loadModel(join(dir, 'two_in_two_out.h5')), fromH5);
    entries.push({ kind: 'keras', path: fromH5, c: cases.find((x) => x.name === 'two_in_two_out')! });
    const checked = checkInPython(entries);
    const problems: string[] = [];
    for (const x of entries) {
      const got = checked.get(x.path)!;
      if (!got.ok) problems.push(`${x.path}: ${got.error}`);
      else problems.push(...compare(x.path, got.values!, x.c, 1e-5));
    }
    expect(problems).toEqual([]);
  });

  it('writes .keras files that keras.saving.load_model loads and predicts the same, from .keras, .h5 and ONNX', { timeout: 400_000 }, () => {
    const entries: { kind: 'keras'; path: string; c: Case }[] = [];
    // From .keras for every model but EfficientNetB0 (CI time), from .h5 and from ONNX for four.
    const more = new Set(['cnn', 'lstm', 'rnns', 'two_in_two_out']);
    for (const c of cases.filter((x) => x.name !== 'efficientnetb0')) {
      for (const from of more.has(c.name) ? ['keras', 'h5', 'onnx'] : ['keras']) {
        const source = from === 'onnx' ? join(dir, `${c.name}.conv.onnx`) : join(dir, `${c.name}.${from}`);
        if (!existsSync(source)) expect(cli(['convert', join(dir, `${c.name}.keras`), source, '--quiet']).code).toBe(0);
        const out = join(dir, `${c.name}.from-${from}.keras`);
        if (from === 'onnx') {
          const r = cli(['convert', source, out, '--quiet']);
          expect(r.stderr, `${source} -> .keras`).toBe('');
          expect(r.code).toBe(0);
        } else {
          // In process: the CLI's path is the same saveModel, and each CLI start costs a second of CI time.
          saveModel(loadModel(source), out);
        }
        entries.push({ kind: 'keras', path: out, c });
      }
    }
    expect(entries.length).toBe(cases.length - 1 + 2 * more.size);
    // Deterministic: the same model written twice gives the same bytes.
    const again = join(dir, 'cnn.again.keras');
    saveModel(loadModel(join(dir, 'cnn.keras')), again);
    expect(readFileSync(again).equals(readFileSync(join(dir, 'cnn.from-keras.keras')))).toBe(true);
    const checked = checkInPython(entries);
    const problems: string[] = [];
    for (const x of entries) {
      const got = checked.get(x.path)!;
      if (!got.ok) problems.push(`${x.path}: ${got.error}`);
      else problems.push(...compare(x.path, got.values!, x.c, 1e-5));
    }
    expect(problems).toEqual([]);
  });
});
