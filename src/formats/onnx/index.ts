/** ONNX (*.onnx ModelProto files and TensorProto *.pb files): reading into the IR. */
export { readOnnxModel, readOnnxTensor, type OnnxReadOptions } from './reader.js';
export { tensorFromProto, type TensorContext } from './tensor.js';
export { dtypeToOnnxCode, onnxCodeToDType, onnxTypeName } from './dtypes.js';
export { decodeModelProto, decodeTensorProto, onnxSchema } from './schema.js';
export { onnxFormat, looksLikeOnnx } from './format.js';
