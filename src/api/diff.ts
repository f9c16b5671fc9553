import { collectGarbage } from '../core/gc-node.js';
import { dtypeSize } from '../core/dtypes.js';
import { UsageError } from '../core/errors.js';
import type { Model, Signature } from '../core/model.js';
import { progressPhase } from '../core/progress.js';
import { formatShape, stridesOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { transpose2d } from '../core/transpose.js';
import { compareTensors, decode, formatNumber, jsonNumber, unitBytes, unitCount, valueKind, type CompareStats } from './checks/elements.js';
import { bindInputs, generateInputs } from './checks/inputs.js';
import { DEFAULT_TOLERANCE, type InputSet, type Tolerance } from './checks/types.js';
import { Runner } from './run.js';

/**
 * Compares two models: their weights tensor by tensor (by name, then across formats by layout),
 * and their outputs on the same inputs. Works on any two Models, whatever formats they came from.
 */

/**
 * How a tensor of one model may be laid out in the other when names differ or shapes are
 * permuted: each matcher offers `b` rearranged into `a`'s layout, and the values decide.
 * Formats with their own conventions (Keras Dense kernels [in, out] against torch Linear weights
 * [out, in], HWIO against OIHW convolution kernels) are covered by `transposed` and `permuted`;
 * a new convention is one more matcher in DiffOptions.matchers.
 */
export interface LayoutMatcher {
  readonly name: string;
  /** `b` brought into `a`'s shape, for each way this layout could relate them (none: no match). */
  arrangements(a: Tensor, b: Tensor): Iterable<{ readonly tensor: Tensor; readonly perm?: readonly number[] }>;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** Same shape under another name. */
export const renamedMatcher: LayoutMatcher = {
  name: 'renamed',
  *arrangements(a, b) {
    if (sameShape(a.shape, b.shape)) yield { tensor: b };
  },
};

/** A 2-D tensor stored transposed: a Dense kernel [in, out] against a Linear weight [out, in]. */
export const transposedMatcher: LayoutMatcher = {
  name: 'transposed',
  *arrangements(a, b) {
    if (a.shape.length !== 2 || b.shape.length !== 2 || !byteSized(b)) return;
    if (a.shape[0] === b.shape[1] && a.shape[1] === b.shape[0]) yield { tensor: transpose2d(b), perm: [1, 0] };
  },
};

/** Any other axis order of a 3- to 5-D tensor (convolution kernels OIHW against HWIO, ...). */
export const permutedMatcher: LayoutMatcher = {
  name: 'permuted',
  *arrangements(a, b) {
    const rank = a.shape.length;
    if (rank < 3 || rank > 5 || b.shape.length !== rank || !byteSized(b)) return;
    for (const perm of permutations(rank)) {
      if (perm.every((p, k) => p === k)) continue;
      if (perm.every((p, k) => b.shape[p] === a.shape[k])) yield { tensor: permuteTensor(b, perm), perm };
    }
  },
};

export const DEFAULT_MATCHERS: readonly LayoutMatcher[] = [renamedMatcher, transposedMatcher, permutedMatcher];

function byteSized(t: Tensor): boolean {
  return valueKind(t.dtype) === 'number' || (t.dtype !== 'string' && t.byteLength === t.size);
}

function* permutations(n: number): Generator<number[]> {
  const walk = function* (prefix: number[]): Generator<number[]> {
    if (prefix.length === n) yield prefix;
    else for (let i = 0; i < n; i++) if (!prefix.includes(i)) yield* walk([...prefix, i]);
  };
  yield* walk([]);
}

/** A copy of `t` with its axes reordered: result axis k is t's axis perm[k]. */
export function permuteTensor(t: Tensor, perm: readonly number[]): Tensor {
  const size = valueKind(t.dtype) === 'number' ? dtypeSize(t.dtype) : 1;
  const shape = perm.map((p) => t.shape[p]!);
  const src = t.bytes();
  const out = new Uint8Array(src.byteLength);
  const srcStrides = stridesOf(t.shape);
  const strides = perm.map((p) => srcStrides[p]!);
  const index = new Array<number>(shape.length).fill(0);
  const count = t.size;
  for (let i = 0; i < count; i++) {
    let from = 0;
    for (let k = 0; k < shape.length; k++) from += index[k]! * strides[k]!;
    out.set(src.subarray(from * size, from * size + size), i * size);
    for (let k = shape.length - 1; k >= 0; k--) {
      if (++index[k]! < shape[k]!) break;
      index[k] = 0;
    }
  }
  return Tensor.fromBytes(t.dtype, shape, out);
}

export type TensorStatus = 'identical' | 'close' | 'different' | 'reshaped' | 'retyped' | 'missing' | 'extra';

export interface TensorDiff {
  /** The tensor's name in a (in b for `extra`). */
  readonly name: string;
  /** The name of the tensor it was compared with in b, or null (missing, extra). */
  readonly other: string | null;
  /** How it was matched: 'name', or a layout matcher's name ('renamed', 'transposed', 'permuted'). */
  readonly via: string | null;
  readonly status: TensorStatus;
  /** Axes of b brought into a's layout when via is a permutation. */
  readonly perm?: readonly number[];
  readonly dtype: readonly [string | null, string | null];
  readonly shape: readonly [readonly number[] | null, readonly number[] | null];
  /** max |b - a| and max |b - a| / |a|; null when the values were not compared. */
  readonly maxAbs: number | null;
  readonly maxRel: number | null;
  /** Elements outside the tolerance (null when not compared). */
  readonly beyond: number | null;
}

export interface OutputDiff {
  readonly name: string;
  readonly other: string | null;
  readonly status: 'identical' | 'close' | 'different' | 'reshaped' | 'missing' | 'extra';
  readonly dtype: readonly [string | null, string | null];
  readonly shape: readonly [readonly number[] | null, readonly number[] | null];
  readonly maxAbs: number | null;
  readonly meanAbs: number | null;
  readonly medianAbs: number | null;
  readonly maxRel: number | null;
  /** Fraction of elements outside the tolerance. */
  readonly fractionBeyond: number | null;
}

export interface WeightsDiff {
  readonly equal: boolean;
  readonly counts: Readonly<Record<TensorStatus, number>>;
  readonly tensors: readonly TensorDiff[];
}

export interface OutputsDiff {
  /** equal/different: both models ran (or only one could: different); skip: no comparison possible (message says why). */
  readonly status: 'equal' | 'different' | 'skip';
  readonly message: string;
  /** What the models were run on. */
  readonly inputs: string | null;
  readonly outputs: readonly OutputDiff[];
}

export interface DiffReport {
  readonly a: { readonly path: string; readonly format: string; readonly runnable: boolean };
  readonly b: { readonly path: string; readonly format: string; readonly runnable: boolean };
  readonly tolerance: Tolerance;
  readonly equal: boolean;
  readonly status: 'equal' | 'different';
  readonly weights: WeightsDiff;
  readonly outputs: OutputsDiff;
}

export interface DiffOptions {
  readonly atol?: number;
  readonly rtol?: number;
  /** Inputs to run both models on (default: generated from a's signature). */
  readonly inputs?: InputSet;
  /** Layout matchers tried, in order, after matching by name (default: DEFAULT_MATCHERS). */
  readonly matchers?: readonly LayoutMatcher[];
}

const ACCEPTED: ReadonlySet<TensorStatus> = new Set(['identical', 'close']);

/** Whether compareTensors can run on the pair: same kind of values, same number of units. */
function comparable(a: Tensor, b: Tensor): boolean {
  const ka = valueKind(a.dtype);
  if (ka !== valueKind(b.dtype)) return false;
  if (ka === 'bits' && a.dtype !== b.dtype) return false;
  return unitCount(a) === unitCount(b);
}

function statusOf(stats: CompareStats): 'identical' | 'close' | 'different' {
  if (stats.identical) return 'identical';
  return stats.beyond === 0 ? 'close' : 'different';
}

function entry(name: string, other: string | null, via: string | null, status: TensorStatus, a: Tensor | undefined, b: Tensor | undefined, stats?: CompareStats, perm?: readonly number[]): TensorDiff {
  return {
    name,
    other,
    via,
    status,
    ...(perm ? { perm } : {}),
    dtype: [a?.dtype ?? null, b?.dtype ?? null],
    shape: [a?.shape ?? null, b?.shape ?? null],
    maxAbs: stats ? stats.maxAbs : null,
    maxRel: stats ? stats.maxRel : null,
    beyond: stats ? stats.beyond : null,
  };
}

/** The first arrangement of b (by any matcher) whose values equal a's within tolerance. */
function matchLayout(a: Tensor, b: Tensor, tol: Tolerance, matchers: readonly LayoutMatcher[]) {
  for (const matcher of matchers) {
    for (const { tensor, perm } of matcher.arrangements(a, b)) {
      if (!comparable(a, tensor) || !sameShape(a.shape, tensor.shape)) continue;
      // Bail out at the first differing element: most candidates differ at once.
      const stats = compareTensors(tensor, a, tol, true);
      if (stats.beyond === 0) return { via: matcher.name, stats, perm };
    }
  }
  return undefined;
}

/**
 * Compares two state dicts. Tensors with the same name are compared directly (or through a layout
 * matcher when their shapes are permuted); the rest are paired across names by the matchers,
 * trying only candidates of the same dtype and size; what is left is missing (only in a) or extra
 * (only in b).
 */
export function compareWeights(a: ReadonlyMap<string, Tensor>, b: ReadonlyMap<string, Tensor>, tol: Tolerance, matchers: readonly LayoutMatcher[] = DEFAULT_MATCHERS): WeightsDiff {
  const tensors: TensorDiff[] = [];
  const onlyA: string[] = [];
  for (const [name, ta] of a) {
    const tb = b.get(name);
    if (!tb) {
      onlyA.push(name);
      continue;
    }
    if (ta.dtype === tb.dtype && sameShape(ta.shape, tb.shape)) {
      const stats = compareTensors(tb, ta, tol);
      tensors.push(entry(name, name, 'name', statusOf(stats), ta, tb, stats));
    } else if (!sameShape(ta.shape, tb.shape)) {
      const layout = ta.dtype === tb.dtype ? matchLayout(ta, tb, tol, matchers) : undefined;
      if (layout) tensors.push(entry(name, name, layout.via, statusOf(layout.stats), ta, tb, layout.stats, layout.perm));
      else tensors.push(entry(name, name, 'name', 'reshaped', ta, tb, comparable(ta, tb) ? compareTensors(tb, ta, tol) : undefined));
    } else {
      tensors.push(entry(name, name, 'name', 'retyped', ta, tb, comparable(ta, tb) ? compareTensors(tb, ta, tol) : undefined));
    }
  }
  // Candidates across names: bucketed by dtype and the multiset of dims, so only tensors that
  // could be rearrangements of each other are ever compared.
  const key = (t: Tensor) => `${t.dtype}:${[...t.shape].sort((x, y) => x - y).join(',')}`;
  const buckets = new Map<string, string[]>();
  for (const [name, tb] of b) {
    if (a.has(name)) continue;
    const k = key(tb);
    buckets.set(k, [...(buckets.get(k) ?? []), name]);
  }
  const used = new Set<string>();
  for (const name of onlyA) {
    const ta = a.get(name)!;
    let matched = false;
    for (const candidate of buckets.get(key(ta)) ?? []) {
      if (used.has(candidate)) continue;
      const tb = b.get(candidate)!;
      const layout = matchLayout(ta, tb, tol, matchers);
      if (!layout) continue;
      // A match has no element beyond tolerance, so its early-exit comparison ran to the end.
      tensors.push(entry(name, candidate, layout.via, statusOf(layout.stats), ta, tb, layout.stats, layout.perm));
      used.add(candidate);
      matched = true;
      break;
    }
    if (!matched) tensors.push(entry(name, null, null, 'missing', ta, undefined));
  }
  for (const [name, tb] of b) if (!a.has(name) && !used.has(name)) tensors.push(entry(name, null, null, 'extra', undefined, tb));
  const counts = { identical: 0, close: 0, different: 0, reshaped: 0, retyped: 0, missing: 0, extra: 0 } as Record<TensorStatus, number>;
  for (const t of tensors) counts[t.status]++;
  return { equal: tensors.every((t) => ACCEPTED.has(t.status)), counts, tensors };
}

/** Error statistics of one output against the reference output. */
function outputStats(name: string, other: string, actual: Tensor, expected: Tensor, tol: Tolerance): OutputDiff {
  const base = { name, other, dtype: [expected.dtype, actual.dtype] as const, shape: [expected.shape, actual.shape] as const };
  if (!sameShape(actual.shape, expected.shape)) {
    return { ...base, status: 'reshaped', maxAbs: null, meanAbs: null, medianAbs: null, maxRel: null, fractionBeyond: null };
  }
  if (!comparable(actual, expected) || valueKind(actual.dtype) !== 'number') {
    const stats = comparable(actual, expected) ? compareTensors(actual, expected, tol) : undefined;
    return { ...base, status: stats ? statusOf(stats) : 'different', maxAbs: null, meanAbs: null, medianAbs: null, maxRel: null, fractionBeyond: stats && stats.count ? stats.beyond / stats.count : null };
  }
  const stats = compareTensors(actual, expected, tol);
  const n = unitCount(expected);
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  decode(actual.dtype, alignedCopy(actual), x);
  decode(expected.dtype, alignedCopy(expected), y);
  const errors = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const p = x[i]!;
    const q = y[i]!;
    const d = p === q || (p !== p && q !== q) ? 0 : Math.abs(p - q);
    errors[i] = d === d ? d : Infinity;
    sum += errors[i]!;
  }
  errors.sort();
  const median = n === 0 ? 0 : n % 2 ? errors[(n - 1) / 2]! : (errors[n / 2 - 1]! + errors[n / 2]!) / 2;
  return {
    ...base,
    status: statusOf(stats),
    maxAbs: stats.maxAbs,
    meanAbs: n ? sum / n : 0,
    medianAbs: median,
    maxRel: stats.maxRel,
    fractionBeyond: n ? stats.beyond / n : 0,
  };
}

function alignedCopy(t: Tensor): Uint8Array {
  const bytes = t.bytes();
  return bytes.byteOffset % unitBytes(t.dtype) === 0 ? bytes : new Uint8Array(bytes);
}

/**
 * Pairs the signature keys of two models: by key, then by the graph value a key names (a writer
 * that lost a SavedModel's output names keeps `StatefulPartitionedCall:1` as the key), then what is
 * left by position in each graph's own order, when both sides have the same number left.
 */
export function pairSignatureKeys(a: Model, sa: Signature, b: Model, sb: Signature, side: 'inputs' | 'outputs'): { pairs: Array<[string, string]>; missing: string[]; unused: string[]; byPosition: number } {
  const mapA = sa[side];
  const mapB = sb[side];
  const left = new Set(mapB.keys());
  const pairs: Array<[string, string]> = [];
  const rest: string[] = [];
  for (const key of mapA.keys()) {
    if (left.has(key)) {
      pairs.push([key, key]);
      left.delete(key);
    } else rest.push(key);
  }
  const stillA: string[] = [];
  for (const key of rest) {
    const graphName = mapA.get(key)!;
    const found = [...left].find((k) => k === graphName || mapB.get(k) === graphName || mapB.get(k) === key);
    if (found === undefined) stillA.push(key);
    else {
      pairs.push([key, found]);
      left.delete(found);
    }
  }
  if (stillA.length === 0 || stillA.length !== left.size) return { pairs, missing: stillA, unused: [...left], byPosition: 0 };
  const order = (m: Model, map: ReadonlyMap<string, string>, keys: readonly string[]) => {
    const values = side === 'inputs' ? m.graph?.inputs : m.graph?.outputs;
    const at = (k: string) => values?.findIndex((v) => v.name === map.get(k)) ?? -1;
    return keys.map((k, i) => ({ k, i, at: at(k) })).sort((x, y) => (x.at < 0 || y.at < 0 ? x.i - y.i : x.at - y.at)).map((x) => x.k);
  };
  const ordA = order(a, mapA, stillA);
  const ordB = order(b, mapB, [...left]);
  ordA.forEach((k, i) => pairs.push([k, ordB[i]!]));
  return { pairs, missing: [], unused: [], byPosition: ordA.length };
}

/**
 * Runs both models on the same inputs (given, or generated from a's signature) and compares their
 * outputs, paired by signature key, graph name or position (see pairSignatureKeys). The models run
 * one after the other, so only one model's weights are resident at a time.
 */
export function compareOutputs(first: Model | (() => Model), b: Model, tol: Tolerance, inputs?: InputSet): OutputsDiff {
  // Given as a function (the verifier), what a's run read in is collected before b is prepared
  // (below): one model's memory at a time, not two.
  let a = typeof first === 'function' ? first() : first;
  const skip = (message: string): OutputsDiff => ({ status: 'skip', message, inputs: null, outputs: [] });
  if (!a.graph && !b.graph) return skip('neither model has an architecture: weights compared only');
  if (!a.graph || !b.graph) return skip(`${a.graph ? 'b' : 'a'} is a bare state dict with no architecture: weights compared only`);
  const prepare = (m: Model): Runner | Error => {
    try {
      // One call: the weights are used in place, not packed (src/runtime/once.ts), on the default
      // intra-op threads: a worker adds about 15 MB, and ViT-B/16's check ran in 2.1-2.4 s, not
      // 2.7-3.1 s on one thread (a matrix-vector product, memory-bound, neither gains nor loses).
      return new Runner(m, undefined, { once: true });
    } catch (error) {
      if (error instanceof UsageError) return error;
      throw error;
    }
  };
  const run = (r: Runner, feeds: Record<string, Tensor>): Record<string, Tensor> | Error => {
    try {
      return r.run(feeds);
    } catch (error) {
      if (error instanceof UsageError || error instanceof RangeError) return error;
      throw error;
    }
  };
  // a first, and released before b is prepared: a runner holds its model's weights decoded.
  let ra: Runner | Error | undefined = prepare(a);
  let feedsA: Record<string, Tensor> | undefined;
  let description = '';
  let ya: Record<string, Tensor> | Error | undefined;
  const signatureA = ra instanceof Error ? undefined : ra.signature;
  if (!(ra instanceof Error)) {
    if (inputs) {
      feedsA = bindInputs(a, ra.signature, inputs);
      description = `given inputs ${Object.entries(feedsA).map(([k, t]) => `${k} ${formatShape(t.shape)} ${t.dtype}`).join(', ')}`;
    } else {
      const generated = generateInputs(a, ra.signature);
      if ('error' in generated) return skip(`cannot generate an input (${generated.error}): give --inputs`);
      feedsA = generated.tensors;
      description = generated.description;
    }
    ya = run(ra, feedsA);
  }
  const errorA = ra instanceof Error ? ra : undefined;
  ra = undefined;
  // Nor does this frame hold a's weights while b runs: what follows reads only a's signature and
  // graph outputs. With a given as a function (the verifier), a's weights go before b's are
  // decoded: one model's memory at a time, not two.
  a = { ...a, weights: new Map(), ...(a.graph ? { graph: { ...a.graph, initializers: new Map() } } : {}) };
  if (typeof first === 'function') collectGarbage();
  const rb = prepare(b);
  if (errorA && rb instanceof Error) return skip(`neither model can run: ${errorA.message}`);
  if (errorA || rb instanceof Error) {
    const [which, error] = errorA ? ['a', errorA] : ['b', rb as Error];
    return { status: 'different', message: `only ${which === 'a' ? 'b' : 'a'} can run; ${which}: ${error.message}`, inputs: null, outputs: [] };
  }
  let feedsB: Record<string, Tensor>;
  if (inputs) feedsB = bindInputs(b, rb.signature, inputs);
  else {
    const paired = pairSignatureKeys(a, signatureA!, b, rb.signature, 'inputs');
    if (paired.missing.length || paired.unused.length) return skip(`the models take different inputs (a: ${[...signatureA!.inputs.keys()].join(', ')}; b: ${rb.inputNames.join(', ')}): give --inputs`);
    feedsB = Object.fromEntries(paired.pairs.map(([ka, kb]) => [kb, feedsA![ka]!]));
  }
  const yb = run(rb, feedsB);
  if (ya instanceof Error && yb instanceof Error) return { ...skip(`neither model runs on ${description}: ${ya.message}`), inputs: description };
  if (ya instanceof Error || yb instanceof Error) {
    const [which, error] = ya instanceof Error ? ['a', ya] : ['b', yb as Error];
    return { status: 'different', message: `only ${which === 'a' ? 'b' : 'a'} runs on ${description}; ${which}: ${error.message}`, inputs: description, outputs: [] };
  }
  const outA = ya!;
  const { pairs, missing, unused, byPosition } = pairSignatureKeys(a, signatureA!, b, rb.signature, 'outputs');
  const outputs: OutputDiff[] = [];
  for (const [name, other] of pairs) outputs.push(outputStats(name, other, yb[other]!, outA[name]!, tol));
  const none = { maxAbs: null, meanAbs: null, medianAbs: null, maxRel: null, fractionBeyond: null };
  for (const name of missing) outputs.push({ name, other: null, status: 'missing', dtype: [outA[name]!.dtype, null], shape: [outA[name]!.shape, null], ...none });
  for (const name of unused) outputs.push({ name, other: null, status: 'extra', dtype: [null, yb[name]!.dtype], shape: [null, yb[name]!.shape], ...none });
  const equal = outputs.every((o) => o.status === 'identical' || o.status === 'close');
  const worst = outputs.reduce((m, o) => Math.max(m, o.maxAbs ?? 0), 0);
  const problems = outputs.filter((o) => o.status !== 'identical' && o.status !== 'close').map((o) => `${o.name}${o.other && o.other !== o.name ? ` ~ ${o.other}` : ''} ${o.status}`);
  const positional = byPosition ? ` (${byPosition} paired by position: the names differ)` : '';
  // An output that is one value throughout (a classifier's zero-initialised head gives all zeros)
  // agrees with any model that gives that value: said, so "max abs error 0" is not read as more.
  const flat = pairs.some(([name]) => outA[name]!.size > 1) && pairs.every(([name]) => isUniform(outA[name]!));
  const uniform = flat ? ` ${UNIFORM_NOTE}` : '';
  return {
    status: equal ? 'equal' : 'different',
    message: `${outputs.length} output(s) on ${description}: ${equal ? 'equal within tolerance' : `different (${problems.join(', ')})`}; max abs error ${formatNumber(worst)}${positional}${uniform}`,
    inputs: description,
    outputs,
  };
}

/** How a comparison says that every output held one value throughout. */
export const UNIFORM_NOTE = '(every output is one value throughout on this input: the comparison cannot tell models that give that value apart)';

function isUniform(t: Tensor): boolean {
  if (t.dtype === 'string') return false;
  const data = t.storage();
  for (let i = 1; i < data.length; i++) if (!Object.is(data[i], data[0])) return false;
  return true;
}

/** The whole comparison of two models. `paths` only label the report. */
export function diffModels(a: Model, b: Model, options: DiffOptions = {}, paths: readonly [string, string] = ['a', 'b']): DiffReport {
  const tolerance = { atol: options.atol ?? DEFAULT_TOLERANCE.atol, rtol: options.rtol ?? DEFAULT_TOLERANCE.rtol };
  let bytes = 0;
  for (const t of a.weights.values()) bytes += t.byteLength;
  progressPhase('compare', bytes);
  const weights = compareWeights(a.weights, b.weights, tolerance, options.matchers ?? DEFAULT_MATCHERS);
  progressPhase('outputs', a.graph && b.graph ? bytes : 0);
  const outputs = compareOutputs(a, b, tolerance, options.inputs);
  const equal = weights.equal && outputs.status !== 'different';
  return {
    a: { path: paths[0], format: a.format, runnable: a.graph !== undefined },
    b: { path: paths[1], format: b.format, runnable: b.graph !== undefined },
    tolerance,
    equal,
    status: equal ? 'equal' : 'different',
    weights,
    outputs,
  };
}

/** The report as JSON text: non-finite statistics become "NaN"/"Infinity" strings. */
export function diffReportJson(report: DiffReport): string {
  return JSON.stringify(report, (_key, value) => (typeof value === 'number' ? jsonNumber(value) : value), 2);
}
