/** TensorFlow frozen GraphDefs: reading, writing, detection. */
export { looksLikeGraphDef } from './detect.js';
export { graphdefFormat } from './format.js';
export { decodeGraphDef, graphDefToModel, readGraphDef, type GraphDefReadOptions } from './reader.js';
export { frozenGraph, GRAPH_PRODUCER, graphDefBytes, writeGraphDef } from './writer.js';
