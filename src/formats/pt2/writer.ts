import { UsageError } from '../../core/errors.js';
import type { Model } from '../../core/model.js';

export function writePt2(model: Model, path: string): void {
  void model;
  throw new UsageError(`${path}: writing torch.export programs is not implemented yet`);
}
