import { formatErrors, UsageError, type FormatErrors } from '../../core/errors.js';
import type { Attribute } from '../../core/graph.js';
import { int64ToNumber } from '../../core/int64.js';
import type { Graph } from '../../core/graph.js';
import { ATTRIBUTE_TYPE, type AttributeProto, type GraphProto, type Int64 } from './schema.js';
import { sparseTensorFromProto } from './sparse.js';
import { tensorFromProto, type TensorContext } from './tensor.js';

const utf8 = new TextDecoder('utf-8', { fatal: false });

const TYPE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(Object.entries(ATTRIBUTE_TYPE).map(([name, code]) => [code, name]));

/** Reads a nested GraphProto (the reader's graph reading, passed in so the two modules do not import each other). */
export type SubgraphReader = (proto: GraphProto, where: string) => Graph;

/**
 * Converts one NodeProto attribute to the IR's Attribute union. Ints must be exact as numbers;
 * strings are decoded as UTF-8. Graphs (If's branches, Loop's and Scan's bodies) are read with
 * `subgraph`. Tensor lists and type-proto attributes have no IR form yet and are refused as
 * unsupported content, not as a bad file. A sparse tensor (Constant's sparse_value) is densified,
 * which keeps its meaning.
 */
export function attributeFromProto(proto: AttributeProto, node: string, context: Omit<TensorContext, 'where'>, subgraph?: SubgraphReader): Attribute {
  const where = `attribute ${proto.name} of node ${node}`;
  const e: FormatErrors = formatErrors(context.file);
  e.check(proto.ref_attr_name === '', where, 'a value (ref_attr_name is only valid inside a function body)');
  const int = (v: Int64): number => {
    const n = int64ToNumber(v);
    e.check(n !== undefined, where, 'integers within ±2^53');
    return n;
  };
  const type = proto.type || inferType(proto);
  switch (type) {
    case ATTRIBUTE_TYPE.FLOAT:
      return { type: 'float', value: proto.f };
    case ATTRIBUTE_TYPE.INT:
      return { type: 'int', value: int(proto.i) };
    case ATTRIBUTE_TYPE.STRING:
      // An absent s decodes to protobufjs' default for bytes, a plain empty array: the empty string.
      return { type: 'string', value: utf8.decode(proto.s instanceof Uint8Array ? proto.s : new Uint8Array(0)) };
    case ATTRIBUTE_TYPE.FLOATS:
      return { type: 'floats', value: [...proto.floats] };
    case ATTRIBUTE_TYPE.INTS:
      return { type: 'ints', value: proto.ints.map(int) };
    case ATTRIBUTE_TYPE.STRINGS:
      return { type: 'strings', value: proto.strings.map((s) => utf8.decode(s)) };
    case ATTRIBUTE_TYPE.TENSOR:
      e.check(proto.t !== null, where, 'a tensor in field t');
      return { type: 'tensor', value: tensorFromProto(proto.t, { ...context, where }) };
    case ATTRIBUTE_TYPE.SPARSE_TENSOR:
      e.check(proto.sparse_tensor !== null, where, 'a sparse tensor in field sparse_tensor');
      return { type: 'tensor', value: sparseTensorFromProto(proto.sparse_tensor, { ...context, where }) };
    case ATTRIBUTE_TYPE.GRAPH:
      if (!subgraph) break;
      e.check(proto.g !== null, where, 'a graph in field g');
      return { type: 'graph', value: subgraph(proto.g, where) };
    case ATTRIBUTE_TYPE.GRAPHS:
      if (!subgraph) break;
      return { type: 'graphs', value: proto.graphs.map((g, i) => subgraph(g, `${where} graph ${i}`)) };
    case ATTRIBUTE_TYPE.UNDEFINED:
      return e.fail(where, 'an attribute type');
  }
  throw new UsageError(`${context.file}: ${where}: ${TYPE_NAMES[type] ?? `type ${type}`} attributes are not supported yet`);
}

/** IR version 1 files have no type discriminator: the one value field present decides. */
function inferType(p: AttributeProto): number {
  const has = (field: string) => Object.prototype.hasOwnProperty.call(p, field);
  if (has('f')) return ATTRIBUTE_TYPE.FLOAT;
  if (has('i')) return ATTRIBUTE_TYPE.INT;
  if (has('s')) return ATTRIBUTE_TYPE.STRING;
  if (has('t')) return ATTRIBUTE_TYPE.TENSOR;
  if (has('g')) return ATTRIBUTE_TYPE.GRAPH;
  if (p.floats.length) return ATTRIBUTE_TYPE.FLOATS;
  if (p.ints.length) return ATTRIBUTE_TYPE.INTS;
  if (p.strings.length) return ATTRIBUTE_TYPE.STRINGS;
  if (p.tensors.length) return ATTRIBUTE_TYPE.TENSORS;
  if (p.graphs.length) return ATTRIBUTE_TYPE.GRAPHS;
  return ATTRIBUTE_TYPE.UNDEFINED;
}
