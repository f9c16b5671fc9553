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
 * ONNX GRU and RNN -> TFLite builtins. TFLite has no GRU op, and TFLiteConverter writes a Keras
 * GRU or SimpleRNN (Keras 3) as a WHILE loop whose body subgraph runs one step (what
 * src/formats/tflite/while.ts reads back). This writer lowers into one subgraph, so it writes
 * instead:
 *  - RNN: UNIDIRECTIONAL_SEQUENCE_RNN, TFLite's builtin for a simple RNN (kernel
 *    tensorflow/lite/kernels/unidirectional_sequence_rnn.cc: inputs x, weights [H, F], recurrent
 *    weights [H, H], bias [H], a variable hidden state [B, H] that starts at zero), Tanh or Relu;
 *  - GRU: the cell unrolled over the sequence, whose length the probe run knows (a static length:
 *    the file holds T copies of the step, each a few FULLY_CONNECTED and element-wise ops, which
 *    LiteRT runs without a WHILE's per-step subgraph invocation). The input projections of all
 *    steps are one FULLY_CONNECTED per gate over the whole sequence, split by UNPACK; each step's
 *    states are PACKed back into the sequence.
 * The backward direction of a reverse or bidirectional layer runs over the sequence flipped by
 * REVERSE_V2 (RNN) or over the steps in reverse order (GRU), its outputs back in time order.
 * ONNX's Y [T, D, B, H] (layout 0) or [B, T, D, H] (layout 1) and Y_h [D, B, H] / [B, D, H] are
 * RESHAPEs and CONCATENATIONs of the directions' results; only the outputs something reads are
 * written. Refused in one line: clip, sequence_lens, activations other than the defaults (and
 * Relu for RNN), and for RNN a non-zero initial_h (LiteRT starts its state tensor at zero).
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
  readonly kind: 'GRU' | 'RNN';
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
}

/** What both ops share: attributes checked, weights read, shapes known. */
function layer(ctx: Ctx, kind: 'GRU' | 'RNN'): Layer {
  const node = ctx.node;
  const gates = kind === 'GRU' ? 3 : 1;
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
  return { kind, gates, hidden, features, steps, batch, layout, reverse, w: w.toFloat32(), r: r.toFloat32(), b, name: node.name || node.outputs[0]! };
}

/** The activations of each direction (ONNX lists them per direction, defaults when absent). */
function activations(ctx: Ctx, l: Layer, defaults: readonly string[]): string[][] {
  const a = ctx.node.attributes['activations'];
  if (a === undefined) return l.reverse.map(() => [...defaults]);
  if (a.type !== 'strings' || a.value.length !== defaults.length * l.reverse.length) ctx.fail(`${defaults.length} activations per direction`);
  return l.reverse.map((_, d) => a.value.slice(d * defaults.length, (d + 1) * defaults.length));
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

function reshape(ctx: Ctx, x: number, shape: readonly number[], into: number | undefined, name: string): number {
  const out = into ?? ctx.temp(shape, 'float32', name);
  ctx.emit(B.RESHAPE, [x, ctx.int32s(shape, `${name}/shape`)], [out], opt(17, (b) => ReshapeOptions.createReshapeOptions(b, ReshapeOptions.createNewShapeVector(b, [...shape]))));
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
function assemble(ctx: Ctx, l: Layer, sequences: readonly (number | undefined)[], lasts: readonly (number | undefined)[]): void {
  const node = ctx.node;
  const d = l.reverse.length;
  const parts = (values: readonly (number | undefined)[], k: number, axis: number) => {
    const shape = ctx.shape(node.outputs[k]!);
    const one = shape.map((s, i) => (i === axis ? 1 : s));
    if (d === 1) return void reshape(ctx, values[0]!, shape, ctx.output(k), `${node.outputs[k]}/1`);
    const pieces = values.map((v, i) => reshape(ctx, v!, one, undefined, `${node.outputs[k]}/${i}`));
    ctx.emit(B.CONCATENATION, pieces, [ctx.output(k)], opt(10, (b) => ConcatenationOptions.createConcatenationOptions(b, axis, ActivationFunctionType.NONE)));
  };
  if (ctx.used(node.outputs[0] ?? '')) parts(sequences, 0, l.layout === 0 ? 1 : 2);
  if (ctx.used(node.outputs[1] ?? '')) parts(lasts, 1, l.layout === 0 ? 0 : 1);
}

/** Output k of the node is read by something (or is a graph output). */
const used = (ctx: Ctx, k: number) => ctx.used(ctx.node.outputs[k] ?? '');

export const rnnExport: Emitter = (ctx) => {
  const l = layer(ctx, 'RNN');
  const acts = activations(ctx, l, ['Tanh']);
  if (ctx.has(5) && (ctx.constant(ctx.node.inputs[5]!)?.toFloat32().some((v) => v !== 0) ?? true)) ctx.fail("a zero initial_h (UNIDIRECTIONAL_SEQUENCE_RNN's state tensor starts at zero)");
  const time = l.layout === 0 ? 0 : 1;
  const seqShape = l.layout === 0 ? [l.steps, l.batch, l.hidden] : [l.batch, l.steps, l.hidden];
  const xShape = l.layout === 0 ? [l.steps, l.batch, l.features] : [l.batch, l.steps, l.features];
  const sequences: number[] = [];
  const lasts: number[] = [];
  l.reverse.forEach((backwards, d) => {
    const act = acts[d]![0] === 'Tanh' ? ActivationFunctionType.TANH : acts[d]![0] === 'Relu' ? ActivationFunctionType.RELU : ctx.fail(`activation Tanh or Relu (TFLite's fused activations), not ${acts[d]![0]}`);
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
  const time = l.layout === 0 ? 0 : 1;
  const H = l.hidden;
  const state = [l.batch, H];
  const seqShape = l.layout === 0 ? [l.steps, l.batch, H] : [l.batch, l.steps, H];
  const one = ctx.constTensor(Tensor.from('float32', [], [1]), `${l.name}/one`);
  const initial = ctx.has(5) ? ctx.constant(node.inputs[5]!) : undefined;
  const sequences: number[] = [];
  const lasts: number[] = [];
  l.reverse.forEach((backwards, d) => {
    const name = `${l.name}/d${d}`;
    const t = (what: string) => ctx.temp(state, 'float32', `${name}/${what}`);
    const emit2 = (code: number, a: number, b: number, what: string, options: TflOp['options']) => {
      const out = t(what);
      ctx.emit(code, [a, b], [out], options);
      return out;
    };
    // Every step's input projection of gate g at once: FULLY_CONNECTED over [T, B, F], then UNPACK.
    const projected = [0, 1, 2].map((g) => {
      const seq = ctx.temp(seqShape, 'float32', `${name}/x${'zrh'[g]}`);
      const w = ctx.constTensor(rows(l, l.w, d, g, l.features), `${name}/W${'zrh'[g]}`);
      const b = ctx.constTensor(bias(l, d, g, g < 2 || !linearBeforeReset), `${name}/b${'zrh'[g]}`);
      ctx.emit(B.FULLY_CONNECTED, [ctx.input(0), w, b], [seq], fcOpt(true));
      const steps = Array.from({ length: l.steps }, (_, s) => t(`x${'zrh'[g]}_${s}`));
      ctx.emit(B.UNPACK, [seq], steps, opt(64, (bb) => UnpackOptions.createUnpackOptions(bb, l.steps, time)));
      return steps;
    });
    const recurrent = [0, 1, 2].map((g) => ctx.constTensor(rows(l, l.r, d, g, H), `${name}/R${'zrh'[g]}`));
    // Rbh, which linear_before_reset keeps inside r ⊙ (Rh h + Rbh).
    const recurrentBias = ctx.constTensor(Tensor.from('float32', [H], l.b.slice(d * 6 * H + 5 * H, d * 6 * H + 6 * H)), `${name}/Rbh`);
    // The initial state: initial_h's direction d ([D, B, H], or [B, D, H] in layout 1), else zeros.
    let h: number;
    if (!ctx.has(5)) h = ctx.constTensor(Tensor.from('float32', state, new Float32Array(l.batch * H)), `${name}/h0`);
    else if (initial) {
      const v = initial.toFloat32();
      const h0 = new Float32Array(l.batch * H);
      for (let b = 0; b < l.batch; b++) for (let j = 0; j < H; j++) h0[b * H + j] = v[l.layout === 0 ? (d * l.batch + b) * H + j : (b * l.reverse.length + d) * H + j]!;
      h = ctx.constTensor(Tensor.from('float32', state, h0), `${name}/h0`);
    } else {
      h = t('h0');
      ctx.emit(B.GATHER, [ctx.input(5), ctx.constTensor(Tensor.from('int32', [], [d]), `${name}/direction`)], [h], opt(23, (bb) => GatherOptions.createGatherOptions(bb, l.layout === 0 ? 0 : 1, 0)));
    }
    const hs = new Array<number>(l.steps);
    const order = Array.from({ length: l.steps }, (_, s) => (backwards ? l.steps - 1 - s : s));
    for (const s of order) {
      const fc = (x: number, w: number, b: number, what: string) => {
        const out = t(`${what}_${s}`);
        ctx.emit(B.FULLY_CONNECTED, [x, w, b], [out], fcOpt(false));
        return out;
      };
      const gate = (g: number, what: string) => {
        const sum = emit2(B.ADD, projected[g]![s]!, fc(h, recurrent[g]!, -1, `h${what}`), `${what}_sum_${s}`, addOpt);
        const out = t(`${what}_${s}`);
        ctx.emit(B.LOGISTIC, [sum], [out]);
        return out;
      };
      const z = gate(0, 'z');
      const r = gate(1, 'r');
      const inner = linearBeforeReset
        ? emit2(B.MUL, r, fc(h, recurrent[2]!, recurrentBias, 'hh'), `rhh_${s}`, mulOpt)
        : fc(emit2(B.MUL, r, h, `rh_${s}`, mulOpt), recurrent[2]!, -1, 'hh');
      const pre = emit2(B.ADD, projected[2]![s]!, inner, `n_sum_${s}`, addOpt);
      const n = t(`n_${s}`);
      ctx.emit(B.TANH, [pre], [n]);
      const keep = emit2(B.SUB, one, z, `1mz_${s}`, subOpt);
      h = emit2(B.ADD, emit2(B.MUL, keep, n, `new_${s}`, mulOpt), emit2(B.MUL, z, h, `old_${s}`, mulOpt), `h_${s}`, addOpt);
      hs[s] = h;
    }
    if (used(ctx, 0)) {
      const seq = ctx.temp(seqShape, 'float32', `${name}/sequence`);
      ctx.emit(B.PACK, hs, [seq], opt(59, (bb) => PackOptions.createPackOptions(bb, l.steps, time)));
      sequences.push(seq);
    }
    lasts.push(h);
  });
  assemble(ctx, l, sequences, lasts);
};
