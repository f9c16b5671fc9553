import { Tensor } from '../../core/tensor.js';
import { tfAttr } from './attrs.js';
import type { TfAttrs } from './export-ops.js';
import { tensorToProto } from './tensor.js';

/**
 * An ONNX LSTM, GRU or RNN direction as a TensorFlow While loop (control flow v2: a StatelessWhile
 * node whose cond and body are functions of the GraphDef's library), for sequences whose length
 * the graph does not fix: the same file then runs for any length. One loop per direction, its
 * loop values (in this order):
 *
 *   i (int32 step), n (int32 length), X [n, batch, input], W [G·H, input], R [G·H, H],
 *   Wb [G·H], Rb [G·H], h [batch, H], (c [batch, H] for an LSTM), Y (a TensorList of n [batch, H])
 *
 * The body reads step t = i (or n − 1 − i in reverse) of X by GatherV2, computes the cell in ONNX's
 * gate order (W and R as ONNX lays them out, so weights computed in the graph, a module spec's
 * reordered torch gates, need no rearranging), and writes h into Y at t by TensorListSetItem, as
 * Keras's own loops do; TensorListStack after the loop gives Y as [n, batch, H].
 *
 * The functions' names say what they compute (modelbridge_rnn_<kind>_<direction>_h<H>[_lbr]_{body,cond});
 * the importer (rnn.ts) reads such a loop back by building the body its name stands for and
 * requiring the file's body to be that, node for node, so any other loop stays unrecognised.
 */

export type RnnKind = 'LSTM' | 'GRU' | 'RNN';

export interface LoopCell {
  readonly kind: RnnKind;
  readonly reverse: boolean;
  readonly hidden: number;
  /** GRU's linear_before_reset. */
  readonly lbr: boolean;
}

export interface FunctionDefObject {
  readonly signature: {
    readonly name: string;
    readonly input_arg: { name: string; type: number }[];
    readonly output_arg: { name: string; type: number }[];
  };
  readonly node_def: { name: string; op: string; input: string[]; attr: TfAttrs }[];
  readonly ret: Record<string, string>;
}

const DT_FLOAT = 1;
const DT_INT32 = 3;
const DT_BOOL = 10;
const DT_VARIANT = 21;

/** The TF ops the loop uses, body and graph (the export entry declares them for the coverage table). */
export const LOOP_TF_OPS = ['StatelessWhile', 'TensorListReserve', 'TensorListStack', 'TensorListSetItem', 'GatherV2', 'Less', 'Identity', 'Const'];

/** Output arg names of the ops in the functions ("node:arg:k" references, as FunctionDefs need). */
const OUT_ARG: Readonly<Record<string, string>> = {
  MatMul: 'product', AddV2: 'z', Sub: 'z', Mul: 'z', Sigmoid: 'y', Tanh: 'y', Split: 'output', GatherV2: 'output',
  TensorListSetItem: 'output_handle', Identity: 'output', Less: 'z', Const: 'output',
};

export function loopName(cell: LoopCell, part: 'body' | 'cond'): string {
  return `modelbridge_rnn_${cell.kind}_${cell.reverse ? 'reverse' : 'forward'}_h${cell.hidden}${cell.lbr ? '_lbr' : ''}_${part}`;
}

/** The cell a loop function's name stands for, or undefined for any other name. */
export function parseLoopName(name: string): LoopCell | undefined {
  const m = /^modelbridge_rnn_(LSTM|GRU|RNN)_(forward|reverse)_h([1-9][0-9]{0,8})(_lbr)?_body$/.exec(name);
  if (!m) return undefined;
  const kind = m[1] as RnnKind;
  if (m[4] && kind !== 'GRU') return undefined;
  return { kind, reverse: m[2] === 'reverse', hidden: Number(m[3]), lbr: !!m[4] };
}

/** The loop values' names and types (the functions' arguments). */
export function loopArgs(cell: LoopCell): { name: string; type: number }[] {
  const args: [string, number][] = [['i', DT_INT32], ['n', DT_INT32], ['x', DT_FLOAT], ['w', DT_FLOAT], ['r', DT_FLOAT], ['wb', DT_FLOAT], ['rb', DT_FLOAT], ['h', DT_FLOAT]];
  if (cell.kind === 'LSTM') args.push(['c', DT_FLOAT]);
  args.push(['y', DT_VARIANT]);
  return args.map(([name, type]) => ({ name, type }));
}

/** Index of the state h, of c (LSTM), and of the output list among the loop values. */
export function loopIndex(cell: LoopCell): { h: number; c: number | undefined; y: number } {
  return { h: 7, c: cell.kind === 'LSTM' ? 8 : undefined, y: cell.kind === 'LSTM' ? 9 : 8 };
}

/** Builds a function's nodes with FunctionDef references. */
class Body {
  readonly nodes: FunctionDefObject['node_def'] = [];
  private count = 0;

  /**
   * `fname` prefixes the Consts' names: TF.js keeps a function's Const values with the model's
   * weights, keyed by node name, so they must be unique across the graph and its functions.
   */
  constructor(private readonly fname: string) {}

  node(op: string, inputs: readonly string[], attr: TfAttrs, outputs = 1): string[] {
    const name = `${op === 'Const' ? `${this.fname}/` : ''}${op.toLowerCase()}_${this.count++}`;
    this.nodes.push({ name, op, input: [...inputs], attr: Object.fromEntries(Object.keys(attr).sort().map((k) => [k, attr[k]!])) });
    return [...Array(outputs).keys()].map((k) => `${name}:${OUT_ARG[op]}:${k}`);
  }

  one(op: string, inputs: readonly string[], attr: TfAttrs): string {
    return this.node(op, inputs, attr)[0]!;
  }

  const(t: Tensor): string {
    const dtype = t.dtype === 'int32' ? DT_INT32 : DT_FLOAT;
    return this.one('Const', [], { dtype: tfAttr.type(dtype), value: tfAttr.tensor(tensorToProto(t)) });
  }
}

const F = { T: tfAttr.type(DT_FLOAT) };
const I = { T: tfAttr.type(DT_INT32) };

/** The loop's cond function: i < n. */
export function condFunction(cell: LoopCell): FunctionDefObject {
  const b = new Body(loopName(cell, 'cond'));
  const less = b.one('Less', ['i', 'n'], I);
  const args = loopArgs(cell);
  return { signature: { name: loopName(cell, 'cond'), input_arg: args, output_arg: [{ name: 'keep_going', type: DT_BOOL }] }, node_def: b.nodes, ret: { keep_going: less } };
}

/** The loop's body function: one step of the cell in ONNX's semantics (default activations). */
export function bodyFunction(cell: LoopCell): FunctionDefObject {
  const b = new Body(loopName(cell, 'body'));
  const one = b.const(Tensor.from('int32', [], [1]));
  const t = cell.reverse ? b.one('Sub', [b.one('Sub', ['n', one], I), 'i'], I) : 'i';
  const xt = b.one('GatherV2', ['x', t, b.const(Tensor.from('int32', [], [0]))], { Tparams: tfAttr.type(DT_FLOAT), Tindices: tfAttr.type(DT_INT32), Taxis: tfAttr.type(DT_INT32), batch_dims: tfAttr.int(0) });
  const mm = (a: string, w: string) => b.one('MatMul', [a, w], { ...F, transpose_a: tfAttr.bool(false), transpose_b: tfAttr.bool(true) });
  const add = (x: string, y: string) => b.one('AddV2', [x, y], F);
  const mul = (x: string, y: string) => b.one('Mul', [x, y], F);
  const sub = (x: string, y: string) => b.one('Sub', [x, y], F);
  const sig = (x: string) => b.one('Sigmoid', [x], F);
  const tanh = (x: string) => b.one('Tanh', [x], F);
  const split = (axis: number, v: string, k: number) => b.node('Split', [b.const(Tensor.from('int32', [], [axis])), v], { ...F, num_split: tfAttr.int(k) }, k);
  const gx = add(mm(xt, 'w'), 'wb');
  const gh = add(mm('h', 'r'), 'rb');
  let h: string;
  let c: string | undefined;
  if (cell.kind === 'LSTM') {
    const [i, o, f, g] = split(1, add(gx, gh), 4) as [string, string, string, string];
    c = add(mul(sig(f), 'c'), mul(sig(i), tanh(g)));
    h = mul(sig(o), tanh(c));
  } else if (cell.kind === 'RNN') {
    h = tanh(add(gx, gh));
  } else {
    const [xz, xr, xh] = split(1, gx, 3) as [string, string, string];
    const [hz, hr, hh] = split(1, gh, 3) as [string, string, string];
    const z = sig(add(xz, hz));
    const r = sig(add(xr, hr));
    let cand: string;
    if (cell.lbr) cand = tanh(add(xh, mul(r, hh)));
    else {
      // (r ⊙ h) · Rhᵀ + Rbh: the hidden gate's rows of R and of the recurrent bias.
      const Rh = split(0, 'r', 3)[2]!;
      const Rbh = split(0, 'rb', 3)[2]!;
      cand = tanh(add(xh, add(mm(mul(r, 'h'), Rh), Rbh)));
    }
    // (1 − z) ⊙ cand + z ⊙ h, as cand − z ⊙ (cand − h).
    h = sub(cand, mul(z, sub(cand, 'h')));
  }
  const id = (v: string, type: number) => b.one('Identity', [v], { T: tfAttr.type(type) });
  // The list holds the h the body returns, not the value it is a copy of: TF.js disposes a
  // function's intermediate tensors when it returns, its results and list items it keeps.
  const hOut = id(h, DT_FLOAT);
  const y = b.one('TensorListSetItem', ['y', t, hOut], { element_dtype: tfAttr.type(DT_FLOAT) });
  const next = b.one('AddV2', ['i', one], I);
  const args = loopArgs(cell);
  const values: Record<string, string> = { i: next, n: 'n', x: 'x', w: 'w', r: 'r', wb: 'wb', rb: 'rb', ...(c ? { c } : {}), y };
  const ret: Record<string, string> = {};
  const output_arg = args.map((a) => ({ name: `${a.name}_out`, type: a.type }));
  for (const a of args) ret[`${a.name}_out`] = a.name === 'h' ? hOut : id(values[a.name]!, a.type);
  return { signature: { name: loopName(cell, 'body'), input_arg: args, output_arg }, node_def: b.nodes, ret };
}
