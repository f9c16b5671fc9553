import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { saveModel } from '../src/api/load.js';
import { runModel } from '../src/api/run.js';
import type { DType } from '../src/core/dtypes.js';
import { attr, makeNode, type Attribute, type Graph, type Node, type ValueInfo } from '../src/core/graph.js';
import { defaultSignature, type Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { IR_TO_TF } from '../src/formats/tf/export-ops.js';
import { TFJS_RUNS } from '../src/formats/tfjs/ops.js';
import { tempDir } from './cli-helpers.js';
import { feedsJson, fromJson, tfBatch, type JsonTensor } from './fixtures/tf/peer.js';
import { loadInTfjs, tf } from './fixtures/tfjs/peer.js';
import { peerPython } from './peers.js';

/**
 * Every IR op the TensorFlow exporter maps, proven in the real consumers: a tiny graph per case
 * (modelbridge's own IR, ONNX semantics) is written as a SavedModel, a frozen GraphDef and a TF.js
 * graph model; TensorFlow serves the SavedModel (tf.saved_model.load + signature) and runs the
 * GraphDef in a TF1 session, all cases in one Python process, and TF.js (loadGraphModel on the
 * CPU backend) runs the graph model; each must give modelbridge's runtime outputs within 1e-4
 * relative. Under CI=true a missing peers environment fails; elsewhere the suite skips.
 */
const python = peerPython();

type Target = 'savedmodel' | 'graphdef' | 'tfjs';

interface Case {
  readonly name: string;
  readonly nodes: Node[];
  readonly inputs: Record<string, Tensor>;
  readonly outputs: string[];
  readonly weights?: Record<string, Tensor>;
  readonly opset?: number;
  /** Targets that refuse the case, with the text their one-line refusal must hold. */
  readonly refused?: Partial<Record<Target, RegExp>>;
}

const f32 = (shape: number[], seed = 1, scale = 1) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.from('float32', shape, Array.from({ length: n }, (_, i) => scale * Math.sin(seed * 0.77 + i * 1.31)));
};
const ints = (dtype: DType, shape: number[], values: number[]) => Tensor.from(dtype, shape, dtype === 'int64' ? values.map(BigInt) : values);
const i64 = (values: number[], shape = [values.length]) => ints('int64', shape, values);
const node = (op: string, inputs: string[], outputs: string[], attributes: Record<string, Attribute> = {}) => makeNode(op, inputs, outputs, attributes);

const CASES: Case[] = [
  {
    name: 'depthwise Conv2d(8, 8, 3, padding=1, groups=8, bias=True) (TensorFlow aborted on it)',
    nodes: [node('Conv', ['x', 'w', 'b'], ['y'], { group: attr.int(8), pads: attr.ints([1, 1, 1, 1]), kernel_shape: attr.ints([3, 3]) })],
    inputs: { x: f32([1, 8, 6, 6]) },
    weights: { w: f32([8, 1, 3, 3], 2), b: f32([8], 3) },
    outputs: ['y'],
  },
  {
    name: 'depthwise Conv stride 2 with channel multiplier 2, asymmetric pads',
    nodes: [node('Conv', ['x', 'w', 'b'], ['y'], { group: attr.int(4), pads: attr.ints([0, 1, 1, 0]), strides: attr.ints([2, 2]) })],
    inputs: { x: f32([2, 4, 7, 7]) },
    weights: { w: f32([8, 1, 3, 3], 2), b: f32([8], 3) },
    outputs: ['y'],
  },
  {
    name: 'grouped Conv (group 2), padded, with bias',
    nodes: [node('Conv', ['x', 'w', 'b'], ['y'], { group: attr.int(2), pads: attr.ints([1, 1, 1, 1]) })],
    inputs: { x: f32([1, 4, 5, 5]) },
    weights: { w: f32([6, 2, 3, 3], 4), b: f32([6], 5) },
    outputs: ['y'],
  },
  {
    name: 'dense Conv with explicit padding and bias',
    nodes: [node('Conv', ['x', 'w', 'b'], ['y'], { pads: attr.ints([1, 2, 1, 0]) })],
    inputs: { x: f32([1, 3, 5, 5]) },
    weights: { w: f32([4, 3, 3, 3], 4), b: f32([4], 5) },
    outputs: ['y'],
  },
  {
    name: 'ConvTranspose stride 2, pads 1, output_padding 1, bias',
    nodes: [node('ConvTranspose', ['x', 'w', 'b'], ['y'], { strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]), output_padding: attr.ints([1, 1]) })],
    inputs: { x: f32([1, 3, 4, 4]) },
    weights: { w: f32([3, 2, 3, 3], 6), b: f32([2], 7) },
    outputs: ['y'],
  },
  {
    name: 'GlobalAveragePool and GlobalMaxPool',
    nodes: [node('GlobalAveragePool', ['x'], ['avg']), node('GlobalMaxPool', ['x'], ['max'])],
    inputs: { x: f32([2, 3, 4, 5]) },
    outputs: ['avg', 'max'],
  },
  {
    name: 'HardSwish, HardSigmoid (alpha 0.3, beta 0.4)',
    nodes: [node('HardSwish', ['x'], ['hs'], {}), node('HardSigmoid', ['x'], ['hsig'], { alpha: attr.float(0.3), beta: attr.float(0.4) })],
    inputs: { x: f32([2, 6], 1, 4) },
    outputs: ['hs', 'hsig'],
    opset: 14,
  },
  {
    name: 'LayerNormalization over the last axis and over axes 1..',
    nodes: [
      node('LayerNormalization', ['x', 's', 'b'], ['ln'], { epsilon: attr.float(1e-5) }),
      node('LayerNormalization', ['x', 's2'], ['ln1'], { axis: attr.int(1) }),
    ],
    inputs: { x: f32([2, 3, 8], 1, 3) },
    weights: { s: f32([8], 2), b: f32([8], 3), s2: f32([3, 8], 4) },
    outputs: ['ln', 'ln1'],
  },
  {
    name: 'Gelu (exact and tanh) and Erf',
    nodes: [node('Gelu', ['x'], ['g']), node('Gelu', ['x'], ['gt'], { approximate: attr.string('tanh') }), node('Erf', ['x'], ['e'])],
    inputs: { x: f32([3, 5], 1, 3) },
    outputs: ['g', 'gt', 'e'],
    opset: 20,
  },
  {
    name: 'Gather: int32 ids (one negative) from an embedding table, constant negative index on axis 1',
    nodes: [node('Gather', ['table', 'ids'], ['emb']), node('Gather', ['x', 'col'], ['cols'], { axis: attr.int(1) })],
    inputs: { ids: ints('int32', [2, 3], [0, 9, -1, 3, 3, 5]), x: f32([3, 4]) },
    weights: { table: f32([10, 4], 2), col: i64([-1, 0]) },
    outputs: ['emb', 'cols'],
  },
  {
    name: 'Gather with int64 ids (BERT input_ids)',
    nodes: [node('Gather', ['table', 'ids'], ['emb'])],
    inputs: { ids: ints('int64', [1, 4], [1, 0, 7, 9]) },
    weights: { table: f32([10, 3], 2) },
    outputs: ['emb'],
  },
  {
    name: 'GatherElements axis 1 (a negative index), GatherND',
    nodes: [node('GatherElements', ['x', 'idx'], ['ge'], { axis: attr.int(1) }), node('GatherND', ['x3', 'nd'], ['gnd'])],
    inputs: { x: f32([3, 4]), x3: f32([2, 3, 4], 2) },
    weights: { idx: i64([0, 3, -1, 1, 2, 2], [3, 2]), nd: i64([1, 2, 0, 1], [2, 2]) },
    outputs: ['ge', 'gnd'],
  },
  {
    name: 'Constant, ConstantOfShape, Shape (start/end), Range',
    nodes: [
      node('Constant', [], ['c'], { value: attr.tensor(f32([3], 9)) }),
      node('Add', ['x', 'c'], ['xc']),
      node('Shape', ['x'], ['shp']),
      node('ConstantOfShape', ['shp'], ['filled'], { value: attr.tensor(Tensor.from('float32', [1], [3.5])) }),
      node('Add', ['filled', 'x'], ['fx']),
      node('Shape', ['x'], ['tail'], { start: attr.int(1) }),
      node('Range', ['r0', 'r1', 'r2'], ['range']),
    ],
    inputs: { x: f32([2, 3]) },
    weights: { r0: Tensor.from('float32', [], [1]), r1: Tensor.from('float32', [], [7.5]), r2: Tensor.from('float32', [], [1.5]) },
    outputs: ['xc', 'fx', 'tail', 'range'],
    opset: 15,
  },
  {
    name: 'Equal, Less, Greater, LessOrEqual, GreaterOrEqual, Not, And, Or, Xor (broadcast)',
    nodes: [
      node('Floor', ['x'], ['fx']),
      node('Floor', ['y'], ['fy']),
      node('Equal', ['fx', 'fy'], ['eq']),
      node('Less', ['x', 'y'], ['lt']),
      node('Greater', ['x', 'y'], ['gt']),
      node('LessOrEqual', ['fx', 'fy'], ['le']),
      node('GreaterOrEqual', ['fx', 'fy'], ['ge']),
      node('Not', ['lt'], ['not']),
      node('And', ['le', 'ge'], ['and']),
      node('Or', ['lt', 'eq'], ['or']),
      node('Xor', ['lt', 'le'], ['xor']),
    ],
    inputs: { x: f32([2, 3], 1, 2), y: f32([3], 2, 2) },
    outputs: ['eq', 'lt', 'gt', 'le', 'ge', 'not', 'and', 'or', 'xor'],
  },
  {
    name: 'IsNaN, IsInf (0/0 and 1/0 made in the graph), Where',
    nodes: [
      node('Div', ['x', 'x'], ['q']),
      node('IsNaN', ['q'], ['nan']),
      node('Div', ['one', 'x'], ['r']),
      node('IsInf', ['r'], ['inf']),
      node('Where', ['nan', 'y', 'x'], ['w']),
    ],
    inputs: { x: Tensor.from('float32', [2, 3], [0, 1, -2, 0, 3, 0.5]), y: f32([2, 3], 3) },
    weights: { one: Tensor.from('float32', [], [1]) },
    outputs: ['nan', 'inf', 'w'],
  },
  {
    name: 'Expand both ways ([3, 1] to [2, 1, 4]), Pow, Sqrt, Tanh, Cast',
    nodes: [
      node('Expand', ['x', 'shape'], ['ex']),
      node('Sigmoid', ['x'], ['s']),
      node('Pow', ['s', 'p'], ['pw']),
      node('Pow', ['s', 'pi'], ['pwi']),
      node('Abs', ['x'], ['ax']),
      node('Sqrt', ['ax'], ['sq']),
      node('Tanh', ['x'], ['th']),
      node('Mul', ['x', 'ten'], ['x10']),
      node('Cast', ['x10'], ['xi'], { to: attr.int(6) }),
      node('Cast', ['xi'], ['xf'], { to: attr.int(1) }),
    ],
    inputs: { x: f32([3, 1]) },
    weights: { shape: i64([2, 1, 4]), p: Tensor.from('float32', [], [2.5]), pi: i64([3], []), ten: Tensor.from('float32', [], [10]) },
    outputs: ['ex', 'pw', 'pwi', 'sq', 'th', 'xf'],
  },
  {
    name: 'Split: equal parts, and explicit sizes (opset 13 input)',
    nodes: [node('Split', ['x'], ['a', 'b'], { axis: attr.int(1) }), node('Split', ['x', 'sizes'], ['c', 'd'], { axis: attr.int(-1) })],
    inputs: { x: f32([2, 4]) },
    weights: { sizes: i64([1, 3]) },
    outputs: ['a', 'b', 'c', 'd'],
  },
  {
    name: 'Resize: nearest asymmetric/floor (scales), linear half_pixel (sizes), linear align_corners, nearest half_pixel round_prefer_ceil',
    nodes: [
      node('Resize', ['x', '', 'scales'], ['near'], { mode: attr.string('nearest'), coordinate_transformation_mode: attr.string('asymmetric'), nearest_mode: attr.string('floor') }),
      node('Resize', ['x', '', '', 'sizes'], ['lin'], { mode: attr.string('linear') }),
      node('Resize', ['x', '', 'scales'], ['lin_ac'], { mode: attr.string('linear'), coordinate_transformation_mode: attr.string('align_corners') }),
      node('Resize', ['x', '', '', 'sizes'], ['near_hp'], { mode: attr.string('nearest'), nearest_mode: attr.string('round_prefer_ceil') }),
    ],
    inputs: { x: f32([1, 2, 4, 3]) },
    weights: { scales: Tensor.from('float32', [4], [1, 1, 2, 2]), sizes: i64([1, 2, 7, 5]) },
    outputs: ['near', 'lin', 'lin_ac', 'near_hp'],
    opset: 13,
  },
  {
    name: 'Pad: constant (value 0.5), reflect, edge (2 cells), wrap',
    nodes: [
      node('Pad', ['x', 'pads', 'cv'], ['pc'], { mode: attr.string('constant') }),
      node('Pad', ['x', 'pads'], ['pr'], { mode: attr.string('reflect') }),
      node('Pad', ['x', 'pads2'], ['pe'], { mode: attr.string('edge') }),
      node('Pad', ['x', 'pads'], ['pw'], { mode: attr.string('wrap') }),
    ],
    inputs: { x: f32([1, 2, 4, 3]) },
    weights: { pads: i64([0, 0, 1, 2, 0, 0, 2, 1]), pads2: i64([0, 0, 2, 0, 0, 0, 1, 2]), cv: Tensor.from('float32', [], [0.5]) },
    outputs: ['pc', 'pr', 'pe', 'pw'],
    opset: 19,
  },
  {
    name: 'Einsum, CumSum (plain, exclusive reverse), Trilu (upper k=1, lower k=-1)',
    nodes: [
      node('Einsum', ['a', 'b'], ['es'], { equation: attr.string('bij,bjk->bik') }),
      node('CumSum', ['x', 'axis'], ['cs']),
      node('CumSum', ['x', 'axis'], ['csr'], { exclusive: attr.int(1), reverse: attr.int(1) }),
      node('Trilu', ['x', 'k1'], ['tu']),
      node('Trilu', ['x', 'km1'], ['tl'], { upper: attr.int(0) }),
    ],
    inputs: { a: f32([2, 3, 4]), b: f32([2, 4, 2], 2), x: f32([3, 4], 3) },
    weights: { axis: i64([1], []), k1: i64([1], []), km1: i64([-1], []) },
    outputs: ['es', 'cs', 'csr', 'tu', 'tl'],
  },
  {
    name: 'TopK: largest on axis 1, smallest on axis 0; ArgMax',
    nodes: [
      node('TopK', ['x', 'k'], ['tv', 'ti'], { axis: attr.int(1) }),
      node('TopK', ['x', 'k'], ['sv', 'si'], { axis: attr.int(0), largest: attr.int(0) }),
      node('ArgMax', ['x'], ['am'], { axis: attr.int(1), keepdims: attr.int(0) }),
    ],
    inputs: { x: f32([3, 5]) },
    weights: { k: i64([2]) },
    outputs: ['tv', 'ti', 'sv', 'si', 'am'],
  },
  {
    name: 'ScatterND: rows replaced',
    nodes: [node('ScatterND', ['x', 'idx', 'u'], ['sc'])],
    inputs: { x: f32([4, 3]), u: f32([2, 3], 2) },
    weights: { idx: i64([1, 3], [2, 1]) },
    outputs: ['sc'],
  },
  {
    name: 'ReduceMean (axes attribute), ReduceSum (axes input), ReduceMax (opset 18 axes input)',
    nodes: [
      node('ReduceMean', ['x'], ['rm'], { axes: attr.ints([1]), keepdims: attr.int(0) }),
      node('ReduceSum', ['x', 'axes'], ['rs']),
    ],
    inputs: { x: f32([2, 3, 4]) },
    weights: { axes: i64([-1]) },
    outputs: ['rm', 'rs'],
  },
  {
    name: 'ReduceMax with axes as an input (opset 18)',
    nodes: [node('ReduceMax', ['x', 'axes'], ['rx'], { keepdims: attr.int(0) })],
    inputs: { x: f32([2, 3, 4]) },
    weights: { axes: i64([0, 2]) },
    outputs: ['rx'],
    opset: 18,
  },
  {
    name: 'Squeeze and Unsqueeze with axes attributes (opset 11)',
    nodes: [node('Unsqueeze', ['x'], ['u'], { axes: attr.ints([0, 3]) }), node('Squeeze', ['u'], ['s'], { axes: attr.ints([0]) })],
    inputs: { x: f32([2, 3]) },
    outputs: ['u', 's'],
    opset: 11,
  },
  {
    name: 'Softmax on an inner axis, batched MatMul (broadcast and batch-by-batch), MatMul by a vector',
    nodes: [
      node('Softmax', ['x'], ['sm'], { axis: attr.int(1) }),
      node('MatMul', ['x', 'w'], ['mm']),
      node('MatMul', ['x', 'x2'], ['bmm']),
      node('MatMul', ['x', 'v'], ['mv']),
    ],
    inputs: { x: f32([2, 3, 4]), x2: f32([2, 4, 2], 3) },
    weights: { w: f32([4, 5], 2), v: f32([4], 4) },
    outputs: ['sm', 'mm', 'bmm', 'mv'],
  },
  {
    name: 'Slice with starts and ends computed at run time (torch.onnx.export of an FCN head), Mod (fmod 0 on integers), integer Div truncating toward zero',
    nodes: [
      node('Shape', ['x'], ['shp']),
      node('Gather', ['shp', 'two'], ['h']),
      node('Div', ['h', 'four'], ['start']),
      node('Unsqueeze', ['start', 'zero'], ['starts']),
      node('Sub', ['h', 'one'], ['stop']),
      node('Unsqueeze', ['stop', 'zero'], ['ends']),
      node('Slice', ['x', 'starts', 'ends', 'axes'], ['sl']),
      node('Mod', ['ids', 'three'], ['mod']),
      node('Div', ['ids', 'minus3'], ['quot']),
    ],
    inputs: { x: f32([1, 2, 9, 4]), ids: ints('int32', [5], [-4, -1, 0, 5, 7]) },
    weights: { two: i64([2], []), four: i64([4], []), one: i64([1], []), zero: i64([0]), axes: i64([2]), three: ints('int32', [], [3]), minus3: ints('int32', [], [-3]) },
    outputs: ['sl', 'mod', 'quot'],
  },
  {
    name: 'Flatten at axis 2 (transformers attention masks), Split in three of a computed size (GPT-2 q/k/v, opset 18), Concat of one value',
    nodes: [
      node('Flatten', ['x'], ['fl'], { axis: attr.int(2) }),
      node('Concat', ['x'], ['one'], { axis: attr.int(0) }),
      node('Reshape', ['x', 'flat'], ['r']),
      node('Split', ['r'], ['sa', 'sb', 'sc'], { axis: attr.int(1), num_outputs: attr.int(3) }),
    ],
    inputs: { x: f32([2, 3, 2, 2]) },
    weights: { flat: i64([0, -1]) },
    outputs: ['fl', 'one', 'sa', 'sb', 'sc'],
    opset: 18,
  },
  {
    name: 'LSTM bidirectional with bias and initial states, unrolled (torch.nn.LSTM, Keras LSTM)',
    nodes: [node('LSTM', ['x', 'w', 'r', 'b', '', 'h0', 'c0'], ['ly', 'lh', 'lc'], { hidden_size: attr.int(3), direction: attr.string('bidirectional') })],
    inputs: { x: f32([4, 2, 5]), h0: f32([2, 2, 3], 7, 0.5), c0: f32([2, 2, 3], 8, 0.5) },
    weights: { w: f32([2, 12, 5], 2, 0.5), r: f32([2, 12, 3], 3, 0.5), b: f32([2, 24], 4, 0.2) },
    outputs: ['ly', 'lh', 'lc'],
  },
  {
    name: 'GRU forward linear_before_reset=1 (torch) and reverse linear_before_reset=0 (Keras reset_after=False), unrolled',
    nodes: [
      node('GRU', ['x', 'w', 'r', 'b'], ['gy', 'gh'], { hidden_size: attr.int(3), linear_before_reset: attr.int(1) }),
      node('GRU', ['x', 'w', 'r', 'b'], ['ry', 'rh'], { hidden_size: attr.int(3), direction: attr.string('reverse') }),
    ],
    inputs: { x: f32([4, 2, 5]) },
    weights: { w: f32([1, 9, 5], 2, 0.5), r: f32([1, 9, 3], 3, 0.5), b: f32([1, 18], 4, 0.2) },
    outputs: ['gy', 'gh', 'ry', 'rh'],
  },
  {
    name: 'RNN bidirectional (tanh), unrolled',
    nodes: [node('RNN', ['x', 'w', 'r', 'b'], ['ny', 'nh'], { hidden_size: attr.int(3), direction: attr.string('bidirectional') })],
    inputs: { x: f32([4, 2, 5]) },
    weights: { w: f32([2, 3, 5], 2, 0.5), r: f32([2, 3, 3], 3, 0.5), b: f32([2, 6], 4, 0.2) },
    outputs: ['ny', 'nh'],
  },
];

interface Written {
  readonly expected: Record<string, Tensor>;
  readonly dir: string;
  readonly errors: Partial<Record<Target, string>>;
}

/** Every output gets an Identity named after it, so each is a TF tensor `name:0` in every target. */
function modelOf(c: Case): Model {
  const named = c.outputs.map((o) => node('Identity', [`${o}__v`], [o]));
  const rename = (v: string) => (c.outputs.includes(v) ? `${v}__v` : v);
  const nodes = c.nodes.map((n) => ({ ...n, name: `${n.name}__n`, inputs: n.inputs.map(rename), outputs: n.outputs.map(rename) }));
  const initializers = new Map(Object.entries(c.weights ?? {}));
  const inputs: ValueInfo[] = Object.entries(c.inputs).map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape] }));
  const graph: Graph = { inputs, outputs: c.outputs.map((name) => ({ name, dtype: 'float32', shape: null })), initializers, nodes: [...nodes, ...named], opset: c.opset ?? 17 };
  const probe = runModel({ format: 'onnx', weights: initializers, graph, signatures: [defaultSignature(graph)], metadata: {} }, c.inputs);
  // The declared output dtypes are the runtime's (bool for comparisons, int64 for indices).
  const typed: Graph = { ...graph, outputs: c.outputs.map((name) => ({ name, dtype: probe[name]!.dtype, shape: [...probe[name]!.shape] })) };
  // One float weight the graph does not read: the SavedModel writer emits a SaveV2/RestoreV2 pair
  // for its variables, and one with none at all is refused by TensorFlow (reported, not ours to fix here).
  const weights = new Map([...initializers, ['unread', Tensor.from('float32', [1], [0.5])]]);
  return { format: 'onnx', weights, graph: typed, signatures: [defaultSignature(typed)], metadata: {} };
}

const numbers = (t: Tensor) => t.toNumbers();

function relErr(actual: ArrayLike<number>, expected: readonly number[]): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(Number(actual[i]) - expected[i]!) / Math.max(1, Math.abs(expected[i]!)));
  return worst;
}

function expectClose(where: string, actual: Tensor, expected: Tensor): void {
  expect(actual.shape, `${where} shape`).toEqual(expected.shape);
  expect(relErr(numbers(actual), numbers(expected)), `${where} values`).toBeLessThanOrEqual(1e-4);
}

describe.skipIf(!python)('TF export of IR ops: TensorFlow (SavedModel, GraphDef) and TF.js run what modelbridge writes', () => {
  const written = new Map<string, Written>();
  const results = new Map<string, unknown[]>();

  beforeAll(() => {
    const root = tempDir('mb-tf-export-ops-');
    const requests: { cmd: string; args: string[]; input: unknown }[] = [];
    const owners: string[] = [];
    CASES.forEach((c, i) => {
      const dir = join(root, `case${i}`);
      mkdirSync(dir);
      const model = modelOf(c);
      const expected = runModel(model, c.inputs);
      const errors: Partial<Record<Target, string>> = {};
      const paths: Record<Target, string> = { savedmodel: join(dir, 'saved'), graphdef: join(dir, 'frozen.pb'), tfjs: join(dir, 'web/') };
      for (const target of ['savedmodel', 'graphdef', 'tfjs'] as const) {
        try {
          saveModel(model, paths[target], { format: target });
        } catch (e) {
          errors[target] = (e as Error).message;
        }
      }
      written.set(c.name, { expected, dir, errors });
      if (!errors.savedmodel) {
        requests.push({ cmd: 'run-savedmodel', args: [paths.savedmodel, 'serving_default'], input: feedsJson(c.inputs) });
        owners.push(c.name);
      }
      if (!errors.graphdef) {
        requests.push({ cmd: 'run-graphdef', args: [paths.graphdef], input: { inputs: feedsJson(c.inputs), outputs: c.outputs.map((o) => `${o}:0`) } });
        owners.push(c.name);
      }
    });
    const answers = tfBatch(requests);
    answers.forEach((a, i) => results.set(owners[i]!, [...(results.get(owners[i]!) ?? []), a]));
  }, 600_000);

  it('every case names only ops the exporter maps, and the cases cover every op the issue lists', () => {
    const used = new Set(CASES.flatMap((c) => c.nodes.map((n) => n.op)));
    for (const op of used) expect(Object.prototype.hasOwnProperty.call(IR_TO_TF, op), op).toBe(true);
    const listed = `GlobalAveragePool GlobalMaxPool HardSwish HardSigmoid LayerNormalization Gelu Erf Gather GatherElements GatherND Constant
      ConstantOfShape Shape Range Equal Less Greater LessOrEqual GreaterOrEqual Not And Or IsNaN Where Expand Split Pow Resize Pad Einsum
      CumSum Trilu TopK ScatterND ReduceMean ReduceSum ReduceMax Squeeze Cast Sqrt Tanh Softmax MatMul Conv ConvTranspose`.split(/\s+/);
    expect(listed.filter((op) => !used.has(op))).toEqual([]);
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const w = written.get(c.name)!;
      for (const target of ['savedmodel', 'graphdef', 'tfjs'] as const) {
        const refusal = c.refused?.[target];
        if (refusal) {
          expect(w.errors[target], `${target} refuses`).toMatch(refusal);
          continue;
        }
        expect(w.errors[target], `${target} written`).toBeUndefined();
      }
      const [served, session] = results.get(c.name)!;
      if (served instanceof Error) throw served;
      if (session instanceof Error) throw session;
      for (const o of c.outputs) {
        expectClose(`SavedModel ${o}`, fromJson((served as Record<string, JsonTensor>)[o]!), w.expected[o]!);
        expectClose(`GraphDef ${o}`, fromJson((session as Record<string, JsonTensor>)[`${o}:0`]!), w.expected[o]!);
      }
      if (c.refused?.tfjs) return;
      const model = await loadInTfjs(join(w.dir, 'web', 'model.json'));
      const feeds = Object.fromEntries(Object.entries(c.inputs).map(([k, t]) => [k, tf.tensor(numbers(t), [...t.shape], t.dtype === 'int32' || t.dtype === 'int64' ? 'int32' : 'float32')]));
      const outs = model.execute(feeds, c.outputs) as tf.Tensor | tf.Tensor[];
      const list = Array.isArray(outs) ? outs : [outs];
      for (const [k, o] of c.outputs.entries()) {
        const y = list[k]!;
        const values = Array.from((await y.data()) as ArrayLike<number>, Number);
        expect(y.shape, `TF.js ${o} shape`).toEqual(w.expected[o]!.shape);
        expect(relErr(values, numbers(w.expected[o]!)), `TF.js ${o} values`).toBeLessThanOrEqual(1e-4);
      }
      for (const t of [...Object.values(feeds), ...list]) t.dispose();
    });
  }

  it('the TF ops each export entry declares: TF.js runs all of them (TruncateMod, Softsign, TensorScatterAdd/Max/Min aside)', () => {
    const missing = Object.entries(IR_TO_TF).flatMap(([op, e]) => e.tf.filter((t) => !TFJS_RUNS.has(t)).map((t) => `${op}:${t}`));
    expect(missing.sort()).toEqual(['Mod:TruncateMod', 'ScatterND:TensorScatterAdd', 'ScatterND:TensorScatterMax', 'ScatterND:TensorScatterMin', 'Softsign:Softsign']);
  });
});
