import { describe, expect, it } from 'vitest';
import { runModel } from '../src/api/run.js';
import { attr, DEFAULT_OPSET, makeNode, type Attribute } from '../src/core/graph.js';
import type { Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { parseTflite, tfliteToModel } from '../src/formats/tflite/index.js';
import { builtinName } from '../src/formats/tflite/ops.js';
import { tfliteBytes } from '../src/formats/tflite/writer.js';
import { seededRandom } from '../src/train/random.js';
import { expectRefused } from './tflite-helpers.js';

/**
 * ONNX GRU and RNN -> .tflite without peers: what the writer emits (UNIDIRECTIONAL_SEQUENCE_RNN,
 * the unrolled GRU, REVERSE_V2 for backward halves) reads back and computes what the IR node
 * computes, in both layouts, with Y and Y_h; forms it cannot write are refused in one line.
 * LiteRT's side is test/tflite.gru.peer.test.ts.
 */
const H = 3;
const F = 2;
const T = 4;
const N = 2;

function random(shape: number[], seed: number): Tensor {
  const r = seededRandom(seed);
  return Tensor.from('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r() - 0.5));
}

interface Spec {
  readonly op: 'GRU' | 'RNN' | 'LSTM';
  readonly direction?: string;
  readonly layout?: 0 | 1;
  readonly attributes?: Record<string, Attribute>;
  /** initial_h (and initial_c): a constant, a graph input, or none. */
  readonly initial?: 'constant' | 'input' | 'zeros';
  /** The input's batch size unknown (a symbolic size): the file's shape_signature has -1. */
  readonly dynamic?: boolean;
}

function rnnModel(s: Spec): Model {
  const gates = s.op === 'LSTM' ? 4 : s.op === 'GRU' ? 3 : 1;
  const d = s.direction === 'bidirectional' ? 2 : 1;
  const layout = s.layout ?? 0;
  const n: number | string = s.dynamic ? 'batch' : N;
  const xShape = layout === 0 ? [T, n, F] : [n, T, F];
  const yShape = layout === 0 ? [T, d, n, H] : [n, T, d, H];
  const hShape = layout === 0 ? [d, N, H] : [N, d, H];
  const states = s.op === 'LSTM' ? ['h0', 'c0'] : ['h0'];
  const initializers = new Map([
    ['W', random([d, gates * H, F], 1)],
    ['R', random([d, gates * H, H], 2)],
    ['B', random([d, 2 * gates * H], 3)],
  ]);
  states.forEach((st, k) => {
    if (s.initial === 'constant') initializers.set(st, random(hShape, 4 + k));
    if (s.initial === 'zeros') initializers.set(st, Tensor.from('float32', hShape, new Float32Array(d * N * H)));
  });
  const inputs = ['x', 'W', 'R', 'B', ...(s.initial ? ['', ...states] : [])];
  const outputs = ['y', 'y_h', ...(s.op === 'LSTM' ? ['y_c'] : [])];
  const attributes = { hidden_size: attr.int(H), ...(s.direction ? { direction: attr.string(s.direction) } : {}), ...(layout ? { layout: attr.int(1) } : {}), ...s.attributes };
  const node = makeNode(s.op, inputs, outputs, attributes);
  const graph = {
    inputs: [{ name: 'x', dtype: 'float32' as const, shape: xShape }, ...(s.initial === 'input' ? states.map((name) => ({ name, dtype: 'float32' as const, shape: hShape })) : [])],
    outputs: outputs.map((name) => ({ name, dtype: 'float32' as const, shape: name === 'y' ? yShape : layout === 0 ? [d, n, H] : [n, d, H] })),
    initializers,
    nodes: [node],
    opset: DEFAULT_OPSET,
  };
  const names = s.initial === 'input' ? ['x', ...states] : ['x'];
  const signature = { name: 'serving_default', inputs: new Map(names.map((v) => [v, v])), outputs: new Map(outputs.map((o) => [o, o])) };
  return { format: 'memory', weights: initializers, graph, signatures: [signature], metadata: {} };
}

/** Written, read back, run (batch `batch`): each output as the IR computes it; returns the builtins written. */
function roundTrip(s: Spec, batch = N): string[] {
  const model = rnnModel(s);
  const bytes = tfliteBytes(model);
  const file = parseTflite('rnn.tflite', bytes);
  const back = tfliteToModel(file);
  const feeds: Record<string, Tensor> = { x: random(s.layout === 1 ? [batch, T, F] : [T, batch, F], 9) };
  for (const i of model.graph!.inputs.slice(1)) feeds[i.name] = random(i.shape as number[], 10);
  const want = runModel(model, feeds);
  const got = runModel(back, feeds);
  for (const key of Object.keys(want)) {
    expect(got[key]!.shape, key).toEqual(want[key]!.shape);
    const a = got[key]!.toFloat32();
    const b = want[key]!.toFloat32();
    a.forEach((v, i) => expect(Math.abs(v - b[i]!), `${key}[${i}]`).toBeLessThan(1e-6));
  }
  return file.subgraphs[0]!.operators.map((o) => builtinName(o.code)!);
}

describe('TFLite GRU and RNN writing', () => {
  it('an RNN is one UNIDIRECTIONAL_SEQUENCE_RNN per direction, the backward one between REVERSE_V2s, and reads back as RNN nodes', () => {
    const ops = roundTrip({ op: 'RNN', direction: 'bidirectional', attributes: { activations: attr.strings(['Relu', 'Tanh']) } });
    expect(ops.filter((o) => o === 'UNIDIRECTIONAL_SEQUENCE_RNN')).toHaveLength(2);
    expect(ops.filter((o) => o === 'REVERSE_V2')).toHaveLength(2);
    const back = tfliteToModel(parseTflite('rnn.tflite', tfliteBytes(rnnModel({ op: 'RNN', layout: 1, initial: 'zeros' }))));
    expect(back.graph!.nodes.filter((n) => n.op === 'RNN')).toHaveLength(1);
    roundTrip({ op: 'RNN', layout: 1, initial: 'zeros' });
    roundTrip({ op: 'RNN', direction: 'reverse' });
  });

  it("an RNN whose state does not start at zero is unrolled (the op's variable state starts at zero)", () => {
    for (const initial of ['constant', 'input'] as const) {
      const ops = roundTrip({ op: 'RNN', direction: 'bidirectional', initial });
      expect(ops).not.toContain('UNIDIRECTIONAL_SEQUENCE_RNN');
      expect(ops.filter((o) => o === 'TANH')).toHaveLength(2 * T);
    }
  });

  it('an LSTM the fused op cannot hold (bidirectional, initial states, Y_h and Y_c read) is unrolled', () => {
    for (const s of [{ direction: 'bidirectional', initial: 'constant' }, { direction: 'reverse', layout: 1, initial: 'input' }] as const) {
      const ops = roundTrip({ op: 'LSTM', ...s });
      expect(ops).not.toContain('UNIDIRECTIONAL_SEQUENCE_LSTM');
      expect(ops.filter((o) => o === 'LOGISTIC')).toHaveLength((s.direction === 'bidirectional' ? 2 : 1) * 3 * T);
    }
  });

  it('an unknown batch: shape_signature -1 on the input and in the RESHAPEs, no fixed-size state tensors, and it runs at batch 1 and 3', () => {
    for (const s of [{ op: 'LSTM' }, { op: 'GRU', direction: 'bidirectional' }, { op: 'RNN', layout: 1 }] as const) {
      const model = rnnModel({ ...s, dynamic: true });
      const file = parseTflite('dynamic.tflite', tfliteBytes(model));
      const sub = file.subgraphs[0]!;
      expect(sub.tensors[sub.inputs[0]!]!.signature, s.op).toEqual(s.op === 'RNN' ? [-1, T, F] : [T, -1, F]);
      expect(sub.tensors.some((t) => t.isVariable), s.op).toBe(false);
      for (const batch of [1, 3]) roundTrip({ ...s, dynamic: true }, batch);
    }
  });

  it('a GRU is unrolled (no WHILE, no GRU op in TFLite) in both layouts, linear_before_reset 0 and 1, with constant or computed initial_h', () => {
    const ops = roundTrip({ op: 'GRU', direction: 'bidirectional', attributes: { linear_before_reset: attr.int(1) }, initial: 'constant' });
    // Per direction: three input projections over the sequence, three recurrent ones per step.
    expect(ops.filter((o) => o === 'FULLY_CONNECTED')).toHaveLength(2 * (3 + 3 * T));
    expect(ops.filter((o) => o === 'UNPACK')).toHaveLength(2 * 3);
    expect(ops.filter((o) => o === 'LOGISTIC')).toHaveLength(2 * 2 * T);
    expect(ops).not.toContain('WHILE');
    roundTrip({ op: 'GRU', layout: 1, initial: 'input' });
    roundTrip({ op: 'GRU', direction: 'reverse', layout: 1, attributes: { linear_before_reset: attr.int(1) }, initial: 'input' });
  });

  it('a Slice of a value with an unknown batch keeps the whole batch (end_mask on the axes read to their end)', () => {
    const starts = Tensor.from('int64', [1], [1]);
    const ends = Tensor.from('int64', [1], [3]);
    const axes = Tensor.from('int64', [1], [1]);
    const initializers = new Map([['starts', starts], ['ends', ends], ['axes', axes]]);
    const graph = {
      inputs: [{ name: 'x', dtype: 'float32' as const, shape: ['batch', 4] }],
      outputs: [{ name: 'y', dtype: 'float32' as const, shape: ['batch', 2] }],
      initializers,
      nodes: [makeNode('Slice', ['x', 'starts', 'ends', 'axes'], ['y'])],
      opset: DEFAULT_OPSET,
    };
    const model: Model = { format: 'memory', weights: initializers, graph, signatures: [{ name: 'serving_default', inputs: new Map([['x', 'x']]), outputs: new Map([['y', 'y']]) }], metadata: {} };
    const back = tfliteToModel(parseTflite('slice.tflite', tfliteBytes(model)));
    const x = random([3, 4], 5);
    const got = Object.values(runModel(back, { x }))[0]!;
    expect(got.shape).toEqual([3, 2]);
    expect([...got.toFloat32()]).toEqual([...runModel(model, { x })['y']!.toFloat32()]);
  });

  it('refuses in one line what it cannot write: clip, other activations', () => {
    expectRefused(rnnModel({ op: 'GRU', attributes: { clip: attr.float(2) } }), /\(GRU\): TFLite needs a GRU without clip/);
    expectRefused(rnnModel({ op: 'GRU', attributes: { activations: attr.strings(['HardSigmoid', 'Tanh']) } }), /default activations Sigmoid, Tanh, not HardSigmoid, Tanh/);
    expectRefused(rnnModel({ op: 'RNN', attributes: { activations: attr.strings(['Sigmoid']) } }), /activation Tanh or Relu/);
  });
});
