/** Shape helpers shared by readers, writers and kernels. */
export type Shape = readonly number[];

/** Element count of a shape; undefined when it overflows the safe integer range. */
export function elementCount(shape: Shape): number | undefined {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return undefined;
  }
  return n;
}

export function sizeOf(shape: Shape): number {
  const n = elementCount(shape);
  if (n === undefined) throw new RangeError(`shape [${shape.join(', ')}] has too many elements`);
  return n;
}

export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}
