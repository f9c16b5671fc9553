import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeBytesAtomic } from '../../core/atomic.js';
import { UsageError } from '../../core/errors.js';
import type { Model } from '../../core/model.js';
import { tfAttr } from '../tf/attrs.js';
import { exportGraph, type ExportedGraph } from '../tf/export.js';
import { encodeMessage } from '../tf/schema.js';
import { tensorToProto, tfCode } from '../tf/tensor.js';

/**
 * Writes a frozen GraphDef: the model's graph with every weight as a Const node. The bytes depend
 * only on the model (nodes in graph order, attrs sorted), so writing twice gives the same file.
 */

/**
 * The GraphDef version our graphs declare: the producer of TensorFlow 2.21 (the version the
 * writers are checked against). Nothing older consumers reject: min_consumer stays 0.
 */
export const GRAPH_PRODUCER = 2474;

export function frozenGraph(model: Model): ExportedGraph {
  if (!model.graph) throw new UsageError('the model has no graph to write as a GraphDef (a bare state dict needs --module)');
  return exportGraph(model.graph, {
    weight(_name, tensor, nodeName, emit) {
      emit({ name: nodeName, op: 'Const', input: [], attr: { dtype: tfAttr.type(tfCode(tensor.dtype)), value: tfAttr.tensor(tensorToProto(tensor)) } });
      return nodeName;
    },
  });
}

export function graphDefBytes(model: Model): Uint8Array {
  const exported = frozenGraph(model);
  return encodeMessage('GraphDef', { node: exported.nodes, versions: { producer: GRAPH_PRODUCER } });
}

export function writeGraphDef(model: Model, path: string): string[] {
  const bytes = graphDefBytes(model);
  mkdirSync(dirname(path), { recursive: true });
  writeBytesAtomic(path, bytes);
  return [path];
}
