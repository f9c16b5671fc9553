export { tfjsFormat, writeGraphModel, looksLikeGraphModel } from './format.js';
export { readGraphModel, modelJsonPath, DTYPES_KEY } from './reader.js';
export { graphModelFiles, DEFAULT_SHARD_BYTES, type TfjsWriteOptions, type GraphModelFiles } from './writer.js';
export { quantize, dequantizeFloat32, quantizationBound, type Quantization, type QuantizationDType } from './quantize.js';
export { readWeights, parseManifest, type WeightSpec, type WeightGroup } from './weights.js';
export { TFJS_OPS, expandTfjsOps } from './ops.js';
