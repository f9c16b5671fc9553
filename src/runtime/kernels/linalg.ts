import { attrString } from '../../core/graph.js';
import { floatData, KernelError, required, type KernelFactory } from '../kernel.js';
import { isBig, makeValue, sizeOfShape, type SmallArray, type Value } from '../value.js';

/**
 * Einsum by direct summation: every combination of the equation's labels is visited once and the
 * product of the operands' elements is added to the output element it names. Simple and exact
 * for any equation (diagonals, traces, ellipsis broadcasting); it does not reorder into GEMMs,
 * so it suits small contractions.
 */
const Einsum: KernelFactory = {
  prepare(node) {
    const equation = attrString(node, 'equation', '').replace(/\s+/g, '');
    if (!equation) throw new KernelError('Einsum needs an equation');
    return (inputs) => {
      const operands = inputs.filter((v): v is Value => v !== undefined);
      return [einsum(equation, operands)];
    };
  },
};

function einsum(equation: string, operands: readonly Value[]): Value {
  const [lhs, rhs] = equation.split('->') as [string, string | undefined];
  const terms = lhs.split(',');
  if (terms.length !== operands.length) throw new KernelError(`Einsum: ${terms.length} terms for ${operands.length} inputs`);
  // Ellipsis axes get labels '0', '1', ... (right-aligned across operands, numpy-broadcast).
  const ellipsisRank = Math.max(0, ...terms.map((t, i) => (t.includes('...') ? operands[i]!.shape.length - t.replace('...', '').length : 0)));
  const ellipsis = Array.from({ length: ellipsisRank }, (_, i) => String(i));
  const labelsOf = terms.map((t, i) => {
    if (!t.includes('...')) return [...t];
    const own = operands[i]!.shape.length - t.replace('...', '').length;
    const [before, after] = t.split('...') as [string, string];
    return [...before, ...ellipsis.slice(ellipsisRank - own), ...after];
  });
  const sizes = new Map<string, number>();
  labelsOf.forEach((labels, i) => {
    const shape = operands[i]!.shape;
    if (labels.length !== shape.length) throw new KernelError(`Einsum: term ${terms[i]} does not fit input of rank ${shape.length}`);
    labels.forEach((l, d) => {
      const have = sizes.get(l);
      const size = shape[d]!;
      if (have === undefined || have === 1) sizes.set(l, size);
      else if (size !== have && size !== 1) throw new KernelError(`Einsum: label ${l} is both ${have} and ${size}`);
    });
  });
  let outLabels: string[];
  if (rhs !== undefined) {
    outLabels = rhs.includes('...') ? [...rhs.split('...')[0]!, ...ellipsis, ...rhs.split('...')[1]!] : [...rhs];
  } else {
    const counts = new Map<string, number>();
    for (const labels of labelsOf) for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
    outLabels = [...ellipsis, ...[...counts].filter(([l, n]) => n === 1 && !ellipsis.includes(l)).map(([l]) => l).sort()];
  }
  const summed = [...sizes.keys()].filter((l) => !outLabels.includes(l));
  const all = [...outLabels, ...summed];
  const dims = all.map((l) => sizes.get(l) ?? 1);
  const outShape = outLabels.map((l) => sizes.get(l) ?? 1);
  // Per operand, the element stride each label contributes (0 where the operand broadcasts it).
  const strides = labelsOf.map((labels, i) => {
    const shape = operands[i]!.shape;
    const own = shape.map((_, d) => sizeOfShape(shape.slice(d + 1)));
    return all.map((l) => labels.reduce((s, label, d) => (label === l && shape[d] !== 1 ? s + own[d]! : s), 0));
  });
  const dtype = operands[0]!.dtype;
  const big = isBig(operands[0]!.data);
  const out = makeValue(dtype, outShape);
  const acc = big ? new Array<bigint>(out.data.length).fill(0n) : new Float64Array(out.data.length);
  const outSize = sizeOfShape(outShape);
  const innerSize = sizeOfShape(dims.slice(outLabels.length));
  const index = new Array<number>(all.length).fill(0);
  const total = outSize * innerSize;
  for (let e = 0; e < total; e++) {
    const o = Math.floor(e / innerSize);
    if (big) {
      let p = 1n;
      for (let k = 0; k < operands.length; k++) p *= operands[k]!.data[offsetOf(index, strides[k]!)] as bigint;
      (acc as bigint[])[o]! += p;
    } else {
      let p = 1;
      for (let k = 0; k < operands.length; k++) p *= (operands[k]!.data as SmallArray)[offsetOf(index, strides[k]!)]!;
      (acc as Float64Array)[o]! += p;
    }
    for (let d = all.length - 1; d >= 0; d--) {
      if (++index[d]! < dims[d]!) break;
      index[d] = 0;
    }
  }
  const dst = out.data as { [i: number]: number | bigint };
  for (let i = 0; i < outSize; i++) dst[i] = acc[i]!;
  return out;
}

function offsetOf(index: readonly number[], strides: readonly number[]): number {
  let at = 0;
  for (let d = 0; d < index.length; d++) at += index[d]! * strides[d]!;
  return at;
}

/** Det of the trailing [M, M] matrices, by LU decomposition with partial pivoting in float64. */
const Det: KernelFactory = {
  prepare: () => (inputs) => {
    const x = required(inputs, 0, 'Det');
    const src = floatData(x, 'Det');
    const rank = x.shape.length;
    const m = x.shape[rank - 1]!;
    if (rank < 2 || x.shape[rank - 2] !== m) throw new KernelError('Det takes square matrices in the last two axes');
    const batch = x.shape.slice(0, -2);
    const out = makeValue(x.dtype, batch);
    const a = new Float64Array(m * m);
    for (let t = 0; t < sizeOfShape(batch); t++) {
      for (let i = 0; i < m * m; i++) a[i] = src[t * m * m + i]!;
      let det = 1;
      for (let col = 0; col < m; col++) {
        let pivot = col;
        for (let r = col + 1; r < m; r++) if (Math.abs(a[r * m + col]!) > Math.abs(a[pivot * m + col]!)) pivot = r;
        if (a[pivot * m + col] === 0) {
          det = 0;
          break;
        }
        if (pivot !== col) {
          for (let j = 0; j < m; j++) [a[col * m + j], a[pivot * m + j]] = [a[pivot * m + j]!, a[col * m + j]!];
          det = -det;
        }
        const p = a[col * m + col]!;
        det *= p;
        for (let r = col + 1; r < m; r++) {
          const f = a[r * m + col]! / p;
          for (let j = col; j < m; j++) a[r * m + j]! -= f * a[col * m + j]!;
        }
      }
      (out.data as Float64Array)[t] = det;
    }
    return [out];
  },
};

export const LINALG_OPS: Readonly<Record<string, KernelFactory>> = { Einsum, Det };
