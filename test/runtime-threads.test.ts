import { describe, expect, it } from 'vitest';
import type { Attribute, Graph, Node } from '../src/core/graph.js';
import { Tensor } from '../src/core/tensor.js';
import { Session } from '../src/runtime/executor.js';
import { geluLoop } from '../src/runtime/fuse.js';
import { wasmGelu, wasmMaxPool2d, wasmSoftmax, type PoolWindow } from '../src/runtime/wasm/gemm.js';
import { rng, random, expectClose, withThreads } from './runtime-helpers.js';

/**
 * The work the intra-op threads share besides whole products: MaxPool's planes, GELU's floats
 * and Softmax's rows are cut into bands, one per thread; products are cut along the rows or the
 * columns of C, whichever leaves the busiest thread the least (a convolution with 49 output
 * positions is cut across its filters, a one-row Gemm across its pre-packed weight's columns),
 * and a large B is packed and swept in blocks of columns that stay in L2.
 * Each band is computed as one thread computes the whole, so two threads must give bit for bit
 * the result of one, and that result must be the definition's.
 */




function maxPoolReference(src: Float32Array, planes: number, w: PoolWindow): Float32Array {
  const [h, wd] = w.input as [number, number];
  const [oh, ow] = w.output as [number, number];
  const out = new Float32Array(planes * oh * ow);
  for (let p = 0; p < planes; p++) {
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        let m = -Infinity;
        for (let i = 0; i < w.kernel[0]!; i++) {
          for (let j = 0; j < w.kernel[1]!; j++) {
            const iy = y * w.strides[0]! - w.padsBegin[0]! + i * w.dilations[0]!;
            const ix = x * w.strides[1]! - w.padsBegin[1]! + j * w.dilations[1]!;
            if (iy >= 0 && iy < h && ix >= 0 && ix < wd) m = Math.max(m, src[p * h * wd + iy * wd + ix]!);
          }
        }
        out[p * oh * ow + y * ow + x] = m;
      }
    }
  }
  return out;
}

describe('row-wise kernels over two threads', () => {
  it('MaxPool: bands of planes, each into its own block (rows of 55 and 56 end mid-vector), equal to one thread and to the definition', () => {
    const next = rng(3);
    for (const [planes, size, out] of [[16, 112, 56], [9, 110, 55]] as const) {
      const win: PoolWindow = { input: [size, size], output: [out, out], kernel: [3, 3], strides: [2, 2], dilations: [1, 1], padsBegin: [1, 1] };
      const src = random(planes * size * size, next);
      const one = new Float32Array(planes * out * out);
      const two = new Float32Array(planes * out * out);
      expect(withThreads(1, () => wasmMaxPool2d(src, one, planes, win))).toBe(true);
      expect(withThreads(2, () => wasmMaxPool2d(src, two, planes, win))).toBe(true);
      expect(two).toEqual(one);
      expect(one).toEqual(maxPoolReference(src, planes, win));
    }
  });

  it('GELU: bands of floats (a length that is no multiple of 4 included), bit for bit the JS loop', () => {
    const next = rng(4);
    for (const n of [32768, 20001]) {
      const src = random(n, next).map((v) => v * 6);
      const want = new Float32Array(n);
      geluLoop(src, want, Math.fround(Math.SQRT2), 1, 0.5);
      for (const threads of [1, 2]) {
        const got = new Float32Array(n).fill(9);
        expect(withThreads(threads, () => wasmGelu(src, got, Math.fround(Math.SQRT2), 1, 0.5))).toBe(true);
        expect(got).toEqual(want);
      }
    }
  });

  it('Softmax: bands of rows, each with its own scratch row, equal to one thread', () => {
    const next = rng(5);
    for (const [rows, len] of [[256, 128], [3 * 197, 197]] as const) {
      const src = random(rows * len, next).map((v) => v * 20);
      const one = new Float32Array(src.length);
      const two = new Float32Array(src.length);
      expect(withThreads(1, () => wasmSoftmax(src, one, rows, len))).toBe(true);
      expect(withThreads(2, () => wasmSoftmax(src, two, rows, len))).toBe(true);
      expect(two).toEqual(one);
      for (let r = 0; r < rows; r += 37) {
        let sum = 0;
        for (let j = 0; j < len; j++) sum += one[r * len + j]!;
        expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
      }
    }
  });
});

const ints = (value: readonly number[]): Attribute => ({ type: 'ints', value });
const node = (op: string, inputs: string[], attributes: Record<string, Attribute> = {}): Node => ({ name: op, op, domain: '', inputs, outputs: ['y'], attributes });

function graphOf(n: Node, input: readonly number[], initializers: Record<string, Tensor>): Graph {
  return {
    inputs: [{ name: 'x', dtype: 'float32', shape: input }],
    outputs: [{ name: 'y', dtype: 'float32', shape: null }],
    initializers: new Map(Object.entries(initializers)),
    nodes: [n],
    opset: 17,
  } as unknown as Graph;
}

function runBoth(graph: Graph, x: Tensor): Float32Array {
  const one = new Session(graph, { threads: 1 }).run({ x }).y!.toFloat32();
  const two = new Session(graph, { threads: 2 }).run({ x }).y!.toFloat32();
  expect(two).toEqual(one);
  return one;
}


describe('products cut where the threads share the work best, and swept in cache-sized blocks', () => {
  it.each([
    ['7x7 outputs, cut across its 128 filters', 96, 128, 7],
    ['23x23 outputs, its packed input swept in blocks of 224 columns (224, 224, 81)', 64, 20, 23],
  ])('a 3x3 convolution with %s, equal on 1 and 2 threads and to the definition', (_, c, m, hw) => {
    const next = rng(6);
    const x = random(c * hw * hw, next);
    const w = random(m * c * 9, next);
    const b = random(m, next);
    const graph = graphOf(node('Conv', ['x', 'w', 'b'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }), [1, c, hw, hw], {
      w: Tensor.from('float32', [m, c, 3, 3], w),
      b: Tensor.from('float32', [m], b),
    });
    const got = runBoth(graph, Tensor.from('float32', [1, c, hw, hw], x));
    const want = new Float64Array(m * hw * hw);
    for (let o = 0; o < m; o++) {
      for (let y = 0; y < hw; y++) {
        for (let z = 0; z < hw; z++) {
          let s = b[o]!;
          for (let ch = 0; ch < c; ch++) {
            for (let i = 0; i < 3; i++) {
              for (let j = 0; j < 3; j++) {
                const iy = y + i - 1;
                const iz = z + j - 1;
                if (iy >= 0 && iy < hw && iz >= 0 && iz < hw) s += x[ch * hw * hw + iy * hw + iz]! * w[((o * c + ch) * 3 + i) * 3 + j]!;
              }
            }
          }
          want[o * hw * hw + y * hw + z] = s;
        }
      }
    }
    expectClose(got, want);
  });

  it('a one-row Gemm with a constant [1000, 512] weight (cut across the packed weight\'s columns), equal on 1 and 2 threads and to the definition', () => {
    const next = rng(7);
    const [k, n] = [512, 1000];
    const x = random(k, next);
    const w = random(n * k, next);
    const graph = graphOf(node('Gemm', ['x', 'w'], { transB: { type: 'int', value: 1 } }), [1, k], { w: Tensor.from('float32', [n, k], w) });
    const got = runBoth(graph, Tensor.from('float32', [1, k], x));
    const want = new Float64Array(n);
    for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) want[j]! += x[p]! * w[j * k + p]!;
    expectClose(got, want);
  });
});

describe('float32 arithmetic with one operand repeated over the other\'s leading axes', () => {
  it('scores [1, 2, 5, 5] minus a mask [1, 1, 5, 5] (and a divisor [5] and a [2, 1, 5] that is no trailing block) as the definition', () => {
    const next = rng(8);
    const a = random(50, next);
    const cases: [string, readonly number[], (i: number) => number, (x: number, y: number) => number][] = [
      ['Sub', [1, 1, 5, 5], (i) => i % 25, (x, y) => x - y],
      ['Div', [5], (i) => i % 5, (x, y) => x / y],
      ['Add', [2, 1, 5], (i) => Math.floor(i / 25) * 5 + (i % 5), (x, y) => x + y],
    ];
    for (const [op, bShape, index, f] of cases) {
      const b = random(bShape.reduce((p, q) => p * q, 1), next).map((v) => v + 3);
      const graph = {
        inputs: [{ name: 'x', dtype: 'float32', shape: [1, 2, 5, 5] }],
        outputs: [{ name: 'y', dtype: 'float32', shape: null }],
        initializers: new Map([['b', Tensor.from('float32', bShape, b)]]),
        nodes: [{ name: op, op, domain: '', inputs: ['x', 'b'], outputs: ['y'], attributes: {} }],
        opset: 17,
      } as unknown as Graph;
      const y = new Session(graph, { threads: 1 }).run({ x: Tensor.from('float32', [1, 2, 5, 5], a) }).y!;
      expect(y.shape).toEqual([1, 2, 5, 5]);
      expect(y.toFloat32()).toEqual(Float32Array.from(a, (v, i) => f(v, b[index(i)]!)));
    }
  });
});
