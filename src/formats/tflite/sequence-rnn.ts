import { claimExpansion } from '../../core/budget.js';
import { attr } from '../../core/graph.js';
import { Tensor } from '../../core/tensor.js';
import type { OpBuilder } from './ops.js';
import { ActivationFunctionType, SequenceRNNOptions } from './schema/index.js';

/**
 * UNIDIRECTIONAL_SEQUENCE_RNN -> one ONNX RNN node. TFLite's kernel
 * (tensorflow/lite/kernels/unidirectional_sequence_rnn.cc, kernel_utils::RnnBatchStep) computes,
 * per step, h = act(W x + R h + b) with inputs 0 input, 1 weights [units, features],
 * 2 recurrent weights [units, units], 3 bias [units], 4 the hidden state, a variable tensor
 * [batch, units] (zeros unless the file gives data), and writes every step's h. That is ONNX's
 * RNN with activations [act], W/R with a directions axis, the bias in Wb (Rb zero), and layout 1
 * when time_major is false; the directions axis of Y is squeezed out again.
 */
const ACTIVATIONS: Readonly<Record<number, string>> = {
  [ActivationFunctionType.TANH]: 'Tanh',
  [ActivationFunctionType.RELU]: 'Relu',
};

export const unidirectionalSequenceRnn: OpBuilder = (ctx) => {
  const o = ctx.options(31, SequenceRNNOptions);
  if (!o) return ctx.fail('SequenceRNNOptions');
  const act = ACTIVATIONS[o.fusedActivationFunction()] ?? ctx.fail(`fused_activation_function TANH or RELU, not code ${o.fusedActivationFunction()}`);
  if (ctx.arity !== 5) ctx.fail(`5 inputs, not ${ctx.arity}`);
  const constant = (i: number, what: string): Tensor => ctx.constant(i) ?? ctx.fail(`the ${what} (input ${i}) as a constant`);
  const w = constant(1, 'weights');
  const r = constant(2, 'recurrent weights');
  if (w.shape.length !== 2 || r.shape.length !== 2) ctx.fail(`2-D weights, not [${w.shape}] and [${r.shape}]`);
  const [hidden, features] = w.shape as [number, number];
  if (r.shape[0] !== hidden || r.shape[1] !== hidden) ctx.fail(`recurrent weights [${hidden}, ${hidden}], not [${r.shape}]`);
  const bias = new Float32Array(2 * hidden);
  if (ctx.has(3)) {
    const b = constant(3, 'bias').toFloat32();
    if (b.length !== hidden) ctx.fail(`a bias of ${hidden} values, not ${b.length}`);
    bias.set(b);
  }
  const timeMajor = o.timeMajor();
  const x = ctx.tensor(0);
  if (x.shape.length !== 3 || x.shape[2] !== features) ctx.fail(`a 3-D input of ${features} features, not [${x.shape}]`);
  const batch = x.shape[timeMajor ? 1 : 0]!;
  const state = ctx.tensor(4);
  if (state.shape.length !== 2 || state.shape[0] !== batch || state.shape[1] !== hidden) ctx.fail(`a hidden state of [${batch}, ${hidden}], not [${state.shape}]`);
  const given = ctx.constant(4);
  let h0: Float32Array;
  if (given) h0 = given.toFloat32();
  else if (state.isVariable) {
    // Zeros of a size the file only declares: claimed against the memory budget first.
    claimExpansion((_where, expected) => ctx.fail(expected), 'hidden state', `a zero hidden state of [${state.shape}]`, batch * hidden * 4);
    h0 = new Float32Array(batch * hidden);
  } else return ctx.fail('the hidden state (input 4) as a variable tensor');
  const W = ctx.weight('W', Tensor.from('float32', [1, hidden, features], w.toFloat32()));
  const R = ctx.weight('R', Tensor.from('float32', [1, hidden, hidden], r.toFloat32()));
  const Bv = ctx.weight('B', Tensor.from('float32', [1, 2 * hidden], bias));
  const H0 = ctx.weight('initial_h', Tensor.from('float32', timeMajor ? [1, batch, hidden] : [batch, 1, hidden], h0));
  const attributes = { hidden_size: attr.int(hidden), activations: attr.strings([act]), layout: attr.int(timeMajor ? 0 : 1) };
  const [y] = ctx.node('RNN', [ctx.input(0), W, R, Bv, '', H0], attributes, 2);
  return [ctx.node('Squeeze', [y!, ctx.constInts([timeMajor ? 1 : 2])])[0]!];
};

/** For the coverage table: what the builder emits. */
export const SEQUENCE_RNN_IR_OPS = ['RNN', 'Squeeze'] as const;
