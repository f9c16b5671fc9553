import { dtypeSize } from './dtypes.js';
import { Tensor } from './tensor.js';

/**
 * A copy of a 2-D tensor with its axes swapped, byte for byte (any dtype with a whole byte size).
 * Layout changes between frameworks (a Keras kernel [in, out] versus a torch weight [out, in])
 * happen once, at the format boundary, through this.
 */
export function transpose2d(t: Tensor): Tensor {
  if (t.shape.length !== 2) throw new RangeError(`transpose2d needs a 2-D tensor, got ${t}`);
  const [rows, cols] = t.shape as [number, number];
  const size = dtypeSize(t.dtype);
  const src = t.bytes();
  const out = new Uint8Array(src.byteLength);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const from = (r * cols + c) * size;
      const to = (c * rows + r) * size;
      for (let b = 0; b < size; b++) out[to + b] = src[from + b]!;
    }
  }
  return Tensor.fromBytes(t.dtype, [cols, rows], out);
}
