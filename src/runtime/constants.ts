import type { Value } from './value.js';

/**
 * The arrays of a session's constants (its initializers). A kernel may prepare something from a
 * constant once and reuse it on every run (a convolution's packed weights); an input could hold
 * different numbers in the same array on the next run, so only these qualify.
 */
const constants = new WeakSet<object>();

export function markConstant(value: Value): void {
  constants.add(value.data);
}

export function isConstant(value: Value): boolean {
  return constants.has(value.data);
}
