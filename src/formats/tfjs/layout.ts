import type { NodeDefObject, TfNames } from '../tf/export.js';
import { parseTensorName } from '../tf/flatten.js';

/**
 * exportGraph wraps every convolution, pool and batch norm in its own NCHW -> NHWC -> NCHW pair
 * of Transposes. TF.js runs that correctly but transposes every activation twice per layer. Here
 * a Transpose is moved past the elementwise ops that follow it (they do not care about layout)
 * until it meets its inverse, and the pair is removed; what remains is one Transpose where the
 * NCHW graph input enters the first NHWC op and one where the data leaves the last (a Flatten).
 */

/** Ops that act element by element on one tensor, so a Transpose commutes with them. */
const ELEMENTWISE = new Set(['Relu', 'Relu6', 'Sigmoid', 'Tanh', 'Elu', 'Selu', 'LeakyRelu', 'Softplus', 'Softsign', 'Neg', 'Abs', 'Exp', 'Log', 'Sqrt', 'Identity']);

const nodeOf = (ref: string | undefined) => (ref === undefined ? undefined : parseTensorName(ref));

/**
 * `perm(node)` gives a Transpose's permutation when its perm input is a constant; `keep` names
 * nodes that must survive under their names (signature inputs and outputs).
 */
export function cancelTransposes(start: readonly NodeDefObject[], perm: (t: NodeDefObject) => readonly number[] | undefined, keep: ReadonlySet<string>, names: TfNames): NodeDefObject[] {
  let nodes = [...start];
  for (let guard = 0; guard < 1_000_000; guard++) {
    const next = step(nodes, perm, keep, names);
    if (!next) return nodes;
    nodes = next;
  }
  return nodes;
}

/** One rewrite, or undefined when none applies. */
function step(nodes: NodeDefObject[], perm: (t: NodeDefObject) => readonly number[] | undefined, keep: ReadonlySet<string>, names: TfNames): NodeDefObject[] | undefined {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const readers = new Map<string, NodeDefObject[]>();
  for (const n of nodes) {
    for (const input of n.input) {
      const ref = nodeOf(input);
      if (ref) readers.set(ref.node, [...(readers.get(ref.node) ?? []), n]);
    }
  }
  for (const t of nodes) {
    if (t.op !== 'Transpose' || keep.has(t.name)) continue;
    const p = perm(t);
    const src = nodeOf(t.input[0]);
    if (!p || !src) continue;
    // A Transpose right after its inverse: readers of the second read the first one's input.
    const before = src.index === 0 ? byName.get(src.node) : undefined;
    const q = before?.op === 'Transpose' && !keep.has(before.name) && readers.get(before.name)?.length === 1 ? perm(before) : undefined;
    if (q && q.length === p.length && p.every((a, i) => q[a] === i)) {
      const replacement = before!.input[0]!;
      return nodes
        .filter((n) => n !== t && n !== before)
        .map((n) => ({ ...n, input: n.input.map((i) => (nodeOf(i)?.node === t.name ? replacement : i)) }));
    }
    // A Transpose read only by an elementwise op: the op reads the untransposed value and the
    // Transpose moves after it. The op keeps its name and its readers read the Transpose, unless
    // the op's name must stay the transposed result (a signature output): then they swap names.
    const only = readers.get(t.name);
    const u = only?.length === 1 ? only[0]! : undefined;
    if (u && ELEMENTWISE.has(u.op) && u.input.filter((i) => !i.startsWith('^')).length === 1 && nodeOf(u.input[0])?.node === t.name) {
      const swap = keep.has(u.name);
      const opName = swap ? names.take(`${u.name}/nhwc`) : u.name;
      const tName = swap ? u.name : names.take(`${u.name}/Transpose`);
      const moved = { ...u, name: opName, input: [t.input[0]!, ...u.input.slice(1)] };
      const after = { ...t, name: tName, input: [opName, ...t.input.slice(1)] };
      const reread = (n: NodeDefObject) => (swap ? n : { ...n, input: n.input.map((i) => (nodeOf(i)?.node === u.name ? tName : i)) });
      return nodes.filter((n) => n !== t).flatMap((n) => (n === u ? [moved, after] : [reread(n)]));
    }
  }
  return undefined;
}
