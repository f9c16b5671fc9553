import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/core/errors.js';
import { attr, makeNode, type Attribute, type Graph } from '../src/core/graph.js';
import { Tensor } from '../src/core/tensor.js';
import { Session } from '../src/runtime/executor.js';
import { isSupported, supportedOps } from '../src/runtime/ops.js';

/** Runs one node over the given inputs (all graph inputs) and returns its first output. */
function runOp(op: string, inputs: Tensor[], attributes: Record<string, Attribute> = {}, opset = 17): Tensor {
  const names = inputs.map((_, i) => `in${i}`);
  const graph: Graph = {
    inputs: inputs.map((t, i) => ({ name: names[i]!, dtype: t.dtype, shape: t.shape })),
    outputs: [{ name: 'out', dtype: inputs[0]!.dtype, shape: null }],
    initializers: new Map(),
    nodes: [makeNode(op, names, ['out'], attributes)],
    opset,
  };
  return new Session(graph).run(Object.fromEntries(inputs.map((t, i) => [names[i]!, t])))['out']!;
}

const f32 = (shape: number[], values: number[]) => Tensor.from('float32', shape, values);
const values = (t: Tensor) => Array.from(t.toFloat32());

describe('runtime kernels (ONNX semantics)', () => {
  it('broadcasts binary ops numpy-style', () => {
    const out = runOp('Add', [f32([2, 1, 3], [1, 2, 3, 4, 5, 6]), f32([2, 1], [10, 20])]);
    expect(out.shape).toEqual([2, 2, 3]);
    expect(values(out)).toEqual([11, 12, 13, 21, 22, 23, 14, 15, 16, 24, 25, 26]);
    expect(values(runOp('Sub', [f32([3], [1, 2, 3]), f32([], [1])]))).toEqual([0, 1, 2]);
    expect(() => runOp('Mul', [f32([2], [1, 2]), f32([3], [1, 2, 3])])).toThrow(/do not broadcast/);
  });

  it('keeps int64 exact and truncates integer division toward zero', () => {
    const big = Tensor.from('int64', [2], [2n ** 60n + 1n, -7n]);
    const out = runOp('Add', [big, Tensor.from('int64', [2], [1n, 0n])]);
    expect(Array.from(out.storage() as BigInt64Array)).toEqual([2n ** 60n + 2n, -7n]);
    const div = runOp('Div', [Tensor.from('int32', [2], [7, -7]), Tensor.from('int32', [2], [2, 2])]);
    expect(Array.from(div.storage() as Int32Array)).toEqual([3, -3]);
  });

  it('computes Gemm with transA, transB, alpha, beta and a broadcast C', () => {
    const a = f32([2, 3], [1, 2, 3, 4, 5, 6]);
    const bT = f32([2, 3], [1, 0, 1, 0, 1, 0]); // B' = bT^T is [3, 2]
    const out = runOp('Gemm', [a, bT, f32([2], [100, 200])], { transB: attr.int(1), alpha: attr.float(2), beta: attr.float(0.5) });
    expect(values(out)).toEqual([2 * 4 + 50, 2 * 2 + 100, 2 * 10 + 50, 2 * 5 + 100]);
    const aT = f32([3, 2], [1, 4, 2, 5, 3, 6]);
    expect(values(runOp('Gemm', [aT, bT], { transA: attr.int(1), transB: attr.int(1) }))).toEqual([4, 2, 10, 5]);
  });

  it('computes MatMul over broadcast batches and 1-D operands', () => {
    const a = f32([2, 1, 1, 2], [1, 2, 3, 4]);
    const b = f32([3, 2, 1], [1, 1, 2, 0, 0, 3]);
    const out = runOp('MatMul', [a, b]);
    expect(out.shape).toEqual([2, 3, 1, 1]);
    expect(values(out)).toEqual([3, 2, 6, 7, 6, 12]);
    const v = runOp('MatMul', [f32([2], [1, 2]), f32([2, 2], [1, 2, 3, 4])]);
    expect(v.shape).toEqual([2]);
    expect(values(v)).toEqual([7, 10]);
  });

  it('distinguishes Softmax opset 11 (2-D coercion) from opset 13 (one axis)', () => {
    const x = f32([1, 2, 2], [0, 0, 0, Math.log(3)]);
    const v13 = values(runOp('Softmax', [x], { axis: attr.int(1) }, 13));
    expect(v13[0]).toBeCloseTo(0.5, 6);
    expect(v13[1]).toBeCloseTo(0.25, 6);
    const v11 = values(runOp('Softmax', [x], { axis: attr.int(1) }, 11));
    expect(v11[0]).toBeCloseTo(1 / 6, 6);
    expect(v11[3]).toBeCloseTo(0.5, 6);
    const log = values(runOp('LogSoftmax', [f32([2], [0, 0])]));
    expect(log[0]).toBeCloseTo(Math.log(0.5), 6);
  });

  it('reshapes with 0, -1 and allowzero', () => {
    const x = f32([2, 3, 4], new Array(24).fill(0).map((_, i) => i));
    expect(runOp('Reshape', [x, Tensor.from('int64', [2], [0n, -1n])]).shape).toEqual([2, 12]);
    const empty = Tensor.from('float32', [0, 3], []);
    expect(runOp('Reshape', [empty, Tensor.from('int64', [2], [3n, 0n])], { allowzero: attr.int(1) }).shape).toEqual([3, 0]);
    expect(() => runOp('Reshape', [x, Tensor.from('int64', [2], [5n, -1n])])).toThrow(/cannot infer/);
  });

  it('transposes, concatenates, flattens and casts', () => {
    const x = f32([2, 3], [1, 2, 3, 4, 5, 6]);
    expect(values(runOp('Transpose', [x]))).toEqual([1, 4, 2, 5, 3, 6]);
    expect(values(runOp('Concat', [x, f32([2, 1], [7, 8])], { axis: attr.int(-1) }))).toEqual([1, 2, 3, 7, 4, 5, 6, 8]);
    expect(runOp('Flatten', [f32([2, 3, 1], [1, 2, 3, 4, 5, 6])], { axis: attr.int(0) }).shape).toEqual([1, 6]);
    const cast = runOp('Cast', [f32([3], [1.7, -1.7, 300])], { to: attr.int(3) }); // int8
    expect(Array.from(cast.storage() as Int8Array)).toEqual([1, -1, 44]);
    const half = runOp('Cast', [f32([1], [1 + 2 ** -12])], { to: attr.int(10) });
    expect(values(half)).toEqual([1]);
  });

  it('computes the activations', () => {
    const x = f32([4], [-2, -0.5, 0, 3]);
    expect(values(runOp('Relu', [x]))).toEqual([0, 0, 0, 3]);
    expect(values(runOp('LeakyRelu', [x], { alpha: attr.float(0.1) }))).toEqual(Array.from(Float32Array.from([-0.2, -0.05, 0, 3])));
    expect(values(runOp('Sigmoid', [x]))).toEqual(Array.from(Float32Array.from([-2, -0.5, 0, 3].map((v) => 1 / (1 + Math.exp(-v))))));
    expect(values(runOp('Tanh', [x]))).toEqual(Array.from(Float32Array.from([-2, -0.5, 0, 3].map(Math.tanh))));
    // erf(1) = 0.8427007929497149 (Abramowitz & Stegun table 7.1)
    expect(values(runOp('Erf', [f32([1], [1])]))[0]).toBe(Math.fround(0.8427007929497149));
  });

  it('convolves and pools NCHW with padding and strides', () => {
    const x = f32([1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const w = f32([1, 1, 2, 2], [1, 0, 0, 1]);
    const conv = runOp('Conv', [x, w], { pads: attr.ints([0, 0, 0, 0]) });
    expect(values(conv)).toEqual([6, 8, 12, 14]);
    const padded = runOp('Conv', [x, w, f32([1], [1])], { pads: attr.ints([1, 1, 1, 1]), strides: attr.ints([2, 2]) });
    expect(padded.shape).toEqual([1, 1, 2, 2]);
    expect(values(padded)).toEqual([2, 4, 8, 15]);
    expect(values(runOp('MaxPool', [x], { kernel_shape: attr.ints([2, 2]) }))).toEqual([5, 6, 8, 9]);
    const avg = runOp('AveragePool', [x], { kernel_shape: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]), strides: attr.ints([2, 2]) });
    expect(values(avg)).toEqual([1, 2.5, 5.5, 7]);
    const avgPad = runOp('AveragePool', [x], { kernel_shape: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]), strides: attr.ints([2, 2]), count_include_pad: attr.int(1) });
    expect(values(avgPad)).toEqual([0.25, 1.25, 2.75, 7]);
  });

  it('normalises batches and layers', () => {
    const x = f32([1, 2, 1, 2], [1, 3, 10, 20]);
    const bn = runOp('BatchNormalization', [x, f32([2], [1, 2]), f32([2], [0, 1]), f32([2], [2, 15]), f32([2], [4, 25])], { epsilon: attr.float(0) });
    expect(values(bn)).toEqual([-0.5, 0.5, -1, 3]);
    const ln = runOp('LayerNormalization', [f32([1, 2], [1, 3]), f32([2], [1, 1]), f32([2], [0, 10])], { axis: attr.int(-1), epsilon: attr.float(0) });
    expect(values(ln)).toEqual([-1, 11]);
  });

  it('refuses unsupported ops by name with their nodes, and unrunnable graphs', () => {
    const graph: Graph = {
      inputs: [{ name: 'x', dtype: 'float32', shape: [1] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [1] }],
      initializers: new Map(),
      nodes: [makeNode('FancyOp', ['x'], ['y'], {}, 'fancy_1')],
      opset: 17,
    };
    expect(() => new Session(graph)).toThrow(UsageError);
    expect(() => new Session(graph)).toThrow(/unsupported op: FancyOp \(node fancy_1\)/);
    const cycle: Graph = { ...graph, nodes: [makeNode('Relu', ['b'], ['a'], {}, 'r1'), makeNode('Relu', ['a'], ['b'], {}, 'r2'), makeNode('Relu', ['a'], ['y'])] };
    expect(() => new Session(cycle)).toThrow(/cycle/);
    expect(supportedOps()).toContain('Gemm');
    expect(isSupported('Gemm', 17, 'com.microsoft')).toBe(false);
  });
});
