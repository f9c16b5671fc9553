import type { NumericArray } from '../../core/tensor.js';

type Load = { readonly [i: number]: number | bigint };
type Store = { [i: number]: number | bigint };

/**
 * dst[o] = src[base + Σ index[axis] · strides[axis]] for every output index in row-major order:
 * the one copy loop behind Transpose, Slice, DepthToSpace and friends. Strides may be negative
 * (Slice with negative steps). Works for every typed array, int64 included.
 */
export function copyStrided(src: NumericArray, dst: NumericArray, shape: readonly number[], strides: readonly number[], base: number): void {
  const rank = shape.length;
  let total = 1;
  for (const d of shape) total *= d;
  if (total === 0) return;
  const s = src as Load;
  const d = dst as Store;
  if (rank === 0) {
    d[0] = s[base]!;
    return;
  }
  const n = shape[rank - 1]!;
  const step = strides[rank - 1]!;
  const counter = new Array<number>(rank).fill(0);
  let at = base;
  for (let o = 0; o < total; o += n) {
    if (step === 1 && n >= 16 && src.constructor === dst.constructor) {
      (dst as Uint8Array).set((src as Uint8Array).subarray(at, at + n), o);
    } else {
      for (let k = 0, i = at; k < n; k++, i += step) d[o + k] = s[i]!;
    }
    for (let axis = rank - 2; axis >= 0; axis--) {
      counter[axis]!++;
      at += strides[axis]!;
      if (counter[axis]! < shape[axis]!) break;
      at -= strides[axis]! * shape[axis]!;
      counter[axis] = 0;
    }
  }
}

/** Row-major element strides of a shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  for (let i = shape.length - 1, s = 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}
