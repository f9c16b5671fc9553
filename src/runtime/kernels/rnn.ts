import { attrInt, attrString, type Node } from '../../core/graph.js';
import { attrFloats, floatData, formatDims, KernelError, required, sameDType, type KernelFactory } from '../kernel.js';
import { makeValue, type FloatArray, type Value } from '../value.js';
import { matmulInto } from './gemm-core.js';

/**
 * ONNX's recurrent layers: LSTM, GRU and RNN (one layer each, forward, reverse or bidirectional).
 *
 * Per direction the input projection of every timestep is one matrix product,
 * X[S·B, I] · W[G·H, I]ᵀ, through the same GEMM as MatMul (the WebAssembly kernel for float32 when
 * it pays); only the recurrence H[t−1] · Rᵀ is computed step by step. Gate arithmetic runs in
 * float64 and is stored in the input's type, so float64 is exact and float32 rounds once per value.
 *
 * With sequence_lens, batch entry b runs its first len[b] steps only (reverse: from len[b]−1 down
 * to 0): Y is zero past them and Y_h / Y_c hold the state after the last step that ran, or zeros
 * for an empty sequence, as onnxruntime computes them.
 */

type Activation = (x: number) => number;

interface ActivationKind {
  readonly alpha?: number;
  readonly beta?: number;
  readonly make: (alpha: number, beta: number) => Activation;
}

/**
 * The spec's activation functions. Defaults of alpha and beta are those of the ONNX operators of
 * the same name (onnxruntime instead uses 0 for ThresholdedRelu's and Affine's); ScaledTanh's
 * operator had none, so it takes onnxruntime's 0. A function consumes the next activation_alpha /
 * activation_beta value only when it has that parameter (onnxruntime's reading of "consumed in
 * the order of activation functions").
 */
const ACTIVATION_KINDS: Readonly<Record<string, ActivationKind>> = {
  sigmoid: { make: () => (x) => 1 / (1 + Math.exp(-x)) },
  tanh: { make: () => Math.tanh },
  relu: { make: () => (x) => (x > 0 ? x : 0) },
  hardsigmoid: { alpha: 0.2, beta: 0.5, make: (a, b) => (x) => Math.max(0, Math.min(1, a * x + b)) },
  leakyrelu: { alpha: 0.01, make: (a) => (x) => (x >= 0 ? x : a * x) },
  thresholdedrelu: { alpha: 1, make: (a) => (x) => (x > a ? x : 0) },
  scaledtanh: { alpha: 0, beta: 0, make: (a, b) => (x) => a * Math.tanh(b * x) },
  affine: { alpha: 1, beta: 0, make: (a, b) => (x) => a * x + b },
  elu: { alpha: 1, make: (a) => (x) => (x >= 0 ? x : a * Math.expm1(x)) },
  softsign: { make: () => (x) => x / (1 + Math.abs(x)) },
  softplus: { make: () => (x) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x))) },
};

/** The activations of each direction: `perDirection` functions each (f, g, h of LSTM). */
function parseActivations(node: Node, op: string, defaults: readonly string[], directions: number): Activation[][] {
  const given = node.attributes.activations;
  let names: readonly string[] = given && given.type === 'strings' ? given.value : [];
  const perDirection = defaults.length;
  if (names.length === 0) names = directions === 2 ? [...defaults, ...defaults] : defaults;
  // One set for a bidirectional layer serves both directions (onnxruntime does the same).
  else if (names.length === perDirection && directions === 2) names = [...names, ...names];
  if (names.length !== perDirection * directions) {
    throw new KernelError(`${op}: activations must list ${perDirection * directions} functions (${perDirection} per direction), got ${names.length}`);
  }
  const alphas = attrFloats(node, 'activation_alpha') ?? [];
  const betas = attrFloats(node, 'activation_beta') ?? [];
  let ai = 0;
  let bi = 0;
  const functions = names.map((name) => {
    const kind = ACTIVATION_KINDS[name.toLowerCase()];
    if (!kind) throw new KernelError(`${op}: unknown activation ${name} (expected one of Sigmoid, Tanh, Relu, HardSigmoid, LeakyRelu, ThresholdedRelu, ScaledTanh, Affine, Elu, Softsign, Softplus)`);
    const alpha = kind.alpha === undefined ? 0 : ai < alphas.length ? alphas[ai++]! : kind.alpha;
    const beta = kind.beta === undefined ? 0 : bi < betas.length ? betas[bi++]! : kind.beta;
    return kind.make(alpha, beta);
  });
  const out: Activation[][] = [];
  for (let d = 0; d < directions; d++) out.push(functions.slice(d * perDirection, (d + 1) * perDirection));
  return out;
}

type Cell = 'LSTM' | 'GRU' | 'RNN';

const GATES: Readonly<Record<Cell, number>> = { LSTM: 4, GRU: 3, RNN: 1 };
const DEFAULT_ACTIVATIONS: Readonly<Record<Cell, readonly string[]>> = {
  LSTM: ['Sigmoid', 'Tanh', 'Tanh'],
  GRU: ['Sigmoid', 'Tanh'],
  RNN: ['Tanh'],
};

/** Everything about one node fixed at prepare time. */
interface Config {
  readonly op: Cell;
  readonly directions: number;
  readonly reverseOnly: boolean;
  readonly layout: number;
  readonly hiddenSize: number | undefined;
  readonly clip: number;
  readonly activations: Activation[][];
  readonly inputForget: boolean;
  readonly linearBeforeReset: boolean;
  readonly wantY: boolean;
}

/** Dimensions of one run, checked against each other. */
interface Dims {
  readonly seq: number;
  readonly batch: number;
  readonly input: number;
  readonly hidden: number;
}

function shapeIs(v: Value | undefined, expected: readonly number[], op: string, what: string): void {
  if (!v) return;
  if (v.shape.length !== expected.length || v.shape.some((d, i) => d !== expected[i])) {
    throw new KernelError(`${op}: ${what} must have shape ${formatDims(expected)}, got ${formatDims(v.shape)}`);
  }
}

function dimsOf(config: Config, x: Value, w: Value, r: Value): Dims {
  const { op, directions, layout } = config;
  const gates = GATES[op];
  if (x.shape.length !== 3) throw new KernelError(`${op}: X must be 3-D, got ${formatDims(x.shape)}`);
  const [d0, d1, input] = x.shape as [number, number, number];
  const [seq, batch] = layout === 0 ? [d0, d1] : [d1, d0];
  if (r.shape.length !== 3) throw new KernelError(`${op}: R must be 3-D, got ${formatDims(r.shape)}`);
  const hidden = config.hiddenSize ?? r.shape[2]!;
  shapeIs(w, [directions, gates * hidden, input], op, 'W');
  shapeIs(r, [directions, gates * hidden, hidden], op, 'R');
  return { seq, batch, input, hidden };
}

/** Sequence lengths, each checked to lie in [0, seq]. */
function sequenceLengths(v: Value | undefined, dims: Dims, op: string): Int32Array {
  const lengths = new Int32Array(dims.batch).fill(dims.seq);
  if (!v) return lengths;
  if (v.dtype !== 'int32' && v.dtype !== 'int64') throw new KernelError(`${op}: sequence_lens must be int32, not ${v.dtype}`);
  shapeIs(v, [dims.batch], op, 'sequence_lens');
  for (let b = 0; b < dims.batch; b++) {
    const n = Number(v.data[b]!);
    if (!(n >= 0 && n <= dims.seq)) throw new KernelError(`${op}: sequence_lens[${b}] is ${n}, outside [0, ${dims.seq}]`);
    lengths[b] = n;
  }
  return lengths;
}

function prepareCell(op: Cell): KernelFactory {
  return {
    prepare(node, opset) {
      const direction = attrString(node, 'direction', 'forward');
      if (direction !== 'forward' && direction !== 'reverse' && direction !== 'bidirectional') {
        throw new KernelError(`${op}: direction must be forward, reverse or bidirectional, not ${direction}`);
      }
      const directions = direction === 'bidirectional' ? 2 : 1;
      const layout = opset >= 14 ? attrInt(node, 'layout', 0) : 0;
      if (layout !== 0 && layout !== 1) throw new KernelError(`${op}: layout must be 0 or 1, not ${layout}`);
      const hiddenAttr = node.attributes.hidden_size;
      const clipAttr = node.attributes.clip;
      const clip = clipAttr && (clipAttr.type === 'float' || clipAttr.type === 'int') ? clipAttr.value : Infinity;
      if (!(clip > 0)) throw new KernelError(`${op}: clip must be positive, not ${clip}`);
      const config: Config = {
        op,
        directions,
        reverseOnly: direction === 'reverse',
        layout,
        hiddenSize: hiddenAttr && hiddenAttr.type === 'int' ? hiddenAttr.value : undefined,
        clip,
        activations: parseActivations(node, op, DEFAULT_ACTIVATIONS[op], directions),
        inputForget: op === 'LSTM' && attrInt(node, 'input_forget', 0) !== 0,
        linearBeforeReset: op === 'GRU' && attrInt(node, 'linear_before_reset', 0) !== 0,
        wantY: (node.outputs[0] ?? '') !== '',
      };
      return (inputs) => runCell(config, inputs);
    },
  };
}

function runCell(config: Config, inputs: readonly (Value | undefined)[]): Value[] {
  const { op, directions, layout } = config;
  const x = required(inputs, 0, op);
  const w = required(inputs, 1, op);
  const r = required(inputs, 2, op);
  const [bias, seqLens, initialH] = [inputs[3], inputs[4], inputs[5]];
  const [initialC, peephole] = op === 'LSTM' ? [inputs[6], inputs[7]] : [undefined, undefined];
  const floats = [x, w, r, bias, initialH, initialC, peephole].filter((v): v is Value => v !== undefined);
  sameDType(floats, op);
  for (const v of floats) floatData(v, op);
  const dims = dimsOf(config, x, w, r);
  const { seq, batch, hidden } = dims;
  const gates = GATES[op];
  const stateShape = layout === 0 ? [directions, batch, hidden] : [batch, directions, hidden];
  shapeIs(bias, [directions, 2 * gates * hidden], op, 'B');
  shapeIs(initialH, stateShape, op, 'initial_h');
  shapeIs(initialC, stateShape, op, 'initial_c');
  shapeIs(peephole, [directions, 3 * hidden], op, 'P');
  const lengths = sequenceLengths(seqLens, dims, op);

  const y = config.wantY ? makeValue(x.dtype, layout === 0 ? [seq, directions, batch, hidden] : [batch, seq, directions, hidden]) : undefined;
  const yH = makeValue(x.dtype, stateShape);
  const yC = op === 'LSTM' ? makeValue(x.dtype, stateShape) : undefined;
  for (let d = 0; d < directions; d++) runDirection(config, dims, d, lengths, { x, w, r, bias, initialH, initialC, peephole }, { y, yH, yC });
  return yC ? [y ?? yH, yH, yC] : [y ?? yH, yH];
}

interface Operands {
  readonly x: Value;
  readonly w: Value;
  readonly r: Value;
  readonly bias: Value | undefined;
  readonly initialH: Value | undefined;
  readonly initialC: Value | undefined;
  readonly peephole: Value | undefined;
}

interface Results {
  readonly y: Value | undefined;
  readonly yH: Value;
  readonly yC: Value | undefined;
}

function runDirection(config: Config, dims: Dims, d: number, lengths: Int32Array, a: Operands, out: Results): void {
  const { op, layout, clip, directions } = config;
  const { seq, batch, input, hidden: H } = dims;
  const G = GATES[op];
  const GH = G * H;
  const X = a.x.data as FloatArray;
  const W = a.w.data as FloatArray;
  const R = a.r.data as FloatArray;
  const float64 = X instanceof Float64Array;
  const alloc = (n: number): FloatArray => (float64 ? new Float64Array(n) : new Float32Array(n));
  const reverse = config.reverseOnly || d === 1;
  const [f, g, h] = config.activations[d] as [Activation, Activation | undefined, Activation | undefined];
  const cl = (v: number): number => (v < -clip ? -clip : v > clip ? clip : v);

  // All timesteps' input projections at once: rows in X's own order (t·B + b, or b·S + t).
  const xw = alloc(seq * batch * GH);
  matmulInto(xw, 0, X, 0, W, d * GH * input, seq * batch, GH, input, true);
  const xRow = layout === 0 ? (t: number, b: number) => (t * batch + b) * GH : (t: number, b: number) => (b * seq + t) * GH;
  const yAt = layout === 0 ? (t: number, b: number) => ((t * directions + d) * batch + b) * H : (t: number, b: number) => ((b * seq + t) * directions + d) * H;
  const stateAt = layout === 0 ? (b: number) => (d * batch + b) * H : (b: number) => (b * directions + d) * H;

  // Wb + Rb per gate, except GRU's hidden gate with linear_before_reset, whose Rbh sits inside r ⊙ (…).
  const wb = new Float64Array(GH);
  const rb = new Float64Array(GH);
  if (a.bias) {
    const B = a.bias.data as FloatArray;
    for (let j = 0; j < GH; j++) {
      wb[j] = B[d * 2 * GH + j]!;
      rb[j] = B[d * 2 * GH + GH + j]!;
    }
  }
  const bsum = new Float64Array(GH);
  for (let j = 0; j < GH; j++) bsum[j] = wb[j]! + rb[j]!;

  const state = alloc(batch * H);
  const cell = op === 'LSTM' ? alloc(batch * H) : undefined;
  const loadState = (from: Value | undefined, into: FloatArray | undefined): void => {
    if (!from || !into) return;
    const src = from.data as FloatArray;
    for (let b = 0; b < batch; b++) for (let j = 0; j < H; j++) into[b * H + j] = src[stateAt(b) + j]!;
  };
  loadState(a.initialH, state);
  loadState(a.initialC, cell);
  const P = a.peephole?.data as FloatArray | undefined;
  const pOff = d * 3 * H;

  const Y = out.y?.data as FloatArray | undefined;
  const hr = alloc(batch * GH);
  // GRU without linear_before_reset: the reset gate scales H[t−1] before its product with Rh.
  const gruSplit = op === 'GRU' && !config.linearBeforeReset;
  const update = gruSplit ? alloc(batch * H) : undefined;
  const reset = gruSplit ? alloc(batch * H) : undefined;
  const resetHr = gruSplit ? alloc(batch * H) : undefined;
  let maxLen = 0;
  for (let b = 0; b < batch; b++) maxLen = Math.max(maxLen, lengths[b]!);

  for (let s = 0; s < maxLen; s++) {
    // The recurrence for the whole batch (entries already finished are computed and ignored).
    matmulInto(hr, 0, state, 0, R, d * GH * H, batch, gruSplit ? 2 * H : GH, H, true);
    const hrStride = gruSplit ? 2 * H : GH;
    for (let b = 0; b < batch; b++) {
      const len = lengths[b]!;
      if (s >= len) continue;
      const t = reverse ? len - 1 - s : s;
      const xo = xRow(t, b);
      const ho = b * hrStride;
      const so = b * H;
      if (op === 'LSTM') {
        const c = cell!;
        for (let j = 0; j < H; j++) {
          const cPrev = c[so + j]!;
          const gi = xw[xo + j]! + hr[ho + j]! + bsum[j]! + (P ? P[pOff + j]! * cPrev : 0);
          const i = f(cl(gi));
          const ft = config.inputForget ? 1 - i : f(cl(xw[xo + 2 * H + j]! + hr[ho + 2 * H + j]! + bsum[2 * H + j]! + (P ? P[pOff + 2 * H + j]! * cPrev : 0)));
          const cc = g!(cl(xw[xo + 3 * H + j]! + hr[ho + 3 * H + j]! + bsum[3 * H + j]!));
          const cNew = ft * cPrev + i * cc;
          c[so + j] = cNew;
          const o = f(cl(xw[xo + H + j]! + hr[ho + H + j]! + bsum[H + j]! + (P ? P[pOff + H + j]! * c[so + j]! : 0)));
          state[so + j] = o * h!(c[so + j]!);
        }
      } else if (op === 'RNN') {
        for (let j = 0; j < H; j++) state[so + j] = f(cl(xw[xo + j]! + hr[ho + j]! + bsum[j]!));
      } else if (config.linearBeforeReset) {
        for (let j = 0; j < H; j++) {
          const z = f(cl(xw[xo + j]! + hr[ho + j]! + bsum[j]!));
          const rr = f(cl(xw[xo + H + j]! + hr[ho + H + j]! + bsum[H + j]!));
          const ht = g!(cl(xw[xo + 2 * H + j]! + wb[2 * H + j]! + rr * (hr[ho + 2 * H + j]! + rb[2 * H + j]!)));
          state[so + j] = (1 - z) * ht + z * state[so + j]!;
        }
      } else {
        for (let j = 0; j < H; j++) {
          update![so + j] = f(cl(xw[xo + j]! + hr[ho + j]! + bsum[j]!));
          reset![so + j] = f(cl(xw[xo + H + j]! + hr[ho + H + j]! + bsum[H + j]!)) * state[so + j]!;
        }
      }
    }
    if (gruSplit) {
      matmulInto(resetHr!, 0, reset!, 0, R, d * GH * H + 2 * H * H, batch, H, H, true);
      for (let b = 0; b < batch; b++) {
        const len = lengths[b]!;
        if (s >= len) continue;
        const xo = xRow(reverse ? len - 1 - s : s, b);
        const so = b * H;
        for (let j = 0; j < H; j++) {
          const ht = g!(cl(xw[xo + 2 * H + j]! + resetHr![so + j]! + bsum[2 * H + j]!));
          const z = update![so + j]!;
          state[so + j] = (1 - z) * ht + z * state[so + j]!;
        }
      }
    }
    if (Y) {
      for (let b = 0; b < batch; b++) {
        const len = lengths[b]!;
        if (s >= len) continue;
        const yo = yAt(reverse ? len - 1 - s : s, b);
        for (let j = 0; j < H; j++) Y[yo + j] = state[b * H + j]!;
      }
    }
  }
  const storeState = (from: FloatArray | undefined, into: Value | undefined): void => {
    if (!from || !into) return;
    const dst = into.data as FloatArray;
    for (let b = 0; b < batch; b++) if (lengths[b]! > 0) for (let j = 0; j < H; j++) dst[stateAt(b) + j] = from[b * H + j]!;
  };
  storeState(state, out.yH);
  storeState(cell, out.yC);
}

export const RNN_OPS: Readonly<Record<string, KernelFactory>> = {
  LSTM: prepareCell('LSTM'),
  GRU: prepareCell('GRU'),
  RNN: prepareCell('RNN'),
};
