/**
 * The exports both entry points share: src/index.ts (Node) and src/browser.ts (the `browser`
 * condition) re-export this module and add their own, so the two public surfaces cannot drift
 * apart. Everything here must stay free of `node:` imports (the browser bundle checks it).
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
export { isSupported, supportedOps } from './runtime/ops.js';
