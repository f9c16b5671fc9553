import { basename } from 'node:path';
import { writeFileAtomic } from '../../core/atomic.js';
import { isFloat, type DType } from '../../core/dtypes.js';
import { UsageError } from '../../core/errors.js';
import type { Graph, Node } from '../../core/graph.js';
import type { Model } from '../../core/model.js';
import { allocate, Tensor } from '../../core/tensor.js';
import { Session } from '../../runtime/executor.js';
import { ZipWriter } from '../pytorch/zip-writer.js';
import { SCALAR_TYPE_CODES } from './archive.js';
import { a, IR_TO_ATEN, type CallArg, type Emitter, type ValueMeta } from './export-ops.js';
import type { Json } from './json.js';
import { METADATA_KEY, NAMES_KEY } from './names.js';
import { bundleFromModel } from '../../module/bundle.js';
import { MODULE_KEY, SIGNATURE_KEY } from '../../module/spec.js';
import { concatBytes } from '../../core/bytes.js';

/**
 * Writes a Model as a torch.export archive that torch.export.load accepts and runs: the IR
 * lowered to ATen calls (export-ops.ts) in the ExportedProgram JSON of schema 8.20, the weights
 * as raw records with their payload configs, laid out as torch.export.save (PT2ArchiveWriter)
 * does. Deterministic: fixed record order and zip layout, no timestamps.
 *
 * torch needs every value's dtype and sizes (tensor_values): they come from runs of modelbridge's
 * runtime on zeros. A symbolic input dimension (a batch "N") is probed at two sizes; a size that
 * moves with it is written as an expression of the symbol (s0, 2*s0 + 1), the rest as ints.
 * Values that do not depend on the input data (shape arithmetic, constants) are folded into
 * lifted tensor constants, which is what torch.export would have made of them.
 * The original names of inputs, outputs and weights ride in graph_module.metadata so modelbridge
 * reads them back unchanged; torch sees Python identifiers.
 */

const SCHEMA_VERSION = { major: 8, minor: 20 };
const TORCH_VERSION = '2.13.0';
/** Probe sizes for a symbolic dimension: the base run, and the run that moves it. */
const BASE_SIZE = 5;
const MOVED_SIZE = 11;

interface Plan {
  readonly program: Uint8Array;
  readonly weightsConfig: Uint8Array;
  readonly constantsConfig: Uint8Array;
  readonly weights: readonly (readonly [string, Tensor])[];
  readonly constants: readonly (readonly [string, Tensor])[];
}

export function writePt2(model: Model, path: string): void {
  const plan = planArchive(model);
  const archive = basename(path).replace(/\.pt2$/i, '').replace(/[^A-Za-z0-9_.-]/g, '_') || 'model';
  writeFileAtomic(path, (append) => emit(append, plan, archive));
}

/** The archive in memory (tests). */
export function serializePt2(model: Model, archive = 'model'): Uint8Array {
  const parts: Uint8Array[] = [];
  emit((b) => parts.push(b.slice()), planArchive(model), archive);
  return concatBytes(parts);
}

function emit(append: (bytes: Uint8Array) => void, plan: Plan, archive: string): void {
  const zip = new ZipWriter(append);
  const add = (name: string, data: Uint8Array | Tensor['source']) => zip.add(`${archive}/${name}`, data);
  const ascii = (text: string) => new TextEncoder().encode(text);
  // torch.export.save's record order: weights, their config, constants, their config, the
  // program, the sample inputs, then the archive records PyTorchFileWriter adds.
  for (const [file, t] of plan.weights) add(`data/weights/${file}`, t.source);
  add('data/weights/model_weights_config.json', plan.weightsConfig);
  for (const [file, t] of plan.constants) add(`data/constants/${file}`, t.source);
  add('data/constants/model_constants_config.json', plan.constantsConfig);
  add('models/model.json', plan.program);
  // Empty sample inputs: torch.export.load reads the record and takes empty as "none".
  add('data/sample_inputs/model.pt', new Uint8Array(0));
  add('archive_format', ascii('pt2'));
  add('archive_version', ascii('0'));
  add('.data/version', ascii('6\n'));
  add('byteorder', ascii('little'));
  zip.finish();
}

/** Inputs the ATen lowering does not read: sizes, taken from the probe instead (export-ops.ts). */
const SIZE_INPUTS: Readonly<Record<string, readonly number[]>> = { Reshape: [1], Expand: [1] };

/** State-dict names torch keeps as buffers (BatchNorm's running statistics). */
const BUFFER_NAME = /(^|[./_])(running_mean|running_var|moving_mean|moving_variance|num_batches_tracked)(:0)?$/;

const KEYWORDS = new Set(['False', 'None', 'True', 'and', 'as', 'assert', 'async', 'await', 'break', 'class', 'continue', 'def', 'del', 'elif', 'else', 'except', 'finally', 'for', 'from', 'global', 'if', 'import', 'in', 'is', 'lambda', 'nonlocal', 'not', 'or', 'pass', 'raise', 'return', 'try', 'while', 'with', 'yield']);

/** A Python identifier for a name (torch makes placeholders and forward arguments of them). */
function identifier(name: string): string {
  let id = name.replace(/[^A-Za-z0-9_]/g, '_');
  if (id === '' || /^[0-9]/.test(id)) id = `v_${id}`;
  return KEYWORDS.has(id) ? `${id}_` : id;
}

/** A module path for a weight: dotted segments of identifier characters (torch's unlifting sets them as attributes). */
function modulePath(name: string): string {
  const segments = name.split('.').map((s) => s.replace(/[^A-Za-z0-9_]/g, '_') || '_');
  return segments.map((s) => (KEYWORDS.has(s) ? `${s}_` : s)).join('.');
}

class Names {
  private readonly taken = new Set<string>();
  unique(base: string): string {
    let name = base;
    for (let k = 1; this.taken.has(name); k++) name = `${base}_${k}`;
    this.taken.add(name);
    return name;
  }
}

function planArchive(model: Model): Plan {
  const graph = model.graph;
  if (!graph) throw new UsageError('a .pt2 holds a program: this model has weights but no graph (give --module for a bare state dict)');
  const userInputs = graph.inputs.filter((i) => !graph.initializers.has(i.name));
  for (const i of userInputs) if (i.shape === null) throw new UsageError(`input ${i.name}: a known rank (torch.export programs fix every input's rank)`);

  // Symbols: each distinct symbolic (or unknown) input dimension.
  const symbols: string[] = [];
  const symbolOf = (input: string, d: number, dim: string | number | null): string | undefined => {
    if (typeof dim === 'number') return undefined;
    const key = dim ?? `${input}:${d}`;
    if (!symbols.includes(key)) symbols.push(key);
    return key;
  };
  userInputs.forEach((i) => i.shape!.forEach((dim, d) => symbolOf(i.name, d, dim)));
  // Values that do not depend on input data (Shape reads sizes only): the probe runs keep their tensors.
  const data = new Set(userInputs.map((i) => i.name));
  const dataFree = new Set<string>();
  for (const node of graph.nodes) {
    const fromData = node.op !== 'Shape' && node.op !== 'Size' && node.inputs.some((i) => data.has(i));
    for (const o of node.outputs.filter((x) => x !== '')) (fromData ? data : dataFree).add(o);
  }
  const runs = [probe(graph, userInputs, symbols, -1, dataFree), ...symbols.map((_, k) => probe(graph, userInputs, symbols, k, dataFree))];
  const base = runs[0]!;
  const metaOf = (value: string): ValueMeta => {
    const shapeHere = base.shapes.get(value) ?? (() => { throw new UsageError(`value ${value}: computed by no node the runtime ran`); })();
    const shape = shapeHere.map((size, d) => {
      for (let k = 0; k < symbols.length; k++) {
        const moved = runs[k + 1]!.shapes.get(value)![d]!;
        if (moved === size) continue;
        const slope = (moved - size) / (MOVED_SIZE - BASE_SIZE);
        const offset = size - slope * BASE_SIZE;
        if (!Number.isInteger(slope) || slope <= 0 || !Number.isInteger(offset)) throw new UsageError(`value ${value}: size ${d} is no linear function of one symbolic input size`);
        return symbolicSize(`s${k}`, slope, offset);
      }
      return size;
    });
    return { dtype: base.dtypes.get(value)!, shape, hints: shapeHere };
  };

  // What the ATen calls need: Reshape and Expand are written with their probed output sizes,
  // so the shape they were given (often computed from Shape at run time) is not needed.
  const needed = new Set(graph.outputs.map((o) => o.name));
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const node = graph.nodes[i]!;
    if (!node.outputs.some((o) => needed.has(o))) continue;
    const ignored = SIZE_INPUTS[node.op] ?? [];
    node.inputs.forEach((input, k) => {
      if (input !== '' && !ignored.includes(k)) needed.add(input);
    });
  }

  // Values that do not depend on input data fold into constants.
  const folded = new Map<string, Tensor>();
  for (const node of graph.nodes) {
    for (const o of node.outputs.filter((x) => dataFree.has(x) && needed.has(x))) {
      const value = base.values.get(o)!;
      if (runs.some((r) => !sameTensor(r.values.get(o)!, value))) throw new UsageError(`node ${node.name} (${node.op}): a value computed from a symbolic input size; torch programs need it as SymInts, which modelbridge does not write`);
      folded.set(o, value);
    }
  }

  // Names: weights under module paths, placeholders p_/b_/c_ + path, user inputs as identifiers.
  const names = new Names();
  const torchName = new Map<string, string>();
  const emittedNodes = graph.nodes.filter((n) => n.outputs.some((o) => needed.has(o) && !folded.has(o)));
  const read = new Set([...emittedNodes.flatMap((n) => n.inputs), ...graph.outputs.map((o) => o.name)]);
  const params: [string, string, Tensor][] = [];
  const buffers: [string, string, Tensor][] = [];
  const constants: [string, string, Tensor][] = [];
  const original: Record<string, Record<string, string>> = { inputs: {}, outputs: {}, weights: {} };
  const paths = new Names();
  // The state dict stays whole (num_batches_tracked and other weights no node reads are kept as
  // unused placeholders, as torch keeps them); the graph's own constants only when read.
  const stored = new Map<string, Tensor>([...model.weights, ...[...graph.initializers].filter(([name]) => read.has(name))]);
  for (const [name, tensor] of stored) {
    const inStateDict = model.weights.has(name);
    const path = paths.unique(modulePath(inStateDict ? name : `_const.${name}`));
    // Float weights are parameters, except batch-norm statistics (torch refuses gradients into
    // them); other dtypes are buffers, the graph's own constants lifted constants.
    const list = !inStateDict ? constants : isFloat(tensor.dtype) && !BUFFER_NAME.test(name) ? params : buffers;
    const prefix = list === params ? 'p_' : list === buffers ? 'b_' : 'c_';
    const placeholder = names.unique(identifier(prefix + path.replace(/\./g, '_')));
    torchName.set(name, placeholder);
    list.push([path, placeholder, tensor]);
    if (path !== name) original['weights']![path] = name;
  }
  for (const [value, tensor] of folded) {
    if (!read.has(value)) continue;
    const path = paths.unique(modulePath(`_const.${value}`));
    const placeholder = names.unique(identifier(`c_${path.replace(/\./g, '_')}`));
    torchName.set(value, placeholder);
    constants.push([path, placeholder, tensor]);
  }
  const inputNames: string[] = [];
  for (const i of userInputs) {
    const id = names.unique(identifier(i.name));
    torchName.set(i.name, id);
    inputNames.push(id);
    if (id !== i.name) original['inputs']![id] = i.name;
  }

  // Calls.
  const tensorValues: Record<string, Json> = {};
  const metaJson = (m: ValueMeta): Json => tensorMetaJson(m);
  for (const [, placeholder, t] of [...params, ...buffers, ...constants]) tensorValues[placeholder] = metaJson({ dtype: t.dtype, shape: [...t.shape] });
  for (const i of userInputs) tensorValues[torchName.get(i.name)!] = metaJson(metaOf(i.name));
  const nodes: Json[] = [];
  for (const node of emittedNodes) {
    const lower = Object.prototype.hasOwnProperty.call(IR_TO_ATEN, node.op) && node.domain === '' ? IR_TO_ATEN[node.op] : undefined;
    if (!lower) throw new UsageError(`node ${node.name} (${node.domain ? `${node.domain}.` : ''}${node.op}): no ATen mapping for ${node.op} in the .pt2 writer`);
    for (const o of node.outputs) if (o !== '') torchName.set(o, names.unique(identifier(o)));
    lower(emitter(node, graph, torchName, names, metaOf, folded, nodes, tensorValues));
  }

  // Outputs: a graph output that is an input or a weight gets its own copy, as torch requires a node.
  const outputNames: string[] = [];
  for (const o of graph.outputs) {
    let name = torchName.get(o.name) ?? (() => { throw new UsageError(`output ${o.name}: computed by no node`); })();
    if (!emittedNodes.some((n) => n.outputs.includes(o.name))) {
      const copy = names.unique(identifier(`${o.name}_copy`));
      nodes.push(callJson('aten.clone.default', [a.tensor('self', name)], [copy]));
      tensorValues[copy] = tensorValues[name]!;
      name = copy;
    }
    outputNames.push(name);
    if (name !== o.name) original['outputs']![name] = o.name;
  }

  const placeholders = [...params, ...buffers, ...constants];
  const inputSpecs: Json[] = [
    ...params.map(([path, p]) => ({ parameter: { arg: { name: p }, parameter_name: path } })),
    ...buffers.map(([path, p]) => ({ buffer: { arg: { name: p }, buffer_name: path, persistent: true } })),
    ...constants.map(([path, p]) => ({ tensor_constant: { arg: { name: p }, tensor_constant_name: path } })),
    ...inputNames.map((n) => ({ user_input: { arg: { as_tensor: { name: n } } } })),
  ];
  const leaf = { type: null, context: null, children_spec: [] };
  const tuple = (children: Json[]) => ({ type: 'builtins.tuple', context: 'null', children_spec: children });
  const inSpec = [1, tuple([tuple(inputNames.map(() => leaf)), { type: 'builtins.dict', context: '[]', children_spec: [] }])];
  const outSpec = [1, outputNames.length === 1 ? leaf : tuple(outputNames.map(() => leaf))];
  const rangeConstraints = Object.fromEntries(symbols.map((_, k) => [`s${k}`, { min_val: 0, max_val: null }]));
  const program = {
    graph_module: {
      graph: {
        inputs: [...placeholders.map(([, p]) => ({ as_tensor: { name: p } })), ...inputNames.map((n) => ({ as_tensor: { name: n } }))],
        outputs: outputNames.map((n) => ({ as_tensor: { name: n } })),
        nodes,
        tensor_values: tensorValues,
        sym_int_values: {},
        sym_bool_values: {},
        is_single_tensor_return: false,
        custom_obj_values: {},
        sym_float_values: {},
      },
      signature: { input_specs: inputSpecs, output_specs: outputNames.map((n) => ({ user_output: { arg: { as_tensor: { name: n } } } })) },
      module_call_graph: [{ fqn: '', signature: { inputs: [], outputs: [], in_spec: JSON.stringify(inSpec), out_spec: JSON.stringify(outSpec), forward_arg_names: inputNames } }],
      metadata: { [NAMES_KEY]: JSON.stringify(original), [METADATA_KEY]: JSON.stringify(carriedMetadata(model)) },
      treespec_namedtuple_fields: {},
    },
    opset_version: { aten: 10 },
    range_constraints: rangeConstraints,
    schema_version: SCHEMA_VERSION,
    verifiers: ['ATEN'],
    torch_version: TORCH_VERSION,
    guards_code: [],
  };

  // Payloads: one record per tensor, as _save_raw_tensors writes them.
  const weights: [string, Tensor][] = [];
  const weightsConfig: Record<string, Json> = {};
  [...params, ...buffers].forEach(([path, , t], k) => {
    weights.push([`weight_${k}`, t]);
    weightsConfig[path] = { path_name: `weight_${k}`, is_param: isFloat(t.dtype) && params.some((p) => p[0] === path), use_pickle: false, tensor_meta: tensorMetaJson({ dtype: t.dtype, shape: [...t.shape] }, isFloat(t.dtype) && params.some((p) => p[0] === path)) };
  });
  const constantRecords: [string, Tensor][] = [];
  const constantsConfig: Record<string, Json> = {};
  constants.forEach(([path, , t], k) => {
    constantRecords.push([`tensor_${k}`, t]);
    constantsConfig[path] = { path_name: `tensor_${k}`, is_param: false, use_pickle: false, tensor_meta: tensorMetaJson({ dtype: t.dtype, shape: [...t.shape] }) };
  });
  const json = (v: Json) => new TextEncoder().encode(JSON.stringify(v));
  return { program: json(program as Json), weightsConfig: json({ config: weightsConfig }), constantsConfig: json({ config: constantsConfig }), weights, constants: constantRecords };
}

/**
 * The model's string metadata, and its module spec and signature when it has one (as ONNX's
 * metadata_props carry them), so a torch.nn-shaped model read back is that module again.
 */
function carriedMetadata(model: Model): Record<string, string> {
  const out: Record<string, string> = {};
  const source: Record<string, string> = { ...model.metadata };
  if (model.module && model.graph) {
    const bundle = bundleFromModel(model).metadata;
    for (const key of [MODULE_KEY, SIGNATURE_KEY]) if (bundle[key] !== undefined) source[key] = bundle[key];
  }
  for (const key of Object.keys(source).sort()) if (!key.startsWith('pt2.')) out[key] = source[key]!;
  return out;
}

function symbolicSize(symbol: string, slope: number, offset: number): string {
  const s = `Symbol('${symbol}', positive=True, integer=True)`;
  const term = slope === 1 ? s : `Mul(Integer(${slope}), ${s})`;
  return offset === 0 ? term : `Add(${term}, Integer(${offset}))`;
}

function tensorMetaJson(m: ValueMeta, requiresGrad = false): Json {
  const dtype = SCALAR_TYPE_CODES.get(m.dtype);
  if (dtype === undefined) throw new UsageError(`torch.export has no dtype ${m.dtype}`);
  const hints = m.hints ?? m.shape.map((d) => (typeof d === 'number' ? d : BASE_SIZE));
  const sym = (expr: string | number, hint: number): Json => (typeof expr === 'number' ? { as_int: expr } : { as_expr: { expr_str: expr, hint: { as_int: hint } } });
  // Contiguous strides: symbolic where a symbolic size follows (rare: the batch comes first).
  const strides: Json[] = [];
  let stride: number | string = 1;
  let hint = 1;
  for (let i = m.shape.length - 1; i >= 0; i--) {
    strides.unshift(sym(stride, hint));
    const d = m.shape[i]!;
    stride = typeof stride === 'number' && typeof d === 'number' ? stride * d : `Mul(${typeof stride === 'number' ? `Integer(${stride})` : stride}, ${typeof d === 'number' ? `Integer(${d})` : d})`;
    hint *= hints[i]!;
  }
  return { dtype, sizes: m.shape.map((d, i) => sym(d, hints[i]!)), requires_grad: requiresGrad, device: { type: 'cpu', index: null }, strides, storage_offset: { as_int: 0 }, layout: 7 };
}

/** ATen ops returning Tensor[] (one list output, as_tensors), not a tuple of tensors. */
const LIST_RETURNS = new Set(['aten.split_with_sizes.default', 'aten.split.Tensor', 'aten.unbind.int']);

/** One call; a call with several outputs is a node of its own name (torch adds a getitem per output). */
function callJson(target: string, args: readonly CallArg[], outputs: readonly string[], name = outputs[0] ?? target): Json {
  return {
    target: `torch.ops.${target}`,
    inputs: args.map((x) => ({ name: x.name, arg: x.arg, kind: x.keyword ? 2 : 1 })),
    outputs: LIST_RETURNS.has(target) ? [{ as_tensors: outputs.map((o) => ({ name: o })) }] : outputs.map((o) => ({ as_tensor: { name: o } })),
    metadata: {},
    is_hop_single_tensor_return: null,
    name,
  };
}

function emitter(
  node: Node,
  graph: Graph,
  torchName: Map<string, string>,
  names: Names,
  metaOf: (value: string) => ValueMeta,
  folded: ReadonlyMap<string, Tensor>,
  nodes: Json[],
  tensorValues: Record<string, Json>,
): Emitter {
  const fail = (expected: string): never => {
    throw new UsageError(`node ${node.name} (${node.op}): the .pt2 writer needs ${expected}`);
  };
  const nameOf = (value: string): string => torchName.get(value) ?? fail(`its input ${value} defined before it`);
  const x: Emitter = {
    node,
    opset: graph.opset,
    input: (i) => nameOf(node.inputs[i] ?? fail(`an input ${i}`)),
    has: (i) => (node.inputs[i] ?? '') !== '',
    meta: (value) => {
      const m = tensorValues[value];
      if (!m) return fail(`metadata for ${value}`);
      return fromMetaJson(m);
    },
    inMeta: (i) => metaOf(node.inputs[i] ?? fail(`an input ${i}`)),
    outMeta: (i = 0) => metaOf(node.outputs[i] ?? fail(`an output ${i}`)),
    constant: (i) => {
      const v = node.inputs[i];
      if (!v) return undefined;
      const t = graph.initializers.get(v) ?? folded.get(v);
      return t ? t.toNumbers() : undefined;
    },
    out: (i = 0) => torchName.get(node.outputs[i] ?? '') ?? fail(`an output ${i}`),
    call: (target, args, outputs = [undefined], metas) => {
      const op = target.split('.')[1] ?? 'call';
      const outs = outputs.map((o, k) => o ?? names.unique(k === 0 ? op : `${op}_unused_${k}`));
      outs.forEach((o, k) => {
        const given = metas?.[k];
        if (given) tensorValues[o] = tensorMetaJson(given);
        else {
          const irValue = node.outputs[node.outputs.findIndex((v) => torchName.get(v) === o)];
          tensorValues[o] = tensorMetaJson(irValue ? metaOf(irValue) : fail(`metadata for ${o}`));
        }
      });
      nodes.push(callJson(target, args, outs, outs.length > 1 || LIST_RETURNS.has(target) ? names.unique(op) : outs[0]));
      return outs;
    },
    fail,
  };
  return x;
}

function fromMetaJson(m: Json): ValueMeta {
  const o = m as { dtype: number; sizes: { as_int?: number; as_expr?: { expr_str: string } }[] };
  const dtype = [...SCALAR_TYPE_CODES].find(([, c]) => c === o.dtype)![0];
  return { dtype, shape: o.sizes.map((s) => (s.as_int !== undefined ? s.as_int : s.as_expr!.expr_str)) };
}

interface ProbeRun {
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  readonly dtypes: ReadonlyMap<string, DType>;
  /** The tensors of the values `keep` named (and of the inputs and weights). */
  readonly values: ReadonlyMap<string, Tensor>;
}

/**
 * Every value's shape and dtype from one run on zeros, symbol `moved` (index) at MOVED_SIZE, the
 * rest at BASE_SIZE; the tensors of `keep` only. The other values are let go as they are read
 * (their shapes noted as they are computed): held all to the end of the run, ViT-B/16's
 * activations took a .pt2 conversion to 637 MB.
 */
function probe(graph: Graph, inputs: Graph['inputs'], symbols: readonly string[], moved: number, keep: ReadonlySet<string>): ProbeRun {
  const feeds: Record<string, Tensor> = {};
  for (const i of inputs) {
    const shape = i.shape!.map((d, k) => {
      if (typeof d === 'number') return d;
      const index = symbols.indexOf(d ?? `${i.name}:${k}`);
      return index === moved ? MOVED_SIZE : BASE_SIZE;
    });
    feeds[i.name] = Tensor.fromArray(i.dtype, shape, allocate(i.dtype, shape.reduce((p, q) => p * q, 1)));
  }
  const shapes = new Map<string, readonly number[]>();
  const dtypes = new Map<string, DType>();
  const values = new Map<string, Tensor>();
  for (const [k, t] of [...Object.entries(feeds), ...graph.initializers]) {
    shapes.set(k, t.shape);
    dtypes.set(k, t.dtype);
    values.set(k, t);
  }
  const produced = new Set(graph.nodes.flatMap((n) => n.outputs));
  const outputs = [...new Set([...graph.outputs.map((o) => o.name), ...keep])].filter((v) => produced.has(v));
  let out: Record<string, Tensor>;
  try {
    const note = (name: string, shape: readonly number[], dtype: DType) => {
      shapes.set(name, shape);
      dtypes.set(name, dtype);
    };
    out = new Session({ ...graph, outputs: outputs.map((name) => ({ name, dtype: 'float32' as DType, shape: null })) }, { once: true, observe: note }).run(feeds);
  } catch (error) {
    throw new UsageError(`the .pt2 writer runs the graph once to learn every value's sizes, and the run failed: ${(error as Error).message}`);
  }
  for (const [k, t] of Object.entries(out)) if (keep.has(k)) values.set(k, t);
  return { shapes, dtypes, values };
}

function sameTensor(x: Tensor, y: Tensor): boolean {
  if (x.dtype !== y.dtype || x.shape.length !== y.shape.length || x.shape.some((d, i) => d !== y.shape[i])) return false;
  const p = x.bytes();
  const q = y.bytes();
  return p.byteLength === q.byteLength && p.every((b, i) => b === q[i]);
}
