import type { FormatHandler } from '../format.js';
import { describeTflite } from './describe.js';
import { hasTfliteIdentifier } from './file.js';
import { readTflite } from './reader.js';
import { writeTflite } from './writer.js';

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
    return readTflite(path, options.signature !== undefined ? { signature: options.signature } : {});
  },
  write(model, path, options) {
    return writeTflite(model, path, options);
  },
  describe(path) {
    return describeTflite(path);
  },
};
