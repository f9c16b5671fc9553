import { basename } from 'node:path';
import type { FormatHandler } from '../format.js';
import { looksLikeGraphDef } from './detect.js';
import { readGraphDef } from './reader.js';
import { writeGraphDef } from './writer.js';

/** A frozen TensorFlow GraphDef (.pb): weights as Const nodes, Placeholders as inputs. */
export const graphdefFormat: FormatHandler = {
  name: 'graphdef',
  title: 'TensorFlow frozen GraphDef (.pb)',
  extensions: ['.pb'],
  detect(probe) {
    return !probe.isDirectory && basename(probe.path) !== 'saved_model.pb' && looksLikeGraphDef(probe.head);
  },
  read(path) {
    return readGraphDef(path);
  },
  write(model, path) {
    return writeGraphDef(model, path);
  },
};
