/**
 * 2-D transposes of 32-bit elements in WebAssembly SIMD128 (transpose.wat, assembled into
 * transpose-bytes.ts by scripts/build-wasm.mjs): two to three times the plain-JS tiled loop on a
 * large kernel, which is what a SavedModel -> safetensors conversion spends much of its time on.
 *
 * A transpose leases an instance whose memory holds the source and the result, and hands the
 * result out as views of that memory (no copy out) until it gives the lease back. One idle
 * instance is kept for the next transpose: a fresh one would pay the page faults of its memory
 * again for every tensor, and memories the garbage collector has not yet reclaimed would pile up
 * (a 1 GiB model's four 256 MiB kernels peaked at 1.6 GB that way). Two transposes streamed at
 * once (diff reads two models side by side) lease two instances, so they cannot overwrite each
 * other. The kept instance holds the largest tensor transposed so far and its result (or, for a
 * banded transpose, one band of it), up to 1 GiB.
 */
import type { ByteSource } from '../source.js';
import { compileWasm, WASM_PAGE, type CompiledWasm, type WasmMemory } from './module.js';
import { TRANSPOSE_WASM_BASE64 } from './transpose-bytes.js';

interface TransposeExports {
  memory: WasmMemory;
  transpose32(src: number, dst: number, rows: number, cols: number, lds: number, ldd: number, scratch: number): void;
}

const PAGE = WASM_PAGE;
/** The kernel's scratch tile, after the source and the result. */
const SCRATCH = 1024;
/** Rows per transposed band at least (a multiple of 4, the kernel's block). */
const BAND_ROWS = 64;
/** The kept instance's memory is at most this large (twice a 512 MiB tensor). */
const KEEP_BYTES = 1 << 30;
/** A 32-bit memory holds at most 4 GiB; a source and its result must both fit, with room to spare. */
const MAX_BYTES = 2 ** 32 - 2 * PAGE;

let compiled: CompiledWasm | null | undefined;

function compile(): CompiledWasm | null {
  if (compiled === undefined) compiled = compileWasm(TRANSPOSE_WASM_BASE64);
  return compiled;
}

/** An instance with its memory, leased to one transpose at a time. */
export interface TransposeLease {
  /** The transposed bytes: a view of the instance's memory, valid until `release`. */
  readonly result: Uint8Array;
  release(): void;
}

let idle: TransposeExports | undefined;

/** An instance whose memory holds at least `need` bytes: the idle one if there is one. */
function lease(c: CompiledWasm, need: number): TransposeExports | undefined {
  try {
    const exports = idle ?? c.instantiate<TransposeExports>();
    idle = undefined;
    const have = exports.memory.buffer.byteLength;
    if (need > have) exports.memory.grow(Math.ceil((need - have) / PAGE));
    return exports;
  } catch {
    return undefined; // the memory could not grow this far: the JS path may still manage
  }
}

/**
 * The bytes of `source` (a row-major [rows, cols] matrix of 32-bit elements) transposed to
 * [cols, rows], in a leased WebAssembly memory; undefined where WebAssembly SIMD is missing or
 * the matrix is too large for a 32-bit memory (the caller then uses its JS path). The source is
 * read a chunk at a time straight into that memory. The caller must release the lease.
 */
export function wasmTranspose32(source: ByteSource, rows: number, cols: number, chunkSize: number): TransposeLease | undefined {
  const bytes = rows * cols * 4;
  if (bytes !== source.byteLength || bytes * 2 > MAX_BYTES) return undefined;
  const c = compile();
  const exports = c ? lease(c, bytes * 2 + SCRATCH) : undefined;
  if (!exports) return undefined;
  let released = false;
  const release = () => {
    // A memory past KEEP_BYTES (a multi-GB tensor's) is left to the garbage collector instead.
    if (!released && exports.memory.buffer.byteLength <= KEEP_BYTES) idle = exports;
    released = true;
  };
  try {
    const memory = new Uint8Array(exports.memory.buffer);
    const rowBytes = cols * 4;
    let at = 0;
    let done = 0;
    // Each band of whole rows is transposed as soon as it is in memory, so the transposing overlaps
    // whatever the source does in the background (a checkpoint's CRC-32C on a worker thread).
    const transposeTo = (end: number) => {
      exports.transpose32(done * rowBytes, bytes + done * 4, end - done, cols, cols, rows, bytes * 2);
      done = end;
    };
    for (const chunk of source.chunks(chunkSize)) {
      if (at + chunk.byteLength > bytes) break;
      memory.set(chunk, at);
      at += chunk.byteLength;
      const whole = Math.floor(at / rowBytes);
      const band = whole - (whole % 4);
      if (band - done >= BAND_ROWS) transposeTo(band);
    }
    if (at !== bytes) throw new RangeError(`transpose source gave ${at} bytes or more, expected ${bytes}`);
    if (done < rows) transposeTo(rows);
    return { result: memory.subarray(bytes, bytes * 2), release };
  } catch (error) {
    release();
    throw error;
  }
}

/** Output bytes per band of a banded transpose. */
const BAND_BYTES = 8 << 20;

/**
 * The bytes of `source` (a row-major [rows, cols] matrix of 32-bit elements) transposed to
 * [cols, rows], handed out a band of whole output rows at a time (views valid until the next
 * band). The source is read a chunk at a time straight into a leased instance's memory, which
 * then holds it and one band: each band is transposed from the source's columns in place, with
 * no gathering in JS, and the memory is the kept instance's (up to KEEP_BYTES), so the next large
 * weight of a model lands in pages already mapped instead of a fresh JS array the size of the
 * weight (whose page faults and collection cost a SavedModel -> safetensors conversion about as
 * much as its transposes). Undefined where WebAssembly SIMD is missing or the source and a band
 * do not fit a 32-bit memory: the caller then reads the source whole (wasmTransposeBands).
 */
export function wasmTransposeBandsFrom(source: ByteSource, rows: number, cols: number, chunkSize: number): Iterable<Uint8Array> | undefined {
  const bytes = rows * cols * 4;
  if (bytes !== source.byteLength) throw new RangeError(`transpose source has ${source.byteLength} bytes, expected ${bytes}`);
  const bandCols = Math.max(1, Math.min(cols, Math.floor(BAND_BYTES / (rows * 4))));
  const bandBytes = rows * bandCols * 4;
  if (rows === 0 || cols === 0 || bytes + bandBytes + SCRATCH > MAX_BYTES) return undefined;
  const c = compile();
  // Leased now, so a memory that cannot grow this far leaves the caller its other path; given back
  // when the last band is out (or the reader stops early).
  const exports = c ? lease(c, bytes + bandBytes + SCRATCH) : undefined;
  if (!exports) return undefined;
  return sourceBands(exports, source, rows, cols, bandCols, bandBytes, chunkSize);
}

function* sourceBands(exports: TransposeExports, source: ByteSource, rows: number, cols: number, bandCols: number, bandBytes: number, chunkSize: number): Generator<Uint8Array> {
  const bytes = rows * cols * 4;
  try {
    const memory = new Uint8Array(exports.memory.buffer);
    let at = 0;
    for (const chunk of source.chunks(chunkSize)) {
      if (at + chunk.byteLength > bytes) break;
      memory.set(chunk, at);
      at += chunk.byteLength;
    }
    if (at !== bytes) throw new RangeError(`transpose source gave ${at} bytes or more, expected ${bytes}`);
    for (let c0 = 0; c0 < cols; c0 += bandCols) {
      const n = Math.min(bandCols, cols - c0);
      // input columns c0..c0+n, read in place (a row of the source is `cols` long): output rows c0..c0+n
      exports.transpose32(c0 * 4, bytes, rows, n, cols, rows, bytes + bandBytes);
      yield memory.subarray(bytes, bytes + n * rows * 4);
    }
  } finally {
    if (exports.memory.buffer.byteLength <= KEEP_BYTES) idle = exports;
  }
}

/**
 * The bytes of `input` (a row-major [rows, cols] matrix of 32-bit elements, whole in memory)
 * transposed to [cols, rows], handed out a band of whole output rows at a time (views valid until
 * the next band). For a large matrix: the whole-matrix lease holds the source and the result in
 * a WebAssembly memory, which never shrinks, so transposing one 256 MiB weight would leave 512 MiB
 * behind for the rest of the process (beside the model a conversion's check reads in next). A
 * band takes input columns gathered row by row into an instance of its own of about twice
 * BAND_BYTES. Undefined where WebAssembly SIMD is missing.
 */
export function wasmTransposeBands(input: Uint8Array, rows: number, cols: number): Iterable<Uint8Array> | undefined {
  if (input.byteLength !== rows * cols * 4) throw new RangeError(`transpose input has ${input.byteLength} bytes, expected ${rows * cols * 4}`);
  const c = compile();
  if (!c || rows === 0 || cols === 0) return undefined;
  const bandCols = Math.max(1, Math.min(cols, Math.floor(BAND_BYTES / (rows * 4))));
  const bandBytes = rows * bandCols * 4;
  let exports: TransposeExports;
  try {
    exports = c.instantiate<TransposeExports>();
    const have = exports.memory.buffer.byteLength;
    if (bandBytes * 2 + SCRATCH > have) exports.memory.grow(Math.ceil((bandBytes * 2 + SCRATCH - have) / PAGE));
  } catch {
    return undefined;
  }
  return bands(exports, input, rows, cols, bandCols, bandBytes);
}

function* bands(exports: TransposeExports, input: Uint8Array, rows: number, cols: number, bandCols: number, bandBytes: number): Generator<Uint8Array> {
  const memory = new Uint8Array(exports.memory.buffer);
  const rowBytes = cols * 4;
  for (let c0 = 0; c0 < cols; c0 += bandCols) {
    const n = Math.min(bandCols, cols - c0);
    const span = n * 4;
    // Input columns c0..c0+n, gathered row by row: a [rows, n] matrix whose transpose is output rows c0..c0+n.
    for (let r = 0, from = c0 * 4, to = 0; r < rows; r++, from += rowBytes, to += span) memory.set(input.subarray(from, from + span), to);
    exports.transpose32(0, bandBytes, rows, n, n, rows, bandBytes * 2);
    yield memory.subarray(bandBytes, bandBytes + n * rows * 4);
  }
}
