import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../../core/atomic.js';
import { UsageError } from '../../core/errors.js';
import type { Model } from '../../core/model.js';
import { encodeVarint } from '../../core/protowire.js';
import type { ByteSource } from '../../core/source.js';
import type { Tensor } from '../../core/tensor.js';
import { tfAttr } from '../tf/attrs.js';
import { exportGraph, type ExportedGraph } from '../tf/export.js';
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
  const exported = exportGraph(model.graph, {
    weight(_name, tensor, nodeName, emit) {
      // Strings have no tensor_content: they stay in the NodeDef as string_val.
      if (tensor.dtype !== 'string' && tensor.byteLength > 0) weights.set(nodeName, { name: nodeName, tensor });
      emit({ name: nodeName, op: 'Const', input: [], attr: { dtype: tfAttr.type(tfCode(tensor.dtype)), ...(weights.has(nodeName) ? {} : { value: tfAttr.tensor(tensorToProto(tensor)) }) } });
      return nodeName;
    },
  });
  return { ...exported, weights };
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
  // GraphDef.versions (field 4) follows the nodes (field 1), as protobufjs orders them.
  parts.push(encodeMessage('GraphDef', { node: [], versions: { producer: GRAPH_PRODUCER } }));
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
