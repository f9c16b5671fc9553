/**
 * modelbridge as a library: read any supported model, convert it, inspect it and run it.
 *
 * ```ts
 * import { loadModel, saveModel, runModel, Tensor } from 'modelbridge';
 * const model = loadModel('or-gate.safetensors');
 * const { y } = runModel(model, { x: Tensor.from('float32', [1, 2], [1, 1]) });
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
export type { ModuleSpec, SignatureSpec, IOSpec } from './module/spec.js';
export { lowerModule } from './module/lower.js';
export { parseModuleSpec } from './module/bundle.js';
export { loadModel, saveModel, convertModel, type LoadOptions, type SaveOptions, type ConvertOptions } from './api/load.js';
export { runModel, Runner, type RunOptions } from './api/run.js';
export { inspectModel, type InspectReport, type TensorEntry, type TensorSummary } from './api/inspect.js';
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
export { runDemo, type DemoResult, type DemoRow } from './api/demo.js';
export {
  validateModel,
  validateModels,
  validateReportJson,
  readTensorFile,
  exitCodeOf,
  CHECK_NAMES,
  type ValidateOptions,
  type ValidateReport,
  type ModelReport,
  type ModelStatus,
  type CheckResult,
  type CheckStatus,
  type InputSet,
  type Tolerance,
} from './api/validate.js';
export {
  diffModels,
  diffReportJson,
  compareWeights,
  compareOutputs,
  DEFAULT_MATCHERS,
  type DiffOptions,
  type DiffReport,
  type TensorDiff,
  type OutputDiff,
  type LayoutMatcher,
} from './api/diff.js';
export { readNpz } from './api/npz.js';
export { trainOrGate, OR_MODULE, OR_INPUTS } from './train/or-gate.js';
export { FORMATS, detectFormat, formatNames } from './formats/registry.js';
export { readNpy, writeNpy } from './formats/npy/npy.js';
export {
  readOnnxModel,
  readOnnxTensor,
  writeOnnxModel,
  serializeOnnxModel,
  convertOpset,
  conformanceMismatch,
  onnxFormat,
  type OnnxReadOptions,
  type OnnxWriteOptions,
  type OnnxWriteResult,
} from './formats/onnx/index.js';
export { Session } from './runtime/executor.js';
export { isSupported, supportedOps } from './runtime/ops.js';
export { isComputable } from './runtime/value.js';
