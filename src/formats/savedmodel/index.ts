/** TensorFlow SavedModel directories: reading (TF1 and TF2 graphs) and writing (TF1-style, served by TF2). */
export { savedmodelFormat } from './format.js';
export { DEFAULT_SIGNATURE, decodeSavedModel, metaGraphToModel, readSavedModel, savedModelDir, savedModelFromBytes, type SavedModelReadOptions } from './reader.js';
export { savedModelIntegrity } from './integrity.js';
export { OBJECT_GRAPH_KEY, variableResolver, type VariableValue } from './variables.js';
export { writeSavedModel, type SavedModelWriteOptions } from './writer.js';
