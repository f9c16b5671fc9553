import type { Builder, Offset } from 'flatbuffers';
import { attrInt, attrString } from '../../core/graph.js';
import { Tensor } from '../../core/tensor.js';
import type { Ctx, Emitter, TflOp } from './export-ops.js';
import {
  ActivationFunctionType,
  AddOptions,
  BuiltinOperator as B,
  ConcatenationOptions,
  FullyConnectedOptions,
  GatherOptions,
  PackOptions,
  ReshapeOptions,
  SequenceRNNOptions,
  UnpackOptions,
} from './schema/index.js';

/**
 * ONNX GRU and RNN (and the LSTMs UNIDIRECTIONAL_SEQUENCE_LSTM cannot hold) -> TFLite builtins.
 * TFLite has no GRU op, and TFLiteConverter writes a Keras GRU or SimpleRNN (Keras 3) as a WHILE
 * loop whose body subgraph runs one step (what src/formats/tflite/while.ts reads back). This
 * writer lowers into one subgraph, so it writes instead:
 *  - RNN: UNIDIRECTIONAL_SEQUENCE_RNN, TFLite's builtin for a simple RNN (kernel
 *    tensorflow/lite/kernels/unidirectional_sequence_rnn.cc: inputs x, weights [H, F], recurrent
 *    weights [H, H], bias [H], a variable hidden state [B, H] that starts at zero), Tanh or Relu;
 *  - GRU: the cell unrolled over the sequence, whose length the probe run knows (a static length:
 *    the file holds T copies of the step, each a few FULLY_CONNECTED and element-wise ops, which
 *    LiteRT runs without a WHILE's per-step subgraph invocation). The input projections of all
 *    steps are one FULLY_CONNECTED per gate over the whole sequence, split by UNPACK; each step's
 *    states are PACKed back into the sequence.
 * The fused ops' variable state tensors start at zero and keep the [batch, H] written in the file
 * (LiteRT resizes inputs, not variables), so an RNN or LSTM with a non-zero or computed initial
 * state, or with an unknown batch, is unrolled like the GRU; so is a reverse or bidirectional
 * LSTM, or one whose Y_h / Y_c is read.
 * The backward direction of a reverse or bidirectional layer runs over the sequence flipped by
 * REVERSE_V2 (the RNN op) or over the steps in reverse order (unrolled), its outputs back in time
 * order. ONNX's Y [T, D, B, H] (layout 0) or [B, T, D, H] (layout 1) and Y_h (Y_c) [D, B, H] /
 * [B, D, H] are RESHAPEs and CONCATENATIONs of the directions' results; only the outputs something
 * reads are written. Refused in one line: clip, sequence_lens, a dynamic sequence length,
 * activations other than the defaults (and Relu for RNN).
 */

const opt = (type: number, build: (b: Builder) => Offset): TflOp['options'] => ({ type, build });
const empty = (type: number): TflOp['options'] =>
  opt(type, (b) => {
    b.startObject(1);
    return b.endObject();
  });
const addOpt = opt(11, (b) => AddOptions.createAddOptions(b, ActivationFunctionType.NONE, true));
const mulOpt = empty(21);
const subOpt = empty(28);
const fcOpt = (keep: boolean) => opt(8, (b) => FullyConnectedOptions.createFullyConnectedOptions(b, ActivationFunctionType.NONE, 0, keep, false, 0));

interface Layer {
  readonly kind: 'GRU' | 'RNN' | 'LSTM';
  readonly gates: number;
  readonly hidden: number;
  readonly features: number;
  readonly steps: number;
  readonly batch: number;
  readonly layout: number;
  /** Per direction: whether it runs backwards. */
  readonly reverse: readonly boolean[];
  readonly w: Float32Array;
  readonly r: Float32Array;
  readonly b: Float32Array;
  readonly name: string;
  /** The batch size is unknown: intermediates carry -1 for it in their shape_signature. */
  readonly dynamic: boolean;
}

/** What both ops share: attributes checked, weights read, shapes known. */
function layer(ctx: Ctx, kind: 'GRU' | 'RNN' | 'LSTM'): Layer {
  const node = ctx.node;
  const gates = kind === 'LSTM' ? 4 : kind === 'GRU' ? 3 : 1;
  const direction = attrString(node, 'direction', 'forward');
  const reverse = direction === 'forward' ? [false] : direction === 'reverse' ? [true] : direction === 'bidirectional' ? [false, true] : ctx.fail(`direction forward, reverse or bidirectional, not ${direction}`);
  if (node.attributes['clip'] !== undefined) ctx.fail(`a ${kind} without clip`);
  if (ctx.has(4)) ctx.fail('no sequence_lens (every sequence runs its full length)');
  const w = ctx.weight(1, 'W');
  const r = ctx.weight(2, 'R');
  const d = reverse.length;
  if (w.shape.length !== 3 || r.shape.length !== 3 || w.shape[0] !== d || r.shape[0] !== d) ctx.fail(`W [${d}, ${gates}H, F] and R [${d}, ${gates}H, H], not [${w.shape}] and [${r.shape}]`);
  const hidden = r.shape[2]!;
  const features = w.shape[2]!;
  if (w.shape[1] !== gates * hidden || r.shape[1] !== gates * hidden) ctx.fail(`${gates}·${hidden} gate rows in W and R`);
  const b = ctx.has(3) ? ctx.weight(3, 'B').toFloat32() : new Float32Array(2 * d * gates * hidden);
  if (b.length !== 2 * d * gates * hidden) ctx.fail(`B of ${2 * d * gates}·${hidden} values`);
  const layout = attrInt(node, 'layout', 0);
  const xShape = ctx.shape(node.inputs[0]!);
  if (xShape.length !== 3 || xShape[2] !== features) ctx.fail(`a 3-D input of ${features} features, not [${xShape}]`);
  const [steps, batch] = layout === 0 ? [xShape[0]!, xShape[1]!] : [xShape[1]!, xShape[0]!];
  const sig = ctx.signature(node.inputs[0]!);
  if (sig[layout === 0 ? 0 : 1] === -1) ctx.fail(`a static sequence length (the ${kind} is written step by step or with a fixed-size state)`);
  const dynamic = sig[layout === 0 ? 1 : 0] === -1;
  return { kind, gates, hidden, features, steps, batch, layout, reverse, w: w.toFloat32(), r: r.toFloat32(), b, name: node.name || node.outputs[0]!, dynamic };
}

/** The activations of each direction (ONNX lists them per direction, defaults when absent). */
function activations(ctx: Ctx, l: Layer, defaults: readonly string[]): string[][] {
  const a = ctx.node.attributes['activations'];
  if (a === undefined) return l.reverse.map(() => [...defaults]);
  if (a.type !== 'strings' || a.value.length !== defaults.length * l.reverse.length) ctx.fail(`${defaults.length} activations per direction`);
  return l.reverse.map((_, d) => a.value.slice(d * defaults.length, (d + 1) * defaults.length));
}

/** The signature of a batch-sized intermediate: -1 at its batch axis when the batch is unknown. */
function batchSig(l: Layer, shape: readonly number[], axis: number): readonly number[] | undefined {
  return l.dynamic ? shape.map((s, i) => (i === axis ? -1 : s)) : undefined;
}

/** Rows [g·H, (g+1)·H) of direction d's stacked matrix ([D, gates·H, width]) as a [H, width] tensor. */
function rows(l: Layer, values: Float32Array, d: number, g: number, width: number): Tensor {
  const size = l.hidden * width;
  const at = (d * l.gates + g) * size;
  return Tensor.from('float32', [l.hidden, width], values.slice(at, at + size));
}

/** Direction d's bias for gate g: Wb (and Rb when `both`). */
function bias(l: Layer, d: number, g: number, both: boolean): Tensor {
  const h = l.hidden;
  const base = d * 2 * l.gates * h;
  const out = new Float32Array(h);
  for (let j = 0; j < h; j++) out[j] = l.b[base + g * h + j]! + (both ? l.b[base + (l.gates + g) * h + j]! : 0);
  return Tensor.from('float32', [h], out);
}

/** RESHAPE x to `target` (-1 allowed) into `into`, or a new tensor of `shape` (the probe's sizes). */
function reshape(ctx: Ctx, x: number, target: readonly number[], shape: readonly number[], into: number | undefined, name: string): number {
  const out = into ?? ctx.temp(shape, 'float32', name, target);
  ctx.emit(B.RESHAPE, [x, ctx.int32s(target, `${name}/shape`)], [out], opt(17, (b) => ReshapeOptions.createReshapeOptions(b, ReshapeOptions.createNewShapeVector(b, [...target]))));
  return out;
}

function reverseV2(ctx: Ctx, x: number, shape: readonly number[], axis: number, name: string): number {
  const out = ctx.temp(shape, 'float32', name);
  ctx.emit(B.REVERSE_V2, [x, ctx.int32s([axis], `${name}/axis`)], [out]);
  return out;
}

/**
 * ONNX's Y and Y_h from each direction's sequence (time order, [T, B, H] or [B, T, H]) and last
 * state [B, H]: one direction is a RESHAPE, two a CONCATENATION along the directions axis.
 */
function assemble(ctx: Ctx, l: Layer, sequences: readonly number[], lasts: readonly number[], cells: readonly number[] = []): void {
  const node = ctx.node;
  const d = l.reverse.length;
  const parts = (values: readonly number[], k: number, axis: number) => {
    const v = node.outputs[k]!;
    // An unknown batch stays -1 in the RESHAPEs, so LiteRT resizes them with the input.
    const sig = ctx.signature(v);
    const shape = ctx.shape(v);
    const target = sig.filter((x) => x === -1).length === 1 ? sig : shape;
    const single = (dims: readonly number[]) => dims.map((s, i) => (i === axis ? 1 : s));
    if (d === 1) return void reshape(ctx, values[0]!, target, shape, ctx.output(k), `${v}/1`);
    const pieces = values.map((x, i) => reshape(ctx, x, single(target), single(shape), undefined, `${v}/${i}`));
    ctx.emit(B.CONCATENATION, pieces, [ctx.output(k)], opt(10, (b) => ConcatenationOptions.createConcatenationOptions(b, axis, ActivationFunctionType.NONE)));
  };
  if (used(ctx, 0)) parts(sequences, 0, l.layout === 0 ? 1 : 2);
  if (used(ctx, 1)) parts(lasts, 1, l.layout === 0 ? 0 : 1);
  if (used(ctx, 2)) parts(cells, 2, l.layout === 0 ? 0 : 1);
}

/** Whether the input's batch size is unknown (-1 in its signature). */
export function batchIsDynamic(ctx: Ctx, l: { readonly layout: number }): boolean {
  return ctx.signature(ctx.node.inputs[0]!)[l.layout === 0 ? 1 : 0] === -1;
}

/** Output k of the node is read by something (or is a graph output). */
const used = (ctx: Ctx, k: number) => ctx.used(ctx.node.outputs[k] ?? '');

export const rnnExport: Emitter = (ctx) => {
  const l = layer(ctx, 'RNN');
  const codes = activations(ctx, l, ['Tanh']).map(([a]) => (a === 'Tanh' ? ActivationFunctionType.TANH : a === 'Relu' ? ActivationFunctionType.RELU : ctx.fail(`activation Tanh or Relu (TFLite's fused activations), not ${a}`)));
  // UNIDIRECTIONAL_SEQUENCE_RNN's state is a variable tensor of a fixed [batch, H] starting at
  // zero: an unknown batch or a given initial_h is written unrolled instead.
  const zeroStart = !ctx.has(5) || ctx.zeros(ctx.node.inputs[5]!);
  if (!zeroStart || batchIsDynamic(ctx, l)) return rnnUnrolled(ctx, l, codes);
  const time = l.layout === 0 ? 0 : 1;
  const seqShape = l.layout === 0 ? [l.steps, l.batch, l.hidden] : [l.batch, l.steps, l.hidden];
  const xShape = l.layout === 0 ? [l.steps, l.batch, l.features] : [l.batch, l.steps, l.features];
  const sequences: number[] = [];
  const lasts: number[] = [];
  l.reverse.forEach((backwards, d) => {
    const act = codes[d]!;
    const name = `${l.name}/d${d}`;
    const x = backwards ? reverseV2(ctx, ctx.input(0), xShape, time, `${name}/x_reversed`) : ctx.input(0);
    const w = ctx.constTensor(rows(l, l.w, d, 0, l.features), `${name}/weights`);
    const r = ctx.constTensor(rows(l, l.r, d, 0, l.hidden), `${name}/recurrent_weights`);
    const b = ctx.constTensor(bias(l, d, 0, true), `${name}/bias`);
    const state = ctx.variable([l.batch, l.hidden], 'float32', `${name}/hidden_state`);
    const seq = ctx.temp(seqShape, 'float32', `${name}/sequence`);
    ctx.emit(B.UNIDIRECTIONAL_SEQUENCE_RNN, [x, w, r, b, state], [seq], opt(31, (bb) => SequenceRNNOptions.createSequenceRNNOptions(bb, l.layout === 0, act, false)));
    if (used(ctx, 0)) sequences.push(backwards ? reverseV2(ctx, seq, seqShape, time, `${name}/sequence_reversed`) : seq);
    if (used(ctx, 1)) {
      // The state after the op's last step: its output at the final time index (its own order).
      const last = ctx.temp([l.batch, l.hidden], 'float32', `${name}/last`);
      ctx.emit(B.GATHER, [seq, ctx.constTensor(Tensor.from('int32', [], [l.steps - 1]), `${name}/last_index`)], [last], opt(23, (bb) => GatherOptions.createGatherOptions(bb, time, 0)));
      lasts.push(last);
    }
  });
  assemble(ctx, l, sequences, lasts);
};

/** One step of a cell: each gate's input projection for this step, the states before it; the states after. */
type Cell = (x: readonly number[], h: number, c: number | undefined, s: number) => { h: number; c?: number };

interface StepOps {
  /** A new [B, H] intermediate. */
  t(what: string): number;
  binary(code: number, a: number, b: number, what: string): number;
  unary(code: number, a: number, what: string): number;
  /** FULLY_CONNECTED of a state by a [H, H] constant (bias -1 for none). */
  fc(x: number, w: number, b: number, what: string): number;
}

const BINARY_OPTIONS: Readonly<Record<number, TflOp['options']>> = { [B.ADD]: addOpt, [B.MUL]: mulOpt, [B.SUB]: subOpt };

/**
 * A recurrent layer unrolled over its static length: per direction, each gate's input projection
 * for all steps at once (FULLY_CONNECTED over [T, B, F] with the x-side bias, then UNPACK along
 * time), the initial states (initial_h / initial_c's direction: constant, or a GATHER when
 * computed; else zeros [1, H], which broadcast against any batch), then `cell` per step in the
 * direction's order, the states PACKed back in time order. Batch sizes are never baked in, so a
 * model with an unknown batch resizes in LiteRT.
 */
function unroll(ctx: Ctx, l: Layer, xBias: (d: number, g: number) => Tensor, withCell: boolean, cell: (ops: StepOps, d: number) => Cell): void {
  const node = ctx.node;
  const time = l.layout === 0 ? 0 : 1;
  const H = l.hidden;
  const state = [l.batch, H];
  const seqShape = l.layout === 0 ? [l.steps, l.batch, H] : [l.batch, l.steps, H];
  const sequences: number[] = [];
  const lasts: number[] = [];
  const cells: number[] = [];
  l.reverse.forEach((backwards, d) => {
    const name = `${l.name}/d${d}`;
    const t = (what: string) => ctx.temp(state, 'float32', `${name}/${what}`, batchSig(l, state, 0));
    const ops: StepOps = {
      t,
      binary: (code, a, b, what) => {
        const out = t(what);
        ctx.emit(code, [a, b], [out], BINARY_OPTIONS[code]);
        return out;
      },
      unary: (code, a, what) => {
        const out = t(what);
        ctx.emit(code, [a], [out]);
        return out;
      },
      fc: (x, w, b, what) => {
        const out = t(what);
        ctx.emit(B.FULLY_CONNECTED, [x, w, b], [out], fcOpt(false));
        return out;
      },
    };
    const projected = Array.from({ length: l.gates }, (_, g) => {
      const seq = ctx.temp(seqShape, 'float32', `${name}/x${g}`, batchSig(l, seqShape, 1 - time));
      const w = ctx.constTensor(rows(l, l.w, d, g, l.features), `${name}/W${g}`);
      const b = ctx.constTensor(xBias(d, g), `${name}/b${g}`);
      ctx.emit(B.FULLY_CONNECTED, [ctx.input(0), w, b], [seq], fcOpt(true));
      const steps = Array.from({ length: l.steps }, (_, s) => t(`x${g}_${s}`));
      ctx.emit(B.UNPACK, [seq], steps, opt(64, (bb) => UnpackOptions.createUnpackOptions(bb, l.steps, time)));
      return steps;
    });
    const initial = (k: number, what: string): number => {
      // Zeros (absent, or zeros of the batch's size): [1, H], which broadcasts against any batch.
      if (!ctx.has(k) || ctx.zeros(node.inputs[k]!)) return ctx.constTensor(Tensor.from('float32', [1, H], new Float32Array(H)), `${name}/${what}`);
      const c = ctx.constant(node.inputs[k]!);
      if (c) {
        const v = c.toFloat32();
        const out = new Float32Array(l.batch * H);
        const dirs = l.reverse.length;
        for (let b = 0; b < l.batch; b++) for (let j = 0; j < H; j++) out[b * H + j] = v[l.layout === 0 ? (d * l.batch + b) * H + j : (b * dirs + d) * H + j]!;
        return ctx.constTensor(Tensor.from('float32', state, out), `${name}/${what}`);
      }
      const out = t(what);
      ctx.emit(B.GATHER, [ctx.input(k), ctx.constTensor(Tensor.from('int32', [], [d]), `${name}/${what}_direction`)], [out], opt(23, (bb) => GatherOptions.createGatherOptions(bb, l.layout === 0 ? 0 : 1, 0)));
      return out;
    };
    let h = initial(5, 'h0');
    let c = withCell ? initial(6, 'c0') : undefined;
    const step = cell(ops, d);
    const hs = new Array<number>(l.steps);
    for (let k = 0; k < l.steps; k++) {
      const s = backwards ? l.steps - 1 - k : k;
      const next = step(projected.map((p) => p[s]!), h, c, s);
      h = next.h;
      c = next.c;
      hs[s] = h;
    }
    if (used(ctx, 0)) {
      const seq = ctx.temp(seqShape, 'float32', `${name}/sequence`, batchSig(l, seqShape, 1 - time));
      ctx.emit(B.PACK, hs, [seq], opt(59, (bb) => PackOptions.createPackOptions(bb, l.steps, time)));
      sequences.push(seq);
    }
    lasts.push(h);
    if (c !== undefined) cells.push(c);
  });
  assemble(ctx, l, sequences, lasts, cells);
}

/**
 * ONNX GRU, unrolled (gates z, r, h in ONNX's and Keras's order):
 *   z = σ(Wz x + Wbz + Rbz + Rz h), r = σ(Wr x + Wbr + Rbr + Rr h),
 *   n = tanh(Wh x + Wbh + r ⊙ (Rh h + Rbh))      (linear_before_reset 1: torch, Keras reset_after)
 *   n = tanh(Wh x + Wbh + Rbh + Rh (r ⊙ h))      (linear_before_reset 0)
 *   h' = (1 - z) ⊙ n + z ⊙ h.
 */
export const gruExport: Emitter = (ctx) => {
  const node = ctx.node;
  const l = layer(ctx, 'GRU');
  for (const a of activations(ctx, l, ['Sigmoid', 'Tanh'])) if (a.join(',') !== 'Sigmoid,Tanh') ctx.fail(`the default activations Sigmoid, Tanh, not ${a.join(', ')}`);
  const linearBeforeReset = attrInt(node, 'linear_before_reset', 0) !== 0;
  const H = l.hidden;
  const one = ctx.constTensor(Tensor.from('float32', [], [1]), `${l.name}/one`);
  unroll(ctx, l, (d, g) => bias(l, d, g, g < 2 || !linearBeforeReset), false, (o, d) => {
    const R = [0, 1, 2].map((g) => ctx.constTensor(rows(l, l.r, d, g, H), `${l.name}/d${d}/R${'zrh'[g]}`));
    // Rbh, which linear_before_reset keeps inside r ⊙ (Rh h + Rbh).
    const Rbh = ctx.constTensor(Tensor.from('float32', [H], l.b.slice(d * 6 * H + 5 * H, d * 6 * H + 6 * H)), `${l.name}/d${d}/Rbh`);
    return ([xz, xr, xh], h, _c, s) => {
      const z = o.unary(B.LOGISTIC, o.binary(B.ADD, xz!, o.fc(h, R[0]!, -1, `hz_${s}`), `z_sum_${s}`), `z_${s}`);
      const r = o.unary(B.LOGISTIC, o.binary(B.ADD, xr!, o.fc(h, R[1]!, -1, `hr_${s}`), `r_sum_${s}`), `r_${s}`);
      const inner = linearBeforeReset ? o.binary(B.MUL, r, o.fc(h, R[2]!, Rbh, `hh_${s}`), `rhh_${s}`) : o.fc(o.binary(B.MUL, r, h, `rh_${s}`), R[2]!, -1, `hh_${s}`);
      const n = o.unary(B.TANH, o.binary(B.ADD, xh!, inner, `n_sum_${s}`), `n_${s}`);
      const keep = o.binary(B.SUB, one, z, `1mz_${s}`);
      return { h: o.binary(B.ADD, o.binary(B.MUL, keep, n, `new_${s}`), o.binary(B.MUL, z, h, `old_${s}`), `h_${s}`) };
    };
  });
};

/**
 * ONNX LSTM unrolled (gates i, o, f, c in ONNX's order; default activations, no peepholes):
 *   i = σ(Wi x + Ri h + Wbi + Rbi), o = σ(...), f = σ(...), g = tanh(Wc x + Rc h + Wbc + Rbc),
 *   c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c').
 * Written for what UNIDIRECTIONAL_SEQUENCE_LSTM cannot hold: an unknown batch (its state tensors
 * are variables of a fixed [batch, H], which LiteRT does not resize with the input: its Prepare
 * fails "NumElements(output_state) != n_batch * n_output"), backward directions, initial states
 * and used Y_h / Y_c.
 */
export const lstmUnrolled: Emitter = (ctx) => {
  const l = layer(ctx, 'LSTM');
  const H = l.hidden;
  unroll(ctx, l, (d, g) => bias(l, d, g, true), true, (o, d) => {
    const R = [0, 1, 2, 3].map((g) => ctx.constTensor(rows(l, l.r, d, g, H), `${l.name}/d${d}/R${'iofc'[g]}`));
    return (x, h, c, s) => {
      const gate = (g: number, code: number) => o.unary(code, o.binary(B.ADD, x[g]!, o.fc(h, R[g]!, -1, `h${'iofc'[g]}_${s}`), `${'iofc'[g]}_sum_${s}`), `${'iofc'[g]}_${s}`);
      const i = gate(0, B.LOGISTIC);
      const out = gate(1, B.LOGISTIC);
      const f = gate(2, B.LOGISTIC);
      const g = gate(3, B.TANH);
      const cell = o.binary(B.ADD, o.binary(B.MUL, f, c!, `fc_${s}`), o.binary(B.MUL, i, g, `ig_${s}`), `c_${s}`);
      return { h: o.binary(B.MUL, out, o.unary(B.TANH, cell, `tanh_c_${s}`), `h_${s}`), c: cell };
    };
  });
};

/** ONNX RNN unrolled (an unknown batch, or a non-zero initial_h): h' = act(Wi x + Wbi + Rbi + Ri h). */
function rnnUnrolled(ctx: Ctx, l: Layer, acts: readonly number[]): void {
  unroll(ctx, l, (d, g) => bias(l, d, g, true), false, (o, d) => {
    const R = ctx.constTensor(rows(l, l.r, d, 0, l.hidden), `${l.name}/d${d}/R`);
    return ([x], h, _c, s) => ({ h: o.unary(acts[d] === ActivationFunctionType.TANH ? B.TANH : B.RELU, o.binary(B.ADD, x!, o.fc(h, R, -1, `hr_${s}`), `sum_${s}`), `h_${s}`) });
  });
}
