import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertModel, loadModel } from '../src/api/load.js';
import { runModel } from '../src/api/run.js';
import { parseTflite } from '../src/formats/tflite/index.js';
import { builtinName } from '../src/formats/tflite/ops.js';
import type { Tensor } from '../src/core/tensor.js';
import { tempDir } from './cli-helpers.js';
import { peerPython, runPeerScript } from './peers.js';
import { excess, npz } from './tflite-helpers.js';

/**
 * GRU and simple RNN layers written to .tflite, against the real thing. python/tflite_gru_peers.py
 * makes the sources: torch.nn.GRU / nn.RNN (forward, bidirectional; ONNX exports, onnxruntime
 * checked against torch) and Keras 3 GRU, SimpleRNN and Bidirectional layers as TFLiteConverter
 * writes them (WHILE loops, REVERSE_V2; LiteRT checked against Keras), with torch's or Keras's
 * outputs as the reference. modelbridge reads each source and runs it to the reference, writes it
 * to .tflite (RNN as UNIDIRECTIONAL_SEQUENCE_RNN, GRU unrolled), and LiteRT runs what it wrote to
 * the same outputs (1e-5 relative), as does modelbridge on its own file.
 */
const python = peerPython();

interface Case {
  readonly name: string;
  readonly file: string;
  readonly outputs: string[];
}

let dir = '';
let all: Case[] = [];
/** The static-shape cases (the dynamic-batch ones have their own test). */
let cases: Case[] = [];
const stem = (c: Case) => c.file.replace(/\.(tflite|onnx)$/, ''); // a SavedModel folder is its own stem


/** modelbridge's outputs of `file` on x, by signature output name. */
function run(file: string, x: Tensor): Record<string, Tensor> {
  const model = loadModel(file);
  const sig = model.signatures[0]!;
  return runModel(model, { [[...sig.inputs.keys()][0]!]: x });
}

/** The builtin operators a .tflite file holds, by name. */
const builtins = (file: string): string[] => [...new Set(parseTflite(file, new Uint8Array(readFileSync(file))).subgraphs[0]!.operators.map((o) => builtinName(o.code) ?? String(o.code)))];

describe.skipIf(!python)('TFLite GRU and RNN writing, against torch, Keras and LiteRT', () => {
  beforeAll(() => {
    dir = tempDir('mb-tflite-gru-');
    const r = runPeerScript('tflite_gru_peers.py', ['make', dir], { timeoutMs: 300_000 });
    if (r.status !== 0) throw new Error(`python/tflite_gru_peers.py exited with ${r.status}: ${r.stderr.trim().slice(-2000)}`);
    all = JSON.parse(r.stdout) as Case[];
    cases = all.filter((c) => !c.name.endsWith('_dynamic'));
  }, 320_000);
  afterAll(() => {
    if (dir && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  });

  it('modelbridge reads each source (ONNX GRU/RNN nodes; WHILE loops and REVERSE_V2 from the converter) and runs it to torch / Keras (1e-5 relative)', () => {
    expect(all.map((c) => c.name)).toEqual(['torch_gru', 'torch_gru_bi', 'torch_rnn', 'torch_rnn_bi', 'keras_gru', 'keras_rnn', 'keras_bigru', 'keras_birnn', 'torch_lstm_dynamic', 'torch_gru_dynamic', 'keras_bigru_dynamic']);
    for (const c of cases) {
      const want = npz(`${stem(c)}.out.npz`);
      const got = run(c.file, npz(`${stem(c)}.in.npz`).get('x')!);
      for (const key of c.outputs) expect(excess(got[key]!, want.get(key)!), `${c.name} ${key}`).toBeLessThanOrEqual(1);
    }
    expect(builtins(cases.find((c) => c.name === 'keras_bigru')!.file)).toEqual(expect.arrayContaining(['WHILE', 'REVERSE_V2']));
  });

  it('written to .tflite (RNN as UNIDIRECTIONAL_SEQUENCE_RNN, GRU unrolled, backward halves through REVERSE_V2), LiteRT and modelbridge run it to the reference', () => {
    const jobs = cases.map((c) => {
      const written = join(dir, `${c.name}.written.tflite`);
      convertModel(c.file, written);
      return [written, `${stem(c)}.in.npz`, join(dir, `${c.name}.written.out.npz`)] as const;
    });
    const path = join(dir, 'jobs.json');
    writeFileSync(path, JSON.stringify(jobs));
    const r = runPeerScript('tflite_rnn_peers.py', ['run', path], { timeoutMs: 300_000 });
    if (r.status !== 0) throw new Error(`tflite_rnn_peers.py run exited with ${r.status}: ${r.stderr.trim().slice(-2000)}`);
    const results = JSON.parse(r.stdout) as { model: string; ops?: string[]; error?: string }[];
    expect(results.filter((x) => x.error)).toEqual([]);
    cases.forEach((c, i) => {
      const ops = results[i]!.ops!;
      expect(ops, c.name).not.toContain('WHILE');
      if (c.name.includes('rnn')) expect(ops, c.name).toContain('UNIDIRECTIONAL_SEQUENCE_RNN');
      else expect(ops, c.name).toEqual(expect.arrayContaining(['FULLY_CONNECTED', 'UNPACK', 'PACK']));
      // Backward halves: the RNN op runs over a REVERSE_V2'd sequence; Keras's own flips (read as
      // step -1 Slices) are written back as REVERSE_V2; torch's bidirectional GRU unrolls backwards.
      const reverses = ['torch_rnn_bi', 'keras_bigru', 'keras_birnn'].includes(c.name);
      expect(builtins(jobs[i]![0]).includes('REVERSE_V2'), c.name).toBe(reverses);
      const want = npz(`${stem(c)}.out.npz`);
      const litert = npz(jobs[i]![2]);
      const ours = run(jobs[i]![0], npz(jobs[i]![1]).get('x')!);
      for (const key of c.outputs) {
        expect(excess(litert.get(key)!, want.get(key)!), `${c.name} ${key}: LiteRT on what modelbridge wrote`).toBeLessThanOrEqual(1);
        expect(excess(ours[key]!, want.get(key)!), `${c.name} ${key}: modelbridge on what it wrote`).toBeLessThanOrEqual(1);
      }
    });
  });

  it('an unknown batch (torch.nn.LSTM / GRU exported with a dynamic batch axis, a Keras Bidirectional GRU SavedModel) is written with shape_signature -1; LiteRT resizes the input to batch 1 and 3 and runs to torch and Keras (1e-5 relative)', () => {
    const dynamic = all.filter((c) => c.name.endsWith('_dynamic'));
    const jobs = dynamic.map((c) => {
      const written = join(dir, `${c.name}.written.tflite`);
      convertModel(c.file, written);
      return [written, `${stem(c)}.in.npz`, join(dir, `${c.name}.written.out.npz`)] as const;
    });
    const path = join(dir, 'resize.json');
    writeFileSync(path, JSON.stringify(jobs));
    const r = runPeerScript('tflite_gru_peers.py', ['resize', path], { timeoutMs: 300_000 });
    if (r.status !== 0) throw new Error(`tflite_gru_peers.py resize exited with ${r.status}: ${r.stderr.trim().slice(-2000)}`);
    const results = JSON.parse(r.stdout) as { model: string; signature?: number[]; ops?: string[]; error?: string }[];
    expect(results.filter((x) => x.error)).toEqual([]);
    dynamic.forEach((c, i) => {
      expect(results[i]!.signature, c.name).toEqual([-1, 6, 3]);
      // The fused LSTM op's fixed-size variable states cannot follow a resized batch: unrolled instead.
      expect(results[i]!.ops, c.name).not.toContain('UNIDIRECTIONAL_SEQUENCE_LSTM');
      const inputs = npz(jobs[i]![1]);
      const want = npz(`${stem(c)}.out.npz`);
      const litert = npz(jobs[i]![2]);
      for (const batch of ['1', '3']) {
        expect(excess(litert.get(`y${batch}`)!, want.get(`y${batch}`)!), `${c.name} batch ${batch}: LiteRT on what modelbridge wrote`).toBeLessThanOrEqual(1);
        const ours = run(jobs[i]![0], inputs.get(`x${batch}`)!);
        expect(excess(Object.values(ours)[0]!, want.get(`y${batch}`)!), `${c.name} batch ${batch}: modelbridge on what it wrote`).toBeLessThanOrEqual(1);
      }
    });
  });
});
