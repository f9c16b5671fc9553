import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { readNpz } from '../src/api/npz.js';
import { UsageError } from '../src/core/errors.js';
import type { Model } from '../src/core/model.js';
import type { Tensor } from '../src/core/tensor.js';
import { tfliteBytes } from '../src/formats/tflite/writer.js';

/** What the TFLite tests share: the peers' .npz outputs read, how far an output is from its reference, and a refused write. */

export const npz = (path: string): Map<string, Tensor> => readNpz(new Uint8Array(readFileSync(path)), path);

/** 1e-5 relative to the value, or to the output's largest magnitude for values near zero. */
export const FLOAT = (v: number, scale: number): number => 1e-5 * Math.max(v, scale, 1e-6);

/** The largest |a - b| in units of the tolerance (FLOAT by default): at most 1 passes. */
export function excess(got: Tensor, want: Tensor, tolerance: (value: number, scale: number) => number = FLOAT): number {
  expect(got.shape).toEqual(want.shape);
  const a = got.toFloat32();
  const b = want.toFloat32();
  const scale = b.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / tolerance(Math.abs(b[i]!), scale));
  return worst;
}

/** Writing `model` as .tflite fails with one UsageError line matching `pattern`. */
export function expectRefused(model: Model, pattern: RegExp): void {
  let error: unknown;
  try {
    tfliteBytes(model);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(UsageError);
  const message = (error as Error).message;
  expect(message).toMatch(pattern);
  expect(message).not.toContain('\n');
}
