import type { DType } from '../core/dtypes.js';
import type { Node } from '../core/graph.js';
import type { Tensor } from '../core/tensor.js';
import type { FloatArray, Value } from './value.js';

/** Thrown by a kernel for inputs the op's spec does not allow; the executor adds the node's name. */
export class KernelError extends Error {}

/** A prepared kernel: called on every run with the node's inputs (undefined = omitted optional). */
export type RunKernel = (inputs: readonly (Value | undefined)[]) => Value[];

/**
 * A kernel computes one node. `prepare` runs once per node when a session is built (attributes
 * parsed, opset resolved) and returns the function called on every run.
 */
export interface KernelFactory {
  prepare(node: Node, opset: number): RunKernel;
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

/** Normalises a list of axes, refusing duplicates. */
export function normalizeAxes(axes: readonly number[], rank: number, op: string): number[] {
  const out = axes.map((a) => normalizeAxis(a, rank, op));
  if (new Set(out).size !== out.length) throw new KernelError(`${op}: repeated axis in [${axes.join(', ')}]`);
  return out;
}

/** The data of a float value; other dtypes are refused (ops typed T = float16/float/double/bfloat16). */
export function floatData(v: Value, op: string): FloatArray {
  if (v.data instanceof Float32Array || v.data instanceof Float64Array) return v.data;
  throw new KernelError(`${op} takes floating-point inputs, not ${v.dtype}`);
}

/** Refuses mixed input dtypes where the op's type constraint says all inputs are one T. */
export function sameDType(values: readonly Value[], op: string): DType {
  const dtype = values[0]!.dtype;
  for (const v of values) if (v.dtype !== dtype) throw new KernelError(`${op}: inputs are ${dtype} and ${v.dtype}; ONNX requires one type`);
  return dtype;
}

export function attrFloats(node: Node, key: string): readonly number[] | undefined {
  const a = node.attributes[key];
  return a && (a.type === 'floats' || a.type === 'ints') ? a.value : undefined;
}

export function attrTensor(node: Node, key: string): Tensor | undefined {
  const a = node.attributes[key];
  return a && a.type === 'tensor' ? a.value : undefined;
}

export function formatDims(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
