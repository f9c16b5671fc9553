import { rmSync } from 'node:fs';
import { UsageError } from '../core/errors.js';
import type { Model } from '../core/model.js';
import { compareOutputs, compareWeights } from './diff.js';

/** Outputs of a converted model may differ by float rounding when ops are re-expressed (Gemm vs MatMul+Add). */
const OUTPUT_TOLERANCE = { atol: 1e-6, rtol: 1e-6 };

/**
 * After a conversion, the written files are read back and compared with the model that was
 * written, as safetensors' own convert script does: every source tensor must reappear bit for bit
 * (under its name, or transposed/renamed where the target's layout differs), and the outputs on
 * a generated input must agree. On a mismatch the output files are removed and the conversion
 * fails, so a wrong file is never left behind looking like a success.
 */
export function verifyConversion(source: Model, written: Model, files: readonly string[], options: VerifyOptions = {}): void {
  const problem = options.lossy ? findLossyProblem(source, written) : findProblem(source, written);
  if (!problem) return;
  for (const file of files) rmSync(file, { force: true, recursive: true });
  throw new UsageError(`verification failed, output removed: ${problem}`);
}

export interface VerifyOptions {
  /**
   * The writer changed values on purpose (TF.js weight quantization): every tensor must still be
   * there with its shape, and the model must still run, but values and outputs may differ.
   */
  readonly lossy?: boolean;
}

function findLossyProblem(source: Model, written: Model): string | undefined {
  const weights = compareWeights(source.weights, written.weights, { atol: 0, rtol: 0 });
  const bad = weights.tensors.find((t) => t.status === 'missing' || t.status === 'reshaped');
  if (bad) return `tensor ${bad.name} is ${bad.status} after writing`;
  if (source.graph && !written.graph) return 'the architecture was lost: the written model is a bare state dict';
  if (!source.graph) return undefined;
  const outputs = compareOutputs(source, written, { atol: Infinity, rtol: Infinity });
  if (outputs.status === 'different') return `the written model does not run as the source does: ${outputs.message}`;
  return undefined;
}

function findProblem(source: Model, written: Model): string | undefined {
  const weights = compareWeights(source.weights, written.weights, { atol: 0, rtol: 0 });
  const bad = weights.tensors.find((t) => t.status !== 'identical' && t.status !== 'extra');
  if (bad) return `tensor ${bad.name} is ${bad.status} after writing${bad.maxAbs !== null ? ` (max abs diff ${bad.maxAbs})` : ''}`;
  if (source.graph && !written.graph) return 'the architecture was lost: the written model is a bare state dict';
  if (!source.graph) return undefined;
  const outputs = compareOutputs(source, written, OUTPUT_TOLERANCE);
  if (outputs.status === 'different') return `outputs differ after writing: ${outputs.message}`;
  return undefined;
}
