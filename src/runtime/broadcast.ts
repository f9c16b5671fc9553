import { KernelError } from './kernel.js';

/** numpy's multidirectional broadcast of two shapes (ONNX Add, Mul, Where, ...). */
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
 * How to walk a broadcast: the output shape with unit axes dropped and neighbouring axes merged
 * wherever every input is either contiguous across both or broadcast across both, so most walks
 * are a few long rows. `strides[k][axis]` is input k's element stride (0 where it broadcasts).
 */
export interface BroadcastPlan {
  readonly shape: readonly number[];
  readonly size: number;
  readonly dims: readonly number[];
  readonly strides: readonly (readonly number[])[];
}

export function planBroadcast(shapes: readonly (readonly number[])[], op: string): BroadcastPlan {
  const shape = broadcastMany(shapes, op);
  const rank = shape.length;
  let size = 1;
  for (const d of shape) size *= d;
  // Per kept axis: its size, and for each input whether it really has that axis (not size 1).
  const dims: number[] = [];
  const real: boolean[][] = shapes.map(() => []);
  for (let axis = 0; axis < rank; axis++) {
    const d = shape[axis]!;
    if (d === 1) continue;
    const flags = shapes.map((s) => (s[s.length - rank + axis] ?? 1) !== 1);
    const last = dims.length - 1;
    if (last >= 0 && flags.every((f, k) => f === real[k]![last])) {
      dims[last]! *= d;
    } else {
      dims.push(d);
      flags.forEach((f, k) => real[k]!.push(f));
    }
  }
  if (dims.length === 0) {
    dims.push(1);
    real.forEach((r) => r.push(false));
  }
  const strides = real.map((flags) => {
    const s = new Array<number>(dims.length).fill(0);
    let step = 1;
    for (let axis = dims.length - 1; axis >= 0; axis--) {
      if (flags[axis]) {
        s[axis] = step;
        step *= dims[axis]!;
      }
    }
    return s;
  });
  return { shape, size, dims, strides };
}

/**
 * Calls visit(outOffset, inputOffsets, rowLength) for each row of the innermost merged axis, in
 * row-major output order. Within a row, input k advances by strides[k][last] (1 or 0). The
 * offsets array is reused between calls.
 */
export function forEachRow(plan: BroadcastPlan, visit: (o: number, offsets: readonly number[], n: number) => void): void {
  if (plan.size === 0) return;
  const dims = plan.dims;
  const last = dims.length - 1;
  const n = dims[last]!;
  const inputs = plan.strides.length;
  const offsets = new Array<number>(inputs).fill(0);
  const counter = new Array<number>(last).fill(0);
  for (let o = 0; o < plan.size; o += n) {
    visit(o, offsets, n);
    for (let axis = last - 1; axis >= 0; axis--) {
      counter[axis]!++;
      if (counter[axis]! < dims[axis]!) {
        for (let k = 0; k < inputs; k++) offsets[k]! += plan.strides[k]![axis]!;
        break;
      }
      counter[axis] = 0;
      for (let k = 0; k < inputs; k++) offsets[k]! -= plan.strides[k]![axis]! * (dims[axis]! - 1);
    }
  }
}
