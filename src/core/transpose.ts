import { dtypeSize } from './dtypes.js';
import { stridesOf } from './shape.js';
import type { ByteSource } from './source.js';
import { Tensor } from './tensor.js';
import { wasmTranspose32, wasmTransposeBands, wasmTransposeBandsFrom, type TransposeLease } from './wasm/transpose.js';

/** Bytes per read when a source is streamed into the WebAssembly transpose. */
const CHUNK = 8 * 1024 * 1024;
/** Above this size a 2-D transpose goes band by band (PermutedSource.banded). */
const BANDED_BYTES = 32 * 1024 * 1024;

/**
 * Axis permutations of weight tensors, byte for byte: the one-time layout changes at a format
 * boundary (a Keras kernel [in, out] versus a torch weight [out, in], HWIO filters versus OIHW).
 * `perm[i]` is the input axis that becomes output axis i, as in ONNX Transpose.
 *
 * The result is lazy: its bytes are computed when a reader asks for them (a writer streaming its
 * chunks, a comparison) and dropped afterwards. A converted model therefore never holds all its
 * permuted weights at once; a large model's peak memory stays near its largest tensor.
 */
export function permuted(t: Tensor, perm: readonly number[]): Tensor {
  const rank = t.shape.length;
  if (perm.length !== rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) throw new RangeError(`permutation [${perm}] does not fit ${t}`);
  const size = dtypeSize(t.dtype);
  if (!Number.isInteger(size) || t.dtype === 'string') throw new RangeError(`cannot permute ${t.dtype} elements byte-wise`);
  if (perm.every((p, i) => p === i)) return t;
  return new Tensor(t.dtype, perm.map((p) => t.shape[p]!), new PermutedSource(t.source, t.shape, size, perm));
}

/** A 2-D tensor with its axes swapped (lazily, see `permuted`). */
export function transpose2d(t: Tensor): Tensor {
  if (t.shape.length !== 2) throw new RangeError(`transpose2d needs a 2-D tensor, got ${t}`);
  return permuted(t, [1, 0]);
}

/** The bytes of `inner` (row-major, elements of `size` bytes, `shape`) with axes permuted. */
class PermutedSource implements ByteSource {
  constructor(
    private readonly inner: ByteSource,
    private readonly shape: readonly number[],
    private readonly size: number,
    private readonly perm: readonly number[],
  ) {}

  get byteLength(): number {
    return this.inner.byteLength;
  }

  read(): Uint8Array {
    const banded = this.banded();
    if (banded) {
      const out = new Uint8Array(this.byteLength);
      let at = 0;
      for (const band of banded) {
        out.set(band, at);
        at += band.byteLength;
      }
      return out;
    }
    const lease = this.wasm(CHUNK);
    if (!lease) return this.js();
    try {
      return lease.result.slice();
    } finally {
      lease.release();
    }
  }

  *chunks(chunkSize: number): Iterable<Uint8Array> {
    const banded = this.banded();
    if (banded) {
      for (const band of banded) for (let at = 0; at < band.byteLength; at += chunkSize) yield band.subarray(at, Math.min(at + chunkSize, band.byteLength));
      return;
    }
    const lease = this.wasm(Math.max(chunkSize, CHUNK));
    const all = lease?.result ?? this.js();
    try {
      for (let at = 0; at < all.byteLength; at += chunkSize) yield all.subarray(at, Math.min(at + chunkSize, all.byteLength));
    } finally {
      lease?.release();
    }
  }

  /** Any permutation of any element size, in plain JS over the whole tensor. */
  private js(): Uint8Array {
    return permuteBytes(this.inner.read(), this.shape, this.size, this.perm);
  }

  /**
   * A large 2-D transpose of 32-bit elements, handed out a band of result rows at a time: the
   * source streamed into WebAssembly memory and each band transposed from it in place
   * (wasmTransposeBandsFrom); past what a 32-bit memory holds, the source read whole into JS
   * memory and each band gathered from it (wasmTransposeBands).
   */
  private banded(): Iterable<Uint8Array> | undefined {
    if (this.size !== 4 || this.shape.length !== 2 || this.perm[0] !== 1 || this.byteLength <= BANDED_BYTES) return undefined;
    const [rows, cols] = this.shape as [number, number];
    return wasmTransposeBandsFrom(this.inner, rows, cols, CHUNK) ?? wasmTransposeBands(this.inner.read(), rows, cols);
  }

  /** A 2-D transpose of 32-bit elements (float32, int32: nearly every weight) in WebAssembly, where it can run. */
  private wasm(chunkSize: number): TransposeLease | undefined {
    if (this.size !== 4 || this.shape.length !== 2 || this.perm[0] !== 1) return undefined;
    return wasmTranspose32(this.inner, this.shape[0]!, this.shape[1]!, chunkSize);
  }
}

/** Elements of 1, 2, 4 or 8 bytes move as whole words; 8-byte ones as two 32-bit words, so NaN payloads stay exact. */
function wordsOf(bytes: Uint8Array, size: number): { words: Uint8Array | Uint16Array | Uint32Array; per: number } | undefined {
  const align = size === 8 ? 4 : size;
  if (![1, 2, 4, 8].includes(size)) return undefined;
  // A copy when misaligned (`new Uint8Array(x)` copies; a Node Buffer's slice() would not).
  const aligned = bytes.byteOffset % align === 0 ? bytes : new Uint8Array(bytes);
  const count = aligned.byteLength / Math.min(size, 4);
  const words = size === 1 ? aligned : size === 2 ? new Uint16Array(aligned.buffer, aligned.byteOffset, count) : new Uint32Array(aligned.buffer, aligned.byteOffset, count);
  return { words, per: size === 8 ? 2 : 1 };
}

/** Side of the square tiles a 2-D transpose walks in, so both sides stay in cache. */
const TILE = 64;

export function permuteBytes(bytes: Uint8Array, shape: readonly number[], size: number, perm: readonly number[]): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  const src = wordsOf(bytes, size);
  const dst = wordsOf(out, size);
  // Other sizes (complex128: 16 bytes) move byte by byte: `size` one-byte words per element.
  if (!src || !dst) {
    permuteWords(bytes, out, shape, size, perm);
    return out;
  }
  if (shape.length === 2 && src.per === 1) transposeTiled(src.words, dst.words, shape[0]!, shape[1]!);
  else permuteWords(src.words, dst.words, shape, src.per, perm);
  return out;
}

function transposeTiled(src: Uint8Array | Uint16Array | Uint32Array, dst: Uint8Array | Uint16Array | Uint32Array, rows: number, cols: number): void {
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(r0 + TILE, rows);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(c0 + TILE, cols);
      for (let r = r0; r < r1; r++) {
        let from = r * cols + c0;
        for (let c = c0; c < c1; c++) dst[c * rows + r] = src[from++]!;
      }
    }
  }
}

/** Any rank: output elements in order, the input index advanced like an odometer. */
function permuteWords(src: Uint8Array | Uint16Array | Uint32Array, dst: Uint8Array | Uint16Array | Uint32Array, shape: readonly number[], per: number, perm: readonly number[]): void {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = stridesOf(shape);
  const step = perm.map((p) => inStrides[p]! * per);
  const index = new Array<number>(rank).fill(0);
  const count = dst.length / per;
  let from = 0;
  let to = 0;
  for (let n = 0; n < count; n++) {
    for (let w = 0; w < per; w++) dst[to++] = src[from + w]!;
    for (let axis = rank - 1; axis >= 0; axis--) {
      if (++index[axis]! < outShape[axis]!) {
        from += step[axis]!;
        break;
      }
      from -= step[axis]! * (outShape[axis]! - 1);
      index[axis] = 0;
    }
  }
}
