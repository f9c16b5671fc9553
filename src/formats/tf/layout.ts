import { Tensor } from '../../core/tensor.js';

/** The same bytes under another shape of equal element count (sharing the source, never copied). */
export function reshaped(t: Tensor, shape: readonly number[]): Tensor {
  return new Tensor(t.dtype, shape, t.source);
}

/** Axis orders for `permuted` (src/core/transpose.ts) between TensorFlow filters and ONNX/torch ones. */
export const HWIO_TO_OIHW = [3, 2, 0, 1] as const;
export const OIHW_TO_HWIO = [2, 3, 1, 0] as const;
