import type { Value } from './value.js';

/**
 * A session's constants (its initializers, read once when the session is made). A kernel may
 * prepare something from a constant once and reuse it on every run (a convolution's packed
 * weights), keyed by the Value, which belongs to one session: an input could hold different
 * numbers in the same array on the next run, and a new session over weights changed in place
 * must see the new numbers, so neither an input nor a shared array qualifies.
 */
const constants = new WeakSet<Value>();

export function markConstant(value: Value): void {
  constants.add(value);
}

export function isConstant(value: Value): boolean {
  return constants.has(value);
}
