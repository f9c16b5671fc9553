import { describe, expect, it } from 'vitest';
import { runModel } from '../src/api/run.js';
import { attr, DEFAULT_OPSET, makeNode, type Attribute } from '../src/core/graph.js';
import type { Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { parseTflite, tfliteToModel } from '../src/formats/tflite/index.js';
import { tfliteBytes } from '../src/formats/tflite/writer.js';
import { seededRandom } from '../src/train/random.js';
import { expectRefused } from './tflite-helpers.js';

/**
 * ONNX LSTM <-> UNIDIRECTIONAL_SEQUENCE_LSTM without peers: what the writer lays out (24 inputs,
 * variable state tensors, time_major from layout) reads back as an LSTM that computes the same,
 * in both layouts; forms TFLite's op cannot hold are refused in one line. LiteRT's side is in
 * test/tflite.rnn.peer.test.ts.
 */
const H = 3;
const F = 2;
const T = 4;
const N = 2;

function random(shape: number[], seed: number): Tensor {
  const r = seededRandom(seed);
  return Tensor.from('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r() - 0.5));
}

function lstmModel(layout: 0 | 1, extra: Record<string, Attribute> = {}, outputs: string[] = ['y']): Model {
  const xShape = layout === 0 ? [T, N, F] : [N, T, F];
  const yShape = layout === 0 ? [T, 1, N, H] : [N, T, 1, H];
  const initializers = new Map([
    ['W', random([1, 4 * H, F], 1)],
    ['R', random([1, 4 * H, H], 2)],
    ['B', random([1, 8 * H], 3)],
  ]);
  const node = makeNode('LSTM', ['x', 'W', 'R', 'B'], ['y', 'y_h'], { hidden_size: attr.int(H), ...(layout ? { layout: attr.int(1) } : {}), ...extra });
  const graph = {
    inputs: [{ name: 'x', dtype: 'float32' as const, shape: xShape }],
    outputs: outputs.map((name) => ({ name, dtype: 'float32' as const, shape: name === 'y' ? yShape : [1, N, H] })),
    initializers,
    nodes: [node],
    opset: DEFAULT_OPSET,
  };
  const signature = { name: 'serving_default', inputs: new Map([['x', 'x']]), outputs: new Map(outputs.map((o) => [o, o])) };
  return { format: 'memory', weights: initializers, graph, signatures: [signature], metadata: {} };
}

describe('TFLite UNIDIRECTIONAL_SEQUENCE_LSTM', () => {
  for (const layout of [0, 1] as const) {
    it(`an ONNX LSTM (layout ${layout}) written and read back computes the same, with the converter's layout of the op`, () => {
      const model = lstmModel(layout);
      const bytes = tfliteBytes(model);
      const file = parseTflite('lstm.tflite', bytes);
      const sub = file.subgraphs[0]!;
      const op = sub.operators.find((o) => o.code === 44)!;
      expect(op, 'an UNIDIRECTIONAL_SEQUENCE_LSTM operator').toBeDefined();
      expect(op.inputs).toHaveLength(24);
      // Peepholes, projection and layer norm absent; the two states are variable tensors [batch, H].
      for (const i of [9, 10, 11, 16, 17, 20, 21, 22, 23]) expect(op.inputs[i], `input ${i}`).toBe(-1);
      for (const i of [18, 19]) {
        const t = sub.tensors[op.inputs[i]!]!;
        expect(t.isVariable, `input ${i} is a variable`).toBe(true);
        expect(t.shape).toEqual([N, H]);
      }
      const back = tfliteToModel(file);
      expect(back.graph!.nodes.filter((n) => n.op === 'LSTM')).toHaveLength(1);
      const x = random(layout === 0 ? [T, N, F] : [N, T, F], 9);
      const want = runModel(model, { x })['y']!;
      const got = Object.values(runModel(back, { x }))[0]!;
      expect(got.shape).toEqual(want.shape);
      const a = got.toFloat32();
      const b = want.toFloat32();
      // Same arithmetic up to the bias sum (Wb + Rb added once, at write time).
      a.forEach((v, i) => expect(Math.abs(v - b[i]!)).toBeLessThan(1e-6));
    });
  }

  it('refuses in one line what TFLite\'s op cannot hold: reverse direction, clip, a used Y_h', () => {
    expectRefused(lstmModel(0, { clip: attr.float(3) }), /without clip/);
    expectRefused(lstmModel(0, { activations: attr.strings(['Sigmoid', 'Relu', 'Tanh']) }), /the default activations Sigmoid, Tanh, Tanh/);
    // What the fused op cannot hold is written unrolled (test/tflite.gru.test.ts checks the arithmetic).
    for (const model of [lstmModel(0, { direction: attr.string('reverse') }), lstmModel(0, {}, ['y', 'y_h'])]) {
      const ops = parseTflite('lstm.tflite', tfliteBytes(model)).subgraphs[0]!.operators.map((o) => o.code);
      expect(ops).not.toContain(44);
      expect(ops).toContain(9);
    }
  });

  it('reading refuses peepholes in one line naming the operator', () => {
    const bytes = tfliteBytes(lstmModel(0));
    const op = parseTflite('lstm.tflite', bytes).subgraphs[0]!.operators.find((o) => o.code === 44)!;
    // The operator's inputs vector, found by its 24 int32 values; input 9 (cell-to-input
    // peephole, [H]) pointed at the input gate's bias tensor, which has that shape.
    const words = new Int32Array(op.inputs);
    const needle = new Uint8Array(words.buffer);
    let at = -1;
    for (let i = 0; i + needle.length <= bytes.length && at < 0; i += 4) if (needle.every((v, k) => bytes[i + k] === v)) at = i;
    expect(at).toBeGreaterThan(0);
    new DataView(bytes.buffer, bytes.byteOffset).setInt32(at + 9 * 4, op.inputs[12]!, true);
    expect(() => tfliteToModel(parseTflite('lstm.tflite', bytes))).toThrow(/operators\[0\] \(UNIDIRECTIONAL_SEQUENCE_LSTM\): .*without peepholes \(inputs 9-11\)/);
  });
});
