export { tfliteFormat } from './format.js';
export { readTflite, tfliteToModel, type TfliteReadOptions } from './reader.js';
export { readTfliteFile, parseTflite, hasTfliteIdentifier, type TflModel, type TflSubgraph, type TflTensor, type TflOperator } from './file.js';
export { TFLITE_OPS, builtinName } from './ops.js';
export { writeTflite } from './writer.js';
