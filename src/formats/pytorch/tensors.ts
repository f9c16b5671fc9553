import type { FormatErrors } from '../../core/errors.js';
import { MemorySource, type ByteSource } from '../../core/source.js';
import { Tensor } from '../../core/tensor.js';
import { sliceSource } from './bytes.js';
import type { TensorRef } from './torch-types.js';

/**
 * Turns torch's strided views into modelbridge tensors (dense, row-major, little-endian bytes).
 * A contiguous view is a zero-copy StorageSlice of its storage, so tensors that share a storage
 * (tied weights) share bytes, and the writer can store the storage once again. Other views
 * (transposes, Fortran order, every other element) are gathered into a new buffer.
 */

/** One storage's bytes as the checkpoint holds them. Its identity is what "shared" means. */
export interface StorageData {
  readonly key: string;
  readonly source: ByteSource;
  /** The checkpoint's byteorder record said "big": elements are swapped on read. */
  readonly bigEndian: boolean;
}

/** A contiguous byte range of a storage: reads lazily, and tells the writer which storage it is. */
export class StorageSlice implements ByteSource {
  constructor(
    readonly storage: StorageData,
    readonly byteOffset: number,
    readonly byteLength: number,
  ) {}

  read(): Uint8Array {
    return sliceSource(this.storage.source, this.byteOffset, this.byteLength).read();
  }

  chunks(chunkSize: number): Iterable<Uint8Array> {
    return sliceSource(this.storage.source, this.byteOffset, this.byteLength).chunks(chunkSize);
  }
}

export function materialise(ref: TensorRef, storage: StorageData, name: string, e: FormatErrors): Tensor {
  const where = `tensor ${JSON.stringify(name)}`;
  const dtype = ref.dtype.dtype;
  if (dtype === undefined) return e.fail(where, `a dtype modelbridge can hold, not torch.${ref.dtype.name}`);
  const es = ref.dtype.size;
  // float4_e2m1fn_x2 packs two values per byte; modelbridge counts single fp4 values.
  const shape = dtype === 'float4_e2m1fn_x2' ? [...ref.size.slice(0, -1), (ref.size.at(-1) ?? 1) * 2] : [...ref.size];
  let count = 1;
  for (const d of ref.size) count *= d;
  e.check(Number.isSafeInteger(count * es), where, `a size that fits in memory, not [${ref.size.join(', ')}]`);
  if (count === 0) return new Tensor(dtype, shape, new MemorySource(new Uint8Array(0)));

  // The view spans elements [offset, last]; all of them must lie in the storage (or legacy view).
  let last = ref.offset;
  for (let i = 0; i < ref.size.length; i++) last += (ref.size[i]! - 1) * ref.stride[i]!;
  const base = ref.storage.byteOffset;
  const limit = ref.storage.nbytes;
  e.check(Number.isSafeInteger(last) && (last + 1) * es <= limit, where, `a view within its storage of ${limit} bytes (offset ${ref.offset}, size [${ref.size.join(', ')}], stride [${ref.stride.join(', ')}])`);
  e.check(base + limit <= storage.source.byteLength, where, `a storage view within storage ${JSON.stringify(storage.key)} of ${storage.source.byteLength} bytes`);

  const start = base + ref.offset * es;
  const byteLength = count * es;
  const plain = !storage.bigEndian && !ref.flags.conj && !ref.flags.neg;
  if (isContiguous(ref.size, ref.stride) && plain) return new Tensor(dtype, shape, new StorageSlice(storage, start, byteLength));

  const span = sliceSource(storage.source, start, (last - ref.offset + 1) * es).read();
  const out = isContiguous(ref.size, ref.stride) ? span.slice(0, byteLength) : gather(span, ref.size, ref.stride, es);
  const complex = dtype === 'complex64' || dtype === 'complex128';
  const unit = complex ? es / 2 : es;
  if (storage.bigEndian && unit > 1) swapBytes(out, unit);
  if (ref.flags.conj && complex) flipSigns(out, unit, 2, 1);
  if (ref.flags.neg) {
    e.check(complex || dtype.startsWith('float') || dtype === 'bfloat16', where, `the negative bit on a floating-point tensor, not ${dtype}`);
    flipSigns(out, unit, 1, 0);
  }
  return new Tensor(dtype, shape, new MemorySource(out));
}

/** Row-major with no gaps; dimensions of size 1 may have any stride, as torch considers them. */
export function isContiguous(size: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    if (size[i] === 1) continue;
    if (stride[i] !== expected) return false;
    expected *= size[i]!;
  }
  return true;
}

/** Copies a strided view (element 0 at span[0]) into row-major order, a run of the last dim at a time. */
function gather(span: Uint8Array, size: readonly number[], stride: readonly number[], es: number): Uint8Array {
  const rank = size.length;
  const count = size.reduce((n, d) => n * d, 1);
  const out = new Uint8Array(count * es);
  const lastSize = size[rank - 1]!;
  const lastStride = stride[rank - 1]! * es;
  const index = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  let src = 0;
  let dst = 0;
  for (;;) {
    if (lastStride === es) {
      out.set(span.subarray(src, src + lastSize * es), dst);
      dst += lastSize * es;
    } else {
      for (let j = 0, s = src; j < lastSize; j++, s += lastStride) {
        for (let b = 0; b < es; b++) out[dst++] = span[s + b]!;
      }
    }
    // Odometer over the outer dimensions.
    let d = rank - 2;
    for (; d >= 0; d--) {
      index[d]!++;
      src += stride[d]! * es;
      if (index[d]! < size[d]!) break;
      src -= stride[d]! * es * size[d]!;
      index[d] = 0;
    }
    if (d < 0) return out;
  }
}

function swapBytes(bytes: Uint8Array, unit: number): void {
  for (let at = 0; at + unit <= bytes.byteLength; at += unit) bytes.subarray(at, at + unit).reverse();
}

/** Flips the sign bit of every `every`-th `unit`-byte float starting at index `first`. */
function flipSigns(bytes: Uint8Array, unit: number, every: number, first: number): void {
  for (let at = (first * unit); at < bytes.byteLength; at += unit * every) bytes[at + unit - 1]! ^= 0x80;
}
