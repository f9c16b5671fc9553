import { claimExpansion } from '../../core/budget.js';
import { attr } from '../../core/graph.js';
import { Tensor } from '../../core/tensor.js';
import type { OpBuilder } from './ops.js';
import { ActivationFunctionType, UnidirectionalSequenceLSTMOptions } from './schema/index.js';

/**
 * UNIDIRECTIONAL_SEQUENCE_LSTM -> one ONNX LSTM node. TFLite's kernel
 * (tensorflow/lite/kernels/unidirectional_sequence_lstm.cc, lstm_eval.cc) computes, per step,
 *   i = σ(W_i x + R_i h + b_i), f = σ(W_f x + R_f h + b_f), g = act(W_c x + R_c h + b_c),
 *   o = σ(W_o x + R_o h + b_o), c = f ⊙ c + i ⊙ g, h = o ⊙ act(c)
 * with act the fused activation (TANH from every converter), which is ONNX's LSTM with
 * activations [Sigmoid, act, act], gates stacked in ONNX's order i, o, f, c. The state inputs
 * (output state 18, cell state 19) are variable tensors: their contents (zeros unless the file
 * gives data) become initial_h / initial_c. LiteRT keeps a variable's value between invocations;
 * the IR starts every run from the initial value, which is what a single invocation computes.
 * Refused in one line: peepholes, projection, layer normalisation, projection clipping and CIFG
 * (no input gate), none of which TFLiteConverter emits for a Keras LSTM, and a cell_clip that
 * could act (TFLite clamps the cell state; ONNX's `clip` bounds gate inputs: not the same).
 */
export const TFL_LSTM = {
  input: 0,
  inputWeights: [1, 2, 3, 4],
  recurrentWeights: [5, 6, 7, 8],
  peepholes: [9, 10, 11],
  biases: [12, 13, 14, 15],
  projection: [16, 17],
  outputState: 18,
  cellState: 19,
  layerNorm: [20, 21, 22, 23],
} as const;

/** TFLite's gate order i, f, c, o -> ONNX's i, o, f, c. */
const ONNX_ORDER = [0, 3, 1, 2] as const;

const ACTIVATIONS: Readonly<Record<number, string>> = {
  [ActivationFunctionType.TANH]: 'Tanh',
  [ActivationFunctionType.RELU]: 'Relu',
};

export const unidirectionalSequenceLstm: OpBuilder = (ctx) => {
  const o = ctx.options(71, UnidirectionalSequenceLSTMOptions);
  if (!o) return ctx.fail('UnidirectionalSequenceLSTMOptions');
  const uses = (what: string, indices: readonly number[]) => (indices.some((i) => ctx.has(i)) ? [what] : []);
  const unsupported = [
    ...uses('peepholes (inputs 9-11)', TFL_LSTM.peepholes),
    ...uses('a projection (inputs 16-17)', TFL_LSTM.projection),
    ...uses('layer normalisation (inputs 20-23)', TFL_LSTM.layerNorm),
    ...(!ctx.has(1) || !ctx.has(5) ? ['a coupled input-forget gate (no input gate weights)'] : []),
    ...(o.projClip() !== 0 ? [`proj_clip ${o.projClip()}`] : []),
    ...(o.diagonalRecurrentTensors() ? ['diagonal recurrent tensors'] : []),
  ];
  if (unsupported.length) ctx.fail(`an LSTM without ${unsupported.join(', ')} (ONNX's LSTM has no equivalent)`);
  const act = ACTIVATIONS[o.fusedActivationFunction()];
  if (!act) ctx.fail(`fused_activation_function TANH or RELU, not code ${o.fusedActivationFunction()}`);
  if (ctx.arity !== 20 && ctx.arity !== 24) ctx.fail(`20 or 24 inputs, not ${ctx.arity}`);

  const weights = (indices: readonly number[], what: string): Float32Array[] =>
    indices.map((i) => {
      const c = ctx.constant(i);
      if (!c) return ctx.fail(`${what} (input ${i}) as a constant`);
      return c.toFloat32();
    });
  const inputShape = ctx.tensor(TFL_LSTM.inputWeights[0]).shape;
  const recurrentShape = ctx.tensor(TFL_LSTM.recurrentWeights[0]).shape;
  if (inputShape.length !== 2 || recurrentShape.length !== 2) ctx.fail(`2-D weights [cells, inputs], not [${inputShape}] and [${recurrentShape}]`);
  const [hidden, features] = inputShape as [number, number];
  if (recurrentShape[0] !== hidden || recurrentShape[1] !== hidden) ctx.fail(`recurrent weights [${hidden}, ${hidden}], not [${recurrentShape}]`);
  const w = weights(TFL_LSTM.inputWeights, 'input weights');
  const r = weights(TFL_LSTM.recurrentWeights, 'recurrent weights');
  const b = weights(TFL_LSTM.biases, 'gate biases');
  const stack = (parts: readonly Float32Array[], size: number, what: string): Float32Array => {
    const out = new Float32Array(4 * size);
    ONNX_ORDER.forEach((gate, k) => {
      const part = parts[gate]!;
      if (part.length !== size) ctx.fail(`${what} of ${size} values per gate, not ${part.length}`);
      out.set(part, k * size);
    });
    return out;
  };
  const W = ctx.weight('W', Tensor.from('float32', [1, 4 * hidden, features], stack(w, hidden * features, 'input weights')));
  const R = ctx.weight('R', Tensor.from('float32', [1, 4 * hidden, hidden], stack(r, hidden * hidden, 'recurrent weights')));
  // ONNX adds Wb + Rb; TFLite has one bias per gate: it goes in Wb, Rb stays zero.
  const bias = new Float32Array(8 * hidden);
  bias.set(stack(b, hidden, 'gate biases'));
  const B = ctx.weight('B', Tensor.from('float32', [1, 8 * hidden], bias));

  const timeMajor = o.timeMajor();
  const x = ctx.tensor(TFL_LSTM.input);
  if (x.shape.length !== 3) ctx.fail(`a 3-D input, not [${x.shape}]`);
  const batch = x.shape[timeMajor ? 1 : 0]!;
  const state = (i: number, what: string): string => {
    const t = ctx.tensor(i);
    const c = ctx.constant(i);
    if (t.shape.length !== 2 || t.shape[0] !== batch || t.shape[1] !== hidden) ctx.fail(`a ${what} of [${batch}, ${hidden}], not [${t.shape}]`);
    let value: Tensor;
    if (c) value = Tensor.from('float32', c.shape, c.toFloat32());
    else if (t.isVariable) {
      // Zeros of a size the file only declares: claimed against the memory budget first.
      claimExpansion((_where, expected) => ctx.fail(expected), what, `a zero ${what} of [${t.shape}]`, batch * hidden * 4);
      value = Tensor.from('float32', t.shape, new Float32Array(batch * hidden));
    } else return ctx.fail(`the ${what} (input ${i}) as a variable tensor`);
    // [batch, hidden] -> ONNX's [directions, batch, hidden] (layout 0) or [batch, directions, hidden] (layout 1).
    return ctx.weight(what.replace(/ /g, '_'), Tensor.from('float32', timeMajor ? [1, batch, hidden] : [batch, 1, hidden], value.toFloat32()));
  };
  const h0 = state(TFL_LSTM.outputState, 'output state');
  const c0 = state(TFL_LSTM.cellState, 'cell state');
  // cell_clip (TFLiteConverter sets 10 for every Keras LSTM) clamps c after each step; ONNX's LSTM
  // cannot. With a TANH cell, |c_t| <= f|c_{t-1}| + i|g| <= |c_{t-1}| + 1 (σ and |tanh| are at
  // most 1, also in float32), so |c| never exceeds max|c_0| + steps: when that is within the
  // clip, the clip never acts and the LSTM node is exact. Otherwise the op is refused.
  const clip = o.cellClip();
  if (clip !== 0) {
    const steps = x.shape[timeMajor ? 0 : 1]!;
    const start = ctx.constant(TFL_LSTM.cellState)?.toFloat32().reduce((m, v) => Math.max(m, Math.abs(v)), 0) ?? 0;
    const dynamic = x.signature?.[timeMajor ? 0 : 1] === -1 || steps < 0;
    if (act !== 'Tanh' || dynamic || !(start + steps <= clip)) {
      ctx.fail(`an LSTM whose cell_clip ${clip} cannot act (a TANH cell over a static sequence of at most ${Math.max(0, Math.floor(clip - start))} steps, not ${dynamic ? 'a dynamic one' : steps}); ONNX's LSTM has no cell-state clip`);
    }
  }
  const attributes = {
    hidden_size: attr.int(hidden),
    activations: attr.strings(['Sigmoid', act!, act!]),
    // Batch-major input and output [batch, seq, 1, hidden] when time_major is false.
    layout: attr.int(timeMajor ? 0 : 1),
  };
  const [y] = ctx.node('LSTM', [ctx.input(TFL_LSTM.input), W, R, B, '', h0, c0], attributes, 3);
  // Drop the directions axis: [seq, 1, batch, hidden] (axis 1) or [batch, seq, 1, hidden] (axis 2).
  return [ctx.node('Squeeze', [y!, ctx.constInts([timeMajor ? 1 : 2])])[0]!];
};

/** For the coverage table: what the builder emits. */
export const LSTM_IR_OPS = ['LSTM', 'Squeeze'] as const;
