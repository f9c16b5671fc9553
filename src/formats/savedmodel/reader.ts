import { existsSync, readFileSync, statSync } from '../../core/vfs.js';
import { basename, dirname, join } from 'node:path';
import { nameEndpoints } from '../../core/endpoints.js';
import { formatErrors, type FormatErrors } from '../../core/errors.js';
import type { Model, Signature } from '../../core/model.js';
import type { Tensor } from '../../core/tensor.js';
import { readTensorBundle } from '../tensorbundle/reader.js';
import { FlatGraph, parseTensorName, type TfRef } from '../tf/flatten.js';
import { importGraph } from '../tf/import.js';
import type { MetaGraphDef, OpDef, SavedModel, SignatureDef, TensorInfo } from '../tf/messages.js';
import { decodeMessage } from '../tf/schema.js';
import { dtypeOf, shapeFromProto } from '../tf/tensor.js';
import { variableResolver } from './variables.js';

/**
 * Reads a SavedModel directory: one MetaGraphDef (by tags), one signature of it, and the
 * variables from the checkpoint in variables/. The model is the graph computing that signature's
 * outputs from its inputs, as TensorFlow serving it would: TF2 function calls inlined, variables
 * replaced by their checkpoint values, everything else left out.
 */
export interface SavedModelReadOptions {
  /** The MetaGraphDef's tags (default ["serve"]). */
  readonly tags?: readonly string[];
  /** Signature key (default serving_default, or the only signature there is). */
  readonly signature?: string;
}

export const DEFAULT_SIGNATURE = 'serving_default';
/**
 * modelbridge's collection of variables that belong to the model but that no signature reads
 * (BatchNorm's num_batches_tracked): the reader returns them with the weights, so a conversion
 * through a SavedModel keeps the whole state dict.
 */
export const UNREAD_COLLECTION = 'modelbridge_unread_weights';
const INIT_OP_SIGNATURE = '__saved_model_init_op';

/** The SavedModel directory for a path naming it or its saved_model.pb. */
export function savedModelDir(path: string): string {
  return basename(path) === 'saved_model.pb' && !isDirectory(path) ? dirname(path) : path;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export function decodeSavedModel(bytes: Uint8Array, file: string): SavedModel {
  return decodeMessage<SavedModel>('SavedModel', bytes, file);
}

export function readSavedModel(path: string, options: SavedModelReadOptions = {}): Model {
  const dir = savedModelDir(path);
  const file = join(dir, 'saved_model.pb');
  const e: FormatErrors = formatErrors(file);
  if (!existsSync(file) && existsSync(join(dir, 'saved_model.pbtxt'))) e.fail('file', 'saved_model.pb (text-format saved_model.pbtxt is not supported)');
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch {
    return e.fail('file', 'a readable saved_model.pb');
  }
  const saved = decodeSavedModel(bytes, file);
  // Choose the graph and signature before reading the checkpoint: a wrong tag or signature name
  // is the more useful error.
  const meta = selectMetaGraph(saved, options.tags ?? ['serve'], e);
  const [name, signature] = selectSignature(meta, options.signature, e);
  const prefix = join(dir, 'variables', 'variables');
  const bundle = existsSync(`${prefix}.index`) ? readTensorBundle(prefix).tensors : undefined;
  return metaGraphToModel(meta, name, signature, bundle, file);
}

/** The model of a saved_model.pb held in memory, with its checkpoint's tensors already read. */
export function savedModelFromBytes(bytes: Uint8Array, file: string, bundle: ReadonlyMap<string, Tensor> | undefined, options: SavedModelReadOptions = {}): Model {
  const e: FormatErrors = formatErrors(file);
  const meta = selectMetaGraph(decodeSavedModel(bytes, file), options.tags ?? ['serve'], e);
  const [name, signature] = selectSignature(meta, options.signature, e);
  return metaGraphToModel(meta, name, signature, bundle, file);
}

/** The model one signature of a MetaGraphDef computes, with variables from `bundle`. */
export function metaGraphToModel(meta: MetaGraphDef, name: string, signature: SignatureDef, bundle: ReadonlyMap<string, Tensor> | undefined, file: string): Model {
  const e: FormatErrors = formatErrors(file);
  e.check(meta.graph_def !== null, 'meta graph', 'a graph_def');
  const opDefs = new Map<string, OpDef>((meta.meta_info_def?.stripped_op_list?.op ?? []).map((op) => [op.name, op]));
  const flat = new FlatGraph(meta.graph_def, file, { opDefs });
  const inputKeys = Object.keys(signature.inputs).sort();
  const outputKeys = Object.keys(signature.outputs).sort();
  e.check(outputKeys.length > 0, `signature ${name}`, 'at least one output');
  const tensorOf = (info: TensorInfo, where: string): TfRef => {
    e.check((info.encoding ?? 'name') === 'name' && info.name !== '', where, 'a dense tensor named in the graph (sparse and composite tensors are not supported)');
    const ref = parseTensorName(info.name);
    e.check(ref !== undefined && flat.node(ref.node) !== undefined, where, `a tensor of the graph, not ${JSON.stringify(info.name)}`);
    return ref;
  };
  const feeds = inputKeys.map((key) => {
    const info = signature.inputs[key]!;
    const where = `signature ${name} input ${key}`;
    // A TensorInfo without tensor_shape says nothing of the shape (TF1 exports): unknown rank, not a scalar.
    return { ref: tensorOf(info, where), dtype: dtypeOf(info.dtype, e, `${where} dtype`), shape: info.tensor_shape ? shapeFromProto(info.tensor_shape) : null };
  });
  const fetches = outputKeys.map((key) => {
    const info = signature.outputs[key]!;
    return { ref: tensorOf(info, `signature ${name} output ${key}`), shape: info.tensor_shape ? shapeFromProto(info.tensor_shape) : null };
  });
  const variable = variableResolver(meta, bundle, file);
  const imported = importGraph({ flat, feeds, fetches, variable });
  // The graph's endpoints take the signature's keys: TensorFlow's tensor names behind them
  // (serving_default_x:0, StatefulPartitionedCall:1) are no part of the model's interface.
  const named = nameEndpoints(
    imported.graph,
    inputKeys.map((k, i) => [imported.inputs[i]!, k] as const),
    outputKeys.map((k, i) => [imported.outputs[i]!, k] as const),
  );
  const weights = new Map(named.graph.initializers);
  for (const node of meta.collection_def[UNREAD_COLLECTION]?.node_list?.value ?? []) {
    const tfNode = flat.node(node);
    e.check(tfNode !== undefined, `collection ${UNREAD_COLLECTION}`, `names of graph nodes, not ${JSON.stringify(node)}`);
    const { name, tensor } = variable(tfNode);
    if (!weights.has(name)) weights.set(name, tensor);
  }
  const sig: Signature = {
    name,
    inputs: new Map(inputKeys.map((k, i) => [k, named.inputs[i]!])),
    outputs: new Map(outputKeys.map((k, i) => [k, named.outputs[i]!])),
  };
  return { format: 'savedmodel', weights, graph: named.graph, signatures: [sig], metadata: {} };
}

function selectMetaGraph(saved: SavedModel, tags: readonly string[], e: FormatErrors): MetaGraphDef {
  e.check(saved.meta_graphs.length > 0, 'SavedModel', 'at least one meta graph');
  const tagsOf = (m: MetaGraphDef) => m.meta_info_def?.tags ?? [];
  const same = saved.meta_graphs.find((m) => tagsOf(m).length === new Set(tags).size && tags.every((t) => tagsOf(m).includes(t)));
  const superset = saved.meta_graphs.find((m) => tags.every((t) => tagsOf(m).includes(t)));
  const found = same ?? superset;
  if (!found) e.fail('meta graphs', `one tagged ${JSON.stringify(tags)} (have: ${saved.meta_graphs.map((m) => JSON.stringify(tagsOf(m))).join(', ')})`);
  return found;
}

function selectSignature(meta: MetaGraphDef, requested: string | undefined, e: FormatErrors): [string, SignatureDef] {
  const keys = Object.keys(meta.signature_def).filter((k) => k !== INIT_OP_SIGNATURE).sort();
  const name = requested ?? (keys.includes(DEFAULT_SIGNATURE) || keys.length !== 1 ? DEFAULT_SIGNATURE : keys[0]!);
  const signature = keys.includes(name) ? meta.signature_def[name] : undefined;
  if (!signature) e.fail('signatures', `a signature ${JSON.stringify(name)} (have: ${keys.join(', ') || 'none'}; choose one with the signature option)`);
  return [name, signature];
}
