import type { DType } from '../../core/dtypes.js';
import { UsageError } from '../../core/errors.js';
import { allocate, Tensor as TensorValue } from '../../core/tensor.js';
import { Session } from '../../runtime/executor.js';
import type { Dim, Graph, Node } from '../../core/graph.js';
import { inferShapes } from '../../api/checks/shapes.js';
import type { Tensor } from '../../core/tensor.js';
import { tfAttr } from './attrs.js';
import type { FunctionDefObject } from './rnn-loop.js';
import { liftRecurrentLoops } from '../onnx/lift-loop.js';
import { IR_TO_TF, type ExportContext, type TfAttrs } from './export-ops.js';
import { shapeToProto, tensorToProto, tfCode } from './tensor.js';

/**
 * IR graph -> TensorFlow NodeDefs (plain objects for encodeMessage), through IR_TO_TF. Graph
 * inputs become Placeholders; initializers become what the writer decides (`weight`: a Const in a
 * frozen graph, a variable read in a SavedModel). Node names are the IR's, made valid for TF
 * ([A-Za-z0-9.][A-Za-z0-9_./-]*) and unique; the node computing an IR value is named after it, so
 * an output `y` is the TF tensor `y:0`. The result depends only on the graph: same graph, same bytes.
 */

export interface NodeDefObject {
  readonly name: string;
  readonly op: string;
  readonly input: string[];
  readonly attr: TfAttrs;
}

export interface ExportOptions {
  /**
   * Emits whatever provides an initializer's value (TF layout: `tensor` may be a transposed copy)
   * and returns its tensor name. `name` is the IR initializer name, `nodeName` a free TF node name.
   */
  weight(name: string, tensor: Tensor, nodeName: string, emit: (node: NodeDefObject) => void): string;
  /**
   * The target keeps a function library (GraphDef, SavedModel): a recurrent node over a sequence
   * length the graph leaves open becomes a While loop whose functions go there.
   */
  readonly functions?: boolean;
}

export interface ExportedGraph {
  readonly nodes: NodeDefObject[];
  /** TF tensor name ("node:0") of each graph input and output, by IR name. */
  readonly inputs: ReadonlyMap<string, string>;
  readonly outputs: ReadonlyMap<string, string>;
  readonly dtypes: ReadonlyMap<string, DType>;
  /** The GraphDef's function library (While loops' cond and body), sorted by name; empty for most graphs. */
  readonly functions: FunctionDefObject[];
}

/** A valid, unused TF node name close to `base`. */
export class TfNames {
  private readonly used = new Set<string>();

  take(base: string): string {
    let clean = base.replace(/[^A-Za-z0-9_./-]/g, '_').replace(/\/{2,}/g, '/').replace(/^[/_-]+|\/+$/g, '');
    if (!/^[A-Za-z0-9.]/.test(clean)) clean = `n${clean}`;
    let name = clean;
    for (let i = 1; this.used.has(name); i++) name = `${clean}_${i}`;
    this.used.add(name);
    return name;
  }
}

export const tensorName = (ref: string) => (ref.includes(':') ? ref : `${ref}:0`);

export function exportGraph(source: Graph, options: ExportOptions, names = new TfNames()): ExportedGraph {
  // tf2onnx's Loop of a Keras LSTM/GRU cell becomes the recurrent node, which TF runs.
  const graph = liftRecurrentLoops(source);
  const nodes: NodeDefObject[] = [];
  const emit = (n: NodeDefObject) => nodes.push(n);
  const values = new Map<string, string>();
  const dtypes = new Map<string, DType>();
  const ranks = new Map<string, number>();
  const inputs = new Map<string, string>();
  const functions = new Map<string, FunctionDefObject>();

  for (const input of graph.inputs) {
    if (graph.initializers.has(input.name)) continue;
    const name = names.take(input.name);
    emit({ name, op: 'Placeholder', input: [], attr: { dtype: tfAttr.type(tfCode(input.dtype)), shape: tfAttr.shape(shapeToProto(input.shape)) } });
    values.set(input.name, name);
    dtypes.set(input.name, input.dtype);
    if (input.shape) ranks.set(input.name, input.shape.length);
    inputs.set(input.name, tensorName(name));
  }
  for (const [name, t] of graph.initializers) {
    dtypes.set(name, t.dtype);
    ranks.set(name, t.shape.length);
  }
  const constant = (t: Tensor, base: string) => {
    const name = names.take(base);
    emit({ name, op: 'Const', input: [], attr: { dtype: tfAttr.type(tfCode(t.dtype)), value: tfAttr.tensor(tensorToProto(t)) } });
    return name;
  };
  const weights = new Map<string, string>();
  const weightOf = (name: string, tensor: Tensor, tag: string) => {
    const key = `${name}\u0000${tag}`;
    if (!weights.has(key)) weights.set(key, options.weight(name, tensor, names.take(name), emit));
    return weights.get(key)!;
  };

  const unsupported = new Map<string, string[]>();
  for (const n of graph.nodes) if (!Object.prototype.hasOwnProperty.call(IR_TO_TF, n.op) || n.domain) unsupported.set(n.op, [...(unsupported.get(n.op) ?? []), n.name]);
  if (unsupported.size) {
    const list = [...unsupported].map(([op, at]) => `${op} (node ${at.slice(0, 3).join(', ')}${at.length > 3 ? ', ...' : ''})`);
    throw new UsageError(`TensorFlow has no mapping here for op${unsupported.size > 1 ? 's' : ''} ${list.join('; ')}`);
  }

  // Values of ONNX Constant nodes (what torch.onnx.export's TorchScript exporter emits for axes,
  // starts and shapes) count as constants for the entries, like initializers.
  const known = new Map<string, Tensor>(graph.initializers);
  for (const n of graph.nodes) {
    const v = n.op === 'Constant' && !n.domain ? n.attributes['value'] : undefined;
    if (v?.type === 'tensor' && n.outputs[0]) known.set(n.outputs[0], v.value);
  }

  // Ranks and fixed sizes the entries ask for: static inference first, and only where it cannot
  // tell, runs of the graph (probeShapes).
  let inference: ReadonlyMap<string, { readonly shape: readonly Dim[] | null }> | undefined;
  const inferred = (v: string): readonly Dim[] | null | undefined => (inference ??= inferShapes(graph).values).get(v)?.shape;
  let probed: Map<string, readonly number[]> | undefined;
  let probedAgain: Map<string, readonly number[]> | undefined;
  // Where every input size is fixed, a run with unknown sizes set to 3 is the run at 2 over again
  // (a whole forward pass of the model: a second of ViT-B/16's export).
  const dynamic = graph.inputs.some((i) => !graph.initializers.has(i.name) && (i.shape === null || i.shape.some((d) => typeof d !== 'number')));
  for (const node of dependencyOrder(graph)) {
    const entry = IR_TO_TF[node.op]!;
    const outName = node.outputs[0] || node.name;
    const declared = new Set(entry.tf);
    const ctx: ExportContext = {
      node,
      opset: graph.opset,
      input(i) {
        const v = node.inputs[i];
        if (!v) ctx.fail(`input ${i}`);
        const init = graph.initializers.get(v);
        if (init) return weightOf(v, init, '');
        const tf = values.get(v);
        if (tf === undefined) ctx.fail(`input ${v} computed before it is read`);
        return tf;
      },
      hasInput: (i) => !!node.inputs[i],
      dtype(i) {
        const d = dtypes.get(node.inputs[i] ?? '');
        if (!d) ctx.fail(`a known element type for input ${i}`);
        return d;
      },
      rank: (i) => ranks.get(node.inputs[i] ?? '') ?? inferred(node.inputs[i] ?? '')?.length ?? (probed ??= probeShapes(graph, 2)).get(node.inputs[i] ?? '')?.length,
      staticDim(i, axis) {
        const v = node.inputs[i] ?? '';
        // A size static inference knows is fixed (a 1 is confirmed by the runs).
        const known = inferred(v)?.[axis];
        if (typeof known === 'number' && known !== 1) return known;
        const a = (probed ??= probeShapes(graph, 2)).get(v)?.[axis];
        const b = dynamic ? (probedAgain ??= probeShapes(graph, 3)).get(v)?.[axis] : a;
        return a !== undefined && a === b ? a : undefined;
      },
      constant: (i) => known.get(node.inputs[i] ?? ''),
      ints(i, what) {
        const t = known.get(node.inputs[i] ?? '');
        if (!t || !['int64', 'int32'].includes(t.dtype)) ctx.fail(`a constant ${what} (input ${i})`);
        return t.toNumbers();
      },
      weight(i, transform, tag) {
        const v = node.inputs[i]!;
        const t = known.get(v);
        if (!t) ctx.fail(`a constant weight as input ${i}`);
        return weightOf(v, transform(t), tag);
      },
      tf(op, inputs, attrs, final = false) {
        // The coverage table (src/op-coverage) reads entry.tf to say what TF.js must run: keep it true.
        if (!declared.has(op)) throw new Error(`bug: the TF export of ${node.op} emits ${op}, which its entry does not declare`);
        const name = names.take(final ? outName : `${outName}/${op}`);
        emit({ name, op, input: [...inputs], attr: sortedAttrs(attrs) });
        return name;
      },
      const: (t) => constant(t, `${outName}/Const`),
      ...(options.functions ? { func: (def: FunctionDefObject) => void functions.set(def.signature.name, def) } : {}),
      fail(expected): never {
        throw new UsageError(`cannot write node ${node.name} (${node.op}) for TensorFlow: it needs ${expected}`);
      },
    };
    const outs = entry.emit(ctx);
    const inTypes = node.inputs.map((i) => dtypes.get(i));
    const inRanks = node.inputs.map((i) => ranks.get(i));
    const constantInput = (i: number) => known.get(node.inputs[i] ?? '');
    node.outputs.forEach((o, k) => {
      if (!o || outs[k] === undefined) return;
      values.set(o, outs[k]!);
      const dtype = entry.dtype?.(node, inTypes, k) ?? inTypes[0];
      const rank = entry.rank ? entry.rank(node, inRanks, constantInput, k) : inRanks[0];
      if (dtype) dtypes.set(o, dtype);
      if (rank !== undefined && Number.isInteger(rank)) ranks.set(o, rank);
    });
  }

  const outputs = new Map<string, string>();
  for (const o of graph.outputs) {
    let tf = values.get(o.name);
    const init = graph.initializers.get(o.name);
    if (tf === undefined && init) tf = weightOf(o.name, init, '');
    if (tf === undefined) throw new UsageError(`graph output ${o.name} is computed by no node`);
    // An output that is an input or a weight gets its own node, so the signature can name it.
    if (graph.inputs.some((i) => i.name === o.name) || init) {
      const name = names.take(`${o.name}/output`);
      emit({ name, op: 'Identity', input: [tf], attr: { T: tfAttr.type(tfCode(dtypes.get(o.name) ?? o.dtype)) } });
      tf = name;
    }
    outputs.set(o.name, tensorName(tf));
  }
  const library = [...functions.values()].sort((a, b) => (a.signature.name < b.signature.name ? -1 : a.signature.name > b.signature.name ? 1 : 0));
  return { nodes, inputs, outputs, dtypes, functions: library };
}

/**
 * The shape of every value, from one run of the runtime on zeros with each unknown input size set
 * to `unknown`: ranks an entry needs when a shape was computed at run time (a Reshape to
 * Concat(Shape(x)...)), and, compared across two sizes, which sizes the graph fixes (an LSTM's
 * sequence length). Empty when the runtime cannot run the graph on made-up inputs; the entries
 * then say what they lack.
 */
function probeShapes(graph: Graph, unknown: number): Map<string, readonly number[]> {
  const inputs = graph.inputs.filter((i) => !graph.initializers.has(i.name));
  if (inputs.some((i) => i.shape === null || i.dtype === 'string')) return new Map();
  const feeds = Object.fromEntries(
    inputs.map((i) => {
      const shape = i.shape!.map((d) => (typeof d === 'number' ? d : unknown));
      return [i.name, TensorValue.fromArray(i.dtype, shape, allocate(i.dtype, shape.reduce((a, b) => a * b, 1)))];
    }),
  );
  const shapes = new Map<string, readonly number[]>(Object.entries(feeds).map(([k, t]) => [k, t.shape]));
  try {
    // Shapes noted as values are computed, which the run then lets go as usual.
    new Session(graph, { once: true, observe: (name, shape) => shapes.set(name, shape) }).run(feeds);
    return shapes;
  } catch (e) {
    if (e instanceof UsageError) return new Map();
    throw e;
  }
}

function sortedAttrs(attrs: TfAttrs): TfAttrs {
  return Object.fromEntries(Object.keys(attrs).sort().map((k) => [k, attrs[k]!]));
}

/** IR nodes with every node after the producers of its inputs (the graph's order where it works). */
function dependencyOrder(graph: Graph): Node[] {
  const ready = new Set<string>(['', ...graph.initializers.keys(), ...graph.inputs.map((i) => i.name)]);
  const pending = [...graph.nodes];
  const order: Node[] = [];
  while (pending.length) {
    const index = pending.findIndex((n) => n.inputs.every((i) => ready.has(i)));
    if (index < 0) throw new UsageError(`node ${pending[0]!.name} reads a value no node computes, or the graph has a cycle`);
    const [n] = pending.splice(index, 1);
    order.push(n!);
    for (const o of n!.outputs) if (o) ready.add(o);
  }
  return order;
}
