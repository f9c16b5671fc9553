import type { Node } from '../core/graph.js';
import type { Value } from './value.js';

/** Thrown by a kernel for inputs the op's spec does not allow; the executor adds the node's name. */
export class KernelError extends Error {}

/**
 * A kernel computes one node. `prepare` runs once per node when a session is built (attributes
 * parsed, opset resolved) and returns the function called on every run.
 */
export type RunKernel = (inputs: readonly (Value | undefined)[]) => Value[];

export interface KernelFactory {
  prepare(node: Node, opset: number): RunKernel;
  /** Lowest opset of ai.onnx this implementation follows (older versions differ). */
  readonly sinceOpset?: number;
}

export function required(inputs: readonly (Value | undefined)[], index: number, op: string): Value {
  const v = inputs[index];
  if (!v) throw new KernelError(`${op} needs input ${index}`);
  return v;
}

export function normalizeAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new KernelError(`${op}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}
