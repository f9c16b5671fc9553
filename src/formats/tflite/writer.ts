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
import { lowerGraph, type TflOp, type Lowered } from './export-ops.js';
import {
  Buffer as FbBuffer,
  Model as FbModel,
  Operator as FbOperator,
  OperatorCode as FbOperatorCode,
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
}

/** What the FlatBuffer may hold inline; TFLite's converter switches to offset buffers there too. */
const INLINE_LIMIT = 2 ** 31 - 1 - 64 * 1024 * 1024;
const OFFSET_ALIGN = 64;

export function writeTflite(model: Model, path: string, options: WriteOptions & TfliteWriteOptions = {}): string[] {
  if (options.quantize !== undefined) throw new UsageError(`--quantize ${options.quantize} does not apply to tflite (it writes float weights)`);
  const parts = tfliteParts(model, options);
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
  const probe = probeValues(graph);
  const lowered = lowerGraph(graph, probe);
  const weightBytes = lowered.tensors.reduce((a, t) => a + (t.data?.byteLength ?? 0), 0);
  const offsets = options.offsetBuffers === true || weightBytes > INLINE_LIMIT;
  const first = build(lowered, signature, graph, offsets ? [] : null);
  if (!offsets) return { flatbuffer: first.bytes, trailing: [] };
  // Offsets are absolute, so the FlatBuffer's size must be known first: build it with the
  // offsets it will have (its size does not depend on their values: 8-byte fields either way).
  let at = align(first.bytes.byteLength + 16, OFFSET_ALIGN);
  const placed = first.order.map((tensor) => {
    const offset = at;
    at = align(at + tensor.byteLength, OFFSET_ALIGN);
    return { offset, tensor };
  });
  const second = build(lowered, signature, graph, placed.map((p) => p.offset));
  // Same tables, same 8-byte offset fields: the FlatBuffer keeps the size the offsets assumed.
  if (second.bytes.byteLength !== first.bytes.byteLength) throw new Error('tflite writer: the FlatBuffer changed size between its sizing and final passes');
  return { flatbuffer: second.bytes, trailing: placed };
}

const align = (n: number, a: number): number => Math.ceil(n / a) * a;

/** TensorType codes of the dtypes TFLite stores. */
const TENSOR_TYPES: Partial<Record<DType, number>> = {
  float32: 0, float16: 1, int32: 2, uint8: 3, int64: 4, bool: 6, int16: 7, complex64: 8, int8: 9, float64: 10, uint64: 12, uint32: 15, uint16: 16, bfloat16: 18,
};

/**
 * Serializes the lowered graph. `offsets` null: buffers inline; else the absolute file offsets
 * of the non-empty buffers in order (an empty list for the sizing pass, which writes zeros).
 */
function build(g: Lowered, signature: Signature, graph: Graph, offsets: readonly number[] | null): { bytes: Uint8Array; order: Tensor[] } {
  const b = new Builder(1024);
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
    FbTensor.startTensor(b);
    FbTensor.addShape(b, shape);
    FbTensor.addType(b, type);
    FbTensor.addBuffer(b, bufferOf[i]!);
    FbTensor.addName(b, name);
    if (signature) FbTensor.addShapeSignature(b, signature);
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
    0,
    FbModel.createSignatureDefsVector(b, [sigDef]),
  );
  b.finish(root, 'TFL3');
  return { bytes: b.asUint8Array().slice(), order };
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
}

/** Ops whose output depends on their input's shape only. */
const SHAPE_ONLY = new Set(['Shape', 'Size']);

/**
 * Every value's shape and dtype, from two runtime runs on zeros (sizes unknown in the source
 * taken as 1, then 2: a size that differs between the runs follows them, and is -1 in the
 * signature), and the values of what is constant: initializers, and outputs of nodes whose
 * inputs are all constant or that read only a shape.
 */
export function probeValues(graph: Graph): Probe {
  const a = probeRun(graph, 1);
  const b = probeRun(graph, 2);
  const signatures = new Map<string, readonly number[]>();
  for (const [name, shape] of a.shapes) {
    const other = b.shapes.get(name);
    signatures.set(name, shape.map((d, i) => (other && other[i] !== d ? -1 : d)));
  }
  const constants = new Map<string, Tensor>(graph.initializers);
  const dynamic = new Set<string>();
  for (const n of graph.nodes) {
    const constant = SHAPE_ONLY.has(n.op) || n.op === 'Constant' || (n.inputs.length > 0 && n.inputs.every((i) => i === '' || constants.has(i)));
    if (!constant) continue;
    for (const o of n.outputs) {
      const va = a.values[o];
      if (!o || !va) continue;
      constants.set(o, va);
      const vb = b.values[o];
      if (n.inputs.some((i) => dynamic.has(i)) || !vb || vb.shape.join() !== va.shape.join() || vb.toNumbers().join() !== va.toNumbers().join()) dynamic.add(o);
    }
  }
  return { shapes: a.shapes, signatures, dtypes: a.dtypes, constants, dynamic };
}

function probeRun(graph: Graph, unknown: number): { shapes: Map<string, readonly number[]>; dtypes: Map<string, DType>; values: Record<string, Tensor> } {
  const inputs = graph.inputs.filter((i) => !graph.initializers.has(i.name));
  const feeds: Record<string, Tensor> = {};
  for (const i of inputs) {
    if (i.shape === null) throw new UsageError(`input ${i.name} has no known rank: TFLite needs every input's shape`);
    const shape = i.shape.map((d) => (typeof d === 'number' ? d : unknown));
    feeds[i.name] = Tensor.fromArray(i.dtype, shape, allocate(i.dtype, shape.reduce((x, y) => x * y, 1)));
  }
  const names = [...new Set(graph.nodes.flatMap((n) => n.outputs.filter((o) => o !== '')))];
  const values = new Session({ ...graph, outputs: names.map((name) => ({ name, dtype: 'float32', shape: null })) }).run(feeds);
  const shapes = new Map<string, readonly number[]>();
  const dtypes = new Map<string, DType>();
  for (const [name, t] of [...Object.entries(feeds), ...graph.initializers, ...Object.entries(values)]) {
    shapes.set(name, t.shape);
    dtypes.set(name, t.dtype);
  }
  return { shapes, dtypes, values };
}
