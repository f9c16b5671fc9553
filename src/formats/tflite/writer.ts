import { mkdirSync } from '../../core/vfs.js';
import { dirname } from 'node:path';
import { Builder, type Offset } from 'flatbuffers';
import { writeFileAtomic } from '../../core/atomic.js';
import type { DType } from '../../core/dtypes.js';
import { UsageError } from '../../core/errors.js';
import type { Graph } from '../../core/graph.js';
import type { Model, Signature } from '../../core/model.js';
import { allocate, Tensor } from '../../core/tensor.js';
import { Session } from '../../runtime/executor.js';
import { defaultSignature } from '../../core/model.js';
import type { WriteOptions } from '../format.js';
import { lowerGraph, refuseUnmapped, type TflOp, type TflTensorSpec, type Lowered } from './export-ops.js';
import {
  Buffer as FbBuffer,
  Model as FbModel,
  Operator as FbOperator,
  Metadata as FbMetadata,
  OperatorCode as FbOperatorCode,
  QuantizationParameters as FbQuantizationParameters,
  SignatureDef as FbSignatureDef,
  SubGraph as FbSubGraph,
  Tensor as FbTensor,
  TensorMap as FbTensorMap,
} from './schema/index.js';

/**
 * Writes a Model as a .tflite FlatBuffer that LiteRT runs: the graph lowered to TFLite builtin
 * operators (export-ops.ts: NCHW convolutions and pools between TRANSPOSEs, since TFLite's are
 * NHWC, with inverse pairs cancelled), weights as float32 buffers, the model's signature as a
 * SignatureDef. Every tensor's shape comes from one run of modelbridge's runtime on zeros (sizes
 * unknown in the source, a batch, taken as 1), which also gives the values of what depends on
 * shapes only (Shape -> Gather -> Concat chains fold into constants). Deterministic: the same
 * model gives the same bytes.
 *
 * Buffers sit inside the FlatBuffer (16-byte aligned, as TFLite's mmap-friendly layout wants)
 * while the file stays under the FlatBuffer format's 2 GiB; past that, or when asked
 * (`offsetBuffers`), they follow it at 64-byte aligned offsets given by Buffer.offset/size, the
 * layout TFLite's converter writes for large models.
 */
export interface TfliteWriteOptions {
  /** Store buffers after the FlatBuffer (offset/size) even when it would fit under 2 GiB. */
  readonly offsetBuffers?: boolean;
  /**
   * Post-training weight quantization as TFLiteConverter does it: float16 stores every float32
   * weight as float16 behind a DEQUANTIZE; dynamic-int8 stores the weights of FULLY_CONNECTED,
   * CONV_2D and DEPTHWISE_CONV_2D with 1024 or more elements as symmetric int8 per output channel,
   * which LiteRT's hybrid kernels run with float activations.
   */
  readonly quantize?: 'float16' | 'dynamic-int8';
}

function tfliteQuantization(q: WriteOptions['quantize']): TfliteWriteOptions['quantize'] {
  if (q === undefined || q === 'float16' || q === 'dynamic-int8') return q;
  throw new UsageError(`--quantize ${q} applies to tfjs output only; TFLite takes float16 or dynamic-int8`);
}

/** What the FlatBuffer may hold inline; TFLite's converter switches to offset buffers there too. */
const INLINE_LIMIT = 2 ** 31 - 1 - 64 * 1024 * 1024;
const OFFSET_ALIGN = 64;

export function writeTflite(model: Model, path: string, options: WriteOptions & Pick<TfliteWriteOptions, 'offsetBuffers'> = {}): string[] {
  const parts = tfliteParts(model, { ...options, quantize: tfliteQuantization(options.quantize) });
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, (append) => {
    append(parts.flatbuffer);
    let at = parts.flatbuffer.byteLength;
    for (const b of parts.trailing) {
      if (b.offset > at) append(new Uint8Array(b.offset - at));
      for (const chunk of b.tensor.source.chunks(1 << 24)) append(chunk);
      at = b.offset + b.tensor.byteLength;
    }
  });
  return [path];
}

/** The whole file in memory (tests, and models small enough for it). */
export function tfliteBytes(model: Model, options: TfliteWriteOptions = {}): Uint8Array {
  const parts = tfliteParts(model, options);
  const end = parts.trailing.length ? parts.trailing[parts.trailing.length - 1]!.offset + parts.trailing[parts.trailing.length - 1]!.tensor.byteLength : parts.flatbuffer.byteLength;
  const out = new Uint8Array(end);
  out.set(parts.flatbuffer, 0);
  for (const b of parts.trailing) out.set(b.tensor.bytes(), b.offset);
  return out;
}

interface Parts {
  readonly flatbuffer: Uint8Array;
  readonly trailing: readonly { readonly offset: number; readonly tensor: Tensor }[];
}

function tfliteParts(model: Model, options: TfliteWriteOptions): Parts {
  const graph = model.graph;
  if (!graph) throw new UsageError('writing .tflite needs a model with a graph (a bare state dict has none: give --module)');
  const signature = model.signatures[0] ?? defaultSignature(graph);
  const dataFree = dataFreeValues(graph);
  refuseUnmapped(graph, dataFree);
  const probe = probeValues(graph, dataFree);
  const lowered = quantized(lowerGraph(graph, probe), options.quantize);
  const weightBytes = lowered.tensors.reduce((a, t) => a + (t.data?.byteLength ?? 0), 0);
  const offsets = options.offsetBuffers === true || weightBytes > INLINE_LIMIT;
  const first = build(lowered, model, signature, graph, offsets ? [] : null);
  if (!offsets) return { flatbuffer: first.bytes, trailing: [] };
  // Offsets are absolute, so the FlatBuffer's size must be known first: build it with the
  // offsets it will have (its size does not depend on their values: 8-byte fields either way).
  let at = align(first.bytes.byteLength + 16, OFFSET_ALIGN);
  const placed = first.order.map((tensor) => {
    const offset = at;
    at = align(at + tensor.byteLength, OFFSET_ALIGN);
    return { offset, tensor };
  });
  const second = build(lowered, model, signature, graph, placed.map((p) => p.offset));
  // Same tables, same 8-byte offset fields: the FlatBuffer keeps the size the offsets assumed.
  if (second.bytes.byteLength !== first.bytes.byteLength) throw new Error('tflite writer: the FlatBuffer changed size between its sizing and final passes');
  return { flatbuffer: second.bytes, trailing: placed };
}

const align = (n: number, a: number): number => Math.ceil(n / a) * a;

/** TFLiteConverter's dynamic-range quantization leaves smaller weights in float32. */
const DYNAMIC_MIN_ELEMENTS = 1024;
/** The weight input and its output-channel axis, per op TFLite runs as a hybrid kernel. */
const HYBRID: ReadonlyMap<number, { readonly input: number; readonly axis: number }> = new Map([
  [9, { input: 1, axis: 0 }], // FULLY_CONNECTED [units, k]
  [3, { input: 1, axis: 0 }], // CONV_2D [out, h, w, in]
  [4, { input: 1, axis: 3 }], // DEPTHWISE_CONV_2D [1, h, w, out]
]);
const DEQUANTIZE = 6;

/** The lowered graph with its weights quantized as TFLiteConverter's post-training modes do. */
function quantized(g: Lowered, mode: TfliteWriteOptions['quantize']): Lowered {
  if (!mode) return g;
  const tensors = [...g.tensors];
  let ops = [...g.ops];
  if (mode === 'dynamic-int8') {
    const done = new Set<number>();
    for (const op of ops) {
      const hybrid = HYBRID.get(op.code);
      const index = hybrid ? op.inputs[hybrid.input] : undefined;
      if (!hybrid || index === undefined || index < 0 || done.has(index)) continue;
      const t = tensors[index]!;
      if (!t.data || t.dtype !== 'float32' || t.data.size < DYNAMIC_MIN_ELEMENTS) continue;
      done.add(index);
      tensors[index] = { ...t, ...symmetricInt8(t.data, hybrid.axis) };
    }
    return { ...g, tensors, ops };
  }
  // float16: every float32 weight becomes float16, widened back by a DEQUANTIZE before its readers.
  const widened = new Map<number, number>();
  const dequantize: TflOp[] = [];
  for (let i = 0; i < g.tensors.length; i++) {
    const t = g.tensors[i]!;
    if (!t.data || t.dtype !== 'float32' || !ops.some((o) => o.inputs.includes(i))) continue;
    tensors[i] = { ...t, name: t.name, dtype: 'float16', data: Tensor.from('float16', t.data.shape, t.data.toFloat32()) };
    const out = tensors.push({ name: `${t.name}/dequantize`, shape: t.shape, dtype: 'float32' }) - 1;
    widened.set(i, out);
    dequantize.push({ code: DEQUANTIZE, inputs: [i], outputs: [out] });
  }
  ops = [...dequantize, ...ops.map((o) => ({ ...o, inputs: o.inputs.map((i) => widened.get(i) ?? i) }))];
  return { ...g, tensors, ops };
}

/**
 * Symmetric int8 per channel, TFLite's formula (SymmetricQuantizeFloats): scale = max|w| / 127,
 * q = round(w * (127 / max|w|)) half away from zero, clamped to [-127, 127], in float32; an
 * all-zero channel has scale 1.
 */
function symmetricInt8(w: Tensor, axis: number): Pick<TflTensorSpec, 'dtype' | 'data' | 'quantization'> {
  const values = w.toFloat32();
  const channels = w.shape[axis]!;
  const inner = w.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const range = new Float32Array(channels);
  for (let i = 0; i < values.length; i++) {
    const c = Math.floor(i / inner) % channels;
    range[c] = Math.max(range[c]!, Math.abs(values[i]!));
  }
  const f = Math.fround;
  const scale = Array.from(range, (r) => (r === 0 ? 1 : f(r / 127)));
  const inverse = Array.from(range, (r) => (r === 0 ? 0 : f(127 / r)));
  const q = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const c = Math.floor(i / inner) % channels;
    const x = f(values[i]! * inverse[c]!);
    const r = Math.sign(x) * Math.round(Math.abs(x));
    q[i] = Math.max(-127, Math.min(127, r));
  }
  return { dtype: 'int8', data: Tensor.fromArray('int8', w.shape, q), quantization: { scale, zeroPoint: new Array<number>(channels).fill(0), axis } };
}

/** TensorType codes of the dtypes TFLite stores. */
const TENSOR_TYPES: Partial<Record<DType, number>> = {
  float32: 0, float16: 1, int32: 2, uint8: 3, int64: 4, bool: 6, int16: 7, complex64: 8, int8: 9, float64: 10, uint64: 12, uint32: 15, uint16: 16, bfloat16: 18,
};

/**
 * Serializes the lowered graph. `offsets` null: buffers inline; else the absolute file offsets
 * of the non-empty buffers in order (an empty list for the sizing pass, which writes zeros).
 */
function build(g: Lowered, model: Model, signature: Signature, graph: Graph, offsets: readonly number[] | null): { bytes: Uint8Array; order: Tensor[] } {
  // Sized for the weights from the start: a builder that doubles as it fills holds its old and its
  // new buffer at once, and a copy of the result at the end was a third (ViT-B/16 peaked at 880 MB).
  // The bytes do not depend on it (a FlatBuffer is aligned from its end).
  const inline = offsets === null ? g.tensors.reduce((n, t) => n + (t.data ? t.data.byteLength + 32 : 0), 0) : 0;
  const b = new Builder(inline + 65536 + 512 * g.tensors.length);
  const order: Tensor[] = [];
  // Buffer 0 is the empty sentinel every tensor without data points at.
  const bufferOffsets: Offset[] = [FbBuffer.createBuffer(b, 0, 0n, 0n)];
  const bufferOf: number[] = [];
  for (const t of g.tensors) {
    if (!t.data) {
      bufferOf.push(0);
      continue;
    }
    const k = order.length;
    order.push(t.data);
    if (offsets === null) {
      const bytes = t.data.bytes();
      b.prep(16, bytes.byteLength);
      const data = b.createByteVector(bytes);
      bufferOffsets.push(FbBuffer.createBuffer(b, data, 0n, 0n));
    } else {
      FbBuffer.startBuffer(b);
      // The sizing pass writes 1 (not 0, which the builder would omit as the default).
      FbBuffer.addOffset(b, BigInt(offsets[k] ?? 1));
      FbBuffer.addSize(b, BigInt(t.data.byteLength));
      bufferOffsets.push(FbBuffer.endBuffer(b));
    }
    bufferOf.push(bufferOffsets.length - 1);
  }

  const tensorOffsets = g.tensors.map((t, i) => {
    const name = b.createString(t.name);
    const shape = FbTensor.createShapeVector(b, [...t.shape]);
    const signature = t.signature?.includes(-1) ? FbTensor.createShapeSignatureVector(b, [...t.signature]) : 0;
    const type = TENSOR_TYPES[t.dtype];
    if (type === undefined) throw new UsageError(`tensor ${t.name}: TFLite has no ${t.dtype} tensors`);
    let quantization = 0;
    if (t.quantization) {
      const scale = FbQuantizationParameters.createScaleVector(b, [...t.quantization.scale]);
      const zeroPoint = FbQuantizationParameters.createZeroPointVector(b, t.quantization.zeroPoint.map((z) => BigInt(z)));
      FbQuantizationParameters.startQuantizationParameters(b);
      FbQuantizationParameters.addScale(b, scale);
      FbQuantizationParameters.addZeroPoint(b, zeroPoint);
      FbQuantizationParameters.addQuantizedDimension(b, t.quantization.axis);
      quantization = FbQuantizationParameters.endQuantizationParameters(b);
    }
    FbTensor.startTensor(b);
    FbTensor.addShape(b, shape);
    if (quantization) FbTensor.addQuantization(b, quantization);
    FbTensor.addType(b, type);
    FbTensor.addBuffer(b, bufferOf[i]!);
    FbTensor.addName(b, name);
    if (signature) FbTensor.addShapeSignature(b, signature);
    if (t.variable) FbTensor.addIsVariable(b, true);
    FbTensor.addHasRank(b, true);
    return FbTensor.endTensor(b);
  });

  const codes: number[] = [];
  const codeIndex = (code: number): number => {
    let k = codes.indexOf(code);
    if (k < 0) k = codes.push(code) - 1;
    return k;
  };
  const operatorOffsets = g.ops.map((op: TflOp) => {
    const opcode = codeIndex(op.code);
    const inputs = FbOperator.createInputsVector(b, op.inputs);
    const outputs = FbOperator.createOutputsVector(b, op.outputs);
    const options = op.options ? op.options.build(b) : 0;
    FbOperator.startOperator(b);
    FbOperator.addOpcodeIndex(b, opcode);
    FbOperator.addInputs(b, inputs);
    FbOperator.addOutputs(b, outputs);
    if (op.options) {
      FbOperator.addBuiltinOptionsType(b, op.options.type);
      FbOperator.addBuiltinOptions(b, options);
    }
    return FbOperator.endOperator(b);
  });
  const codeOffsets = codes.map((code) => {
    FbOperatorCode.startOperatorCode(b);
    // Codes past 127 live in builtin_code only; the byte field says PLACEHOLDER_FOR_GREATER_OP_CODES.
    FbOperatorCode.addDeprecatedBuiltinCode(b, Math.min(code, 127));
    FbOperatorCode.addVersion(b, 1);
    FbOperatorCode.addBuiltinCode(b, code);
    return FbOperatorCode.endOperatorCode(b);
  });

  const subgraph = FbSubGraph.createSubGraph(
    b,
    FbSubGraph.createTensorsVector(b, tensorOffsets),
    FbSubGraph.createInputsVector(b, [...g.inputs]),
    FbSubGraph.createOutputsVector(b, [...g.outputs]),
    FbSubGraph.createOperatorsVector(b, operatorOffsets),
    b.createString('main'),
  );

  // The model's string metadata as TFLite Metadata entries, each a buffer of UTF-8 text.
  const metadataOffsets = Object.keys(model.metadata)
    .filter((k) => !k.startsWith('tflite.'))
    .sort()
    .map((name) => {
      const bytes = new TextEncoder().encode(model.metadata[name]!);
      bufferOffsets.push(FbBuffer.createBuffer(b, b.createByteVector(bytes), 0n, 0n));
      return FbMetadata.createMetadata(b, b.createString(name), bufferOffsets.length - 1);
    });

  const map = (entries: ReadonlyMap<string, string>): Offset[] =>
    [...entries].map(([key, value]) => {
      const index = g.tensorIndex.get(value);
      if (index === undefined) throw new UsageError(`signature ${signature.name}: ${key} names ${value}, which the graph does not compute`);
      return FbTensorMap.createTensorMap(b, b.createString(key), index);
    });
  const sigInputs = [...signature.inputs].filter(([, v]) => !graph.initializers.has(v));
  const sigDef = FbSignatureDef.createSignatureDef(
    b,
    FbSignatureDef.createInputsVector(b, map(new Map(sigInputs))),
    FbSignatureDef.createOutputsVector(b, map(signature.outputs)),
    b.createString(signature.name === 'default' ? 'serving_default' : signature.name),
    0,
  );

  const root = FbModel.createModel(
    b,
    3,
    FbModel.createOperatorCodesVector(b, codeOffsets),
    FbModel.createSubgraphsVector(b, [subgraph]),
    b.createString('modelbridge'),
    FbModel.createBuffersVector(b, bufferOffsets),
    0,
    metadataOffsets.length ? FbModel.createMetadataVector(b, metadataOffsets) : 0,
    FbModel.createSignatureDefsVector(b, [sigDef]),
  );
  b.finish(root, 'TFL3');
  // a view of the builder's buffer, not a copy: what is left of its capacity is the slack above
  return { bytes: b.asUint8Array(), order };
}

export interface Probe {
  /** Every value's shape with sizes unknown in the source taken as 1. */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  /** The same with -1 where a size follows an unknown input size (TFLite's shape_signature). */
  readonly signatures: ReadonlyMap<string, readonly number[]>;
  readonly dtypes: ReadonlyMap<string, DType>;
  /** Values that depend on no input data (initializers, and what is computed from them and from shapes only). */
  readonly constants: ReadonlyMap<string, Tensor>;
  /** Constants whose value changes with an unknown input size (a batch size read by Shape). */
  readonly dynamic: ReadonlySet<string>;
  /** Constants that are all zeros in both runs (an RNN's initial state made by ConstantOfShape of the batch). */
  readonly zeros: ReadonlySet<string>;
}

/** Ops whose output depends on their input's shape only. */
const SHAPE_ONLY = new Set(['Shape', 'Size']);

/**
 * Every value's shape and dtype, from two runtime runs on zeros (sizes unknown in the source
 * taken as 1, then 2: a size that differs between the runs follows them, and is -1 in the
 * signature), and the values of what is constant: initializers, and outputs of nodes whose
 * inputs are all constant or that read only a shape.
 */
/** Most elements a tensor may have to be looked at as a zero state (an RNN's initial state is small; a weight is not read whole for this). */
const ZERO_PROBE_ELEMENTS = 1 << 16;

/** Whether every element is zero, for a tensor small enough to be a zero state; false for larger ones. */
function allZeros(t: Tensor): boolean {
  if (t.size > ZERO_PROBE_ELEMENTS || t.dtype === 'string') return false;
  const data = t.storage();
  for (let i = 0; i < data.length; i++) if (Number(data[i]) !== 0) return false;
  return true;
}

/** The values that depend on no input data: initializers, and what nodes compute from them and from shapes only (in the graph's order). */
function dataFreeValues(graph: Graph): Set<string> {
  const names = new Set<string>(graph.initializers.keys());
  for (const n of graph.nodes) {
    const constant = SHAPE_ONLY.has(n.op) || n.op === 'Constant' || (n.inputs.length > 0 && n.inputs.every((i) => i === '' || names.has(i)));
    if (constant) for (const o of n.outputs) if (o) names.add(o);
  }
  return names;
}

/**
 * The probe runs. Only the values that depend on no input data (`constantNames`, from
 * dataFreeValues), the graph's outputs and values nothing reads (so every node runs) are kept as
 * the runs' outputs: every other value is let go once read, its shape and type noted as it is
 * computed. Asking for every value held a whole forward pass's activations (ViT-B/16: 1 GB).
 */
export function probeValues(graph: Graph, constantNames: ReadonlySet<string>): Probe {
  const read = new Set(graph.nodes.flatMap((n) => n.inputs));
  const produced = new Set(graph.nodes.flatMap((n) => n.outputs));
  const keep = new Set<string>(graph.outputs.map((o) => o.name).filter((name) => produced.has(name)));
  for (const n of graph.nodes) {
    for (const o of n.outputs) if (o && (constantNames.has(o) || !read.has(o))) keep.add(o);
  }
  const a = probeRun(graph, 1, keep);
  // With every input size fixed the run at 2 is the run at 1 over again (a whole forward pass).
  const dynamicInputs = graph.inputs.some((i) => !graph.initializers.has(i.name) && i.shape?.some((d) => typeof d !== 'number'));
  const b = dynamicInputs ? probeRun(graph, 2, keep) : a;
  const signatures = new Map<string, readonly number[]>();
  for (const [name, shape] of a.shapes) {
    const other = b.shapes.get(name);
    signatures.set(name, shape.map((d, i) => (other && other[i] !== d ? -1 : d)));
  }
  const constants = new Map<string, Tensor>(graph.initializers);
  const dynamic = new Set<string>();
  const zeros = new Set<string>([...graph.initializers].filter(([, t]) => allZeros(t)).map(([name]) => name));
  for (const n of graph.nodes) {
    const constant = SHAPE_ONLY.has(n.op) || n.op === 'Constant' || (n.inputs.length > 0 && n.inputs.every((i) => i === '' || constants.has(i)));
    if (!constant) continue;
    for (const o of n.outputs) {
      const va = a.values[o];
      if (!o || !va) continue;
      constants.set(o, va);
      const vb = b.values[o];
      if (vb && allZeros(va) && allZeros(vb)) zeros.add(o);
      if (n.inputs.some((i) => dynamic.has(i)) || !vb || vb.shape.join() !== va.shape.join() || vb.toNumbers().join() !== va.toNumbers().join()) dynamic.add(o);
    }
  }
  return { shapes: a.shapes, signatures, dtypes: a.dtypes, constants, dynamic, zeros };
}

function probeRun(graph: Graph, unknown: number, keep: ReadonlySet<string>): { shapes: Map<string, readonly number[]>; dtypes: Map<string, DType>; values: Record<string, Tensor> } {
  const inputs = graph.inputs.filter((i) => !graph.initializers.has(i.name));
  const feeds: Record<string, Tensor> = {};
  for (const i of inputs) {
    if (i.shape === null) throw new UsageError(`input ${i.name} has no known rank: TFLite needs every input's shape`);
    const shape = i.shape.map((d) => (typeof d === 'number' ? d : unknown));
    feeds[i.name] = Tensor.fromArray(i.dtype, shape, allocate(i.dtype, shape.reduce((x, y) => x * y, 1)));
  }
  const shapes = new Map<string, readonly number[]>();
  const dtypes = new Map<string, DType>();
  for (const [name, t] of [...Object.entries(feeds), ...graph.initializers]) {
    shapes.set(name, t.shape);
    dtypes.set(name, t.dtype);
  }
  const note = (name: string, shape: readonly number[], dtype: DType) => {
    shapes.set(name, shape);
    dtypes.set(name, dtype);
  };
  const outputs = [...keep].map((name) => ({ name, dtype: 'float32' as const, shape: null }));
  const values = new Session({ ...graph, outputs }, { once: true, observe: note }).run(feeds);
  return { shapes, dtypes, values };
}
