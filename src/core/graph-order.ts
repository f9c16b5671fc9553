import { nodeOuterReads, type Graph, type Node } from './graph.js';

/** Why a graph cannot run: the node, and what is wrong with it, in words for one line. */
export interface GraphFault {
  readonly node: string;
  readonly op: string;
  readonly problem: string;
}

export type Ordered = { readonly nodes: Node[] } | { readonly fault: GraphFault };

/**
 * Orders nodes so every value is computed before it is read (Kahn's algorithm, keeping the file's
 * order where it already works), or names the first node that breaks the graph's structure: one
 * writing a value already defined, one reading a value nothing provides, or one on a cycle. A
 * node's reads include what its nested graphs (If branches, Loop bodies) take from the enclosing
 * scope. `outer` holds the names a nested graph sees from the graphs around it. Graph outputs
 * must be produced too. The one implementation for the readers (a broken graph is refused when it
 * is read), the executor and the nested-graph planner.
 */
export function orderGraph(graph: Graph, outer: ReadonlySet<string> = new Set()): Ordered {
  const available = new Set<string>(['', ...outer, ...graph.initializers.keys(), ...graph.inputs.map((i) => i.name)]);
  const producer = new Map<string, number>();
  for (let index = 0; index < graph.nodes.length; index++) {
    const node = graph.nodes[index]!;
    for (const o of node.outputs) {
      if (o === '') continue;
      if (producer.has(o) || available.has(o)) return fault(node, `writes ${o}, which is already defined`);
      producer.set(o, index);
    }
  }
  const waiting: number[] = [];
  const readers = new Map<string, number[]>();
  for (let index = 0; index < graph.nodes.length; index++) {
    const node = graph.nodes[index]!;
    let count = 0;
    for (const i of new Set([...node.inputs, ...nodeOuterReads(node)])) {
      if (available.has(i)) continue;
      if (!producer.has(i)) return fault(node, `reads ${i}, which no node, input or initializer provides`);
      count++;
      const list = readers.get(i);
      if (list) list.push(index);
      else readers.set(i, [index]);
    }
    waiting.push(count);
  }
  const ordered: Node[] = [];
  const done = new Array<boolean>(graph.nodes.length).fill(false);
  let progress = true;
  while (ordered.length < graph.nodes.length && progress) {
    progress = false;
    for (let index = 0; index < graph.nodes.length; index++) {
      if (done[index] || waiting[index]! > 0) continue;
      const node = graph.nodes[index]!;
      done[index] = true;
      progress = true;
      ordered.push(node);
      for (const o of node.outputs) for (const r of readers.get(o) ?? []) waiting[r]!--;
    }
  }
  if (ordered.length < graph.nodes.length) {
    const stuck = graph.nodes.find((_, i) => !done[i])!;
    const through = [...stuck.inputs, ...nodeOuterReads(stuck)].find((i) => producer.has(i) && !done[producer.get(i)!]);
    return fault(stuck, `is part of a cycle through ${through}`);
  }
  for (const out of graph.outputs) {
    if (!available.has(out.name) && !producer.has(out.name)) {
      return { fault: { node: `graph output ${out.name}`, op: 'output', problem: 'is produced by no node, input or initializer' } };
    }
  }
  return { nodes: ordered };
}

/** The nodes in order, or the fault as one line (`node X (Op) reads y, which ...`) thrown by `raise`. */
export function orderedOrThrow(graph: Graph, raise: (line: string) => Error, outer?: ReadonlySet<string>): Node[] {
  const ordered = orderGraph(graph, outer);
  if ('fault' in ordered) throw raise(`node ${ordered.fault.node} (${ordered.fault.op}) ${ordered.fault.problem}`);
  return ordered.nodes;
}

function fault(node: Node, problem: string): Ordered {
  return { fault: { node: node.name, op: node.op, problem } };
}
