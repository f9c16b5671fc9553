import type { Graph } from './graph.js';
import type { Tensor } from './tensor.js';
import type { ModuleSpec } from '../module/spec.js';

/**
 * A signature maps the names a user sees (serving_default's keys, `x`) onto graph values.
 * Formats without named signatures get one called `default` over the graph inputs and outputs.
 */
export interface Signature {
  readonly name: string;
  readonly inputs: ReadonlyMap<string, string>;
  readonly outputs: ReadonlyMap<string, string>;
}

/**
 * What every reader produces and every writer consumes. A model has weights (the state dict,
 * named as PyTorch names them where it can), and, when it is runnable, a graph. A bare state dict
 * has weights only; `--module` supplies the architecture that lowers into a graph.
 */
export interface Model {
  /** Format the model was read from, for `inspect`. */
  readonly format: string;
  readonly weights: ReadonlyMap<string, Tensor>;
  readonly graph?: Graph;
  /** The torch.nn-shaped architecture, when the model has one. */
  readonly module?: ModuleSpec;
  readonly signatures: readonly Signature[];
  /** Free-form string metadata carried between formats (producer, format extras). */
  readonly metadata: Readonly<Record<string, string>>;
}

export function defaultSignature(graph: Graph): Signature {
  return {
    name: 'default',
    inputs: new Map(graph.inputs.filter((i) => !graph.initializers.has(i.name)).map((i) => [i.name, i.name])),
    outputs: new Map(graph.outputs.map((o) => [o.name, o.name])),
  };
}
