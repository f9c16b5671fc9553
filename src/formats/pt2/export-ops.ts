import { isFloat, type DType } from '../../core/dtypes.js';
import { attrFloat, attrInt, attrInts, attrString, type Node } from '../../core/graph.js';
import { SCALAR_TYPE_CODES } from './archive.js';
import type { Json } from './json.js';

/**
 * IR ops (ONNX semantics) to ATen calls, for the .pt2 writer: ONE table keyed by IR op, each
 * entry emitting the ATen calls (torch.ops.aten.<op>.<overload>) that compute the node. Sizes
 * come from one probe run of the graph (writer.ts), so views and expands are written with the
 * sizes torch will see; constant operands (axes, pads, shapes) are read from the initializers.
 * An op missing here is refused by name, with its node.
 */

/** A probed value: dtype, and sizes where a symbolic size is an expression of the input symbols. */
export interface ValueMeta {
  readonly dtype: DType;
  readonly shape: readonly (number | string)[];
  /** The sizes in the writer's base probe run: the hints torch wants beside symbolic sizes. */
  readonly hints?: readonly number[];
}

export interface Emitter {
  readonly node: Node;
  /** The graph's opset, for ops whose meaning changed (Softmax before 13). */
  readonly opset: number;
  /** Torch name of input i (a placeholder, constant or earlier call). */
  input(i: number): string;
  has(i: number): boolean;
  meta(value: string): ValueMeta;
  inMeta(i: number): ValueMeta;
  outMeta(i?: number): ValueMeta;
  /** The values of input i when it is a constant (initializer or folded), else undefined. */
  constant(i: number): number[] | undefined;
  /** Emits one call; returns its outputs' torch names (`outputs` given: the node's own values). */
  call(target: string, args: readonly CallArg[], outputs?: readonly (string | undefined)[], metas?: readonly ValueMeta[]): string[];
  /** The torch name of output i of the IR node. */
  out(i?: number): string;
  fail(expected: string): never;
}

/** One argument: the schema name, the serialized value, and whether it is passed by keyword. */
export interface CallArg {
  readonly name: string;
  readonly arg: Json;
  readonly keyword?: boolean;
}

export const a = {
  tensor: (name: string, value: string, keyword = false): CallArg => ({ name, arg: { as_tensor: { name: value } }, keyword }),
  tensors: (name: string, values: readonly string[]): CallArg => ({ name, arg: { as_tensors: values.map((v) => ({ name: v })) } }),
  optionalTensors: (name: string, values: readonly (string | undefined)[]): CallArg => ({ name, arg: { as_optional_tensors: values.map((v): Json => (v === undefined ? { as_none: true } : { as_tensor: { name: v } })) } }),
  none: (name: string, keyword = false): CallArg => ({ name, arg: { as_none: true }, keyword }),
  int: (name: string, value: number, keyword = false): CallArg => ({ name, arg: { as_int: value }, keyword }),
  ints: (name: string, value: readonly number[], keyword = false): CallArg => ({ name, arg: { as_ints: [...value] }, keyword }),
  float: (name: string, value: number, keyword = false): CallArg => ({ name, arg: { as_float: jsonFloat(value) }, keyword }),
  bool: (name: string, value: boolean, keyword = false): CallArg => ({ name, arg: { as_bool: value }, keyword }),
  string: (name: string, value: string, keyword = false): CallArg => ({ name, arg: { as_string: value }, keyword }),
  dtype: (name: string, value: DType, keyword = true): CallArg => ({ name, arg: { as_scalar_type: SCALAR_TYPE_CODES.get(value) ?? 0 }, keyword }),
};

/** torch writes non-finite floats as strings (serialize.py _dataclass_to_dict). */
export function jsonFloat(v: number): Json {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  return v;
}

type Lower = (x: Emitter) => void;

const unary = (op: string): Lower => (x) => void x.call(`aten.${op}.default`, [a.tensor('self', x.input(0))], [x.out()]);
const binary = (target: string): Lower => (x) => void x.call(target, [a.tensor('self', x.input(0)), a.tensor('other', x.input(1))], [x.out()]);
const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** A torch size list for a value: symbolic sizes become -1 (at most one; view and expand infer it). */
function sizeList(x: Emitter, shape: readonly (number | string)[], what: string): number[] {
  const dynamic = shape.filter((d) => typeof d === 'string').length;
  if (dynamic > 1) x.fail(`${what} with at most one symbolic size, not [${shape.join(', ')}]`);
  return shape.map((d) => (typeof d === 'number' ? d : -1));
}

/** Reshape to the node's probed output shape (Reshape, Flatten, Squeeze, Unsqueeze all are that). */
const reshapeToOutput: Lower = (x) => {
  x.call('aten.reshape.default', [a.tensor('self', x.input(0)), a.ints('shape', sizeList(x, x.outMeta().shape, 'a reshape'))], [x.out()]);
};

/**
 * Begin and end pads of a convolution or pooling window: explicit pads, or auto_pad's SAME_*
 * computed from the probed input and output sizes (the extra pad at the end for SAME_UPPER).
 */
function windowPads(x: Emitter, kernel: readonly number[]): { begin: number[]; end: number[] } {
  const spatial = kernel.length;
  const autoPad = attrString(x.node, 'auto_pad', 'NOTSET');
  if (autoPad === 'VALID') return { begin: new Array<number>(spatial).fill(0), end: new Array<number>(spatial).fill(0) };
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const input = x.inMeta(0).shape.slice(2);
    const output = x.outMeta().shape.slice(2);
    const strides = attrInts(x.node, 'strides') ?? kernel.map(() => 1);
    const dilations = attrInts(x.node, 'dilations') ?? kernel.map(() => 1);
    const begin: number[] = [];
    const end: number[] = [];
    kernel.forEach((k, i) => {
      const n = input[i];
      const o = output[i];
      if (typeof n !== 'number' || typeof o !== 'number') x.fail(`static spatial sizes for auto_pad ${autoPad}`);
      const total = Math.max(0, (o - 1) * strides[i]! + (k - 1) * dilations[i]! + 1 - n);
      const small = Math.floor(total / 2);
      begin.push(autoPad === 'SAME_UPPER' ? small : total - small);
      end.push(autoPad === 'SAME_UPPER' ? total - small : small);
    });
    return { begin, end };
  }
  if (autoPad !== 'NOTSET') x.fail(`a known auto_pad, not ${autoPad}`);
  const pads = attrInts(x.node, 'pads') ?? new Array<number>(spatial * 2).fill(0);
  return { begin: pads.slice(0, spatial), end: pads.slice(spatial) };
}

/**
 * The window's input and torch's symmetric padding: pads that differ at the two ends (TF's SAME
 * with an even window) become a constant_pad_nd before the op, with `fill` (0, or -inf for max pooling).
 */
function paddedInput(x: Emitter, kernel: readonly number[], fill: number | undefined): { input: string; padding: number[] } {
  const { begin, end } = windowPads(x, kernel);
  if (begin.every((p, i) => p === end[i])) return { input: x.input(0), padding: begin };
  if (fill === undefined) return x.fail(`symmetric pads (torch pads both sides alike and would count the extra padding), not begin [${begin.join(', ')}] end [${end.join(', ')}]`);
  const torchPads: number[] = [];
  for (let d = kernel.length - 1; d >= 0; d--) torchPads.push(begin[d]!, end[d]!);
  const m = x.inMeta(0);
  const shape = m.shape.map((d, i) => (i < 2 || typeof d !== 'number' ? d : d + begin[i - 2]! + end[i - 2]!));
  const hints = m.hints?.map((d, i) => (i < 2 ? d : d + begin[i - 2]! + end[i - 2]!));
  const input = x.call('aten.constant_pad_nd.default', [a.tensor('self', x.input(0)), a.ints('pad', torchPads), a.float('value', fill)], [undefined], [{ dtype: m.dtype, shape, ...(hints ? { hints } : {}) }])[0]!;
  return { input, padding: kernel.map(() => 0) };
}

function axesOf(x: Emitter, rank: number, inputIndex: number): number[] | undefined {
  const fromAttr = attrInts(x.node, 'axes');
  if (fromAttr) return fromAttr.map((d) => norm(d, rank));
  if (!x.has(inputIndex)) return undefined;
  const c = x.constant(inputIndex) ?? x.fail(`constant axes (input ${inputIndex})`);
  return c.map((d) => norm(d, rank));
}

function reduce(target: string): Lower {
  return (x) => {
    const rank = x.inMeta(0).shape.length;
    const axes = axesOf(x, rank, 1);
    const keep = attrInt(x.node, 'keepdims', 1) === 1;
    const all = axes === undefined || axes.length === 0;
    if (all && attrInt(x.node, 'noop_with_empty_axes', 0) === 1) return void x.call('aten.clone.default', [a.tensor('self', x.input(0))], [x.out()]);
    x.call(target, [a.tensor('self', x.input(0)), a.ints('dim', all ? [...Array(rank).keys()] : axes), a.bool('keepdim', keep)], [x.out()]);
  };
}

function argReduce(x: Emitter, target: string): void {
  if (attrInt(x.node, 'select_last_index', 0) !== 0) x.fail('select_last_index 0 (torch returns the first extreme)');
  const rank = x.inMeta(0).shape.length;
  x.call(target, [a.tensor('self', x.input(0)), a.int('dim', norm(attrInt(x.node, 'axis', 0), rank)), a.bool('keepdim', attrInt(x.node, 'keepdims', 1) === 1)], [x.out()]);
}

function constScalar(x: Emitter, i: number, what: string): number | undefined {
  if (!x.has(i)) return undefined;
  const c = x.constant(i);
  if (!c || c.length !== 1) return x.fail(`a constant ${what}`);
  return c[0]!;
}

export const IR_TO_ATEN: Readonly<Record<string, Lower>> = {
  Conv: (x) => {
    const w = x.inMeta(1).shape;
    const spatial = w.length - 2;
    const kernel = w.slice(2).map((d) => (typeof d === 'number' ? d : x.fail('a static kernel')));
    const { input, padding } = paddedInput(x, kernel, 0);
    const ones = new Array<number>(spatial).fill(1);
    x.call('aten.convolution.default', [
      a.tensor('input', input), a.tensor('weight', x.input(1)), x.has(2) ? a.tensor('bias', x.input(2)) : a.none('bias'),
      a.ints('stride', attrInts(x.node, 'strides') ?? ones), a.ints('padding', padding), a.ints('dilation', attrInts(x.node, 'dilations') ?? ones),
      a.bool('transposed', false), a.ints('output_padding', new Array<number>(spatial).fill(0)), a.int('groups', attrInt(x.node, 'group', 1)),
    ], [x.out()]);
  },
  ConvTranspose: (x) => {
    const w = x.inMeta(1).shape;
    const spatial = w.length - 2;
    if (x.node.attributes['output_shape']) x.fail('ConvTranspose without output_shape (give pads)');
    const kernel = w.slice(2).map((d) => (typeof d === 'number' ? d : x.fail('a static kernel')));
    const { begin, end } = windowPads(x, kernel);
    if (begin.some((p, i) => p !== end[i])) x.fail(`symmetric pads, not begin [${begin.join(', ')}] end [${end.join(', ')}]`);
    const ones = new Array<number>(spatial).fill(1);
    x.call('aten.convolution.default', [
      a.tensor('input', x.input(0)), a.tensor('weight', x.input(1)), x.has(2) ? a.tensor('bias', x.input(2)) : a.none('bias'),
      a.ints('stride', attrInts(x.node, 'strides') ?? ones), a.ints('padding', begin), a.ints('dilation', attrInts(x.node, 'dilations') ?? ones),
      a.bool('transposed', true), a.ints('output_padding', attrInts(x.node, 'output_padding') ?? new Array<number>(spatial).fill(0)), a.int('groups', attrInt(x.node, 'group', 1)),
    ], [x.out()]);
  },
  Gemm: (x) => {
    let A = x.input(0);
    let B = x.input(1);
    if (attrInt(x.node, 'transA', 0)) A = x.call('aten.permute.default', [a.tensor('self', A), a.ints('dims', [1, 0])], [undefined], [transposed(x.inMeta(0))])[0]!;
    if (attrInt(x.node, 'transB', 0)) B = x.call('aten.permute.default', [a.tensor('self', B), a.ints('dims', [1, 0])], [undefined], [transposed(x.inMeta(1))])[0]!;
    const alpha = attrFloat(x.node, 'alpha', 1);
    const beta = attrFloat(x.node, 'beta', 1);
    if (x.has(2)) {
      const extra = [...(beta !== 1 ? [a.float('beta', beta, true)] : []), ...(alpha !== 1 ? [a.float('alpha', alpha, true)] : [])];
      return void x.call('aten.addmm.default', [a.tensor('self', x.input(2)), a.tensor('mat1', A), a.tensor('mat2', B), ...extra], [x.out()]);
    }
    if (alpha === 1) return void x.call('aten.mm.default', [a.tensor('self', A), a.tensor('mat2', B)], [x.out()]);
    const mm = x.call('aten.mm.default', [a.tensor('self', A), a.tensor('mat2', B)], [undefined], [x.outMeta()])[0]!;
    x.call('aten.mul.Tensor', [a.tensor('self', mm), a.float('other', alpha)], [x.out()]);
  },
  MatMul: (x) => void x.call('aten.matmul.default', [a.tensor('self', x.input(0)), a.tensor('other', x.input(1))], [x.out()]),
  Relu: unary('relu'),
  Sigmoid: unary('sigmoid'),
  Tanh: unary('tanh'),
  Exp: unary('exp'),
  Log: unary('log'),
  Sqrt: unary('sqrt'),
  Neg: unary('neg'),
  Abs: unary('abs'),
  Erf: unary('erf'),
  Reciprocal: unary('reciprocal'),
  Floor: unary('floor'),
  Ceil: unary('ceil'),
  Sin: unary('sin'),
  Cos: unary('cos'),
  Not: unary('logical_not'),
  HardSwish: unary('hardswish'),
  Softplus: unary('softplus'),
  Identity: unary('clone'),
  Sign: unary('sign'),
  Round: unary('round'),
  Tan: unary('tan'),
  IsNaN: unary('isnan'),
  Selu: unary('selu'),
  IsInf: (x) => {
    const positive = attrInt(x.node, 'detect_positive', 1) === 1;
    const negative = attrInt(x.node, 'detect_negative', 1) === 1;
    const op = positive && negative ? 'isinf' : positive ? 'isposinf' : negative ? 'isneginf' : x.fail('IsInf detecting something');
    unary(op)(x);
  },
  Softsign: (x) => {
    // x / (1 + |x|), as ONNX's function body defines it.
    const m = x.meta(x.input(0));
    const abs = x.call('aten.abs.default', [a.tensor('self', x.input(0))], [undefined], [m])[0]!;
    const den = x.call('aten.add.Tensor', [a.tensor('self', abs), a.float('other', 1)], [undefined], [m])[0]!;
    x.call('aten.div.Tensor', [a.tensor('self', x.input(0)), a.tensor('other', den)], [x.out()]);
  },
  PRelu: (x) => {
    // x where x >= 0, else slope * x, broadcasting as ONNX does (numpy's rules, as torch's where);
    // aten.prelu would apply a 1-D slope to dim 1 instead.
    const m = x.outMeta();
    const positive = x.call('aten.ge.Scalar', [a.tensor('self', x.input(0)), a.int('other', 0)], [undefined], [{ ...x.inMeta(0), dtype: 'bool' }])[0]!;
    const scaled = x.call('aten.mul.Tensor', [a.tensor('self', x.input(0)), a.tensor('other', x.input(1))], [undefined], [m])[0]!;
    x.call('aten.where.self', [a.tensor('condition', positive), a.tensor('self', x.input(0)), a.tensor('other', scaled)], [x.out()]);
  },
  Sum: (x) => {
    // An n-ary sum as a chain of adds; one input is a copy.
    const n = x.node.inputs.length;
    if (n === 1) return unary('clone')(x);
    let acc = x.input(0);
    for (let i = 1; i < n; i++) {
      const last = i === n - 1;
      acc = x.call('aten.add.Tensor', [a.tensor('self', acc), a.tensor('other', x.input(i))], [last ? x.out() : undefined], last ? undefined : [x.outMeta()])[0]!;
    }
  },
  Mod: (x) => {
    // fmod=1 keeps the dividend's sign (C fmod); fmod=0 the divisor's (Python's %), torch's remainder.
    const target = attrInt(x.node, 'fmod', 0) === 1 ? 'aten.fmod.Tensor' : 'aten.remainder.Tensor';
    x.call(target, [a.tensor('self', x.input(0)), a.tensor('other', x.input(1))], [x.out()]);
  },
  Tile: (x) => {
    const repeats = x.constant(1) ?? x.fail('constant repeats');
    x.call('aten.repeat.default', [a.tensor('self', x.input(0)), a.ints('repeats', repeats)], [x.out()]);
  },
  CumSum: (x) => {
    if (attrInt(x.node, 'exclusive', 0) || attrInt(x.node, 'reverse', 0)) x.fail('an inclusive, forward CumSum');
    const axis = constScalar(x, 1, 'axis') ?? x.fail('an axis');
    x.call('aten.cumsum.default', [a.tensor('self', x.input(0)), a.int('dim', axis)], [x.out()]);
  },
  Einsum: (x) => void x.call('aten.einsum.default', [a.string('equation', attrString(x.node, 'equation', '')), a.tensors('tensors', x.node.inputs.map((_, i) => x.input(i)))], [x.out()]),
  Gelu: (x) => void x.call('aten.gelu.default', [a.tensor('self', x.input(0)), a.string('approximate', attrString(x.node, 'approximate', 'none'), true)], [x.out()]),
  LeakyRelu: (x) => void x.call('aten.leaky_relu.default', [a.tensor('self', x.input(0)), a.float('negative_slope', attrFloat(x.node, 'alpha', 0.01))], [x.out()]),
  Elu: (x) => void x.call('aten.elu.default', [a.tensor('self', x.input(0)), a.float('alpha', attrFloat(x.node, 'alpha', 1))], [x.out()]),
  HardSigmoid: (x) => {
    const alpha = attrFloat(x.node, 'alpha', 0.2);
    const beta = attrFloat(x.node, 'beta', 0.5);
    if (Math.abs(alpha - 1 / 6) < 1e-7 && beta === 0.5) return void x.call('aten.hardsigmoid.default', [a.tensor('self', x.input(0))], [x.out()]);
    const m = x.meta(x.input(0));
    const scaled = x.call('aten.mul.Tensor', [a.tensor('self', x.input(0)), a.float('other', alpha)], [undefined], [m])[0]!;
    const shifted = x.call('aten.add.Tensor', [a.tensor('self', scaled), a.float('other', beta)], [undefined], [m])[0]!;
    x.call('aten.clamp.default', [a.tensor('self', shifted), a.float('min', 0), a.float('max', 1)], [x.out()]);
  },
  Add: binary('aten.add.Tensor'),
  Sub: binary('aten.sub.Tensor'),
  Mul: binary('aten.mul.Tensor'),
  Div: (x) => {
    // ONNX divides integers truncating; torch's div is true division unless told.
    if (isFloat(x.outMeta().dtype)) return binary('aten.div.Tensor')(x);
    x.call('aten.div.Tensor_mode', [a.tensor('self', x.input(0)), a.tensor('other', x.input(1)), a.string('rounding_mode', 'trunc', true)], [x.out()]);
  },
  Pow: binary('aten.pow.Tensor_Tensor'),
  Max: (x) => (x.node.inputs.length === 2 ? binary('aten.maximum.default')(x) : x.fail('Max of two inputs')),
  Min: (x) => (x.node.inputs.length === 2 ? binary('aten.minimum.default')(x) : x.fail('Min of two inputs')),
  Equal: binary('aten.eq.Tensor'),
  Less: binary('aten.lt.Tensor'),
  LessOrEqual: binary('aten.le.Tensor'),
  Greater: binary('aten.gt.Tensor'),
  GreaterOrEqual: binary('aten.ge.Tensor'),
  And: binary('aten.logical_and.default'),
  Or: binary('aten.logical_or.default'),
  Xor: binary('aten.logical_xor.default'),
  Where: (x) => void x.call('aten.where.self', [a.tensor('condition', x.input(0)), a.tensor('self', x.input(1)), a.tensor('other', x.input(2))], [x.out()]),
  Softmax: (x) => {
    const rank = x.inMeta(0).shape.length;
    const axis = norm(attrInt(x.node, 'axis', -1), rank);
    // Before opset 13 Softmax flattened from `axis` on; that is the same only along the last axis.
    if (x.node.domain === '' && axis !== rank - 1 && x.opset < 13) x.fail('Softmax along the last axis below opset 13');
    x.call('aten._softmax.default', [a.tensor('self', x.input(0)), a.int('dim', axis), a.bool('half_to_float', false)], [x.out()]);
  },
  LogSoftmax: (x) => {
    const rank = x.inMeta(0).shape.length;
    x.call('aten._log_softmax.default', [a.tensor('self', x.input(0)), a.int('dim', norm(attrInt(x.node, 'axis', -1), rank)), a.bool('half_to_float', false)], [x.out()]);
  },
  MaxPool: (x) => {
    if (x.node.outputs.length > 1 && x.node.outputs[1]) x.fail('MaxPool without its Indices output');
    const k = attrInts(x.node, 'kernel_shape') ?? x.fail('kernel_shape');
    if (k.length !== 2) x.fail('a 2-D MaxPool');
    const { input, padding } = paddedInput(x, k, -Infinity);
    const m = x.outMeta();
    x.call('aten.max_pool2d_with_indices.default', [
      a.tensor('self', input), a.ints('kernel_size', k), a.ints('stride', attrInts(x.node, 'strides') ?? k.map(() => 1)), a.ints('padding', padding),
      a.ints('dilation', attrInts(x.node, 'dilations') ?? k.map(() => 1)), a.bool('ceil_mode', attrInt(x.node, 'ceil_mode', 0) === 1),
    ], [x.out(), undefined], [m, { dtype: 'int64', shape: m.shape }]);
  },
  AveragePool: (x) => {
    const k = attrInts(x.node, 'kernel_shape') ?? x.fail('kernel_shape');
    if (k.length !== 2) x.fail('a 2-D AveragePool');
    const includePad = attrInt(x.node, 'count_include_pad', 0) === 1;
    const { input, padding } = paddedInput(x, k, includePad ? 0 : undefined);
    x.call('aten.avg_pool2d.default', [
      a.tensor('self', input), a.ints('kernel_size', k), a.ints('stride', attrInts(x.node, 'strides') ?? k.map(() => 1)), a.ints('padding', padding),
      a.bool('ceil_mode', attrInt(x.node, 'ceil_mode', 0) === 1), a.bool('count_include_pad', attrInt(x.node, 'count_include_pad', 0) === 1),
    ], [x.out()]);
  },
  GlobalAveragePool: (x) => {
    const rank = x.inMeta(0).shape.length;
    x.call('aten.mean.dim', [a.tensor('self', x.input(0)), a.ints('dim', [...Array(rank - 2).keys()].map((i) => i + 2)), a.bool('keepdim', true)], [x.out()]);
  },
  GlobalMaxPool: (x) => {
    const rank = x.inMeta(0).shape.length;
    x.call('aten.amax.default', [a.tensor('self', x.input(0)), a.ints('dim', [...Array(rank - 2).keys()].map((i) => i + 2)), a.bool('keepdim', true)], [x.out()]);
  },
  BatchNormalization: (x) => {
    if (x.node.outputs.slice(1).some((o) => o !== '')) x.fail('BatchNormalization in inference form (one output)');
    x.call('aten._native_batch_norm_legit_no_training.default', [
      a.tensor('input', x.input(0)), a.tensor('weight', x.input(1)), a.tensor('bias', x.input(2)), a.tensor('running_mean', x.input(3)), a.tensor('running_var', x.input(4)),
      a.float('momentum', 0.1), a.float('eps', attrFloat(x.node, 'epsilon', 1e-5)),
    ], [x.out(), undefined, undefined], [x.outMeta(), { dtype: x.outMeta().dtype, shape: [0] }, { dtype: x.outMeta().dtype, shape: [0] }]);
  },
  LayerNormalization: (x) => {
    const shape = x.inMeta(0).shape;
    const axis = norm(attrInt(x.node, 'axis', -1), shape.length);
    const normalized = shape.slice(axis);
    if (normalized.some((d) => typeof d !== 'number')) x.fail('static normalized sizes');
    if (x.node.outputs.slice(1).some((o) => o !== '')) x.fail('LayerNormalization without its Mean and InvStdDev outputs');
    const stat: ValueMeta = { dtype: x.outMeta().dtype, shape: shape.map((d, i) => (i < axis ? d : 1)) };
    x.call('aten.native_layer_norm.default', [
      a.tensor('input', x.input(0)), a.ints('normalized_shape', normalized as number[]), a.tensor('weight', x.input(1)), x.has(2) ? a.tensor('bias', x.input(2)) : a.none('bias'),
      a.float('eps', attrFloat(x.node, 'epsilon', 1e-5)),
    ], [x.out(), undefined, undefined], [x.outMeta(), stat, stat]);
  },
  Reshape: reshapeToOutput,
  Flatten: reshapeToOutput,
  Squeeze: reshapeToOutput,
  Unsqueeze: reshapeToOutput,
  Transpose: (x) => {
    const rank = x.inMeta(0).shape.length;
    const perm = attrInts(x.node, 'perm') ?? [...Array(rank).keys()].reverse();
    x.call('aten.permute.default', [a.tensor('self', x.input(0)), a.ints('dims', perm)], [x.out()]);
  },
  Concat: (x) => void x.call('aten.cat.default', [a.tensors('tensors', x.node.inputs.map((_, i) => x.input(i))), a.int('dim', attrInt(x.node, 'axis', 0))], [x.out()]),
  Cast: (x) => void x.call('aten._to_copy.default', [a.tensor('self', x.input(0)), a.dtype('dtype', x.outMeta().dtype)], [x.out()]),
  Clip: (x) => {
    const lo = constScalar(x, 1, 'min');
    const hi = constScalar(x, 2, 'max');
    const legacyMin = x.node.attributes['min'] ? attrFloat(x.node, 'min', -Infinity) : undefined;
    const legacyMax = x.node.attributes['max'] ? attrFloat(x.node, 'max', Infinity) : undefined;
    const min = lo ?? legacyMin;
    const max = hi ?? legacyMax;
    const scalar = (name: string, v: number | undefined) => (v === undefined ? a.none(name) : isFloat(x.outMeta().dtype) ? a.float(name, v) : a.int(name, v));
    x.call('aten.clamp.default', [a.tensor('self', x.input(0)), scalar('min', min), scalar('max', max)], [x.out()]);
  },
  ReduceMean: reduce('aten.mean.dim'),
  ReduceSum: reduce('aten.sum.dim_IntList'),
  ReduceMax: reduce('aten.amax.default'),
  ReduceMin: reduce('aten.amin.default'),
  Gather: (x) => {
    const rank = x.inMeta(0).shape.length;
    const axis = norm(attrInt(x.node, 'axis', 0), rank);
    const indices = x.inMeta(1);
    const c = x.constant(1);
    if (indices.shape.length === 0 && c) return void x.call('aten.select.int', [a.tensor('self', x.input(0)), a.int('dim', axis), a.int('index', c[0]!)], [x.out()]);
    // ONNX Gather takes negative indices as from the end, as torch's indexing does.
    x.call('aten.index.Tensor', [a.tensor('self', x.input(0)), a.optionalTensors('indices', [...new Array<undefined>(axis).fill(undefined), x.input(1)])], [x.out()]);
  },
  GatherElements: (x) => void x.call('aten.gather.default', [a.tensor('self', x.input(0)), a.int('dim', attrInt(x.node, 'axis', 0)), a.tensor('index', x.input(1))], [x.out()]),
  ArgMax: (x) => argReduce(x, 'aten.argmax.default'),
  ArgMin: (x) => argReduce(x, 'aten.argmin.default'),
  Split: (x) => {
    const m = x.inMeta(0);
    const axis = norm(attrInt(x.node, 'axis', 0), m.shape.length);
    // The parts' sizes are their probed sizes along the axis (the split input, attribute or
    // num_outputs all come to that).
    const metas = x.node.outputs.map((o, i) => (o === '' ? undefined : x.outMeta(i)));
    const sizes = metas.map((mm) => (mm ? mm.shape[axis] : undefined));
    if (sizes.some((d) => typeof d !== 'number')) x.fail('outputs of static size along the split axis');
    const outs = x.node.outputs.map((o, i) => (o === '' ? undefined : x.out(i)));
    x.call('aten.split_with_sizes.default', [a.tensor('self', x.input(0)), a.ints('split_sizes', sizes as number[]), a.int('dim', axis)], outs, metas.map((mm, i) => mm ?? { dtype: m.dtype, shape: m.shape.map((d, k) => (k === axis ? (sizes[i] as number) : d)) }));
  },
  GatherND: (x) => {
    if (attrInt(x.node, 'batch_dims', 0) !== 0) x.fail('GatherND with batch_dims 0');
    const im = x.inMeta(1);
    const k = im.shape[im.shape.length - 1];
    if (typeof k !== 'number') x.fail('a static index depth');
    // indices[..., j] index dimension j: torch's advanced indexing with k index tensors.
    const parts = Array.from({ length: k as number }, (_, j) => x.call('aten.select.int', [a.tensor('self', x.input(1)), a.int('dim', -1), a.int('index', j)], [undefined], [{ dtype: im.dtype, shape: im.shape.slice(0, -1), ...(im.hints ? { hints: im.hints.slice(0, -1) } : {}) }])[0]!);
    x.call('aten.index.Tensor', [a.tensor('self', x.input(0)), a.optionalTensors('indices', parts)], [x.out()]);
  },
  Slice: (x) => {
    const rank = x.inMeta(0).shape.length;
    const starts = x.constant(1) ?? x.fail('constant starts');
    const ends = x.constant(2) ?? x.fail('constant ends');
    const axes = x.has(3) ? (x.constant(3) ?? x.fail('constant axes')).map((d) => norm(d, rank)) : starts.map((_, i) => i);
    const steps = x.has(4) ? x.constant(4) ?? x.fail('constant steps') : starts.map(() => 1);
    if (steps.some((s) => s < 0)) {
      // torch slices cannot step backwards; a whole dimension reversed is aten.flip.
      const shape = x.inMeta(0).shape;
      const whole = axes.every((axis, k) => {
        const size = shape[axis];
        return steps[k] === -1 && (starts[k]! === -1 || (typeof size === 'number' && starts[k]! >= size - 1)) && (typeof size === 'number' ? ends[k]! <= -size - 1 : ends[k]! <= -(2 ** 31));
      });
      if (!whole) x.fail('positive steps, or a whole dimension reversed (torch slices cannot step backwards)');
      return void x.call('aten.flip.default', [a.tensor('self', x.input(0)), a.ints('dims', axes)], [x.out()]);
    }
    if (steps.some((s) => s === 0)) x.fail('non-zero steps');
    let value = x.input(0);
    let shape = [...x.inMeta(0).shape];
    axes.forEach((axis, k) => {
      const last = k === axes.length - 1;
      const size = shape[axis];
      if (!last) {
        // Intermediate sizes are only needed for the metadata; a symbolic one stays symbolic.
        if (typeof size === 'number') {
          const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + size : v, 0), size);
          shape = shape.map((d, i) => (i === axis ? Math.max(0, Math.ceil((clamp(ends[k]!) - clamp(starts[k]!)) / steps[k]!)) : d));
        }
      }
      const big = (v: number) => (v >= 2 ** 53 - 1 ? Number.MAX_SAFE_INTEGER : v <= -(2 ** 53 - 1) ? -Number.MAX_SAFE_INTEGER : v);
      value = x.call('aten.slice.Tensor', [a.tensor('self', value), a.int('dim', axis), a.int('start', big(starts[k]!)), a.int('end', big(ends[k]!)), a.int('step', steps[k]!)], [last ? x.out() : undefined], [last ? x.outMeta() : { dtype: x.outMeta().dtype, shape }])[0]!;
    });
  },
  Pad: (x) => {
    const mode = attrString(x.node, 'mode', 'constant');
    if (mode !== 'constant') x.fail(`constant padding, not ${mode}`);
    const rank = x.inMeta(0).shape.length;
    const pads = attrInts(x.node, 'pads') ?? x.constant(1) ?? x.fail('constant pads');
    if (x.has(3)) x.fail('Pad over all axes (the axes input is not mapped)');
    const value = x.has(2) ? constScalar(x, 2, 'pad value') ?? 0 : attrFloat(x.node, 'value', 0);
    // torch lists (begin, end) pairs from the last dimension backwards.
    const torchPads: number[] = [];
    for (let d = rank - 1; d >= 0; d--) torchPads.push(pads[d]!, pads[d + rank]!);
    while (torchPads.length > 2 && torchPads[torchPads.length - 1] === 0 && torchPads[torchPads.length - 2] === 0) torchPads.length -= 2;
    x.call('aten.constant_pad_nd.default', [a.tensor('self', x.input(0)), a.ints('pad', torchPads), a.float('value', value)], [x.out()]);
  },
  Expand: (x) => {
    const out = x.outMeta().shape;
    const input = x.inMeta(0).shape;
    // Sizes the input keeps are -1, so a symbolic one needs no SymInt.
    const sizes = out.map((d, i) => {
      const j = i - (out.length - input.length);
      return j >= 0 && input[j] === d ? -1 : typeof d === 'number' ? d : x.fail('an expand whose symbolic sizes come from its input');
    });
    x.call('aten.expand.default', [a.tensor('self', x.input(0)), a.ints('size', sizes)], [x.out()]);
  },
  Dropout: (x) => {
    if (x.node.outputs.length > 1 && x.node.outputs[1]) x.fail('Dropout without its mask output');
    unary('clone')(x);
  },
};

function transposed(m: ValueMeta): ValueMeta {
  return { dtype: m.dtype, shape: [...m.shape].reverse() };
}
