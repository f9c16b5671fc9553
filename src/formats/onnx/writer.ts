import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from '../../core/vfs.js';
import { basename, dirname, join } from 'node:path';
import type { DType } from '../../core/dtypes.js';
import { UsageError } from '../../core/errors.js';
import { DEFAULT_OPSET, subgraphsOf, type Attribute, type Graph, type Node, type ValueInfo } from '../../core/graph.js';
import type { Model } from '../../core/model.js';
import { WireType, WireWriter } from '../../core/protowire.js';
import type { ByteSource } from '../../core/source.js';
import type { Tensor } from '../../core/tensor.js';
import { bundleFromModel } from '../../module/bundle.js';
import { MODULE_KEY, SIGNATURE_KEY } from '../../module/spec.js';
import { dtypeToOnnxCode } from './dtypes.js';
import { tempPath } from '../../core/atomic.js';
import { convertOpset, irVersionFor } from './opset.js';
import { withOutputShapes } from './output-shapes.js';
import { ATTRIBUTE_TYPE } from './schema.js';

/**
 * The ONNX writer: a Model's graph as one ModelProto, encoded field by field in field-number
 * order (as ONNX's own C++ serializer does), so the same model always gives the same bytes.
 * Initializers are raw_data (little-endian, the IR's own byte layout) and are streamed from their
 * ByteSource in chunks, never gathered into one buffer; tensors at or above a size threshold can
 * go to one external data file beside the model, which is mandatory past protobuf's 2 GB limit.
 */
export interface OnnxWriteOptions {
  /** ai.onnx opset to write; the graph is converted to it (see opset.ts). Default 17. */
  readonly opset?: number;
  /**
   * Initializers in a side file `<model file>.data`: true moves tensors of at least 1024 bytes
   * (onnx's default threshold), a number sets the threshold in bytes, false keeps every tensor
   * inline (and refuses a model over 2 GB). Default: inline unless the model would pass 2 GB.
   */
  readonly externalData?: boolean | number;
  /** Graph name (GraphProto.name, required to be non-empty by the checker). Default "modelbridge". */
  readonly graphName?: string;
}

/** protobuf's limit on one serialized message (onnx.checker.MAXIMUM_PROTOBUF). */
export const MAXIMUM_PROTOBUF = 2147483647;
/** The threshold ONNX's convert_model_to_external_data uses. */
export const DEFAULT_EXTERNAL_THRESHOLD = 1024;
/** Tensors of at least this size start on a page boundary in the external file (mmap-friendly). */
const PAGE_ALIGN_FROM = 1 << 20;
const PAGE = 4096;
const SMALL_ALIGN = 64;
const CHUNK = 8 << 20;

/** Metadata keys the reader fills from ModelProto fields: rebuilt from the model, not copied. */
const DERIVED_KEYS = new Set(['onnx.ir_version', 'onnx.producer_name', 'onnx.producer_version', 'onnx.opset_import']);

// ---------------------------------------------------------------------------------------------
// Byte plan: a message is a list of parts (encoded bytes, or a tensor's ByteSource streamed later).

type Part = Uint8Array | ByteSource;

class Plan {
  readonly parts: Part[] = [];
  length = 0;

  bytes(b: Uint8Array): this {
    if (b.byteLength) {
      this.parts.push(b);
      this.length += b.byteLength;
    }
    return this;
  }

  source(s: ByteSource): this {
    if (s.byteLength) {
      this.parts.push(s);
      this.length += s.byteLength;
    }
    return this;
  }

  /** A length-delimited field whose value is another plan. */
  field(field: number, sub: Plan): this {
    this.bytes(new WireWriter().key(field, WireType.LEN).writeVarint(sub.length).finish());
    for (const p of sub.parts) this.parts.push(p);
    this.length += sub.length;
    return this;
  }
}

function isBytes(p: Part): p is Uint8Array {
  return p instanceof Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Message encoders (field numbers from proto/onnx.proto).

function onnxCode(dtype: DType, where: string): number {
  const code = dtypeToOnnxCode(dtype);
  if (code === undefined) throw new UsageError(`${where}: ONNX has no element type for ${dtype}`);
  return code;
}

/** TensorProto fields before raw_data: dims (1, one key each: not packed), data_type (2), name (8). */
function tensorHead(w: WireWriter, tensor: Tensor, name: string, where: string): void {
  for (const d of tensor.shape) w.varint(1, d);
  w.varint(2, onnxCode(tensor.dtype, where));
  if (tensor.dtype === 'string') for (const s of tensor.strings!) w.bytes(6, s);
  if (name) w.string(8, name);
}

/** A whole TensorProto in memory (attribute tensors). */
function encodeTensor(w: WireWriter, tensor: Tensor, name: string, where: string): void {
  tensorHead(w, tensor, name, where);
  if (tensor.dtype !== 'string') w.bytes(9, tensor.bytes());
}

function encodeAttribute(w: WireWriter, name: string, a: Attribute, where: string): void {
  w.string(1, name);
  switch (a.type) {
    case 'float':
      w.float(2, a.value).varint(20, ATTRIBUTE_TYPE.FLOAT);
      return;
    case 'int':
      w.varint(3, a.value).varint(20, ATTRIBUTE_TYPE.INT);
      return;
    case 'string':
      w.string(4, a.value).varint(20, ATTRIBUTE_TYPE.STRING);
      return;
    case 'tensor':
      w.message(5, (t) => encodeTensor(t, a.value, '', `${where} attribute ${name}`)).varint(20, ATTRIBUTE_TYPE.TENSOR);
      return;
    case 'floats':
      for (const v of a.value) w.float(7, v);
      w.varint(20, ATTRIBUTE_TYPE.FLOATS);
      return;
    case 'ints':
      for (const v of a.value) w.varint(8, v);
      w.varint(20, ATTRIBUTE_TYPE.INTS);
      return;
    case 'strings':
      for (const v of a.value) w.string(9, v);
      w.varint(20, ATTRIBUTE_TYPE.STRINGS);
      return;
    case 'graph':
      w.message(6, (g) => encodeSubgraph(g, a.value, `${where} attribute ${name}`)).varint(20, ATTRIBUTE_TYPE.GRAPH);
      return;
    case 'graphs':
      for (const [i, sub] of a.value.entries()) w.message(11, (g) => encodeSubgraph(g, sub, `${where} attribute ${name} graph ${i}`));
      w.varint(20, ATTRIBUTE_TYPE.GRAPHS);
      return;
  }
}

/**
 * A nested GraphProto (If's branches, Loop's and Scan's bodies): nodes (1), name (2), initializers
 * inline (5), inputs (11), outputs (12). Names it reads from enclosing graphs stay plain references.
 */
function encodeSubgraph(w: WireWriter, graph: Graph, where: string): void {
  for (const node of graph.nodes) w.message(1, (n) => encodeNode(n, node));
  w.string(2, graph.name || where.replace(/\W+/g, '_'));
  for (const [name, tensor] of graph.initializers) w.message(5, (t) => encodeTensor(t, tensor, name, `${where} initializer ${name}`));
  for (const v of graph.inputs) w.message(11, (i) => encodeValueInfo(i, v));
  for (const v of graph.outputs) w.message(12, (o) => encodeValueInfo(o, v));
}

function encodeNode(w: WireWriter, node: Node): void {
  for (const i of node.inputs) w.string(1, i);
  for (const o of node.outputs) w.string(2, o);
  if (node.name) w.string(3, node.name);
  w.string(4, node.op);
  for (const [key, a] of Object.entries(attributesForWrite(node))) w.message(5, (m) => encodeAttribute(m, key, a, `node ${node.name}`));
  if (node.domain) w.string(7, node.domain);
}

/** A densified sparse Constant value is written as the dense `value` it now is. */
function attributesForWrite(node: Node): Readonly<Record<string, Attribute>> {
  const sparse = node.attributes['sparse_value'];
  if (node.op !== 'Constant' || node.domain !== '' || !sparse || sparse.type !== 'tensor') return node.attributes;
  const { sparse_value: _, ...rest } = node.attributes;
  return { value: sparse, ...rest };
}

function encodeValueInfo(w: WireWriter, v: ValueInfo): void {
  w.string(1, v.name);
  if (v.untyped && !v.shape) return;
  w.message(2, (type) =>
    type.message(1, (tensorType) => {
      if (!v.untyped) tensorType.varint(1, onnxCode(v.dtype, `graph value ${v.name}`));
      if (v.shape) {
        tensorType.message(2, (shape) => {
          for (const d of v.shape!) {
            shape.message(1, (dim) => {
              if (typeof d === 'number') dim.varint(1, d);
              else if (typeof d === 'string') dim.string(2, d);
            });
          }
        });
      }
    }),
  );
}

// ---------------------------------------------------------------------------------------------

/** Where an initializer's bytes go when it is stored externally. */
interface ExternalSlot {
  readonly offset: number;
  readonly length: number;
}

interface Layout {
  /** The .onnx file. */
  readonly model: Plan;
  /** The external data file, when any tensor goes there. */
  readonly data?: Plan;
  readonly dataLocation?: string;
  readonly opset: number;
  readonly irVersion: number;
}

function align(offset: number, length: number): number {
  const to = length >= PAGE_ALIGN_FROM ? PAGE : SMALL_ALIGN;
  return Math.ceil(offset / to) * to;
}

/** Zero bytes of padding, shared. */
const ZEROS = new Uint8Array(PAGE);

function graphPlan(graph: Graph, name: string, external: ReadonlyMap<string, ExternalSlot>, location: string | undefined): Plan {
  const plan = new Plan();
  const head = new WireWriter();
  for (const node of graph.nodes) head.message(1, (w) => encodeNode(w, node));
  head.string(2, name);
  plan.bytes(head.finish());
  for (const [tensorName, tensor] of graph.initializers) {
    const where = `initializer ${tensorName}`;
    const t = new Plan();
    const w = new WireWriter();
    tensorHead(w, tensor, tensorName, where);
    const slot = external.get(tensorName);
    if (tensor.dtype === 'string') {
      t.bytes(w.finish());
    } else if (slot) {
      // external_data (13): location, offset, length; data_location (14) = EXTERNAL.
      const entry = (key: string, value: string) => w.message(13, (e) => e.string(1, key).string(2, value));
      entry('location', location!);
      entry('offset', String(slot.offset));
      entry('length', String(slot.length));
      w.varint(14, 1);
      t.bytes(w.finish());
    } else {
      w.key(9, WireType.LEN).writeVarint(tensor.byteLength);
      t.bytes(w.finish()).source(tensor.source);
    }
    plan.field(5, t);
  }
  const tail = new WireWriter();
  for (const v of graph.inputs) tail.message(11, (w) => encodeValueInfo(w, v));
  for (const v of graph.outputs) tail.message(12, (w) => encodeValueInfo(w, v));
  plan.bytes(tail.finish());
  return plan;
}

/** The model's string metadata as metadata_props, plus the module spec and signature when it has one. */
function metadataProps(model: Model): { props: [string, string][]; fields: { domain: string; docString: string; modelVersion: number } } {
  const fields = { domain: '', docString: '', modelVersion: 0 };
  const props: [string, string][] = [];
  const source: Record<string, string> = { ...model.metadata };
  if (model.module && model.graph) {
    // The same module spec and signature JSON a safetensors or .pt bundle stores.
    const bundle = bundleFromModel(model).metadata;
    for (const key of [MODULE_KEY, SIGNATURE_KEY]) if (bundle[key] !== undefined) source[key] = bundle[key];
  }
  for (const [key, value] of Object.entries(source)) {
    if (DERIVED_KEYS.has(key)) continue;
    if (key === 'onnx.domain') fields.domain = value;
    else if (key === 'onnx.doc_string') fields.docString = value;
    else if (key === 'onnx.model_version' && /^\d+$/.test(value) && Number.isSafeInteger(Number(value))) fields.modelVersion = Number(value);
    else props.push([key, value]);
  }
  return { props, fields };
}

/** Versions of the non-default domains the nodes use: from the source file's opset_import when known, else 1. */
function otherDomains(model: Model, graph: Graph): [string, number][] {
  const known = new Map<string, number>();
  for (const entry of (model.metadata['onnx.opset_import'] ?? '').split(';')) {
    const [domain, version] = entry.split('=');
    if (domain && version && /^\d+$/.test(version)) known.set(domain, Number(version));
  }
  const used = [...new Set(graph.nodes.map((n) => n.domain).filter((d) => d !== '' && d !== 'ai.onnx'))].sort();
  return used.map((d) => [d, known.get(d) ?? 1]);
}

function dtypesOf(graph: Graph): Set<DType> {
  const out = new Set<DType>();
  for (const t of graph.initializers.values()) out.add(t.dtype);
  for (const v of [...graph.inputs, ...graph.outputs]) out.add(v.dtype);
  for (const n of graph.nodes) {
    for (const a of Object.values(n.attributes)) if (a.type === 'tensor') out.add(a.value.dtype);
    for (const sub of subgraphsOf(n)) for (const d of dtypesOf(sub)) out.add(d);
  }
  return out;
}

function thresholdOf(option: boolean | number | undefined): number | undefined {
  if (option === true) return DEFAULT_EXTERNAL_THRESHOLD;
  if (typeof option === 'number') {
    if (!Number.isSafeInteger(option) || option < 0) throw new UsageError(`external data threshold must be a non-negative byte count, got ${option}`);
    return option;
  }
  return undefined;
}

function layout(model: Model, options: OnnxWriteOptions, dataLocation: string | undefined): Layout {
  if (!model.graph) {
    throw new UsageError('ONNX stores a runnable graph, and this model is a bare state dict: give --module SPEC.json to supply its architecture');
  }
  const opset = options.opset ?? DEFAULT_OPSET;
  const graph = withOutputShapes(convertOpset(model.graph, opset));
  const irVersion = irVersionFor(opset, dtypesOf(graph));
  const { props, fields } = metadataProps(model);
  const domains = otherDomains(model, graph);
  const graphName = options.graphName ?? 'modelbridge';

  const build = (threshold: number | undefined): Layout => {
    const external = new Map<string, ExternalSlot>();
    let data: Plan | undefined;
    if (threshold !== undefined) {
      if (dataLocation === undefined) throw new UsageError('external data needs a file to sit beside: use writeOnnxModel with a path');
      data = new Plan();
      for (const [name, tensor] of graph.initializers) {
        if (tensor.dtype === 'string' || tensor.byteLength < threshold || tensor.byteLength === 0) continue;
        const offset = align(data.length, tensor.byteLength);
        while (data.length < offset) data.bytes(ZEROS.subarray(0, Math.min(PAGE, offset - data.length)));
        external.set(name, { offset, length: tensor.byteLength });
        data.source(tensor.source);
      }
      if (external.size === 0) data = undefined;
    }
    // No producer_version: the bytes depend on the model alone, not on the release that wrote them.
    const head = new WireWriter().varint(1, irVersion).string(2, 'modelbridge');
    if (fields.domain) head.string(4, fields.domain);
    if (fields.modelVersion) head.varint(5, fields.modelVersion);
    if (fields.docString) head.string(6, fields.docString);
    const tail = new WireWriter();
    tail.message(8, (w) => w.string(1, '').varint(2, opset));
    for (const [domain, v] of domains) tail.message(8, (w) => w.string(1, domain).varint(2, v));
    for (const [key, value] of props) tail.message(14, (w) => w.string(1, key).string(2, value));
    const plan = new Plan().bytes(head.finish()).field(7, graphPlan(graph, graphName, external, dataLocation)).bytes(tail.finish());
    return { model: plan, data, dataLocation: data ? dataLocation : undefined, opset, irVersion };
  };

  const threshold = thresholdOf(options.externalData);
  const result = build(threshold);
  if (result.model.length <= MAXIMUM_PROTOBUF) return result;
  if (options.externalData === false || dataLocation === undefined) {
    throw new UsageError(
      `the ONNX model would be ${result.model.length} bytes, over protobuf's 2 GB limit: ` +
        (dataLocation === undefined ? 'write it to a file with external data (writeOnnxModel)' : 'allow external data'),
    );
  }
  const spilled = build(Math.min(threshold ?? DEFAULT_EXTERNAL_THRESHOLD, DEFAULT_EXTERNAL_THRESHOLD));
  if (spilled.model.length > MAXIMUM_PROTOBUF) throw new UsageError(`the ONNX graph alone is over protobuf's 2 GB limit (${spilled.model.length} bytes)`);
  return spilled;
}

/** The .onnx bytes of a model whose tensors all stay inline (the whole file in memory). */
export function serializeOnnxModel(model: Model, options: OnnxWriteOptions = {}): Uint8Array {
  if (options.externalData) throw new UsageError('external data needs a file to sit beside: use writeOnnxModel with a path');
  const { model: plan } = layout(model, { ...options, externalData: false }, undefined);
  const out = new Uint8Array(plan.length);
  let at = 0;
  for (const part of plan.parts) {
    if (isBytes(part)) {
      out.set(part, at);
      at += part.byteLength;
    } else {
      for (const chunk of part.chunks(CHUNK)) {
        out.set(chunk, at);
        at += chunk.byteLength;
      }
    }
  }
  return out;
}

export interface OnnxWriteResult {
  /** The files written: the .onnx file, then the external data file when there is one. */
  readonly files: string[];
  readonly opset: number;
  readonly irVersion: number;
  readonly bytes: number;
  readonly externalBytes: number;
}

/**
 * Writes `<path>` (and `<path>.data` when tensors go external) atomically: both go to temporary
 * files beside their targets, streamed a chunk at a time, and are renamed only once both are
 * complete and synced — the data file first, so a model file never points at a missing one.
 */
export function writeOnnxModel(model: Model, path: string, options: OnnxWriteOptions = {}): OnnxWriteResult {
  const location = `${basename(path)}.data`;
  const plan = layout(model, options, location);
  const targets: [string, Plan][] = [];
  if (plan.data) targets.push([join(dirname(path), location), plan.data]);
  targets.push([path, plan.model]);
  writeFilesAtomic(targets);
  return {
    files: targets.map(([p]) => p).reverse(),
    opset: plan.opset,
    irVersion: plan.irVersion,
    bytes: plan.model.length,
    externalBytes: plan.data?.length ?? 0,
  };
}

function writeFilesAtomic(targets: readonly [string, Plan][]): void {
  const temps = targets.map(([p]) => tempPath(p));
  let ok = false;
  try {
    targets.forEach(([, plan], i) => {
      const fd = openSync(temps[i]!, 'wx');
      try {
        const put = (bytes: Uint8Array) => {
          let done = 0;
          while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
        };
        for (const part of plan.parts) {
          if (isBytes(part)) put(part);
          else for (const chunk of part.chunks(CHUNK)) put(chunk);
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    });
    targets.forEach(([p], i) => renameSync(temps[i]!, p));
    ok = true;
  } finally {
    if (!ok) for (const t of temps) rmSync(t, { force: true });
  }
}
