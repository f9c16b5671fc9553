import type { DType } from './dtypes.js';
import type { Tensor } from './tensor.js';

/**
 * The graph IR. Op names, attributes and semantics are ONNX's, at the opset recorded on the
 * graph, so every format maps into one well-defined meaning and ONNX's conformance data can test
 * the runtime. Values are named; a node input named '' is an omitted optional input (as in ONNX).
 */
export type Attribute =
  | { readonly type: 'int'; readonly value: number }
  | { readonly type: 'float'; readonly value: number }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'ints'; readonly value: readonly number[] }
  | { readonly type: 'floats'; readonly value: readonly number[] }
  | { readonly type: 'strings'; readonly value: readonly string[] }
  | { readonly type: 'tensor'; readonly value: Tensor };

export const attr = {
  int: (value: number): Attribute => ({ type: 'int', value }),
  float: (value: number): Attribute => ({ type: 'float', value }),
  string: (value: string): Attribute => ({ type: 'string', value }),
  ints: (value: readonly number[]): Attribute => ({ type: 'ints', value }),
  floats: (value: readonly number[]): Attribute => ({ type: 'floats', value }),
  strings: (value: readonly string[]): Attribute => ({ type: 'strings', value }),
  tensor: (value: Tensor): Attribute => ({ type: 'tensor', value }),
};

/** A dimension: a size, a symbolic name (ONNX dim_param, e.g. "batch"), or null when unknown. */
export type Dim = number | string | null;

export interface ValueInfo {
  readonly name: string;
  readonly dtype: DType;
  /** null when even the rank is unknown. */
  readonly shape: readonly Dim[] | null;
}

export interface Node {
  readonly name: string;
  readonly op: string;
  /** '' is the default ONNX domain (ai.onnx). */
  readonly domain: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: Readonly<Record<string, Attribute>>;
}

export interface Graph {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  /** Weights, by value name; the same Tensor objects as the model's state dict where it has one. */
  readonly initializers: ReadonlyMap<string, Tensor>;
  readonly nodes: readonly Node[];
  /** Opset of the default ONNX domain the node semantics follow. */
  readonly opset: number;
}

/** The opset modelbridge builds graphs at when a format does not say. */
export const DEFAULT_OPSET = 17;

export function makeNode(
  op: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attributes: Record<string, Attribute> = {},
  name = outputs[0] ?? op,
): Node {
  return { name, op, domain: '', inputs, outputs, attributes };
}

export function attrInt(node: Node, key: string, fallback: number): number {
  const a = node.attributes[key];
  return a && a.type === 'int' ? a.value : fallback;
}

export function attrFloat(node: Node, key: string, fallback: number): number {
  const a = node.attributes[key];
  return a && (a.type === 'float' || a.type === 'int') ? a.value : fallback;
}

export function attrInts(node: Node, key: string): readonly number[] | undefined {
  const a = node.attributes[key];
  return a && a.type === 'ints' ? a.value : undefined;
}

export function attrString(node: Node, key: string, fallback: string): string {
  const a = node.attributes[key];
  return a && a.type === 'string' ? a.value : fallback;
}

/** The set of ops a graph uses, sorted, for `inspect` and support checks. */
export function opsUsed(graph: Graph): string[] {
  return [...new Set(graph.nodes.map((n) => (n.domain ? `${n.domain}.${n.op}` : n.op)))].sort();
}
