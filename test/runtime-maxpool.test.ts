import { describe, expect, it } from 'vitest';
import { wasmMaxPool2d, type PoolWindow } from '../src/runtime/wasm/gemm.js';
import { mulberry32 as rng } from './runtime-helpers.js';


/** ONNX MaxPool by its definition: the max over the window's cells inside the input, NaN if any is NaN, -inf if none. */
function reference(src: Float32Array, planes: number, win: PoolWindow): Float32Array {
  const [h, w] = win.input as [number, number];
  const [oh, ow] = win.output as [number, number];
  const out = new Float32Array(planes * oh * ow);
  let at = 0;
  for (let p = 0; p < planes; p++) {
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        let best = -Infinity;
        for (let i = 0; i < win.kernel[0]!; i++) {
          for (let j = 0; j < win.kernel[1]!; j++) {
            const ih = y * win.strides[0]! - win.padsBegin[0]! + i * win.dilations[0]!;
            const iw = x * win.strides[1]! - win.padsBegin[1]! + j * win.dilations[1]!;
            if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
            const v = src[(p * h + ih) * w + iw]!;
            if (Number.isNaN(v) || Number.isNaN(best)) best = NaN;
            else best = Math.max(best, v);
          }
        }
        out[at++] = best;
      }
    }
  }
  return out;
}

function windowOf(h: number, w: number, k: [number, number], s: [number, number], d: [number, number], pb: [number, number], pe: [number, number], ceil: boolean): PoolWindow {
  const size = (n: number, i: number) => {
    const span = n + pb[i]! + pe[i]! - ((k[i]! - 1) * d[i]! + 1);
    return (ceil ? Math.ceil(span / s[i]!) : Math.floor(span / s[i]!)) + 1;
  };
  return { input: [h, w], output: [size(h, 0), size(w, 1)], kernel: k, strides: s, dilations: d, padsBegin: pb };
}

describe('MaxPool 2-D in the WebAssembly module', () => {
  it('matches the definition on ResNet and CNN shapes and on strides, dilations, pads and widths around 4', () => {
    const next = rng(1);
    const cases: [number, number, number, [number, number], [number, number], [number, number], [number, number], [number, number], boolean][] = [
      [4, 112, 112, [3, 3], [2, 2], [1, 1], [1, 1], [1, 1], false], // ResNet's stem
      [8, 32, 32, [2, 2], [2, 2], [1, 1], [0, 0], [0, 0], false], // the bench CNN
      [3, 7, 9, [3, 3], [1, 1], [1, 1], [1, 1], [1, 1], false],
      [2, 5, 5, [2, 3], [3, 3], [1, 1], [0, 0], [0, 0], true], // stride 3, ceil mode's overhang
      [2, 9, 11, [3, 2], [1, 2], [2, 2], [2, 1], [1, 2], false], // dilations, uneven pads
      [1, 1, 1, [1, 1], [1, 1], [1, 1], [0, 0], [0, 0], false],
      [2, 3, 2, [2, 2], [1, 1], [1, 1], [1, 1], [1, 1], false], // narrower than a vector
      [2, 6, 13, [3, 3], [2, 2], [1, 1], [1, 1], [1, 1], true],
      [1, 4, 4, [5, 5], [1, 4], [1, 1], [4, 4], [0, 4], false], // windows entirely in the padding
    ];
    for (const [planes, h, w, k, s, d, pb, pe, ceil] of cases) {
      const win = windowOf(h, w, k, s, d, pb, pe, ceil);
      const src = Float32Array.from({ length: planes * h * w }, () => next());
      const dst = new Float32Array(planes * win.output[0]! * win.output[1]!).fill(12345);
      expect(wasmMaxPool2d(src, dst, planes, win)).toBe(true);
      expect(dst, `${planes}x${h}x${w} k${k} s${s} d${d} pads ${pb}/${pe}${ceil ? ' ceil' : ''}`).toEqual(reference(src, planes, win));
    }
  });

  it('gives NaN for a window holding a NaN, and -inf for one inside the padding only', () => {
    const src = Float32Array.from([1, NaN, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    const win = windowOf(4, 4, [2, 2], [2, 2], [1, 1], [0, 0], [0, 0], false);
    const dst = new Float32Array(4);
    expect(wasmMaxPool2d(src, dst, 1, win)).toBe(true);
    expect(Array.from(dst)).toEqual([NaN, 8, 14, 16]);
    const padded = windowOf(1, 1, [1, 1], [1, 1], [1, 1], [1, 1], [1, 1], false);
    const three = new Float32Array(9);
    expect(wasmMaxPool2d(new Float32Array([2]), three, 1, padded)).toBe(true);
    expect(Array.from(three)).toEqual([-Infinity, -Infinity, -Infinity, -Infinity, 2, -Infinity, -Infinity, -Infinity, -Infinity]);
  });

  it('refuses arrays that do not match the window (the caller then runs its own loop)', () => {
    const win = windowOf(4, 4, [2, 2], [2, 2], [1, 1], [0, 0], [0, 0], false);
    expect(wasmMaxPool2d(new Float32Array(15), new Float32Array(4), 1, win)).toBe(false);
  });
});
