import { attrFloat, attrInt, attrInts } from '../../core/graph.js';
import { forEachRow, planBroadcast } from '../broadcast.js';
import { formatDims, KernelError, normalizeAxes, required, type KernelFactory } from '../kernel.js';
import { int64Value, makeValue, sizeOfShape, toIntList, type Value } from '../value.js';

/**
 * Ops that change only the shape (outputs share the input's array, which no kernel mutates),
 * and the ones that report shapes.
 */

const Identity: KernelFactory = { prepare: () => (inputs) => [required(inputs, 0, 'Identity')] };

/**
 * Dropout at inference is the identity; the optional mask output is all true. Training mode
 * (an input from opset 12) with a non-zero ratio is random, so the runtime refuses it.
 */
const Dropout: KernelFactory = {
  prepare(node, opset) {
    const wantsMask = node.outputs.length > 1 && node.outputs[1] !== '';
    const attrRatio = attrFloat(node, 'ratio', 0.5);
    return (inputs) => {
      const x = required(inputs, 0, 'Dropout');
      const training = opset >= 12 && inputs[2] !== undefined && inputs[2].data[0] !== 0;
      const ratio = opset >= 12 ? (inputs[1] ? Number(inputs[1].data[0]) : 0.5) : attrRatio;
      if (training && ratio !== 0) throw new KernelError('Dropout: training mode with a non-zero ratio is random and not supported');
      if (!wantsMask) return [x];
      const mask = makeValue('bool', x.shape);
      (mask.data as Uint8Array).fill(1);
      return [x, mask];
    };
  },
};

/** Reshape (opset 5+: shape is an input). 0 copies the input's size unless allowzero; one -1 is inferred. */
const Reshape: KernelFactory = {
  prepare(node) {
    const allowZero = attrInt(node, 'allowzero', 0) !== 0;
    return (inputs) => {
      const x = required(inputs, 0, 'Reshape');
      const target = toIntList(required(inputs, 1, 'Reshape'));
      const shape = target.map((d, i) => (d === 0 && !allowZero ? (x.shape[i] ?? 0) : d));
      const unknown = shape.filter((d) => d === -1).length;
      if (unknown > 1) throw new KernelError(`Reshape: at most one -1 in ${formatDims(target)}`);
      if (shape.some((d) => d < -1)) throw new KernelError(`Reshape: invalid size in ${formatDims(target)}`);
      const total = sizeOfShape(x.shape);
      if (unknown === 1) {
        const known = shape.reduce((n, d) => (d === -1 ? n : n * d), 1);
        if (known === 0 || total % known !== 0) throw new KernelError(`Reshape: cannot infer -1 for ${total} elements into ${formatDims(target)}`);
        shape[shape.indexOf(-1)] = total / known;
      }
      if (sizeOfShape(shape) !== total) throw new KernelError(`Reshape: ${formatDims(x.shape)} has ${total} elements, ${formatDims(shape)} needs ${sizeOfShape(shape)}`);
      return [{ dtype: x.dtype, shape, data: x.data }];
    };
  },
};

const Flatten: KernelFactory = {
  prepare(node) {
    const axisAttr = attrInt(node, 'axis', 1);
    return (inputs) => {
      const x = required(inputs, 0, 'Flatten');
      const axis = axisAttr < 0 ? axisAttr + x.shape.length : axisAttr;
      if (axis < 0 || axis > x.shape.length) throw new KernelError(`Flatten: axis ${axisAttr} is out of range for rank ${x.shape.length}`);
      return [{ dtype: x.dtype, shape: [sizeOfShape(x.shape.slice(0, axis)), sizeOfShape(x.shape.slice(axis))], data: x.data }];
    };
  },
};

/** Axes from the attribute (before `inputFrom`) or from input 1 (from it on); undefined when absent. */
function axesOf(node: Parameters<KernelFactory['prepare']>[0], opset: number, inputFrom: number, inputs: readonly (Value | undefined)[]): number[] | undefined {
  if (opset < inputFrom) return attrInts(node, 'axes')?.slice();
  const v = inputs[1];
  return v ? toIntList(v) : undefined;
}

/** Squeeze: drops the given unit axes, or every unit axis when none are given. Axes became an input in opset 13. */
const Squeeze: KernelFactory = {
  prepare: (node, opset) => (inputs) => {
    const x = required(inputs, 0, 'Squeeze');
    const given = axesOf(node, opset, 13, inputs);
    const axes = given ? normalizeAxes(given, x.shape.length, 'Squeeze') : x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
    for (const a of axes) if (x.shape[a] !== 1) throw new KernelError(`Squeeze: axis ${a} of ${formatDims(x.shape)} is not 1`);
    return [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !axes.includes(i)), data: x.data }];
  },
};

/** Unsqueeze: inserts unit axes at the given positions of the output. Axes became an input in opset 13. */
const Unsqueeze: KernelFactory = {
  prepare: (node, opset) => (inputs) => {
    const x = required(inputs, 0, 'Unsqueeze');
    const given = axesOf(node, opset, 13, inputs);
    if (!given) throw new KernelError('Unsqueeze needs axes');
    const rank = x.shape.length + given.length;
    const axes = normalizeAxes(given, rank, 'Unsqueeze');
    const shape: number[] = [];
    let next = 0;
    for (let i = 0; i < rank; i++) shape.push(axes.includes(i) ? 1 : x.shape[next++]!);
    return [{ dtype: x.dtype, shape, data: x.data }];
  },
};

/** Shape, with opset 15's start/end slice (clamped, negative from the end). */
const Shape: KernelFactory = {
  prepare(node) {
    const startAttr = attrInt(node, 'start', 0);
    const endAttr = node.attributes['end'] ? attrInt(node, 'end', 0) : undefined;
    return (inputs) => {
      const x = required(inputs, 0, 'Shape');
      const rank = x.shape.length;
      const clamp = (v: number) => Math.min(rank, Math.max(0, v < 0 ? v + rank : v));
      const dims = x.shape.slice(clamp(startAttr), endAttr === undefined ? rank : clamp(endAttr));
      return [int64Value([dims.length], dims)];
    };
  },
};

const Size: KernelFactory = {
  prepare: () => (inputs) => [int64Value([], [sizeOfShape(required(inputs, 0, 'Size').shape)])],
};

/** Expand: numpy-broadcasts the input with the given shape (either side may be the larger). */
const Expand: KernelFactory = {
  prepare: () => (inputs) => {
    const x = required(inputs, 0, 'Expand');
    const target = toIntList(required(inputs, 1, 'Expand'));
    const plan = planBroadcast([x.shape, target], 'Expand');
    // nothing to broadcast (BERT expands its [1, 1, S, S] mask to the shape it has): the input's
    // array under the new shape, as Reshape gives, instead of the row walker's generic element
    // loop (~10 ns an element)
    if (plan.size === sizeOfShape(x.shape)) return [makeValue(x.dtype, plan.shape, x.data)];
    const out = makeValue(x.dtype, plan.shape);
    const src = x.data as { readonly [i: number]: number | bigint };
    const dst = out.data as { [i: number]: number | bigint };
    const last = plan.dims.length - 1;
    const step = plan.strides[0]![last]!;
    forEachRow(plan, (o, off, n) => {
      for (let k = 0, i = off[0]!; k < n; k++, i += step) dst[o + k] = src[i]!;
    });
    return [out];
  },
};

export const SHAPE_OPS: Readonly<Record<string, KernelFactory>> = {
  Identity,
  Dropout,
  Reshape,
  Flatten,
  Squeeze,
  Unsqueeze,
  Shape,
  Size,
  Expand,
};
