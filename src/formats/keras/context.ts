import type { DType } from '../../core/dtypes.js';
import type { Attribute } from '../../core/graph.js';
import type { Tensor } from '../../core/tensor.js';

/** A Keras tensor as the IR holds it: a value name, Keras's layout (channels last) and its static shape. */
export interface KValue {
  readonly name: string;
  /** null for an unknown size (the batch). */
  readonly shape: readonly (number | null)[];
  readonly dtype: DType;
  /**
   * Keras's mask on this tensor (`_keras_mask`): a bool [batch, time] value, true on the steps
   * that count. Embedding(mask_zero=True) and Masking make one, layers that support masking pass
   * it on, LSTM/GRU/SimpleRNN skip the steps it marks false.
   */
  readonly mask?: string;
}

/** A layer's config object as config.json holds it. */
export type Config = Readonly<Record<string, unknown>>;

/** What a layer builder uses: its config, its weights, and a way to add IR nodes. */
export interface LayerContext {
  readonly className: string;
  readonly layerName: string;
  readonly config: Config;
  /** The weight `key` (a layout key: 'kernel', 'cell/bias'), checked against `shape` when given. */
  weight(key: string, shape?: readonly (number | null)[]): Tensor;
  /** Whether the layer has the weight (use_bias=False layers have none). */
  hasWeight(key: string): boolean;
  /**
   * Adds a tensor as an initializer named after this layer (`<layer path>/<base>`). `source` says
   * which weight it was made from and how (perm:..., rnn:...), for the .keras writer to undo; a
   * weight passed on unchanged under its own key needs none.
   */
  init(base: string, tensor: Tensor, source?: { readonly key: string; readonly how: string }): string;
  /** Records that initializer `ir` also holds weight `key` (a bidirectional RNN's two halves), for the .keras writer. */
  alias(ir: string, key: string, how: string): void;
  /** Keeps a small weight the graph does not use (Normalization's count) for the .keras writer. */
  keep(key: string): void;
  /** An int64 constant (shapes, axes). */
  ints(values: readonly number[]): string;
  /** A float32 scalar constant, or a 1-D one for a list. */
  floats(values: number | readonly number[]): string;
  /** Adds a node with one output; the output keeps `shape` and the first input's dtype unless given. */
  op(op: string, inputs: readonly string[], shape: readonly (number | null)[], attributes?: Record<string, Attribute>, dtype?: DType): KValue;
  /** Adds a node with several outputs (LSTM), returning their value names. */
  multi(op: string, inputs: readonly string[], outputs: number, attributes?: Record<string, Attribute>): string[];
  fail(expected: string): never;
}

export function num(config: Config, key: string, fallback?: number): number {
  const v = config[key];
  if (typeof v === 'number') return v;
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
  }
  throw new RangeError(`a number ${key}, not ${JSON.stringify(v)}`);
}

export function bool(config: Config, key: string, fallback: boolean): boolean {
  const v = config[key];
  if (typeof v === 'boolean') return v;
  if (v === undefined || v === null) return fallback;
  throw new RangeError(`true or false for ${key}, not ${JSON.stringify(v)}`);
}

export function str(config: Config, key: string, fallback: string): string {
  const v = config[key];
  if (typeof v === 'string') return v;
  if (v === undefined || v === null) return fallback;
  throw new RangeError(`a string ${key}, not ${JSON.stringify(v)}`);
}

/** An int or a tuple of `n` ints (kernel_size, strides ...). */
export function tuple(config: Config, key: string, n: number, fallback?: readonly number[]): number[] {
  const v = config[key];
  if (typeof v === 'number' && Number.isSafeInteger(v)) return new Array<number>(n).fill(v);
  if (Array.isArray(v) && v.length === n && v.every((x) => typeof x === 'number' && Number.isSafeInteger(x))) return v as number[];
  if ((v === undefined || v === null) && fallback) return [...fallback];
  throw new RangeError(`${key} of ${n} integers, not ${JSON.stringify(v)}`);
}
