/**
 * modelbridge in the browser (the package's `browser` export, dist/browser.js): read, inspect,
 * run, convert with verification, validate and diff models held as bytes, with no server. The
 * same readers, writers and runtime as in Node, over in-memory volumes (src/core/vfs.ts); the
 * module graph imports no `node:` module (scripts/build.mjs swaps Node's file system for
 * nothing and the few other Node modules for small shims in src/browser/shims).
 *
 * Products run in the WebAssembly SIMD kernel where the page is cross-origin isolated (its memory
 * is shared), split over Web Workers once `await startThreads(n)` has started them; plain
 * JavaScript on one thread otherwise. Keras `.keras` and `.h5` files are read and written with
 * h5wasm on the calling thread, loaded (from dist/h5wasm.mjs) with the first one.
 *
 * ```ts
 * import { readModel, runModel, convertModelBytes, Tensor } from 'modelbridge';
 * const model = await readModel(fileFromInput, { name: file.name });
 * const { y } = runModel(model, { x: Tensor.from('float32', [1, 2], [1, 1]) });
 * const { files, verification } = convertModelBytes(model, 'onnx');
 * ```
 *
 * @packageDocumentation
 */
export * from './exports-common.js';
// Browser only: which product kernel this page got (WebAssembly SIMD needs cross-origin isolation),
// and the Web Workers for products and checksums (started by the page: they start between its tasks).
export { gemmKernel } from './runtime/wasm/gemm.js';
export { startThreads, threadStats } from './api/threads.js';
// HDF5 for Keras files, loaded on demand (readModel loads it for Keras input; a page converting to Keras loads it first).
export { loadHdf5 } from './formats/keras/h5.js';
