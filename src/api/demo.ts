import { mkdirSync, statSync } from '../core/vfs.js';
import { join } from 'node:path';
import { Tensor } from '../core/tensor.js';
import { FORMATS } from '../formats/registry.js';
import { OR_INPUTS, trainOrGate, type TrainedOrGate } from '../train/or-gate.js';
import { loadModel, saveModel } from './load.js';
import { Runner } from './run.js';

export interface DemoRow {
  readonly format: string;
  readonly file: string;
  readonly bytes: number;
  readonly predictions: readonly number[];
  /** Largest |prediction - trained model's prediction| over the 4 inputs. */
  readonly maxDiff: number;
}

export interface DemoResult {
  readonly trained: TrainedOrGate;
  readonly rows: readonly DemoRow[];
}

/** The OR gate's four inputs as one batch. */
export function orBatch(): Tensor {
  return Tensor.from('float32', [4, 2], OR_INPUTS.flat());
}

/**
 * The demo: train the OR gate, save it in every format modelbridge writes, read each file back,
 * run it, and compare with what was trained. Files are named or-gate.<extension> in `outDir` (a directory
 * format: or-gate-<format>/).
 */
export function runDemo(outDir: string, seed = 0): DemoResult {
  const trained = trainOrGate({ seed });
  mkdirSync(outDir, { recursive: true });
  const rows: DemoRow[] = [];
  for (const format of FORMATS.filter((f) => !f.readOnly)) {
    // Formats stored as a directory (SavedModel) have no extension: or-gate-savedmodel/.
    const ext = format.extensions[0];
    const file = join(outDir, ext ? `or-gate${ext}` : `or-gate-${format.name}`);
    const files = saveModel(trained.model, file, { format: format.name, force: true });
    const reloaded = loadModel(file, { format: format.name });
    const y = new Runner(reloaded).run({ x: orBatch() })['y']!;
    const predictions = Array.from(y.toFloat32());
    const maxDiff = Math.max(...predictions.map((p, i) => Math.abs(p - trained.predictions[i]!)));
    rows.push({ format: format.name, file, bytes: files.reduce((n, f) => n + statSync(f).size, 0), predictions, maxDiff });
  }
  return { trained, rows };
}
