import type { FormatHandler } from '../format.js';
import * as describe from './describe.js'; // lazy in the CLI bundle
import { hasTfliteIdentifier } from './detect.js';
import * as reader from './reader.js'; // lazy in the CLI bundle
import * as writer from './writer.js'; // lazy in the CLI bundle

/**
 * TensorFlow Lite models (.tflite): one FlatBuffer (schema proto/tflite/tflite.fbs) holding
 * subgraphs of builtin operators, tensors, their data buffers and signature defs. Recognised by
 * the TFL3 file identifier at bytes 4..8.
 */
export const tfliteFormat: FormatHandler = {
  name: 'tflite',
  title: 'TensorFlow Lite FlatBuffer (.tflite)',
  extensions: ['.tflite'],
  detect(probe) {
    return !probe.isDirectory && hasTfliteIdentifier(probe.head);
  },
  read(path, options) {
    return reader.readTflite(path, options.signature !== undefined ? { signature: options.signature } : {});
  },
  write(model, path, options) {
    return writer.writeTflite(model, path, options);
  },
  describe(path) {
    return describe.describeTflite(path);
  },
};
