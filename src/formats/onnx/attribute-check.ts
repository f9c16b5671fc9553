import { FormatError } from '../../core/errors.js';
import { allNodes, type Graph } from '../../core/graph.js';
import { MAX_KNOWN_OPSET, SCHEMAS, type SchemaVersion } from './opset-schemas.js';

/**
 * Refuses nodes of the default domain that carry an attribute their op's schema does not have at
 * the graph's opset, as onnxruntime does ("Unrecognized attribute: num_outputs for operator
 * Split" at opset 17: num_outputs exists from opset 18). Without this the runtime would read the
 * attribute anyway and run a file its own framework rejects as invalid. Opsets newer than the
 * schema table are not checked (their schemas may have attributes it does not know), and ops
 * that do not exist at the graph's opset are left to the runtime's own refusal.
 */
export function refuseUnknownAttributes(graph: Graph, file: string): void {
  if (graph.opset > MAX_KNOWN_OPSET) return;
  // Nested graphs (If's branches, Loop's and Scan's bodies) follow the model's opset too.
  for (const node of allNodes(graph)) {
    if (node.domain !== '' && node.domain !== 'ai.onnx') continue;
    const versions = SCHEMAS[node.op];
    const schema = versions && schemaAt(versions, graph.opset);
    if (!schema) continue;
    const allowed = schema[3] === '' ? [] : schema[3].split(',');
    for (const key of Object.keys(node.attributes)) {
      if (allowed.includes(key)) continue;
      const has = (v: SchemaVersion) => v[3].split(',').includes(key);
      const first = versions.find(has);
      const removed = first && versions.find((v) => v[0] > first[0] && v[0] <= graph.opset && !has(v));
      const have = allowed.length ? allowed.join(', ') : 'none';
      const since = !first ? '' : first[0] > graph.opset ? `; ${key} exists from opset ${first[0]}` : removed ? `; ${key} was removed in opset ${removed[0]}` : '';
      throw new FormatError(file, `node ${node.name} (${node.op}) attribute ${key}`, `an attribute of ${node.op} at opset ${graph.opset} (it has: ${have})${since}`);
    }
  }
}

/** The op's newest schema version at or below `opset`. */
function schemaAt(versions: readonly SchemaVersion[], opset: number): SchemaVersion | undefined {
  let found: SchemaVersion | undefined;
  for (const v of versions) if (v[0] <= opset) found = v;
  return found;
}
