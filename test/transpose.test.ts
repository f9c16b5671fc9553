import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dtypeSize, type DType } from '../src/core/dtypes.js';
import { stridesOf } from '../src/core/shape.js';
import { MemorySource, type ByteSource } from '../src/core/source.js';
import { Tensor } from '../src/core/tensor.js';
import { permuted, transpose2d } from '../src/core/transpose.js';
import { wasmTranspose32, wasmTransposeBands, wasmTransposeBandsFrom } from '../src/core/wasm/transpose.js';

/** The definition: output element at index i is the input element at index i mapped back through perm. */
function reference(bytes: Uint8Array, shape: readonly number[], size: number, perm: readonly number[]): Uint8Array {
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = stridesOf(shape);
  const count = bytes.byteLength / size;
  const out = new Uint8Array(bytes.byteLength);
  for (let to = 0; to < count; to++) {
    let rest = to;
    let from = 0;
    for (let axis = outShape.length - 1; axis >= 0; axis--) {
      const i = rest % outShape[axis]!;
      rest = Math.floor(rest / outShape[axis]!);
      from += i * inStrides[perm[axis]!]!;
    }
    out.set(bytes.subarray(from * size, from * size + size), to * size);
  }
  return out;
}

/** A source that counts how often its bytes are asked for. */
class CountingSource implements ByteSource {
  reads = 0;
  constructor(private readonly inner: MemorySource) {}
  get byteLength(): number {
    return this.inner.byteLength;
  }
  read(): Uint8Array {
    this.reads++;
    return this.inner.read();
  }
  *chunks(n: number): Iterable<Uint8Array> {
    this.reads++;
    yield* this.inner.chunks(n);
  }
}

const DTYPES: DType[] = ['uint8', 'bool', 'float16', 'bfloat16', 'int16', 'float32', 'int32', 'float64', 'int64', 'complex128'];

describe('permuted / transpose2d', () => {
  it('match the definition for every element size, rank 0-5, any permutation, aligned or not', () => {
    const shapes = fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 5 }).filter((s) => s.reduce((a, b) => a * b, 1) <= 4000);
    fc.assert(
      fc.property(fc.constantFrom(...DTYPES.filter((d) => Number.isInteger(dtypeSize(d)))), shapes, fc.integer({ min: 0, max: 7 }), fc.integer(), (dtype, shape, offset, seed) => {
        const size = dtypeSize(dtype);
        const n = shape.reduce((a, b) => a * b, 1) * size;
        // An odd offset into a larger buffer: views of file bytes are not aligned.
        const buffer = new Uint8Array(n + offset);
        for (let i = 0; i < buffer.length; i++) buffer[i] = (i * 2654435761 + seed) >>> 24;
        const bytes = buffer.subarray(offset);
        const perm = shape.map((_, i) => i).sort((a, b) => ((a * 7919 + seed) % 13) - ((b * 7919 + seed) % 13));
        const t = permuted(new Tensor(dtype, shape, new MemorySource(bytes)), perm);
        expect(t.shape).toEqual(perm.map((p) => shape[p]));
        expect(Buffer.compare(t.bytes(), reference(bytes, shape, size, perm))).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('take a Node Buffer view at an odd offset (whose slice() is no copy)', () => {
    const buffer = Buffer.alloc(4 * 6 + 1).map((_, i) => i);
    const bytes = buffer.subarray(1);
    const t = transpose2d(new Tensor('float32', [2, 3], new MemorySource(bytes)));
    expect(Buffer.compare(t.bytes(), reference(bytes, [2, 3], 4, [1, 0]))).toBe(0);
  });

  it('keep NaN payloads of float32 and float64 bit for bit', () => {
    const f64 = new Uint8Array(6 * 8);
    const view = new DataView(f64.buffer);
    for (let i = 0; i < 6; i++) view.setBigUint64(i * 8, 0x7ff0000000000001n + BigInt(i) * 0x1111n, true); // signalling NaNs
    const t = transpose2d(Tensor.fromBytes('float64', [2, 3], f64));
    expect(Buffer.compare(t.bytes(), reference(f64, [2, 3], 8, [1, 0]))).toBe(0);
    const f32 = new Uint8Array(new Uint32Array([0x7f800001, 0xffc00123, 0x7fa00000, 1]).buffer);
    expect(Buffer.compare(transpose2d(Tensor.fromBytes('float32', [2, 2], f32)).bytes(), reference(f32, [2, 2], 4, [1, 0]))).toBe(0);
  });

  it('are lazy: nothing is read until the bytes are asked for, and nothing is kept after', () => {
    const source = new CountingSource(new MemorySource(new Uint8Array(4 * 300 * 200).map((_, i) => i)));
    const t = transpose2d(new Tensor('float32', [300, 200], source));
    expect(source.reads).toBe(0);
    const chunks = [...t.source.chunks(1000)].map((c) => c.slice());
    expect(source.reads).toBe(1);
    expect(Buffer.compare(Buffer.concat(chunks), t.bytes())).toBe(0);
    expect(source.reads).toBe(2);
    expect(transpose2d(t).shape).toEqual([300, 200]);
    expect(Buffer.compare(transpose2d(t).bytes(), source.read())).toBe(0);
  });

  it('refuse a permutation that does not fit, and a 2-D transpose of another rank', () => {
    const t = Tensor.from('float32', [2, 3], [1, 2, 3, 4, 5, 6]);
    expect(() => permuted(t, [0, 0])).toThrow(RangeError);
    expect(() => permuted(t, [0])).toThrow(RangeError);
    expect(() => transpose2d(Tensor.from('float32', [6], [1, 2, 3, 4, 5, 6]))).toThrow(RangeError);
    expect(permuted(t, [0, 1])).toBe(t);
  });
});

describe('the WebAssembly transpose of 32-bit elements', () => {
  const matrix = (rows: number, cols: number, seed: number) => new Uint8Array(new Uint32Array(rows * cols).map((_, i) => Math.imul(i + seed, 2654435761) >>> 0).buffer);

  it('matches the definition on shapes around its 4x4 blocks and 16x16 tiles, by read() and by chunks()', () => {
    // WebAssembly SIMD is there on every Node this project supports: the fast path is what is tested.
    const lease = wasmTranspose32(new MemorySource(matrix(4, 4, 0)), 4, 4, 64);
    expect(lease?.result.byteLength).toBe(64);
    lease!.release();
    for (const [rows, cols] of [[1, 1], [3, 5], [4, 4], [16, 16], [17, 15], [33, 64], [64, 33], [1, 1029], [1029, 1], [130, 257]] as const) {
      const bytes = matrix(rows, cols, rows * 31 + cols);
      const want = reference(bytes, [rows, cols], 4, [1, 0]);
      const t = transpose2d(new Tensor('int32', [rows, cols], new MemorySource(bytes)));
      expect(Buffer.compare(t.bytes(), want), `${rows}x${cols} read`).toBe(0);
      expect(Buffer.compare(Buffer.concat([...t.source.chunks(100)].map((c) => c.slice())), want), `${rows}x${cols} chunks`).toBe(0);
    }
  });

  it('transposes band by band as the chunks arrive, whatever their size', () => {
    for (const [rows, cols] of [[300, 70], [257, 3], [64, 1], [1000, 129]] as const) {
      const bytes = matrix(rows, cols, rows + cols);
      const want = reference(bytes, [rows, cols], 4, [1, 0]);
      for (const chunk of [4, 100, 4096, 12_345, 1 << 20]) {
        const lease = wasmTranspose32(new MemorySource(bytes), rows, cols, chunk)!;
        expect(Buffer.compare(lease.result, want), `${rows}x${cols} in chunks of ${chunk}`).toBe(0);
        lease.release();
      }
    }
    // A source longer or shorter than the shape says is refused, not transposed.
    expect(() => wasmTranspose32({ byteLength: 64, read: () => new Uint8Array(64), *chunks() { yield new Uint8Array(60); } }, 4, 4, 64)).toThrow(RangeError);
    expect(() => wasmTranspose32({ byteLength: 64, read: () => new Uint8Array(64), *chunks() { yield new Uint8Array(60); yield new Uint8Array(8); } }, 4, 4, 64)).toThrow(RangeError);
  });

  it('transposes a large matrix streamed into its memory a band of columns at a time, reading the source in place', () => {
    // Bands of 8 MiB: 1027 rows give bands of 2041 columns (the last of 10 columns), 3001 rows bands of 698.
    for (const [rows, cols] of [[1027, 2051], [3001, 2903], [5, 3]] as const) {
      const bytes = matrix(rows, cols, rows * 7 + cols);
      const want = reference(bytes, [rows, cols], 4, [1, 0]);
      for (const chunk of [1000, 1 << 20]) {
        const bands: Uint8Array[] = [];
        for (const band of wasmTransposeBandsFrom(new MemorySource(bytes), rows, cols, chunk)!) bands.push(band.slice());
        expect(bands.length).toBe(Math.ceil(cols / Math.max(1, Math.min(cols, Math.floor((8 << 20) / (rows * 4))))));
        expect(bands.every((band) => band.byteLength % (rows * 4) === 0)).toBe(true);
        expect(Buffer.compare(Buffer.concat(bands), want), `${rows}x${cols} in chunks of ${chunk}`).toBe(0);
      }
    }
    // A reader that stops after the first band gives the memory back: the next transpose reuses it and is right.
    const bytes = matrix(1027, 2051, 5);
    for (const band of wasmTransposeBandsFrom(new MemorySource(bytes), 1027, 2051, 1 << 20)!) {
      expect(band.byteLength).toBeGreaterThan(0);
      break;
    }
    const again = Buffer.concat(Array.from(wasmTransposeBandsFrom(new MemorySource(bytes), 1027, 2051, 1 << 20)!, (band) => band.slice()));
    expect(Buffer.compare(again, reference(bytes, [1027, 2051], 4, [1, 0]))).toBe(0);
    // A source longer or shorter than the shape says is refused, not transposed.
    expect(() => wasmTransposeBandsFrom(new MemorySource(new Uint8Array(60)), 4, 4, 64)).toThrow(RangeError);
    const lying: ByteSource = { byteLength: 64, read: () => new Uint8Array(64), *chunks() { yield new Uint8Array(60); } };
    expect(() => [...wasmTransposeBandsFrom(lying, 4, 4, 64)!]).toThrow(RangeError);
  });

  it('keeps two large banded transposes read side by side apart (diff reads two models at once)', () => {
    // 33.6 MB each, past permuted()'s 32 MiB switch to bands
    expectSideBySide(2048, 4100, 3 << 20, 11, 12);
  });

  it('transposes a matrix held in JS memory in bands of whole output rows, gathering each band (past what a 32-bit memory holds)', () => {
    // 8.4 MB and 34.8 MB: two bands of the 8 MiB band, and a tensor past permuted()'s 32 MiB switch to bands.
    for (const [rows, cols] of [[1027, 2051], [3001, 2903]] as const) {
      const bytes = matrix(rows, cols, rows ^ cols);
      const want = reference(bytes, [rows, cols], 4, [1, 0]);
      // Each band is a view valid until the next: copied as it comes.
      const bands: Uint8Array[] = [];
      for (const band of wasmTransposeBands(bytes, rows, cols)!) bands.push(band.slice());
      expect(bands.length).toBeGreaterThan(1);
      expect(bands.every((band) => band.byteLength % (rows * 4) === 0)).toBe(true);
      expect(Buffer.compare(Buffer.concat(bands), want), `${rows}x${cols} bands`).toBe(0);
      const t = transpose2d(new Tensor('float32', [rows, cols], new MemorySource(bytes)));
      expect(Buffer.compare(t.bytes(), want), `${rows}x${cols} read`).toBe(0);
      const chunks: Uint8Array[] = [];
      for (const c of t.source.chunks(1 << 20)) chunks.push(c.slice());
      expect(Buffer.compare(Buffer.concat(chunks), want), `${rows}x${cols} chunks`).toBe(0);
    }
    expect(() => wasmTransposeBands(new Uint8Array(60), 4, 4)).toThrow(RangeError);
  });

  it('reads its source a chunk at a time and keeps two streams apart', () => {
    expectSideBySide(300, 200, 4000, 1, 2);
  });

  /** Two matrices' transposes read a chunk of each in turn (as diff reads two models), each equal to the definition. */
  function expectSideBySide(rows: number, cols: number, chunkSize: number, seedA: number, seedB: number): void {
    const a = matrix(rows, cols, seedA);
    const b = matrix(rows, cols, seedB);
    const ia = transpose2d(new Tensor('float32', [rows, cols], new MemorySource(a))).source.chunks(chunkSize)[Symbol.iterator]();
    const ib = transpose2d(new Tensor('float32', [rows, cols], new MemorySource(b))).source.chunks(chunkSize)[Symbol.iterator]();
    const got: [Uint8Array[], Uint8Array[]] = [[], []];
    for (;;) {
      const x = ia.next();
      const y = ib.next();
      if (x.done || y.done) break;
      got[0].push(x.value.slice());
      got[1].push(y.value.slice());
    }
    expect(Buffer.compare(Buffer.concat(got[0]), reference(a, [rows, cols], 4, [1, 0]))).toBe(0);
    expect(Buffer.compare(Buffer.concat(got[1]), reference(b, [rows, cols], 4, [1, 0]))).toBe(0);
  }

  it('passes on a source error (a checkpoint CRC mismatch found at the end of the stream)', () => {
    const failing: ByteSource = {
      byteLength: 64,
      read: () => new Uint8Array(64),
      *chunks() {
        yield new Uint8Array(64);
        throw new Error('crc mismatch');
      },
    };
    expect(() => transpose2d(new Tensor('float32', [4, 4], failing)).bytes()).toThrow('crc mismatch');
  });
});
