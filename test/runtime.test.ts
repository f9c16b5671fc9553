import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/core/errors.js';
import { attr, makeNode, type Attribute, type Graph, type Node } from '../src/core/graph.js';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../src/core/half.js';
import { Tensor } from '../src/core/tensor.js';
import { Session } from '../src/runtime/executor.js';
import { isSupported, supportedOps } from '../src/runtime/ops.js';
import { trainOrGate } from '../src/train/or-gate.js';

/** A graph of the given nodes whose inputs are the tensors (in0, in1, ...) and output is `out`. */
function graphOf(nodes: Node[], inputs: Tensor[], opset = 17, initializers = new Map<string, Tensor>()): Graph {
  return {
    inputs: inputs.map((t, i) => ({ name: `in${i}`, dtype: t.dtype, shape: t.shape })),
    outputs: [{ name: 'out', dtype: inputs[0]?.dtype ?? 'float32', shape: null }],
    initializers,
    nodes,
    opset,
  };
}

function feedsOf(inputs: Tensor[]): Record<string, Tensor> {
  return Object.fromEntries(inputs.map((t, i) => [`in${i}`, t]));
}

/** Runs one node over the inputs (all fed) and returns its output. */
function runOp(op: string, inputs: Tensor[], attributes: Record<string, Attribute> = {}, opset = 17): Tensor {
  const node = makeNode(op, inputs.map((_, i) => `in${i}`), ['out'], attributes);
  return new Session(graphOf([node], inputs, opset)).run(feedsOf(inputs))['out']!;
}

const f32 = (shape: number[], values: number[]) => Tensor.from('float32', shape, values);
const i64 = (shape: number[], values: bigint[]) => Tensor.from('int64', shape, values);
const values = (t: Tensor) => Array.from(t.toFloat32());
const iota = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('broadcasting (numpy rules)', () => {
  it('broadcasts a column against a row, and a scalar against anything', () => {
    const out = runOp('Add', [f32([3, 1], [0, 10, 20]), f32([1, 4], [1, 2, 3, 4])]);
    expect(out.shape).toEqual([3, 4]);
    expect(values(out)).toEqual([1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24]);
    expect(values(runOp('Mul', [f32([], [3]), f32([2, 2], [1, 2, 3, 4])]))).toEqual([3, 6, 9, 12]);
  });

  it('aligns trailing axes across ranks and keeps middle broadcast axes', () => {
    // [2, 3, 2] - [3, 1]: b[j] is subtracted along the middle axis.
    const a = f32([2, 3, 2], iota(12));
    const out = runOp('Sub', [a, f32([3, 1], [0, 100, 200])]);
    expect(out.shape).toEqual([2, 3, 2]);
    expect(values(out)).toEqual([0, 1, -98, -97, -196, -195, 6, 7, -92, -91, -190, -189]);
  });

  it('broadcasts Where over three inputs and refuses incompatible shapes', () => {
    const cond = Tensor.from('bool', [2, 1], [1, 0]);
    const out = runOp('Where', [cond, f32([1, 3], [1, 2, 3]), f32([], [-1])]);
    expect(out.shape).toEqual([2, 3]);
    expect(values(out)).toEqual([1, 2, 3, -1, -1, -1]);
    expect(() => runOp('Add', [f32([2, 3], iota(6)), f32([2], [1, 2])])).toThrow(/node out \(Add\): .*do not broadcast/);
  });
});

describe('Gemm', () => {
  const a = f32([2, 3], [1, 2, 3, 4, 5, 6]);
  const b = f32([3, 2], [1, 0, 0, 1, 1, 1]); // A·B = [[4, 5], [10, 11]]

  it('computes alpha · A · B + beta · C with C broadcast from a row, a column or a scalar', () => {
    expect(values(runOp('Gemm', [a, b, f32([2], [1, 2])], { alpha: attr.float(2), beta: attr.float(10) }))).toEqual([18, 30, 30, 42]);
    expect(values(runOp('Gemm', [a, b, f32([2, 1], [1, 2])], { beta: attr.float(-1) }))).toEqual([3, 4, 8, 9]);
    expect(values(runOp('Gemm', [a, b, f32([], [0.5])]))).toEqual([4.5, 5.5, 10.5, 11.5]);
    expect(values(runOp('Gemm', [a, b]))).toEqual([4, 5, 10, 11]);
  });

  it('reads A and B transposed', () => {
    const aT = f32([3, 2], [1, 4, 2, 5, 3, 6]);
    const bT = f32([2, 3], [1, 0, 1, 0, 1, 1]);
    expect(values(runOp('Gemm', [aT, b], { transA: attr.int(1) }))).toEqual([4, 5, 10, 11]);
    expect(values(runOp('Gemm', [a, bT], { transB: attr.int(1) }))).toEqual([4, 5, 10, 11]);
    expect(values(runOp('Gemm', [aT, bT], { transA: attr.int(1), transB: attr.int(1), alpha: attr.float(0.5) }))).toEqual([2, 2.5, 5, 5.5]);
  });

  it('agrees with a float64 reference on a product large enough for the blocked kernel', () => {
    const [m, k, n] = [37, 70, 45]; // odd sizes: edge tiles in both directions
    const av = iota(m * k).map((i) => Math.sin(i));
    const bv = iota(k * n).map((i) => Math.cos(i * 0.7));
    const out = values(runOp('MatMul', [f32([m, k], av), f32([k, n], bv)]));
    const af = Float32Array.from(av);
    const bf = Float32Array.from(bv);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += af[i * k + p]! * bf[p * n + j]!;
        expect(Math.abs(out[i * n + j]! - s)).toBeLessThan(1e-4);
      }
    }
  });
});

describe('opset-aware semantics', () => {
  const x = f32([2, 2, 2], [0, 1, 2, 3, 0, 0, 0, 0]);

  it('Softmax: opset 11 flattens from axis 1 on, opset 13 uses one axis (default -1)', () => {
    const v11 = values(runOp('Softmax', [x], {}, 11));
    const e = [0, 1, 2, 3].map(Math.exp);
    const s = e.reduce((p, q) => p + q);
    e.forEach((v, i) => expect(v11[i]).toBeCloseTo(v / s, 6));
    expect(v11.slice(4)).toEqual([0.25, 0.25, 0.25, 0.25]);
    const v13 = values(runOp('Softmax', [x], {}, 13));
    expect(v13[0]).toBeCloseTo(1 / (1 + Math.E), 6);
    expect(v13[1]).toBeCloseTo(Math.E / (1 + Math.E), 6);
    expect(v13.slice(4)).toEqual([0.5, 0.5, 0.5, 0.5]);
    // With axis = 1 explicitly the two versions still differ (2-D coercion versus one axis).
    const a11 = values(runOp('Softmax', [x], { axis: attr.int(1) }, 11));
    const a13 = values(runOp('Softmax', [x], { axis: attr.int(1) }, 13));
    expect(a11[0]).not.toBeCloseTo(a13[0]!, 3);
  });

  it('Unsqueeze, Squeeze and ReduceSum take axes as an attribute before opset 13 and an input after', () => {
    const v = f32([3], [1, 2, 3]);
    expect(runOp('Unsqueeze', [v], { axes: attr.ints([0, 2]) }, 11).shape).toEqual([1, 3, 1]);
    expect(runOp('Unsqueeze', [v, i64([2], [0n, -1n])], {}, 13).shape).toEqual([1, 3, 1]);
    expect(runOp('Squeeze', [f32([1, 3, 1], [1, 2, 3])], {}, 13).shape).toEqual([3]);
    const m = f32([2, 3], [1, 2, 3, 4, 5, 6]);
    expect(values(runOp('ReduceSum', [m], { axes: attr.ints([1]), keepdims: attr.int(0) }, 11))).toEqual([6, 15]);
    expect(values(runOp('ReduceSum', [m, i64([1], [0n])], {}, 13))).toEqual([5, 7, 9]);
  });

  it('Clip takes bounds as attributes before opset 11 and optional inputs after', () => {
    const v = f32([4], [-2, 0.5, 3, 9]);
    expect(values(runOp('Clip', [v], { min: attr.float(0), max: attr.float(1) }, 6))).toEqual([0, 0.5, 1, 1]);
    const g = graphOf([makeNode('Clip', ['in0', '', 'hi'], ['out'])], [v], 13, new Map([['hi', f32([], [3])]]));
    expect(values(new Session(g).run({ in0: v })['out']!)).toEqual([-2, 0.5, 3, 3]);
  });

  it('refuses ops at opsets whose semantics differ from what the kernel implements', () => {
    expect(isSupported('Add', 7)).toBe(true);
    expect(isSupported('Add', 6)).toBe(false);
    expect(isSupported('Gelu', 19)).toBe(false);
    expect(isSupported('Gelu', 20)).toBe(true);
    expect(isSupported('Gemm', 17, 'com.microsoft')).toBe(false);
    expect(() => runOp('Add', [f32([1], [1]), f32([1], [1])], {}, 6)).toThrow(/unsupported op: Add at opset 6 \(node out\)/);
    expect(supportedOps()).toEqual(expect.arrayContaining(['MatMul', 'Gemm', 'Conv', 'Softmax', 'LayerNormalization']));
  });
});

describe('Reshape', () => {
  const x = f32([2, 3, 4], iota(24));

  it('copies a dimension for 0, infers one -1, and keeps the elements', () => {
    expect(runOp('Reshape', [x, i64([3], [0n, -1n, 2n])]).shape).toEqual([2, 6, 2]);
    expect(runOp('Reshape', [x, i64([1], [-1n])]).shape).toEqual([24]);
    expect(values(runOp('Reshape', [x, i64([2], [4n, 6n])]))).toEqual(iota(24));
  });

  it('treats 0 as a real size with allowzero = 1', () => {
    const empty = Tensor.from('float32', [0, 4], []);
    expect(runOp('Reshape', [empty, i64([3], [2n, 0n, 0n])], { allowzero: attr.int(1) }).shape).toEqual([2, 0, 0]);
    // Without allowzero the 0 copies the input's size 4 at that position and the count matches.
    expect(runOp('Reshape', [empty, i64([2], [0n, 0n])]).shape).toEqual([0, 4]);
  });

  it('refuses two -1s and a wrong element count', () => {
    expect(() => runOp('Reshape', [x, i64([2], [-1n, -1n])])).toThrow(/at most one -1/);
    expect(() => runOp('Reshape', [x, i64([2], [5n, 5n])])).toThrow(/24 elements/);
  });
});

describe('exact integers and 16-bit floats', () => {
  it('keeps int64 exact beyond 2^53 through arithmetic, MatMul, reductions and Gather', () => {
    const big = 2n ** 62n + 12345n;
    const sum = runOp('Add', [i64([2], [big, -big]), i64([1], [1n])]);
    expect(Array.from(sum.storage() as BigInt64Array)).toEqual([big + 1n, -big + 1n]);
    const mm = runOp('MatMul', [i64([1, 2], [2n ** 40n, 3n]), i64([2, 1], [2n ** 20n, 2n ** 50n])]);
    expect(Array.from(mm.storage() as BigInt64Array)).toEqual([2n ** 60n + 3n * 2n ** 50n]);
    const reduced = runOp('ReduceSum', [i64([3], [big, big, -big]), i64([1], [0n])], { keepdims: attr.int(0) });
    expect(Array.from(reduced.storage() as BigInt64Array)).toEqual([big]);
    const gathered = runOp('Gather', [i64([3], [1n, big, 3n]), i64([2], [-2n, 0n])]);
    expect(Array.from(gathered.storage() as BigInt64Array)).toEqual([big, 1n]);
  });

  it('wraps int32 products like C, and truncates integer division toward zero', () => {
    const p = runOp('Mul', [Tensor.from('int32', [1], [65537]), Tensor.from('int32', [1], [65537])]);
    expect(Array.from(p.storage() as Int32Array)).toEqual([(65537 * 65537) | 0]);
    const d = runOp('Div', [Tensor.from('int64', [2], [-7n, 7n]), Tensor.from('int64', [2], [2n, -2n])]);
    expect(Array.from(d.storage() as BigInt64Array)).toEqual([-3n, -3n]);
  });

  it('computes float16 in float32 and rounds each result back to float16', () => {
    const h = (v: number) => float16BitsToFloat32(float32ToFloat16Bits(v));
    const a = Tensor.from('float16', [2], [1, 2048]);
    const out = runOp('Add', [a, Tensor.from('float16', [2], [2 ** -11, 1])]);
    expect(out.dtype).toBe('float16');
    // 1 + 2^-11 ties to 1; 2048 + 1 ties to 2048 (float16 has 11 significant bits).
    expect(values(out)).toEqual([h(1 + 2 ** -11), h(2049)]);
    expect(values(out)).toEqual([1, 2048]);
    expect(values(runOp('Sigmoid', [Tensor.from('float16', [1], [0.3])]))).toEqual([h(1 / (1 + Math.exp(-h(0.3))))]);
  });
});

describe('Session', () => {
  const w = f32([2, 2], [1, 2, 3, 4]);
  const chain = (): Graph => ({
    inputs: [{ name: 'x', dtype: 'float32', shape: [null, 2] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [null, 2] }],
    initializers: new Map([['w', w]]),
    // Deliberately out of order: the session sorts them once.
    nodes: [makeNode('Relu', ['h'], ['y'], {}, 'relu'), makeNode('MatMul', ['x', 'w'], ['h'], {}, 'mm')],
    opset: 17,
  });

  it('orders nodes once and gives the same result on every run, holding nothing between runs', () => {
    const session = new Session(chain());
    const x = f32([1, 2], [1, -1]);
    expect(values(session.run({ x })['y']!)).toEqual([0, 0]);
    expect(values(session.run({ x: f32([2, 2], [1, 0, 0, 1]) })['y']!)).toEqual([1, 2, 3, 4]);
    expect(values(session.run({ x })['y']!)).toEqual([0, 0]);
  });

  it('names the missing input and the wrong dtype', () => {
    const session = new Session(chain());
    expect(() => session.run({})).toThrow(/missing input x/);
    expect(() => session.run({ x: Tensor.from('float64', [1, 2], [1, 2]) })).toThrow(/input x must be float32, got float64/);
  });

  it('names every unsupported op with its nodes, before running anything', () => {
    const g: Graph = { ...chain(), nodes: [...chain().nodes, makeNode('FancyOp', ['y'], ['z'], {}, 'fancy_1'), makeNode('FancyOp', ['z'], ['q'], {}, 'fancy_2'), { ...makeNode('Gemm', ['q', 'w'], ['r'], {}, 'ms_gemm'), domain: 'com.microsoft' }] };
    expect(() => new Session(g)).toThrow(UsageError);
    expect(() => new Session(g)).toThrow(/unsupported ops: FancyOp \(nodes fancy_1, fancy_2\); com\.microsoft\.Gemm \(node ms_gemm\)/);
  });

  it('names a node on a cycle, a node reading a value nothing provides, and a value written twice', () => {
    const base = chain();
    const cycle: Graph = { ...base, nodes: [makeNode('Relu', ['b'], ['a'], {}, 'r1'), makeNode('Relu', ['a'], ['b'], {}, 'r2'), makeNode('Add', ['a', 'x'], ['y'], {}, 'add')] };
    expect(() => new Session(cycle)).toThrow(/node r1 \(Relu\) is part of a cycle through b/);
    const dangling: Graph = { ...base, nodes: [makeNode('Relu', ['nowhere'], ['y'], {}, 'lost')] };
    expect(() => new Session(dangling)).toThrow(/node lost \(Relu\) reads nowhere, which no node, input or initializer provides/);
    const twice: Graph = { ...base, nodes: [makeNode('Relu', ['x'], ['y'], {}, 'first'), makeNode('Neg', ['x'], ['y'], {}, 'second')] };
    expect(() => new Session(twice)).toThrow(/node second \(Neg\) writes y, which is already defined/);
  });

  it('reports a kernel error with the node name and op', () => {
    const g: Graph = { ...chain(), initializers: new Map([['w', f32([3, 1], [1, 2, 3])]]) };
    expect(() => new Session(g).run({ x: f32([1, 2], [1, 2]) })).toThrow(/node mm \(MatMul\): .*inner dimensions 2 and 3 differ/);
  });

  it('produces optional outputs (Dropout mask) and ignores unused ones', () => {
    const x = f32([2], [1, 2]);
    const g: Graph = {
      inputs: [{ name: 'x', dtype: 'float32', shape: [2] }],
      outputs: [
        { name: 'y', dtype: 'float32', shape: [2] },
        { name: 'mask', dtype: 'bool', shape: [2] },
      ],
      initializers: new Map(),
      nodes: [makeNode('Dropout', ['x'], ['y', 'mask'], { ratio: attr.float(0.5) })],
      opset: 17,
    };
    const out = new Session(g).run({ x });
    expect(values(out['y']!)).toEqual([1, 2]);
    expect(Array.from(out['mask']!.storage() as Uint8Array)).toEqual([1, 1]);
  });
});

describe('conv and pooling shapes', () => {
  it('applies auto_pad SAME_UPPER (extra padding at the end) and groups', () => {
    const x = f32([1, 2, 3, 3], iota(18));
    const w = f32([2, 1, 2, 2], [1, 1, 1, 1, 1, 0, 0, 0]);
    const out = runOp('Conv', [x, w], { group: attr.int(2), auto_pad: attr.string('SAME_UPPER') });
    expect(out.shape).toEqual([1, 2, 3, 3]);
    // Channel 0 sums 2x2 windows (zero past the bottom/right edge); channel 1 picks the top-left.
    expect(values(out)).toEqual([8, 12, 7, 20, 24, 13, 13, 15, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]);
  });

  it('pools with ceil_mode and counts padding only with count_include_pad', () => {
    const x = f32([1, 1, 4, 4], iota(16));
    const ceil = runOp('MaxPool', [x], { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), ceil_mode: attr.int(1) });
    expect(ceil.shape).toEqual([1, 1, 2, 2]);
    expect(values(ceil)).toEqual([10, 11, 14, 15]);
    const pads = { kernel_shape: attr.ints([2, 2]), pads: attr.ints([1, 1, 0, 0]), strides: attr.ints([3, 3]) };
    expect(values(runOp('AveragePool', [x], pads))).toEqual([0, 2.5, 10, 12.5]);
    expect(values(runOp('AveragePool', [x], { ...pads, count_include_pad: attr.int(1) }))).toEqual([0, 1.25, 5, 12.5]);
  });
});
