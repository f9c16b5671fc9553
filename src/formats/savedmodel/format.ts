import { basename } from 'node:path';
import type { FormatHandler } from '../format.js';
import { describeSavedModel } from './describe.js';
import { savedModelIntegrity } from './integrity.js';
import { readSavedModel } from './reader.js';
import { writeSavedModel } from './writer.js';

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
    return readSavedModel(path, { signature: options.signature });
  },
  write(model, path) {
    return writeSavedModel(model, path);
  },
  validate(path) {
    return savedModelIntegrity(path);
  },
  describe(path) {
    return describeSavedModel(path);
  },
};
