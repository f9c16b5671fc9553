import { describe, expect, it } from 'vitest';
import type { Attribute, Graph, Node } from '../src/core/graph.js';
import { Tensor } from '../src/core/tensor.js';
import { Session } from '../src/runtime/executor.js';
import { erf, erfForFloat32, erfRational32 } from '../src/runtime/kernels/erf.js';
import { geluLoop } from '../src/runtime/fuse.js';
import { wasmGelu } from '../src/runtime/wasm/gemm.js';
import { matmulPermuted } from '../src/runtime/kernels/matmul-gemm.js';
import { rng, random, expectClose } from './runtime-helpers.js';

/**
 * The WebAssembly paths of Conv, Gemm and MatMul with what the planner folds into them (bias,
 * Relu, Clip), on one thread and on two, against plain float64 loops written here. Every case
 * also checks that two threads give bit-for-bit the result of one: each output element is
 * summed by one thread in the same order whatever the split.
 */


const ints = (value: readonly number[]): Attribute => ({ type: 'ints', value });
const node = (op: string, inputs: string[], outputs: string[], attributes: Record<string, Attribute> = {}): Node => ({ name: `${op}_${outputs[0]}`, op, domain: '', inputs, outputs, attributes });

function graphOf(nodes: Node[], inputs: Record<string, readonly number[]>, initializers: Record<string, Tensor>, output = 'y'): Graph {
  return {
    inputs: Object.entries(inputs).map(([name, shape]) => ({ name, dtype: 'float32', shape })),
    outputs: [{ name: output, dtype: 'float32', shape: null }],
    initializers: new Map(Object.entries(initializers)),
    nodes,
    opset: 17,
  } as unknown as Graph;
}

/** Runs at 1 and 2 threads; returns the 1-thread result after checking the 2-thread one is identical. */
function runBoth(graph: Graph, feeds: Record<string, Tensor>): Float32Array {
  const one = new Session(graph, { threads: 1 }).run(feeds).y!.toFloat32();
  const two = new Session(graph, { threads: 2 }).run(feeds).y!.toFloat32();
  expect(two).toEqual(one);
  return one;
}


interface ConvCase {
  n: number;
  c: number;
  h: number;
  w: number;
  m: number;
  k: [number, number];
  stride?: [number, number];
  pads?: [number, number, number, number];
  dilation?: [number, number];
  group?: number;
}

function convReference(x: Float32Array, wt: Float32Array, bias: Float32Array | undefined, cc: ConvCase, clamp?: [number, number]): { out: Float64Array; oh: number; ow: number } {
  const [kh, kw] = cc.k;
  const [sh, sw] = cc.stride ?? [1, 1];
  const [pt, pl, pb, pr] = cc.pads ?? [0, 0, 0, 0];
  const [dh, dw] = cc.dilation ?? [1, 1];
  const group = cc.group ?? 1;
  const oh = Math.floor((cc.h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((cc.w + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  const cg = cc.c / group;
  const mg = cc.m / group;
  const out = new Float64Array(cc.n * cc.m * oh * ow);
  for (let b = 0; b < cc.n; b++) {
    for (let o = 0; o < cc.m; o++) {
      const g = Math.floor(o / mg);
      for (let y = 0; y < oh; y++) {
        for (let x0 = 0; x0 < ow; x0++) {
          let s = bias ? bias[o]! : 0;
          for (let ci = 0; ci < cg; ci++) {
            for (let i = 0; i < kh; i++) {
              for (let j = 0; j < kw; j++) {
                const iy = y * sh - pt + i * dh;
                const ix = x0 * sw - pl + j * dw;
                if (iy < 0 || iy >= cc.h || ix < 0 || ix >= cc.w) continue;
                s += x[((b * cc.c + g * cg + ci) * cc.h + iy) * cc.w + ix]! * wt[((o * cg + ci) * kh + i) * kw + j]!;
              }
            }
          }
          if (clamp) s = Math.min(Math.max(s, clamp[0]), clamp[1]);
          out[((b * cc.m + o) * oh + y) * ow + x0] = s;
        }
      }
    }
  }
  return { out, oh, ow };
}

const CONV_CASES: ConvCase[] = [
  { n: 1, c: 3, h: 17, w: 19, m: 8, k: [3, 3], pads: [1, 1, 1, 1] },
  { n: 3, c: 5, h: 12, w: 13, m: 12, k: [3, 3], pads: [1, 1, 1, 1] },
  { n: 1, c: 3, h: 30, w: 30, m: 16, k: [7, 7], stride: [2, 2], pads: [3, 3, 3, 3] },
  { n: 2, c: 16, h: 9, w: 11, m: 10, k: [1, 1] },
  { n: 1, c: 16, h: 14, w: 14, m: 24, k: [1, 1], stride: [2, 2] },
  { n: 1, c: 8, h: 16, w: 20, m: 8, k: [3, 3], pads: [2, 2, 2, 2], dilation: [2, 2] },
  { n: 2, c: 8, h: 10, w: 10, m: 12, k: [3, 3], pads: [1, 0, 1, 0], group: 2 },
  { n: 1, c: 32, h: 20, w: 20, m: 32, k: [3, 3], pads: [1, 1, 1, 1] },
  { n: 1, c: 4, h: 7, w: 7, m: 5, k: [3, 2], stride: [1, 2], pads: [0, 1, 2, 0] },
  // stride 2 over rows wide enough for the module's strided runs (8 outputs from 16 inputs)
  { n: 1, c: 3, h: 9, w: 40, m: 8, k: [3, 3], stride: [2, 2] },
  { n: 2, c: 4, h: 12, w: 36, m: 8, k: [3, 3], stride: [2, 2], pads: [1, 1, 1, 1] },
  // ResNet's row widths: 8-column panels that straddle output rows (28, 14: whole input runs
  // across the row break for the middle kernel column, padding at the others) and 7 (every panel)
  { n: 1, c: 8, h: 28, w: 28, m: 8, k: [3, 3], pads: [1, 1, 1, 1] },
  { n: 1, c: 6, h: 14, w: 14, m: 8, k: [3, 3], stride: [2, 2], pads: [1, 1, 1, 1] },
  { n: 1, c: 5, h: 7, w: 7, m: 8, k: [3, 3], pads: [1, 1, 1, 1] },
  // depthwise (the direct loop), with a depth multiplier of 2 in the second
  { n: 2, c: 6, h: 11, w: 9, m: 6, k: [3, 3], pads: [1, 1, 1, 1], group: 6 },
  { n: 1, c: 4, h: 10, w: 10, m: 8, k: [3, 3], stride: [2, 2], pads: [1, 1, 1, 1], dilation: [1, 2], group: 4 },
];

describe('Conv through the WebAssembly GEMM (depthwise: a direct loop), with folded bias and activation', () => {
  CONV_CASES.forEach((cc, index) => {
    for (const activation of ['none', 'Relu', 'Clip'] as const) {
      it(`case ${index} (${cc.n}x${cc.c}x${cc.h}x${cc.w}, ${cc.m} filters ${cc.k.join('x')}), ${activation}`, () => {
        const next = rng(100 + index);
        const group = cc.group ?? 1;
        const x = random(cc.n * cc.c * cc.h * cc.w, next);
        const wt = random(cc.m * (cc.c / group) * cc.k[0] * cc.k[1], next);
        const bias = random(cc.m, next);
        const attributes: Record<string, Attribute> = { kernel_shape: ints(cc.k), strides: ints(cc.stride ?? [1, 1]), pads: ints(cc.pads ?? [0, 0, 0, 0]), dilations: ints(cc.dilation ?? [1, 1]), group: { type: 'int', value: group } };
        const clamp: [number, number] | undefined = activation === 'Relu' ? [0, Infinity] : activation === 'Clip' ? [-0.5, 0.75] : undefined;
        const nodes = [node('Conv', ['x', 'w', 'b'], [activation === 'none' ? 'y' : 'c'], attributes)];
        if (activation === 'Relu') nodes.push(node('Relu', ['c'], ['y']));
        if (activation === 'Clip') nodes.push(node('Clip', ['c', 'lo', 'hi'], ['y']));
        const initializers: Record<string, Tensor> = {
          w: Tensor.from('float32', [cc.m, cc.c / group, ...cc.k], wt),
          b: Tensor.from('float32', [cc.m], bias),
          lo: Tensor.from('float32', [], [-0.5]),
          hi: Tensor.from('float32', [], [0.75]),
        };
        const { out } = convReference(x, wt, bias, cc, clamp);
        const y = runBoth(graphOf(nodes, { x: [cc.n, cc.c, cc.h, cc.w] }, initializers), { x: Tensor.from('float32', [cc.n, cc.c, cc.h, cc.w], x) });
        expectClose(y, out);
      });
    }
  });

  it('packs a session\'s weights for that session: a new session over weights changed in place sees them', () => {
    const cc = CONV_CASES[1]!;
    const next = rng(12);
    const x = Tensor.from('float32', [cc.n, cc.c, cc.h, cc.w], random(cc.n * cc.c * cc.h * cc.w, next));
    const w = Tensor.from('float32', [cc.m, cc.c, ...cc.k], random(cc.m * cc.c * 9, next));
    const graph = graphOf([node('Conv', ['x', 'w'], ['y'], { kernel_shape: ints(cc.k), pads: ints(cc.pads!) })], { x: [cc.n, cc.c, cc.h, cc.w] }, { w });
    new Session(graph).run({ x });
    const data = w.storage() as Float32Array;
    for (let i = 0; i < data.length; i++) data[i] = data[i]! * -2;
    const y = new Session(graph).run({ x }).y!.toFloat32();
    expectClose(y, convReference(x.toFloat32(), data, undefined, cc).out);
  });

  it('takes weights given as an input (packed per run, not cached)', () => {
    const cc = CONV_CASES[1]!;
    const next = rng(7);
    const x = random(cc.n * cc.c * cc.h * cc.w, next);
    const graph = graphOf([node('Conv', ['x', 'w'], ['y'], { kernel_shape: ints(cc.k), pads: ints(cc.pads!) })], { x: [cc.n, cc.c, cc.h, cc.w], w: [cc.m, cc.c, ...cc.k] }, {});
    const session = new Session(graph, { threads: 2 });
    for (let run = 0; run < 2; run++) {
      const wt = random(cc.m * cc.c * 9, next); // new numbers each run
      const y = session.run({ x: Tensor.from('float32', [cc.n, cc.c, cc.h, cc.w], x), w: Tensor.from('float32', [cc.m, cc.c, ...cc.k], wt) }).y!.toFloat32();
      expectClose(y, convReference(x, wt, undefined, cc).out);
    }
  });
});

function matmulReference(a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number, bShared: boolean, bias?: Float32Array, clamp?: [number, number], bTransposed = false): Float64Array {
  const out = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    const bb = bShared ? 0 : t * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = bias ? bias[j]! : 0;
        for (let p = 0; p < k; p++) s += a[(t * m + i) * k + p]! * b[bb + (bTransposed ? j * k + p : p * n + j)]!;
        if (clamp) s = Math.min(Math.max(s, clamp[0]), clamp[1]);
        out[(t * m + i) * n + j] = s;
      }
    }
  }
  return out;
}

describe('a residual block\'s end (Conv, Add of another value, Relu) folded into the Conv', () => {
  // ResNet's shapes at small scale: a 3x3 conv whose result gets the block's input (the shortcut) added, then Relu
  const cc: ConvCase = { n: 2, c: 8, h: 14, w: 14, m: 8, k: [3, 3], pads: [1, 1, 1, 1] };
  const attributes = { kernel_shape: ints(cc.k), pads: ints(cc.pads!) };
  const next = rng(77);
  const x = random(cc.n * cc.c * cc.h * cc.w, next);
  const wt = random(cc.m * cc.c * 9, next);
  const bias = random(cc.m, next);
  const shortcut = random(cc.n * cc.m * cc.h * cc.w, next);
  const initializers = { w: Tensor.from('float32', [cc.m, cc.c, 3, 3], wt), b: Tensor.from('float32', [cc.m], bias) };
  const feeds = { x: Tensor.from('float32', [cc.n, cc.c, cc.h, cc.w], x), r: Tensor.from('float32', [cc.n, cc.m, cc.h, cc.w], shortcut) };
  const inputs = { x: [cc.n, cc.c, cc.h, cc.w], r: [cc.n, cc.m, cc.h, cc.w] };

  /** The reference: conv (+ bias), + residual (a function of the flat index), then the clamp. */
  function reference(withBias: boolean, residual: (i: number) => number, clamp?: [number, number]): Float64Array {
    const { out } = convReference(x, wt, withBias ? bias : undefined, cc);
    return out.map((v, i) => {
      const s = Math.fround(Math.fround(v) + residual(i));
      return clamp ? Math.min(Math.max(s, clamp[0]), clamp[1]) : s;
    });
  }

  for (const [what, addInputs, withBias, relu] of [
    ['Add(conv, shortcut) then Relu', ['c', 'r'], true, true],
    ['Add(shortcut, conv) then Relu, the Conv without a bias', ['r', 'c'], false, true],
    ['Add(conv, shortcut) and no activation', ['c', 'r'], true, false],
  ] as const) {
    it(`${what}: the unfused ops' result, on 1 and 2 threads`, () => {
      const nodes = [node('Conv', withBias ? ['x', 'w', 'b'] : ['x', 'w'], ['c'], attributes), node('Add', [...addInputs], [relu ? 's' : 'y'])];
      if (relu) nodes.push(node('Relu', ['s'], ['y']));
      const y = runBoth(graphOf(nodes, inputs, initializers), feeds);
      expectClose(y, reference(withBias, (i) => shortcut[i]!, relu ? [0, Infinity] : undefined));
    });
  }

  it('folds the Add into one of two Convs when both feed it (a downsampling block\'s shortcut is a Conv too)', () => {
    const w2 = random(cc.m * cc.c, next);
    const nodes = [
      node('Conv', ['x', 'w', 'b'], ['c'], attributes),
      node('Conv', ['x', 'w2'], ['d'], { kernel_shape: ints([1, 1]) }),
      node('Add', ['c', 'd'], ['s']),
      node('Relu', ['s'], ['y']),
    ];
    const y = runBoth(graphOf(nodes, { x: inputs.x }, { ...initializers, w2: Tensor.from('float32', [cc.m, cc.c, 1, 1], w2) }), { x: feeds.x });
    const down = convReference(x, w2, undefined, { ...cc, k: [1, 1], pads: [0, 0, 0, 0] }).out;
    expectClose(y, reference(true, (i) => Math.fround(down[i]!), [0, Infinity]));
  });

  it('leaves a residual that broadcasts (one value per channel) to the Add and Relu kernels', () => {
    const perChannel = random(cc.m, next);
    const nodes = [node('Conv', ['x', 'w', 'b'], ['c'], attributes), node('Add', ['c', 'r'], ['s']), node('Relu', ['s'], ['y'])];
    const y = runBoth(graphOf(nodes, { x: inputs.x, r: [1, cc.m, 1, 1] }, initializers), { x: feeds.x, r: Tensor.from('float32', [1, cc.m, 1, 1], perChannel) });
    const plane = cc.h * cc.w;
    expectClose(y, reference(true, (i) => perChannel[Math.floor(i / plane) % cc.m]!, [0, Infinity]));
  });

  it('folds nothing when the Conv\'s result is also read elsewhere (a graph output)', () => {
    const graph = graphOf([node('Conv', ['x', 'w', 'b'], ['c'], attributes), node('Add', ['c', 'r'], ['s']), node('Relu', ['s'], ['y'])], inputs, initializers);
    const withOutputs = { ...graph, outputs: [...graph.outputs, { name: 'c', dtype: 'float32', shape: null }] } as Graph;
    const result = new Session(withOutputs, { threads: 1 }).run(feeds);
    expectClose(result.c!.toFloat32(), convReference(x, wt, bias, cc).out);
    expectClose(result.y!.toFloat32(), reference(true, (i) => shortcut[i]!, [0, Infinity]));
  });
});

describe('a transformer\'s residual connection (MatMul + bias, then Add of another value) folded into the MatMul', () => {
  /** The graph MatMul(a, w) [+ bias] + r; `visible` also makes the pre-residual sum a graph output, which keeps the Add apart. */
  function residualGraph(m: number, k: number, n: number, withBias: boolean, residualFirst: boolean, rShape: readonly number[], visible = false): Graph {
    const next = rng(m * 31 + k * 7 + n);
    const nodes = [node('MatMul', ['a', 'w'], ['mm'])];
    if (withBias) nodes.push(node('Add', ['bias', 'mm'], ['s']));
    const sum = withBias ? 's' : 'mm';
    nodes.push(node('Add', residualFirst ? ['r', sum] : [sum, 'r'], ['y']));
    const g = graphOf(nodes, { a: [2, m, k], r: rShape }, { w: Tensor.from('float32', [k, n], random(k * n, next)), bias: Tensor.from('float32', [n], random(n, next)) });
    return visible ? ({ ...g, outputs: [...g.outputs, { name: sum, dtype: 'float32', shape: null }] } as Graph) : g;
  }
  const stepsOf = (g: Graph): number => (new Session(g) as unknown as { steps: unknown[] }).steps.length;

  for (const [m, k, n, withBias, residualFirst] of [
    [128, 128, 128, true, false],
    [37, 45, 29, true, true],
    [5, 3, 9, false, false],
    [64, 512, 128, true, false],
  ] as const) {
    it(`[2, ${m}, ${k}] · [${k}, ${n}]${withBias ? ' + bias' : ''} + residual${residualFirst ? ' (first input)' : ''}: one step, the unfused ops' bits, on 1 and 2 threads`, () => {
      const next = rng(m + n);
      const feeds = { a: Tensor.from('float32', [2, m, k], random(2 * m * k, next)), r: Tensor.from('float32', [2, m, n], random(2 * m * n, next)) };
      const fusedGraph = residualGraph(m, k, n, withBias, residualFirst, [2, m, n]);
      const unfusedGraph = residualGraph(m, k, n, withBias, residualFirst, [2, m, n], true);
      expect(stepsOf(fusedGraph)).toBe(1);
      expect(stepsOf(unfusedGraph)).toBe(2);
      const fused = runBoth(fusedGraph, feeds);
      const unfused = new Session(unfusedGraph, { threads: 1 }).run(feeds).y!.toFloat32();
      expect(fused).toEqual(unfused);
      expect(fused.some((v) => v !== 0)).toBe(true);
    });
  }

  it('leaves a residual that broadcasts ([n]: not the product\'s shape) to the Add kernels, with the same result', () => {
    const [m, k, n] = [16, 24, 40];
    const next = rng(3);
    const feeds = { a: Tensor.from('float32', [2, m, k], random(2 * m * k, next)), r: Tensor.from('float32', [n], random(n, next)) };
    const fused = runBoth(residualGraph(m, k, n, true, false, [n]), feeds);
    const unfused = new Session(residualGraph(m, k, n, true, false, [n], true), { threads: 1 }).run(feeds).y!.toFloat32();
    expect(fused).toEqual(unfused);
  });

  it('folds a residual into a stacked product (attention\'s P·V) too', () => {
    const next = rng(4);
    const [h, m, k, n] = [3, 20, 17, 24];
    const graph = graphOf([node('MatMul', ['p', 'v'], ['mm']), node('Add', ['mm', 'r'], ['y'])], { p: [h, m, k], v: [h, k, n], r: [h, m, n] }, {});
    const p = random(h * m * k, next);
    const v = random(h * k * n, next);
    const r = random(h * m * n, next);
    const y = runBoth(graph, { p: Tensor.from('float32', [h, m, k], p), v: Tensor.from('float32', [h, k, n], v), r: Tensor.from('float32', [h, m, n], r) });
    expect(stepsOf(graph)).toBe(1);
    expectClose(y, matmulReference(p, v, h, m, k, n, false).map((x, i) => Math.fround(Math.fround(x) + r[i]!)));
  });
});

describe('attention\'s Mul(scores, scale) → Add(mask) → Softmax folded into one pass', () => {
  /** The chain over scores of `shape` and a mask input of `maskShape`; `visible` makes the Mul's result a graph output (nothing folds). */
  function scoresGraph(shape: readonly number[], maskShape: readonly number[], scaleFirst: boolean, maskFirst: boolean, visible = false): Graph {
    const nodes: Node[] = [
      node('Constant', [], ['scale'], { value: { type: 'tensor', value: Tensor.from('float32', [], [0.125]) } }),
      node('Mul', scaleFirst ? ['scale', 'x'] : ['x', 'scale'], ['scaled']),
      node('Add', maskFirst ? ['mask', 'scaled'] : ['scaled', 'mask'], ['masked']),
      node('Softmax', ['masked'], ['y'], { axis: { type: 'int', value: -1 } }),
    ];
    const g = graphOf(nodes, { x: shape, mask: maskShape }, {});
    return visible ? ({ ...g, outputs: [...g.outputs, { name: 'scaled', dtype: 'float32', shape: null }] } as Graph) : g;
  }
  const stepsOf = (g: Graph): number => (new Session(g) as unknown as { steps: unknown[] }).steps.length;

  for (const [shape, maskShape, scaleFirst, maskFirst, folds] of [
    [[1, 2, 128, 128], [1, 1, 128, 128], false, false, true],
    [[2, 3, 13, 13], [1, 1, 1, 13], true, true, true],
    [[1, 2, 50, 50], [50, 50], false, true, true],
    [[1, 2, 16, 16], [1, 2, 1, 16], false, false, false],
  ] as const) {
    it(`scores ${formatShape(shape)}, mask ${formatShape(maskShape)}${folds ? '' : ' (a mask that broadcasts mid-shape: the kernels run)'}: the unfused ops' bits, on 1 and 2 threads`, () => {
      const next = rng(shape.reduce((a: number, b: number) => a + b, 0));
      const size = shape.reduce((a: number, b: number) => a * b, 1);
      const maskSize = maskShape.reduce((a: number, b: number) => a * b, 1);
      // scores with a wide spread, and a mask of 0 and -inf (masked-out positions), a few -1e4
      const feeds = {
        x: Tensor.from('float32', shape, random(size, next).map((v) => v * 40)),
        mask: Tensor.from('float32', maskShape, random(maskSize, next).map((v) => (v > 0.6 ? -Infinity : v > 0.4 ? -1e4 : 0))),
      };
      const fusedGraph = scoresGraph(shape, maskShape, scaleFirst, maskFirst);
      const unfusedGraph = scoresGraph(shape, maskShape, scaleFirst, maskFirst, true);
      expect(stepsOf(fusedGraph)).toBe(1);
      expect(stepsOf(unfusedGraph)).toBe(3);
      const fused = runBoth(fusedGraph, feeds);
      const unfused = new Session(unfusedGraph, { threads: 1 }).run(feeds).y!.toFloat32();
      const differ = fused.findIndex((v, i) => !Object.is(v, unfused[i]));
      expect(differ).toBe(-1);
      // each row sums to 1
      const len = shape.at(-1)!;
      for (let r = 0; r < 3; r++) expect(fused.subarray(r * len, (r + 1) * len).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    });
  }
});

describe('attention\'s Mul(scores, scale) → Softmax without a mask (ViT) folded into one pass', () => {
  it('[1, 3, 197, 197] and [2, 2, 9, 9], zeros of both signs in the scores: the unfused ops\' bits, on 1 and 2 threads', () => {
    for (const shape of [[1, 3, 197, 197], [2, 2, 9, 9]]) {
      const nodes = (visible: boolean): Graph => {
        const g = graphOf([node('Mul', ['x', 'scale'], ['scaled']), node('Softmax', ['scaled'], ['y'], { axis: { type: 'int', value: -1 } })], { x: shape }, { scale: Tensor.from('float32', [], [0.125]) });
        return visible ? ({ ...g, outputs: [...g.outputs, { name: 'scaled', dtype: 'float32', shape: null }] } as Graph) : g;
      };
      const next = rng(shape[2]!);
      const size = shape.reduce((a, b) => a * b, 1);
      // a row of -0 and +0 only (its max is a zero of either sign), then random scores with zeros among them
      const values = random(size, next).map((v, i) => (i < shape[3]! ? (i % 2 ? -0 : 0) : v > 0.8 ? -0 : v * 30));
      const feeds = { x: Tensor.from('float32', shape, values) };
      expect((new Session(nodes(false)) as unknown as { steps: unknown[] }).steps.length).toBe(1);
      const fused = runBoth(nodes(false), feeds);
      const unfused = new Session(nodes(true), { threads: 1 }).run(feeds).y!.toFloat32();
      expect(fused.findIndex((v, i) => !Object.is(v, unfused[i]))).toBe(-1);
    }
  });
});

function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

describe('attention\'s head Transposes folded into its MatMuls as strides', () => {
  /** softmax(Q·Kᵀ)·V over heads split by Transposes and merged by one; `visible` makes every Transpose's result a graph output (nothing folds). */
  function headsGraph(shape: readonly number[], visible = false): Graph {
    const perm = (p: number[]) => ({ perm: ints(p) });
    const nodes: Node[] = [
      node('Transpose', ['q'], ['qh'], perm([0, 2, 1, 3])),
      node('Transpose', ['k'], ['kt'], perm([0, 2, 3, 1])),
      node('Transpose', ['v'], ['vh'], perm([0, 2, 1, 3])),
      node('MatMul', ['qh', 'kt'], ['scores']),
      node('Softmax', ['scores'], ['p'], { axis: { type: 'int', value: -1 } }),
      node('MatMul', ['p', 'vh'], ['ctx']),
      node('Transpose', ['ctx'], ['y'], perm([0, 2, 1, 3])),
    ];
    const g = graphOf(nodes, { q: shape, k: shape, v: shape }, {});
    return visible ? ({ ...g, outputs: [...g.outputs, ...['qh', 'kt', 'vh', 'ctx'].map((name) => ({ name, dtype: 'float32', shape: null }))] } as Graph) : g;
  }
  const stepsOf = (g: Graph): number => (new Session(g) as unknown as { steps: unknown[] }).steps.length;

  for (const shape of [[1, 128, 2, 64], [1, 13, 3, 5], [2, 9, 2, 8]] as const) {
    it(`[${shape.join(', ')}] (S, H, D): the unfused ops' bits, on 1 and 2 threads${shape[0] !== 1 ? ' (batch 2: transposed, then multiplied)' : ''}`, () => {
      const next = rng(shape[1] * 7 + shape[3]);
      const size = shape[0] * shape[1] * shape[2] * shape[3];
      const feeds = Object.fromEntries(['q', 'k', 'v'].map((name) => [name, Tensor.from('float32', shape, random(size, next).map((v) => v * 3))]));
      const fusedGraph = headsGraph(shape);
      // the four Transposes: three fold into the MatMuls as their operands, the last as the second one's output
      expect(stepsOf(fusedGraph)).toBe(3);
      // the module reads the heads through strides where the leading axis is 1, and declines otherwise
      const asValue = (t: Tensor) => ({ dtype: 'float32' as const, shape: t.shape, data: t.toFloat32() });
      const viaStrides = matmulPermuted(asValue(feeds.q!), asValue(feeds.k!), [[0, 2, 1, 3], [0, 2, 3, 1]], undefined);
      expect(viaStrides === undefined).toBe(shape[0] !== 1);
      const fused = runBoth(fusedGraph, feeds);
      const unfused = new Session(headsGraph(shape, true), { threads: 1 }).run(feeds).y!.toFloat32();
      expect(unfused.length).toBe(size);
      const differ = fused.findIndex((v, i) => !Object.is(v, unfused[i]));
      expect(differ).toBe(-1);
    });
  }
});

describe('MatMul and Gemm through the WebAssembly GEMM', () => {
  for (const [m, k, n] of [
    [5, 7, 9],
    [64, 784, 512],
    [197, 192, 576],
    [1, 512, 10],
  ] as const) {
    it(`MatMul [2, ${m}, ${k}] · constant [${k}, ${n}] + bias (through an Identity) + Relu`, () => {
      const next = rng(m + k + n);
      const a = random(2 * m * k, next);
      const b = random(k * n, next);
      const bias = random(n, next);
      const nodes = [node('Identity', ['bias'], ['bias_id']), node('MatMul', ['a', 'b'], ['mm']), node('Add', ['bias_id', 'mm'], ['s']), node('Relu', ['s'], ['y'])];
      const graph = graphOf(nodes, { a: [2, m, k] }, { b: Tensor.from('float32', [k, n], b), bias: Tensor.from('float32', [n], bias) });
      expectClose(runBoth(graph, { a: Tensor.from('float32', [2, m, k], a) }), matmulReference(a, b, 2, m, k, n, true, bias, [0, Infinity]));
    });
  }

  it('stacked MatMul [2, 3, 40, 24] · [2, 3, 24, 33] (attention) as one job', () => {
    const next = rng(5);
    const a = random(6 * 40 * 24, next);
    const b = random(6 * 24 * 33, next);
    const graph = graphOf([node('MatMul', ['a', 'b'], ['y'])], { a: [2, 3, 40, 24], b: [2, 3, 24, 33] }, {});
    const y = runBoth(graph, { a: Tensor.from('float32', [2, 3, 40, 24], a), b: Tensor.from('float32', [2, 3, 24, 33], b) });
    expectClose(y, matmulReference(a, b, 6, 40, 24, 33, false));
  });

  it('a folded Add whose constant does not fit the epilogue ([1]) runs unfused, with the same result', () => {
    const next = rng(6);
    const a = random(8 * 32, next);
    const b = random(32 * 16, next);
    const nodes = [node('MatMul', ['a', 'b'], ['mm']), node('Add', ['mm', 'c'], ['s']), node('Clip', ['s', 'lo', ''], ['y'])];
    const graph = graphOf(nodes, { a: [8, 32] }, { b: Tensor.from('float32', [32, 16], b), c: Tensor.from('float32', [1], [0.25]), lo: Tensor.from('float32', [], [0]) });
    const expected = matmulReference(a, b, 1, 8, 32, 16, true, new Float32Array(16).fill(0.25), [0, Infinity]);
    expectClose(runBoth(graph, { a: Tensor.from('float32', [8, 32], a) }), expected);
  });

  it('Gemm transB with a bias row + Relu (a Linear layer)', () => {
    const next = rng(8);
    const [m, k, n] = [64, 300, 70];
    const a = random(m * k, next);
    const b = random(n * k, next);
    const bias = random(n, next);
    const graph = graphOf(
      [node('Gemm', ['a', 'b', 'c'], ['g'], { transB: { type: 'int', value: 1 } }), node('Relu', ['g'], ['y'])],
      { a: [m, k] },
      { b: Tensor.from('float32', [n, k], b), c: Tensor.from('float32', [n], bias) },
    );
    expectClose(runBoth(graph, { a: Tensor.from('float32', [m, k], a) }), matmulReference(a, b, 1, m, k, n, true, bias, [0, Infinity], true));
  });

  it('keeps a product that a graph output reads unfused (the Relu input stays visible)', () => {
    const next = rng(9);
    const a = random(16 * 16, next);
    const b = random(16 * 16, next);
    const graph = {
      ...graphOf([node('MatMul', ['a', 'b'], ['mm']), node('Relu', ['mm'], ['y'])], { a: [16, 16] }, { b: Tensor.from('float32', [16, 16], b) }),
      outputs: [
        { name: 'y', dtype: 'float32', shape: null },
        { name: 'mm', dtype: 'float32', shape: null },
      ],
    } as Graph;
    const out = new Session(graph, { threads: 2 }).run({ a: Tensor.from('float32', [16, 16], a) });
    expectClose(out.mm!.toFloat32(), matmulReference(a, b, 1, 16, 16, 16, true));
    expectClose(out.y!.toFloat32(), matmulReference(a, b, 1, 16, 16, 16, true, undefined, [0, Infinity]));
  });

  it('refuses a thread count below 1', () => {
    const graph = graphOf([node('Relu', ['x'], ['y'])], { x: [1] }, {});
    expect(() => new Session(graph, { threads: 0 })).toThrow(/threads/);
  });
});

describe('the erf GELU chain (torch.onnx) folded into one pass', () => {
  const constant = (name: string, value: number): Node => node('Constant', [], [name], { value: { type: 'tensor', value: Tensor.from('float32', [], [value]) } });
  const chain = (extraOutput?: string): Graph => {
    const g = graphOf(
      [
        node('Div', ['x', 'c1'], ['d']),
        node('Erf', ['d'], ['e']),
        constant('c2', 1),
        node('Add', ['e', 'c2'], ['a']),
        node('Mul', ['x', 'a'], ['m']),
        constant('c3', 0.5),
        node('Mul', ['m', 'c3'], ['y']),
      ],
      { x: [3, 50] },
      { c1: Tensor.from('float32', [], [1.4142135381698608]) },
    );
    return extraOutput ? ({ ...g, outputs: [...g.outputs, { name: extraOutput, dtype: 'float32', shape: null }] } as Graph) : g;
  };

  it('is the separate ops\' result but for the erf, a float32 approximation within 5e-7 relative', () => {
    const next = rng(11);
    const x = Tensor.from('float32', [3, 50], random(150, next).map((v) => v * 4));
    const session = new Session(chain());
    // the chain's five ops are one step (the two Constants are folded when the session is made)
    expect((session as unknown as { steps: unknown[] }).steps.length).toBe(1);
    const fused = session.run({ x }).y!.toFloat32();
    // the Erf result read by a graph output keeps the chain apart
    const separate = new Session(chain('e')).run({ x }).y!.toFloat32();
    const xs = x.toFloat32();
    for (let i = 0; i < xs.length; i++) {
      // 0.5·x·(1 + erf): an erf error of 5e-7 relative moves the result by at most 0.5·|x|·5e-7, plus its own rounding
      expect(Math.abs(fused[i]! - separate[i]!)).toBeLessThanOrEqual(0.5 * Math.abs(xs[i]!) * 5e-7 + 2 ** -23 * Math.abs(separate[i]!));
    }
    expect(fused).not.toEqual(new Float32Array(150));
    const reference = Float64Array.from(xs, (v) => 0.5 * v * (1 + erfReference(v / Math.SQRT2)));
    expectClose(fused, reference);
  });
});

describe('erfRational32 (the folded GELU\'s float32 erf)', () => {
  it('is within 5e-7 relative of the float64 erf on [-6, 6], and keeps NaN, -0, the signs and subnormals', () => {
    let worst = 0;
    for (let i = -600_000; i <= 600_000; i++) {
      const x = Math.fround(i / 100_000 + 3e-7);
      const want = erf(x);
      worst = Math.max(worst, Math.abs(erfRational32(x) - want) / Math.abs(want));
    }
    expect(worst).toBeLessThan(5e-7);
    expect(worst).toBeGreaterThan(1e-8); // it is an approximation: this test would notice a swap back to the exact erf
    for (const x of [2 ** -149, 1e-38, 1e-20, 1e-5, 9.99e-5, 1e-4, 1.01e-4].map(Math.fround)) {
      // (the float32 nearest erf(x): a subnormal result has few bits)
      expect(Math.abs(erfRational32(x) - Math.fround(erf(x)))).toBeLessThanOrEqual(5e-7 * erf(x));
      expect(erfRational32(-x)).toBe(-erfRational32(x));
    }
    expect(erfRational32(Number.NaN)).toBeNaN();
    expect(Object.is(erfRational32(-0), -0)).toBe(true);
    expect(erfRational32(Infinity)).toBe(1);
    expect(erfRational32(-Infinity)).toBe(-1);
    expect(erfRational32(3.9)).toBeLessThanOrEqual(1);
  });
});

/** erf from its series (|x| < 3) and continued fraction, in float64: independent of the runtime's. */
function erfReference(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let sum = x;
    let term = x;
    for (let n = 1; n < 100; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = ax;
  for (let n = 60; n >= 1; n--) f = ax + n / 2 / f;
  return Math.sign(x) * (1 - Math.exp(-ax * ax) / (f * Math.sqrt(Math.PI)));
}

describe('erf for float32 results (piecewise Taylor table)', () => {
  it('rounds to the same float32 as the float64 erf on [-5, 5], and keeps NaN and the signs', () => {
    let differ = 0;
    for (let i = -250_000; i <= 250_000; i++) {
      const x = Math.fround(i / 50_000 + 1e-7);
      if (Math.fround(erfForFloat32(x)) !== Math.fround(erf(x))) differ++;
    }
    expect(differ).toBe(0);
    expect(erfForFloat32(Number.NaN)).toBeNaN();
    expect(Object.is(erfForFloat32(-0), -0)).toBe(true);
    expect(erfForFloat32(-7)).toBe(-1);
    expect(Math.abs(erfForFloat32(3e-5) - erf(3e-5))).toBeLessThan(1e-8 * erf(3e-5));
  });
});

describe('GELU in the WebAssembly module', () => {
  it('gives the JS loop\'s bits on every kind of float32 (segment edges, the linear range, ±4 and beyond, NaN, infinities, -0), any length', () => {
    const special = [0, -0, 1e-5, -1e-5, 1.4142e-4, -1.4142e-4, 5.656, -5.656, 5.657, -5.657, 6, -6, 1e30, -1e30, Infinity, -Infinity, NaN, 2 ** -149, -(2 ** -149)];
    const next = rng(31);
    const values: number[] = [...special];
    // every segment's edges (x/√2 = k/16 - 4) and random values across and beyond (-4√2, 4√2)
    for (let k = 0; k <= 128; k++) for (const e of [-1e-6, 0, 1e-6]) values.push((k / 16 - 4 + e) * Math.SQRT2);
    for (let i = 0; i < 20_000; i++) values.push(next() * 8);
    for (const length of [values.length, values.length - 1, values.length - 2, values.length - 3, 1]) {
      const src = Float32Array.from(values.slice(0, length));
      for (const scale of [undefined, 0.5]) {
        const viaJs = new Float32Array(length);
        const viaWasm = new Float32Array(length);
        geluLoop(src, viaJs, Math.fround(Math.SQRT2), 1, scale);
        expect(wasmGelu(src, viaWasm, Math.fround(Math.SQRT2), 1, scale)).toBe(true);
        for (let i = 0; i < length; i++) {
          if (!Object.is(viaWasm[i], viaJs[i]) && !(Number.isNaN(viaWasm[i]) && Number.isNaN(viaJs[i]))) {
            throw new Error(`gelu(${src[i]}) scale ${scale}: wasm ${viaWasm[i]}, JS ${viaJs[i]}`);
          }
        }
      }
    }
  });
});
