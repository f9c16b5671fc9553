import { formatErrors, type FormatErrors } from '../../core/errors.js';
import { attrFunc, attrInt, attrTypes, type Attrs } from './attrs.js';
import type { FunctionDef, GraphDef, NodeDef, OpDef } from './messages.js';

/**
 * Turns a TensorFlow graph into one flat list of nodes: function calls (PartitionedCall,
 * StatefulPartitionedCall, or a node whose op is a library function) are inlined, their body
 * nodes named `<call node>/<body node>`, and every data input becomes a resolved reference to the
 * node and flat output index that computes it. Only what the requested outputs depend on is
 * visited, so the saver's functions and unsupported side graphs are never touched. Control
 * inputs (`^node`) are dropped: the graph is evaluated as a pure function.
 */

export interface TfRef {
  readonly node: string;
  readonly index: number;
}

export interface TfNode {
  readonly name: string;
  readonly op: string;
  readonly inputs: readonly TfRef[];
  readonly attr: Attrs;
  /** The node's name where it was written (its function and body name), for messages. */
  readonly origin: string;
}

export function refKey(ref: TfRef): string {
  return ref.index === 0 ? ref.node : `${ref.node}:${ref.index}`;
}

/** Parses a tensor name of the outer graph ("node", "node:k"); undefined for a control input. */
export function parseTensorName(text: string): TfRef | undefined {
  if (text.startsWith('^')) return undefined;
  const colon = text.lastIndexOf(':');
  if (colon > 0 && /^\d+$/.test(text.slice(colon + 1))) return { node: text.slice(0, colon), index: Number(text.slice(colon + 1)) };
  return { node: text, index: 0 };
}

const CALL_OPS = new Set(['PartitionedCall', 'StatefulPartitionedCall']);

/** Calls nested deeper than this are no real model, only a stack to exhaust. */
const MAX_CALL_DEPTH = 64;
/** Inlining more nodes than this means a runaway (recursive) library. */
const MAX_NODES = 4_000_000;

export interface FlattenOptions {
  /** OpDefs by op name (a SavedModel's stripped_op_list), to number outputs named in function bodies. */
  readonly opDefs?: ReadonlyMap<string, OpDef>;
}

interface Pending extends TfNode {
  readonly depth: number;
}

export class FlatGraph {
  private readonly nodes = new Map<string, Pending>();
  private readonly library = new Map<string, FunctionDef>();
  /** A call node's outputs, once inlined: its "node:k" key -> the body tensor returned. */
  private readonly aliases = new Map<string, TfRef>();
  private readonly inlined = new Set<string>();
  private readonly e: FormatErrors;

  constructor(
    graph: GraphDef,
    readonly file: string,
    private readonly options: FlattenOptions = {},
  ) {
    this.e = formatErrors(file);
    for (const f of graph.library?.function ?? []) {
      const name = f.signature?.name;
      this.e.check(!!name, 'function library', 'every function to have a name');
      this.library.set(name, f);
    }
    for (const n of graph.node) {
      this.e.check(n.name !== '' && !this.nodes.has(n.name), `node ${JSON.stringify(n.name)}`, 'a unique, non-empty node name');
      const inputs = n.input.map(parseTensorName).filter((r): r is TfRef => r !== undefined);
      this.nodes.set(n.name, { name: n.name, op: n.op, inputs, attr: this.withDefaults(n), origin: n.name, depth: 0 });
    }
  }

  /** The node's attrs with the OpDef defaults filled in (SavedModels strip attrs equal to them). */
  private withDefaults(n: NodeDef): Attrs {
    const defs = this.options.opDefs?.get(n.op)?.attr;
    const missing = defs?.filter((a) => a.default_value && !Object.prototype.hasOwnProperty.call(n.attr, a.name));
    if (!missing?.length) return n.attr;
    return { ...Object.fromEntries(missing.map((a) => [a.name, a.default_value!])), ...n.attr };
  }

  node(name: string): TfNode | undefined {
    return this.nodes.get(name);
  }

  /** A function of the graph's library (a While loop's body, which is not inlined). */
  functionDef(name: string): FunctionDef | undefined {
    return this.library.get(name);
  }

  /** Follows inlined calls until the ref names a node that computes it. */
  resolve(ref: TfRef): TfRef {
    for (let steps = 0; ; steps++) {
      this.e.check(steps < 100_000, `tensor ${refKey(ref)}`, 'a tensor that some node computes (function results form a cycle)');
      const alias = this.aliases.get(refKey(ref));
      if (alias) {
        ref = alias;
        continue;
      }
      const node = this.nodes.get(ref.node);
      if (node && this.isCall(node) && !this.inlined.has(node.name)) {
        this.inline(node);
        continue;
      }
      return ref;
    }
  }

  private functionOf(node: TfNode): string | undefined {
    if (CALL_OPS.has(node.op)) return attrFunc(node.attr, 'f');
    return this.library.has(node.op) ? node.op : undefined;
  }

  private isCall(node: TfNode): boolean {
    return CALL_OPS.has(node.op) || this.library.has(node.op);
  }

  private inline(call: Pending): void {
    const where = `node ${call.origin}`;
    const fname = this.functionOf(call);
    this.e.check(fname !== undefined, where, `a function attr f naming the function ${call.op} calls`);
    const fdef = this.library.get(fname);
    this.e.check(fdef !== undefined, where, `function ${fname} in the graph's library`);
    this.e.check(call.depth < MAX_CALL_DEPTH, where, `function calls nested at most ${MAX_CALL_DEPTH} deep`);
    this.e.check(this.nodes.size + fdef.node_def.length <= MAX_NODES, where, `at most ${MAX_NODES} nodes once functions are inlined`);
    const sig = fdef.signature!;
    this.e.check(sig.input_arg.length === call.inputs.length, where, `${sig.input_arg.length} inputs for function ${fname}, found ${call.inputs.length}`);
    const args = new Map(sig.input_arg.map((a, i) => [a.name, call.inputs[i]!]));
    const prefix = `${call.name}/`;
    const body = new Map(fdef.node_def.map((n) => [n.name, n]));
    const scope: BodyScope = { fname, prefix, args, body, e: this.e };
    this.inlined.add(call.name);
    for (const n of fdef.node_def) {
      const name = prefix + n.name;
      this.e.check(!this.nodes.has(name), `function ${fname} node ${n.name}`, 'a node name unique once inlined');
      const inputs = n.input.filter((i) => !i.startsWith('^')).map((i) => this.bodyRef(scope, i, `function ${fname} node ${n.name}`));
      this.nodes.set(name, { name, op: n.op, inputs, attr: this.withDefaults(n), origin: `${fname}/${n.name}`, depth: call.depth + 1 });
    }
    sig.output_arg.forEach((arg, k) => {
      const ret = fdef.ret[arg.name];
      this.e.check(ret !== undefined, `function ${fname}`, `a ret entry for output ${arg.name}`);
      this.aliases.set(refKey({ node: call.name, index: k }), this.bodyRef(scope, ret, `function ${fname} ret ${arg.name}`));
    });
  }

  /** A body input: "arg", "arg:k" (an input arg), or "node:output_arg:k". */
  private bodyRef(scope: BodyScope, text: string, where: string): TfRef {
    const parts = text.split(':');
    const arg = scope.args.get(parts[0]!);
    if (arg && parts.length <= 2) return arg;
    const node = scope.body.get(parts[0]!);
    scope.e.check(node !== undefined && parts.length <= 3, where, `an input naming an argument or body node, not ${JSON.stringify(text)}`);
    const k = parts.length === 1 ? 0 : Number(parts[parts.length - 1]);
    scope.e.check(Number.isSafeInteger(k) && k >= 0, where, `an output index in ${JSON.stringify(text)}`);
    const index = parts.length === 3 ? this.outputOffset(node, parts[1]!, scope, where) + k : k;
    return { node: scope.prefix + node.name, index };
  }

  /** Flat index of the first tensor of output arg `arg` of a body node. */
  private outputOffset(node: NodeDef, arg: string, scope: BodyScope, where: string): number {
    const callee = CALL_OPS.has(node.op) ? undefined : this.library.get(node.op)?.signature;
    const opDef = callee ?? this.options.opDefs?.get(node.op) ?? KNOWN_OUTPUTS.get(node.op);
    if (!opDef) return 0;
    let offset = 0;
    for (const out of opDef.output_arg) {
      if (out.name === arg) return offset;
      offset += argLength(out, node.attr);
    }
    scope.e.fail(where, `op ${node.op} to have an output named ${arg}`);
  }
}

interface BodyScope {
  readonly fname: string;
  readonly prefix: string;
  readonly args: ReadonlyMap<string, TfRef>;
  readonly body: ReadonlyMap<string, NodeDef>;
  readonly e: FormatErrors;
}

/** How many tensors an output arg stands for: a list's length from the node's attrs, else 1. */
function argLength(arg: OpDef['output_arg'][number], attr: Attrs): number {
  if (arg.number_attr) return attrInt(attr, arg.number_attr, 1);
  if (arg.type_list_attr) return attrTypes(attr, arg.type_list_attr)?.length ?? 1;
  return 1;
}

/** Output args of the multi-output ops modelbridge maps, for graphs without a stripped_op_list. */
const KNOWN_OUTPUTS: ReadonlyMap<string, OpDef> = new Map(
  Object.entries({
    FusedBatchNorm: ['y', 'batch_mean', 'batch_variance', 'reserve_space_1', 'reserve_space_2'],
    FusedBatchNormV2: ['y', 'batch_mean', 'batch_variance', 'reserve_space_1', 'reserve_space_2'],
    FusedBatchNormV3: ['y', 'batch_mean', 'batch_variance', 'reserve_space_1', 'reserve_space_2', 'reserve_space_3'],
  }).map(([op, names]) => [op, { name: op, input_arg: [], attr: [], output_arg: names.map((name) => ({ name, type: 0, type_attr: '', number_attr: '', type_list_attr: '' })) }]),
);
