import type { Model } from '../../core/model.js';
import type { Tensor } from '../../core/tensor.js';
import type { FormatHandler } from '../../formats/format.js';

/** The verdict of one check. `skip` means the check did not apply or could not run. */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

/**
 * One check's result: a name, a verdict and one line for people. Checks add their own fields
 * (lists of nodes, tensors, statistics) beside these three; docs/validate-report.md lists them.
 * This is also what a format's optional `validate(path)` hook returns (see checksums).
 */
export interface CheckResult {
  readonly name: string;
  readonly status: CheckStatus;
  readonly message: string;
  readonly [detail: string]: unknown;
}

export function result(name: string, status: CheckStatus, message: string, details: Record<string, unknown> = {}): CheckResult {
  return { name, status, message, ...details };
}

/** A named input set: tensors, or JSON values whose dtype comes from the model they feed. */
export type InputValue = Tensor | { readonly json: unknown };
export type InputSet = ReadonlyMap<string, InputValue>;

/** Absolute and relative tolerance: |actual - expected| <= atol + rtol * |expected|, NaN equals NaN. */
export interface Tolerance {
  readonly atol: number;
  readonly rtol: number;
}

export const DEFAULT_TOLERANCE: Tolerance = { atol: 1e-5, rtol: 1e-5 };

/** What every check after `parse` sees: the model as read, and how it was asked to be checked. */
export interface CheckContext {
  readonly path: string;
  readonly format: FormatHandler;
  readonly model: Model;
  readonly strict: boolean;
  readonly tolerance: Tolerance;
  /** --inputs, when given: replaces the generated input of `runs`, feeds `golden` and `roundtrip`. */
  readonly inputs?: InputSet;
  /** --expect: the outputs `golden` compares with. */
  readonly expect?: InputSet;
  readonly roundtrip: readonly FormatHandler[];
}
