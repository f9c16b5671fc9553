import { readFileSync, statSync } from '../../core/vfs.js';
import { join } from 'node:path';
import { isDType, type DType } from '../../core/dtypes.js';
import { formatErrors, type FormatErrors } from '../../core/errors.js';
import type { Model, Signature } from '../../core/model.js';
import { Tensor } from '../../core/tensor.js';
import { expectedParams, lowerModule } from '../../module/lower.js';
import { MODULE_KEY, SIGNATURE_KEY, type ModuleSpec, type SignatureSpec } from '../../module/spec.js';
import { attrShape, attrType } from '../tf/attrs.js';
import { FlatGraph, parseTensorName, refKey, type TfRef } from '../tf/flatten.js';
import { liftLoopFrames } from '../tf/frames.js';
import { importGraph, type Feed, type Fetch } from '../tf/import.js';
import type { NodeDef, TensorProto } from '../tf/messages.js';
import { dtypeOf, shapeFromProto, standIn, tfCode } from '../tf/tensor.js';
import { emptyAttr, type JsonObject } from './attrs.js';
import { parseGraphModelJson, type GraphModelJson } from './model-json.js';
import { expandTfjsOps } from './ops.js';
import { readWeights } from './weights.js';

/**
 * Reads a TF.js graph model into a runnable Model: model.json's GraphDef, with every Const given
 * its value from the weight shards (dequantized as TF.js does), goes through the TensorFlow
 * importer (src/formats/tf) after the TF.js-only ops are expanded (ops.ts). Inputs and outputs
 * are the signature's, else the Placeholders and the nodes nothing reads.
 *
 * A model.json modelbridge wrote also carries, in userDefinedMetadata, the torch module spec and
 * the dtypes TF.js cannot store (see writer.ts); the module is restored when the weights fit it.
 */
export const DTYPES_KEY = 'modelbridge.tfjs.dtypes';

/** model.json inside a directory, or the file given. */
export function modelJsonPath(path: string): string {
  try {
    return statSync(path).isDirectory() ? join(path, 'model.json') : path;
  } catch {
    return path;
  }
}

/** Ops that are never a model's result even when nothing reads them. */
const NOT_RESULTS = new Set(['Const', 'Placeholder', 'PlaceholderWithDefault', 'NoOp']);

export function readGraphModel(path: string, options: { module?: ModuleSpec } = {}): Model {
  const file = modelJsonPath(path);
  const e: FormatErrors = formatErrors(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return e.fail('path', 'a readable model.json (or a directory holding one)');
  }
  const json = parseGraphModelJson(text, e);
  // Every Const gets back the dtype it had before TF.js stored it (int64 shapes and axes as int32,
  // float16 as float32): the graph's ops still declare the original types (a ConcatV2 of an int64
  // Shape and an int64 constant), which TF.js ignores and modelbridge's runtime does not.
  const tensors = restoreDTypes(readWeights(json.manifest, file, e).tensors, json.metadata[DTYPES_KEY], e);
  const nodes = expandTfjsOps(json.nodes, e).map((n) => (n.op === 'Const' ? withValue(n, tensors.get(n.name), e) : n));
  // The converter lowers a SavedModel's While into a TF1 loop frame; it is folded back (tf/frames.ts).
  // Functions the file holds itself (control flow v2: modelbridge's own While loops) join those.
  const lifted = liftLoopFrames(nodes);
  const functions = [
    ...json.functions.map((f) => ({ ...f, node_def: f.node_def.map((n) => (n.op === 'Const' ? withValue(n, tensors.get(n.name), e) : n)) })),
    ...lifted.functions,
  ];
  const flat = new FlatGraph({ node: lifted.nodes, versions: null, library: functions.length ? { function: functions } : null }, file);
  const io = endpoints(json, lifted.nodes, flat, e);
  const imported = importGraph({ flat, feeds: io.feeds, fetches: io.fetches });
  const graph = imported.graph;
  const signature: Signature = {
    name: 'default',
    inputs: new Map(io.inputKeys.map((k, i) => [k, imported.inputs[i]!])),
    outputs: new Map(io.outputKeys.map((k, i) => [k, imported.outputs[i]!])),
  };

  // Weights no node reads (a torch buffer such as num_batches_tracked) stay part of the model.
  const read = new Set(nodes.flatMap((n) => n.input.map((i) => parseTensorName(i.replace(/^\^/, ''))?.node)));
  const standalone = new Map(nodes.filter((n) => n.op === 'Const' && !read.has(n.name)).map((n) => [n.name, tensors.get(n.name)!] as const));
  const weights = new Map([...graph.initializers, ...standalone]);
  const base = { format: 'tfjs', graph, signatures: [signature], metadata: stringMetadata(json.metadata) };
  const module = options.module ?? jsonValue<ModuleSpec>(json.metadata[MODULE_KEY]);
  const stateDict = module && module.type !== 'Graph' ? moduleWeights(module, weights, file, jsonValue<SignatureSpec>(json.metadata[SIGNATURE_KEY])) : undefined;
  if (stateDict) return { ...base, weights: stateDict, module: module! };
  return { ...base, weights };
}

/**
 * A Const node with its weight as the tensor TF's importer reads (its value moved to the shards):
 * the proto stands for the tensor (standIn), whose bytes stay in the shards until used.
 */
function withValue(n: NodeDef, t: Tensor | undefined, e: FormatErrors): NodeDef {
  if (!t) return e.fail(`node ${n.name}`, 'a Const whose value is in weightsManifest under its name');
  const proto: TensorProto = {
    dtype: tfCode(t.dtype),
    tensor_shape: { dim: t.shape.map((size) => ({ size, name: '' })), unknown_rank: false },
    version_number: 0,
    tensor_content: new Uint8Array(0),
    half_val: [],
    float_val: [],
    double_val: [],
    int_val: [],
    string_val: t.strings ?? [],
    scomplex_val: [],
    int64_val: [],
    bool_val: [],
    dcomplex_val: [],
    uint32_val: [],
    uint64_val: [],
    float8_val: new Uint8Array(0),
  };
  standIn(proto, t);
  return {
    ...n,
    attr: { ...n.attr, dtype: { ...emptyAttr(), value: 'type', type: proto.dtype }, value: { ...emptyAttr(), value: 'tensor', tensor: proto } },
  };
}

interface Endpoints {
  readonly feeds: Feed[];
  readonly fetches: Fetch[];
  readonly inputKeys: string[];
  readonly outputKeys: string[];
}

/** The signature's inputs and outputs, else every Placeholder and every node nothing reads. */
function endpoints(json: GraphModelJson, nodes: readonly NodeDef[], flat: FlatGraph, e: FormatErrors): Endpoints {
  const sig = json.signature;
  const feed = (ref: TfRef, where: string, dtype?: number, shape?: Feed['shape'] | undefined): Feed => {
    const node = flat.node(ref.node);
    e.check(node !== undefined, where, `a tensor of the graph, not ${refKey(ref)}`);
    const code = attrType(node.attr, 'dtype') ?? dtype;
    e.check(code !== undefined, where, 'a dtype (the Placeholder has none)');
    const declared = attrShape(node.attr, 'shape');
    return { ref, dtype: dtypeOf(code, e, `${where} dtype`), shape: declared ? shapeFromProto(declared) : (shape ?? null) };
  };
  const inputs = sig?.inputs.length
    ? sig.inputs.map((i) => ({ key: i.key, feed: feed(i.ref, `signature input ${i.key}`, i.dtype, i.shape ? shapeFromProto(i.shape) : undefined) }))
    : nodes.filter((n) => n.op === 'Placeholder').map((n) => ({ key: n.name, feed: feed({ node: n.name, index: 0 }, `input ${n.name}`) }));
  let outputs: { key: string; fetch: Fetch }[];
  if (sig?.outputs.length) {
    outputs = sig.outputs.map((o) => {
      e.check(flat.node(o.ref.node) !== undefined, `signature output ${o.key}`, `a tensor of the graph, not ${refKey(o.ref)}`);
      return { key: o.key, fetch: { ref: o.ref, ...(o.shape ? { shape: shapeFromProto(o.shape) } : {}) } };
    });
  } else {
    const read = new Set(nodes.flatMap((n) => n.input.map((i) => parseTensorName(i.replace(/^\^/, ''))?.node)));
    outputs = nodes.filter((n) => !read.has(n.name) && !NOT_RESULTS.has(n.op)).map((n) => ({ key: n.name, fetch: { ref: { node: n.name, index: 0 } } }));
  }
  e.check(outputs.length > 0, 'modelTopology', 'at least one output (a signature, or a node nothing reads)');
  return { feeds: inputs.map((i) => i.feed), fetches: outputs.map((o) => o.fetch), inputKeys: inputs.map((i) => i.key), outputKeys: outputs.map((o) => o.key) };
}

/** userDefinedMetadata as the Model's string metadata, less what the reader consumed. */
function stringMetadata(meta: JsonObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) {
    if (k === MODULE_KEY || k === SIGNATURE_KEY || k === DTYPES_KEY) continue;
    out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}

/** A metadata entry holding JSON, as text (how the writer stores it) or inline; undefined if unusable. */
function jsonValue<T>(v: unknown): T | undefined {
  if (typeof v !== 'string') return v !== null && typeof v === 'object' ? (v as T) : undefined;
  try {
    return JSON.parse(v) as T;
  } catch {
    return undefined;
  }
}

/**
 * The state dict of the stored module spec, when the model's weights hold every entry it needs
 * and the spec lowers over them; undefined otherwise (the graph still runs; lift may recover a
 * module when the model is written to a torch format).
 */
function moduleWeights(spec: ModuleSpec, weights: ReadonlyMap<string, Tensor>, file: string, signature: SignatureSpec | undefined): Map<string, Tensor> | undefined {
  try {
    const subset = new Map(expectedParams(spec).map((p) => [p.key, weights.get(p.key)!]));
    if ([...subset.values()].some((t) => t === undefined)) return undefined;
    lowerModule(spec, subset, file, signature);
    return subset;
  } catch {
    return undefined;
  }
}

/**
 * Weights whose dtype TF.js could not store (int64 buffers, float16...) get it back:
 * the writer records the original dtype, and every value it stored converts back exactly.
 */
function restoreDTypes(weights: ReadonlyMap<string, Tensor>, entry: unknown, e: FormatErrors): Map<string, Tensor> {
  const out = new Map(weights);
  const record = jsonValue<Record<string, unknown>>(entry);
  if (!record || typeof record !== 'object') return out;
  for (const [name, dtype] of Object.entries(record)) {
    const t = out.get(name);
    if (!t || typeof dtype !== 'string' || !isDType(dtype) || dtype === t.dtype || t.dtype === 'string' || t.dtype === 'complex64') continue;
    out.set(name, retyped(t, dtype as DType, e, name));
  }
  return out;
}

function retyped(t: Tensor, dtype: DType, e: FormatErrors, name: string): Tensor {
  try {
    return Tensor.from(dtype, t.shape, t.toNumbers());
  } catch {
    return e.fail(`userDefinedMetadata ${DTYPES_KEY}`, `a dtype weight ${name} converts to, not ${dtype}`);
  }
}
