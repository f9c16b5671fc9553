import { UsageError } from '../../core/errors.js';
import type { Model } from '../../core/model.js';

export function writeKerasArchive(model: Model, path: string, kind: 'keras' | 'h5' = 'keras'): string[] {
  void model;
  void path;
  throw new UsageError(`writing ${kind === 'h5' ? 'Keras HDF5 (.h5)' : '.keras'} files is not supported yet`);
}
