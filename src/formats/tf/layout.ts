import { dtypeSize } from '../../core/dtypes.js';
import { stridesOf } from '../../core/shape.js';
import { Tensor } from '../../core/tensor.js';

/**
 * Axis permutations of constant tensors, byte for byte: the one-time weight layout changes at
 * the TensorFlow boundary (HWIO filters <-> OIHW). `perm[i]` is the input axis that becomes
 * output axis i, as in ONNX Transpose.
 */
export function permute(t: Tensor, perm: readonly number[]): Tensor {
  const rank = t.shape.length;
  if (perm.length !== rank || [...perm].sort().some((p, i) => p !== i)) throw new RangeError(`permutation [${perm}] does not fit ${t}`);
  const size = dtypeSize(t.dtype);
  const outShape = perm.map((p) => t.shape[p]!);
  const inStrides = stridesOf(t.shape);
  // Reading output elements in order: the input stride each output axis steps by.
  const step = perm.map((p) => inStrides[p]!);
  const src = t.bytes();
  const out = new Uint8Array(src.byteLength);
  const index = new Array<number>(rank).fill(0);
  const count = src.byteLength / size;
  let from = 0;
  for (let to = 0; to < count; to++) {
    out.set(src.subarray(from * size, from * size + size), to * size);
    for (let axis = rank - 1; axis >= 0; axis--) {
      if (++index[axis]! < outShape[axis]!) {
        from += step[axis]!;
        break;
      }
      from -= step[axis]! * (outShape[axis]! - 1);
      index[axis] = 0;
    }
  }
  return Tensor.fromBytes(t.dtype, outShape, out);
}

/** The same bytes under another shape of equal element count. */
export function reshaped(t: Tensor, shape: readonly number[]): Tensor {
  return Tensor.fromBytes(t.dtype, shape, t.bytes());
}

export const HWIO_TO_OIHW = [3, 2, 0, 1] as const;
export const OIHW_TO_HWIO = [2, 3, 1, 0] as const;
