import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertModel, loadModel, saveModel } from '../src/api/load.js';
import { runModel } from '../src/api/run.js';
import { attr, makeNode, type Attribute, type Graph, type Node, type ValueInfo } from '../src/core/graph.js';
import { defaultSignature, type Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { tempDir } from './cli-helpers.js';

/**
 * What the TF writers emit must read back in modelbridge too: `convert` verifies every file it
 * writes by reading it again, and the zoo (issue 11) found TF exports that TensorFlow ran but the
 * read-back refused or misnamed. Each case is an ONNX model converted, verification on, to a
 * SavedModel, a frozen GraphDef and a TF.js graph model; the written file's outputs (by name) must
 * be the source's. TensorFlow's side of these lowerings is test/tf-export-ops.peer.test.ts.
 */

const node = (op: string, inputs: string[], outputs: string[], attributes: Record<string, Attribute> = {}): Node => makeNode(op, inputs, outputs, attributes);
const f32 = (shape: number[], seed = 1) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.from('float32', shape, Array.from({ length: n }, (_, i) => Math.sin(seed * 0.77 + i * 1.31)));
};
const i64 = (values: number[], shape = [values.length]) => Tensor.from('int64', shape, values.map(BigInt));

interface Case {
  readonly name: string;
  readonly nodes: Node[];
  readonly inputs: Record<string, Tensor>;
  readonly outputs: string[];
  readonly weights?: Record<string, Tensor>;
  readonly opset?: number;
}

const CASES: Case[] = [
  {
    // transformers' attention masks: torch.onnx.export (TorchScript) writes Flatten at axis 2.
    name: 'Flatten at axis 2 (outer size computed from the leading sizes)',
    nodes: [node('Flatten', ['x'], ['y'], { axis: attr.int(2) })],
    inputs: { x: f32([2, 3, 4, 5]) },
    outputs: ['y'],
  },
  {
    // GPT-2's fused q/k/v projection, split in three on an axis whose size TF reads at run time
    // (after a Reshape to [0, -1], TF knows neither size).
    name: 'Split in three (opset 18 num_outputs) of an axis of unknown size',
    nodes: [node('Reshape', ['x', 'flat'], ['r']), node('Split', ['r'], ['a', 'b', 'c'], { axis: attr.int(1), num_outputs: attr.int(3) })],
    inputs: { x: f32([2, 3, 2]) },
    weights: { flat: i64([0, -1]) },
    outputs: ['a', 'b', 'c'],
    opset: 18,
  },
  {
    // ViT's class token: Expand writes BroadcastArgs + BroadcastTo, which must import again.
    name: 'Expand (BroadcastArgs and BroadcastTo in TF)',
    nodes: [node('Expand', ['x', 'shape'], ['y'])],
    inputs: { x: f32([3, 1]) },
    weights: { shape: i64([2, 1, 4]) },
    outputs: ['y'],
  },
  {
    name: 'Slice with starts and ends computed at run time (StridedSlice with computed begin and end)',
    nodes: [
      node('Shape', ['x'], ['shp']),
      node('Gather', ['shp', 'two'], ['h']),
      node('Sub', ['h', 'seven'], ['start']),
      node('Unsqueeze', ['start', 'zero'], ['starts']),
      node('Sub', ['h', 'one'], ['stop']),
      node('Unsqueeze', ['stop', 'zero'], ['ends']),
      node('Slice', ['x', 'starts', 'ends', 'axes'], ['y']),
    ],
    inputs: { x: f32([1, 2, 9, 4]) },
    weights: { two: i64([2], []), seven: i64([7], []), one: i64([1], []), zero: i64([0]), axes: i64([2]) },
    outputs: ['y'],
  },
  {
    // A tf.Module's embedding output also feeds its logits; a Split's second part is output 1 of a node.
    name: 'outputs another node reads, and output 1 of a two-output node, keep their names',
    nodes: [
      node('Relu', ['x'], ['embedding']),
      node('MatMul', ['embedding', 'w'], ['logits']),
      node('Split', ['logits'], ['left', 'right'], { axis: attr.int(1), num_outputs: attr.int(2) }),
    ],
    inputs: { x: f32([2, 6]) },
    weights: { w: f32([6, 4], 2) },
    outputs: ['embedding', 'logits', 'left', 'right'],
    opset: 18,
  },
  {
    // int64 constants TF.js stores as int32 meet int64 shapes: an FCN head's output size.
    name: 'an int64 constant concatenated with an int64 Shape (TF.js stores the constant as int32)',
    nodes: [
      node('Shape', ['x'], ['shp']),
      node('Slice', ['shp', 'zero', 'two', 'zero'], ['lead']),
      node('Concat', ['lead', 'tail'], ['size'], { axis: attr.int(0) }),
      node('Reshape', ['x', 'size'], ['y']),
    ],
    inputs: { x: f32([2, 3, 4]) },
    weights: { zero: i64([0]), two: i64([2]), tail: i64([4]) },
    outputs: ['y'],
  },
  {
    name: 'LSTM bidirectional, unrolled over its fixed sequence length',
    nodes: [node('LSTM', ['x', 'w', 'r', 'b'], ['y', 'h', 'c'], { hidden_size: attr.int(3), direction: attr.string('bidirectional') })],
    inputs: { x: f32([4, 2, 5]) },
    weights: { w: f32([2, 12, 5], 2), r: f32([2, 12, 3], 3), b: f32([2, 24], 4) },
    outputs: ['y', 'h', 'c'],
  },
];

function modelOf(c: Case): Model {
  const initializers = new Map(Object.entries(c.weights ?? {}));
  const inputs: ValueInfo[] = Object.entries(c.inputs).map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape] }));
  const graph: Graph = { inputs, outputs: c.outputs.map((name) => ({ name, dtype: 'float32', shape: null })), initializers, nodes: c.nodes, opset: c.opset ?? 17 };
  const probe = runModel({ format: 'onnx', weights: initializers, graph, signatures: [defaultSignature(graph)], metadata: {} }, c.inputs);
  const typed: Graph = { ...graph, outputs: c.outputs.map((name) => ({ name, dtype: probe[name]!.dtype, shape: [...probe[name]!.shape] })) };
  return { format: 'onnx', weights: initializers, graph: typed, signatures: [defaultSignature(typed)], metadata: {} };
}

describe('TF writers: an LSTM whose sequence length the graph does not fix', () => {
  it('is written as While loops (GraphDef, SavedModel, TF.js) that read back and give the source\'s outputs at two lengths', () => {
    const c = CASES.find((k) => k.name.startsWith('LSTM'))!;
    const model = modelOf(c);
    const graph = { ...model.graph!, inputs: [{ name: 'x', dtype: 'float32' as const, shape: ['seq', 2, 5] }] };
    const source = { ...model, graph, signatures: [defaultSignature(graph)] };
    const dir = tempDir('mb-tf-readback-dyn-');
    for (const [format, out] of [['graphdef', join(dir, 'm.pb')], ['savedmodel', join(dir, 'saved')], ['tfjs', join(dir, 'tfjs')]] as const) {
      saveModel(source, out, { format });
      const back = loadModel(out, { format });
      expect(back.graph!.nodes.map((n) => n.op), format).toContain('LSTM');
      for (const steps of [1, 4]) {
        const x = Tensor.from('float32', [steps, 2, 5], Float32Array.from({ length: steps * 10 }, (_, i) => Math.cos(i)));
        const want = runModel(source, { x });
        const got = runModel(back, { x });
        for (const name of ['y', 'h', 'c']) {
          const [a, b] = [want[name]!, got[name]!];
          expect(b.shape, `${format} ${name} at ${steps} steps`).toEqual(a.shape);
          const av = a.toFloat32();
          const bv = b.toFloat32();
          for (let i = 0; i < av.length; i++) expect(Math.abs(av[i]! - bv[i]!)).toBeLessThan(1e-6);
        }
      }
    }
  });
});

describe('TF writers: what they write reads back in modelbridge with the same outputs, by name', () => {
  const root = tempDir('mb-tf-readback-');
  CASES.forEach((c, i) => {
    for (const to of ['savedmodel', 'graphdef', 'tfjs'] as const) {
      it(`${c.name} -> ${to}`, () => {
        const model = modelOf(c);
        const source = join(root, `case${i}.onnx`);
        saveModel(model, source, { format: 'onnx', force: true });
        const expected = runModel(model, c.inputs);
        const out = join(root, `case${i}-${to}${to === 'graphdef' ? '.pb' : ''}`);
        const result = convertModel(source, out, { to, force: true, verify: true });
        expect(result.verification).toBeDefined();
        const back = runModel(loadModel(out, { format: to }), c.inputs);
        const norm = (k: string) => k.replace(/:\d+$/, '');
        expect(Object.keys(back).map(norm).sort()).toEqual([...c.outputs].sort());
        for (const [k, t] of Object.entries(back)) {
          const want = expected[norm(k)]!;
          expect(t.shape, `${k} shape`).toEqual(want.shape);
          // Bit-exact where the lowering is op for op; an unrolled LSTM sums in another order.
          const got = t.toNumbers();
          const worst = want.toNumbers().reduce((m, v, j) => Math.max(m, Math.abs(got[j]! - v) / Math.max(1, Math.abs(v))), 0);
          expect(worst, `${k} values`).toBeLessThanOrEqual(c.nodes.some((n) => n.op === 'LSTM') ? 1e-6 : 0);
        }
      });
    }
  });
});
