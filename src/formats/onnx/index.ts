/** ONNX (*.onnx ModelProto files and TensorProto *.pb files): reading into the IR and writing it out. */
export { readOnnxModel, readOnnxTensor, type OnnxReadOptions } from './reader.js';
export { readOnnxFile, ONNX_LAZY_THRESHOLD, ONNX_LAZY_RAW_BYTES, type OnnxFileOptions } from './file.js';
export { writeOnnxModel, serializeOnnxModel, MAXIMUM_PROTOBUF, DEFAULT_EXTERNAL_THRESHOLD, type OnnxWriteOptions, type OnnxWriteResult } from './writer.js';
export { convertOpset, irVersionFor, MIN_WRITE_OPSET, MAX_KNOWN_OPSET } from './opset.js';
export { tensorFromProto, type TensorContext } from './tensor.js';
export { dtypeToOnnxCode, onnxCodeToDType, onnxTypeName } from './dtypes.js';
export { decodeModelProto, decodeTensorProto, onnxSchema } from './schema.js';
export { onnxFormat, looksLikeOnnx } from './format.js';
export { conformanceMismatch } from './conformance.js';
