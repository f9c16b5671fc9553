import { describe, expect, it } from 'vitest';
import type { Attribute, Graph, Node } from '../src/core/graph.js';
import { Tensor } from '../src/core/tensor.js';
import { markConstant } from '../src/runtime/constants.js';
import { Session } from '../src/runtime/executor.js';
import { convGemm, convWinograd, winogradWeights } from '../src/runtime/kernels/conv-gemm.js';
import type { Window } from '../src/runtime/kernels/window.js';
import type { Value } from '../src/runtime/value.js';
import { residentPtr, wasmMaxPool2d, wasmSgemmAvailable, type PoolWindow } from '../src/runtime/wasm/gemm.js';
import { float32Resident } from '../src/runtime/value.js';
import { Arena, setActiveArena } from '../src/runtime/arena.js';
import { rng, random, expectClose, withThreads } from './runtime-helpers.js';

/**
 * 3x3 stride-1 convolutions through Winograd F(2x2, 3x3) (convWinograd: the transforms in
 * gemm.wat, the 16 products as one batched GEMM), against a float64 loop: output sizes odd and
 * even (tiles and groups of 4 tiles past the edge), pads of every side, batches (and batches cut
 * into chunks), bias, folded residual and clamp, 1 and 2 threads (bit for bit the same), and the
 * cases it must leave to the implicit GEMM.
 */

const f32 = (shape: number[], data: Float32Array): Value => ({ dtype: 'float32', shape, data });

interface Case {
  n: number;
  c: number;
  h: number;
  w: number;
  m: number;
  /** top, left, bottom, right */
  pads: [number, number, number, number];
}

function windowOf(cc: Case): Window {
  const [pt, pl, pb, pr] = cc.pads;
  return { input: [cc.h, cc.w], output: [cc.h + pt + pb - 2, cc.w + pl + pr - 2], kernel: [3, 3], strides: [1, 1], dilations: [1, 1], padsBegin: [pt, pl], padsEnd: [pb, pr] } as unknown as Window;
}

/** (conv + bias) + residual, then the clamp, in float64. */
function reference(x: Float32Array, wt: Float32Array, bias: Float32Array | undefined, cc: Case, residual?: Float32Array, clamp?: readonly [number, number]): Float64Array {
  const [oh, ow] = windowOf(cc).output as [number, number];
  const [pt, pl] = cc.pads;
  const out = new Float64Array(cc.n * cc.m * oh * ow);
  for (let b = 0; b < cc.n; b++) {
    for (let o = 0; o < cc.m; o++) {
      for (let y = 0; y < oh; y++) {
        for (let x0 = 0; x0 < ow; x0++) {
          let s = bias ? bias[o]! : 0;
          for (let ci = 0; ci < cc.c; ci++) {
            for (let i = 0; i < 3; i++) {
              for (let j = 0; j < 3; j++) {
                const iy = y - pt + i;
                const ix = x0 - pl + j;
                if (iy < 0 || iy >= cc.h || ix < 0 || ix >= cc.w) continue;
                s += x[((b * cc.c + ci) * cc.h + iy) * cc.w + ix]! * wt[((o * cc.c + ci) * 3 + i) * 3 + j]!;
              }
            }
          }
          const at = ((b * cc.m + o) * oh + y) * ow + x0;
          if (residual) s += residual[at]!;
          if (clamp) s = Math.min(Math.max(s, clamp[0]), clamp[1]);
          out[at] = s;
        }
      }
    }
  }
  return out;
}



const CASES: Case[] = [
  { n: 1, c: 8, h: 8, w: 8, m: 8, pads: [1, 1, 1, 1] }, // one group of 4 tiles per row, exactly
  { n: 2, c: 9, h: 7, w: 7, m: 5, pads: [1, 1, 1, 1] }, // ResNet's last stage: odd, one tile row and column past the edge
  { n: 1, c: 16, h: 14, w: 14, m: 12, pads: [1, 1, 1, 1] }, // 7 tiles per row: a group of 4 past the edge
  { n: 3, c: 8, h: 9, w: 13, m: 6, pads: [0, 2, 1, 0] }, // uneven pads, odd rows and columns
  { n: 1, c: 12, h: 3, w: 3, m: 4, pads: [0, 0, 0, 0] }, // one output
  { n: 1, c: 8, h: 5, w: 21, m: 7, pads: [2, 2, 2, 2] }, // pads of 2: input rows and columns that no tile's centre covers
  { n: 4, c: 10, h: 10, w: 6, m: 9, pads: [1, 0, 1, 1] },
  // a batch large enough to share out by images on 2 threads (2 and 1), each thread the whole pipeline
  { n: 3, c: 16, h: 16, w: 14, m: 12, pads: [1, 1, 1, 1] },
];

describe.skipIf(!wasmSgemmAvailable())('Winograd F(2x2, 3x3) convolution', () => {
  CASES.forEach((cc, index) => {
    for (const [what, withBias, withResidual, clamp] of [
      ['bias', true, false, undefined],
      ['no bias, Relu', false, false, [0, Infinity]],
      ['bias, residual, Clip', true, true, [-0.5, 0.75]],
    ] as const) {
      it(`case ${index} (${cc.n}x${cc.c}x${cc.h}x${cc.w}, ${cc.m} filters, pads ${cc.pads.join(',')}): ${what}, on 1 and 2 threads`, () => {
        const next = rng(300 + index);
        const win = windowOf(cc);
        const [oh, ow] = win.output as [number, number];
        const x = random(cc.n * cc.c * cc.h * cc.w, next);
        const wt = random(cc.m * cc.c * 9, next);
        const bias = withBias ? random(cc.m, next) : undefined;
        const residual = withResidual ? random(cc.n * cc.m * oh * ow, next) : undefined;
        const w = f32([cc.m, cc.c, 3, 3], wt);
        markConstant(w);
        const run = (threads: number) =>
          withThreads(threads, () => convWinograd(f32([cc.n, cc.c, cc.h, cc.w], x), w, bias && f32([cc.m], bias), win, clamp, residual && f32([cc.n, cc.m, oh, ow], residual)));
        const one = run(1);
        expect(one, 'Winograd applies').toBeDefined();
        expect(one!.shape).toEqual([cc.n, cc.m, oh, ow]);
        expectClose(one!.data as Float32Array, reference(x, wt, bias, cc, residual, clamp));
        expect(run(2)!.data).toEqual(one!.data);
      });
    }
  });

  it('cuts a batch into chunks of images when it would not fit at once, with the same result', () => {
    const cc: Case = { n: 5, c: 8, h: 10, w: 10, m: 8, pads: [1, 1, 1, 1] };
    const next = rng(9);
    const x = f32([cc.n, cc.c, cc.h, cc.w], random(cc.n * cc.c * cc.h * cc.w, next));
    const w = f32([cc.m, cc.c, 3, 3], random(cc.m * cc.c * 9, next));
    markConstant(w);
    const whole = convWinograd(x, w, undefined, windowOf(cc), undefined)!;
    // room for two images' transformed input and products per chunk: chunks of 2, 2 and 1
    const perImage = 16 * (cc.c + cc.m) * 5 * 8 * 4;
    const chunked = convWinograd(x, w, undefined, windowOf(cc), undefined, undefined, 2 * perImage)!;
    expect(chunked.data).toEqual(whole.data);
    expectClose(chunked.data as Float32Array, reference(x.data as Float32Array, w.data as Float32Array, undefined, cc));
    expect(convWinograd(x, w, undefined, windowOf(cc), undefined, undefined, perImage - 1), 'not even one image fits').toBeUndefined();
  });

  it('leaves to the implicit GEMM what it does not cover: weights not constant, few channels, other kernels', () => {
    const next = rng(5);
    const cc: Case = { n: 1, c: 8, h: 6, w: 6, m: 4, pads: [1, 1, 1, 1] };
    const x = f32([1, 8, 6, 6], random(288, next));
    const w = f32([4, 8, 3, 3], random(288, next));
    expect(convWinograd(x, w, undefined, windowOf(cc), undefined), 'weights given as an input').toBeUndefined();
    markConstant(w);
    expect(convWinograd(x, w, undefined, windowOf(cc), undefined)).toBeDefined();
    const rgb = f32([1, 3, 6, 6], random(108, next));
    const w3 = f32([4, 3, 3, 3], random(108, next));
    markConstant(w3);
    expect(convWinograd(rgb, w3, undefined, windowOf({ ...cc, c: 3 }), undefined), '3 channels').toBeUndefined();
    const w5 = f32([4, 8, 5, 5], random(800, next));
    markConstant(w5);
    expect(convWinograd(x, w5, undefined, { ...windowOf(cc), kernel: [5, 5], output: [4, 4] } as unknown as Window, undefined), '5x5').toBeUndefined();
  });

  it('transforms the weights as G g G^T: a filter with one 1 at (i, j) gives the outer product of G\'s columns i and j', () => {
    const G = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]];
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        const g = new Float32Array(9);
        g[i * 3 + j] = 1;
        const u = winogradWeights(g, 1, 1);
        for (let r = 0; r < 4; r++) for (let k = 0; k < 4; k++) expect(u[r * 4 + k]! + 0).toBe(G[r]![i]! * G[k]![j]! + 0);
      }
    }
  });

  it('runs a ResNet-style block in a Session (Conv, Add of the shortcut, Relu folded), as the implicit GEMM does within float32 error', () => {
    const ints = (value: readonly number[]): Attribute => ({ type: 'ints', value });
    const node = (op: string, inputs: string[], outputs: string[], attributes: Record<string, Attribute> = {}): Node => ({ name: `${op}_${outputs[0]}`, op, domain: '', inputs, outputs, attributes });
    const cc: Case = { n: 2, c: 16, h: 12, w: 12, m: 16, pads: [1, 1, 1, 1] };
    const next = rng(21);
    const x = random(cc.n * cc.c * cc.h * cc.w, next);
    const wt = random(cc.m * cc.c * 9, next);
    const bias = random(cc.m, next);
    const graph = {
      inputs: [{ name: 'x', dtype: 'float32', shape: [cc.n, cc.c, cc.h, cc.w] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: null }],
      initializers: new Map([['w', Tensor.from('float32', [cc.m, cc.c, 3, 3], wt)], ['b', Tensor.from('float32', [cc.m], bias)]]),
      nodes: [node('Conv', ['x', 'w', 'b'], ['c'], { kernel_shape: ints([3, 3]), pads: ints(cc.pads) }), node('Add', ['c', 'x'], ['s']), node('Relu', ['s'], ['y'])],
      opset: 17,
    } as unknown as Graph;
    const feeds = { x: Tensor.from('float32', [cc.n, cc.c, cc.h, cc.w], x) };
    const one = new Session(graph, { threads: 1 }).run(feeds).y!.toFloat32();
    expect(new Session(graph, { threads: 2 }).run(feeds).y!.toFloat32()).toEqual(one);
    expectClose(one, reference(x, wt, bias, cc, x, [0, Infinity]));
    // the implicit GEMM's result for the same block differs in rounding only
    const w = f32([cc.m, cc.c, 3, 3], wt);
    const direct = convGemm(f32([cc.n, cc.c, cc.h, cc.w], x), w, f32([cc.m], bias), 1, windowOf(cc), [0, Infinity], f32([cc.n, cc.m, cc.h, cc.w], x))!;
    expect(one).not.toEqual(direct.data);
    expectClose(one, Float64Array.from(direct.data as Float32Array));
  });
});

describe.skipIf(!wasmSgemmAvailable())('activations kept in the WebAssembly module\'s memory between kernels', () => {
  const ints = (value: readonly number[]): Attribute => ({ type: 'ints', value });
  const node = (op: string, inputs: string[], outputs: string[], attributes: Record<string, Attribute> = {}): Node => ({ name: `${op}_${outputs[0]}`, op, domain: '', inputs, outputs, attributes });
  // the small CNN's shape: Conv (3 channels: implicit GEMM) + Relu, MaxPool, Conv (Winograd) + Relu, and the
  // MaxPool's result also a graph output (read after later kernels ran)
  const next = rng(44);
  const graph = {
    inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3, 12, 12] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: null }, { name: 'p', dtype: 'float32', shape: null }],
    initializers: new Map([
      ['w1', Tensor.from('float32', [8, 3, 3, 3], random(216, next))],
      ['w2', Tensor.from('float32', [8, 8, 3, 3], random(576, next))],
    ]),
    nodes: [
      node('Conv', ['x', 'w1'], ['c1'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }),
      node('Relu', ['c1'], ['r1']),
      node('MaxPool', ['r1'], ['p'], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) }),
      node('Conv', ['p', 'w2'], ['c2'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }),
      node('Relu', ['c2'], ['y']),
    ],
    opset: 17,
  } as unknown as Graph;
  const inputA = Tensor.from('float32', [2, 3, 12, 12], random(864, next));
  const inputB = Tensor.from('float32', [2, 3, 12, 12], random(864, next));

  it('gives every run the result a fresh session gives, and outputs the caller keeps are plain arrays that later runs leave alone', () => {
    for (const threads of [1, 2]) {
      const fresh = (t: Tensor) => new Session(graph, { threads }).run({ x: t });
      const expectedA = fresh(inputA);
      const expectedB = fresh(inputB);
      const session = new Session(graph, { threads });
      // the Convs' and the MaxPool's results are made in the module's memory
      const resident: string[] = [];
      for (const step of (session as unknown as { steps: { node: Node; run: (a: unknown[]) => Value[] }[] }).steps) {
        const run = step.run;
        step.run = (args) => {
          const results = run(args);
          if (residentPtr(results[0]!.data)) resident.push(step.node.op);
          return results;
        };
      }
      const first = session.run({ x: inputA });
      expect(resident).toEqual(['Conv', 'MaxPool', 'Conv']);
      const kept = first.y!.toFloat32().slice();
      for (const out of [first.y!, first.p!]) expect((out.storage() as Float32Array).buffer).not.toBeInstanceOf(SharedArrayBuffer);
      const second = session.run({ x: inputB });
      const third = session.run({ x: inputA });
      expect(first.y!.toFloat32()).toEqual(kept);
      expect(second.y!.toFloat32()).toEqual(expectedB.y!.toFloat32());
      expect(second.p!.toFloat32()).toEqual(expectedB.p!.toFloat32());
      expect(third.y!.toFloat32()).toEqual(expectedA.y!.toFloat32());
      expect(third.p!.toFloat32()).toEqual(expectedA.p!.toFloat32());
      // and the pooled values are the max of each 2x2 window of Relu(conv), so never negative
      expect(Math.min(...third.p!.toFloat32())).toBeGreaterThanOrEqual(0);
    }
  });

  it('MaxPool writes its bands straight into a resident result (rows a multiple of 4 wide) or through blocks of its own, with the one-thread result', () => {
    const next2 = rng(8);
    for (const [h, w] of [[32, 32], [30, 30]] as const) {
      const planes = 64;
      const win: PoolWindow = { input: [h, w], output: [h / 2, w / 2], kernel: [2, 2], strides: [2, 2], dilations: [1, 1], padsBegin: [0, 0] };
      const src = random(planes * h * w, next2);
      const plain = new Float32Array((planes * h * w) / 4);
      expect(withThreads(1, () => wasmMaxPool2d(src, plain, planes, win))).toBe(true);
      const outer = setActiveArena(new Arena()); // resident arrays come from a run's arena
      const resident = float32Resident([planes, 1, h / 2, w / 2])!;
      setActiveArena(outer);
      expect(residentPtr(resident.data)).toBeGreaterThan(0);
      expect(withThreads(2, () => wasmMaxPool2d(src, resident.data as Float32Array, planes, win))).toBe(true);
      expect(resident.data).toEqual(plain);
      expect(plain[0]).toBe(Math.max(src[0]!, src[1]!, src[w]!, src[w + 1]!));
    }
  });
});
