import { makeNode, type Graph, type Node } from './graph.js';

/**
 * Names a graph's inputs and outputs after a signature's keys. Output names are part of the model:
 * a SavedModel's serving signature calls its results `scores` and `labels`, and every format
 * written from it must too, where the importer left TensorFlow's internal tensor names
 * (`StatefulPartitionedCall:1`). A value that cannot simply be renamed (an output that is also an
 * input or a weight, or one value under two keys) gets an Identity node of the key's name; an
 * internal value already called like a key moves aside. A key that is a weight's name stays
 * unused (weights keep their state-dict names), so that endpoint keeps the name it had.
 */
export interface NamedEndpoints {
  readonly graph: Graph;
  /** The value each input and output now has, in the order given. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
}

export function nameEndpoints(graph: Graph, inputs: readonly (readonly [value: string, key: string])[], outputs: readonly (readonly [value: string, key: string])[]): NamedEndpoints {
  const weights = graph.initializers;
  const graphInputs = new Set(graph.inputs.filter((i) => !weights.has(i.name)).map((i) => i.name));
  const produced = new Set(graph.nodes.flatMap((n) => n.outputs));
  const used = new Set<string>([...graph.inputs.map((i) => i.name), ...weights.keys(), ...graph.nodes.flatMap((n) => [...n.inputs, ...n.outputs])]);
  const keys = new Set([...inputs, ...outputs].map(([, k]) => k));

  const rename = new Map<string, string>();
  const identities: [from: string, to: string][] = [];
  const taken = new Set<string>();
  const claim = (key: string): boolean => {
    if (weights.has(key) || taken.has(key)) return false;
    taken.add(key);
    return true;
  };

  const inputNames = inputs.map(([value, key]) => {
    if (value === key) {
      claim(key);
      return value;
    }
    if (!graphInputs.has(value) || rename.has(value) || !claim(key)) return value;
    rename.set(value, key);
    return key;
  });
  const fetchedAs = new Map<string, Set<string>>();
  for (const [value, key] of outputs) fetchedAs.set(value, (fetchedAs.get(value) ?? new Set()).add(key));
  const outputNames = outputs.map(([value, key]) => {
    if (rename.get(value) === key) return key;
    if (value === key && !rename.has(value)) {
      claim(key);
      return key;
    }
    const movable = produced.has(value) && !rename.has(value) && fetchedAs.get(value)!.size === 1 && !graphInputs.has(value);
    if (!claim(key)) return rename.get(value) ?? value;
    if (movable) rename.set(value, key);
    else identities.push([value, key]);
    return key;
  });

  // Values that are called like a key but are not that endpoint move to a fresh name.
  const finalNames = new Set([...rename.values(), ...identities.map(([, k]) => k)]);
  for (const name of used) {
    if (!finalNames.has(name) || rename.has(name) || weights.has(name)) continue;
    let fresh = `${name}_0`;
    for (let i = 1; used.has(fresh) || keys.has(fresh) || finalNames.has(fresh); i++) fresh = `${name}_${i}`;
    used.add(fresh);
    rename.set(name, fresh);
  }
  if (!rename.size && !identities.length) return { graph, inputs: inputNames, outputs: outputNames };

  const r = (v: string) => rename.get(v) ?? v;
  const renameNode = (n: Node): Node => ({ ...n, name: rename.has(n.name) && n.outputs.includes(n.name) ? r(n.name) : n.name, inputs: n.inputs.map(r), outputs: n.outputs.map(r) });
  const nodes = [...graph.nodes.map(renameNode), ...identities.map(([from, to]) => makeNode('Identity', [r(from)], [to]))];
  const byValue = new Map([...graph.inputs, ...graph.outputs].map((o) => [o.name, o]));
  const newOutputs = outputs.map(([value], i) => {
    const info = byValue.get(value);
    if (!info) throw new Error(`nameEndpoints: output ${value} is no graph input or output`);
    return { ...info, name: outputNames[i]! };
  });
  // The signature's outputs are the graph's, in its order (one value under two keys is two outputs).
  const seen = new Set<string>();
  const finalOutputs = newOutputs.filter((o) => !seen.has(o.name) && (seen.add(o.name), true));
  return {
    graph: { ...graph, inputs: graph.inputs.map((i) => ({ ...i, name: r(i.name) })), outputs: finalOutputs, nodes },
    inputs: inputNames,
    outputs: outputNames,
  };
}
