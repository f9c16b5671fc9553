import type { DType } from '../../core/dtypes.js';
import { formatErrors, UsageError } from '../../core/errors.js';
import { attrInt, attrInts, type Dim, type Graph } from '../../core/graph.js';
import { defaultSignature, type Model } from '../../core/model.js';
import { MemorySource } from '../../core/source.js';
import { Tensor } from '../../core/tensor.js';
import { MODULE_KEY, SIGNATURE_KEY } from '../../module/spec.js';
import { bundleFromModel } from '../../module/bundle.js';
import type { WriteOptions } from '../format.js';
import { exportGraph, TfNames, type NodeDefObject } from '../tf/export.js';
import type { TensorProto } from '../tf/messages.js';
import { shapeToProto, tensorFromProto, tfCode } from '../tf/tensor.js';
import { attrToJson, shapeJson, typeName, type Json, type JsonObject } from './attrs.js';
import { cancelTransposes } from './layout.js';
import { TFJS_RUNS } from './ops.js';
import { quantize, type QuantizationDType } from './quantize.js';
import { DTYPES_KEY } from './reader.js';
import { shardSizes, specJson, type EncodedWeight, type WeightSpec } from './weights.js';

/**
 * Model -> TF.js graph model: the IR graph goes through the TensorFlow exporter (src/formats/tf,
 * NHWC convolutions with HWIO filters, weights as Consts named after their IR names), the layout
 * pass drops the Transpose pairs between NHWC ops (layout.ts), and every Const's value moves to
 * the weight shards as the converter does. Same model and options, same bytes.
 */
export interface TfjsWriteOptions extends WriteOptions {
  /** Store float weights as uint8/uint16 (affine) or float16, as `tensorflowjs_converter --quantize_*`. */
  readonly quantize?: QuantizationDType;
}

/** The converter's default shard size: 4 MiB, the largest file every browser caches. */
export const DEFAULT_SHARD_BYTES = 4 * 1024 * 1024;

export interface GraphModelFiles {
  readonly modelJson: string;
  /** Shard file names (relative to model.json) and their sizes. */
  readonly shards: readonly { readonly name: string; readonly byteLength: number }[];
  /** The weights the shards hold, back to back in manifest order (see writeShards). */
  readonly weights: readonly EncodedWeight[];
}

/** TF.js keeps float32, int32, bool, string and complex64; other dtypes are stored converted. */
const STORED: Partial<Record<DType, 'float32' | 'int32'>> = {
  float16: 'float32',
  bfloat16: 'float32',
  float64: 'float32',
  int8: 'int32',
  int16: 'int32',
  int64: 'int32',
  uint8: 'int32',
  uint16: 'int32',
  uint32: 'int32',
  uint64: 'int32',
};

/**
 * Input dtypes a TF.js graph model can declare: its own, and those loadGraphModel reads as one of
 * them (tfjs-converter's parseDtypeParam: DT_INT64, DT_INT8 and DT_UINT8 as int32, DT_HALF and
 * DT_DOUBLE as float32), as tensorflowjs_converter leaves an int64 input_ids. The placeholder keeps
 * the model's dtype, so a reader gets the model back; TF.js is fed int32 ids.
 */
const TFJS_INPUT_DTYPES: ReadonlySet<DType> = new Set(['float32', 'int32', 'bool', 'int64', 'int8', 'uint8', 'float16', 'float64']);

export function graphModelFiles(model: Model, options: TfjsWriteOptions = {}, shardPrefix = ''): GraphModelFiles {
  const graph = model.graph;
  if (!graph) throw new UsageError('a TF.js graph model needs the model\'s graph: this is a bare state dict (give --module)');
  const shardBytes = options.shardBytes ?? DEFAULT_SHARD_BYTES;
  if (!Number.isSafeInteger(shardBytes) || shardBytes < 1) throw new UsageError(`shard size must be a positive number of bytes, not ${shardBytes}`);
  for (const i of graph.inputs) {
    if (!graph.initializers.has(i.name) && !TFJS_INPUT_DTYPES.has(i.dtype)) {
      throw new UsageError(`input ${i.name} is ${i.dtype}: TF.js computes in float32, int32 and bool only and reads int64, int8, uint8, float16 and float64 placeholders as those (convert the model first)`);
    }
  }

  refuseWhatTfjsCannotRun(graph);
  // Weights are Consts named after their IR names; a transformed weight (an HWIO filter) too.
  const names = new TfNames();
  const weightNodes = new Map<string, Tensor>();
  const used = new Set<string>();
  const exported = exportGraph(
    graph,
    {
      // TF.js runs control flow v2 (StatelessWhile with functions in modelTopology.library) in executeAsync.
      functions: true,
      weight(name, tensor, nodeName, emit) {
        used.add(name);
        weightNodes.set(nodeName, tensor);
        emit(constNode(nodeName, tensor.dtype, tensor.shape));
        return nodeName;
      },
    },
    names,
  );
  const foreign = [...exported.nodes, ...exported.functions.flatMap((f) => f.node_def)].find((n) => !TFJS_RUNS.has(n.op));
  if (foreign) {
    // The exporter names a node's last TF node after its output; name the IR node it came from.
    const origin = graph.nodes.find((n) => n.outputs.includes(foreign.name) || n.name === foreign.name || (!!n.outputs[0] && foreign.name.startsWith(`${n.outputs[0]}/`)));
    const from = origin ? `IR node ${origin.name || origin.outputs[0]} (${origin.op})` : 'an IR op TF.js lacks';
    throw new UsageError(`TF.js cannot run op ${foreign.op} (TF node ${foreign.name}, written for ${from})`);
  }
  let nodes = [...exported.nodes];
  // State-dict entries the graph never reads (BatchNorm's num_batches_tracked) are kept too.
  for (const [name, tensor] of model.weights) {
    // Constants a TF import made ("node#const") that the rewritten graph no longer reads are no state-dict entry.
    if (used.has(name) || (name.includes('#const') && graph.initializers.has(name))) continue;
    const nodeName = names.take(name);
    weightNodes.set(nodeName, tensor);
    nodes.push(constNode(nodeName, tensor.dtype, tensor.shape));
  }

  const constants = new Map(nodes.filter((n) => n.op === 'Const').map((n) => [n.name, weightNodes.get(n.name) ?? protoTensor(n)]));
  const tfName = (ref: string) => ref.replace(/:0$/, '');
  const keep = new Set([...exported.inputs.values(), ...exported.outputs.values()].map(tfName));
  nodes = cancelTransposes(nodes, (t) => (t.input[1] ? constants.get(t.input[1])?.toNumbers() : undefined), keep, names);
  const read = new Set(nodes.flatMap((n) => n.input));
  nodes = nodes.filter((n) => n.op !== 'Const' || read.has(n.name) || weightNodes.has(n.name));

  // Every Const's value goes to the one weight group, in node order.
  const retyped: Record<string, string> = {};
  const encoded: EncodedWeight[] = [];
  nodes = nodes.map((n) => {
    if (n.op !== 'Const') return n;
    const t = constants.get(n.name)!;
    const w = encodeWeight(n.name, t, options.quantize);
    if (STORED[t.dtype]) retyped[n.name] = t.dtype;
    encoded.push(w.weight);
    return constNode(n.name, w.constDType, t.shape);
  });

  // The functions' Consts: TF.js looks their values up among the weights by node name, as
  // tensorflowjs_converter stores them.
  const library = exported.functions.map((f) => ({
    signature: {
      name: f.signature.name,
      inputArg: f.signature.input_arg.map((a) => ({ name: a.name, type: typeName(a.type) })),
      outputArg: f.signature.output_arg.map((a) => ({ name: a.name, type: typeName(a.type) })),
    },
    nodeDef: f.node_def.map((n) => {
      if (n.op !== 'Const') return nodeJson(n);
      const t = protoTensor(n);
      encoded.push(encodeWeight(n.name, t, undefined).weight);
      return nodeJson(constNode(n.name, t.dtype, t.shape));
    }),
    ret: Object.fromEntries(Object.keys(f.ret).sort().map((k) => [k, f.ret[k]!])),
  }));
  const shards = shardSizes(encoded, shardBytes).map((byteLength, i, all) => ({ name: `${shardPrefix}group1-shard${i + 1}of${all.length}.bin`, byteLength }));
  const signature = model.signatures[0] ?? defaultSignature(graph);
  const info = (list: typeof graph.inputs, value: string) => list.find((v) => v.name === value);
  const tensorInfo = (ref: string | undefined, dtype: DType | undefined, shape: readonly Dim[] | null | undefined): JsonObject => {
    if (ref === undefined) throw new UsageError('the signature names a value that is no graph input or output');
    const d = dtype ?? 'float32';
    return { name: ref, dtype: typeName(tfCode(STORED[d] ?? d)), tensorShape: shapeJson(shapeToProto(shape ?? null) as Parameters<typeof shapeJson>[0]) };
  };
  const sig = {
    inputs: Object.fromEntries([...signature.inputs].map(([key, v]) => [key, tensorInfo(exported.inputs.get(v), info(graph.inputs, v)?.dtype, info(graph.inputs, v)?.shape)])),
    outputs: Object.fromEntries([...signature.outputs].map(([key, v]) => [key, tensorInfo(exported.outputs.get(v), info(graph.outputs, v)?.dtype ?? exported.dtypes.get(v), info(graph.outputs, v)?.shape)])),
  };
  const json: JsonObject = {
    format: 'graph-model',
    generatedBy: 'modelbridge',
    convertedBy: 'modelbridge',
    signature: sig,
    modelTopology: { node: nodes.map(nodeJson), library: library.length ? { function: library } : {}, versions: {} },
  };
  const metadata = userMetadata(model, retyped);
  if (Object.keys(metadata).length) json['userDefinedMetadata'] = metadata;
  json['weightsManifest'] = [{ paths: shards.map((s) => s.name), weights: encoded.map((w) => specJson(w.spec)) }];
  return { modelJson: JSON.stringify(json), shards, weights: encoded };
}

/** A Const as model.json keeps it: dtype and shape only (the value is in the shards). */
/**
 * What TensorFlow runs but TF.js does not, checked on the IR where the node is known: TF.js's
 * convolutions take strides or dilations, not both. (Grouped convolutions are written as one
 * Conv2D per group, which TF.js runs.)
 */
function refuseWhatTfjsCannotRun(graph: Graph): void {
  for (const n of graph.nodes) {
    if (n.op !== 'Conv') continue;
    const strided = (attrInts(n, 'strides') ?? []).some((s) => s > 1);
    const dilated = (attrInts(n, 'dilations') ?? []).some((d) => d > 1);
    if (strided && dilated) throw new UsageError(`node ${n.name} has both strides and dilations above 1, which TF.js's convolutions refuse`);
  }
}

function constNode(name: string, dtype: DType, shape: readonly number[]): NodeDefObject {
  const code = tfCode(dtype);
  return { name, op: 'Const', input: [], attr: { dtype: { type: code }, value: { tensor: { dtype: code, tensor_shape: shapeToProto(shape) } } } };
}

/** A Const's value as exportGraph wrote it (a TensorProto object with tensor_content or typed values). */
function protoTensor(n: NodeDefObject): Tensor {
  const p = (n.attr['value'] as { tensor?: Partial<TensorProto> }).tensor ?? {};
  const shape = p.tensor_shape as { dim?: { size: number }[] } | undefined;
  const full: TensorProto = {
    dtype: p.dtype ?? 0,
    tensor_shape: { dim: (shape?.dim ?? []).map((d) => ({ size: d.size, name: '' })), unknown_rank: false },
    version_number: 0,
    tensor_content: p.tensor_content ?? new Uint8Array(0),
    half_val: p.half_val ?? [],
    float_val: p.float_val ?? [],
    double_val: p.double_val ?? [],
    int_val: p.int_val ?? [],
    string_val: p.string_val ?? [],
    scomplex_val: p.scomplex_val ?? [],
    int64_val: p.int64_val ?? [],
    bool_val: p.bool_val ?? [],
    dcomplex_val: p.dcomplex_val ?? [],
    uint32_val: p.uint32_val ?? [],
    uint64_val: p.uint64_val ?? [],
    float8_val: p.float8_val ?? new Uint8Array(0),
  };
  return tensorFromProto(full, formatErrors('exported graph'), `node ${n.name} value`);
}

/** A Const's weight as stored: its bytes, manifest entry, and the dtype its Const declares. */
function encodeWeight(name: string, t: Tensor, q: QuantizationDType | undefined): { weight: EncodedWeight; constDType: DType } {
  const spec = (dtype: string, extra: Partial<WeightSpec> = {}): WeightSpec => ({ name, shape: [...t.shape], dtype, ...extra });
  if (t.dtype === 'string') {
    const parts = t.strings!.flatMap((s) => [Uint8Array.from(new Uint8Array(new Uint32Array([s.byteLength]).buffer)), s]);
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    parts.reduce((at, p) => (bytes.set(p, at), at + p.byteLength), 0);
    return { weight: { spec: spec('string'), bytes: new MemorySource(bytes) }, constDType: 'string' };
  }
  if (t.dtype === 'float32' || t.dtype === 'int32' || t.dtype === 'bool' || t.dtype === 'complex64') {
    const values = q && t.dtype === 'float32' ? t.toFloat32() : undefined;
    if (q && values && values.every(Number.isFinite)) return quantized(spec, values, q);
    // Stored as they are: the bytes stay where the tensor has them until the shards are written.
    return { weight: { spec: spec(t.dtype), bytes: t.source }, constDType: t.dtype };
  }
  const stored = STORED[t.dtype];
  if (stored === 'float32') {
    const values = t.toFloat32();
    // float16 keeps its exact bits as TF.js's float16 quantization (decoded to float32 exactly).
    const as = t.dtype === 'float16' && (q === undefined || q === 'float16') ? 'float16' : q;
    if (as && values.every(Number.isFinite)) return quantized(spec, values, as);
    return { weight: { spec: spec('float32'), bytes: new MemorySource(new Uint8Array(values.buffer)) }, constDType: 'float32' };
  }
  if (stored === 'int32') {
    const values = t.toNumbers();
    const bad = values.findIndex((v) => !Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31);
    // As tensorflowjs_converter, int64 (and the other integer types) are stored as int32, which
    // TF.js computes in; unlike it, a value that would not survive the cast is refused.
    if (bad >= 0) throw new UsageError(`tensor ${name} (${t.dtype}) holds ${values[bad]}, beyond the int32 TF.js stores ${t.dtype} as`);
    return { weight: { spec: spec('int32'), bytes: new MemorySource(new Uint8Array(Int32Array.from(values).buffer)) }, constDType: 'int32' };
  }
  throw new UsageError(`weight ${name} is ${t.dtype}, which TF.js cannot store`);
}

function quantized(spec: (dtype: string, extra?: Partial<WeightSpec>) => WeightSpec, values: Float32Array, q: QuantizationDType) {
  const { bytes, quantization } = quantize(values, q);
  return { weight: { spec: spec('float32', { quantization: { ...quantization, original_dtype: 'float32' } }), bytes: new MemorySource(bytes) }, constDType: 'float32' as DType };
}

function nodeJson(n: NodeDefObject): JsonObject {
  const out: JsonObject = { name: n.name, op: n.op };
  if (n.input.length) out['input'] = [...n.input];
  const keys = Object.keys(n.attr);
  if (keys.length) out['attr'] = Object.fromEntries(keys.sort().map((k) => [k, attrToJson(n.attr[k] as Record<string, unknown>)]));
  return out;
}

/**
 * userDefinedMetadata: the model's metadata, the torch module spec and signature when the model
 * has them (so reading restores the module), and the dtypes that were stored converted. A key
 * `signature` is left out: TF.js would take it as the model's signature.
 */
function userMetadata(model: Model, retyped: Record<string, string>): Record<string, Json> {
  const out: Record<string, Json> = {};
  const bundle = model.module ? bundleFromModel(model).metadata : model.metadata;
  for (const [k, v] of Object.entries(bundle)) if (k !== 'signature' && (model.module || (k !== MODULE_KEY && k !== SIGNATURE_KEY))) out[k] = v;
  if (Object.keys(retyped).length) out[DTYPES_KEY] = JSON.stringify(retyped);
  return out;
}

