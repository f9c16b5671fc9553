import { attr, attrFloat, attrInt, attrInts, type Graph, type Node } from '../../core/graph.js';
import type { Tensor } from '../../core/tensor.js';
import { foldLayout } from './fold.js';

/**
 * Peephole clean-up of an imported TensorFlow graph, so a Keras model reads as the plain layer
 * chain it is (which lift.ts can turn into a torch Sequential):
 *  - Identity nodes disappear (TF graphs are full of them);
 *  - a Transpose followed by its inverse cancels (NHWC -> NCHW -> NHWC between two convolutions);
 *  - layout ops on weights (a Keras bias reshaped before its Add) are applied to the weight once;
 *  - a Gemm's following bias Add folds into the Gemm's C input, and a convolution's (TF adds it
 *    in NHWC, after the Transpose out) into the Conv's B input;
 *  - unused nodes and initializers go, and a transposed weight takes back its original's name
 *    when the original is no longer used.
 * Returns the graph and the new name of each value that was renamed.
 */
export interface Simplified {
  readonly graph: Graph;
  readonly renamed: ReadonlyMap<string, string>;
}

export function simplify(graph: Graph, derived: ReadonlyMap<string, string>): Simplified {
  let nodes = [...graph.nodes];
  const initializers = new Map(graph.initializers);
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const inputs = new Set(graph.inputs.map((i) => i.name));
  // value -> the value that replaces it.
  const subst = new Map<string, string>();
  const resolve = (v: string): string => {
    while (subst.has(v)) v = subst.get(v)!;
    return v;
  };
  const renamed = new Map<string, string>();

  const uses = () => {
    const count = new Map<string, number>();
    for (const n of nodes) for (const i of n.inputs) if (i) count.set(resolve(i), (count.get(resolve(i)) ?? 0) + 1);
    for (const o of outputs) count.set(resolve(o), (count.get(resolve(o)) ?? 0) + 1);
    return count;
  };

  // Identity and inverse Transpose pairs: the output is the same value as an earlier one.
  const passThroughs = () => {
    const producer = new Map(nodes.flatMap((n) => n.outputs.map((o) => [resolve(o), n] as const)));
    nodes = nodes.filter((n) => {
      const out = n.outputs[0]!;
      let same: string | undefined;
      if (n.op === 'Identity') same = n.inputs[0];
      if (n.op === 'Transpose') {
        const before = producer.get(resolve(n.inputs[0]!));
        const p1 = before?.op === 'Transpose' ? attrInts(before, 'perm') : undefined;
        const p2 = attrInts(n, 'perm');
        if (p1 && p2 && p1.length === p2.length && p2.every((p, i) => p1[p] === i)) same = before!.inputs[0];
      }
      if (same === undefined || outputs.has(out)) return true;
      subst.set(out, resolve(same));
      return false;
    });
  };
  passThroughs();
  const producer = new Map(nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));

  // A graph output made by an Identity (or a cancelled pair) names the value it passes on, when
  // that value is free to take the output's name: computed by a node, and no input or output.
  const count = uses();
  nodes = nodes.filter((n) => {
    if (n.op !== 'Identity' || !outputs.has(n.outputs[0]!)) return true;
    const source = resolve(n.inputs[0]!);
    if (inputs.has(source) || outputs.has(source) || initializers.has(source) || count.get(source) !== 1 || !producer.has(source)) return true;
    subst.set(source, n.outputs[0]!);
    renamed.set(source, n.outputs[0]!);
    return false;
  });
  const rewire = (n: Node): Node => ({ ...n, inputs: n.inputs.map((i) => (i ? resolve(i) : i)), outputs: n.outputs.map((o) => (o ? resolve(o) : o)) });
  nodes = nodes.map(rewire);

  const origins = new Map(derived);
  nodes = foldLayout(nodes, initializers, origins, outputs);
  nodes = foldGemmBias(nodes, initializers, outputs);
  nodes = foldConvBias(nodes, initializers, outputs);
  // The bias moved into the Conv: its Transpose out may now meet the next op's Transpose in.
  passThroughs();
  nodes = nodes.map(rewire);
  nodes = dropUnused(nodes, outputs);
  const used = new Set([...nodes.flatMap((n) => n.inputs), ...outputs]);
  for (const name of [...initializers.keys()]) if (!used.has(name)) initializers.delete(name);
  nodes = restoreWeightNames(nodes, initializers, origins, outputs);
  return { graph: { ...graph, nodes, initializers }, renamed };
}

/** Gemm(a, b) -> Add(·, bias[N]) with no other reader of the product: Gemm(a, b, bias). */
function foldGemmBias(nodes: Node[], initializers: ReadonlyMap<string, Tensor>, outputs: ReadonlySet<string>): Node[] {
  const readers = new Map<string, Node[]>();
  for (const n of nodes) for (const i of n.inputs) readers.set(i, [...(readers.get(i) ?? []), n]);
  const folded = new Set<Node>();
  const result: Node[] = [];
  for (const n of nodes) {
    if (folded.has(n)) continue;
    const out = n.outputs[0]!;
    const add = readers.get(out);
    const plain = n.op === 'Gemm' && n.inputs.length === 2 && attrFloat(n, 'alpha', 1) === 1 && attrFloat(n, 'beta', 1) === 1;
    if (plain && add?.length === 1 && add[0]!.op === 'Add' && !outputs.has(out)) {
      const addNode = add[0]!;
      const bias = addNode.inputs[0] === out ? addNode.inputs[1]! : addNode.inputs[0]!;
      const w = initializers.get(n.inputs[1]!);
      const b = initializers.get(bias);
      const outFeatures = w?.shape[attrInt(n, 'transB', 0) ? 0 : 1];
      if (b && b.shape.length === 1 && b.shape[0] === outFeatures && addNode.inputs.includes(out)) {
        folded.add(addNode);
        result.push({ ...n, name: addNode.name, inputs: [...n.inputs, bias], outputs: addNode.outputs, attributes: { ...n.attributes, transB: attr.int(attrInt(n, 'transB', 0)) } });
        continue;
      }
    }
    result.push(n);
  }
  return result;
}

/** Conv(x, W) -> Transpose to NHWC -> Add(·, bias[C]), each read once: Conv(x, W, bias) -> Transpose. */
function foldConvBias(nodes: Node[], initializers: ReadonlyMap<string, Tensor>, outputs: ReadonlySet<string>): Node[] {
  const readers = new Map<string, Node[]>();
  for (const n of nodes) for (const i of n.inputs) readers.set(i, [...(readers.get(i) ?? []), n]);
  const only = (v: string) => (outputs.has(v) ? undefined : readers.get(v)?.length === 1 ? readers.get(v)![0] : undefined);
  const replaced = new Map<Node, Node | null>();
  for (const conv of nodes) {
    if (conv.op !== 'Conv' || conv.inputs.length !== 2) continue;
    const t = only(conv.outputs[0]!);
    const add = t && attrInts(t, 'perm')?.join() === '0,2,3,1' && t.op === 'Transpose' ? only(t.outputs[0]!) : undefined;
    if (!t || !add || add.op !== 'Add') continue;
    const bias = add.inputs[0] === t.outputs[0] ? add.inputs[1]! : add.inputs[0]!;
    const b = initializers.get(bias);
    const w = initializers.get(conv.inputs[1]!);
    if (!b || !w || b.shape.length !== 1 || b.shape[0] !== w.shape[0]) continue;
    replaced.set(conv, { ...conv, inputs: [...conv.inputs, bias] });
    replaced.set(t, { ...t, outputs: add.outputs });
    replaced.set(add, null);
  }
  return nodes.flatMap((n) => (replaced.has(n) ? (replaced.get(n) ? [replaced.get(n)!] : []) : [n]));
}

/** Nodes whose outputs reach no graph output. */
function dropUnused(nodes: Node[], outputs: ReadonlySet<string>): Node[] {
  const needed = new Set(outputs);
  const keep = new Array<boolean>(nodes.length).fill(false);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!n.outputs.some((o) => o && needed.has(o))) continue;
    keep[i] = true;
    for (const input of n.inputs) if (input) needed.add(input);
  }
  return nodes.filter((_, i) => keep[i]);
}

/** A weight stored transposed under `<name>#oihw` goes back to `<name>` once `<name>` itself is unused. */
function restoreWeightNames(nodes: Node[], initializers: Map<string, Tensor>, derived: ReadonlyMap<string, string>, outputs: ReadonlySet<string>): Node[] {
  const rename = new Map<string, string>();
  for (const [name, original] of derived) {
    if (!initializers.has(name) || initializers.has(original) || outputs.has(original) || nodes.some((n) => n.outputs.includes(original))) continue;
    initializers.set(original, initializers.get(name)!);
    initializers.delete(name);
    rename.set(name, original);
  }
  if (!rename.size) return nodes;
  return nodes.map((n) => ({ ...n, inputs: n.inputs.map((i) => rename.get(i) ?? i) }));
}
