import { KernelError } from './kernel.js';

/** numpy's multidirectional broadcast of two shapes (ONNX Add, Mul, ...). */
export function broadcastShapes(a: readonly number[], b: readonly number[], op: string): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new KernelError(`${op}: shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    out[i] = da === 1 ? db : da;
  }
  return out;
}

export function broadcastMany(shapes: readonly (readonly number[])[], op: string): number[] {
  return shapes.reduce<number[]>((acc, s) => broadcastShapes(acc, s, op), []);
}

/** Element strides of `shape` seen through `outShape` (0 on broadcast axes). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const rank = outShape.length;
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const axis = rank - shape.length + i;
    strides[axis] = shape[i] === 1 ? 0 : s;
    s *= shape[i]!;
  }
  return strides;
}

/**
 * For every output element in row-major order, calls visit(outIndex, indexA, indexB). Walks an
 * odometer over the output shape, so it costs O(1) per element.
 */
export function forEachBroadcast(
  outShape: readonly number[],
  stridesA: readonly number[],
  stridesB: readonly number[],
  visit: (o: number, a: number, b: number) => void,
): void {
  const rank = outShape.length;
  let total = 1;
  for (const d of outShape) total *= d;
  if (total === 0) return;
  const counter = new Array<number>(rank).fill(0);
  let ia = 0;
  let ib = 0;
  for (let o = 0; o < total; o++) {
    visit(o, ia, ib);
    for (let axis = rank - 1; axis >= 0; axis--) {
      counter[axis]!++;
      ia += stridesA[axis]!;
      ib += stridesB[axis]!;
      if (counter[axis]! < outShape[axis]!) break;
      ia -= stridesA[axis]! * outShape[axis]!;
      ib -= stridesB[axis]! * outShape[axis]!;
      counter[axis] = 0;
    }
  }
}
