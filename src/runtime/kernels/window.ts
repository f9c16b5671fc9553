import { attrInts, attrString, type Node } from '../../core/graph.js';
import { KernelError } from '../kernel.js';

/**
 * Sliding-window geometry shared by Conv and the pools, for any number of spatial axes: kernel,
 * strides, dilations and padding (explicit `pads` = [begins..., ends...] or auto_pad), and the
 * output size per axis.
 */
export interface Window {
  readonly input: readonly number[];
  readonly kernel: readonly number[];
  readonly strides: readonly number[];
  readonly dilations: readonly number[];
  readonly padsBegin: readonly number[];
  readonly padsEnd: readonly number[];
  readonly output: readonly number[];
}

export function windowOf(node: Node, input: readonly number[], kernel: readonly number[], ceil: boolean, op: string): Window {
  const rank = input.length;
  const fill = (values: readonly number[] | undefined, fallback: number, what: string) => {
    if (values && values.length !== rank) throw new KernelError(`${op}: ${what} has ${values.length} values for ${rank} spatial axes`);
    return values ? [...values] : new Array<number>(rank).fill(fallback);
  };
  const strides = fill(attrInts(node, 'strides'), 1, 'strides');
  const dilations = fill(attrInts(node, 'dilations'), 1, 'dilations');
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  const span = kernel.map((k, i) => dilations[i]! * (k - 1) + 1);
  let padsBegin: number[];
  let padsEnd: number[];
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    // Output = ceil(input / stride); the odd unit of padding goes at the end (UPPER) or start (LOWER).
    const total = input.map((size, i) => Math.max(0, (Math.ceil(size / strides[i]!) - 1) * strides[i]! + span[i]! - size));
    const small = total.map((t) => Math.floor(t / 2));
    const big = total.map((t, i) => t - small[i]!);
    padsBegin = autoPad === 'SAME_UPPER' ? small : big;
    padsEnd = autoPad === 'SAME_UPPER' ? big : small;
  } else if (autoPad === 'VALID') {
    padsBegin = new Array<number>(rank).fill(0);
    padsEnd = new Array<number>(rank).fill(0);
  } else if (autoPad === 'NOTSET') {
    const pads = attrInts(node, 'pads') ?? new Array<number>(2 * rank).fill(0);
    if (pads.length !== 2 * rank) throw new KernelError(`${op}: pads has ${pads.length} values for ${rank} spatial axes`);
    padsBegin = pads.slice(0, rank);
    padsEnd = pads.slice(rank);
  } else {
    throw new KernelError(`${op}: unknown auto_pad ${autoPad}`);
  }
  const output = input.map((size, i) => {
    const room = size + padsBegin[i]! + padsEnd[i]! - span[i]!;
    let out = (ceil ? Math.ceil(room / strides[i]!) : Math.floor(room / strides[i]!)) + 1;
    // A window may not start inside the end padding (ONNX's reference and PyTorch agree for ceil_mode).
    if (ceil && (out - 1) * strides[i]! >= size + padsBegin[i]!) out--;
    return Math.max(0, out);
  });
  return { input, kernel, strides, dilations, padsBegin, padsEnd, output };
}
