/**
 * modelbridge in the browser (the package's `browser` export, dist/browser.js): read, inspect,
 * run, convert with verification, validate and diff models held as bytes, with no server. The
 * same readers, writers and runtime as in Node, over in-memory volumes (src/core/vfs.ts); the
 * module graph imports no `node:` module (scripts/build.mjs swaps Node's file system for
 * nothing and the few other Node modules for small shims in src/browser/shims).
 *
 * Single-threaded: products run on the calling thread (the WebAssembly SIMD kernel where the page
 * is cross-origin isolated, since its memory is shared; plain JavaScript otherwise). Keras/HDF5
 * files are not read here yet (h5wasm runs on a Node worker thread).
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
export { VERSION } from './version.js';
export { Tensor } from './core/tensor.js';
export type { NumericArray } from './core/tensor.js';
export { DTYPES, isDType, type DType } from './core/dtypes.js';
export { FormatError, UsageError } from './core/errors.js';
export type { Graph, Node, ValueInfo, Attribute, Dim } from './core/graph.js';
export type { Model, Signature } from './core/model.js';
export {
  readModel,
  readModelSync,
  releaseModel,
  writeModel,
  convertModelBytes,
  inspectFiles,
  validateFiles,
  errorLine,
  type ModelFiles,
  type FileBytes,
  type BytesReadOptions,
  type BytesWriteOptions,
  type BytesConvertResult,
} from './api/bytes.js';
export type { BlobLike } from './core/vfs-memory.js';
export { runModel, Runner, type RunOptions } from './api/run.js';
export { inspectModel, type InspectReport } from './api/inspect.js';
export { diffModels, diffReportJson, type DiffOptions, type DiffReport } from './api/diff.js';
export type { ModelReport, CheckResult } from './api/validate.js';
export { FORMATS, formatNames } from './formats/registry.js';
export { readNpy, writeNpy } from './formats/npy/npy.js';
export { readNpz } from './api/npz.js';
export { gemmKernel } from './runtime/wasm/gemm.js';
export { isSupported, supportedOps } from './runtime/ops.js';
