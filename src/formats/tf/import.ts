import type { DType } from '../../core/dtypes.js';
import { FormatError, formatErrors, type FormatErrors } from '../../core/errors.js';
import { attr, DEFAULT_OPSET, makeNode, type Attribute, type Dim, type Graph, type Node, type ValueInfo } from '../../core/graph.js';
import { Tensor } from '../../core/tensor.js';
import { attrShapes, attrType } from './attrs.js';
import { refKey, type FlatGraph, type TfNode, type TfRef } from './flatten.js';
import { permuted } from '../../core/transpose.js';
import { HWIO_TO_OIHW, reshaped } from './layout.js';
import { outputTypeAttr, TF_OPS, type OpContext } from './ops.js';
import { importedInputs } from './rnn.js';
import { simplify } from './simplify.js';
import { dtypeOf, shapeFromProto, tensorFromProto } from './tensor.js';

/**
 * Builds the IR graph that computes a TensorFlow graph's requested outputs ("fetches") from its
 * fed tensors ("feeds"), as a session run would: only the nodes the fetches depend on are
 * converted, each through its TF_OPS entry, in dependency order. Constants and variables become
 * initializers. Every op the table lacks is reported at once, each with a node that uses it.
 */

export interface Feed {
  readonly ref: TfRef;
  readonly dtype: DType;
  readonly shape: readonly Dim[] | null;
}

export interface Fetch {
  readonly ref: TfRef;
  readonly shape?: readonly Dim[] | null;
}

export interface ImportOptions {
  readonly flat: FlatGraph;
  readonly feeds: readonly Feed[];
  readonly fetches: readonly Fetch[];
  /** A variable node's name and value (from the checkpoint); absent for frozen graphs. */
  readonly variable?: (node: TfNode) => { name: string; tensor: Tensor };
}

export interface Imported {
  readonly graph: Graph;
  /** IR value name per feed and per fetch, in the order given. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
}

/** A TF op the table cannot map; still a FormatError, so readers raise nothing else. */
export class UnsupportedOpError extends FormatError {
  constructor(
    file: string,
    readonly ops: ReadonlyMap<string, readonly string[]>,
  ) {
    const list = [...ops].map(([op, nodes]) => `${op} (node${nodes.length > 1 ? 's' : ''} ${nodes.slice(0, 3).join(', ')}${nodes.length > 3 ? ', ...' : ''})`);
    super(file, 'graph', `TensorFlow ops modelbridge can map; unsupported: ${list.join('; ')}`);
  }
}

export function importGraph(options: ImportOptions): Imported {
  const { flat } = options;
  const e: FormatErrors = formatErrors(flat.file);
  const fed = new Map(options.feeds.map((f) => [refKey(flat.resolve(f.ref)), f]));
  const order = dependencyOrder(flat, options.fetches.map((f) => f.ref), fed, e);
  refuseUnsupported(order, flat.file);

  const builder = new Builder(flat, e, options.variable);
  for (const node of order) builder.reserve(node.name);
  const inputs: ValueInfo[] = [];
  for (const [key, feed] of fed) {
    if (inputs.some((i) => i.name === key)) continue;
    builder.define(key, key, feed.dtype, feed.shape);
    inputs.push({ name: key, dtype: feed.dtype, shape: feed.shape });
  }
  for (const node of order) builder.build(node);

  const values = options.fetches.map((f) => builder.valueOf(flat.resolve(f.ref), `fetched tensor ${refKey(f.ref)}`));
  const named = nameOutputs(builder.nodes, values, options.fetches.map((f) => refKey(f.ref)), new Set([...fed.keys(), ...builder.initializers.keys()]));
  const outputs: ValueInfo[] = [];
  options.fetches.forEach((f, i) => {
    const name = named.values[i]!;
    if (!outputs.some((o) => o.name === name)) outputs.push({ name, dtype: builder.dtype(values[i]!), shape: f.shape ?? null });
  });
  const graph: Graph = { inputs, outputs, initializers: builder.initializers, nodes: named.nodes, opset: DEFAULT_OPSET };
  const simplified = simplify(graph, builder.derived);
  return {
    graph: simplified.graph,
    inputs: options.feeds.map((f) => refKey(flat.resolve(f.ref))),
    outputs: named.values.map((n) => simplified.renamed.get(n) ?? n),
  };
}

/**
 * Gives each fetched value the name of the TF tensor that was asked for ("y" for y:0 rather than
 * the Add behind an Identity), where the value is computed by a node and the name is free.
 */
function nameOutputs(nodes: readonly Node[], values: readonly string[], wanted: readonly string[], fixed: ReadonlySet<string>): { nodes: Node[]; values: string[] } {
  const taken = new Set([...fixed, ...nodes.flatMap((n) => [...n.inputs, ...n.outputs])]);
  const rename = new Map<string, string>();
  values.forEach((v, i) => {
    const name = wanted[i]!;
    if (v === name || fixed.has(v) || rename.has(v) || taken.has(name) || values.some((w, j) => w === v && wanted[j] !== name)) return;
    rename.set(v, name);
    taken.add(name);
  });
  if (!rename.size) return { nodes: [...nodes], values: [...values] };
  const r = (v: string) => rename.get(v) ?? v;
  return { nodes: nodes.map((n) => ({ ...n, name: r(n.name), inputs: n.inputs.map(r), outputs: n.outputs.map(r) })), values: values.map(r) };
}

/** The nodes the fetches depend on, each after its inputs (an iterative depth-first walk). */
function dependencyOrder(flat: FlatGraph, fetches: readonly TfRef[], fed: ReadonlyMap<string, unknown>, e: FormatErrors): TfNode[] {
  const order: TfNode[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: { node: TfNode; next: number }[] = [];
  const enter = (ref: TfRef, from: string) => {
    const r = flat.resolve(ref);
    if (fed.has(refKey(r)) || state.get(r.node) === 'done') return;
    e.check(state.get(r.node) !== 'open', `node ${from}`, `an acyclic graph (it loops through ${r.node}; control-flow loops are not supported)`);
    const node = flat.node(r.node);
    e.check(node !== undefined, `node ${from}`, `an input naming an existing node, not ${refKey(r)}`);
    state.set(node.name, 'open');
    stack.push({ node, next: 0 });
  };
  for (const ref of fetches) {
    enter(ref, refKey(ref));
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const inputs = importedInputs(top.node);
      if (top.next < inputs.length) {
        enter(inputs[top.next++]!, top.node.origin);
      } else {
        stack.pop();
        state.set(top.node.name, 'done');
        order.push(top.node);
      }
    }
  }
  return order;
}

function refuseUnsupported(order: readonly TfNode[], file: string): void {
  const missing = new Map<string, string[]>();
  for (const node of order) {
    const op = node.op === 'Placeholder' ? 'Placeholder (not a signature input)' : node.op;
    if (node.op !== 'Placeholder' && Object.prototype.hasOwnProperty.call(TF_OPS, node.op)) continue;
    missing.set(op, [...(missing.get(op) ?? []), node.origin]);
  }
  if (missing.size) throw new UnsupportedOpError(file, missing);
}

/** The mutable state of one import: IR nodes, initializers, and what is known of each value. */
class Builder {
  readonly nodes: Node[] = [];
  readonly initializers = new Map<string, Tensor>();
  /** Initializers derived from another (a transposed filter), for renaming back when the original goes unused. */
  readonly derived = new Map<string, string>();
  private readonly values = new Map<string, string | undefined>();
  private readonly dtypes = new Map<string, DType>();
  private readonly ranks = new Map<string, number>();
  private readonly shapes = new Map<string, readonly (number | null)[]>();
  private readonly taken = new Set<string>();
  private readonly oihw = new Map<string, string>();
  private readonly byTensor = new Map<Tensor, string>();

  constructor(
    private readonly flat: FlatGraph,
    private readonly e: FormatErrors,
    private readonly variables: ImportOptions['variable'],
  ) {}

  reserve(name: string): void {
    this.taken.add(name);
  }

  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.taken.has(name); i++) name = `${base}_${i}`;
    this.taken.add(name);
    return name;
  }

  /** Records that TF tensor `key` is IR value `value`. */
  define(key: string, value: string | undefined, dtype?: DType, shape?: readonly Dim[] | null): void {
    this.values.set(key, value);
    if (value === undefined) return;
    if (dtype) this.dtypes.set(value, dtype);
    if (shape && !this.shapes.has(value)) {
      if (!this.ranks.has(value)) this.ranks.set(value, shape.length);
      if (this.ranks.get(value) === shape.length) this.shapes.set(value, shape.map((d) => (typeof d === 'number' ? d : null)));
    }
  }

  /** The TF node computing a tensor, looking through Identity and Cast (which keep integer values). */
  producer(ref: TfRef): { node: TfNode; ref: TfRef } | undefined {
    for (let steps = 0; steps < 64; steps++) {
      const r = this.flat.resolve(ref);
      const node = this.flat.node(r.node);
      if (!node) return undefined;
      if (!['Identity', 'Cast', 'Snapshot', 'StopGradient'].includes(node.op) || !node.inputs[0]) return { node, ref: r };
      ref = node.inputs[0];
    }
    return undefined;
  }

  shape(value: string): readonly (number | null)[] | undefined {
    return this.shapes.get(value) ?? this.initializers.get(value)?.shape;
  }

  valueOf(ref: TfRef, where: string): string {
    const key = refKey(ref);
    this.e.check(this.values.has(key), where, `a tensor some node computes, not ${key}`);
    const value = this.values.get(key);
    if (value === undefined) {
      const producer = this.flat.node(ref.node);
      this.e.fail(where, `a tensor the IR computes; output ${ref.index} of ${producer?.op ?? 'node'} ${producer?.origin ?? ref.node} is not supported`);
    }
    return value;
  }

  dtype(value: string): DType {
    const d = this.dtypes.get(value) ?? this.initializers.get(value)?.dtype;
    this.e.check(d !== undefined, `value ${value}`, 'a known element type');
    return d;
  }

  rank(value: string): number | undefined {
    return this.ranks.get(value) ?? this.initializers.get(value)?.shape.length;
  }

  initializer(base: string, tensor: Tensor): string {
    const name = this.fresh(base);
    this.initializers.set(name, tensor);
    return name;
  }

  emit(op: string, inputs: readonly string[], attributes: Record<string, Attribute>, output: string, dtype: DType | undefined, rank: number | undefined): string {
    this.nodes.push(makeNode(op, inputs, [output], attributes, output));
    const d = dtype ?? (inputs[0] !== undefined ? this.dtypes.get(inputs[0]) ?? this.initializers.get(inputs[0])?.dtype : undefined);
    if (d) this.dtypes.set(output, d);
    if (rank !== undefined) this.ranks.set(output, rank);
    return output;
  }

  build(node: TfNode): void {
    const where = `node ${node.origin} (${node.op})`;
    const ctx = this.context(node, where);
    let outs: (string | undefined)[];
    try {
      outs = TF_OPS[node.op]!(ctx);
    } catch (err) {
      if (err instanceof RangeError) this.e.fail(where, err.message);
      throw err;
    }
    // TF2 graphs carry each node's static output shapes (_output_shapes).
    const shapes = attrShapes(node.attr, '_output_shapes');
    outs.forEach((value, k) => this.define(refKey({ node: node.name, index: k }), value, undefined, shapes?.[k] ? shapeFromProto(shapes[k]) : undefined));
  }

  private context(node: TfNode, where: string): OpContext {
    const b = this;
    const e: FormatErrors = this.e;
    const inputValue = (i: number) => {
      e.check(i >= 0 && i < node.inputs.length, where, i < 0 ? 'at least one input' : `at least ${i + 1} inputs`);
      return b.valueOf(b.flat.resolve(node.inputs[i]!), where);
    };
    let temps = 0;
    const outDType = (): DType | undefined => {
      const code = outputTypeAttr(node.attr);
      return code === undefined ? undefined : dtypeOf(code, e, `${where} output type`);
    };
    return {
      node,
      attr: node.attr,
      arity: node.inputs.length,
      input: inputValue,
      dtype: (v) => b.dtype(v),
      rank: (v) => b.rank(v),
      shape: (v) => b.shape(v),
      constant: (i) => b.initializers.get(inputValue(i)),
      inputRef(i) {
        e.check(i >= 0 && i < node.inputs.length, where, i < 0 ? 'at least one input' : `at least ${i + 1} inputs`);
        return b.flat.resolve(node.inputs[i]!);
      },
      producer: (ref) => b.producer(ref),
      constTensor(n) {
        const value = n.op === 'Const' ? n.attr['value'] : undefined;
        return value?.value === 'tensor' && value.tensor ? tensorFromProto(value.tensor, e, `${where} body node ${n.name} value`) : undefined;
      },
      constOf(ref) {
        const n = b.producer(ref)?.node;
        const value = n?.op === 'Const' ? n.attr['value'] : undefined;
        if (value?.value !== 'tensor' || !value.tensor) return undefined;
        const t = tensorFromProto(value.tensor, e, `node ${n!.origin} value`);
        return ['int32', 'int64'].includes(t.dtype) ? t.toNumbers() : undefined;
      },
      ints(i, what) {
        const t = b.initializers.get(inputValue(i));
        e.check(t !== undefined && ['int32', 'int64', 'int16', 'int8', 'uint8'].includes(t.dtype), where, `a constant integer ${what} (input ${i})`);
        return t.toNumbers();
      },
      op(op, inputs, attributes = {}, dtype, rank) {
        return b.emit(op, inputs, attributes, b.fresh(`${node.name}#${op}${temps++ || ''}`), dtype, rank);
      },
      ops(op, inputs, count, attributes = {}, dtype) {
        const outputs = [...Array(count).keys()].map((k) => b.fresh(`${node.name}#${op}${temps++ || ''}:${k}`));
        b.nodes.push(makeNode(op, inputs, outputs, attributes, outputs[0]));
        if (dtype) for (const o of outputs) b.dtypes.set(o, dtype);
        return outputs;
      },
      out(op, inputs, attributes = {}, dtype, rank, k = 0) {
        const name = k === 0 ? node.name : `${node.name}:${k}`;
        const output = b.taken.has(name) && b.dtypes.has(name) ? b.fresh(name) : name;
        b.taken.add(output);
        return b.emit(op, inputs, attributes, output, dtype ?? (k === 0 ? outDType() : undefined), rank);
      },
      constInts(values, shape) {
        const t = Tensor.from('int64', shape ?? [values.length], values.map((v) => BigInt(v)));
        return b.initializer(`${node.name}#const`, t);
      },
      scalar(value, dtype) {
        return b.initializer(`${node.name}#const`, Tensor.from(dtype, [], [value]));
      },
      hwioToOihw(i, depthwise) {
        const raw = inputValue(i);
        const t = b.initializers.get(raw);
        if (!t) {
          const x = depthwise ? this.op('Reshape', [raw, this.op('Concat', [this.op('Slice', [this.op('Shape', [raw], {}, 'int64', 1), this.constInts([0]), this.constInts([2])], {}, 'int64', 1), this.constInts([1, -1])], { axis: attr.int(0) }, 'int64', 1)]) : raw;
          return this.op('Transpose', [x], { perm: attr.ints([...HWIO_TO_OIHW]) }, undefined, 4);
        }
        e.check(t.shape.length === 4, where, `a 4-D filter, not ${t}`);
        const known = b.oihw.get(`${raw}/${depthwise}`);
        if (known) return known;
        const [kh, kw, inC, outC] = t.shape as [number, number, number, number];
        const hwio = depthwise ? reshaped(t, [kh, kw, 1, inC * outC]) : t;
        const name = b.initializer(`${raw}#oihw`, permuted(hwio, HWIO_TO_OIHW));
        b.derived.set(name, raw);
        b.oihw.set(`${raw}/${depthwise}`, name);
        return name;
      },
      valueOfRef: (ref) => b.valueOf(b.flat.resolve(ref), where),
      initializerOf: (value) => b.initializers.get(value),
      derivedWeight(raw, tag, value) {
        const name = b.initializer(`${raw}#${tag}`, value);
        b.derived.set(name, raw);
        return name;
      },
      constValue() {
        const value = node.attr['value'];
        if (value?.value !== 'tensor' || !value.tensor) return e.fail(where, 'a tensor attr "value"');
        const t = tensorFromProto(value.tensor, e, `${where} value`);
        const dtype = attrType(node.attr, 'dtype');
        e.check(dtype === undefined || dtypeOf(dtype, e, `${where} dtype`) === t.dtype, where, 'a value of the node\'s dtype');
        b.initializers.set(node.name, t);
        return node.name;
      },
      variable() {
        e.check(b.variables !== undefined, where, 'a frozen graph: variables must be constants (freeze it, or read the SavedModel)');
        const { name, tensor } = b.variables!(node);
        const known = b.byTensor.get(tensor);
        if (known) return known;
        // A TF1 variable node bears its own name; anything else must not take a node's name.
        const value = name === node.name ? name : b.fresh(name);
        b.taken.add(value);
        b.initializers.set(value, tensor);
        b.byTensor.set(tensor, value);
        return value;
      },
      outDType,
      tensor: (base, value) => b.initializer(`${node.name}#${base}`, value),
      func: (name) => b.flat.functionDef(name),
      fail(expected) {
        return e.fail(where, expected);
      },
    };
  }
}
