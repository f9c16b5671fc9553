import { formatErrors, type FormatErrors } from '../../core/errors.js';
import { DEFAULT_OPSET, type Graph, type Node, type ValueInfo } from '../../core/graph.js';
import type { Model, Signature } from '../../core/model.js';
import { escapeControl } from '../../core/printable.js';
import type { Tensor } from '../../core/tensor.js';
import { openPt2, tensorMeta, type Pt2Archive, type TensorMetaInfo } from './archive.js';
import { asArray, asInt, asObject, asString, isObject, union, type Json, type JsonObject } from './json.js';
import { Call, Lowering } from './lowering.js';
import { ATEN_OPS, SYM_OPS } from './ops.js';
import { METADATA_KEY, NAMES_KEY } from './names.js';
import { expectedParams } from '../../module/lower.js';
import { MODULE_KEY, SIGNATURE_KEY, type ModuleSpec } from '../../module/spec.js';
import { SpecFieldError } from '../../module/fields.js';

/**
 * Reads a torch.export archive into a runnable Model: the ExportedProgram's graph (core ATen
 * calls, JSON) lowered through ops.ts into IR nodes, its parameters, buffers and lifted constants
 * as initializers under their state-dict names (`fc1.weight`), its user inputs and outputs under
 * the program's names with torch's symbolic sizes (s77) as symbolic dims.
 */

export const PT2_METADATA = {
  schema: 'pt2.schema_version',
  torch: 'pt2.torch_version',
} as const;

export function readPt2(path: string, options: { lazy?: boolean } = {}): Model {
  return programToModel(openPt2(path, options));
}

/** ATen targets as the program names them ("torch.ops.aten.addmm.default") without the prefix. */
function opName(target: string): string {
  return target.startsWith('torch.ops.') ? target.slice('torch.ops.'.length) : target;
}

export function programToModel(archive: Pt2Archive): Model {
  const e: FormatErrors = formatErrors(archive.zip.file);
  const where = `record ${archive.folder}models/${archive.modelName}.json`;
  const gm = asObject(archive.program['graph_module'], `${where} graph_module`, e);
  const graphJson = asObject(gm['graph'], `${where} graph_module.graph`, e);
  const signature = asObject(gm['signature'], `${where} graph_module.signature`, e);
  const nodes = asArray(graphJson['nodes'], `${where} graph nodes`, e);

  const meta = new Map<string, TensorMetaInfo>();
  for (const [name, m] of Object.entries(asObject(graphJson['tensor_values'], `${where} tensor_values`, e))) meta.set(name, tensorMeta(m, `${where} tensor_values ${JSON.stringify(escapeControl(name))}`, e));

  // Gelu is an ONNX op from opset 20; every other mapping is expressible at the default opset.
  const targets = nodes.map((n, i) => asString(asObject(n, `${where} node ${i}`, e)['target'], `${where} node ${i} target`, e));
  const opset = targets.some((t) => opName(t) === 'aten.gelu.default') ? 20 : DEFAULT_OPSET;
  const lo = new Lowering(opset, meta, readNames(graphJson), e, where);
  const original = originalNames(gm);
  for (const [torchName, name] of Object.entries(original.outputs)) lo.prefer(torchName, name);
  const weightName = (fqn: string) => original.weights[fqn] ?? fqn;

  // Inputs: parameters, buffers and constants become initializers named by their FQN; user inputs
  // keep the program's names.
  const initializers = new Map<string, Tensor>();
  const inputs: ValueInfo[] = [];
  const specs = asArray(signature['input_specs'], `${where} input_specs`, e);
  for (const fqn of [...archive.weights.keys(), ...archive.constants.keys()]) lo.reserve(weightName(fqn));
  for (const [i, spec] of specs.entries()) {
    const at = `${where} input_specs[${i}]`;
    const [kind, v] = union(spec, at, e);
    const o = asObject(v, at, e);
    if (kind === 'user_input') {
      const [tag, arg] = union(o['arg'], `${at}.arg`, e);
      e.check(tag === 'as_tensor', at, `a tensor user input, not ${tag} (non-tensor inputs are baked into the program by torch.export)`);
      const torchName = asString(asObject(arg, at, e)['name'], at, e);
      const m = meta.get(torchName) ?? e.fail(at, `metadata for input ${JSON.stringify(escapeControl(torchName))}`);
      const name = lo.unique(original.inputs[torchName] ?? torchName);
      lo.bind(torchName, name);
      inputs.push({ name, dtype: m.dtype, shape: m.shape });
      continue;
    }
    const fields: Record<string, [string, ReadonlyMap<string, Tensor>]> = {
      parameter: ['parameter_name', archive.weights],
      buffer: ['buffer_name', archive.weights],
      tensor_constant: ['tensor_constant_name', archive.constants],
    };
    const field = fields[kind];
    e.check(field !== undefined, at, `a user input, parameter, buffer or tensor constant, not ${kind} (custom objects and tokens are not supported)`);
    const name = asString(asObject(o['arg'], at, e)['name'], `${at}.arg.name`, e);
    const fqn = asString(o[field[0]], `${at}.${field[0]}`, e);
    // Non-persistent buffers are saved with the constants.
    const tensor = field[1].get(fqn) ?? archive.weights.get(fqn) ?? archive.constants.get(fqn);
    e.check(tensor !== undefined, `${kind} ${JSON.stringify(escapeControl(fqn))}`, `a tensor for it in the archive's ${kind === 'tensor_constant' ? 'constants' : 'weights'} (the graph refers to a weight the archive does not hold)`);
    const m = meta.get(name);
    if (m) {
      e.check(m.shape.length === tensor.shape.length && m.shape.every((d, k) => d === tensor.shape[k]) && m.dtype === tensor.dtype, `${kind} ${JSON.stringify(escapeControl(fqn))}`, `the ${m.dtype} [${m.shape.join(', ')}] the graph declares, not ${tensor.dtype} [${tensor.shape.join(', ')}]`);
    }
    lo.bind(name, weightName(fqn));
    initializers.set(weightName(fqn), tensor);
  }

  for (const [i, n] of nodes.entries()) {
    const node = asObject(n, `${where} node ${i}`, e);
    const target = opName(targets[i]!);
    const name = typeof node['name'] === 'string' ? node['name'] : `#${i}`;
    const at = `node ${JSON.stringify(escapeControl(name))} (${escapeControl(target)})`;
    const call = new Call(lo, target, name, node, at);
    const lower = Object.prototype.hasOwnProperty.call(ATEN_OPS, target) ? ATEN_OPS[target] : undefined;
    if (lower) {
      lower(call);
      continue;
    }
    const sym = Object.prototype.hasOwnProperty.call(SYM_OPS, target) ? SYM_OPS[target] : undefined;
    if (sym) {
      lowerSymOp(call, sym);
      continue;
    }
    e.fail(at, `an ATen op modelbridge maps to the IR; ${escapeControl(target)} is not one (the README's torch.export section lists what is)`);
  }

  const outputs: ValueInfo[] = [];
  const used = new Set<string>();
  const inputNames = new Set([...inputs.map((x) => x.name), ...initializers.keys()]);
  for (const [i, spec] of asArray(signature['output_specs'], `${where} output_specs`, e).entries()) {
    const at = `${where} output_specs[${i}]`;
    const [kind, v] = union(spec, at, e);
    e.check(kind === 'user_output', at, `user outputs only, not ${kind} (a program that mutates buffers or computes gradients was exported for training)`);
    const [tag, arg] = union(asObject(v, at, e)['arg'], `${at}.arg`, e);
    e.check(tag === 'as_tensor', at, `a tensor output, not ${tag}`);
    const torchName = asString(asObject(arg, at, e)['name'], at, e);
    let name = lo.value(torchName, at);
    // A graph output must be computed by a node, once: a passed-through input or a repeated
    // output gets its own Identity.
    if (inputNames.has(name) || used.has(name)) {
      const copy = lo.unique(`${torchName}_output_${i}`);
      lo.node('Identity', [name], {}, [copy]);
      name = copy;
    }
    used.add(name);
    const m = meta.get(torchName) ?? e.fail(at, `metadata for output ${JSON.stringify(escapeControl(torchName))}`);
    outputs.push({ name, dtype: m.dtype, shape: m.shape });
  }

  const live = liveNodes(lo.nodes, outputs.map((o) => o.name));
  const read = new Set(live.flatMap((n) => n.inputs));
  for (const [k, t] of lo.initializers) if (read.has(k)) initializers.set(k, t);
  const graph: Graph = { inputs, outputs, initializers, nodes: live, opset };
  const sig: Signature = { name: 'default', inputs: new Map(inputs.map((x) => [x.name, x.name])), outputs: new Map(outputs.map((o) => [o.name, o.name])) };
  // The state dict: parameters and buffers, and the lifted constants, under their names.
  const weights = new Map<string, Tensor>([...archive.weights, ...archive.constants].map(([k, t]) => [weightName(k), t]));
  const carried = carriedMetadata(gm);
  // The signature JSON is the graph's own names here (they are restored above), so only the module is used.
  const { [MODULE_KEY]: moduleText, [SIGNATURE_KEY]: _signature, ...rest } = carried;
  void _signature;
  const base: Model = {
    format: 'pt2',
    weights,
    graph,
    signatures: [sig],
    metadata: { ...rest, [PT2_METADATA.schema]: archive.schemaVersion, ...(archive.torchVersion ? { [PT2_METADATA.torch]: archive.torchVersion } : {}) },
  };
  return moduleText === undefined ? base : withModule(base, moduleText, e, where);
}

/**
 * A program modelbridge wrote from a torch.nn-shaped model carries its module spec: the module
 * comes back, and the weights become its state dict (as ONNX's reader does with metadata_props).
 */
function withModule(model: Model, text: string, e: FormatErrors, where: string): Model {
  let spec: ModuleSpec;
  try {
    spec = JSON.parse(text) as ModuleSpec;
  } catch {
    return e.fail(`${where} graph_module.metadata ${METADATA_KEY}`, `a module spec as JSON under ${MODULE_KEY}`);
  }
  if (typeof spec !== 'object' || spec === null || typeof spec.type !== 'string') return e.fail(`${where} graph_module.metadata`, `a module spec: an object with a string "type"`);
  if (spec.type === 'Graph') return model;
  let params;
  try {
    params = expectedParams(spec);
  } catch (err) {
    if (err instanceof SpecFieldError) e.fail(`${where} module spec${err.path ? ` at ${err.path}` : ''}`, err.message);
    throw err;
  }
  const weights = new Map<string, Tensor>();
  for (const p of params) {
    const t = model.graph!.initializers.get(p.key);
    e.check(t !== undefined && t.shape.length === p.shape.length && t.shape.every((d, i) => d === p.shape[i]), `weight ${JSON.stringify(escapeControl(p.key))}`, `a [${p.shape.join(', ')}] tensor, as the module spec says`);
    weights.set(p.key, t);
  }
  return { ...model, weights, module: spec };
}

function carriedMetadata(gm: JsonObject): Record<string, string> {
  const metadata = gm['metadata'];
  const text = isObject(metadata) ? metadata[METADATA_KEY] : undefined;
  if (typeof text !== 'string') return {};
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
    return Object.fromEntries(Object.entries(value).filter((x): x is [string, string] => typeof x[1] === 'string'));
  } catch {
    return {};
  }
}

/** Every value name a node or the graph output reads (the as_tensor/as_name leaves of their arguments). */
function readNames(graph: JsonObject): Set<string> {
  const out = new Set<string>();
  const walk = (v: Json | undefined, depth: number): void => {
    if (depth > 8 || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) return v.forEach((x) => walk(x, depth + 1));
    for (const [k, x] of Object.entries(v)) {
      if ((k === 'as_tensor' || k === 'arg') && isObject(x) && typeof x['name'] === 'string') out.add(x['name']);
      if (k === 'as_name' && typeof x === 'string') out.add(x);
      walk(x, depth + 1);
    }
  };
  for (const n of Array.isArray(graph['nodes']) ? graph['nodes'] : []) if (isObject(n)) walk(n['inputs'], 0);
  walk(graph['outputs'], 0);
  return out;
}

/**
 * The names a program written by modelbridge had before they became Python identifiers (its
 * writer keeps them in graph_module.metadata); empty maps for programs from torch.
 */
function originalNames(gm: JsonObject): { inputs: Record<string, string>; outputs: Record<string, string>; weights: Record<string, string> } {
  const empty = { inputs: {}, outputs: {}, weights: {} };
  const metadata = gm['metadata'];
  const text = isObject(metadata) ? metadata[NAMES_KEY] : undefined;
  if (typeof text !== 'string') return empty;
  try {
    const value = JSON.parse(text) as unknown;
    const map = (v: unknown): Record<string, string> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).filter((x): x is [string, string] => typeof x[1] === 'string')) : {});
    const o = value as Record<string, unknown>;
    return { inputs: map(o['inputs']), outputs: map(o['outputs']), weights: map(o['weights']) };
  } catch {
    return empty;
  }
}

/** SymInt arithmetic on int64 [1] tensors: a name (a sym value) or an int constant per operand. */
function lowerSymOp(call: Call, op: string): void {
  const lo = call.lo;
  const e = lo.e;
  const operands = call.positional().map((a: Json, i) => {
    const [tag, v] = union(a, `${call.where} argument ${i}`, e);
    if (tag === 'as_int') return lo.ints([asInt(v, `${call.where} argument ${i}`, e)]);
    if (tag === 'as_sym_int') {
      const [t2, v2] = union(v, `${call.where} argument ${i}`, e);
      if (t2 === 'as_int') return lo.ints([asInt(v2, `${call.where} argument ${i}`, e)]);
      return lo.value(asString(v2, `${call.where} argument ${i}`, e), `${call.where} argument ${i}`);
    }
    return call.fail(`SymInt or int operands, not ${tag}`);
  });
  call.lo.node(op, operands, {}, [call.out()]);
}

/** Drops nodes nothing reads (the permutes Gemm absorbed, skipped checks), keeping the order. */
export function liveNodes(nodes: readonly Node[], outputs: readonly string[]): Node[] {
  const live = new Set(outputs);
  const keep = new Array<boolean>(nodes.length).fill(false);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (n.outputs.some((o) => live.has(o))) {
      keep[i] = true;
      for (const x of n.inputs) live.add(x);
    }
  }
  return nodes.filter((_, i) => keep[i]);
}

