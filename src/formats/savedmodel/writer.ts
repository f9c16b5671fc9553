import { mkdirSync, readdirSync, rmSync } from '../../core/vfs.js';
import { join } from 'node:path';
import { writeBytesAtomic } from '../../core/atomic.js';
import { isFloat, type DType } from '../../core/dtypes.js';
import { UsageError } from '../../core/errors.js';
import type { Model, Signature } from '../../core/model.js';
import type { Tensor } from '../../core/tensor.js';
import { GRAPH_PRODUCER } from '../graphdef/writer.js';
import { writeTensorBundle } from '../tensorbundle/writer.js';
import { tfAttr } from '../tf/attrs.js';
import { exportGraph, tensorName, TfNames, type NodeDefObject } from '../tf/export.js';
import { encodeMessage } from '../tf/schema.js';
import { filledTensorProto, shapeToProto, tensorToProto, tfCode } from '../tf/tensor.js';
import { DEFAULT_SIGNATURE, UNREAD_COLLECTION } from './reader.js';

/**
 * Writes a SavedModel TensorFlow loads and serves: one TF1-style MetaGraphDef tagged "serve"
 * (the simplest form TF2's tf.saved_model.load still serves) with
 *  - the model's float weights as resource variables (VarHandleOp, read by ReadVariableOp), their
 *    values in the checkpoint variables/variables under the variable's name, not in the graph;
 *    weights the graph never reads (BatchNorm's num_batches_tracked) too, named in the
 *    modelbridge_unread_weights collection, so the checkpoint holds the whole state dict;
 *  - a saver sub-graph (SaveV2/RestoreV2 and a SaverDef) through which loaders restore them, and
 *    the "variables" collections TF uses to find them;
 *  - the model's signature as signature_def["serving_default"] (method tensorflow/serving/predict).
 * Every variable has a zero initializer (one value, which TF repeats) for TF1 tools that run the
 * init op; the loader's restore then assigns the real values.
 */

export interface SavedModelWriteOptions {
  /** Signature key to write the model's signature under (default serving_default). */
  readonly signature?: string;
}

interface Variable {
  readonly name: string;
  readonly tensor: Tensor;
  readonly read: string;
  readonly init: string;
  readonly assign: string;
}

export function writeSavedModel(model: Model, dir: string, options: SavedModelWriteOptions = {}): string[] {
  if (!model.graph) throw new UsageError('the model has no graph to write as a SavedModel (a bare state dict needs --module)');
  const signature = model.signatures[0];
  if (!signature) throw new UsageError('the model has no signature to serve');
  const variables: Variable[] = [];
  const names = new TfNames();
  const read = new Set<string>();
  const addVariable = (name: string, tensor: Tensor): Variable => {
    const v = { name, tensor, read: names.take(`${name}/Read/ReadVariableOp`), init: names.take(`${name}/Initializer/zeros`), assign: names.take(`${name}/Assign`) };
    variables.push(v);
    return v;
  };
  const exported = exportGraph(model.graph, {
    functions: true,
    weight(irName, tensor, nodeName, emit) {
      read.add(irName);
      if (!isFloat(tensor.dtype)) {
        emit({ name: nodeName, op: 'Const', input: [], attr: { dtype: tfAttr.type(tfCode(tensor.dtype)), value: tfAttr.tensor(tensorToProto(tensor)) } });
        return nodeName;
      }
      return addVariable(nodeName, tensor).read;
    },
  }, names);
  // State-dict entries the graph never reads (BatchNorm's num_batches_tracked) are kept as
  // variables too, listed in a collection of their own so a reader can return them with the model.
  const unread = [...model.weights].filter(([name]) => !read.has(name)).map(([name, t]) => addVariable(names.take(name), t));
  const saver = saverNodes(variables, names);
  const nodes = [...variables.flatMap(variableNodes), ...exported.nodes, ...saver.nodes, initNode(variables, names)];
  const inputs = sigTensors(signature.inputs, model, exported.inputs, exported.dtypes, 'input');
  const outputs = sigTensors(signature.outputs, model, exported.outputs, exported.dtypes, 'output');
  const meta = {
    meta_info_def: { tags: ['serve'], meta_graph_version: 'modelbridge' },
    graph_def: { node: nodes, ...(exported.functions.length ? { library: { function: exported.functions } } : {}), versions: { producer: GRAPH_PRODUCER } },
    saver_def: {
      filename_tensor_name: tensorName(saver.filename),
      save_tensor_name: tensorName(saver.save),
      restore_op_name: saver.restore,
      max_to_keep: 5,
      keep_checkpoint_every_n_hours: 10000,
      version: 2,
    },
    collection_def: { ...(variables.length ? collections(variables) : {}), ...(unread.length ? { [UNREAD_COLLECTION]: { node_list: { value: unread.map((v) => v.name) } } } : {}) },
    signature_def: { [options.signature ?? DEFAULT_SIGNATURE]: { inputs, outputs, method_name: 'tensorflow/serving/predict' } },
  };
  const bytes = encodeMessage('SavedModel', { saved_model_schema_version: 1, meta_graphs: [meta] });

  // The first directory this write creates, removed again if the write fails (a tensor that
  // fails its checksum while streaming): a failed conversion leaves nothing behind.
  const created = mkdirSync(join(dir, 'variables'), { recursive: true });
  try {
    clearStale(dir);
    const sorted = [...variables].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const files = writeTensorBundle(join(dir, 'variables', 'variables'), new Map(sorted.map((v) => [v.name, v.tensor])));
    // saved_model.pb last: until it exists, the directory is no SavedModel.
    const pb = join(dir, 'saved_model.pb');
    writeBytesAtomic(pb, bytes);
    return [...files, pb];
  } catch (error) {
    if (created !== undefined) rmSync(created, { recursive: true, force: true });
    throw error;
  }
}

/** Files a previous export may have left that would not match the new one. */
function clearStale(dir: string): void {
  rmSync(join(dir, 'fingerprint.pb'), { force: true });
  for (const f of readdirSync(join(dir, 'variables'))) {
    if (/^variables\.data-\d{5}-of-\d{5}$/.test(f) && f !== 'variables.data-00000-of-00001') rmSync(join(dir, 'variables', f), { force: true });
  }
}

function variableNodes(v: Variable): NodeDefObject[] {
  const dtype = tfAttr.type(tfCode(v.tensor.dtype));
  return [
    {
      name: v.name,
      op: 'VarHandleOp',
      input: [],
      attr: { allowed_devices: tfAttr.strings([]), container: tfAttr.string(''), dtype, shape: tfAttr.shape(shapeToProto(v.tensor.shape)), shared_name: tfAttr.string(v.name) },
    },
    { name: v.init, op: 'Const', input: [], attr: { dtype, value: tfAttr.tensor(filledTensorProto(v.tensor.dtype, v.tensor.shape, 0)) } },
    { name: v.assign, op: 'AssignVariableOp', input: [v.name, v.init], attr: { dtype, validate_shape: tfAttr.bool(false) } },
    { name: v.read, op: 'ReadVariableOp', input: [v.name], attr: { dtype } },
  ];
}

const stringList = (name: string, values: readonly string[]): NodeDefObject => ({
  name,
  op: 'Const',
  input: [],
  attr: { dtype: tfAttr.type(7), value: tfAttr.tensor({ dtype: 7, tensor_shape: shapeToProto([values.length]), string_val: values.map((s) => new TextEncoder().encode(s)) }) },
});

/**
 * The TF1 Saver's graph (as tf.compat.v1.train.Saver builds it under "save/"): the filename
 * tensor takes the checkpoint prefix; the restore op assigns every variable from RestoreV2.
 */
function saverNodes(variables: readonly Variable[], names: TfNames): { nodes: NodeDefObject[]; filename: string; save: string; restore: string } {
  const str = tfAttr.type(7);
  const scalar = tfAttr.shape(shapeToProto([]));
  const keys = variables.map((v) => v.name);
  const dtypes = tfAttr.types(variables.map((v) => tfCode(v.tensor.dtype)));
  const n = (base: string) => names.take(`save/${base}`);
  const [input, filename, prefix] = [n('filename/input'), n('filename'), n('Const')];
  const [saveNames, saveSlices, save, saved] = [n('SaveV2/tensor_names'), n('SaveV2/shape_and_slices'), n('SaveV2'), n('control_dependency')];
  const [restoreNames, restoreSlices, restore] = [n('RestoreV2/tensor_names'), n('RestoreV2/shape_and_slices'), n('RestoreV2')];
  const nodes: NodeDefObject[] = [
    { name: input, op: 'Const', input: [], attr: { dtype: str, value: tfAttr.tensor({ dtype: 7, tensor_shape: {}, string_val: [new TextEncoder().encode('model')] }) } },
    { name: filename, op: 'PlaceholderWithDefault', input: [input], attr: { dtype: str, shape: scalar } },
    { name: prefix, op: 'PlaceholderWithDefault', input: [filename], attr: { dtype: str, shape: scalar } },
    stringList(saveNames, keys),
    stringList(saveSlices, keys.map(() => '')),
    { name: save, op: 'SaveV2', input: [prefix, saveNames, saveSlices, ...variables.map((v) => v.read)], attr: { dtypes } },
    { name: saved, op: 'Identity', input: [prefix, `^${save}`], attr: { T: str } },
    stringList(restoreNames, keys),
    stringList(restoreSlices, keys.map(() => '')),
    { name: restore, op: 'RestoreV2', input: [prefix, restoreNames, restoreSlices], attr: { dtypes } },
  ];
  const assigns = variables.map((v, i) => {
    const dtype = tfAttr.type(tfCode(v.tensor.dtype));
    const identity = n(`Identity_${i}`);
    const assign = n(`AssignVariableOp_${i}`);
    nodes.push({ name: identity, op: 'Identity', input: [i ? `${restore}:${i}` : restore], attr: { T: dtype } });
    nodes.push({ name: assign, op: 'AssignVariableOp', input: [v.name, identity], attr: { dtype, validate_shape: tfAttr.bool(false) } });
    return assign;
  });
  const restoreAll = n('restore_all');
  nodes.push({ name: restoreAll, op: 'NoOp', input: assigns.map((a) => `^${a}`), attr: {} });
  return { nodes, filename: prefix, save: saved, restore: restoreAll };
}

function initNode(variables: readonly Variable[], names: TfNames): NodeDefObject {
  return { name: names.take('init'), op: 'NoOp', input: variables.map((v) => `^${v.assign}`), attr: {} };
}

/** The "variables" and "trainable_variables" collections: one serialized VariableDef per variable. */
function collections(variables: readonly Variable[]): Record<string, object> {
  const def = (v: Variable) =>
    encodeMessage('VariableDef', {
      variable_name: `${v.name}:0`,
      initial_value_name: `${v.init}:0`,
      initializer_name: v.assign,
      snapshot_name: `${v.read}:0`,
      is_resource: true,
      trainable: isFloat(v.tensor.dtype),
    });
  // Only float variables can be trained (an integer counter cannot take a gradient).
  const trainable = variables.filter((v) => isFloat(v.tensor.dtype)).map(def);
  return { trainable_variables: { bytes_list: { value: trainable } }, variables: { bytes_list: { value: variables.map(def) } } };
}

function sigTensors(keys: Signature['inputs'], model: Model, tf: ReadonlyMap<string, string>, dtypes: ReadonlyMap<string, DType>, what: string) {
  const graph = model.graph!;
  const out: Record<string, object> = {};
  for (const key of [...keys.keys()].sort()) {
    const value = keys.get(key)!;
    const name = tf.get(value);
    if (!name) throw new UsageError(`signature ${what} ${key} names ${value}, which is no graph ${what}`);
    const info = (what === 'input' ? graph.inputs : graph.outputs).find((i) => i.name === value);
    const dtype = dtypes.get(value) ?? info?.dtype;
    if (!dtype) throw new UsageError(`signature ${what} ${key}: unknown element type`);
    out[key] = { name: tensorName(name), dtype: tfCode(dtype), tensor_shape: shapeToProto(info?.shape ?? null) };
  }
  return out;
}
