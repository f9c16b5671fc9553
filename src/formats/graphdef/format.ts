import { basename } from 'node:path';
import type { FormatHandler } from '../format.js';
import { looksLikeGraphDef } from './detect.js';
import * as reader from './reader.js'; // lazy in the CLI bundle
import * as writer from './writer.js'; // lazy in the CLI bundle

/** A frozen TensorFlow GraphDef (.pb): weights as Const nodes, Placeholders as inputs. */
export const graphdefFormat: FormatHandler = {
  name: 'graphdef',
  title: 'TensorFlow frozen GraphDef (.pb)',
  extensions: ['.pb'],
  detect(probe) {
    return !probe.isDirectory && basename(probe.path) !== 'saved_model.pb' && looksLikeGraphDef(probe.head);
  },
  read(path) {
    return reader.readGraphDef(path);
  },
  write(model, path) {
    return writer.writeGraphDef(model, path);
  },
};
