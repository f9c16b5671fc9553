import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertModel, loadModel } from '../src/api/load.js';
import { runModel } from '../src/api/run.js';
import { FormatError } from '../src/core/errors.js';
import type { Model } from '../src/core/model.js';
import type { Tensor } from '../src/core/tensor.js';
import { tempDir } from './cli-helpers.js';
import { peerPython, runPeerScript } from './peers.js';
import { excess, npz } from './tflite-helpers.js';

/**
 * UNIDIRECTIONAL_SEQUENCE_LSTM against the real thing: python/tflite_rnn_peers.py converts seeded
 * Keras LSTMs (return_sequences True and False, two stacked) with tf.lite.TFLiteConverter, checks
 * LiteRT against Keras, and modelbridge runs each file to LiteRT's outputs (1e-5 relative). Then
 * the writer: an ONNX LSTM (onnx.helper, onnxruntime's outputs) and each Keras file read back go
 * to .tflite through modelbridge, and LiteRT runs what was written to the same outputs.
 */
const python = peerPython();

interface Case {
  readonly name: string;
  readonly file: string;
  readonly ops: string[];
}

let dir = '';
let cases: Case[] = [];


/** The message of what `f` throws (a FormatError is expected). */
function thrown(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
    return (e as Error).message;
  }
  throw new Error('expected a FormatError');
}

/** The model's one output on its one input. */
function runOne(model: Model, x: Tensor): Tensor {
  const sig = model.signatures[0]!;
  const out = runModel(model, { [[...sig.inputs.keys()][0]!]: x });
  return out[[...sig.outputs.keys()][0]!]!;
}

describe.skipIf(!python)('TFLite LSTM against TFLiteConverter and LiteRT', () => {
  beforeAll(() => {
    dir = tempDir('mb-tflite-rnn-');
    const r = runPeerScript('tflite_rnn_peers.py', ['make', dir], { timeoutMs: 300_000 });
    if (r.status !== 0) throw new Error(`python/tflite_rnn_peers.py exited with ${r.status}: ${r.stderr.trim().slice(-2000)}`);
    cases = JSON.parse(r.stdout) as Case[];
  }, 320_000);
  afterAll(() => {
    if (dir && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  });

  const keras = () => cases.filter((c) => c.name.startsWith('lstm_'));
  const written = () => cases.filter((c) => !c.name.startsWith('while_'));
  const loops = () => cases.filter((c) => c.name.startsWith('while_') && c.name !== 'while_gru_v1');

  it('the converter fused every Keras LSTM into UNIDIRECTIONAL_SEQUENCE_LSTM', () => {
    expect(cases.map((c) => c.name)).toEqual(['lstm_seq', 'lstm_last', 'lstm_stacked', 'onnx_lstm', 'while_rnn', 'while_gru', 'while_lstm', 'while_gru_v1']);
    for (const c of keras()) expect(c.ops, c.name).toContain('UNIDIRECTIONAL_SEQUENCE_LSTM');
  });

  it('modelbridge reads each file as ONNX LSTM nodes and runs it to LiteRT (1e-5 relative)', () => {
    for (const c of keras()) {
      const model = loadModel(c.file);
      expect(model.graph!.nodes.filter((n) => n.op === 'LSTM').length, c.name).toBe(c.name === 'lstm_stacked' ? 2 : 1);
      const x = npz(c.file.replace(/\.tflite$/, '.in.npz')).get('x')!;
      const want = npz(c.file.replace(/\.tflite$/, '.out.npz')).get('y')!;
      expect(excess(runOne(model, x), want), c.name).toBeLessThanOrEqual(1);
    }
  });

  it('written as UNIDIRECTIONAL_SEQUENCE_LSTM (ONNX LSTM, and each Keras file read back), LiteRT runs it to the reference', () => {
    const jobs = written().map((c) => {
      const written = join(dir, `${c.name}.written.tflite`);
      convertModel(c.file, written);
      return [written, c.file.replace(/\.(tflite|onnx)$/, '.in.npz'), join(dir, `${c.name}.written.out.npz`)] as const;
    });
    const path = join(dir, 'jobs.json');
    writeFileSync(path, JSON.stringify(jobs));
    const r = runPeerScript('tflite_rnn_peers.py', ['run', path], { timeoutMs: 300_000 });
    if (r.status !== 0) throw new Error(`tflite_rnn_peers.py run exited with ${r.status}: ${r.stderr.trim().slice(-2000)}`);
    const results = JSON.parse(r.stdout) as { model: string; ops?: string[]; error?: string }[];
    expect(results.filter((x) => x.error)).toEqual([]);
    written().forEach((c, i) => {
      expect(results[i]!.ops, c.name).toContain('UNIDIRECTIONAL_SEQUENCE_LSTM');
      // The reference: LiteRT on the converter's file, or onnxruntime on the ONNX model.
      const want = npz(c.file.replace(/\.(tflite|onnx)$/, '.out.npz')).get('y')!;
      const got = [...npz(jobs[i]![2]).values()][0]!;
      expect(excess(got, want), `${c.name}: LiteRT on what modelbridge wrote`).toBeLessThanOrEqual(1);
      // And modelbridge on its own written file agrees.
      const x = npz(jobs[i]![1]).get('x')!;
      expect(excess(runOne(loadModel(jobs[i]![0]), x), want), `${c.name}: modelbridge on what it wrote`).toBeLessThanOrEqual(1);
    });
  });

  it('Keras 3 SimpleRNN, GRU and LSTM converted directly (WHILE loops) read as ONNX RNN/GRU/LSTM and run to LiteRT (1e-5 relative)', () => {
    for (const c of loops()) {
      expect(c.ops, c.name).toContain('WHILE');
      const model = loadModel(c.file);
      const kind = { while_rnn: 'RNN', while_gru: 'GRU', while_lstm: 'LSTM' }[c.name]!;
      expect(model.graph!.nodes.filter((n) => n.op === kind), c.name).toHaveLength(1);
      const x = npz(c.file.replace(/\.tflite$/, '.in.npz')).get('x')!;
      const want = npz(c.file.replace(/\.tflite$/, '.out.npz')).get('y')!;
      expect(excess(runOne(model, x), want), c.name).toBeLessThanOrEqual(1);
    }
  });

  it('a WHILE loop that is not a recognised cell (a reset_after=False GRU) is refused in one line naming the op', () => {
    const c = cases.find((x) => x.name === 'while_gru_v1')!;
    expect(c.ops).toContain('WHILE');
    const message = thrown(() => loadModel(c.file));
    expect(message).toMatch(/operators\[\d+\] \(WHILE\): a WHILE loop that is a Keras SimpleRNN, GRU or LSTM layer/);
    expect(message).not.toContain('\n');
  });
});
