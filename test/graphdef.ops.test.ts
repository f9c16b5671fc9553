import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Runner } from '../src/api/run.js';
import { FormatError } from '../src/core/errors.js';
import { graphDefToModel, decodeGraphDef } from '../src/formats/graphdef/reader.js';
import { TF_OPS } from '../src/formats/tf/ops.js';
import { isSupported } from '../src/runtime/ops.js';
import { constant, f32, graphDef, op, placeholder } from './fixtures/tf/build.js';
import { coverageGraph, coverageInputs } from './fixtures/tf/coverage.js';
import { maxDiff, tfRunGraphDef } from './fixtures/tf/peer.js';
import { peerPython } from './peers.js';

function run(bytes: Uint8Array, outputs: string[], inputs: Parameters<Runner['run']>[0]) {
  const model = graphDefToModel(decodeGraphDef(bytes, 'test.pb'), 'test.pb', { outputs });
  return { model, out: new Runner(model).run(inputs) };
}

describe('TF op table', () => {
  it('maps every op the issue lists', () => {
    const listed = 'Placeholder Const Identity IdentityN NoOp MatMul BatchMatMulV2 BiasAdd Add AddV2 Sub Mul RealDiv Maximum Minimum Neg Sigmoid Relu Relu6 Tanh Elu Selu LeakyRelu Softmax LogSoftmax Reshape Squeeze ExpandDims Transpose ConcatV2 Pack Cast Shape StridedSlice Mean Sum Conv2D DepthwiseConv2dNative MaxPool AvgPool FusedBatchNormV3';
    // Placeholder is a graph input (fed), never converted by the table.
    const missing = listed.split(' ').filter((o) => o !== 'Placeholder' && !(o in TF_OPS));
    expect(missing).toEqual([]);
  });

  it('emits only ops the runtime runs at opset 17', () => {
    const { nodes, outputs } = coverageGraph();
    const { model } = run(graphDef(nodes), outputs, coverageInputs());
    const used = [...new Set(model.graph!.nodes.map((n) => n.op))];
    expect(used.filter((o) => !isSupported(o, 17))).toEqual([]);
    expect(model.graph!.opset).toBe(17);
  });

  it('computes the documented values of the simple ops', () => {
    const { nodes, outputs } = coverageGraph();
    const { out } = run(graphDef(nodes), outputs, coverageInputs());
    expect(out['transpose']!.toNumbers()).toEqual([0.5, -0.75, -1, 1.5, 2, -2, 0.25, 1]);
    expect(out['reshape']!.shape).toEqual([4, 2]);
    expect(out['pack']!.shape).toEqual([2, 2, 4]);
    expect(out['concat']!.shape).toEqual([2, 7]);
    expect(out['squeeze']!.shape).toEqual([2, 4]);
    expect(out['shape']!.dtype).toBe('int32');
    expect(out['shape']!.toNumbers()).toEqual([1, 6, 6, 3]);
    expect(out['ss_batch']!.shape).toEqual([]);
    expect(out['ss_batch']!.toNumbers()).toEqual([1]);
    expect(out['ss_box']!.toNumbers()).toEqual([-1, 2, 1.5, -2]);
    expect(out['ss_reverse']!.toNumbers()).toEqual([0.25, 2, -1, 0.5, 1, -2, 1.5, -0.75]);
    expect(out['ss_last']!.shape).toEqual([1, 6, 6]);
    expect(out['ss_newaxis']!.shape).toEqual([2, 1, 4]);
    expect(out['sum']!.toNumbers()[0]).toBeCloseTo(1.5, 6);
    expect(out['mean']!.shape).toEqual([2, 1]);
    expect(out['mean']!.toNumbers()[0]).toBeCloseTo(0.4375, 6);
    expect(Math.max(...out['relu6']!.toNumbers())).toBeLessThanOrEqual(6);
    expect(out['cast']!.dtype).toBe('int32');
    expect(out['conv_same']!.shape).toEqual([1, 3, 3, 2]);
    expect(out['conv_dilated']!.shape).toEqual([1, 2, 2, 2]);
    expect(out['conv_explicit']!.shape).toEqual([1, 6, 4, 4]);
    expect(out['dwconv']!.shape).toEqual([1, 6, 6, 6]);
    expect(out['maxpool']!.shape).toEqual([1, 3, 3, 3]);
    expect(out['bn']!.shape).toEqual([1, 6, 6, 3]);
  });

  it('maps MatMul with transpose_b to Gemm and keeps plain MatMul for lifting', () => {
    const { model } = run(graphDef(coverageGraph().nodes), ['mm', 'mm_tb'], coverageInputs());
    const byOut = new Map(model.graph!.nodes.map((n) => [n.outputs[0], n]));
    expect(byOut.get('mm')!.op).toBe('MatMul');
    expect(byOut.get('mm_tb')!.op).toBe('Gemm');
    expect(byOut.get('mm_tb')!.attributes['transB']).toEqual({ type: 'int', value: 1 });
  });

  it('converts an NHWC convolution with one transposed OIHW weight between Transposes', () => {
    const { model } = run(graphDef(coverageGraph().nodes), ['conv_same'], coverageInputs());
    expect(model.graph!.nodes.map((n) => n.op)).toEqual(['Transpose', 'Conv', 'Transpose']);
    // The filter keeps its name, now in OIHW order.
    expect(model.graph!.initializers.get('filt')!.shape).toEqual([2, 3, 3, 3]);
  });

  it('names every unsupported op with a node using it, never dropping one', () => {
    const nodes = [placeholder('x', 'float32', [2]), op('e', 'Erfinv', ['x']), op('f', 'Cumsum2', ['e']), op('g', 'Relu', ['f'])];
    const read = () => graphDefToModel(decodeGraphDef(graphDef(nodes), 'g.pb'), 'g.pb');
    expect(read).toThrow(FormatError);
    expect(read).toThrow(/unsupported: Erfinv \(node e\); Cumsum2 \(node f\)/);
  });

  it('refuses a training-mode batch norm and non-constant shape arguments by node', () => {
    const img = placeholder('img', 'float32', [1, 2, 2, 3]);
    const c = (n: string) => constant(n, f32([3], [1, 1, 1]));
    const bn = op('bn', 'FusedBatchNormV3', ['img', 's', 'o', 'm', 'v'], { is_training: { b: true } });
    const read = (nodes: Parameters<typeof graphDef>[0], out: string) => graphDefToModel(decodeGraphDef(graphDef(nodes), 'g.pb'), 'g.pb', { outputs: [out] });
    expect(() => read([img, c('s'), c('o'), c('m'), c('v'), bn], 'bn')).toThrow(/node bn \(FusedBatchNormV3\): is_training false/);
    const perm = placeholder('perm', 'int32', [4]);
    expect(() => read([img, perm, op('t', 'Transpose', ['img', 'perm'])], 't')).toThrow(/node t \(Transpose\): a constant integer perm/);
  });
});

const python = peerPython();

describe.skipIf(!python)('TF op table against TensorFlow', () => {
  it('gives the outputs TensorFlow gives for every mapped op', () => {
    const { nodes, outputs } = coverageGraph();
    const bytes = graphDef(nodes);
    const file = join(mkdtempSync(join(tmpdir(), 'mb-tfops-')), 'coverage.pb');
    writeFileSync(file, bytes);
    const inputs = coverageInputs();
    const { out } = run(bytes, outputs, inputs);
    const expected = tfRunGraphDef(file, inputs, outputs);
    for (const name of outputs) {
      const ours = out[name]!;
      expect(ours.dtype, name).toBe(expected[name]!.dtype);
      expect(maxDiff(ours, expected[name]!), name).toBeLessThanOrEqual(1e-5);
    }
  });
});
