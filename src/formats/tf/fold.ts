import { attrInt, attrInts, type Node } from '../../core/graph.js';
import { sizeOf } from '../../core/shape.js';
import type { Tensor } from '../../core/tensor.js';
import { permuted } from '../../core/transpose.js';
import { reshaped } from './layout.js';

/**
 * Applies layout-only ops (Reshape, Squeeze, Unsqueeze, Flatten, Transpose) whose inputs are all
 * initializers to the initializer itself, bit for bit: Keras reshapes a convolution's bias before
 * adding it, and the graph reads better (and lifts) with the reshaped weight stored. The result
 * is recorded as derived from the original weight, whose name it takes back once the original
 * is no longer used. Anything these ops would reject is left for the runtime to report.
 */
export function foldLayout(nodes: readonly Node[], initializers: Map<string, Tensor>, origins: Map<string, string>, outputs: ReadonlySet<string>): Node[] {
  const kept: Node[] = [];
  for (const n of nodes) {
    const x = initializers.get(n.inputs[0] ?? '');
    const out = n.outputs[0];
    const folded = x && out && n.outputs.length === 1 && !outputs.has(out) && n.inputs.every((i) => !i || initializers.has(i)) ? apply(n, x, initializers) : undefined;
    if (!folded) {
      kept.push(n);
      continue;
    }
    initializers.set(out!, folded);
    const source = n.inputs[0]!;
    origins.set(out!, origins.get(source) ?? source);
  }
  return kept;
}

function apply(n: Node, x: Tensor, initializers: ReadonlyMap<string, Tensor>): Tensor | undefined {
  const ints = (i: number) => initializers.get(n.inputs[i] ?? '')?.toNumbers();
  const rank = x.shape.length;
  const norm = (a: number, r: number) => (a < 0 ? a + r : a);
  try {
    switch (n.op) {
      case 'Reshape': {
        const dims = ints(1);
        if (!dims) return undefined;
        const allowZero = attrInt(n, 'allowzero', 0) !== 0;
        const shape = dims.map((d, i) => (d === 0 && !allowZero ? x.shape[i]! : d));
        const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
        const full = shape.map((d) => (d === -1 ? x.size / known : d));
        return full.every((d) => Number.isSafeInteger(d) && d >= 0) && sizeOf(full) === x.size ? reshaped(x, full) : undefined;
      }
      case 'Squeeze': {
        const axes = (n.inputs[1] ? ints(1) : attrInts(n, 'axes')) ?? x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
        const drop = new Set(axes.map((a) => norm(a, rank)));
        return [...drop].every((a) => x.shape[a] === 1) ? reshaped(x, x.shape.filter((_, i) => !drop.has(i))) : undefined;
      }
      case 'Unsqueeze': {
        const axes = (n.inputs[1] ? ints(1) : attrInts(n, 'axes')) ?? [];
        const outRank = rank + axes.length;
        const add = new Set(axes.map((a) => norm(a, outRank)));
        if (add.size !== axes.length || [...add].some((a) => a < 0 || a >= outRank)) return undefined;
        const dims = [...x.shape];
        const shape = Array.from({ length: outRank }, (_, i) => (add.has(i) ? 1 : dims.shift()!));
        return reshaped(x, shape);
      }
      case 'Flatten': {
        const axis = norm(attrInt(n, 'axis', 1), rank);
        const lead = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
        return reshaped(x, [lead, x.size / (lead || 1)]);
      }
      case 'Transpose':
        return permuted(x, attrInts(n, 'perm') ?? [...Array(rank).keys()].reverse());
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}
