import { fromBase64 } from '../bytes.js';
/**
 * The few pieces of the WebAssembly JS API this project uses (its lib setting has no DOM), and
 * compiling one of its hand-written modules from the base64 bytes scripts/build-wasm.mjs commits.
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(deltaPages: number): number;
}

/** A compiled module: each call gives a new instance with its own memory. */
export interface CompiledWasm {
  instantiate<Exports>(): Exports;
}

/** The size of a WebAssembly memory page. */
export const WASM_PAGE = 65536;

interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}

/** The module, or null where WebAssembly or its SIMD128 is missing (callers keep a JS path). */
export function compileWasm(base64: string): CompiledWasm | null {
  try {
    const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
    if (!api) return null;
    const module = new api.Module(fromBase64(base64));
    return { instantiate: <Exports>() => new api.Instance(module, {}).exports as Exports };
  } catch {
    return null;
  }
}
