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
  | { readonly type: 'tensor'; readonly value: Tensor }
  /** A nested graph (If's branches, Loop's and Scan's body): it may read its enclosing graphs' values by name. */
  | { readonly type: 'graph'; readonly value: Graph }
  | { readonly type: 'graphs'; readonly value: readonly Graph[] };

export const attr = {
  int: (value: number): Attribute => ({ type: 'int', value }),
  float: (value: number): Attribute => ({ type: 'float', value }),
  string: (value: string): Attribute => ({ type: 'string', value }),
  ints: (value: readonly number[]): Attribute => ({ type: 'ints', value }),
  floats: (value: readonly number[]): Attribute => ({ type: 'floats', value }),
  strings: (value: readonly string[]): Attribute => ({ type: 'strings', value }),
  tensor: (value: Tensor): Attribute => ({ type: 'tensor', value }),
  graph: (value: Graph): Attribute => ({ type: 'graph', value }),
  graphs: (value: readonly Graph[]): Attribute => ({ type: 'graphs', value }),
};

/** A dimension: a size, a symbolic name (ONNX dim_param, e.g. "batch"), or null when unknown. */
export type Dim = number | string | null;

export interface ValueInfo {
  readonly name: string;
  readonly dtype: DType;
  /** null when even the rank is unknown. */
  readonly shape: readonly Dim[] | null;
  /**
   * The file gave no element type (ONNX allows that for a nested graph's inputs and outputs, the
   * enclosing node decides it): `dtype` is then a placeholder, and writers leave the type out.
   */
  readonly untyped?: boolean;
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
  /** The format's own name for the graph, where it has one (ONNX GraphProto.name, kept for subgraphs). */
  readonly name?: string;
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

/** The graphs a node holds in its attributes (If's branches, Loop's and Scan's body), in attribute order. */
export function subgraphsOf(node: Node): Graph[] {
  const out: Graph[] = [];
  for (const a of Object.values(node.attributes)) {
    if (a.type === 'graph') out.push(a.value);
    else if (a.type === 'graphs') out.push(...a.value);
  }
  return out;
}

/** Every node of a graph and of the graphs nested in its nodes, outer before inner. */
export function allNodes(graph: Graph): Node[] {
  const out: Node[] = [];
  const walk = (g: Graph): void => {
    for (const n of g.nodes) {
      out.push(n);
      for (const sub of subgraphsOf(n)) walk(sub);
    }
  };
  walk(graph);
  return out;
}

/** The set of ops a graph uses (nested graphs' included), sorted, for `inspect` and support checks. */
export function opsUsed(graph: Graph): string[] {
  return [...new Set(allNodes(graph).map((n) => (n.domain ? `${n.domain}.${n.op}` : n.op)))].sort();
}

const freeCache = new WeakMap<Graph, readonly string[]>();

/**
 * The values a graph reads from enclosing scopes: names its nodes (and their nested graphs) read
 * that it neither takes as an input, holds as an initializer nor computes. In first-read order.
 */
export function outerReads(graph: Graph): readonly string[] {
  let cached = freeCache.get(graph);
  if (cached) return cached;
  const defined = new Set<string>(['', ...graph.inputs.map((i) => i.name), ...graph.initializers.keys()]);
  for (const n of graph.nodes) for (const o of n.outputs) defined.add(o);
  const out = new Set<string>();
  for (const n of graph.nodes) for (const name of [...n.inputs, ...nodeOuterReads(n)]) if (!defined.has(name)) out.add(name);
  freeCache.set(graph, (cached = [...out]));
  return cached;
}

/** What a node's nested graphs read from the graph the node is in (its implicit inputs), in first-read order. */
export function nodeOuterReads(node: Node): readonly string[] {
  const subs = subgraphsOf(node);
  if (subs.length === 0) return [];
  return [...new Set(subs.flatMap(outerReads))];
}
