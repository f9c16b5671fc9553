/**
 * 2-D transposes of 32-bit elements in WebAssembly SIMD128 (transpose.wat, assembled into
 * transpose-bytes.ts by scripts/build-wasm.mjs): about three times the plain-JS tiled loop on a
 * 256 MiB kernel, which is what a SavedModel -> safetensors conversion spends most of its time on.
 *
 * Each transpose gets an instance of its own, with memory sized for the source and the result:
 * the result is handed out as views of that memory (no copy out), two transposes streamed at once
 * (diff reads two models side by side) cannot overwrite each other, and the memory goes back to
 * the garbage collector with the last view instead of staying with a module-wide instance.
 */
import type { ByteSource } from '../source.js';
import { TRANSPOSE_WASM_BASE64 } from './transpose-bytes.js';

/** The few pieces of the WebAssembly JS API used here (the project's lib setting has no DOM). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(deltaPages: number): number;
}
interface TransposeExports {
  memory: WasmMemory;
  transpose32(src: number, dst: number, rows: number, cols: number): void;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}

const PAGE = 65536;
/** A 32-bit memory holds at most 4 GiB; a source and its result must both fit, with room to spare. */
const MAX_BYTES = 2 ** 32 - 2 * PAGE;

let compiled: { api: WasmApi; module: object } | null | undefined;

function compile(): { api: WasmApi; module: object } | null {
  if (compiled !== undefined) return compiled;
  compiled = null;
  try {
    const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
    if (api) compiled = { api, module: new api.Module(Uint8Array.from(Buffer.from(TRANSPOSE_WASM_BASE64, 'base64'))) };
  } catch {
    compiled = null; // no WebAssembly, or no SIMD128: callers keep their JS path
  }
  return compiled;
}

/**
 * The bytes of `source` (a row-major [rows, cols] matrix of 32-bit elements) transposed to
 * [cols, rows], as a view of a fresh WebAssembly memory; undefined where WebAssembly SIMD is
 * missing or the matrix is too large for a 32-bit memory (the caller then uses its JS path).
 * The source is read a chunk at a time straight into that memory.
 */
export function wasmTranspose32(source: ByteSource, rows: number, cols: number, chunkSize: number): Uint8Array | undefined {
  const bytes = rows * cols * 4;
  if (bytes !== source.byteLength || bytes * 2 > MAX_BYTES) return undefined;
  const c = compile();
  if (!c) return undefined;
  let exports: TransposeExports;
  try {
    exports = new c.api.Instance(c.module, {}).exports as TransposeExports;
    const have = exports.memory.buffer.byteLength;
    const need = bytes * 2;
    if (need > have) exports.memory.grow(Math.ceil((need - have) / PAGE));
  } catch {
    return undefined; // the memory could not grow this far: the JS path may still manage
  }
  const memory = new Uint8Array(exports.memory.buffer);
  let at = 0;
  for (const chunk of source.chunks(chunkSize)) {
    memory.set(chunk, at);
    at += chunk.byteLength;
  }
  if (at !== bytes) throw new RangeError(`transpose source gave ${at} bytes, expected ${bytes}`);
  exports.transpose32(0, bytes, rows, cols);
  return memory.subarray(bytes, bytes * 2);
}
