import { dirname } from 'node:path';
import { FormatError, formatErrors, UsageError, type FormatErrors } from '../../core/errors.js';
import type { Attribute, Dim, Graph, Node, ValueInfo } from '../../core/graph.js';
import { defaultSignature, type Model, type Signature } from '../../core/model.js';
import { formatShape, sameShape } from '../../core/shape.js';
import type { Tensor } from '../../core/tensor.js';
import { SpecFieldError } from '../../module/fields.js';
import { expectedParams } from '../../module/lower.js';
import { MODULE_KEY, SIGNATURE_KEY, type ModuleSpec } from '../../module/spec.js';
import { refuseUnknownAttributes } from './attribute-check.js';
import { attributeFromProto } from './attributes.js';
import { onnxCodeToDType, onnxTypeName } from './dtypes.js';
import { int64ToNumber } from '../../core/int64.js';
import { decodeModelProto, decodeTensorProto, type GraphProto, type ModelProto, type TensorShapeProto, type ValueInfoProto } from './schema.js';
import type { FileRange } from './skeleton.js';
import { sparseTensorFromProto } from './sparse.js';
import { tensorFromProto } from './tensor.js';

export interface OnnxReadOptions {
  /**
   * Directory that external-data locations are relative to. Defaults to the directory of `file`
   * when `file` is a path; pass null to refuse external data (bytes not from a file).
   */
  readonly baseDir?: string | null;
  /** Architecture to attach (--module); by default the one stored in metadata_props, if any. */
  readonly module?: ModuleSpec;
}

/** The default ONNX domain's names: "" and its alias "ai.onnx". */
function isDefaultDomain(domain: string): boolean {
  return domain === '' || domain === 'ai.onnx';
}

/**
 * Reads a serialized ModelProto into a Model. The graph's inputs exclude initializers (an input
 * that is also an initializer is a weight with a default value, so it is a weight here); the
 * weights are the initializers (sparse ones densified), by name.
 */
export function readOnnxModel(bytes: Uint8Array, file: string, options: OnnxReadOptions = {}): Model {
  return modelFromProto(decodeModelProto(bytes, file), file, options);
}

/**
 * A decoded ModelProto as a Model. `initializerData` comes with a skeleton (see skeleton.ts):
 * per entry of graph.initializer, where its raw_data was left in `file`, if it was.
 */
export function modelFromProto(proto: ModelProto, file: string, options: OnnxReadOptions = {}, initializerData?: readonly (FileRange | undefined)[]): Model {
  const e: FormatErrors = formatErrors(file);
  e.check(proto.graph !== null, 'ModelProto', 'a graph (field 7)');
  const baseDir = options.baseDir === null ? undefined : (options.baseDir ?? dirname(file));
  const graph = graphFromProto(proto.graph, modelOpset(proto, e), file, baseDir, initializerData);
  refuseUnknownAttributes(graph, file);
  return withModule(
    {
      format: 'onnx',
      weights: graph.initializers,
      graph,
      signatures: [defaultSignature(graph)],
      metadata: modelMetadata(proto),
    },
    file,
    options.module,
  );
}

/**
 * A file modelbridge wrote from a torch.nn-shaped model carries its module spec and signature in
 * metadata_props (modelbridge.module, modelbridge.signature), as safetensors and .pt bundles do.
 * The graph stays the file's own; the module comes back, and the weights become its state dict
 * (the initializers it names), so writing the model to a bundle format again stores the same.
 */
function withModule(model: Model, file: string, override: ModuleSpec | undefined): Model {
  const { [MODULE_KEY]: moduleText, [SIGNATURE_KEY]: signatureText, ...rest } = model.metadata;
  if (moduleText === undefined && override === undefined) return model;
  const graph = model.graph!;
  const spec = override ?? parseSpec(moduleText!, file);
  if (spec.type === 'Graph') return { ...model, metadata: rest };
  let params;
  try {
    params = expectedParams(spec);
  } catch (err) {
    if (err instanceof SpecFieldError) throw new FormatError(file, `module spec${err.path ? ` at ${err.path}` : ''}`, err.message);
    throw err;
  }
  const weights = new Map<string, Tensor>();
  for (const p of params) {
    const t = graph.initializers.get(p.key);
    if (!t || !sameShape(t.shape, p.shape)) {
      throw new FormatError(file, `initializer ${p.key}`, `a ${formatShape(p.shape)} tensor, as the module spec in metadata_props says${t ? `, found ${formatShape(t.shape)}` : ''}`);
    }
    weights.set(p.key, t);
  }
  return { ...model, weights, module: spec, signatures: [storedSignature(graph, signatureText) ?? defaultSignature(graph)], metadata: rest };
}

function parseSpec(text: string, file: string): ModuleSpec {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FormatError(file, `metadata_props ${MODULE_KEY}`, 'valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || typeof (value as ModuleSpec).type !== 'string') {
    throw new FormatError(file, `metadata_props ${MODULE_KEY}`, 'a module spec: an object with a string "type"');
  }
  return value as ModuleSpec;
}

/** The stored signature's names, when they are the graph's own inputs and outputs. */
function storedSignature(graph: Graph, text: string | undefined): Signature | undefined {
  if (text === undefined) return undefined;
  try {
    const spec = JSON.parse(text) as { inputs?: { name?: unknown }[]; outputs?: { name?: unknown }[] };
    const names = (list: { name?: unknown }[] | undefined, values: readonly ValueInfo[]) =>
      Array.isArray(list) && list.every((io) => typeof io?.name === 'string' && values.some((v) => v.name === io.name)) ? list.map((io) => io.name as string) : undefined;
    const inputs = names(spec.inputs, graph.inputs);
    const outputs = names(spec.outputs, graph.outputs);
    if (!inputs || !outputs) return undefined;
    return { name: 'default', inputs: new Map(inputs.map((n) => [n, n])), outputs: new Map(outputs.map((n) => [n, n])) };
  } catch {
    return undefined;
  }
}

/** Reads one serialized TensorProto (the input_N.pb / output_N.pb files of ONNX's test data). */
export function readOnnxTensor(bytes: Uint8Array, file: string): Tensor {
  const proto = decodeTensorProto(bytes, file);
  return tensorFromProto(proto, { file, where: proto.name ? `tensor ${proto.name}` : 'TensorProto', baseDir: dirname(file) });
}

/** The opset version of the default domain. IR < 3 files predate opset_import and mean opset 1. */
function modelOpset(proto: ModelProto, e: FormatErrors): number {
  const entry = proto.opset_import.find((o) => isDefaultDomain(o.domain));
  if (entry) {
    const version = int64ToNumber(entry.version);
    e.check(version !== undefined && version >= 1, 'opset_import', `a positive opset version for the default domain`);
    return version;
  }
  const ir = int64ToNumber(proto.ir_version) ?? 0;
  e.check(ir < 3 || !proto.graph?.node.some((n) => isDefaultDomain(n.domain)), 'opset_import', 'an entry for the default domain ("" or ai.onnx)');
  return 1;
}

function modelMetadata(proto: ModelProto): Record<string, string> {
  const metadata: Record<string, string> = {};
  const put = (key: string, value: string) => {
    if (value) metadata[key] = value;
  };
  put('onnx.ir_version', String(int64ToNumber(proto.ir_version) ?? ''));
  put('onnx.producer_name', proto.producer_name);
  put('onnx.producer_version', proto.producer_version);
  put('onnx.domain', proto.domain);
  put('onnx.doc_string', proto.doc_string);
  const version = int64ToNumber(proto.model_version);
  if (version) put('onnx.model_version', String(version));
  put('onnx.opset_import', proto.opset_import.map((o) => `${o.domain || 'ai.onnx'}=${int64ToNumber(o.version) ?? '?'}`).join(';'));
  for (const entry of proto.metadata_props) metadata[entry.key] = entry.value;
  return metadata;
}

function graphFromProto(proto: GraphProto, opset: number, file: string, baseDir: string | undefined, initializerData?: readonly (FileRange | undefined)[], nested = false): Graph {
  const e: FormatErrors = formatErrors(file);
  // The skeleton counts the initializers as protobufjs decodes them; a difference is a bug here, not a bad file.
  if (initializerData && initializerData.length !== proto.initializer.length) {
    throw new Error(`${file}: skeleton found ${initializerData.length} initializers, the decoded graph has ${proto.initializer.length}`);
  }
  const initializers = new Map<string, Tensor>();
  proto.initializer.forEach((t, i) => {
    e.check(t.name !== '', 'initializer', 'a name on every initializer');
    e.check(!initializers.has(t.name), `initializer ${t.name}`, 'unique initializer names');
    const range = initializerData?.[i];
    const rawDataInFile = range ? { path: file, offset: range.offset, length: range.length } : undefined;
    initializers.set(t.name, tensorFromProto(t, { file, where: `initializer ${t.name}`, baseDir, rawDataInFile }));
  });
  for (const s of proto.sparse_initializer) {
    const name = s.values?.name ?? '';
    e.check(name !== '', 'sparse_initializer', 'a name on every sparse initializer (its values tensor)');
    e.check(!initializers.has(name), `sparse_initializer ${name}`, 'unique initializer names');
    initializers.set(name, sparseTensorFromProto(s, { file, where: `sparse_initializer ${name}`, baseDir }));
  }
  const inputs = proto.input.filter((i) => !initializers.has(i.name)).map((i) => valueInfo(i, 'input', file, nested));
  const outputs = proto.output.map((o) => valueInfo(o, 'output', file, nested));
  const nodes = proto.node.map((n, index): Node => {
    const name = n.name || n.output.find((o) => o !== '') || `${n.op_type}_${index}`;
    e.check(n.op_type !== '', `node ${name}`, 'an op_type');
    const attributes: Record<string, Attribute> = {};
    for (const a of n.attribute) {
      e.check(a.name !== '' && !(a.name in attributes), `node ${name}`, 'named, unique attributes');
      attributes[a.name] = attributeFromProto(a, name, { file, baseDir }, (g, where) => subgraphFromProto(g, opset, file, baseDir, where));
    }
    // The IR spells the default domain ''; ai.onnx is the same domain.
    return { name, op: n.op_type, domain: isDefaultDomain(n.domain) ? '' : n.domain, inputs: [...n.input], outputs: [...n.output], attributes };
  });
  return { inputs, outputs, initializers, nodes, opset };
}

/**
 * A graph-valued attribute: read as a graph of its own at the model's opset, keeping its name. Its
 * nodes may read values of the enclosing graphs, so names it does not define are not checked here.
 */
function subgraphFromProto(proto: GraphProto, opset: number, file: string, baseDir: string | undefined, where: string): Graph {
  try {
    return { ...graphFromProto(proto, opset, file, baseDir, undefined, true), ...(proto.name ? { name: proto.name } : {}) };
  } catch (e) {
    // Name the attribute holding the graph: "graph input x" alone is ambiguous with nesting.
    if (e instanceof FormatError && !e.where.startsWith(where)) throw new FormatError(e.file, `${where}: ${e.where}`, e.expected);
    throw e;
  }
}

function valueInfo(proto: ValueInfoProto, role: 'input' | 'output', file: string, nested = false): ValueInfo {
  const where = `graph ${role} ${proto.name}`;
  const e: FormatErrors = formatErrors(file);
  e.check(proto.name !== '', `graph ${role}`, 'a name');
  // A nested graph may leave its inputs' and outputs' types to the node holding it.
  if (nested && (proto.type === null || (proto.type.tensor_type && !proto.type.tensor_type.elem_type))) {
    const shape = proto.type?.tensor_type?.shape;
    return { name: proto.name, dtype: 'float32', shape: shape ? shapeFromProto(shape) : null, untyped: true };
  }
  e.check(proto.type !== null, where, 'a type');
  const tensorType = proto.type.tensor_type;
  if (!tensorType) {
    const kind = proto.type.value ?? 'unknown';
    throw new UsageError(`${file}: ${where}: only tensor values are supported, not ${kind.replace('_type', '')} values`);
  }
  const dtype = onnxCodeToDType(tensorType.elem_type);
  e.check(dtype !== undefined, where, `a supported element type (got ${onnxTypeName(tensorType.elem_type)})`);
  return { name: proto.name, dtype, shape: tensorType.shape ? shapeFromProto(tensorType.shape) : null };
}

function shapeFromProto(shape: TensorShapeProto): Dim[] {
  return shape.dim.map((d): Dim => {
    if (d.value === 'dim_value') return int64ToNumber(d.dim_value) ?? null;
    if (d.value === 'dim_param') return d.dim_param;
    return null;
  });
}
