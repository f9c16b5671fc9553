import { inferShapes } from '../../api/checks/shapes.js';
import { formatSize, memoryBudget } from '../../core/budget.js';
import { dtypeSize, isFloat, type DType } from '../../core/dtypes.js';
import { FormatError, UsageError } from '../../core/errors.js';
import { attr, DEFAULT_OPSET, type Attribute, type Graph, type Node, type ValueInfo } from '../../core/graph.js';
import type { Model, Signature } from '../../core/model.js';
import { escapeControl } from '../../core/printable.js';
import { allocate, Tensor } from '../../core/tensor.js';
import { Session } from '../../runtime/executor.js';
import type { TensorMetaInfo } from '../pt2/archive.js';
import type { Json, JsonObject } from '../pt2/json.js';
import { Call, Lowering, promote } from '../pt2/lowering.js';
import { ATEN_OPS } from '../pt2/ops.js';
import { liveNodes } from '../pt2/reader.js';
import { PyDict, PyObject, type PyValue } from '../pytorch/pickle-values.js';
import { TensorRef, TORCH_DTYPES } from '../pytorch/torch-types.js';
import type { ScriptArchive } from './archive.js';
import { SCRIPT_SCHEMAS, type ScriptSchema } from './schemas.js';
import { parseSource, SyntaxProblem, type ClassDef, type Expr, type Method, type SourceFile, type Stmt } from './syntax.js';

/**
 * Lowers a traced TorchScript program into the IR by walking its code, never running it: the
 * root module's `forward` is read statement by statement, submodule calls (`(self.fc1).forward(x)`)
 * are inlined from their class's source, attribute reads give the module's parameters and
 * buffers (initializers under their state-dict names), `torch.<op>(...)` calls are matched to
 * their ATen schema (schemas.ts) and lowered by the same table as torch.export programs
 * (src/formats/pt2/ops.ts), and Python ints (sizes, `int(...)`) are folded as constants.
 *
 * The pt2 lowerings read each value's dtype and shape, which torch.export records and TorchScript
 * does not: the graph inputs take the example inputs torch.jit.trace stored in the archive
 * (traced_inputs.pkl; the traced program is specialised to their shapes anyway), and each call's
 * result gets torch's result dtype (promotion rules below) and the shape the IR's static shape
 * inference derives for the nodes just emitted.
 */

/** Inlined method calls nested deeper than this are refused (a class calling itself). */
const MAX_CALL_DEPTH = 64;
/** Statements walked in all, across inlined calls: bounds the work a hostile archive can ask for. */
const MAX_STEPS = 2_000_000;

type Val =
  | { readonly k: 'tensor'; readonly t: string }
  /**
   * A Python number. `sym` names an int64 [1] IR value computing it at run time, for a size read
   * with torch.size(x, 0) and arithmetic on it: a size list holding one is written as a size
   * computed by the graph (aten's SymInt list), so a reshape follows the batch it is run with.
   */
  | { readonly k: 'num'; readonly v: number; readonly float: boolean; readonly sym?: string }
  | { readonly k: 'bool'; readonly v: boolean }
  | { readonly k: 'none' }
  | { readonly k: 'str'; readonly v: string }
  | { readonly k: 'list' | 'tuple'; readonly items: readonly Val[] }
  | { readonly k: 'module'; readonly obj: PyObject }
  | { readonly k: 'device' }
  | { readonly k: 'fn'; readonly path: string }
  | { readonly k: 'method'; readonly obj: PyObject; readonly name: string };

const NONE: Val = { k: 'none' };

/** The size-list arguments pt2's lowerings read with Call.sizes (a SymInt[] in the schema). */
const SIZE_ARGS = new Set(['size', 'shape']);

/** c10::ScalarType codes (the ints traced code passes as dtype) to ours. */
const C10_DTYPES: readonly (string | undefined)[] = ['uint8', 'int8', 'int16', 'int32', 'int64', 'float16', 'float32', 'float64', undefined, undefined, undefined, 'bool', undefined, undefined, undefined, 'bfloat16'];
/** Ours to schema.ScalarType (the code pt2's lowering reads from as_scalar_type). */
const PT2_SCALAR: Readonly<Partial<Record<DType, number>>> = { uint8: 1, int8: 2, int16: 3, int32: 4, int64: 5, float16: 6, float32: 7, float64: 8, bool: 12, bfloat16: 13 };

/** Ops whose result is bool, int64, or the dtype of one argument, rather than the promoted operands'. */
const BOOL_RESULT = new Set(['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'isnan', 'isinf', 'logical_not', 'logical_and', 'logical_or', 'logical_xor']);
const INT64_RESULT = new Set(['argmax', 'argmin']);
const FIRST_DTYPE: Readonly<Record<string, string>> = { embedding: 'weight', index: 'self', index_select: 'self', gather: 'self', new_ones: 'self', new_zeros: 'self', cat: 'tensors', conv1d: 'input', conv2d: 'input', conv3d: 'input', _convolution: 'input', linear: 'input', batch_norm: 'input', layer_norm: 'input' };

export interface LoweredProgram {
  readonly model: Model;
  /** The code records read, for inspect. */
  readonly records: readonly string[];
  /** ATen calls lowered, by op, with counts. */
  readonly ops: ReadonlyMap<string, number>;
}

/** The name of the run-time batch dimension of a traced program's inputs and outputs. */
export const SCRIPT_BATCH = 'batch';

/**
 * Lowers the program, and keeps its batch dynamic when that is what the traced code computes.
 * torch.jit.trace records one run: sizes read with torch.size become Python ints, so a traced
 * program may hold the example's batch (a view to [1, 8, 2, 16]) or compute it (a view to
 * [torch.size(x, 0), ...]). The lowering writes torch.size(x, 0) as a size the graph computes
 * (Shape) and never writes a size it can leave to the op (flatten, attention: Reshape's 0 and
 * -1). Whether that covers every node is checked rather than assumed: the program is lowered a
 * second time as if traced with a batch one larger, and when both graphs are the same node for
 * node and constant for constant, nothing in it depends on the batch, whose dim becomes
 * symbolic; otherwise the inputs keep the example's sizes (as torch.jit.trace specialised them).
 */
export function lowerScript(archive: ScriptArchive): LoweredProgram {
  const first = new ScriptLowering(archive).run();
  const graph = first.model.graph!;
  const batches = new Set(graph.inputs.map((i) => i.shape?.[0]));
  const [batch] = batches;
  if (batches.size !== 1 || typeof batch !== 'number' || graph.inputs.some((i) => !i.shape || i.shape.length === 0)) return first;
  let second: LoweredProgram;
  try {
    second = new ScriptLowering(archive, batch + 1).run();
  } catch (err) {
    // A program that cannot be lowered at another batch keeps the one it was traced with.
    if (err instanceof FormatError || err instanceof UsageError) return first;
    throw err;
  }
  const other = second.model.graph!;
  if (!sameGraph(graph, other)) return first;
  const dims = (mine: ValueInfo, theirs: ValueInfo | undefined): ValueInfo => {
    if (!mine.shape || !theirs?.shape) return mine;
    const shape = mine.shape.map((d, i) => (typeof d === 'number' && d === batch && theirs.shape![i] === batch + 1 ? SCRIPT_BATCH : d));
    return { ...mine, shape };
  };
  const dynamic: Graph = {
    ...graph,
    inputs: graph.inputs.map((x, i) => dims(x, other.inputs[i])),
    outputs: graph.outputs.map((x, i) => dims(x, other.outputs[i])),
  };
  return { ...first, model: { ...first.model, graph: dynamic } };
}

/** Two lowerings of one program are the same graph: nodes, attributes and constants alike. */
function sameGraph(a: Graph, b: Graph): boolean {
  if (a.nodes.length !== b.nodes.length || a.initializers.size !== b.initializers.size) return false;
  const sameAttr = (x: Attribute, y: Attribute): boolean => {
    if (x.type === 'tensor') return y.type === 'tensor' && sameTensor(x.value, y.value);
    // Traced code has no subgraphs; a lowering that made one is not compared further.
    if (x.type === 'graph' || x.type === 'graphs') return false;
    return JSON.stringify(x) === JSON.stringify(y);
  };
  for (let i = 0; i < a.nodes.length; i++) {
    const m = a.nodes[i]!;
    const n = b.nodes[i]!;
    if (m.op !== n.op || m.inputs.join('\0') !== n.inputs.join('\0') || m.outputs.join('\0') !== n.outputs.join('\0')) return false;
    const keys = Object.keys(m.attributes);
    if (keys.length !== Object.keys(n.attributes).length) return false;
    for (const k of keys) {
      const y = n.attributes[k];
      if (y === undefined || !sameAttr(m.attributes[k]!, y)) return false;
    }
  }
  for (const [name, t] of a.initializers) {
    const u = b.initializers.get(name);
    if (!u) return false;
    if (!sameTensor(t, u)) return false;
  }
  return true;
}

/** Same dtype, shape and bytes (the weights are the same objects; this compares the lowering's small constants). */
function sameTensor(a: Tensor, b: Tensor): boolean {
  if (a === b) return true;
  if (a.dtype !== b.dtype || a.shape.join(',') !== b.shape.join(',')) return false;
  const x = a.bytes();
  const y = b.bytes();
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

class ScriptLowering {
  private readonly e;
  private readonly meta = new Map<string, TensorMetaInfo>();
  private readonly lo: Lowering;
  private readonly sources = new Map<string, SourceFile>();
  private readonly weightNames = new Map<Tensor, string>();
  private readonly initializers = new Map<string, Tensor>();
  private readonly irMeta = new Map<string, TensorMetaInfo>();
  private readonly ops = new Map<string, number>();
  private counter = 0;
  private steps = 0;
  private depth = 0;
  /** Where the statement being lowered is: record and line, for every message. */
  private at = '';

  constructor(
    private readonly archive: ScriptArchive,
    /** Lower as if traced with this leading size of every input (lowerScript's batch check). */
    private readonly batch?: number,
  ) {
    this.e = archive.e;
    const usesGelu = archive.zip.entries.some((x) => x.name.endsWith('.py') && x.name.includes('/code/') && /torch\.gelu\(/.test(archive.source(x.name.slice(archive.folder.length)) ?? ''));
    // Gelu is an ONNX op from opset 20, as for torch.export programs.
    this.lo = new Lowering(usesGelu ? 20 : DEFAULT_OPSET, this.meta, new Set(), this.e, 'TorchScript code');
    for (const [name, t] of archive.weights) this.weightNames.set(t, name);
    for (const name of archive.weights.keys()) this.lo.reserve(name);
  }

  private fail(expected: string): never {
    return this.e.fail(this.at, expected);
  }

  /** A construct or op the lowering does not cover: one line naming the record, line and what. */
  private unsupported(what: string): never {
    return this.e.fail(this.at, `code modelbridge can lower (traced TorchScript); this file holds scripted code it cannot: ${what}`);
  }

  run(): LoweredProgram {
    const root = this.archive.root;
    const method = this.method(root, 'forward');
    const examples = this.archive.tracedInputs?.get('forward');
    this.at = method.where;
    if (examples === undefined) {
      // A scripted module stores no example inputs; its first construct outside the subset is the better answer.
      const construct = method.def.body.find((x) => x.kind === 'unsupported');
      if (construct?.kind === 'unsupported') {
        this.at = `record ${this.archive.folder}${method.record} line ${construct.line}`;
        this.unsupported(construct.construct);
      }
      this.fail('the example inputs torch.jit.trace stores (traced_inputs.pkl), which give the inputs\' dtypes and shapes; this archive has none (a scripted module, or traced with _store_inputs=False)');
    }
    const params = method.def.params.slice(1);
    if (params.length !== examples.length) this.fail(`one stored example input per parameter of forward (${params.length}), not ${examples.length}`);
    const inputs: ValueInfo[] = [];
    const frame = new Map<string, Val>([[method.def.params[0]?.name ?? 'self', { k: 'module', obj: root }]]);
    params.forEach((p, i) => {
      const ex = examples[i]!;
      if (!(ex instanceof TensorRef)) this.fail(`a tensor example for input ${JSON.stringify(p.name)} (only tensor inputs are read), not ${ex === null ? 'None' : typeof ex}`);
      const t = { dtype: ex.dtype.dtype ?? this.fail(`an input dtype modelbridge holds, not torch.${ex.dtype.name}`), shape: this.batch !== undefined && ex.size.length > 0 ? [this.batch, ...ex.size.slice(1)] : ex.size };
      const name = this.lo.unique(p.name);
      const torchName = this.fresh();
      this.lo.bind(torchName, name);
      const m: TensorMetaInfo = { dtype: t.dtype, shape: [...t.shape] };
      this.meta.set(torchName, m);
      this.irMeta.set(name, m);
      inputs.push({ name, dtype: t.dtype, shape: [...t.shape] });
      frame.set(p.name, { k: 'tensor', t: torchName });
    });
    const result = this.call(method, frame);

    const flat: Val[] = [];
    const flatten = (v: Val, depth: number): void => {
      if ((v.k === 'tuple' || v.k === 'list') && depth < 8) v.items.forEach((x) => flatten(x, depth + 1));
      else flat.push(v);
    };
    flatten(result, 0);
    const outputs: ValueInfo[] = [];
    const used = new Set<string>();
    const inputNames = new Set([...inputs.map((x) => x.name), ...this.initializers.keys()]);
    flat.forEach((v, i) => {
      if (v.k !== 'tensor') this.fail(`forward to return tensors (or tuples of them), not ${describe(v)} as output ${i}`);
      let name = this.lo.value(v.t, this.at);
      // A graph output must be computed by a node, once: a returned input or weight, or a value
      // returned twice, gets its own Identity.
      if (inputNames.has(name) || used.has(name) || this.lo.initializers.has(name)) {
        const copy = this.lo.unique(`output_${i}`);
        this.lo.node('Identity', [name], {}, [copy]);
        name = copy;
      }
      used.add(name);
      const m = this.meta.get(v.t) ?? this.fail(`a known dtype and shape for output ${i}`);
      outputs.push({ name, dtype: m.dtype, shape: [...m.shape] });
    });

    const live = liveNodes(this.lo.nodes, outputs.map((o) => o.name));
    const read = new Set(live.flatMap((n) => n.inputs));
    const initializers = new Map<string, Tensor>();
    for (const [k, t] of this.initializers) if (read.has(k)) initializers.set(k, t);
    for (const [k, t] of this.lo.initializers) if (read.has(k)) initializers.set(k, t);
    const graph: Graph = { inputs, outputs, initializers, nodes: live, opset: this.lo.opset };
    const sig: Signature = { name: 'default', inputs: new Map(inputs.map((x) => [x.name, x.name])), outputs: new Map(outputs.map((o) => [o.name, o.name])) };
    // A tensor the state dict holds under two names (GPT-2's lm_head.weight tied to wte.weight)
    // is one initializer, named after the attribute the code read: the model's weights are the
    // graph's names, and the other name is not a second tensor a writer would have to keep.
    const inGraph = new Set(initializers.values());
    const weights = new Map([...this.archive.weights].filter(([name, t]) => initializers.has(name) || !inGraph.has(t)));
    const model: Model = { format: 'pytorch', weights, graph, signatures: [sig], metadata: {} };
    return { model, records: [...this.sources.keys()], ops: this.ops };
  }

  private fresh(): string {
    return `%${++this.counter}`;
  }

  // ---- classes and methods ----

  /** The record and class of a module object: `__torch__.a.b.C` is class C in code/__torch__/a/b.py. */
  private classOf(obj: PyObject): { record: string; cls: ClassDef } {
    const module = obj.type.module;
    const record = `code/${module.split('.').join('/')}.py`;
    let source = this.sources.get(record);
    if (!source) {
      const text = this.archive.source(record);
      if (text === undefined) this.fail(`a record ${this.archive.folder}${record} with the code of class ${escapeControl(obj.type.path)}`);
      try {
        source = parseSource(text);
      } catch (err) {
        if (err instanceof SyntaxProblem) this.e.fail(`record ${this.archive.folder}${record} line ${err.line}`, err.expected);
        throw err;
      }
      this.sources.set(record, source);
    }
    const cls = source.classes.get(obj.type.name);
    if (!cls) this.fail(`class ${escapeControl(obj.type.name)} in ${this.archive.folder}${record}`);
    return { record, cls };
  }

  private method(obj: PyObject, name: string): { def: Method; record: string; where: string } {
    const { record, cls } = this.classOf(obj);
    const def = cls.methods.get(name);
    if (!def) this.fail(`a method ${escapeControl(name)} in class ${escapeControl(cls.name)} of ${this.archive.folder}${record}`);
    return { def, record, where: `record ${this.archive.folder}${record} line ${def.line}` };
  }

  private call(method: { def: Method; record: string }, frame: Map<string, Val>): Val {
    if (++this.depth > MAX_CALL_DEPTH) this.fail(`method calls nested at most ${MAX_CALL_DEPTH} deep`);
    try {
      for (const stmt of method.def.body) {
        this.at = `record ${this.archive.folder}${method.record} line ${stmt.line}`;
        if (++this.steps > MAX_STEPS) this.fail(`at most ${MAX_STEPS} statements to lower (inlined calls included)`);
        const r = this.statement(stmt, frame);
        if (r !== undefined) return r;
      }
      return NONE;
    } finally {
      this.depth--;
    }
  }

  private statement(stmt: Stmt, frame: Map<string, Val>): Val | undefined {
    switch (stmt.kind) {
      case 'unsupported':
        return this.unsupported(stmt.construct);
      case 'return':
        return stmt.value ? this.expr(stmt.value, frame) : NONE;
      case 'expr':
        this.expr(stmt.value, frame);
        return undefined;
      case 'assign': {
        const hint = stmt.targets.length === 1 && !stmt.unpack ? stmt.targets[0] : undefined;
        const value = this.expr(stmt.value, frame, hint);
        if (!stmt.unpack) {
          frame.set(stmt.targets[0]!, value);
          return undefined;
        }
        if ((value.k !== 'tuple' && value.k !== 'list') || value.items.length !== stmt.targets.length) {
          this.fail(`${stmt.targets.length} values to unpack, not ${describe(value)}`);
        }
        stmt.targets.forEach((t, i) => frame.set(t, value.items[i]!));
        return undefined;
      }
    }
  }

  // ---- expressions ----

  private expr(e: Expr, frame: Map<string, Val>, hint?: string): Val {
    switch (e.kind) {
      case 'number':
        return { k: 'num', v: e.value, float: e.float };
      case 'string':
        return { k: 'str', v: e.value };
      case 'constant':
        return e.value === null ? NONE : { k: 'bool', v: e.value };
      case 'tuple':
      case 'list':
        return { k: e.kind, items: e.items.map((x) => this.expr(x, frame)) };
      case 'name': {
        const v = frame.get(e.id);
        if (v) return v;
        if (['torch', 'ops', 'CONSTANTS', 'int', 'float', 'bool', 'getattr', 'annotate', 'len', 'uninitialized', 'Tensor', 'number', 'List', 'Optional', 'Tuple'].includes(e.id)) return { k: 'fn', path: e.id };
        return this.fail(`a name defined before it is used, not ${JSON.stringify(escapeControl(e.id))}`);
      }
      case 'attribute': {
        const target = this.expr(e.target, frame);
        return this.attribute(target, e.attr);
      }
      case 'subscript': {
        const target = this.expr(e.target, frame);
        // A type (List[int], Optional[Tensor]) only appears as annotate()'s first argument.
        if (target.k === 'fn') return target;
        const index = this.expr(e.index, frame);
        if ((target.k === 'tuple' || target.k === 'list') && index.k === 'num' && !index.float) {
          const i = index.v < 0 ? target.items.length + index.v : index.v;
          return target.items[i] ?? this.fail(`an index within the ${target.items.length} items, not ${index.v}`);
        }
        return this.unsupported(`subscripting ${describe(target)}`);
      }
      case 'unary': {
        const v = this.expr(e.operand, frame);
        if (e.op === '-' && v.k === 'num') return { k: 'num', v: -v.v, float: v.float };
        if (e.op === '+' && v.k === 'num') return v;
        if (e.op === 'not' && v.k === 'bool') return { k: 'bool', v: !v.v };
        return this.unsupported(`the operator ${e.op} on ${describe(v)}`);
      }
      case 'binary': {
        const a = this.expr(e.left, frame);
        const b = this.expr(e.right, frame);
        if (a.k === 'num' && b.k === 'num') {
          const folded = this.fold(e.op, a, b);
          if (folded) return folded;
        }
        return this.unsupported(`the operator ${e.op} on ${describe(a)} and ${describe(b)}`);
      }
      case 'call':
        return this.callExpr(e, frame, hint);
    }
  }

  private attribute(target: Val, name: string): Val {
    if (target.k === 'fn') {
      if (target.path === 'CONSTANTS') return this.constant(name);
      return { k: 'fn', path: `${target.path}.${name}` };
    }
    if (target.k === 'module') {
      const state = target.obj.state;
      const value = state instanceof PyDict ? state.get(name) : undefined;
      if (value !== undefined) return this.fromPy(value, name);
      const { cls } = this.classOf(target.obj);
      if (cls.methods.has(name)) return { k: 'method', obj: target.obj, name };
      return this.fail(`an attribute ${JSON.stringify(escapeControl(name))} of module ${JSON.stringify(this.archive.paths.get(target.obj) ?? '?')}`);
    }
    return this.unsupported(`the attribute ${escapeControl(name)} of ${describe(target)}`);
  }

  /** A module attribute: a submodule, a parameter or buffer, or a plain Python value. */
  private fromPy(value: PyValue, name: string): Val {
    if (value instanceof PyObject) return { k: 'module', obj: value };
    if (value instanceof TensorRef) {
      const t = this.archive.byRef.get(value) ?? this.fail(`the tensor of attribute ${escapeControl(name)}`);
      return this.weight(t, this.weightNames.get(t) ?? name);
    }
    if (value === null) return NONE;
    if (typeof value === 'boolean') return { k: 'bool', v: value };
    if (typeof value === 'number') return { k: 'num', v: value, float: !Number.isInteger(value) };
    if (typeof value === 'string') return { k: 'str', v: value };
    return this.unsupported(`the module attribute ${escapeControl(name)} (not a tensor, submodule or number)`);
  }

  private readonly weightVals = new Map<Tensor, Val>();
  /** Values torch.zeros made: an RNN's default initial state, which ONNX's LSTM/GRU assume when left out. */
  private readonly zeroValues = new Set<string>();
  /** The run-time sizes (int64 [1] IR values) with their values in this trace, for the shape probes. */
  private readonly sizeValues = new Map<string, number>();

  private weight(t: Tensor, name: string): Val {
    const known = this.weightVals.get(t);
    if (known) return known;
    const torchName = this.fresh();
    const irName = this.initializers.has(name) ? this.lo.unique(name) : name;
    this.lo.bind(torchName, irName);
    this.initializers.set(irName, t);
    const m: TensorMetaInfo = { dtype: t.dtype, shape: [...t.shape] };
    this.meta.set(torchName, m);
    this.irMeta.set(irName, m);
    const v: Val = { k: 'tensor', t: torchName };
    this.weightVals.set(t, v);
    return v;
  }

  /** CONSTANTS.c<i>: a 0-d tensor is a number (torch does not promote with it); others are initializers. */
  private constant(name: string): Val {
    const m = /^c(\d+)$/.exec(name);
    const value = m ? this.archive.constants[Number(m[1])] : undefined;
    if (value === undefined) return this.fail(`a constant ${escapeControl(name)} in constants.pkl (it holds ${this.archive.constants.length})`);
    if (value instanceof TensorRef) {
      const t = this.archive.constantTensors.get(value)!;
      if (t.shape.length === 0) {
        const x = t.toNumbers()[0]!;
        if (t.dtype === 'bool') return { k: 'bool', v: x !== 0 };
        return { k: 'num', v: x, float: isFloat(t.dtype) };
      }
      return this.weight(t, `CONSTANTS.${name}`);
    }
    return this.fromPy(value, `CONSTANTS.${name}`);
  }

  private callExpr(e: Expr & { kind: 'call' }, frame: Map<string, Val>, hint?: string): Val {
    const fn = this.expr(e.fn, frame);
    const args = e.args.map((a) => this.expr(a, frame));
    const keywords = e.keywords.map(([k, v]) => [k, this.expr(v, frame)] as const);
    if (fn.k === 'method') {
      if (keywords.length) this.unsupported('keyword arguments to a module method');
      const m = this.method(fn.obj, fn.name);
      const names = m.def.params.map((p) => p.name);
      if (names.length !== args.length + 1) this.fail(`${names.length - 1} arguments to ${escapeControl(fn.name)} of ${escapeControl(fn.obj.type.path)}, not ${args.length}`);
      const inner = new Map<string, Val>([[names[0]!, { k: 'module', obj: fn.obj }]]);
      args.forEach((a, i) => inner.set(names[i + 1]!, a));
      const saved = this.at;
      const r = this.call(m, inner);
      this.at = saved;
      return r;
    }
    if (fn.k !== 'fn') return this.unsupported(`a call of ${describe(fn)}`);
    const num = (v: Val | undefined): number => (v?.k === 'num' ? v.v : v?.k === 'bool' ? (v.v ? 1 : 0) : this.unsupported(`${fn.path}() of ${describe(v ?? NONE)} (only of a number folded from static sizes)`));
    switch (fn.path) {
      case 'getattr': {
        const [target, name] = args;
        if (target?.k !== 'module' || name?.k !== 'str') return this.fail('getattr(self, "name")');
        return this.attribute(target, name.v);
      }
      case 'int':
        // int() of a size keeps it a size (and computed at run time when it is one).
        if (args[0]?.k === 'num' && !args[0].float) return args[0];
        return { k: 'num', v: Math.trunc(num(args[0])), float: false };
      case 'float':
        return { k: 'num', v: num(args[0]), float: true };
      case 'bool':
        return { k: 'bool', v: num(args[0]) !== 0 };
      case 'annotate':
        return args[1] ?? NONE;
      case 'torch.device':
        return { k: 'device' };
      case 'ops.prim.NumToTensor':
        // A size as a 0-d tensor: kept as the number it is, folded where numbers meet.
        if (args[0]?.k === 'num') return args[0];
        return this.unsupported(`ops.prim.NumToTensor of ${describe(args[0] ?? NONE)}`);
    }
    const op = fn.path.startsWith('torch.') ? fn.path.slice(6) : fn.path.startsWith('ops.aten.') ? fn.path.slice(9) : undefined;
    if (op === undefined || op.includes('.')) return this.unsupported(`a call of ${escapeControl(fn.path)}`);
    return this.aten(op, args, keywords, frame, e, hint);
  }

  /**
   * Python arithmetic on numbers, folded; when an operand is a run-time size the result is one
   * too (the same arithmetic on int64 [1] values). Other results keep only their value: a graph
   * that needs it then holds a constant depending on the example inputs, which lowerScript's
   * second lowering notices.
   */
  private fold(op: string, a: Val & { k: 'num' }, b: Val & { k: 'num' }): Val | undefined {
    const r = fold(op, a, b);
    if (!r || r.k !== 'num' || (!a.sym && !b.sym) || r.float) return r;
    const irOp = op === '+' ? 'Add' : op === '-' ? 'Sub' : op === '*' ? 'Mul' : op === '//' && a.v >= 0 && b.v > 0 ? 'Div' : undefined;
    if (!irOp) return r;
    const ir = (x: Val & { k: 'num' }) => (x.sym ? this.lo.value(x.sym, this.at) : this.lo.ints([x.v]));
    const sym = this.fresh();
    const name = this.lo.unique('size');
    this.lo.node(irOp, [ir(a), ir(b)], {}, [name]);
    this.lo.bind(sym, name);
    this.irMeta.set(name, { dtype: 'int64', shape: [1] });
    this.sizeValues.set(name, r.v);
    return { k: 'num', v: r.v, float: false, sym };
  }

  // ---- ATen calls ----

  private aten(name: string, args: readonly Val[], keywords: readonly (readonly [string, Val])[], frame: Map<string, Val>, e: Expr & { kind: 'call' }, hint?: string): Val {
    // In-place variants (relu_, add_) compute what the functional op does; the name of the
    // mutated tensor is rebound to the result below so later reads see it.
    const inPlace = name.endsWith('_') && !name.endsWith('__');
    const op = inPlace ? name.slice(0, -1) : name;
    const result = this.atenValue(op, args, keywords, hint);
    const first = e.args[0];
    if (inPlace && first?.kind === 'name' && result.k === 'tensor') frame.set(first.id, result);
    return result;
  }

  private atenValue(op: string, args: readonly Val[], keywords: readonly (readonly [string, Val])[], hint?: string): Val {
    if (op === 'size') {
      const [x, dim] = args;
      if (x?.k !== 'tensor' || dim?.k !== 'num') return this.unsupported('torch.size(tensor) without a dim');
      const shape = this.metaOf(x).shape;
      const d = shape[dim.v < 0 ? dim.v + shape.length : dim.v];
      if (typeof d !== 'number') return this.fail(`a static size at dim ${dim.v} of a rank-${shape.length} tensor`);
      const axis = dim.v < 0 ? dim.v + shape.length : dim.v;
      if (axis !== 0) return { k: 'num', v: d, float: false };
      // The leading (batch) size is read from the tensor at run time as well: see lowerScript.
      const sym = this.fresh();
      const name = this.lo.unique('size');
      this.lo.node('Shape', [this.lo.value(x.t, this.at)], { start: attr.int(0), end: attr.int(1) }, [name]);
      this.lo.bind(sym, name);
      this.irMeta.set(name, { dtype: 'int64', shape: [1] });
      this.sizeValues.set(name, d);
      return { k: 'num', v: d, float: false, sym };
    }
    // Arithmetic on folded sizes (NumToTensor values) stays folded.
    if (['add', 'sub', 'mul', 'div', 'floor_divide', 'remainder'].includes(op) && args.length >= 2 && args[0]!.k === 'num' && args[1]!.k === 'num') {
      const pyOp = { add: '+', sub: '-', mul: '*', div: '/', floor_divide: '//', remainder: '%' }[op]!;
      const r = this.fold(pyOp, args[0] as Val & { k: 'num' }, args[1] as Val & { k: 'num' });
      if (r) return r;
    }
    if (op === 'flatten') return this.flatten(args, keywords, hint);
    if (op === 'to' || op === 'type_as') return this.to(op, args, keywords, hint);
    if (op === 'arange') return this.arange(args, keywords, hint);
    if (op === '_native_multi_head_attention') return this.multiHeadAttention(args, keywords, hint);
    if (op === 'split' || op === 'split_with_sizes' || op === 'chunk' || op === 'unbind') return this.split(op, args, keywords, hint);
    if (op === 'lstm' || op === 'gru') return this.recurrent(op, args, keywords, hint);

    const schema = Object.prototype.hasOwnProperty.call(SCRIPT_SCHEMAS, op) ? SCRIPT_SCHEMAS[op] : undefined;
    if (!schema) return this.unsupported(`the op torch.${escapeControl(op)}, which modelbridge does not map (the README's TorchScript section lists what it does)`);
    const named = this.bind(op, schema, args, keywords);
    if (op === 'slice') {
      // Traced code slices whole dimensions (`torch.slice(x, 0, 0, 9223372036854775807)`): that
      // is the tensor itself, whatever its size, so no node depends on the example's sizes.
      const x = named.get('self');
      const get = (k: string, d: number) => {
        const v = named.get(k);
        return v === undefined || v.k === 'none' ? d : v.k === 'num' && !v.float ? v.v : undefined;
      };
      if (x?.k === 'tensor') {
        const shape = this.metaOf(x).shape;
        const dim = get('dim', 0);
        const size = dim === undefined ? undefined : shape[dim < 0 ? dim + shape.length : dim];
        const [start, end, step] = [get('start', 0), get('end', Number.MAX_SAFE_INTEGER), get('step', 1)];
        if (typeof size === 'number' && start === 0 && step === 1 && end !== undefined && end >= size) return x;
      }
    }
    if (op === 'batch_norm' && named.get('training')?.k === 'bool' && (named.get('training') as { v: boolean }).v) this.fail('batch_norm in eval mode (training=False)');
    if ((op === 'softmax' || op === 'log_softmax') && named.get('dtype') && named.get('dtype')!.k !== 'none') this.unsupported(`torch.${op} with a dtype`);
    let target = schema.target;
    if (schema.scalar && named.get(schema.scalar.on)?.k === 'num') target = schema.scalar.target;
    for (const [k, v] of Object.entries(schema.fixed ?? {})) named.set(k, typeof v === 'string' ? { k: 'str', v } : typeof v === 'boolean' ? { k: 'bool', v } : { k: 'num', v, float: false });
    const result = this.emit(op, target, named, this.resultDtype(op, named), hint, op === 'index' ? this.indexShape(named) : undefined);
    if ((op === 'zeros' || op === 'new_zeros' || op === 'zeros_like') && result.k === 'tensor') this.zeroValues.add(result.t);
    return result;
  }

  /**
   * torch.index's result shape (pt2's lowering of several index tensors reads it): the index
   * tensors broadcast, then the dimensions they do not index. Only for leading, adjacent indices,
   * the one layout that lowering maps.
   */
  private indexShape(named: ReadonlyMap<string, Val>): number[] | undefined {
    const x = named.get('self');
    const list = named.get('indices');
    if (x?.k !== 'tensor' || (list?.k !== 'list' && list?.k !== 'tuple') || list.items.length < 2 || list.items.some((v) => v.k !== 'tensor')) return undefined;
    const shapes = list.items.map((v) => this.metaOf(v as Val & { k: 'tensor' }).shape);
    const rank = Math.max(...shapes.map((sh) => sh.length));
    const out: number[] = [];
    for (let i = 0; i < rank; i++) {
      let d = 1;
      for (const sh of shapes) {
        const v = sh[sh.length - rank + i] ?? 1;
        if (typeof v !== 'number') return undefined;
        if (v !== 1) d = v;
      }
      out.push(d);
    }
    const rest = this.metaOf(x).shape.slice(list.items.length);
    if (rest.some((d) => typeof d !== 'number')) return undefined;
    return [...out, ...(rest as number[])];
  }

  /** Positional arguments take the schema's names in order; keywords keep theirs. */
  private bind(op: string, schema: ScriptSchema, args: readonly Val[], keywords: readonly (readonly [string, Val])[]): Map<string, Val> {
    if (args.length > schema.args.length) this.fail(`at most ${schema.args.length} arguments to torch.${op} (${schema.args.join(', ')}), not ${args.length}`);
    const named = new Map<string, Val>();
    args.forEach((a, i) => named.set(schema.args[i]!, a));
    for (const [k, v] of keywords) {
      if (!schema.args.includes(k) && k !== 'rounding_mode') this.fail(`torch.${op} arguments named ${schema.args.join(', ')}, not ${escapeControl(k)}`);
      named.set(k, v);
    }
    return named;
  }

  private metaOf(v: Val & { k: 'tensor' }): TensorMetaInfo {
    return this.meta.get(v.t) ?? this.fail('a tensor of known dtype and shape (the op that computed it has no shape rule in modelbridge)');
  }

  /**
   * torch's result dtype: the operands' promoted dtype, a 0-d tensor or a number taking part only
   * when it is of a higher category (a float number lifts an int tensor to float32); comparisons
   * give bool, argmax int64, creation ops their dtype argument.
   */
  private resultDtype(op: string, named: ReadonlyMap<string, Val>): DType {
    const explicit = named.get('dtype');
    if (explicit && explicit.k === 'num') return this.c10Dtype(explicit.v);
    if (BOOL_RESULT.has(op)) return 'bool';
    if (INT64_RESULT.has(op)) return 'int64';
    const pick = FIRST_DTYPE[op];
    if (pick) {
      const v = named.get(pick);
      if (v?.k === 'tensor') return this.metaOf(v).dtype;
      if (v?.k === 'list' && v.items[0]?.k === 'tensor') return this.metaOf(v.items[0]).dtype;
    }
    if (op === 'zeros' || op === 'ones') return 'float32';
    if (op === 'full') return named.get('fill_value')?.k === 'num' && !(named.get('fill_value') as { float: boolean }).float ? 'int64' : 'float32';
    const operands = ['self', 'other', 'input', 'exponent', 'min', 'max', 'mat1', 'mat2', 'query'].map((k) => named.get(k)).filter((v): v is Val => v !== undefined);
    let dims: DType | undefined;
    let zeroDim: DType | undefined;
    let floatNumber = false;
    let intNumber = false;
    for (const v of operands) {
      if (v.k === 'tensor') {
        const m = this.metaOf(v);
        if (m.shape.length === 0) zeroDim = zeroDim ? promote(zeroDim, m.dtype) : m.dtype;
        else dims = dims ? promote(dims, m.dtype) : m.dtype;
      } else if (v.k === 'num') {
        if (v.float) floatNumber = true;
        else intNumber = true;
      }
    }
    const category = (d: DType) => (d === 'bool' ? 0 : isFloat(d) ? 2 : 1);
    let dtype = dims ?? zeroDim ?? (floatNumber ? 'float32' : 'int64');
    if (dims && zeroDim && category(zeroDim) > category(dims)) dtype = zeroDim;
    if (floatNumber && !isFloat(dtype)) dtype = 'float32';
    else if (intNumber && dtype === 'bool') dtype = 'int64';
    if (op === 'div' && !isFloat(dtype)) dtype = 'float32';
    return dtype;
  }

  private c10Dtype(code: number): DType {
    const name = C10_DTYPES[code];
    const d = name === undefined ? undefined : TORCH_DTYPES.get(name)?.dtype;
    return d ?? this.fail(`a dtype modelbridge holds (c10 ScalarType 0-7, 11, 15), not ${code}`);
  }

  private json(v: Val, key: string): Json {
    switch (v.k) {
      case 'tensor':
        return { as_tensor: { name: v.t } };
      case 'num':
        if (key === 'dtype') return { as_scalar_type: PT2_SCALAR[this.c10Dtype(v.v)] ?? this.fail(`a dtype for argument dtype, not ${v.v}`) };
        return v.float ? { as_float: v.v } : { as_int: v.v };
      case 'bool':
        return { as_bool: v.v };
      case 'none':
        return { as_none: true };
      case 'str':
        return { as_string: v.v };
      case 'device':
        return { as_device: { type: 'cpu' } };
      case 'list':
      case 'tuple': {
        const items = v.items;
        if (items.length > 0 && items.every((x) => x.k === 'tensor')) return { as_tensors: items.map((x) => ({ name: (x as { t: string }).t })) };
        if (items.some((x) => x.k === 'tensor') && items.every((x) => x.k === 'tensor' || x.k === 'none')) {
          return { as_optional_tensors: items.map((x): Json => (x.k === 'tensor' ? { as_tensor: { name: x.t } } : { as_none: true })) };
        }
        if (items.every((x) => x.k === 'num' && !x.float)) {
          const nums = items as (Val & { k: 'num' })[];
          // A size list (view, reshape, expand, zeros...) holding a run-time size: as torch.export writes a SymInt list.
          if (SIZE_ARGS.has(key) && nums.some((x) => x.sym)) return { as_sym_ints: nums.map((x): Json => (x.sym ? { as_name: x.sym } : { as_int: x.v })) };
          return { as_ints: nums.map((x) => x.v) };
        }
        if (items.every((x) => x.k === 'num')) return { as_floats: items.map((x) => (x as { v: number }).v) };
        if (items.every((x) => x.k === 'bool')) return { as_bools: items.map((x) => (x as { v: boolean }).v) };
        return this.unsupported(`a list of ${items.map(describe).join(', ')} as argument ${key}`);
      }
      default:
        return this.unsupported(`${describe(v)} as argument ${key}`);
    }
  }

  /**
   * One ATen call through pt2's lowering table: its arguments as the torch.export JSON would give
   * them, the result's dtype set beforehand (the lowerings cast to it), its shape inferred from
   * the IR nodes the lowering emitted.
   */
  private emit(op: string, target: string, named: ReadonlyMap<string, Val>, dtype: DType, hint?: string, shape?: readonly number[]): Val {
    const lower = Object.prototype.hasOwnProperty.call(ATEN_OPS, target) ? ATEN_OPS[target] : undefined;
    if (!lower) return this.unsupported(`the op torch.${escapeControl(op)} (${target} is not mapped)`);
    const out = this.fresh();
    this.lo.prefer(out, hint ?? op);
    this.meta.set(out, { dtype, shape: shape ?? [] });
    const inputs: JsonObject[] = [...named].map(([k, v]) => ({ name: k, arg: this.json(v, k) }));
    const node: JsonObject = { target, inputs, outputs: [{ as_tensor: { name: out } }] };
    const before = this.lo.nodes.length;
    const where = `${this.at} (torch.${op})`;
    const call = new Call(this.lo, target, out, node, where);
    lower(call);
    this.ops.set(`torch.${op}`, (this.ops.get(`torch.${op}`) ?? 0) + 1);
    const irName = call.out();
    if (shape) {
      this.irMeta.set(irName, { dtype, shape });
      return { k: 'tensor', t: out };
    }
    const inferred = this.infer(this.lo.nodes.slice(before), irName);
    if (!inferred) {
      this.meta.delete(out);
      return { k: 'tensor', t: out };
    }
    const m: TensorMetaInfo = { dtype: inferred.dtype ?? dtype, shape: inferred.shape };
    this.meta.set(out, m);
    this.irMeta.set(irName, m);
    return { k: 'tensor', t: out };
  }

  /** The dtype and shape of `name` from static inference over the nodes one call emitted. */
  private infer(nodes: readonly Node[], name: string): { dtype: DType | undefined; shape: readonly (number | string)[] } | undefined {
    const produced = new Set(nodes.flatMap((n) => n.outputs));
    const inputs: ValueInfo[] = [];
    const initializers = new Map<string, Tensor>();
    for (const n of nodes) {
      for (const x of n.inputs) {
        if (x === '' || produced.has(x) || initializers.has(x)) continue;
        const t = this.initializers.get(x) ?? this.lo.initializers.get(x);
        if (t) initializers.set(x, t);
        else {
          const m = this.irMeta.get(x);
          if (m) inputs.push({ name: x, dtype: m.dtype, shape: m.shape });
        }
      }
    }
    const graph: Graph = { inputs, outputs: [], initializers, nodes, opset: this.lo.opset };
    const info = inferShapes(graph).values.get(name);
    if (info && info.shape !== null && info.shape.every((d) => typeof d === 'number')) return { dtype: info.dtype, shape: info.shape as number[] };
    return this.probe(graph, name);
  }

  /**
   * Where static inference has no rule (HardSwish, Clip, TopK...), the runtime runs the few
   * nodes of this one call on zeros of the operands' (static) shapes and the result's shape is
   * read off; the weights and folded constants take part with their values.
   */
  private probe(graph: Graph, name: string): { dtype: DType; shape: readonly number[] } | undefined {
    if (graph.inputs.some((i) => i.shape === null || i.shape.some((d) => typeof d !== 'number') || i.dtype === 'string')) return undefined;
    // The operands' sizes come from the file (the traced inputs' declared shapes): checked
    // against the memory budget before allocating. Each probe's memory is freed before the next,
    // so probes are checked one by one rather than added up as a read's expansions are.
    const counts = graph.inputs.map((i) => (i.shape as number[]).reduce((a, b) => a * b, 1));
    const bytes = graph.inputs.reduce((sum, i, k) => sum + counts[k]! * Math.max(1, dtypeSize(i.dtype)), 0);
    if (!(bytes <= memoryBudget())) {
      this.fail(`operands within the memory budget of ${formatSize(memoryBudget())} to derive a result shape from (set MODELBRIDGE_MAX_MEMORY to allow more), not ${Number.isFinite(bytes) ? formatSize(bytes) : 'an unbounded size'}`);
    }
    const feeds: Record<string, Tensor> = {};
    graph.inputs.forEach((i, k) => {
      // A run-time size takes its traced value (a Reshape to it must see the real sizes).
      const size = this.sizeValues.get(i.name);
      feeds[i.name] = size !== undefined ? Tensor.from('int64', [1], [size]) : Tensor.fromArray(i.dtype, i.shape as number[], allocate(i.dtype, counts[k]!));
    });
    try {
      const session = new Session({ ...graph, outputs: [{ name, dtype: 'float32', shape: null }] }, { once: true });
      const out = session.run(feeds)[name];
      return out ? { dtype: out.dtype, shape: [...out.shape] } : undefined;
    } catch (err) {
      // An op the runtime refuses leaves the shape unknown; a later op needing it says so.
      if (err instanceof UsageError || err instanceof FormatError) return undefined;
      throw err;
    }
  }

  /** torch.flatten: a Reshape to the sizes torch computes (pt2's lowering reads them from the program). */
  private flatten(args: readonly Val[], keywords: readonly (readonly [string, Val])[], hint?: string): Val {
    const named = this.bind('flatten', { target: '', args: ['self', 'start_dim', 'end_dim'] }, args, keywords);
    const x = named.get('self');
    if (x?.k !== 'tensor') return this.fail('a tensor to flatten');
    const m = this.metaOf(x);
    const rank = m.shape.length;
    const norm = (v: Val | undefined, d: number) => {
      const n = v?.k === 'num' ? v.v : d;
      return n < 0 ? n + rank : n;
    };
    const start = norm(named.get('start_dim'), 0);
    const end = norm(named.get('end_dim'), -1);
    if (rank === 0) return this.emit('flatten', 'aten.reshape.default', new Map<string, Val>([['self', x], ['shape', { k: 'list', items: [{ k: 'num', v: 1, float: false }] }]]), m.dtype, hint, [1]);
    const dims = m.shape.map((d) => (typeof d === 'number' ? d : this.fail('static sizes to flatten')));
    const out = [...dims.slice(0, start), dims.slice(start, end + 1).reduce((a, b) => a * b, 1), ...dims.slice(end + 1)];
    if (dims.includes(0)) {
      const items: Val[] = out.map((v) => ({ k: 'num', v, float: false }));
      return this.emit('flatten', 'aten.reshape.default', new Map<string, Val>([['self', x], ['shape', { k: 'list', items }]]), m.dtype, hint, out);
    }
    // ONNX's Reshape copies a 0 from the input and infers the -1: the leading sizes (the batch)
    // are not written into the graph, which then runs at any batch.
    const torchName = this.fresh();
    const name = this.lo.unique(hint ?? 'flatten');
    this.lo.node('Reshape', [this.lo.value(x.t, this.at), this.lo.ints([...new Array<number>(start).fill(0), -1, ...dims.slice(end + 1)])], {}, [name]);
    this.lo.bind(torchName, name);
    const meta: TensorMetaInfo = { dtype: m.dtype, shape: out };
    this.meta.set(torchName, meta);
    this.irMeta.set(name, meta);
    this.ops.set('torch.flatten', (this.ops.get('torch.flatten') ?? 0) + 1);
    return { k: 'tensor', t: torchName };
  }

  /**
   * torch.split / split_with_sizes / chunk / unbind: a list of tensors, which traced code unpacks
   * (`a, b, c, = _32`, prim::ListUnpack) or indexes. All four are aten.split_with_sizes with the
   * sizes torch computes from the static length of the split dimension (chunk: pieces of
   * ceil(length / chunks), the last one shorter, as torch cuts them); unbind squeezes each piece.
   */
  private split(op: string, args: readonly Val[], keywords: readonly (readonly [string, Val])[], hint?: string): Val {
    const second = op === 'chunk' ? ['chunks'] : op === 'unbind' ? [] : op === 'split_with_sizes' ? ['split_sizes'] : ['split_size'];
    const named = this.bind(op, { target: '', args: ['self', ...second, 'dim'] }, args, keywords);
    const x = named.get('self');
    if (x?.k !== 'tensor') return this.fail(`a tensor to torch.${op}`);
    const m = this.metaOf(x);
    const rank = m.shape.length;
    const dimVal = named.get('dim');
    const dim0 = dimVal === undefined || dimVal.k === 'none' ? 0 : dimVal.k === 'num' && !dimVal.float ? dimVal.v : this.fail(`an int dim for torch.${op}`);
    const dim = dim0 < 0 ? dim0 + rank : dim0;
    const length = m.shape[dim];
    if (!(dim >= 0 && dim < rank) || typeof length !== 'number') return this.fail(`a static size along dim ${dim0} of the rank-${rank} tensor torch.${op} cuts`);
    const int = (v: Val | undefined, what: string): number => (v?.k === 'num' && !v.float ? v.v : this.fail(`an int ${what} for torch.${op}, not ${describe(v ?? NONE)}`));
    let parts: number[];
    const cut = (each: number): number[] => {
      if (!(each >= 1)) return this.fail(`pieces of at least 1 for torch.${op}, not ${each}`);
      // One piece per `each` elements: bounded by the (static, already allocated) length.
      const out: number[] = [];
      for (let left = length; left > 0; left -= each) out.push(Math.min(each, left));
      return out.length ? out : [0];
    };
    const sizes = named.get(second[0] ?? '');
    if (op === 'unbind') parts = new Array<number>(length).fill(1);
    else if (op === 'chunk') parts = cut(Math.ceil(length / Math.max(1, int(sizes, 'chunks'))));
    else if (sizes?.k === 'list' || sizes?.k === 'tuple') parts = sizes.items.map((v) => int(v, 'split size'));
    else parts = cut(int(sizes, 'split_size'));
    if (parts.reduce((a, b) => a + b, 0) !== length) return this.fail(`split sizes that add up to the length ${length} of dim ${dim0}, not ${JSON.stringify(parts)}`);
    const outs = parts.map(() => this.fresh());
    outs.forEach((t, i) => {
      this.lo.prefer(t, `${hint ?? op}_${i}`);
      const shape = [...m.shape];
      shape[dim] = parts[i]!;
      this.meta.set(t, { dtype: m.dtype, shape });
    });
    const node: JsonObject = {
      target: 'aten.split_with_sizes.default',
      inputs: [{ name: 'self', arg: this.json(x, 'self') }, { name: 'split_sizes', arg: { as_ints: parts } }, { name: 'dim', arg: { as_int: dim } }],
      outputs: [{ as_tensors: outs.map((name) => ({ name })) }],
    };
    const call = new Call(this.lo, 'aten.split_with_sizes.default', outs[0]!, node, `${this.at} (torch.${op})`);
    ATEN_OPS['aten.split_with_sizes.default']!(call);
    this.ops.set(`torch.${op}`, (this.ops.get(`torch.${op}`) ?? 0) + 1);
    outs.forEach((t, i) => this.irMeta.set(call.outputs[i]!, this.meta.get(t)!));
    const items: Val[] = outs.map((t) => ({ k: 'tensor', t }));
    if (op !== 'unbind') return { k: 'list', items };
    const squeezed = items.map((v) => this.emit('unbind', 'aten.squeeze.dims', new Map<string, Val>([['self', v], ['dim', { k: 'list', items: [{ k: 'num', v: dim, float: false }] }]]), m.dtype, hint));
    return { k: 'list', items: squeezed };
  }

  /**
   * torch.lstm / torch.gru (what a traced nn.LSTM / nn.GRU calls: aten::lstm.input, gru.input) as
   * one ONNX LSTM/GRU node per layer, as the module spec lowers nn.LSTM (src/module/layers.ts).
   * torch keeps the gates as row blocks in another order (LSTM i,f,g,o; GRU r,z,n) than ONNX
   * (i,o,f,c; z,r,h): a Gather of the rows reorders them in the graph, so the weights stay the
   * state dict's tensors. torch's GRU resets after the recurrent product (linear_before_reset=1).
   * The initial states are left out when they are the zeros nn.LSTM makes for a call without hx.
   */
  private recurrent(op: 'lstm' | 'gru', args: readonly Val[], keywords: readonly (readonly [string, Val])[], hint?: string): Val {
    const kind = op === 'lstm' ? 'LSTM' : 'GRU';
    const named = this.bind(op, { target: '', args: 'input hx params has_biases num_layers dropout train bidirectional batch_first'.split(' ') }, args, keywords);
    const flag = (k: string): boolean => {
      const v = named.get(k);
      return v?.k === 'bool' ? v.v : v?.k === 'num' ? v.v !== 0 : this.fail(`a bool ${k} for torch.${op}`);
    };
    const x = named.get('input');
    if (x?.k !== 'tensor') return this.fail(`a tensor input to torch.${op}`);
    if (flag('train')) return this.fail(`torch.${op} in eval mode (train=False)`);
    const layersVal = named.get('num_layers');
    const layers = layersVal?.k === 'num' && !layersVal.float && layersVal.v >= 1 ? layersVal.v : this.fail(`a positive int num_layers for torch.${op}`);
    const directions = flag('bidirectional') ? 2 : 1;
    const biases = flag('has_biases');
    const batchFirst = flag('batch_first');
    const m = this.metaOf(x);
    const [d0, d1, features] = m.shape;
    if (m.shape.length !== 3 || typeof d0 !== 'number' || typeof d1 !== 'number' || typeof features !== 'number') return this.fail(`a 3-D input of static sizes to torch.${op} (unbatched input is not mapped)`);
    const params = named.get('params');
    const per = biases ? 4 : 2;
    if ((params?.k !== 'list' && params?.k !== 'tuple') || params.items.length !== layers * directions * per || params.items.some((p) => p.k !== 'tensor')) {
      return this.fail(`${layers * directions * per} weight tensors for torch.${op} (${layers} layers, ${directions} directions${biases ? ', biases' : ''}; an LSTM with proj_size is not mapped)`);
    }
    const weights = params.items as (Val & { k: 'tensor' })[];
    const gates = kind === 'LSTM' ? 4 : 3;
    const hh = this.metaOf(weights[1]!).shape;
    const hidden = hh[1];
    if (typeof hidden !== 'number' || hh[0] !== gates * hidden) return this.fail(`weight_hh of [${gates} x hidden, hidden] for torch.${op}`);
    const lo = this.lo;
    const ir = (v: Val & { k: 'tensor' }) => lo.value(v.t, this.at);
    // The initial states: [layers x directions, batch, hidden], one tensor (GRU) or two (LSTM).
    const hx = named.get('hx');
    const states = hx?.k === 'tensor' ? [hx] : (hx?.k === 'list' || hx?.k === 'tuple') && hx.items.every((v) => v.k === 'tensor') ? (hx.items as (Val & { k: 'tensor' })[]) : [];
    if (states.length !== (kind === 'LSTM' ? 2 : 1)) return this.fail(`${kind === 'LSTM' ? 'two initial states (h0, c0)' : 'an initial state h0'} for torch.${op}`);
    const initial = states.every((v) => this.zeroValues.has(v.t)) ? undefined : states.map(ir);
    const order = kind === 'LSTM' ? [0, 3, 1, 2] : [1, 0, 2];
    const rows = order.flatMap((block) => Array.from({ length: hidden }, (_, i) => block * hidden + i));
    const perm = lo.ints(rows);
    const gather = (w: string) => lo.node('Gather', [w, perm], { axis: attr.int(0) });
    const stack = (parts: string[]) => (parts.length === 1 ? parts[0]! : lo.node('Concat', parts, { axis: attr.int(0) }));
    let seq = batchFirst ? lo.node('Transpose', [ir(x)], { perm: attr.ints([1, 0, 2]) }) : ir(x);
    const lastH: string[] = [];
    const lastC: string[] = [];
    for (let l = 0; l < layers; l++) {
      const mine = (d: number, k: number) => weights[(l * directions + d) * per + k]!;
      const dirs = Array.from({ length: directions }, (_, d) => d);
      const w = stack(dirs.map((d) => lo.node('Reshape', [gather(ir(mine(d, 0))), lo.ints([1, gates * hidden, -1])])));
      const r = stack(dirs.map((d) => lo.node('Reshape', [gather(ir(mine(d, 1))), lo.ints([1, gates * hidden, hidden])])));
      const inputs = [seq, w, r];
      if (biases) inputs.push(stack(dirs.map((d) => lo.node('Reshape', [lo.node('Concat', [gather(ir(mine(d, 2))), gather(ir(mine(d, 3)))], { axis: attr.int(0) }), lo.ints([1, 2 * gates * hidden])]))));
      else inputs.push('');
      if (initial) {
        const slice = (t: string) => lo.node('Slice', [t, lo.ints([l * directions]), lo.ints([(l + 1) * directions]), lo.ints([0])]);
        inputs.push('', ...initial.map(slice));
      }
      while (inputs[inputs.length - 1] === '') inputs.pop();
      const attributes: Record<string, Attribute> = { hidden_size: attr.int(hidden), direction: attr.string(directions === 2 ? 'bidirectional' : 'forward') };
      if (kind === 'GRU') attributes['linear_before_reset'] = attr.int(1);
      const outs = [lo.fresh(`${op}_Y`), lo.fresh(`${op}_Y_h`), ...(kind === 'LSTM' ? [lo.fresh(`${op}_Y_c`)] : [])];
      lo.node(kind, inputs, attributes, outs);
      lastH.push(outs[1]!);
      if (outs[2]) lastC.push(outs[2]);
      // Y is [seq, directions, batch, hidden]; torch's output is [seq, batch, directions x hidden].
      seq = lo.node('Reshape', [lo.node('Transpose', [outs[0]!], { perm: attr.ints([0, 2, 1, 3]) }), lo.ints([0, 0, directions * hidden])]);
    }
    const [seqLen, batch] = batchFirst ? [d1, d0] : [d0, d1];
    const results: [string, readonly number[]][] = [
      [batchFirst ? lo.node('Transpose', [seq], { perm: attr.ints([1, 0, 2]) }) : seq, batchFirst ? [batch, seqLen, directions * hidden] : [seqLen, batch, directions * hidden]],
      [stack(lastH), [layers * directions, batch, hidden]],
      ...(kind === 'LSTM' ? [[stack(lastC), [layers * directions, batch, hidden]] as [string, readonly number[]]] : []),
    ];
    const items: Val[] = results.map(([value, shape], i) => {
      const torchName = this.fresh();
      // A graph output is named after what it is; an Identity gives it that name.
      const name = lo.unique(i === 0 ? (hint ?? 'output') : i === 1 ? 'h_n' : 'c_n');
      lo.node('Identity', [value], {}, [name]);
      lo.bind(torchName, name);
      const meta: TensorMetaInfo = { dtype: m.dtype, shape: [...shape] };
      this.meta.set(torchName, meta);
      this.irMeta.set(name, meta);
      return { k: 'tensor', t: torchName };
    });
    this.ops.set(`torch.${op}`, (this.ops.get(`torch.${op}`) ?? 0) + 1);
    return { k: 'tuple', items };
  }

  /** torch.to(self, [device,] dtype, ...) / to(self, other, ...) / type_as(self, other): a cast. */
  private to(op: string, args: readonly Val[], keywords: readonly (readonly [string, Val])[], hint?: string): Val {
    const x = args[0];
    if (x?.k !== 'tensor') return this.unsupported(`torch.${op} of ${describe(x ?? NONE)}`);
    let dtype: DType = this.metaOf(x).dtype;
    const rest = args.slice(1).filter((a) => a.k !== 'device');
    const kw = keywords.find(([k]) => k === 'dtype')?.[1];
    const spec = kw ?? rest[0];
    if (spec?.k === 'num' && !spec.float) dtype = this.c10Dtype(spec.v);
    else if (spec?.k === 'tensor') dtype = this.metaOf(spec).dtype;
    return this.emit(op, 'aten._to_copy.default', new Map<string, Val>([['self', x]]), dtype, hint);
  }

  /**
   * torch._native_multi_head_attention: what a traced nn.MultiheadAttention (batch_first, eval,
   * no mask, need_weights=False) calls. Not an ATen op torch.export keeps, so written here as the
   * computation it is: the packed in-projection split in three, heads split, softmax(q k^T /
   * sqrt(d)) v, heads merged, the out-projection. Its second result (the weights) must be unused.
   */
  private multiHeadAttention(args: readonly Val[], keywords: readonly (readonly [string, Val])[], hint?: string): Val {
    const names = 'query key value embed_dim num_head qkv_weight qkv_bias proj_weight proj_bias mask need_weights average_attn_weights mask_type';
    const named = this.bind('_native_multi_head_attention', { target: '', args: names.split(' ') }, args, keywords);
    const tensor = (k: string): Val & { k: 'tensor' } => {
      const v = named.get(k);
      return v?.k === 'tensor' ? v : this.unsupported(`torch._native_multi_head_attention with a tensor ${k}`);
    };
    const int = (k: string): number => {
      const v = named.get(k);
      return v?.k === 'num' && !v.float ? v.v : this.fail(`an int ${k} for torch._native_multi_head_attention`);
    };
    const mask = named.get('mask');
    if (mask && mask.k !== 'none') this.unsupported('torch._native_multi_head_attention with a mask');
    const needWeights = named.get('need_weights');
    if (needWeights?.k === 'bool' && needWeights.v) this.unsupported('torch._native_multi_head_attention with need_weights=True');
    const e = int('embed_dim');
    const h = int('num_head');
    const q = tensor('query');
    const m = this.metaOf(q);
    const [b, l] = m.shape;
    if (m.shape.length !== 3 || typeof b !== 'number' || typeof l !== 'number' || m.shape[2] !== e || h < 1 || e % h !== 0) {
      return this.fail(`a [batch, length, ${e}] query of static sizes and ${e} divisible by the ${h} heads`);
    }
    const d = e / h;
    const lo = this.lo;
    const ir = (v: Val & { k: 'tensor' }) => lo.value(v.t, this.at);
    const w = ir(tensor('qkv_weight'));
    const bias = ir(tensor('qkv_bias'));
    const rows = (x: string, i: number) => lo.node('Slice', [x, lo.ints([i * e]), lo.ints([(i + 1) * e]), lo.ints([0])]);
    const project = (x: string, weight: string, add: string) => lo.node('Add', [lo.node('MatMul', [x, lo.node('Transpose', [weight], { perm: attr.ints([1, 0]) })]), add]);
    // Reshape's 0 copies the batch and length, so the graph holds neither.
    const heads = (x: string) => lo.node('Transpose', [lo.node('Reshape', [x, lo.ints([0, 0, h, d])])], { perm: attr.ints([0, 2, 1, 3]) });
    const [qh, kh, vh] = (['query', 'key', 'value'] as const).map((k, i) => heads(project(ir(tensor(k)), rows(w, i), rows(bias, i))));
    const scaled = lo.node('Mul', [qh!, lo.constant(m.dtype, [], [1 / Math.sqrt(d)])]);
    const scores = lo.node('Softmax', [lo.node('MatMul', [scaled, lo.node('Transpose', [kh!], { perm: attr.ints([0, 1, 3, 2]) })])], { axis: attr.int(-1) });
    const merged = lo.node('Reshape', [lo.node('Transpose', [lo.node('MatMul', [scores, vh!])], { perm: attr.ints([0, 2, 1, 3]) }), lo.ints([0, 0, e])]);
    const torchName = this.fresh();
    const out = lo.unique(hint ?? 'attention');
    lo.node('Add', [lo.node('MatMul', [merged, lo.node('Transpose', [ir(tensor('proj_weight'))], { perm: attr.ints([1, 0]) })]), ir(tensor('proj_bias'))], {}, [out]);
    lo.bind(torchName, out);
    const meta: TensorMetaInfo = { dtype: m.dtype, shape: [b, l, e] };
    this.meta.set(torchName, meta);
    this.irMeta.set(out, meta);
    this.ops.set('torch._native_multi_head_attention', (this.ops.get('torch._native_multi_head_attention') ?? 0) + 1);
    return { k: 'tuple', items: [{ k: 'tensor', t: torchName }, NONE] };
  }

  private arange(args: readonly Val[], keywords: readonly (readonly [string, Val])[], hint?: string): Val {
    const numbers = args.filter((a) => a.k === 'num');
    const names = numbers.length === 1 ? ['end'] : numbers.length === 2 ? ['start', 'end'] : ['start', 'end', 'step'];
    if (numbers.length === 0 || numbers.length > 3) return this.unsupported('torch.arange over non-static bounds');
    const named = new Map<string, Val>(numbers.map((v, i) => [names[i]!, v]));
    const kw = new Map(keywords);
    const dt = kw.get('dtype') ?? args[numbers.length];
    const dtype = dt?.k === 'num' && !dt.float ? this.c10Dtype(dt.v) : numbers.some((n) => n.k === 'num' && n.float) ? 'float32' : 'int64';
    const nums = numbers as (Val & { k: 'num' })[];
    if (nums.some((n) => n.sym)) {
      // torch.arange(torch.size(x, 0)) (transformers' batch indices): a Range over the run-time size.
      const [start, end, step] = names.length === 1 ? [0, nums[0]!.v, 1] : names.length === 2 ? [nums[0]!.v, nums[1]!.v, 1] : nums.map((n) => n.v);
      if (!(step! !== 0)) return this.fail('a non-zero step for torch.arange');
      const count = Math.max(0, Math.ceil((end! - start!) / step!));
      const scalar = (n: (Val & { k: 'num' }) | undefined, value: number) =>
        n?.sym ? this.lo.cast(this.lo.node('Reshape', [this.lo.value(n.sym, this.at), this.lo.ints([])]), 'int64', dtype) : this.lo.constant(dtype, [], [value]);
      const [a, b, c] = names.length === 1 ? [undefined, nums[0], undefined] : [nums[0], nums[1], nums[2]];
      const torchName = this.fresh();
      const name = this.lo.unique(hint ?? 'arange');
      this.lo.node('Range', [scalar(a, start!), scalar(b, end!), scalar(c, step!)], {}, [name]);
      this.lo.bind(torchName, name);
      const meta: TensorMetaInfo = { dtype, shape: [count] };
      this.meta.set(torchName, meta);
      this.irMeta.set(name, meta);
      this.ops.set('torch.arange', (this.ops.get('torch.arange') ?? 0) + 1);
      return { k: 'tensor', t: torchName };
    }
    return this.emit('arange', numbers.length === 3 ? 'aten.arange.start_step' : numbers.length === 2 ? 'aten.arange.start' : 'aten.arange.default', named, dtype, hint);
  }
}

function fold(op: string, a: Val & { k: 'num' }, b: Val & { k: 'num' }): Val | undefined {
  const float = a.float || b.float;
  switch (op) {
    case '+':
      return { k: 'num', v: a.v + b.v, float };
    case '-':
      return { k: 'num', v: a.v - b.v, float };
    case '*':
      return { k: 'num', v: a.v * b.v, float };
    case '/':
      return b.v === 0 ? undefined : { k: 'num', v: a.v / b.v, float: true };
    case '//':
      return b.v === 0 ? undefined : { k: 'num', v: Math.floor(a.v / b.v), float };
    case '%':
      return b.v === 0 ? undefined : { k: 'num', v: a.v - Math.floor(a.v / b.v) * b.v, float };
  }
  return undefined;
}

function describe(v: Val): string {
  switch (v.k) {
    case 'tensor':
      return 'a tensor';
    case 'num':
      return v.float ? 'a float' : 'an int';
    case 'bool':
      return 'a bool';
    case 'none':
      return 'None';
    case 'str':
      return 'a string';
    case 'list':
    case 'tuple':
      return `a ${v.k}`;
    case 'module':
      return `a module (${escapeControl(v.obj.type.path)})`;
    case 'device':
      return 'a device';
    case 'fn':
      return escapeControl(v.path);
    case 'method':
      return `the method ${escapeControl(v.name)}`;
  }
}

