import type { DType } from '../../core/dtypes.js';
import { attr, type Attribute } from '../../core/graph.js';
import type { Tensor } from '../../core/tensor.js';
import { dtypeToOnnxCode } from '../onnx/dtypes.js';
import type { FbTable, TflOperator, TflSubgraph, TflTensor } from './file.js';
import {
  ActivationFunctionType,
  AddOptions,
  BatchMatMulOptions,
  BuiltinOperator,
  ConcatenationOptions,
  Conv2DOptions,
  DepthwiseConv2DOptions,
  DivOptions,
  FullyConnectedOptions,
  GatherOptions,
  GeluOptions,
  LeakyReluOptions,
  MulOptions,
  PackOptions,
  Padding,
  Pool2DOptions,
  ReducerOptions,
  ReshapeOptions,
  SoftmaxOptions,
  SplitOptions,
  SqueezeOptions,
  StridedSliceOptions,
  SubOptions,
  UnpackOptions,
} from './schema/index.js';
import { unidirectionalSequenceLstm } from './lstm.js';
import { unidirectionalSequenceRnn } from './sequence-rnn.js';
import { whileLoop } from './while.js';

/**
 * TFLite builtin operators -> the IR (ONNX semantics, opset 17). ONE table, TFLITE_OPS: each
 * entry builds the IR nodes of one operator from its input values and options and returns the IR
 * values of its outputs. Layout: TFLite is NHWC like TensorFlow, so convolutions and pools are
 * the NCHW IR op between a Transpose in and a Transpose out, as the TensorFlow importer does
 * (src/formats/tf/ops.ts; adjacent pairs cancel in its simplify pass), and constant filters
 * (OHWI for CONV_2D, 1HWO for DEPTHWISE_CONV_2D) are transposed to OIHW once. Fused activations
 * follow the op as their own nodes. Quantization is handled around the table (reader.ts): every
 * value a builder sees is float (dequantized), and quantized outputs are rounded to their grid
 * after it. Shape-like inputs (axes, perms, paddings, new shapes) must be constants.
 */

export interface OpContext {
  readonly op: TflOperator;
  /** Number of inputs (optional ones included, as -1 in the file). */
  readonly arity: number;
  /** Whether input i is present. */
  has(i: number): boolean;
  /** The IR value of input i (float for quantized tensors). */
  input(i: number): string;
  /** The TFLite tensor of input i / output k. */
  tensor(i: number): TflTensor;
  outTensor(k: number): TflTensor;
  /** The IR dtype of input i's value. */
  dtype(i: number): DType;
  /** Input i's value when it is a constant. */
  constant(i: number): Tensor | undefined;
  /** Input i as a list of integers; it must be a constant. */
  ints(i: number, what: string): number[];
  /** A constant input transposed once (a new weight), or a Transpose node when it is computed. */
  permutedInput(i: number, perm: readonly number[]): string;
  /** An IR node; returns its (fresh) output value. */
  node(op: string, inputs: readonly string[], attributes?: Record<string, Attribute>, outputs?: number): string[];
  constInts(values: readonly number[], shape?: readonly number[]): string;
  scalar(value: number, dtype: DType): string;
  /** Subgraph i of the file (a WHILE's cond and body). */
  subgraph(index: number): TflSubgraph;
  /** The constant value of a tensor of another subgraph, if it has data. */
  subgraphConstant(subgraph: number, tensor: number): Tensor | undefined;
  /** A new weight computed at read time (an LSTM's stacked gate matrices); returns its value name. */
  weight(base: string, value: Tensor): string;
  /** The options table, when the operator carries the one expected. */
  options<T extends FbTable>(member: number, Ctor: new () => T): T | null;
  fail(expected: string): never;
}

/** IR values of the operator's outputs, in order. */
export type OpBuilder = (ctx: OpContext) => string[];

const one = (ctx: OpContext, op: string, inputs: readonly string[], attributes: Record<string, Attribute> = {}): string => ctx.node(op, inputs, attributes)[0]!;

/** A fused activation after the op's result. */
export function activation(ctx: OpContext, x: string, code: number): string {
  const clip = (lo: number, hi: number) => one(ctx, 'Clip', [x, ctx.scalar(lo, 'float32'), ctx.scalar(hi, 'float32')]);
  switch (code) {
    case ActivationFunctionType.NONE:
      return x;
    case ActivationFunctionType.RELU:
      return one(ctx, 'Relu', [x]);
    case ActivationFunctionType.RELU_N1_TO_1:
      return clip(-1, 1);
    case ActivationFunctionType.RELU6:
      return clip(0, 6);
    case ActivationFunctionType.TANH:
      return one(ctx, 'Tanh', [x]);
    default:
      return ctx.fail(`a fused activation NONE, RELU, RELU_N1_TO_1, RELU6 or TANH, not code ${code}`);
  }
}

const unary =
  (op: string, attributes: Record<string, Attribute> = {}): OpBuilder =>
  (ctx) => [one(ctx, op, [ctx.input(0)], attributes)];

/** ADD, SUB, MUL, DIV and their fused activation (options tables differ per op). */
function binary(op: string, member: number, Ctor: new () => FbTable & { fusedActivationFunction(): number }): OpBuilder {
  return (ctx) => {
    const o = ctx.options(member, Ctor);
    return [activation(ctx, one(ctx, op, [ctx.input(0), ctx.input(1)]), o?.fusedActivationFunction() ?? 0)];
  };
}

const toNchw = (ctx: OpContext, x: string) => one(ctx, 'Transpose', [x], { perm: attr.ints([0, 3, 1, 2]) });
const toNhwc = (ctx: OpContext, x: string) => one(ctx, 'Transpose', [x], { perm: attr.ints([0, 2, 3, 1]) });

function padding(ctx: OpContext, code: number): Record<string, Attribute> {
  if (code === Padding.SAME) return { auto_pad: attr.string('SAME_UPPER') };
  if (code === Padding.VALID) return {};
  return ctx.fail(`padding SAME or VALID, not code ${code}`);
}

function positive(ctx: OpContext, values: readonly number[], what: string): number[] {
  if (values.some((v) => !Number.isSafeInteger(v) || v < 1)) ctx.fail(`${what} of positive integers, not [${values}]`);
  return [...values];
}

const conv2d: OpBuilder = (ctx) => {
  const o = ctx.options(1, Conv2DOptions);
  if (!o) return ctx.fail('Conv2DOptions');
  const filter = ctx.tensor(1);
  if (filter.shape.length !== 4) ctx.fail(`a 4-D filter [out, h, w, in], not [${filter.shape}]`);
  const attributes: Record<string, Attribute> = {
    strides: attr.ints(positive(ctx, [o.strideH(), o.strideW()], 'strides')),
    dilations: attr.ints(positive(ctx, [o.dilationHFactor(), o.dilationWFactor()], 'dilations')),
    ...padding(ctx, o.padding()),
  };
  const channels = ctx.tensor(0).shape[3];
  const perGroup = filter.shape[3]!;
  if (channels !== undefined && channels > 0 && channels !== perGroup) {
    if (channels % perGroup !== 0) ctx.fail(`input channels (${channels}) a multiple of the filter's (${perGroup})`);
    attributes['group'] = attr.int(channels / perGroup);
  }
  const w = ctx.permutedInput(1, [0, 3, 1, 2]);
  const inputs = [toNchw(ctx, ctx.input(0)), w, ...(ctx.has(2) ? [ctx.input(2)] : [])];
  return [activation(ctx, toNhwc(ctx, one(ctx, 'Conv', inputs, attributes)), o.fusedActivationFunction())];
};

const depthwiseConv2d: OpBuilder = (ctx) => {
  const o = ctx.options(2, DepthwiseConv2DOptions);
  if (!o) return ctx.fail('DepthwiseConv2DOptions');
  const filter = ctx.tensor(1);
  if (filter.shape.length !== 4 || filter.shape[0] !== 1) ctx.fail(`a 4-D filter [1, h, w, channels x multiplier], not [${filter.shape}]`);
  const outChannels = filter.shape[3]!;
  const channels = ctx.tensor(0).shape[3];
  const multiplier = o.depthMultiplier();
  // TFLite's kernels take the channel count from the input; depth_multiplier is redundant in newer files.
  const group = channels !== undefined && channels > 0 ? channels : multiplier > 0 ? outChannels / multiplier : NaN;
  if (!Number.isInteger(group) || group < 1 || outChannels % group !== 0) ctx.fail(`output channels (${outChannels}) a multiple of the input's (${channels})`);
  const attributes: Record<string, Attribute> = {
    strides: attr.ints(positive(ctx, [o.strideH(), o.strideW()], 'strides')),
    dilations: attr.ints(positive(ctx, [o.dilationHFactor(), o.dilationWFactor()], 'dilations')),
    group: attr.int(group),
    ...padding(ctx, o.padding()),
  };
  // [1, h, w, C*M] -> [C*M, 1, h, w]: ONNX's grouped filter, output channel c*M+m reading input c, as in TFLite.
  const w = ctx.permutedInput(1, [3, 0, 1, 2]);
  const inputs = [toNchw(ctx, ctx.input(0)), w, ...(ctx.has(2) ? [ctx.input(2)] : [])];
  return [activation(ctx, toNhwc(ctx, one(ctx, 'Conv', inputs, attributes)), o.fusedActivationFunction())];
};

function pool(op: 'MaxPool' | 'AveragePool'): OpBuilder {
  return (ctx) => {
    const o = ctx.options(5, Pool2DOptions);
    if (!o) return ctx.fail('Pool2DOptions');
    const attributes: Record<string, Attribute> = {
      kernel_shape: attr.ints(positive(ctx, [o.filterHeight(), o.filterWidth()], 'filter size')),
      strides: attr.ints(positive(ctx, [o.strideH(), o.strideW()], 'strides')),
      ...padding(ctx, o.padding()),
    };
    return [activation(ctx, toNhwc(ctx, one(ctx, op, [toNchw(ctx, ctx.input(0))], attributes)), o.fusedActivationFunction())];
  };
}

/**
 * FULLY_CONNECTED: y = x W^T + b with W [units, k]. The input is flattened to [-1, k] (TFLite's
 * rule); the result takes the output tensor's shape (keep_num_dims keeps the leading axes).
 */
const fullyConnected: OpBuilder = (ctx) => {
  const o = ctx.options(8, FullyConnectedOptions);
  const w = ctx.tensor(1);
  if (w.shape.length !== 2) ctx.fail(`2-D weights [units, k], not [${w.shape}]`);
  if (o && o.weightsFormat() !== 0) ctx.fail('weights_format DEFAULT (shuffled int8 weights are not read)');
  const [units, k] = w.shape as [number, number];
  const x = ctx.tensor(0);
  let input = ctx.input(0);
  if (x.shape.length !== 2 || x.shape[1] !== k) input = one(ctx, 'Reshape', [input, ctx.constInts([-1, k])]);
  const bias = ctx.has(2) ? [ctx.input(2)] : [];
  let y = one(ctx, 'Gemm', [input, ctx.input(1), ...bias], { transB: attr.int(1) });
  const out = ctx.outTensor(0);
  if (out.shape.length !== 2) y = one(ctx, 'Reshape', [y, ctx.constInts(dynamicShape(out))]);
  else if (out.shape[1] !== units) ctx.fail(`an output of ${units} units, not [${out.shape}]`);
  return [activation(ctx, y, o?.fusedActivationFunction() ?? 0)];
};

/** A tensor's shape for Reshape: its one size unknown until run time (shape_signature -1) as -1. */
function dynamicShape(t: TflTensor): number[] {
  return t.shape.map((d, i) => (t.signature && t.signature[i] === -1 ? -1 : d));
}

const reshape: OpBuilder = (ctx) => {
  let shape: number[];
  if (ctx.has(1) && ctx.constant(1)) shape = ctx.ints(1, 'shape');
  else {
    const o = ctx.options(17, ReshapeOptions);
    const fromOptions = o?.newShapeArray();
    shape = fromOptions && fromOptions.length ? Array.from(fromOptions) : dynamicShape(ctx.outTensor(0));
  }
  // TFLite's 0 is a real zero size; ONNX copies the input's size for 0 unless allowzero.
  const attributes: Record<string, Attribute> = shape.includes(0) ? { allowzero: attr.int(1) } : {};
  return [one(ctx, 'Reshape', [ctx.input(0), ctx.constInts(shape)], attributes)];
};

const softmax: OpBuilder = (ctx) => {
  const beta = ctx.options(9, SoftmaxOptions)?.beta() ?? 1;
  const x = beta === 1 ? ctx.input(0) : one(ctx, 'Mul', [ctx.input(0), ctx.scalar(beta, 'float32')]);
  return [one(ctx, 'Softmax', [x], { axis: attr.int(-1) })];
};

const concatenation: OpBuilder = (ctx) => {
  const o = ctx.options(10, ConcatenationOptions);
  const inputs = Array.from({ length: ctx.arity }, (_, i) => ctx.input(i));
  return [activation(ctx, one(ctx, 'Concat', inputs, { axis: attr.int(o?.axis() ?? 0) }), o?.fusedActivationFunction() ?? 0)];
};

function reduce(op: string, axesAsInput: boolean): OpBuilder {
  return (ctx) => {
    const keep = ctx.options(27, ReducerOptions)?.keepDims() ?? false;
    const axes = ctx.ints(1, 'axes');
    const attributes = { keepdims: attr.int(keep ? 1 : 0) };
    // An empty axis list reduces nothing in TFLite; ONNX would reduce every axis.
    if (axes.length === 0) return [one(ctx, 'Identity', [ctx.input(0)])];
    if (axesAsInput) return [one(ctx, op, [ctx.input(0), ctx.constInts(axes)], attributes)];
    return [one(ctx, op, [ctx.input(0)], { ...attributes, axes: attr.ints(axes) })];
  };
}

const pad: OpBuilder = (ctx) => {
  const p = ctx.ints(1, 'paddings');
  if (p.length % 2 !== 0) ctx.fail('paddings of shape [rank, 2]');
  const rank = p.length / 2;
  const pads = [...Array.from({ length: rank }, (_, i) => p[2 * i]!), ...Array.from({ length: rank }, (_, i) => p[2 * i + 1]!)];
  const value = ctx.has(2) ? [ctx.input(2)] : [];
  return [one(ctx, 'Pad', [ctx.input(0), ctx.constInts(pads), ...value])];
};

const batchMatMul: OpBuilder = (ctx) => {
  const o = ctx.options(101, BatchMatMulOptions);
  const operand = (i: number, adjoint: boolean) => {
    const v = ctx.input(i);
    if (!adjoint) return v;
    const rank = ctx.tensor(i).shape.length;
    if (rank < 2) ctx.fail(`a rank of 2 or more for input ${i} (adj transposes its last two axes)`);
    return one(ctx, 'Transpose', [v], { perm: attr.ints([...Array(rank - 2).keys(), rank - 1, rank - 2]) });
  };
  return [one(ctx, 'MatMul', [operand(0, o?.adjX() ?? false), operand(1, o?.adjY() ?? false)])];
};

const gather: OpBuilder = (ctx) => {
  const o = ctx.options(23, GatherOptions);
  if ((o?.batchDims() ?? 0) !== 0) ctx.fail(`batch_dims 0, not ${o!.batchDims()}`);
  return [one(ctx, 'Gather', [ctx.input(0), ctx.input(1)], { axis: attr.int(o?.axis() ?? 0) })];
};

const transpose: OpBuilder = (ctx) => [one(ctx, 'Transpose', [ctx.input(0)], { perm: attr.ints(ctx.ints(1, 'perm')) })];

const squeeze: OpBuilder = (ctx) => {
  const dims = ctx.options(30, SqueezeOptions)?.squeezeDimsArray();
  return [one(ctx, 'Squeeze', dims && dims.length ? [ctx.input(0), ctx.constInts(Array.from(dims))] : [ctx.input(0)])];
};

const expandDims: OpBuilder = (ctx) => [one(ctx, 'Unsqueeze', [ctx.input(0), ctx.constInts(ctx.ints(1, 'axis'))])];

const INT64_MAX = Number.MAX_SAFE_INTEGER;

const slice: OpBuilder = (ctx) => {
  const begin = ctx.ints(1, 'begin');
  const size = ctx.ints(2, 'size');
  if (begin.length !== size.length) ctx.fail('begin and size of one length');
  const ends = begin.map((b, i) => (size[i] === -1 ? INT64_MAX : b + size[i]!));
  return [one(ctx, 'Slice', [ctx.input(0), ctx.constInts(begin), ctx.constInts(ends), ctx.constInts(begin.map((_, i) => i))])];
};

/** STRIDED_SLICE with begin/end masks and shrink_axis_mask; ellipsis and new-axis masks are refused. */
const stridedSlice: OpBuilder = (ctx) => {
  const o = ctx.options(32, StridedSliceOptions);
  if (o && (o.ellipsisMask() !== 0 || o.newAxisMask() !== 0 || o.offset())) ctx.fail('ellipsis_mask 0, new_axis_mask 0 and offset false');
  const begin = ctx.ints(1, 'begin');
  const end = ctx.ints(2, 'end');
  const strides = ctx.has(3) ? ctx.ints(3, 'strides') : begin.map(() => 1);
  if (end.length !== begin.length || strides.length !== begin.length) ctx.fail('begin, end and strides of one length');
  const bm = o?.beginMask() ?? 0;
  const em = o?.endMask() ?? 0;
  const shrink = o?.shrinkAxisMask() ?? 0;
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i < begin.length; i++) {
    const s = strides[i]!;
    if (s === 0) ctx.fail('non-zero strides');
    const far = s > 0 ? INT64_MAX : -INT64_MAX;
    starts.push(bm & (1 << i) ? (s > 0 ? 0 : INT64_MAX) : begin[i]!);
    if (shrink & (1 << i)) ends.push(begin[i]! === -1 ? INT64_MAX : begin[i]! + 1);
    else ends.push(em & (1 << i) ? far : end[i]!);
  }
  const axes = begin.map((_, i) => i);
  let y = one(ctx, 'Slice', [ctx.input(0), ctx.constInts(starts), ctx.constInts(ends), ctx.constInts(axes), ctx.constInts(strides)]);
  const shrunk = axes.filter((i) => shrink & (1 << i));
  if (shrunk.length) y = one(ctx, 'Squeeze', [y, ctx.constInts(shrunk)]);
  return [y];
};

const pack: OpBuilder = (ctx) => {
  const axis = ctx.options(59, PackOptions)?.axis() ?? 0;
  const parts = Array.from({ length: ctx.arity }, (_, i) => one(ctx, 'Unsqueeze', [ctx.input(i), ctx.constInts([axis])]));
  return [one(ctx, 'Concat', parts, { axis: attr.int(axis) })];
};

const split: OpBuilder = (ctx) => {
  const axis = ctx.ints(0, 'axis');
  const n = ctx.options(35, SplitOptions)?.numSplits() ?? ctx.op.outputs.length;
  if (n !== ctx.op.outputs.length) ctx.fail(`num_splits equal to the ${ctx.op.outputs.length} outputs`);
  return ctx.node('Split', [ctx.input(1)], { axis: attr.int(axis[0] ?? 0) }, n);
};

/** UNPACK: ONNX Split into `num` equal parts along the axis, each part's axis squeezed out. */
const unpack: OpBuilder = (ctx) => {
  const o = ctx.options(64, UnpackOptions);
  const n = ctx.op.outputs.length;
  if (o && o.num() !== n) ctx.fail(`num equal to the ${n} outputs, not ${o.num()}`);
  const axis = o?.axis() ?? 0;
  return ctx.node('Split', [ctx.input(0)], { axis: attr.int(axis) }, n).map((part) => one(ctx, 'Squeeze', [part, ctx.constInts([axis])]));
};

// The end of a reversing Slice: clamped to "before the first element" for any value below -size.
const INT32_MIN = -2147483648;

/**
 * REVERSE_V2 (the converter flips a Keras Bidirectional layer's backward sequence with it): a
 * Slice with step -1 along each axis, from the last element past the first, as
 * src/formats/tf/rnn.ts reads TensorFlow's ReverseV2.
 */
const reverseV2: OpBuilder = (ctx) => {
  const axes = ctx.ints(1, 'axes');
  if (axes.length === 0) return [one(ctx, 'Identity', [ctx.input(0)])];
  const n = axes.length;
  return [one(ctx, 'Slice', [ctx.input(0), ctx.constInts(new Array<number>(n).fill(-1)), ctx.constInts(new Array<number>(n).fill(INT32_MIN)), ctx.constInts(axes), ctx.constInts(new Array<number>(n).fill(-1))])];
};

const cast: OpBuilder = (ctx) => {
  const to = dtypeToOnnxCode(dtypeOfTensor(ctx, ctx.outTensor(0)));
  return [one(ctx, 'Cast', [ctx.input(0)], { to: attr.int(to!) })];
};

/** GELU without Gelu (opset 20): 0.5 x (1 + erf(x / sqrt 2)), or the tanh approximation. */
const gelu: OpBuilder = (ctx) => {
  const x = ctx.input(0);
  const approximate = ctx.options(116, GeluOptions)?.approximate() ?? false;
  const f = (v: number) => ctx.scalar(v, 'float32');
  let inner: string;
  if (approximate) {
    const cube = one(ctx, 'Mul', [one(ctx, 'Mul', [x, x]), x]);
    const arg = one(ctx, 'Mul', [one(ctx, 'Add', [x, one(ctx, 'Mul', [cube, f(0.044715)])]), f(Math.sqrt(2 / Math.PI))]);
    inner = one(ctx, 'Tanh', [arg]);
  } else {
    inner = one(ctx, 'Erf', [one(ctx, 'Mul', [x, f(Math.SQRT1_2)])]);
  }
  return [one(ctx, 'Mul', [one(ctx, 'Mul', [x, f(0.5)]), one(ctx, 'Add', [inner, f(1)])])];
};

const passThrough: OpBuilder = (ctx) => [ctx.input(0)];

/**
 * DEQUANTIZE: a float16 weight widens to float32; an int8 value is already float here (the
 * reader dequantizes constants and keeps quantized activations as their float values).
 */
const dequantize: OpBuilder = (ctx) => {
  const dtype = ctx.dtype(0);
  if (dtype === 'float16' || dtype === 'bfloat16') return [one(ctx, 'Cast', [ctx.input(0)], { to: attr.int(dtypeToOnnxCode('float32')!) })];
  return [ctx.input(0)];
};

export function dtypeOfTensor(ctx: Pick<OpContext, 'fail'>, t: TflTensor): DType {
  const d = TENSOR_DTYPES[t.type];
  if (!d) return ctx.fail(`tensor ${t.name}: a numeric tensor type, not ${TENSOR_TYPE_NAMES[t.type] ?? `code ${t.type}`}`);
  return d;
}

/** TensorType codes -> modelbridge dtypes (STRING, RESOURCE, VARIANT, INT4 and COMPLEX128 have none here). */
export const TENSOR_DTYPES: Readonly<Record<number, DType>> = {
  0: 'float32', 1: 'float16', 2: 'int32', 3: 'uint8', 4: 'int64', 6: 'bool', 7: 'int16', 8: 'complex64', 9: 'int8', 10: 'float64',
  12: 'uint64', 15: 'uint32', 16: 'uint16', 18: 'bfloat16',
};
export const TENSOR_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'FLOAT32', 1: 'FLOAT16', 2: 'INT32', 3: 'UINT8', 4: 'INT64', 5: 'STRING', 6: 'BOOL', 7: 'INT16', 8: 'COMPLEX64', 9: 'INT8',
  10: 'FLOAT64', 11: 'COMPLEX128', 12: 'UINT64', 13: 'RESOURCE', 14: 'VARIANT', 15: 'UINT32', 16: 'UINT16', 17: 'INT4', 18: 'BFLOAT16',
};

const B = BuiltinOperator;

/** The table: TFLite builtin code -> IR builder. */
export const TFLITE_OPS: ReadonlyMap<number, OpBuilder> = new Map<number, OpBuilder>([
  [B.ADD, binary('Add', 11, AddOptions)],
  [B.SUB, binary('Sub', 28, SubOptions)],
  [B.MUL, binary('Mul', 21, MulOptions)],
  [B.DIV, binary('Div', 29, DivOptions)],
  [B.MAXIMUM, (ctx) => [one(ctx, 'Max', [ctx.input(0), ctx.input(1)])]],
  [B.MINIMUM, (ctx) => [one(ctx, 'Min', [ctx.input(0), ctx.input(1)])]],
  [B.POW, (ctx) => [one(ctx, 'Pow', [ctx.input(0), ctx.input(1)])]],
  [B.SQUARED_DIFFERENCE, (ctx) => {
    const d = one(ctx, 'Sub', [ctx.input(0), ctx.input(1)]);
    return [one(ctx, 'Mul', [d, d])];
  }],
  [B.CONV_2D, conv2d],
  [B.DEPTHWISE_CONV_2D, depthwiseConv2d],
  [B.FULLY_CONNECTED, fullyConnected],
  [B.AVERAGE_POOL_2D, pool('AveragePool')],
  [B.MAX_POOL_2D, pool('MaxPool')],
  [B.MEAN, reduce('ReduceMean', false)],
  [B.SUM, reduce('ReduceSum', true)],
  [B.REDUCE_MAX, reduce('ReduceMax', false)],
  [B.REDUCE_MIN, reduce('ReduceMin', false)],
  [B.REDUCE_PROD, reduce('ReduceProd', false)],
  [B.PAD, pad],
  [B.PADV2, pad],
  [B.RESHAPE, reshape],
  [B.SOFTMAX, softmax],
  [B.LOG_SOFTMAX, unary('LogSoftmax', { axis: attr.int(-1) })],
  [B.LOGISTIC, unary('Sigmoid')],
  [B.TANH, unary('Tanh')],
  [B.RELU, unary('Relu')],
  [B.RELU6, (ctx) => [activation(ctx, ctx.input(0), ActivationFunctionType.RELU6)]],
  [B.RELU_N1_TO_1, (ctx) => [activation(ctx, ctx.input(0), ActivationFunctionType.RELU_N1_TO_1)]],
  [B.RELU_0_TO_1, (ctx) => [one(ctx, 'Clip', [ctx.input(0), ctx.scalar(0, 'float32'), ctx.scalar(1, 'float32')])]],
  [B.HARD_SWISH, unary('HardSwish')],
  [B.LEAKY_RELU, (ctx) => [one(ctx, 'LeakyRelu', [ctx.input(0)], { alpha: attr.float(ctx.options(75, LeakyReluOptions)?.alpha() ?? 0.2) })]],
  [B.ELU, unary('Elu')],
  [B.GELU, gelu],
  [B.EXP, unary('Exp')],
  [B.LOG, unary('Log')],
  [B.SQRT, unary('Sqrt')],
  [B.RSQRT, (ctx) => [one(ctx, 'Reciprocal', [one(ctx, 'Sqrt', [ctx.input(0)])])]],
  [B.ABS, unary('Abs')],
  [B.NEG, unary('Neg')],
  [B.SQUARE, (ctx) => [one(ctx, 'Mul', [ctx.input(0), ctx.input(0)])]],
  [B.FLOOR, unary('Floor')],
  [B.CEIL, unary('Ceil')],
  [B.SIN, unary('Sin')],
  [B.COS, unary('Cos')],
  [B.CONCATENATION, concatenation],
  [B.BATCH_MATMUL, batchMatMul],
  [B.GATHER, gather],
  [B.TRANSPOSE, transpose],
  [B.SQUEEZE, squeeze],
  [B.EXPAND_DIMS, expandDims],
  [B.SLICE, slice],
  [B.STRIDED_SLICE, stridedSlice],
  [B.PACK, pack],
  [B.SPLIT, split],
  [B.UNPACK, unpack],
  [B.REVERSE_V2, reverseV2],
  [B.CAST, cast],
  [B.TILE, (ctx) => [one(ctx, 'Tile', [ctx.input(0), ctx.constInts(ctx.ints(1, 'multiples'))])]],
  [B.BROADCAST_TO, (ctx) => [one(ctx, 'Expand', [ctx.input(0), ctx.constInts(ctx.ints(1, 'shape'))])]],
  [B.SELECT_V2, (ctx) => [one(ctx, 'Where', [ctx.input(0), ctx.input(1), ctx.input(2)])]],
  [B.UNIDIRECTIONAL_SEQUENCE_LSTM, unidirectionalSequenceLstm],
  [B.UNIDIRECTIONAL_SEQUENCE_RNN, unidirectionalSequenceRnn],
  [B.WHILE, whileLoop],
  [B.QUANTIZE, passThrough],
  [B.DEQUANTIZE, dequantize],
]);

/** The name of a builtin code, for messages ("SVDF (27)"); undefined past the schema's enum. */
export function builtinName(code: number): string | undefined {
  const name = (BuiltinOperator as unknown as Record<number, string>)[code];
  return typeof name === 'string' ? name : undefined;
}
