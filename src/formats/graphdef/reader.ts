import { readFileSync } from '../../core/vfs.js';
import { formatErrors, type FormatErrors } from '../../core/errors.js';
import type { Model, Signature } from '../../core/model.js';
import { attrShape, attrType } from '../tf/attrs.js';
import { FlatGraph, parseTensorName, refKey, type TfRef } from '../tf/flatten.js';
import { liftLoopFrames } from '../tf/frames.js';
import { importGraph, type Feed } from '../tf/import.js';
import type { GraphDef } from '../tf/messages.js';
import { decodeMessage } from '../tf/schema.js';
import { dtypeOf, shapeFromProto } from '../tf/tensor.js';

/**
 * Reads a frozen GraphDef (one serialized GraphDef, weights as Const nodes): Placeholders are the
 * inputs, and the outputs are the tensors given, or else every node no other node reads.
 */
export interface GraphDefReadOptions {
  /** Input tensor names ("x" or "x:0"); default: every Placeholder. */
  readonly inputs?: readonly string[];
  /** Output tensor names; default: the outputs of the nodes nothing consumes. */
  readonly outputs?: readonly string[];
}

/** Ops that are never a model's result even when nothing reads them. */
const NOT_RESULTS = new Set(['NoOp', 'Const', 'Placeholder', 'PlaceholderWithDefault', 'VariableV2', 'Variable', 'VarHandleOp', 'Assert', 'SaveV2', 'RestoreV2']);

export function decodeGraphDef(bytes: Uint8Array, file: string): GraphDef {
  return decodeMessage<GraphDef>('GraphDef', bytes, file);
}

export function readGraphDef(path: string, options: GraphDefReadOptions = {}): Model {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch {
    return formatErrors(path).fail('path', 'a readable file');
  }
  return graphDefToModel(decodeGraphDef(bytes, path), path, options);
}

export function graphDefToModel(original: GraphDef, file: string, options: GraphDefReadOptions = {}): Model {
  const e: FormatErrors = formatErrors(file);
  // A frozen TF2 graph holds its While loops lowered into TF1 loop frames; they are folded back.
  const lifted = liftLoopFrames(original.node);
  const graphDef: GraphDef = lifted.functions.length ? { ...original, node: lifted.nodes, library: { function: [...(original.library?.function ?? []), ...lifted.functions] } } : original;
  const flat = new FlatGraph(graphDef, file);
  const named = (text: string, what: string): TfRef => {
    const ref = parseTensorName(text);
    e.check(ref !== undefined && flat.node(ref.node) !== undefined, `${what} ${text}`, 'the name of a tensor in the graph');
    return ref;
  };
  const inputRefs = options.inputs?.map((t) => named(t, 'input')) ?? graphDef.node.filter((n) => n.op === 'Placeholder').map((n) => ({ node: n.name, index: 0 }));
  const feeds: Feed[] = inputRefs.map((ref) => {
    const node = flat.node(ref.node)!;
    const type = attrType(node.attr, 'dtype') ?? attrType(node.attr, 'T');
    e.check(type !== undefined, `input ${refKey(ref)}`, 'a node with a dtype attr');
    return { ref, dtype: dtypeOf(type, e, `input ${refKey(ref)} dtype`), shape: shapeFromProto(attrShape(node.attr, 'shape')) };
  });
  const outputRefs = options.outputs?.map((t) => named(t, 'output')) ?? sinks(graphDef);
  e.check(outputRefs.length > 0, 'graph', 'at least one node whose result nothing reads (give the outputs)');
  const imported = importGraph({ flat, feeds, fetches: outputRefs.map((ref) => ({ ref })) });
  const signature: Signature = {
    name: 'default',
    inputs: new Map(feeds.map((f, i) => [refKey(f.ref), imported.inputs[i]!])),
    outputs: new Map(outputRefs.map((r, i) => [refKey(r), imported.outputs[i]!])),
  };
  const producer = graphDef.versions?.producer;
  return {
    format: 'graphdef',
    weights: imported.graph.initializers,
    graph: imported.graph,
    signatures: [signature],
    metadata: producer ? { 'graphdef.producer': String(producer) } : {},
  };
}

/** Output 0 of every node that no other node reads (data or control), in graph order. */
function sinks(graphDef: GraphDef): TfRef[] {
  const read = new Set<string>();
  for (const n of graphDef.node) for (const i of n.input) read.add(parseTensorName(i.replace(/^\^/, ''))!.node);
  return graphDef.node.filter((n) => !read.has(n.name) && !NOT_RESULTS.has(n.op)).map((n) => ({ node: n.name, index: 0 }));
}
