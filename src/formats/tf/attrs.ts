import type { AttrValue, TensorShapeProto } from './messages.js';
import { int64ToNumber } from '../../core/int64.js';

/**
 * Typed reads of a NodeDef's attrs. A missing attr gives the fallback (TF's OpDef default, which
 * graphs saved with stripped_default_attrs leave out); an attr of the wrong kind also does, and
 * the op's own checks then reject what it cannot use.
 */
export type Attrs = Readonly<Record<string, AttrValue>>;

const utf8 = new TextDecoder();

function has(attrs: Attrs, key: string, member: NonNullable<AttrValue['value']>): AttrValue | undefined {
  const a = Object.prototype.hasOwnProperty.call(attrs, key) ? attrs[key] : undefined;
  return a && a.value === member ? a : undefined;
}

export function attrInt(attrs: Attrs, key: string, fallback: number): number {
  const a = has(attrs, key, 'i');
  return a ? (int64ToNumber(a.i) ?? fallback) : fallback;
}

export function attrFloat(attrs: Attrs, key: string, fallback: number): number {
  return has(attrs, key, 'f')?.f ?? fallback;
}

export function attrBool(attrs: Attrs, key: string, fallback: boolean): boolean {
  return has(attrs, key, 'b')?.b ?? fallback;
}

export function attrString(attrs: Attrs, key: string, fallback: string): string {
  const a = has(attrs, key, 's');
  return a ? utf8.decode(a.s) : fallback;
}

/** A DataType attr (T, dtype, DstT ...), or undefined when absent. */
export function attrType(attrs: Attrs, key: string): number | undefined {
  return has(attrs, key, 'type')?.type;
}

export function attrShape(attrs: Attrs, key: string): TensorShapeProto | undefined {
  return has(attrs, key, 'shape')?.shape ?? undefined;
}

export function attrInts(attrs: Attrs, key: string): number[] | undefined {
  const list = has(attrs, key, 'list')?.list;
  return list ? list.i.map((v) => int64ToNumber(v) ?? Number.NaN) : undefined;
}

export function attrTypes(attrs: Attrs, key: string): number[] | undefined {
  return has(attrs, key, 'list')?.list?.type.slice();
}

export function attrShapes(attrs: Attrs, key: string): TensorShapeProto[] | undefined {
  return has(attrs, key, 'list')?.list?.shape.slice();
}

/** The function a call node names (its `f` attr), or undefined. */
export function attrFunc(attrs: Attrs, key: string): string | undefined {
  return has(attrs, key, 'func')?.func?.name;
}

/** Plain-object AttrValues for encodeMessage. */
export const tfAttr = {
  int: (i: number) => ({ i }),
  float: (f: number) => ({ f }),
  bool: (b: boolean) => ({ b }),
  string: (s: string) => ({ s: new TextEncoder().encode(s) }),
  type: (type: number) => ({ type }),
  shape: (shape: object) => ({ shape }),
  tensor: (tensor: object) => ({ tensor }),
  ints: (i: readonly number[]) => ({ list: { i: [...i] } }),
  types: (type: readonly number[]) => ({ list: { type: [...type] } }),
  strings: (s: readonly string[]) => ({ list: { s: s.map((v) => new TextEncoder().encode(v)) } }),
  shapes: (shape: readonly object[]) => ({ list: { shape: [...shape] } }),
  func: (name: string) => ({ func: { name } }),
};
