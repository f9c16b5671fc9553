import { describe, expect, it } from 'vitest';
import type { Graph, Node } from '../src/core/graph.js';
import { Tensor } from '../src/core/tensor.js';
import { Session } from '../src/runtime/executor.js';
import { setIntraOpThreads, wasmLayerNorm } from '../src/runtime/wasm/gemm.js';
import { mulberry32 as rng } from './runtime-helpers.js';


/** norm.ts's arithmetic written out: float64 mean and variance summed in order, ((x - mean) · inv) · scale + bias. */
function reference(src: Float32Array, rows: number, len: number, scale: Float32Array, bias: Float32Array | undefined, eps: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < len; i++) mean += src[r * len + i]!;
    mean /= len;
    let v = 0;
    for (let i = 0; i < len; i++) v += (src[r * len + i]! - mean) * (src[r * len + i]! - mean);
    const inv = 1 / Math.sqrt(v / len + eps);
    for (let i = 0; i < len; i++) out[r * len + i] = (src[r * len + i]! - mean) * inv * scale[i]! + (bias ? bias[i]! : 0);
  }
  return out;
}

function layerNormGraph(shape: readonly number[], withBias: boolean, statistics: boolean, scale: Float32Array, bias: Float32Array): Graph {
  const node: Node = {
    name: 'ln', op: 'LayerNormalization', domain: '', inputs: withBias ? ['x', 's', 'b'] : ['x', 's'], outputs: statistics ? ['y', 'mean', 'inv'] : ['y'],
    attributes: { axis: { type: 'int', value: -1 }, epsilon: { type: 'float', value: Math.fround(1e-12) } },
  };
  const len = shape.at(-1)!;
  return {
    inputs: [{ name: 'x', dtype: 'float32', shape }],
    outputs: [{ name: 'y', dtype: 'float32', shape: null }],
    initializers: new Map([['s', Tensor.from('float32', [len], scale)], ['b', Tensor.from('float32', [len], bias)]]),
    nodes: [node],
    opset: 17,
  } as unknown as Graph;
}

describe('LayerNormalization rows in the WebAssembly module', () => {
  it('gives norm.ts\'s bits (odd and even row lengths, with and without bias, large offsets), in bands over 1 and 2 threads', () => {
    const next = rng(9);
    for (const [rows, len] of [[128, 128], [197, 192], [5, 1], [7, 3], [33, 129]] as const) {
      const src = Float32Array.from({ length: rows * len }, () => next() * 4 + 3);
      const scale = Float32Array.from({ length: len }, () => next() + 1);
      const bias = Float32Array.from({ length: len }, () => next());
      for (const withBias of [true, false]) {
        const want = reference(src, rows, len, scale, withBias ? bias : undefined, Math.fround(1e-5));
        for (const threads of [1, 2]) {
          const got = new Float32Array(src.length).fill(7);
          const before = setIntraOpThreads(threads);
          try {
            expect(wasmLayerNorm(src, got, rows, len, scale, withBias ? bias : undefined, Math.fround(1e-5))).toBe(true);
          } finally {
            setIntraOpThreads(before);
          }
          // (a loop, not toEqual: its deep comparison of large arrays takes seconds)
          const differ = got.findIndex((v, i) => !Object.is(v, want[i]));
          expect(differ, `rows ${rows} len ${len} bias ${withBias} threads ${threads}: element ${differ}`).toBe(-1);
        }
      }
    }
  });

  it('is what the kernel\'s JS loop gives (the node asked for its statistics too), through a Session', () => {
    const next = rng(10);
    const shape = [2, 65, 96];
    const x = Tensor.from('float32', shape, Array.from({ length: 2 * 65 * 96 }, () => next() * 10));
    const scale = Float32Array.from({ length: 96 }, () => next());
    const bias = Float32Array.from({ length: 96 }, () => next());
    for (const withBias of [true, false]) {
      const viaModule = new Session(layerNormGraph(shape, withBias, false, scale, bias), { threads: 2 }).run({ x }).y!.toFloat32();
      const viaJs = new Session(layerNormGraph(shape, withBias, true, scale, bias), { threads: 1 }).run({ x }).y!.toFloat32();
      expect(viaModule).toEqual(viaJs);
      expect(viaModule.some((v) => v !== 0)).toBe(true);
    }
  });

  it('refuses a scale that is not one value per element of the row (the caller\'s loop broadcasts it)', () => {
    expect(wasmLayerNorm(new Float32Array(8), new Float32Array(8), 2, 4, new Float32Array(1), undefined, 1e-5)).toBe(false);
  });
});
