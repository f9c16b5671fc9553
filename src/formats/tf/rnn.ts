import { attr } from '../../core/graph.js';
import { int64ToNumber } from '../../core/int64.js';
import { Tensor } from '../../core/tensor.js';
import { attrFunc, attrType, attrTypes } from './attrs.js';
import type { TfNode, TfRef } from './flatten.js';
import type { TfAttrs } from './export-ops.js';
import { heldTensor } from './tensor.js';
import type { AttrValue, FunctionDef, NodeDef, TensorProto } from './messages.js';
import type { OpBuilder, OpContext } from './ops.js';
import { bodyFunction, condFunction, loopArgs, loopIndex, loopName, parseLoopName, type FunctionDefObject, type LoopCell } from './rnn-loop.js';

/**
 * Keras's recurrent layers, lifted back to ONNX LSTM and GRU. Keras 3 on TensorFlow runs an
 * LSTM or GRU layer as a While loop over the time-major input, unstacked into a TensorList
 * (TensorListFromTensor), one cell step per iteration, each step's output written into a second
 * TensorList (TensorListReserve, stacked after the loop by TensorListStack). The cell's body is
 * recognised (its MatMuls, BiasAdds, splits and the default sigmoid/tanh activations) and the
 * whole loop becomes one recurrent node with Keras's weights reordered:
 *
 * - LSTM: Keras's gates are i, f, c, o along the kernel's columns; ONNX's are i, o, f, c.
 * - GRU: both are z, r, h; reset_after=True (Keras 3's default) is linear_before_reset=1 with
 *   the bias rows as Wb and Rb; reset_after=False is linear_before_reset=0.
 *
 * Any other While loop (other activations, masking, a hand-written tf.while_loop) is refused
 * naming the node, as an unsupported op would be. The TensorList values are the stacked tensors
 * themselves ([time, batch, features]), which is all Keras's loop does with them.
 */

const DT_FLOAT = 1;
const DT_INT32 = 3;
const DT_RESOURCE = 20;
const DT_VARIANT = 21;

/** Ops a Keras LSTM/GRU cell's loop body is made of (besides the two activations). */
const CELL_OPS = new Set([
  'Identity', 'Const', 'NoOp', 'ReadVariableOp', 'Cast', 'TensorListGetItem', 'TensorListSetItem', 'MatMul', 'BiasAdd', 'AddV2', 'Add',
  'Sub', 'Mul', 'Split', 'SplitV', 'StridedSlice', 'Unpack', 'Squeeze', 'Sigmoid', 'Tanh',
]);

/**
 * Where a cell's weight comes from: a loop value (a captured variable, or a constant the loop
 * passes unchanged, as a frozen graph's lifted frame does), or a Const inside the body (a frozen
 * graph's copy of the variable's value).
 */
export type Weight = { readonly arg: number } | { readonly node: NodeDef };

/** The body's structure: where the kernel, recurrent kernel and bias come from. */
interface Cell {
  readonly kind: 'LSTM' | 'GRU';
  readonly kernel: Weight;
  /**
   * The recurrent kernel, or its column blocks in order: Grappler folds a frozen GRU's
   * reset_after=False slices into two constants, [H, 2H] for h·Rzr and [H, H] for (r⊙h)·Rh.
   */
  readonly recurrent: readonly Weight[];
  /** The whole bias (a variable: [G·H], or a GRU's [2, G·H]). */
  readonly bias: Weight | undefined;
  /** A frozen graph's folded bias halves: added to x·W (or to the sum), and to h·R. */
  readonly inputBias?: Weight | undefined;
  readonly recurrentBias?: Weight | undefined;
  /** Products by the recurrent kernel per step: a GRU with reset_after=False has two (h·Rzr, (r⊙h)·Rh). */
  readonly recurrentProducts: number;
  /** Loop values the body returns unchanged (captured weights, not states). */
  readonly invariants: ReadonlySet<number>;
}

const isFloatConst = (n: NodeDef | undefined): n is NodeDef => n?.op === 'Const' && attrType(n.attr, 'dtype') === DT_FLOAT;
const constRank = (n: NodeDef): number => n.attr['value']?.tensor?.tensor_shape?.dim.length ?? 0;
const weightKey = (w: Weight): string => ('arg' in w ? `arg ${w.arg}` : `node ${w.node.name}`);

/** Recognises a Keras LSTM or GRU cell in a While body; a line saying why not otherwise. */
function recogniseCell(body: FunctionDef, loopTypes: readonly number[]): Cell | string {
  const args = body.signature?.input_arg.map((a) => a.name) ?? [];
  if (args.length !== loopTypes.length) return `a loop body taking the loop's ${loopTypes.length} values`;
  const nodes = new Map<string, NodeDef>(body.node_def.map((n) => [n.name, n]));
  const count = new Map<string, number>();
  for (const n of body.node_def) {
    if (!CELL_OPS.has(n.op)) return `a Keras LSTM or GRU cell in the loop body (it uses ${n.op} at ${n.name})`;
    count.set(n.op, (count.get(n.op) ?? 0) + 1);
  }
  // A body input string is "node:output:k", "node" or a function argument's name.
  const through = new Set(['Identity', 'Cast', 'ReadVariableOp', 'StridedSlice']);
  const source = (input: string): { node?: NodeDef; arg?: number } => {
    for (let name = input.split(':')[0]!, steps = 0; steps < 32; steps++) {
      const node = nodes.get(name);
      if (!node) {
        const arg = args.indexOf(name);
        return arg >= 0 ? { arg } : {};
      }
      if (!through.has(node.op) || !node.input[0]) return { node };
      name = node.input[0].split(':')[0]!;
    }
    return {};
  };
  const outputs = body.signature?.output_arg ?? [];
  const invariants = new Set(outputs.map((o, k) => (source(body.ret[o.name] ?? '').arg === k ? k : -1)).filter((k) => k >= 0));
  // A weight: a captured variable, a constant loop value, or a float Const in the body.
  const weightOf = (input: string): Weight | undefined => {
    const s = source(input);
    if (s.arg !== undefined) return loopTypes[s.arg] === DT_RESOURCE || (loopTypes[s.arg] === DT_FLOAT && invariants.has(s.arg)) ? { arg: s.arg } : undefined;
    return isFloatConst(s.node) ? { node: s.node } : undefined;
  };
  const kernels = new Map<string, Weight>();
  // Recurrent products from the state itself come first, then one from r ⊙ h (Keras's column order).
  const fromState = new Map<string, Weight>();
  const fromGated = new Map<string, Weight>();
  const inputProducts = new Set<string>();
  const recurrentMatMuls = new Set<string>();
  let recurrentProducts = 0;
  for (const n of body.node_def) {
    if (n.op !== 'MatMul') continue;
    const weight = weightOf(n.input[1] ?? '');
    if (weight === undefined) return `MatMul ${n.name} in the loop body to multiply by a captured variable or constant`;
    const left = source(n.input[0] ?? '');
    if (left.node?.op === 'TensorListGetItem') {
      kernels.set(weightKey(weight), weight);
      inputProducts.add(n.name);
    } else {
      (left.arg !== undefined ? fromState : fromGated).set(weightKey(weight), weight);
      recurrentMatMuls.add(n.name);
      recurrentProducts++;
    }
  }
  const recurrent = [...fromState.values(), ...[...fromGated.values()].filter((w) => !fromState.has(weightKey(w)))];
  if (kernels.size !== 1 || recurrent.length < 1 || recurrent.length > 2) return 'one input kernel and one recurrent kernel in the loop body';
  const kernel = [...kernels.values()][0]!;
  const used = new Set([weightKey(kernel), ...recurrent.map(weightKey)]);
  // The bias: the one other weight, a loop value or a (non-scalar) float Const of the body.
  const others: Weight[] = [
    ...loopTypes.map((t, i) => i).filter((i) => (loopTypes[i] === DT_RESOURCE || (loopTypes[i] === DT_FLOAT && invariants.has(i))) && !used.has(weightKey({ arg: i }))).map((arg) => ({ arg })),
    ...body.node_def.filter((n) => isFloatConst(n) && constRank(n) > 0 && !used.has(weightKey({ node: n }))).map((node) => ({ node })),
  ];
  if (others.length > 1 && others.some((w) => 'arg' in w)) return 'at most a bias besides the two kernels among the loop\'s variables';
  // A frozen graph's constants: Grappler may have folded a bias in two (a GRU's input and
  // recurrent rows), each added to its product; which product tells them apart.
  let inputBias: Weight | undefined;
  let recurrentBias: Weight | undefined;
  if (others.length && !('arg' in others[0]!)) {
    for (const n of body.node_def) {
      if (!['BiasAdd', 'Add', 'AddV2'].includes(n.op) || n.input.length !== 2) continue;
      const sides = n.input.map(source);
      const b = sides.findIndex((side) => side.node && others.some((w) => 'node' in w && w.node === side.node));
      if (b < 0) continue;
      const onto = sides[1 - b]!.node;
      const slot = onto && recurrentMatMuls.has(onto.name) ? 'recurrent' : 'input';
      if ((slot === 'recurrent' ? recurrentBias : inputBias) !== undefined) return `one ${slot} bias in the loop body (another at ${n.name})`;
      if (slot === 'recurrent') recurrentBias = { node: sides[b]!.node! };
      else inputBias = { node: sides[b]!.node! };
    }
    if ((inputBias ? 1 : 0) + (recurrentBias ? 1 : 0) !== others.length) return 'at most an input bias and a recurrent bias besides the kernels among the loop body\'s constants';
  }
  const sigmoids = count.get('Sigmoid') ?? 0;
  const tanhs = count.get('Tanh') ?? 0;
  const kind = sigmoids === 3 && tanhs === 2 ? 'LSTM' : sigmoids === 2 && tanhs === 1 ? 'GRU' : undefined;
  if (!kind) return `the default activations of a Keras LSTM (3 Sigmoid, 2 Tanh) or GRU (2 Sigmoid, 1 Tanh), not ${sigmoids} Sigmoid and ${tanhs} Tanh`;
  const bias = others.length === 1 && 'arg' in others[0]! ? others[0] : undefined;
  return { kind, kernel, recurrent, bias, inputBias, recurrentBias, recurrentProducts, invariants };
}

/**
 * [G·H, rows] gate-major weights from a Keras [rows, G·H] matrix: ONNX gate g takes Keras gate
 * order[g] (LSTM: i, o, f, c from i, f, c, o).
 */
export function gateMajor(t: Tensor, hidden: number, order: readonly number[]): Tensor {
  const [rows, cols] = t.shape as [number, number];
  const src = t.toFloat32();
  const out = new Float32Array(rows * cols);
  order.forEach((from, g) => {
    for (let j = 0; j < hidden; j++) for (let r = 0; r < rows; r++) out[(g * hidden + j) * rows + r] = src[r * cols + from * hidden + j]!;
  });
  return Tensor.from('float32', [1, cols, rows], out);
}

/** Column blocks [rows, c1], [rows, c2]... side by side; undefined when they are not 2-D of equal rows. */
function concatColumns(blocks: readonly Tensor[]): Tensor | undefined {
  if (blocks.length === 1) return blocks[0];
  const rows = blocks[0]!.shape[0]!;
  if (blocks.some((t) => t.shape.length !== 2 || t.shape[0] !== rows)) return undefined;
  const cols = blocks.reduce((n, t) => n + t.shape[1]!, 0);
  const out = new Float32Array(rows * cols);
  let at = 0;
  for (const t of blocks) {
    const c = t.shape[1]!;
    const v = t.toFloat32();
    for (let r = 0; r < rows; r++) out.set(v.subarray(r * c, (r + 1) * c), r * cols + at);
    at += c;
  }
  return Tensor.from('float32', [rows, cols], out);
}

export function reorderBias(values: Float32Array, hidden: number, order: readonly number[]): Float32Array {
  const out = new Float32Array(values.length);
  order.forEach((from, g) => out.set(values.subarray(from * hidden, (from + 1) * hidden), g * hidden));
  return out;
}

export const LSTM_ORDER = [0, 3, 1, 2];
export const GRU_ORDER = [0, 1, 2];

/** An int32 scalar TensorProto's value (the body's Consts), else undefined. */
function int32Scalar(p: TensorProto | null | undefined): number | undefined {
  if (!p || p.dtype !== DT_INT32) return undefined;
  // A TF.js weight: the value stays in its shard, held beside the proto.
  const held = heldTensor(p);
  if (held) return held.dtype === 'int32' && held.shape.length === 0 ? held.toNumbers()[0] : undefined;
  if (p.tensor_content.byteLength === 4) return new DataView(p.tensor_content.buffer, p.tensor_content.byteOffset, 4).getInt32(0, true);
  return p.int_val.length === 1 ? p.int_val[0] : undefined;
}

/**
 * Whether a function of the file is, node for node, the one modelbridge writes for the loop
 * (rnn-loop.ts): same signature, node names, ops, inputs, attributes and results.
 */
function sameFunction(got: FunctionDef | undefined, want: FunctionDefObject): boolean {
  if (!got?.signature) return false;
  const args = (a: readonly { name: string; type: number }[], b: readonly { name: string; type: number }[]) => a.length === b.length && a.every((x, i) => x.name === b[i]!.name && x.type === b[i]!.type);
  if (!args(got.signature.input_arg, want.signature.input_arg) || !args(got.signature.output_arg, want.signature.output_arg)) return false;
  if (got.node_def.length !== want.node_def.length) return false;
  const sameAttr = (a: AttrValue | undefined, b: TfAttrs[string]): boolean => {
    if (!a) return false;
    const w = b as Partial<{ i: number; b: boolean; type: number; tensor: { tensor_content?: Uint8Array } }>;
    if (w.i !== undefined) return int64ToNumber(a.i) === w.i;
    if (w.b !== undefined) return a.b === w.b;
    if (w.type !== undefined) return a.type === w.type;
    if (w.tensor !== undefined) {
      const bytes = w.tensor.tensor_content;
      return bytes !== undefined && bytes.byteLength === 4 && int32Scalar(a.tensor) === new DataView(bytes.buffer, bytes.byteOffset, 4).getInt32(0, true);
    }
    return false;
  };
  const nodesMatch = got.node_def.every((n, k) => {
    const w = want.node_def[k]!;
    const keys = Object.keys(w.attr);
    return n.name === w.name && n.op === w.op && n.input.length === w.input.length && n.input.every((v, i) => v === w.input[i]) && keys.every((key) => sameAttr(n.attr[key], w.attr[key]!));
  });
  const rets = Object.keys(want.ret);
  return nodesMatch && Object.keys(got.ret).length === rets.length && rets.every((k) => got.ret[k] === want.ret[k]);
}

/**
 * A While loop modelbridge wrote for an ONNX LSTM, GRU or RNN direction over an open sequence
 * length (rnn-loop.ts), read back as that node: the loop values X, W, R, Wb, Rb, h (and c) are its
 * inputs, the output list its Y, the final states its Y_h and Y_c.
 */
function ownLoop(ctx: OpContext, cell: LoopCell, body: FunctionDef): (string | undefined)[] {
  const condName = attrFunc(ctx.attr, 'cond');
  if (!sameFunction(body, bodyFunction(cell)) || condName !== loopName(cell, 'cond') || !sameFunction(ctx.func(condName), condFunction(cell))) {
    return ctx.fail(`the body and cond functions modelbridge writes for ${loopName(cell, 'body')}: only Keras LSTM and GRU loops and modelbridge's own are imported`);
  }
  const args = loopArgs(cell);
  if (ctx.arity !== args.length) return ctx.fail(`${args.length} loop values`);
  const at = loopIndex(cell);
  const unsqueeze = (v: string) => ctx.op('Unsqueeze', [v, ctx.constInts([0])], {}, 'float32', 3);
  const bias = ctx.op('Unsqueeze', [ctx.op('Concat', [ctx.input(5), ctx.input(6)], { axis: attr.int(0) }, 'float32', 1), ctx.constInts([0])], {}, 'float32', 2);
  const inputs = [ctx.input(2), unsqueeze(ctx.input(3)), unsqueeze(ctx.input(4)), bias, '', unsqueeze(ctx.input(at.h)), ...(at.c !== undefined ? [unsqueeze(ctx.input(at.c))] : [])];
  const attributes = {
    hidden_size: attr.int(cell.hidden),
    direction: attr.string(cell.reverse ? 'reverse' : 'forward'),
    ...(cell.kind === 'GRU' ? { linear_before_reset: attr.int(cell.lbr ? 1 : 0) } : {}),
  };
  const [y, yh, yc] = ctx.ops(cell.kind, inputs, cell.kind === 'LSTM' ? 3 : 2, attributes, 'float32');
  const outs: (string | undefined)[] = new Array<string | undefined>(ctx.arity).fill(undefined);
  // Y [n, 1, batch, H] -> the stacked list [n, batch, H]; Y_h, Y_c [1, batch, H] -> the states.
  outs[at.y] = ctx.out('Squeeze', [y!, ctx.constInts([1])], {}, 'float32', 3, at.y);
  outs[at.h] = ctx.out('Squeeze', [yh!, ctx.constInts([0])], {}, 'float32', 2, at.h);
  if (at.c !== undefined) outs[at.c] = ctx.out('Squeeze', [yc!, ctx.constInts([0])], {}, 'float32', 2, at.c);
  return outs;
}

const While: OpBuilder = (ctx) => {
  const bodyName = attrFunc(ctx.attr, 'body');
  const body = bodyName === undefined ? undefined : ctx.func(bodyName);
  if (!body) return ctx.fail(`a While body function in the graph's library (${bodyName ?? 'no body attr'})`);
  const own = parseLoopName(bodyName!);
  if (own) return ownLoop(ctx, own, body);
  const types = attrTypes(ctx.attr, 'T') ?? [];
  if (types.length !== ctx.arity) return ctx.fail(`a type per loop value (T has ${types.length}, the node ${ctx.arity} inputs)`);
  const cell = recogniseCell(body, types);
  if (typeof cell === 'string') return ctx.fail(`${cell}: only Keras LSTM and GRU loops are imported`);

  // The loop's TensorLists: the time-major input unstacked, and the per-step outputs reserved.
  const listOf = (op: string) => types.map((t, i) => i).filter((i) => types[i] === DT_VARIANT && ctx.producer(ctx.inputRef(i))?.node.op === op);
  const inputs = listOf('TensorListFromTensor');
  const outputs = listOf('TensorListReserve');
  if (inputs.length !== 1 || outputs.length !== 1) return ctx.fail('one input TensorList (TensorListFromTensor) and one output TensorList (TensorListReserve)');
  const states = types.map((t, i) => i).filter((i) => types[i] === DT_FLOAT && !cell.invariants.has(i));
  if (states.length !== (cell.kind === 'LSTM' ? 2 : 1)) return ctx.fail(`${cell.kind === 'LSTM' ? 'two float states (h, c)' : 'one float state (h)'} among the loop values`);

  const weight = (w: Weight) => ('arg' in w ? ctx.constant(w.arg) : ctx.constTensor(w.node));
  const kernel = weight(cell.kernel);
  const blocks = cell.recurrent.map(weight);
  const recurrent = blocks.every((t) => t !== undefined) ? concatColumns(blocks as Tensor[]) : undefined;
  const bias = cell.bias === undefined ? undefined : weight(cell.bias);
  const halves = [cell.inputBias, cell.recurrentBias].map((w) => (w === undefined ? undefined : weight(w)));
  if (!kernel || !recurrent || (cell.bias !== undefined && !bias) || halves.some((t, i) => t === undefined && [cell.inputBias, cell.recurrentBias][i] !== undefined)) {
    return ctx.fail('the cell\'s kernels and bias as constants or variables (2-D recurrent blocks of equal rows)');
  }
  if (kernel.shape.length !== 2 || recurrent.shape.length !== 2) return ctx.fail(`2-D kernels, not ${kernel} and ${recurrent}`);
  const hidden = recurrent.shape[0]!;
  const gates = cell.kind === 'LSTM' ? 4 : 3;
  if (recurrent.shape[1] !== gates * hidden || kernel.shape[1] !== gates * hidden) {
    return ctx.fail(`${cell.kind} kernels of ${gates}·${hidden} columns, not ${kernel} and ${recurrent}`);
  }
  const order = cell.kind === 'LSTM' ? LSTM_ORDER : GRU_ORDER;
  const gh = gates * hidden;
  const b = new Float32Array(2 * gh);
  // reset_after=True (one recurrent product, r applied to it) is ONNX's linear_before_reset=1.
  const linearBeforeReset = cell.kind === 'GRU' && cell.recurrentProducts === 1 ? 1 : 0;
  if (bias) {
    const values = bias.toFloat32();
    if (bias.shape.length === 1 && bias.shape[0] === gh) {
      b.set(reorderBias(values, hidden, order));
    } else if (cell.kind === 'GRU' && bias.shape.length === 2 && bias.shape[0] === 2 && bias.shape[1] === gh) {
      // reset_after=True: the input bias and the recurrent bias, applied inside r ⊙ (…) as linear_before_reset does.
      b.set(values);
    } else {
      return ctx.fail(`a ${cell.kind} bias of ${gh} values${cell.kind === 'GRU' ? ` or [2, ${gh}]` : ''}, not ${bias}`);
    }
  }
  // Folded halves: the input bias is Wb, the recurrent one Rb (for an LSTM both simply add).
  for (const [k, half] of halves.entries()) {
    if (!half) continue;
    if (half.shape.length !== 1 || half.shape[0] !== gh) return ctx.fail(`a ${cell.kind} ${k ? 'recurrent' : 'input'} bias of ${gh} values, not ${half}`);
    b.set(reorderBias(half.toFloat32(), hidden, order), k * gh);
  }

  const x = ctx.input(inputs[0]!);
  const unsqueeze = (v: string) => ctx.op('Unsqueeze', [v, ctx.constInts([0])], {}, 'float32', 3);
  const W = ctx.tensor('W', gateMajor(kernel, hidden, order));
  const R = ctx.tensor('R', gateMajor(recurrent, hidden, order));
  const B = ctx.tensor('B', Tensor.from('float32', [1, 2 * gh], b));
  const initial = states.map((i) => unsqueeze(ctx.input(i)));
  const attributes = { hidden_size: attr.int(hidden), ...(cell.kind === 'GRU' ? { linear_before_reset: attr.int(linearBeforeReset) } : {}) };
  const y = ctx.op(cell.kind, [x, W, R, B, '', ...initial], attributes, 'float32', 4);
  const outs: (string | undefined)[] = new Array<string | undefined>(ctx.arity).fill(undefined);
  // [time, 1, batch, hidden] -> the stacked list [time, batch, hidden]; the state after the last step is its last row.
  outs[outputs[0]!] = ctx.out('Squeeze', [y, ctx.constInts([1])], {}, 'float32', 3, outputs[0]!);
  const last = ctx.op('Slice', [y, ctx.constInts([-1]), ctx.constInts([-INT32_MIN - 1]), ctx.constInts([0])], {}, 'float32', 4);
  outs[states[0]!] = ctx.out('Squeeze', [last, ctx.constInts([0, 1])], {}, 'float32', 2, states[0]!);
  return outs;
};

/**
 * The inputs of a TF node the import needs computed: all of them, except a While loop's int32
 * counters (iteration count and bound), which the lifted recurrent node does not read.
 */
export function importedInputs(node: TfNode): readonly TfRef[] {
  if (node.op !== 'While' && node.op !== 'StatelessWhile') return node.inputs;
  const types = attrTypes(node.attr, 'T');
  return types && types.length === node.inputs.length ? node.inputs.filter((_, i) => types[i] !== DT_INT32) : node.inputs;
}

/** A TensorList holding a whole tensor, as Keras's loop uses it: the tensor itself. */
const listIsTensor: OpBuilder = (ctx) => [ctx.out('Identity', [ctx.input(0)], {}, 'float32')];

/**
 * ReverseV2 (Keras's go_backwards flips the time-major input before its loop): a Slice with step
 * −1 per axis, from the last element past the first.
 */
// The end clamps to "before the first element" for any value below −size; INT32_MIN fits the
// int32 TF.js stores int64 as (−MAX_SAFE_INTEGER made a TF.js export of go_backwards refuse).
const INT32_MIN = -2147483648;
const ReverseV2: OpBuilder = (ctx) => {
  const axes = ctx.ints(1, 'axes');
  if (axes.length === 0) return [ctx.out('Identity', [ctx.input(0)])];
  const rank = ctx.rank(ctx.input(0));
  const n = axes.length;
  return [
    ctx.out('Slice', [ctx.input(0), ctx.constInts(new Array<number>(n).fill(-1)), ctx.constInts(new Array<number>(n).fill(INT32_MIN)), ctx.constInts(axes), ctx.constInts(new Array<number>(n).fill(-1))], {}, undefined, rank),
  ];
};

export const TF_RNN_OPS: Readonly<Record<string, OpBuilder>> = {
  While,
  ReverseV2,
  StatelessWhile: While,
  TensorListFromTensor: listIsTensor,
  TensorListStack: listIsTensor,
  // Only the recognised loop reads it, and writes the steps' outputs in its place.
  TensorListReserve: () => [undefined],
};

/** What each entry becomes in the IR (the TF import column of the coverage table). */
export const TF_RNN_IMPORT_IR: Readonly<Record<string, readonly string[]>> = {
  While: ['LSTM', 'GRU', 'RNN', 'Unsqueeze', 'Squeeze', 'Slice', 'Concat'],
  StatelessWhile: ['LSTM', 'GRU', 'RNN', 'Unsqueeze', 'Squeeze', 'Slice', 'Concat'],
  ReverseV2: ['Slice'],
  TensorListFromTensor: [],
  TensorListStack: [],
  TensorListReserve: [],
};
