import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareWeights, diffModels, permuteTensor, UNIFORM_NOTE, type TensorDiff } from '../src/api/diff.js';
import { loadModel, saveModel } from '../src/api/load.js';
import type { Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { transpose2d } from '../src/core/transpose.js';
import { trainOrGate } from '../src/train/or-gate.js';
import { cli, tempDir } from './cli-helpers.js';

interface DiffJson {
  equal: boolean;
  status: string;
  tolerance: { atol: number; rtol: number };
  a: { path: string; format: string; runnable: boolean };
  weights: { equal: boolean; counts: Record<string, number>; tensors: TensorDiff[] };
  outputs: { status: string; message: string; inputs: string | null; outputs: Array<Record<string, unknown>> };
}

function diff(args: readonly string[]): { code: number; report: DiffJson; stdout: string } {
  const r = cli(['diff', ...args, '--json']);
  try {
    return { code: r.code, report: JSON.parse(r.stdout) as DiffJson, stdout: r.stdout };
  } catch {
    throw new Error(`diff ${args.join(' ')} printed no JSON (exit ${r.code}): ${r.stdout}${r.stderr}`);
  }
}

const bare = (weights: Record<string, Tensor>): Model => ({ format: 'safetensors', weights: new Map(Object.entries(weights)), signatures: [], metadata: {} });
const seq = (shape: number[], scale = 1) => Tensor.from('float32', shape, Array.from({ length: shape.reduce((p, d) => p * d, 1) }, (_, i) => (i + 1) * scale));
const tensorOf = (r: { weights: { tensors: readonly TensorDiff[] } }, name: string) => r.weights.tensors.find((t) => t.name === name)!;

describe('modelbridge diff', () => {
  let dir = '';
  let or = '';
  beforeAll(() => {
    dir = tempDir('modelbridge-diff-');
    or = join(dir, 'or.safetensors');
    saveModel(trainOrGate({ seed: 0 }).model, or);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the same model in two files (single file and sharded) is equal: exit 0, outputs compared', () => {
    const shards = join(dir, 'shards');
    expect(cli(['convert', or, shards, '--shard-size', '16']).code).toBe(0);
    const { code, report } = diff([or, shards]);
    expect(code).toBe(0);
    expect(report).toMatchObject({ equal: true, status: 'equal', tolerance: { atol: 1e-5, rtol: 1e-5 } });
    expect(report.weights.counts).toMatchObject({ identical: 4, different: 0, missing: 0, extra: 0 });
    expect(report.weights.tensors.every((t) => t.via === 'name' && t.maxAbs === 0)).toBe(true);
    expect(report.outputs.status).toBe('equal');
    expect(report.outputs.outputs).toEqual([
      { name: 'y', other: 'y', status: 'identical', dtype: ['float32', 'float32'], shape: [[1, 1], [1, 1]], maxAbs: 0, meanAbs: 0, medianAbs: 0, maxRel: 0, fractionBeyond: 0 },
    ]);
    const table = cli(['diff', or, shards]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^EQUAL/);
    expect(table.stdout).toMatch(/weights: 4 tensor\(s\): 4 identical/);
  });

  it('a changed tensor is named with its max abs difference; outputs show max/mean/median and the fraction beyond tolerance', () => {
    const model = loadModel(or);
    const weight = model.weights.get('0.weight')!;
    const values = Array.from(weight.toFloat32());
    values[1] = values[1]! + 0.25;
    const changed = join(dir, 'changed.safetensors');
    saveModel({ ...model, weights: new Map([...model.weights].map(([k, t]) => [k, k === '0.weight' ? Tensor.from('float32', t.shape, values) : t])) }, changed);
    const inputs = join(dir, 'batch.json');
    writeFileSync(inputs, JSON.stringify({ x: [[0, 0], [0, 1], [1, 0], [1, 1]] }));
    const { code, report } = diff([or, changed, '--inputs', inputs]);
    expect(code).toBe(1);
    expect(report.equal).toBe(false);
    const t = tensorOf(report, '0.weight');
    expect(t.status).toBe('different');
    expect(t.maxAbs).toBeCloseTo(0.25, 6);
    expect(t.beyond).toBe(1);
    expect(report.weights.counts).toMatchObject({ identical: 3, different: 1 });
    const y = report.outputs.outputs[0]!;
    expect(report.outputs.inputs).toMatch(/given inputs x \[4, 2\] float32/);
    expect(y['shape']).toEqual([[4, 1], [4, 1]]);
    for (const key of ['maxAbs', 'meanAbs', 'medianAbs', 'fractionBeyond']) expect(typeof y[key]).toBe('number');
    expect(y['maxAbs'] as number).toBeGreaterThan(0);
    expect(y['meanAbs'] as number).toBeLessThanOrEqual(y['maxAbs'] as number);
    const text = cli(['diff', or, changed]);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^ {2}0\.weight\s+different\s+name\s+float32\s+\[2, 2\]\s+0\.25/m);
    expect(text.stdout).toMatch(/^ {2}output\s+status\s+shape\s+max abs\s+mean abs\s+median abs\s+frac beyond tol/m);
    // Within a loose enough tolerance the models are equal.
    expect(diff([or, changed, '--atol', '1']).code).toBe(0);
  });

  it('matches a Dense kernel [in, out] to a Linear weight [out, in] across names by its transposed values', () => {
    const kernel = seq([2, 3], 0.5);
    const a = join(dir, 'keras-like.safetensors');
    const b = join(dir, 'torch-like.safetensors');
    saveModel(bare({ 'dense/kernel': kernel, 'dense/bias': seq([3], 0.1) }), a);
    saveModel(bare({ 'fc.weight': transpose2d(kernel), 'fc.bias': seq([3], 0.1) }), b);
    const { code, report } = diff([a, b, '--atol', '0', '--rtol', '0']);
    expect(code).toBe(0);
    expect(tensorOf(report, 'dense/kernel')).toMatchObject({ other: 'fc.weight', via: 'transposed', status: 'identical', perm: [1, 0], shape: [[2, 3], [3, 2]], maxAbs: 0 });
    expect(tensorOf(report, 'dense/bias')).toMatchObject({ other: 'fc.bias', via: 'renamed', status: 'identical' });
    expect(report.outputs.status).toBe('skip');
    expect(report.outputs.message).toMatch(/neither model has an architecture/);
    const text = cli(['diff', a, b]).stdout;
    expect(text).toMatch(/dense\/kernel ~ fc\.weight\s+identical\s+transposed\s+float32\s+\[2, 3\] -> \[3, 2\]/);

    // Transposed but with one value changed: no longer the same tensor, so missing and extra.
    const changed = Array.from(transpose2d(kernel).toFloat32());
    changed[4] = 99;
    const c = join(dir, 'torch-changed.safetensors');
    saveModel(bare({ 'fc.weight': Tensor.from('float32', [3, 2], changed), 'fc.bias': seq([3], 0.1) }), c);
    const broken = diff([a, c]);
    expect(broken.code).toBe(1);
    expect(tensorOf(broken.report, 'dense/kernel')).toMatchObject({ status: 'missing', other: null });
    expect(tensorOf(broken.report, 'fc.weight')).toMatchObject({ status: 'extra', dtype: [null, 'float32'] });
  });

  it('lists missing, extra, reshaped and retyped tensors', () => {
    const a = join(dir, 'a.safetensors');
    const b = join(dir, 'b.safetensors');
    saveModel(bare({ keep: seq([4]), gone: seq([5]), reshaped: seq([2, 6]), retyped: seq([3]), moved: seq([2, 2, 3]) }), a);
    saveModel(bare({ keep: seq([4]), added: seq([7], 3), reshaped: seq([3, 4]), retyped: Tensor.from('float16', [3], [1, 2, 3]), moved: permuteTensor(seq([2, 2, 3]), [2, 0, 1]) }), b);
    const { code, report } = diff([a, b]);
    expect(code).toBe(1);
    const status = Object.fromEntries(report.weights.tensors.map((t) => [t.name, t.status]));
    expect(status).toEqual({ keep: 'identical', gone: 'missing', reshaped: 'reshaped', retyped: 'retyped', moved: 'identical', added: 'extra' });
    // Same values in another shape: reported as reshaped, with the values compared in order.
    expect(tensorOf(report, 'reshaped')).toMatchObject({ shape: [[2, 6], [3, 4]], maxAbs: 0 });
    expect(tensorOf(report, 'retyped')).toMatchObject({ dtype: ['float32', 'float16'], maxAbs: 0 });
    expect(tensorOf(report, 'moved')).toMatchObject({ via: 'permuted', perm: [1, 2, 0] });
    expect(report.weights.counts).toMatchObject({ identical: 2, missing: 1, extra: 1, reshaped: 1, retyped: 1 });
  });

  it('two different models: outputs compared on generated input; unreadable input exits 2', () => {
    const other = join(dir, 'or-seed1.safetensors');
    saveModel(trainOrGate({ seed: 1 }).model, other);
    const { code, report } = diff([or, other]);
    expect(code).toBe(1);
    expect(report.weights.counts['different']).toBe(4);
    expect(report.outputs.inputs).toBe('uniform [0, 1) x [1, 2] float32');
    expect(report.outputs.status).toBe('different');
    const truncated = join(dir, 'truncated.safetensors');
    writeFileSync(truncated, readFileSync(or).subarray(0, 40));
    const r = cli(['diff', or, truncated]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: .*truncated\.safetensors: /);
  });

  it('as a library: compareWeights with the tolerance deciding close against different', () => {
    const a = new Map([['w', Tensor.from('float32', [2], [1, 2])]]);
    const b = new Map([['w', Tensor.from('float32', [2], [1, 2.00001])]]);
    expect(compareWeights(a, b, { atol: 1e-4, rtol: 0 }).tensors[0]!.status).toBe('close');
    expect(compareWeights(a, b, { atol: 0, rtol: 0 }).tensors[0]!.status).toBe('different');
    const report = diffModels(trainOrGate({ seed: 0 }).model, loadModel(or));
    expect(report.equal).toBe(true);
  });

  it('runs the models on a seeded uniform [0, 1) input, which tells apart a kernel stored with its axes swapped (a constant image could not)', () => {
    // A 3x3 convolution with no padding: on ones every output is the sum of the kernel, whatever
    // the order of its taps; on the generated input the order shows.
    const kernel = Tensor.from('float32', [1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9].map((v) => v / 10));
    const swapped = Tensor.from('float32', [1, 1, 3, 3], [1, 4, 7, 2, 5, 8, 3, 6, 9].map((v) => v / 10));
    const conv = (w: Tensor): Model => {
      const graph = {
        inputs: [{ name: 'x', dtype: 'float32' as const, shape: [1, 1, 5, 5] }],
        outputs: [{ name: 'y', dtype: 'float32' as const, shape: [1, 1, 3, 3] }],
        initializers: new Map([['w', w]]),
        nodes: [{ name: 'conv', op: 'Conv', domain: '', inputs: ['x', 'w'], outputs: ['y'], attributes: {} }],
        opset: 17,
      };
      return { format: 'onnx', weights: new Map([['w', w]]), graph, signatures: [{ name: 'serving_default', inputs: new Map([['x', 'x']]), outputs: new Map([['y', 'y']]) }], metadata: {} };
    };
    const ones = new Map([['x', Tensor.from('float32', [1, 1, 5, 5], new Array<number>(25).fill(1))]]);
    expect(diffModels(conv(kernel), conv(swapped), { inputs: ones }).outputs.status).toBe('equal');
    const report = diffModels(conv(kernel), conv(swapped));
    expect(report.outputs.inputs).toBe('uniform [0, 1) x [1, 1, 5, 5] float32');
    expect(report.outputs.status).toBe('different');
    // The same input every time: a model compared with itself is equal with error 0.
    const again = diffModels(conv(kernel), conv(kernel));
    expect(again.outputs.status).toBe('equal');
    expect(again.outputs.message).toMatch(/max abs error 0$/);
  });

  it('says when every output is one value throughout, so an error of 0 is not read as more than it is', () => {
    const zero = Tensor.from('float32', [3, 2], [0, 0, 0, 0, 0, 0]);
    const graph = {
      inputs: [{ name: 'x', dtype: 'float32' as const, shape: [1, 2] }],
      outputs: [{ name: 'y', dtype: 'float32' as const, shape: [1, 3] }],
      initializers: new Map([['w', zero]]),
      nodes: [{ name: 'head', op: 'Gemm', domain: '', inputs: ['x', 'w'], outputs: ['y'], attributes: { transB: { type: 'int' as const, value: 1 } } }],
      opset: 17,
    };
    const head: Model = { format: 'onnx', weights: new Map([['w', zero]]), graph, signatures: [{ name: 'serving_default', inputs: new Map([['x', 'x']]), outputs: new Map([['y', 'y']]) }], metadata: {} };
    const report = diffModels(head, head);
    expect(report.outputs.status).toBe('equal');
    expect(report.outputs.message).toContain(UNIFORM_NOTE);
    const file = join(dir, 'zero-head.onnx');
    saveModel(head, file);
    const r = cli(['convert', file, join(dir, 'zero-head.safetensors')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`max abs error 0 ${UNIFORM_NOTE}`);
    // ... and not for the OR gate, whose output varies.
    expect(diffModels(trainOrGate({ seed: 0 }).model, loadModel(or)).outputs.message).not.toContain(UNIFORM_NOTE);
  });
});
