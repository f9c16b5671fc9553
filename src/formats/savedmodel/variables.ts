import { formatErrors, type FormatErrors } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { attrFunc, attrString, attrType } from '../tf/attrs.js';
import { parseTensorName, type TfNode } from '../tf/flatten.js';
import type { MetaGraphDef, NodeDef, SavedObjectGraph, TrackableObjectGraph } from '../tf/messages.js';
import { decodeMessage } from '../tf/schema.js';
import { dtypeOf } from '../tf/tensor.js';

/**
 * Which checkpoint tensor holds each variable of a SavedModel's graph.
 *  - TF2: the outer graph's call nodes pass variable handles (VarHandleOp) after the signature's
 *    inputs; the SavedObjectGraph's concrete function lists their object ids (bound_inputs); the
 *    checkpoint's own object graph (_CHECKPOINTABLE_OBJECT_GRAPH), matched to it by the names of
 *    the edges from the root, gives each object's key, e.g.
 *    `layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`.
 *  - TF1: the saver's RestoreV2 node lists the keys it restores, and the Assign or
 *    AssignVariableOp fed by each of its outputs names the variable; failing that, the key is the
 *    variable's name, as TF1's Saver writes it.
 */

export interface VariableValue {
  /** The name the IR gives the weight: the object path (TF2) or the variable's name (TF1). */
  readonly name: string;
  readonly tensor: Tensor;
}

export const OBJECT_GRAPH_KEY = '_CHECKPOINTABLE_OBJECT_GRAPH';
const VALUE_SUFFIX = '/.ATTRIBUTES/VARIABLE_VALUE';

export function variableResolver(meta: MetaGraphDef, bundle: ReadonlyMap<string, Tensor> | undefined, file: string): (node: TfNode) => VariableValue {
  const e: FormatErrors = formatErrors(file);
  const nodes = meta.graph_def?.node ?? [];
  const restored = restoreKeys(nodes);
  const captured = capturedKeys(meta, bundle, file);
  return (node) => {
    const where = `variable ${node.origin}`;
    e.check(bundle !== undefined, where, 'a checkpoint (variables/variables.index) holding its value');
    const key = captured.get(node.name) ?? restored.get(node.name) ?? (attrString(node.attr, 'shared_name', '') || node.name);
    const tensor = bundle.get(key);
    e.check(tensor !== undefined, where, `a value in the checkpoint under ${JSON.stringify(key)}`);
    const type = attrType(node.attr, 'dtype');
    if (type !== undefined) e.check(dtypeOf(type, e, `${where} dtype`) === tensor.dtype, where, `a checkpoint value of its dtype, found ${tensor.dtype}`);
    return { name: key.endsWith(VALUE_SUFFIX) ? key.slice(0, -VALUE_SUFFIX.length) : key, tensor };
  };
}

/** TF1: variable node name -> the key its restore op reads. */
function restoreKeys(nodes: readonly NodeDef[]): Map<string, string> {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const names = new Map<string, string[]>();
  for (const n of nodes) {
    if (n.op !== 'RestoreV2') continue;
    const list = byName.get(parseTensorName(n.input[1] ?? '')?.node ?? '');
    const tensor = list?.op === 'Const' ? list.attr['value']?.tensor : undefined;
    if (tensor) names.set(n.name, tensor.string_val.map((b) => new TextDecoder().decode(b)));
  }
  const keys = new Map<string, string>();
  if (!names.size) return keys;
  // Follow each RestoreV2 output through Identity nodes to the assignment it feeds.
  const source = (ref: string, depth = 0): string | undefined => {
    const r = parseTensorName(ref);
    if (!r || depth > 8) return undefined;
    const n = byName.get(r.node);
    if (n?.op === 'RestoreV2') return names.get(n.name)?.[r.index];
    return n?.op === 'Identity' ? source(n.input[0] ?? '', depth + 1) : undefined;
  };
  for (const n of nodes) {
    if (n.op !== 'Assign' && n.op !== 'AssignVariableOp') continue;
    const key = source(n.input[1] ?? '');
    const target = parseTensorName(n.input[0] ?? '')?.node;
    if (key !== undefined && target) keys.set(target, key);
  }
  return keys;
}

/** TF2: outer VarHandleOp name -> checkpoint key, through the object graphs. */
function capturedKeys(meta: MetaGraphDef, bundle: ReadonlyMap<string, Tensor> | undefined, file: string): Map<string, string> {
  const keys = new Map<string, string>();
  const saved = meta.object_graph_def;
  if (!saved) return keys;
  const keyOf = objectKeys(saved, bundle, file);
  for (const n of meta.graph_def?.node ?? []) {
    const f = n.op === 'StatefulPartitionedCall' || n.op === 'PartitionedCall' ? attrFunc(n.attr, 'f') : undefined;
    const bound = f === undefined ? undefined : saved.concrete_functions[f]?.bound_inputs;
    if (!bound?.length) continue;
    const data = n.input.filter((i) => !i.startsWith('^'));
    const handles = data.slice(data.length - bound.length);
    handles.forEach((h, i) => {
      const key = keyOf(bound[i]!);
      const node = parseTensorName(h)?.node;
      if (key !== undefined && node) keys.set(node, key);
    });
  }
  return keys;
}

/**
 * Object id (in the SavedObjectGraph) -> its variable's checkpoint key. The two object graphs
 * are walked together from their roots along edges of equal local name, as TF's loader matches
 * them; without a checkpoint object graph the key is built from the path, as TF builds it.
 */
function objectKeys(saved: SavedObjectGraph, bundle: ReadonlyMap<string, Tensor> | undefined, file: string): (id: number) => string | undefined {
  const stored = bundle?.get(OBJECT_GRAPH_KEY);
  const ckpt = stored?.strings?.[0] ? decodeMessage<TrackableObjectGraph>('TrackableObjectGraph', stored.strings[0], file, `checkpoint entry ${OBJECT_GRAPH_KEY}`) : undefined;
  const paths = new Map<number, string[]>([[0, []]]);
  const matched = new Map<number, number>([[0, 0]]);
  const queue = [0];
  while (queue.length) {
    const id = queue.shift()!;
    const object = saved.nodes[id];
    const twin = matched.get(id);
    for (const child of object?.children ?? []) {
      if (paths.has(child.node_id) || child.node_id >= saved.nodes.length) continue;
      paths.set(child.node_id, [...paths.get(id)!, child.local_name]);
      const twinChild = twin === undefined ? undefined : ckpt?.nodes[twin]?.children.find((c) => c.local_name === child.local_name);
      if (twinChild) matched.set(child.node_id, twinChild.node_id);
      queue.push(child.node_id);
    }
  }
  return (id) => {
    const twin = matched.get(id);
    if (ckpt && twin !== undefined) {
      const attribute = ckpt.nodes[twin]?.attributes.find((a) => a.name === 'VARIABLE_VALUE');
      if (attribute) return attribute.checkpoint_key;
    }
    const path = paths.get(id);
    if (!path || saved.nodes[id]?.kind !== 'variable') return undefined;
    return path.map((p) => p.replace(/\./g, '..').replace(/\//g, '.S')).join('/') + VALUE_SUFFIX;
  };
}
