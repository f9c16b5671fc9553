import type { DetailTable } from '../format.js';
import { readTfliteFile, type TflModel } from './file.js';
import { builtinName, TENSOR_TYPE_NAMES } from './ops.js';

/**
 * What a .tflite holds beyond the Model, for `inspect`: every signature def with its tensors,
 * every subgraph's operators by count, and the quantized tensors by kind (what
 * `tf.lite.experimental.Analyzer` would show, from the FlatBuffer alone).
 */
export function describeTflite(path: string): DetailTable[] {
  return describeModel(readTfliteFile(path));
}

export function describeModel(file: TflModel): DetailTable[] {
  const tables: DetailTable[] = [];
  const shape = (s: readonly number[] | null) => `[${(s ?? []).join(', ')}]`;
  for (const sig of file.signatures) {
    const sub = file.subgraphs[sig.subgraph]!;
    const rows = [
      ...sig.inputs.map((m) => ['input', m.name, sub.tensors[m.tensor]!]),
      ...sig.outputs.map((m) => ['output', m.name, sub.tensors[m.tensor]!]),
    ].map(([kind, name, t]) => {
      const tensor = t as (typeof sub.tensors)[number];
      return [kind as string, name as string, TENSOR_TYPE_NAMES[tensor.type] ?? String(tensor.type), shape(tensor.signature ?? tensor.shape), tensor.name];
    });
    tables.push({ title: `signature ${sig.key} (subgraph ${sig.subgraph})`, columns: ['', 'key', 'type', 'shape', 'tensor'], rows });
  }
  const rows: (string | number)[][] = [];
  for (const sub of file.subgraphs) {
    const counts = new Map<string, number>();
    for (const op of sub.operators) {
      const name = op.custom !== null ? `CUSTOM ${op.custom}` : (builtinName(op.code) ?? `code ${op.code}`);
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    const quantized = sub.tensors.filter((t) => t.quantization !== null);
    const perChannel = quantized.filter((t) => t.quantization!.scale.length > 1).length;
    rows.push([
      sub.index,
      sub.name,
      sub.tensors.length,
      sub.operators.length,
      [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([n, c]) => `${n} x${c}`).join(', '),
      quantized.length ? `${quantized.length} (${perChannel} per channel)` : '0',
    ]);
  }
  tables.push({ title: `subgraphs (schema version ${file.version})`, columns: ['#', 'name', 'tensors', 'operators', 'ops', 'quantized tensors'], rows });
  return tables;
}
