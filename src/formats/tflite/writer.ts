import type { Model } from '../../core/model.js';
import { UsageError } from '../../core/errors.js';
import type { WriteOptions } from '../format.js';

export function writeTflite(_model: Model, _path: string, _options: WriteOptions): string[] {
  throw new UsageError('writing .tflite is not supported yet');
}
