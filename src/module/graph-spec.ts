import { isDType } from '../core/dtypes.js';
import { FormatError, UsageError } from '../core/errors.js';
import type { Attribute, Graph, Node, ValueInfo } from '../core/graph.js';
import type { Tensor } from '../core/tensor.js';
import type { ModuleSpec } from './spec.js';
import { liftRecurrentLoops } from '../formats/onnx/lift-loop.js';

/**
 * The general form of a module spec, for models that are no stack of torch.nn modules:
 * `{"type":"Graph","opset":17,"inputs":[...],"outputs":[...],"nodes":[...]}`. Nodes are the IR's
 * ONNX ops; weights stay in the bundle's tensors under their graph value names, and a tensor
 * attribute (Constant's value) is stored as a bundle tensor and referenced as {"tensor": name}.
 */
const ATTR_TENSOR_PREFIX = 'modelbridge.attribute/';

type AttributeJSON =
  | { int: number }
  | { float: number }
  | { string: string }
  | { ints: number[] }
  | { floats: number[] }
  | { strings: string[] }
  | { tensor: string };

export function graphToSpec(source: Graph): { spec: ModuleSpec; tensors: Map<string, Tensor> } {
  // A spec holds no nested graph: tf2onnx's Loop of a Keras LSTM/GRU cell is lifted to the recurrent node.
  const graph = liftRecurrentLoops(source);
  const tensors = new Map(graph.initializers);
  const nodes = graph.nodes.map((node) => {
    const attributes: Record<string, AttributeJSON> = {};
    for (const key of Object.keys(node.attributes).sort()) {
      const a = node.attributes[key]!;
      if (a.type === 'graph' || a.type === 'graphs') {
        throw new UsageError(`a bundle's module spec cannot hold node ${node.name} (${node.op}): its attribute ${key} is a nested graph; write ONNX instead`);
      }
      if (a.type === 'tensor') {
        const name = `${ATTR_TENSOR_PREFIX}${node.name}/${key}`;
        tensors.set(name, a.value);
        attributes[key] = { tensor: name };
      } else {
        attributes[key] = { [a.type]: a.value } as AttributeJSON;
      }
    }
    return { name: node.name, op: node.op, ...(node.domain ? { domain: node.domain } : {}), inputs: node.inputs, outputs: node.outputs, attributes };
  });
  const io = (v: ValueInfo) => ({ name: v.name, dtype: v.dtype, shape: v.shape });
  const spec: ModuleSpec = {
    type: 'Graph',
    opset: graph.opset,
    inputs: graph.inputs.map(io),
    outputs: graph.outputs.map(io),
    nodes,
  };
  return { spec, tensors };
}

/** Rebuilds the graph of a Graph-form spec; every malformed piece is a FormatError naming it. */
export function specToGraph(spec: ModuleSpec, weights: ReadonlyMap<string, Tensor>, file: string): Graph {
  const fail = (where: string, expected: string): never => {
    throw new FormatError(file, `module spec (Graph) ${where}`, expected);
  };
  const opset = spec['opset'];
  if (typeof opset !== 'number' || !Number.isSafeInteger(opset) || opset < 1) fail('opset', 'a positive integer');

  const valueInfos = (key: string): ValueInfo[] => {
    const list = spec[key];
    if (!Array.isArray(list)) return fail(key, 'a list');
    return list.map((v: unknown, i: number) => {
      const o = v as { name?: unknown; dtype?: unknown; shape?: unknown };
      if (typeof o?.name !== 'string') fail(`${key}[${i}].name`, 'a string');
      if (typeof o.dtype !== 'string' || !isDType(o.dtype)) fail(`${key}[${i}].dtype`, 'a known dtype');
      const shape = o.shape;
      const okShape = shape === null || (Array.isArray(shape) && shape.every((d) => d === null || typeof d === 'string' || (Number.isSafeInteger(d) && d >= 0)));
      if (!okShape) fail(`${key}[${i}].shape`, 'null or a list of sizes, names or nulls');
      return { name: o.name as string, dtype: o.dtype as ValueInfo['dtype'], shape: shape as ValueInfo['shape'] };
    });
  };

  const rawNodes = spec['nodes'];
  if (!Array.isArray(rawNodes)) fail('nodes', 'a list');
  const isStrings = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === 'string');
  const initializers = new Map<string, Tensor>();
  const nodes: Node[] = (rawNodes as unknown[]).map((raw, i) => {
    const n = raw as Record<string, unknown>;
    const where = `nodes[${i}]`;
    if (typeof n?.op !== 'string' || typeof n.name !== 'string') fail(where, 'a node with string "op" and "name"');
    if (!isStrings(n.inputs) || !isStrings(n.outputs)) fail(`${where} (${String(n.name)})`, 'string lists "inputs" and "outputs"');
    const attributes: Record<string, Attribute> = {};
    const rawAttrs = (n.attributes ?? {}) as Record<string, unknown>;
    if (typeof rawAttrs !== 'object' || rawAttrs === null || Array.isArray(rawAttrs)) fail(`${where}.attributes`, 'an object');
    for (const [key, value] of Object.entries(rawAttrs)) {
      attributes[key] = parseAttribute(value, weights, (expected) => fail(`${where}.attributes.${key}`, expected));
    }
    return {
      name: n.name as string,
      op: n.op as string,
      domain: typeof n.domain === 'string' ? n.domain : '',
      inputs: n.inputs as string[],
      outputs: n.outputs as string[],
      attributes,
    };
  });
  for (const [name, tensor] of weights) if (!name.startsWith(ATTR_TENSOR_PREFIX)) initializers.set(name, tensor);
  return { inputs: valueInfos('inputs'), outputs: valueInfos('outputs'), initializers, nodes, opset: opset as number };
}

function parseAttribute(value: unknown, weights: ReadonlyMap<string, Tensor>, fail: (expected: string) => never): Attribute {
  if (typeof value !== 'object' || value === null) return fail('an object such as {"int": 1}');
  const entries = Object.entries(value);
  if (entries.length !== 1) return fail('exactly one typed value');
  const [type, v] = entries[0]!;
  const numbers = (x: unknown): x is number[] => Array.isArray(x) && x.every((e) => typeof e === 'number');
  switch (type) {
    case 'int':
      if (Number.isSafeInteger(v)) return { type, value: v as number };
      break;
    case 'float':
      if (typeof v === 'number') return { type, value: v };
      break;
    case 'string':
      if (typeof v === 'string') return { type, value: v };
      break;
    case 'ints':
    case 'floats':
      if (numbers(v)) return { type, value: v };
      break;
    case 'strings':
      if (Array.isArray(v) && v.every((e) => typeof e === 'string')) return { type, value: v as string[] };
      break;
    case 'tensor': {
      const t = typeof v === 'string' ? weights.get(v) : undefined;
      if (t) return { type, value: t };
      return fail(`a tensor stored in the bundle, not ${JSON.stringify(v)}`);
    }
  }
  return fail(`a valid ${type} value`);
}
