import { mkdirSync } from '../../core/vfs.js';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../../core/atomic.js';
import { UsageError } from '../../core/errors.js';
import type { Model } from '../../core/model.js';
import { encodeVarint } from '../../core/protowire.js';
import type { ByteSource } from '../../core/source.js';
import type { Tensor } from '../../core/tensor.js';
import { tfAttr } from '../tf/attrs.js';
import { exportGraph, TfNames, type ExportedGraph, type NodeDefObject } from '../tf/export.js';
import { parseTensorName } from '../tf/flatten.js';
import { encodeMessage } from '../tf/schema.js';
import { shapeToProto, tensorToProto, tfCode } from '../tf/tensor.js';

/**
 * Writes a frozen GraphDef: the model's graph with every weight as a Const node. The bytes depend
 * only on the model (nodes in graph order, attrs sorted), so writing twice gives the same file.
 *
 * A frozen graph is one protobuf message, but its weights are not gathered into it: each weight's
 * Const node is encoded around its tensor_content, which streams from the tensor's source into
 * the file, so writing a large model holds one chunk of it at a time. The bytes are those
 * protobufjs would encode for the whole message (a test checks it).
 */

/**
 * The GraphDef version our graphs declare: the producer of TensorFlow 2.21 (the version the
 * writers are checked against). Nothing older consumers reject: min_consumer stays 0.
 */
export const GRAPH_PRODUCER = 2474;

/** A weight's Const node, its value left out of the NodeDef object and kept as the tensor. */
interface WeightConst {
  readonly name: string;
  readonly tensor: Tensor;
}

interface FrozenGraph extends ExportedGraph {
  /** Const nodes (by name) whose tensor_content is the tensor's bytes, streamed when written. */
  readonly weights: ReadonlyMap<string, WeightConst>;
}

function freeze(model: Model): FrozenGraph {
  if (!model.graph) throw new UsageError('the model has no graph to write as a GraphDef (a bare state dict needs --module)');
  const weights = new Map<string, WeightConst>();
  const names = new TfNames();
  const exported = exportGraph(model.graph, {
    functions: true,
    weight(_name, tensor, nodeName, emit) {
      // Strings have no tensor_content: they stay in the NodeDef as string_val.
      if (tensor.dtype !== 'string' && tensor.byteLength > 0) weights.set(nodeName, { name: nodeName, tensor });
      emit({ name: nodeName, op: 'Const', input: [], attr: { dtype: tfAttr.type(tfCode(tensor.dtype)), ...(weights.has(nodeName) ? {} : { value: tfAttr.tensor(tensorToProto(tensor)) }) } });
      return nodeName;
    },
  }, names);
  return { ...asSinks(exported, names), weights };
}

/** Ops a reader never takes for a result (graphdef/reader.ts and TensorFlow's freezing tools agree). */
const NOT_RESULTS = new Set(['Const', 'Placeholder', 'PlaceholderWithDefault', 'NoOp']);

/**
 * A GraphDef has no signature: its readers (ours, TF's import tools, the zoo's TF1 session) take
 * the nodes nothing reads for its outputs, output 0 of each, named after the node. An output
 * another node reads (a Keras embedding that feeds the logits), output k > 0 of a node, or one of
 * several outputs of a node would be lost or misnamed, so each such output gets an Identity sink:
 * the computing node moves to a fresh name (its readers follow it) and the Identity of its output
 * 0 takes its name, which the output is named after; any other output (output k > 0, a helper
 * node of a lowering) gets an Identity named after it.
 */
function asSinks(graph: ExportedGraph, names: TfNames): ExportedGraph {
  const nodes: { name: string; op: string; input: string[]; attr: NodeDefObject['attr'] }[] = graph.nodes.map((n) => ({ ...n, input: [...n.input] }));
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const read = new Set<string>();
  for (const n of nodes) for (const i of n.input) read.add(parseTensorName(i.replace(/^\^/, ''))!.node);
  const refs = [...graph.outputs].map(([output, tensor]) => ({ output, ref: parseTensorName(tensor)! }));
  const perNode = new Map<string, number>();
  for (const { ref } of refs) perNode.set(ref.node, (perNode.get(ref.node) ?? 0) + 1);
  const needs = ({ output, ref }: { output: string; ref: { node: string; index: number } }) =>
    ref.index !== 0 || ref.node !== output || read.has(ref.node) || NOT_RESULTS.has(byName.get(ref.node)!.op) || perNode.get(ref.node)! > 1;
  // Nodes that move: those named after an output that needs a sink, so the sink can take the name
  // (never a Placeholder or Const, whose names are the graph's inputs and weights).
  const moved = new Map<string, string>();
  for (const r of refs) {
    if (needs(r) && r.ref.index === 0 && r.ref.node === r.output && !NOT_RESULTS.has(byName.get(r.ref.node)!.op) && !moved.has(r.ref.node)) {
      moved.set(r.ref.node, names.take(`${r.ref.node}/value`));
    }
  }
  const rename = (i: string) => {
    const control = i.startsWith('^');
    const r = parseTensorName(control ? i.slice(1) : i)!;
    const to = moved.get(r.node);
    if (to === undefined) return i;
    return control ? `^${to}` : r.index === 0 && !i.includes(':') ? to : `${to}:${r.index}`;
  };
  for (const n of nodes) {
    n.input = n.input.map(rename);
    n.name = moved.get(n.name) ?? n.name;
  }
  const outputs = new Map<string, string>();
  for (const r of refs) {
    if (!needs(r)) {
      outputs.set(r.output, `${r.ref.node}:${r.ref.index}`);
      continue;
    }
    const dtype = graph.dtypes.get(r.output);
    if (!dtype) throw new Error(`bug: graph output ${r.output} has no known dtype`);
    const name = r.ref.index === 0 && r.ref.node === r.output && moved.has(r.ref.node) ? r.ref.node : names.take(r.output);
    nodes.push({ name, op: 'Identity', input: [rename(`${r.ref.node}:${r.ref.index}`)], attr: { T: tfAttr.type(tfCode(dtype)) } });
    outputs.set(r.output, `${name}:0`);
  }
  return { ...graph, nodes: reachable(nodes, [...outputs.values()]), outputs };
}

/**
 * The nodes the outputs need, plus every Const and Placeholder (weights and inputs are the
 * model's, read or not). A value no output needs (an ONNX LSTM's Y_c nobody reads, which the TF
 * lowering still computes) would otherwise be one more node nothing reads: one more output.
 */
function reachable<N extends { name: string; op: string; input: string[] }>(nodes: N[], outputs: readonly string[]): N[] {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const keep = new Set<string>();
  const stack = outputs.map((o) => parseTensorName(o)!.node);
  while (stack.length) {
    const name = stack.pop()!;
    if (keep.has(name)) continue;
    keep.add(name);
    for (const i of byName.get(name)?.input ?? []) stack.push(parseTensorName(i.replace(/^\^/, ''))!.node);
  }
  return nodes.filter((n) => keep.has(n.name) || n.op === 'Const' || n.op === 'Placeholder');
}

/** The graph as a frozen GraphDef would hold it: every weight a Const node with its value. */
export function frozenGraph(model: Model): ExportedGraph {
  const frozen = freeze(model);
  return { ...frozen, nodes: frozen.nodes.map((n) => (frozen.weights.has(n.name) ? constNode(frozen.weights.get(n.name)!.tensor, n.name) : n)) };
}

function constNode(tensor: Tensor, name: string) {
  return { name, op: 'Const', input: [], attr: { dtype: tfAttr.type(tfCode(tensor.dtype)), value: tfAttr.tensor(tensorToProto(tensor)) } };
}

type Part = Uint8Array | ByteSource;

const LEN = 2; // protobuf wire type 2: length-delimited
const key = (field: number) => encodeVarint(field * 8 + LEN);
const sizeOf = (parts: readonly Part[]) => parts.reduce((n, p) => n + p.byteLength, 0);
/** A length-delimited field: key, length, then the parts. */
const field = (id: number, parts: readonly Part[]): Part[] => [key(id), encodeVarint(sizeOf(parts)), ...parts];

/**
 * NodeDef { name, op, attr { dtype, value: TensorProto { dtype, tensor_shape, tensor_content } } }
 * in protobufjs' order: fields by number, map entries in key order ("dtype" < "value"); the
 * tensor_content of TensorProto (field 4) is the last field of all, so it can stream.
 */
function weightNodeParts(weight: WeightConst, head: Uint8Array): Part[] {
  const t = weight.tensor;
  const tensorHead = encodeMessage('TensorProto', { dtype: tfCode(t.dtype), tensor_shape: shapeToProto(t.shape) });
  const tensorProto = [tensorHead, ...field(4, [t.source])];
  const attrValue = field(8, tensorProto);
  const entry = [...field(1, [new TextEncoder().encode('value')]), ...field(2, attrValue)];
  return [head, ...field(5, entry)];
}

/** The GraphDef's bytes as parts: encoded messages, and the weights' sources between them. */
function graphDefParts(model: Model): Part[] {
  const frozen = freeze(model);
  const parts: Part[] = [];
  for (const node of frozen.nodes) {
    const head = encodeMessage('NodeDef', node);
    const weight = frozen.weights.get(node.name);
    parts.push(...field(1, weight ? weightNodeParts(weight, head) : [head]));
  }
  // GraphDef.library (field 2, While loops' functions) and versions (field 4) follow the nodes
  // (field 1), as protobufjs orders them.
  parts.push(encodeMessage('GraphDef', { node: [], ...(frozen.functions.length ? { library: { function: frozen.functions } } : {}), versions: { producer: GRAPH_PRODUCER } }));
  return parts;
}

/** The whole GraphDef in memory (small models, tests). */
export function graphDefBytes(model: Model): Uint8Array {
  const parts = graphDefParts(model);
  const out = new Uint8Array(sizeOf(parts));
  let at = 0;
  for (const part of parts) {
    const bytes = part instanceof Uint8Array ? part : part.read();
    out.set(bytes, at);
    at += bytes.byteLength;
  }
  return out;
}

const CHUNK = 1 << 22;

export function writeGraphDef(model: Model, path: string): string[] {
  const parts = graphDefParts(model);
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, (append) => {
    for (const part of parts) {
      if (part instanceof Uint8Array) append(part);
      else for (const chunk of part.chunks(CHUNK)) append(chunk);
    }
  });
  return [path];
}
