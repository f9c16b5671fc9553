import { basename } from 'node:path';
import type { FormatHandler } from '../format.js';
import * as describe from './describe.js'; // lazy in the CLI bundle
import * as integrity from './integrity.js'; // lazy in the CLI bundle
import * as reader from './reader.js'; // lazy in the CLI bundle
import * as writer from './writer.js'; // lazy in the CLI bundle

/**
 * A TensorFlow SavedModel directory (saved_model.pb plus variables/). Reading takes the "serve"
 * meta graph's serving_default signature unless ReadOptions.signature names another;
 * readSavedModel also takes other tags. `inspect` lists every tag set, signature and variable.
 */
export const savedmodelFormat: FormatHandler = {
  name: 'savedmodel',
  title: 'TensorFlow SavedModel (directory with saved_model.pb and variables/)',
  extensions: [],
  detect(probe) {
    return probe.isDirectory ? probe.entries.includes('saved_model.pb') : basename(probe.path) === 'saved_model.pb';
  },
  read(path, options) {
    return reader.readSavedModel(path, { signature: options.signature });
  },
  write(model, path) {
    return writer.writeSavedModel(model, path);
  },
  validate(path) {
    return integrity.savedModelIntegrity(path);
  },
  describe(path) {
    return describe.describeSavedModel(path);
  },
};
