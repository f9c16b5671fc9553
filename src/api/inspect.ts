import { opsUsed } from '../core/graph.js';
import type { Model } from '../core/model.js';
import type { DetailTable } from '../formats/format.js';

export interface TensorSummary {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly (number | string | null)[] | null;
}

/** One stored tensor (a weight or buffer), as `inspect --tensors` lists it. */
export interface TensorEntry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Bytes of its data as the model holds it (elements x dtype size; strings: their bytes). */
  readonly bytes: number;
}

/** What `inspect` reports; also its --json schema (docs/inspect-report.md). */
export interface InspectReport {
  readonly path: string;
  readonly format: string;
  readonly runnable: boolean;
  readonly opset: number | null;
  readonly signatures: ReadonlyArray<{ name: string; inputs: TensorSummary[]; outputs: TensorSummary[] }>;
  readonly ops: readonly string[];
  readonly parameters: { readonly tensors: number; readonly elements: number; readonly bytes: number };
  readonly dtypes: Readonly<Record<string, number>>;
  /** Every stored tensor, in the model's own order (a state dict's, a checkpoint's). */
  readonly tensors: readonly TensorEntry[];
  readonly module: unknown;
  readonly metadata: Readonly<Record<string, string>>;
  /** What the format stores beyond the model (SavedModel: every tag set, signature and variable). */
  readonly details: readonly DetailTable[];
}

/** Summarises a model from its headers: no weight bytes are read. */
export function inspectModel(model: Model, path: string, details: readonly DetailTable[] = []): InspectReport {
  const graph = model.graph;
  let elements = 0;
  let bytes = 0;
  const dtypes: Record<string, number> = {};
  const tensors: TensorEntry[] = [];
  for (const [name, t] of model.weights) {
    elements += t.size;
    bytes += t.byteLength;
    dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
    tensors.push({ name, dtype: t.dtype, shape: [...t.shape], bytes: t.byteLength });
  }
  const describe = (names: ReadonlyMap<string, string>, infos: NonNullable<typeof graph>['inputs']) =>
    [...names].map(([key, value]) => {
      const info = infos.find((i) => i.name === value);
      return { name: key, dtype: info?.dtype ?? 'unknown', shape: info?.shape ?? null };
    });
  return {
    path,
    format: model.format,
    runnable: graph !== undefined,
    opset: graph?.opset ?? null,
    signatures: graph ? model.signatures.map((s) => ({ name: s.name, inputs: describe(s.inputs, graph.inputs), outputs: describe(s.outputs, graph.outputs) })) : [],
    ops: graph ? opsUsed(graph) : [],
    parameters: { tensors: model.weights.size, elements, bytes },
    dtypes,
    tensors,
    module: model.module ?? null,
    metadata: model.metadata,
    details,
  };
}
