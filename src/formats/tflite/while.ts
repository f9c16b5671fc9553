import { attr } from '../../core/graph.js';
import { Tensor } from '../../core/tensor.js';
import type { TflOperator, TflSubgraph } from './file.js';
import type { OpBuilder } from './ops.js';
import { BuiltinOperator as B, WhileOptions } from './schema/index.js';

/**
 * WHILE as TFLiteConverter writes a Keras 3 SimpleRNN, GRU or LSTM layer (Keras 3's layers trace
 * to a While loop, which the converter keeps): lifted to one ONNX RNN, GRU or LSTM node, as
 * src/formats/tf/rnn.ts does for TensorFlow's While. The loop is recognised, not interpreted:
 *  - loop values: two int32 counters starting at 0, the output accumulator ([T, B, H] for
 *    return_sequences, else [1, B, H] holding the last step), the state(s) [B, H], and the
 *    time-major input [T, B, F] read by GATHER at the counter;
 *  - cond: both counters LESS than T (the input's length), so the loop runs every step;
 *  - body: the input FULLY_CONNECTED (kernel, optional bias) on the gathered step, the recurrent
 *    one (recurrent kernel, optional bias: GRU's reset_after) on the h state, an optional bias ADD,
 *    and only element-wise ops, SPLIT/STRIDED_SLICE and the accumulator's writes besides; the cell
 *    is told by its LOGISTIC/TANH count (RNN 0/1, GRU 2/1, LSTM 3/2).
 * Gate orders: Keras's LSTM i, f, c, o -> ONNX's i, o, f, c; Keras's GRU z, r, h is ONNX's. The
 * peer test (test/tflite.rnn.peer.test.ts) runs each lifted loop against LiteRT. Anything else is
 * refused in one line.
 */
const ALLOWED = new Set<number>([B.ADD, B.SUB, B.MUL, B.FULLY_CONNECTED, B.GATHER, B.SPLIT, B.STRIDED_SLICE, B.LOGISTIC, B.TANH, B.RESHAPE, B.CONCATENATION, B.SLICE]);
const LSTM_ORDER = [0, 3, 1, 2] as const;

export const whileLoop: OpBuilder = (ctx) => {
  const o = ctx.options(93, WhileOptions);
  if (!o) return ctx.fail('WhileOptions');
  const cond = ctx.subgraph(o.condSubgraphIndex());
  const body = ctx.subgraph(o.bodySubgraphIndex());
  const n = ctx.arity;
  const refuse = (what: string): never => ctx.fail(`a WHILE loop that is a Keras SimpleRNN, GRU or LSTM layer (${what})`);
  if (body.inputs.length !== n || body.outputs.length !== n || cond.inputs.length !== n || ctx.op.outputs.length !== n) refuse('loop values of one count in the op, cond and body');
  const producer = new Map<number, TflOperator>();
  for (const op of body.operators) for (const t of op.outputs) producer.set(t, op);
  const arg = (t: number) => body.inputs.indexOf(t);
  for (const op of body.operators) if (!ALLOWED.has(op.code)) refuse(`body op code ${op.code}`);

  // The step input: GATHER(x, counter).
  const gathers = body.operators.filter((op) => op.code === B.GATHER);
  if (gathers.length !== 1) refuse('one GATHER of the input sequence');
  const xArg = arg(gathers[0]!.inputs[0]!);
  const counterArg = arg(gathers[0]!.inputs[1]!);
  if (xArg < 0 || counterArg < 0) refuse('the GATHER reading loop values');
  const fcs = body.operators.filter((op) => op.code === B.FULLY_CONNECTED);
  if (fcs.length !== 2) refuse('two FULLY_CONNECTED');
  const inputFc = fcs.find((op) => op.inputs[0] === gathers[0]!.outputs[0]);
  const recurrentFc = fcs.find((op) => op !== inputFc && arg(op.inputs[0]!) >= 0);
  if (!inputFc || !recurrentFc) refuse('one FULLY_CONNECTED on the step input and one on the h state');
  const hArg = arg(recurrentFc!.inputs[0]!);
  const constant = (t: number, what: string): Tensor => ctx.subgraphConstant(body.index, t) ?? refuse(`${what} as a constant`);
  const kernel = constant(inputFc!.inputs[1]!, 'the kernel');
  const recurrent = constant(recurrentFc!.inputs[1]!, 'the recurrent kernel');
  if (recurrent.shape.length !== 2 || !(recurrent.shape[1]! > 0) || recurrent.shape[0]! % recurrent.shape[1]! !== 0) refuse(`a recurrent kernel [gates x H, H], not [${recurrent.shape}]`);
  const hidden = recurrent.shape[1]!;
  const gh = recurrent.shape[0]!;
  const gates = gh / hidden;
  const count = (code: number) => body.operators.filter((op) => op.code === code).length;
  const sig = count(B.LOGISTIC);
  const tanh = count(B.TANH);
  const kind = gates === 1 && sig === 0 && tanh === 1 ? 'RNN' : gates === 3 && sig === 2 && tanh === 1 ? 'GRU' : gates === 4 && sig === 3 && tanh === 2 ? 'LSTM' : undefined;
  if (!kind) return refuse(`${gates} gates with ${sig} LOGISTIC and ${tanh} TANH`);
  if (kernel.shape.length !== 2 || kernel.shape[0] !== gh) refuse(`a kernel of ${gh} rows, not [${kernel.shape}]`);
  const features = kernel.shape[1]!;
  // Biases: the input FULLY_CONNECTED's, an ADD of a [gh] constant, and (GRU) the recurrent one.
  const wb = new Float32Array(gh);
  const rb = new Float32Array(gh);
  const addInto = (into: Float32Array, t: Tensor) => t.toFloat32().forEach((v, i) => (into[i] = into[i]! + v));
  if (inputFc!.inputs[2] !== undefined && inputFc!.inputs[2] >= 0) addInto(wb, constant(inputFc!.inputs[2], 'the bias'));
  for (const op of body.operators) {
    if (op.code !== B.ADD) continue;
    for (const t of op.inputs) {
      const c = ctx.subgraphConstant(body.index, t);
      if (c && c.size === gh && c.shape.length === 1) addInto(wb, c);
    }
  }
  if (recurrentFc!.inputs[2] !== undefined && recurrentFc!.inputs[2] >= 0) {
    if (kind !== 'GRU') addInto(wb, constant(recurrentFc!.inputs[2], 'the recurrent bias'));
    else addInto(rb, constant(recurrentFc!.inputs[2], 'the recurrent bias'));
  }

  // Loop values by role.
  const x = ctx.tensor(xArg);
  if (x.shape.length !== 3 || x.shape[2] !== features) refuse(`a time-major input [T, B, ${features}], not [${x.shape}]`);
  const steps = x.shape[0]!;
  const floats = body.inputs.map((t, i) => ({ i, t: body.tensors[t]! })).filter(({ t }) => t.type === 0);
  const states = floats.filter(({ i, t }) => i !== xArg && t.shape.length === 2).map(({ i }) => i);
  const accs = floats.filter(({ i, t }) => i !== xArg && t.shape.length === 3).map(({ i }) => i);
  if (states.length !== (kind === 'LSTM' ? 2 : 1) || !states.includes(hArg) || accs.length !== 1) refuse('the states and one output accumulator among the loop values');
  const counters = body.inputs.map((t, i) => ({ i, t: body.tensors[t]! })).filter(({ t }) => t.type === 2).map(({ i }) => i);
  if (counters.length !== 2 || !counters.includes(counterArg)) refuse('two int32 counters');
  for (const i of counters) {
    const c = ctx.constant(i);
    if (!c || c.toNumbers()[0] !== 0) refuse(`counter ${i} starting at 0`);
  }
  // cond: each LESS compares with T, and nothing else computes there.
  for (const op of cond.operators) {
    if (op.code === B.LOGICAL_AND) continue;
    if (op.code !== B.LESS) refuse(`cond op code ${op.code}`);
    const bound = ctx.subgraphConstant(cond.index, op.inputs[1]!);
    if (!bound || bound.toNumbers()[0] !== steps) refuse(`cond bounds of ${steps} steps`);
  }
  const acc = ctx.tensor(accs[0]!);
  const sequences = acc.shape[0] === steps && steps !== 1;
  if (!sequences && acc.shape[0] !== 1) refuse(`an accumulator of ${steps} or 1 steps, not [${acc.shape}]`);

  // The ONNX node.
  const order = kind === 'LSTM' ? LSTM_ORDER : Array.from({ length: gates }, (_, k) => k);
  const gateMajor = (values: Float32Array, width: number) => {
    const out = new Float32Array(values.length);
    order.forEach((g, k) => out.set(values.subarray(g * hidden * width, (g + 1) * hidden * width), k * hidden * width));
    return out;
  };
  const W = ctx.weight('W', Tensor.from('float32', [1, gh, features], gateMajor(kernel.toFloat32(), features)));
  const R = ctx.weight('R', Tensor.from('float32', [1, gh, hidden], gateMajor(recurrent.toFloat32(), hidden)));
  const bias = new Float32Array(2 * gh);
  bias.set(gateMajor(wb, 1));
  bias.set(gateMajor(rb, 1), gh);
  const Bv = ctx.weight('B', Tensor.from('float32', [1, 2 * gh], bias));
  const unsqueeze = (i: number) => ctx.node('Unsqueeze', [ctx.input(i), ctx.constInts([0])])[0]!;
  const initial = kind === 'LSTM' ? [unsqueeze(hArg), unsqueeze(states.find((s) => s !== hArg)!)] : [unsqueeze(hArg)];
  const attributes = { hidden_size: attr.int(hidden), ...(kind === 'GRU' ? { linear_before_reset: attr.int(1) } : {}) };
  const [y, yh, yc] = ctx.node(kind, [ctx.input(xArg), W, R, Bv, '', ...initial], attributes, kind === 'LSTM' ? 3 : 2);
  const squeeze = (v: string, axes: number[]) => ctx.node('Squeeze', [v, ctx.constInts(axes)])[0]!;
  const outs: string[] = [];
  for (let i = 0; i < n; i++) {
    if (counters.includes(i)) outs.push(ctx.weight('steps', Tensor.from('int32', [], [steps])));
    else if (i === xArg) outs.push(ctx.input(xArg));
    else if (i === accs[0]) outs.push(sequences ? squeeze(y!, [1]) : yh!);
    else if (i === hArg) outs.push(squeeze(yh!, [0]));
    else outs.push(squeeze(yc!, [0]));
  }
  return outs;
};
