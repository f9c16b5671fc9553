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
export * from './exports-common.js';
export type { TensorEntry, TensorSummary } from './api/inspect.js';
export type { ModuleSpec, SignatureSpec, IOSpec } from './module/spec.js';
export { lowerModule } from './module/lower.js';
export { parseModuleSpec } from './module/bundle.js';
export { loadModel, saveModel, convertModel, type LoadOptions, type SaveOptions, type ConvertOptions } from './api/load.js';
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
  type ModelStatus,
  type CheckStatus,
  type InputSet,
  type Tolerance,
} from './api/validate.js';
export {
  compareWeights,
  compareOutputs,
  DEFAULT_MATCHERS,
  type TensorDiff,
  type OutputDiff,
  type LayoutMatcher,
} from './api/diff.js';
export { trainOrGate, OR_MODULE, OR_INPUTS } from './train/or-gate.js';
export { detectFormat } from './formats/registry.js';
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
export { isComputable } from './runtime/value.js';
