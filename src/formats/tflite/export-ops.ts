import type { Builder, Offset } from 'flatbuffers';
import type { DType } from '../../core/dtypes.js';
import { UsageError } from '../../core/errors.js';
import { attrFloat, attrInt, attrInts, attrString, type Graph, type Node } from '../../core/graph.js';
import { orderedOrThrow } from '../../core/graph-order.js';
import { constantValues } from '../onnx/opset.js';
import { Tensor } from '../../core/tensor.js';
import type { Probe } from './writer.js';
import { permuted } from '../../core/transpose.js';
import {
  ActivationFunctionType,
  AddOptions,
  BatchMatMulOptions,
  BuiltinOperator as B,
  ConcatenationOptions,
  Conv2DOptions,
  DepthwiseConv2DOptions,
  FullyConnectedOptions,
  GatherOptions,
  GeluOptions,
  LeakyReluOptions,
  Padding,
  Pool2DOptions,
  ReducerOptions,
  ReshapeOptions,
  SoftmaxOptions,
  StridedSliceOptions,
  UnidirectionalSequenceLSTMOptions,
} from './schema/index.js';
import { batchIsDynamic, gruExport, lstmUnrolled, rnnExport } from './export-rnn.js';

/**
 * The IR (ONNX semantics) -> TFLite builtin operators. ONE table, TFLITE_EXPORT: each entry emits
 * the TFLite operators of one IR node. TFLite convolutions and pools are NHWC, the IR's NCHW, so
 * they sit between a TRANSPOSE in and a TRANSPOSE out, and filters are transposed once (OIHW ->
 * OHWI, or 1HWO for depthwise); a TRANSPOSE that undoes the one before it is removed afterwards,
 * so a chain of convolutions (and a graph that came from NHWC TensorFlow) stays NHWC inside.
 * Shapes come from one runtime run (writer.ts), so reshaping ops (Reshape, Flatten, Squeeze,
 * Unsqueeze) are a RESHAPE to the shape they produced. An IR op with no entry, or a form of it
 * TFLite cannot express, is refused naming the op and node.
 */

export interface TflTensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
  /** The shape with -1 for sizes that follow an unknown input size. */
  readonly signature?: readonly number[];
  readonly dtype: DType;
  readonly data?: Tensor;
  /** Quantization parameters of an int8 weight (per channel along `axis`). */
  readonly quantization?: { readonly scale: readonly number[]; readonly zeroPoint: readonly number[]; readonly axis: number };
  /** A variable tensor (an LSTM's state), which LiteRT starts at zero and the op updates. */
  readonly variable?: boolean;
}

export interface TflOp {
  readonly code: number;
  readonly inputs: number[];
  readonly outputs: number[];
  readonly options?: { readonly type: number; readonly build: (b: Builder) => Offset };
}

export interface Lowered {
  readonly tensors: readonly TflTensorSpec[];
  readonly ops: readonly TflOp[];
  readonly inputs: readonly number[];
  readonly outputs: readonly number[];
  /** IR value -> tensor index. */
  readonly tensorIndex: ReadonlyMap<string, number>;
}

export interface Ctx {
  readonly node: Node;
  /** Tensor index of IR input i (a constant becomes a buffer). */
  input(i: number): number;
  has(i: number): boolean;
  /** The tensor index for IR output k. */
  output(k: number): number;
  shape(value: string): readonly number[];
  /** The shape with -1 for sizes that follow an unknown input size. */
  signature(value: string): readonly number[];
  dtype(value: string): DType;
  constant(value: string): Tensor | undefined;
  /** Whether a value is all zeros whatever the input sizes (an initializer, or computed from shapes only). */
  zeros(value: string): boolean;
  /** A constant input i (fails when computed). */
  weight(i: number, what: string): Tensor;
  /** Integer values of a constant input. */
  ints(i: number, what: string): number[];
  /** A new constant tensor. */
  constTensor(t: Tensor, name: string): number;
  int32s(values: readonly number[], name: string): number;
  /** A new intermediate tensor (with -1 in `signature` for sizes that follow an unknown input size). */
  temp(shape: readonly number[], dtype: DType, name: string, signature?: readonly number[]): number;
  /** A new variable tensor (no data: LiteRT starts it at zero). */
  variable(shape: readonly number[], dtype: DType, name: string): number;
  /** Whether an IR value is read by a node or is a graph output. */
  used(value: string): boolean;
  emit(code: number, inputs: number[], outputs: number[], options?: TflOp['options']): void;
  /**
   * The fused activation code for this node's output: when its one reader is Relu, Relu6 (Clip
   * 0..6) or Clip -1..1, that node is absorbed and output(0) becomes its output.
   */
  fuseActivation(): number;
  fail(expected: string): never;
}

export type Emitter = (ctx: Ctx) => void;

const opt = (type: number, build: (b: Builder) => Offset): TflOp['options'] => ({ type, build });

const simple =
  (code: number, options?: (ctx: Ctx) => TflOp['options']): Emitter =>
  (ctx) =>
    ctx.emit(code, ctx.node.inputs.map((_, i) => ctx.input(i)), [ctx.output(0)], options?.(ctx));

const NHWC = [0, 2, 3, 1];
const NCHW = [0, 3, 1, 2];
const permute = (shape: readonly number[], perm: readonly number[]) => perm.map((p) => shape[p]!);

/** x (NCHW) as NHWC: a TRANSPOSE into a new tensor. */
function toNhwc(ctx: Ctx, i: number): number {
  const v = ctx.node.inputs[i]!;
  const shape = ctx.shape(v);
  if (shape.length !== 4) ctx.fail(`a 4-D input (2-D convolutions and pools only), not rank ${shape.length}`);
  const out = ctx.temp(permute(shape, NHWC), ctx.dtype(v), `${v}/nhwc`);
  ctx.emit(B.TRANSPOSE, [ctx.input(i), ctx.int32s(NHWC, `${v}/nhwc/perm`)], [out]);
  return out;
}

/** The op's NHWC result, transposed back into IR output 0. */
function fromNhwc(ctx: Ctx): number {
  const v = ctx.node.outputs[0]!;
  const out = ctx.temp(permute(ctx.shape(v), NHWC), ctx.dtype(v), `${v}/nhwc`);
  return out;
}
function finishNhwc(ctx: Ctx, nhwc: number): void {
  const v = ctx.node.outputs[0]!;
  ctx.emit(B.TRANSPOSE, [nhwc, ctx.int32s(NCHW, `${v}/nchw/perm`)], [ctx.output(0)]);
}

/**
 * The padding: SAME when the pads are what TFLite's SAME computes for these sizes, VALID when
 * none; any other pads are a PAD before the op (zeros: convolutions only).
 */
function padding(ctx: Ctx, kernel: readonly number[], strides: readonly number[], dilations: readonly number[], x: number, padValueAllowed: boolean): { code: number; x: number } {
  const node = ctx.node;
  const auto = attrString(node, 'auto_pad', 'NOTSET');
  if (auto === 'SAME_UPPER') return { code: Padding.SAME, x };
  if (auto === 'VALID') return { code: Padding.VALID, x };
  if (auto !== 'NOTSET') ctx.fail(`auto_pad SAME_UPPER, VALID or NOTSET, not ${auto}`);
  const pads = attrInts(node, 'pads') ?? [0, 0, 0, 0];
  if (pads.every((p) => p === 0)) return { code: Padding.VALID, x };
  const input = ctx.shape(node.inputs[0]!);
  const same = [0, 1].flatMap((a) => {
    const size = input[2 + a]!;
    const out = Math.ceil(size / strides[a]!);
    const total = Math.max((out - 1) * strides[a]! + (kernel[a]! - 1) * dilations[a]! + 1 - size, 0);
    return [Math.floor(total / 2), total - Math.floor(total / 2)];
  });
  // pads are [top, left, bottom, right]; `same` is [top, bottom, left, right].
  if (pads[0] === same[0] && pads[2] === same[1] && pads[1] === same[2] && pads[3] === same[3]) return { code: Padding.SAME, x };
  if (!padValueAllowed) ctx.fail(`pads TFLite can express (none, or SAME's [${[same[0], same[2], same[1], same[3]]}]), not [${pads}]`);
  const v = node.inputs[0]!;
  const nhwc = permute(input, NHWC);
  const padded = ctx.temp([nhwc[0]!, nhwc[1]! + pads[0]! + pads[2]!, nhwc[2]! + pads[1]! + pads[3]!, nhwc[3]!], ctx.dtype(v), `${v}/padded`);
  ctx.emit(B.PAD, [x, ctx.constTensor(Tensor.from('int32', [4, 2], [0, 0, pads[0]!, pads[2]!, pads[1]!, pads[3]!, 0, 0]), `${v}/pads`)], [padded]);
  return { code: Padding.VALID, x: padded };
}

const conv: Emitter = (ctx) => {
  const node = ctx.node;
  const w = ctx.weight(1, 'filter');
  if (w.shape.length !== 4) ctx.fail(`a 2-D convolution (4-D filter), not a ${w.shape.length}-D one`);
  const [outC, perGroup, kh, kw] = w.shape as [number, number, number, number];
  const inC = ctx.shape(node.inputs[0]!)[1]!;
  const group = attrInt(node, 'group', 1);
  const strides = attrInts(node, 'strides') ?? [1, 1];
  const dilations = attrInts(node, 'dilations') ?? [1, 1];
  const x0 = toNhwc(ctx, 0);
  const pad = padding(ctx, [kh, kw], strides, dilations, x0, true);
  const bias = ctx.has(2) ? ctx.input(2) : ctx.constTensor(Tensor.from('float32', [outC], new Array<number>(outC).fill(0)), `${node.name}/bias`);
  const act = ctx.fuseActivation();
  const y = fromNhwc(ctx);
  if (group === 1) {
    const filter = ctx.constTensor(permuted(w, [0, 2, 3, 1]), node.inputs[1]!);
    ctx.emit(B.CONV_2D, [pad.x, filter, bias], [y], opt(1, (b) => Conv2DOptions.createConv2DOptions(b, pad.code, strides[1]!, strides[0]!, act, dilations[1]!, dilations[0]!, 0)));
  } else if (group === inC && perGroup === 1) {
    const filter = ctx.constTensor(permuted(w, [1, 2, 3, 0]), node.inputs[1]!);
    ctx.emit(B.DEPTHWISE_CONV_2D, [pad.x, filter, bias], [y], opt(2, (b) => DepthwiseConv2DOptions.createDepthwiseConv2DOptions(b, pad.code, strides[1]!, strides[0]!, outC / inC, act, dilations[1]!, dilations[0]!)));
  } else {
    ctx.fail(`group 1 or one group per input channel (depthwise), not ${group} groups of ${perGroup} channels`);
  }
  finishNhwc(ctx, y);
};

function pool(code: number): Emitter {
  return (ctx) => {
    const node = ctx.node;
    if (attrInt(node, 'ceil_mode', 0) !== 0) ctx.fail('ceil_mode 0');
    const kernel = attrInts(node, 'kernel_shape') ?? ctx.fail('kernel_shape');
    if (kernel.length !== 2) ctx.fail('a 2-D pool');
    const strides = attrInts(node, 'strides') ?? [1, 1];
    const dilations = attrInts(node, 'dilations') ?? [1, 1];
    if (dilations.some((d) => d !== 1)) ctx.fail('dilations 1');
    const x0 = toNhwc(ctx, 0);
    const pad = padding(ctx, kernel, strides, dilations, x0, false);
    // TFLite's SAME average pool divides by the window's in-image cells, ONNX's count_include_pad 0.
    if (code === B.AVERAGE_POOL_2D && pad.code === Padding.SAME && attrInt(node, 'count_include_pad', 0) !== 0) ctx.fail('count_include_pad 0');
    const act = ctx.fuseActivation();
    const y = fromNhwc(ctx);
    ctx.emit(code, [pad.x], [y], opt(5, (b) => Pool2DOptions.createPool2DOptions(b, pad.code, strides[1]!, strides[0]!, kernel[1]!, kernel[0]!, act)));
    finishNhwc(ctx, y);
  };
}

/** Gemm with a constant B: FULLY_CONNECTED (weights [units, k]); else BATCH_MATMUL and ADD. */
const gemm: Emitter = (ctx) => {
  const node = ctx.node;
  if (attrInt(node, 'transA', 0) !== 0) ctx.fail('transA 0');
  if (attrFloat(node, 'alpha', 1) !== 1 || attrFloat(node, 'beta', 1) !== 1) ctx.fail('alpha 1 and beta 1');
  const transB = attrInt(node, 'transB', 0) !== 0;
  const b = ctx.constant(node.inputs[1]!) ?? ctx.fail('a constant B');
  const w = transB ? b : permuted(b, [1, 0]);
  const units = w.shape[0]!;
  let bias = -1;
  if (ctx.has(2)) {
    const c = ctx.constant(node.inputs[2]!);
    if (c && c.shape.length === 1 && c.shape[0] === units) bias = ctx.input(2);
    else if (c && c.size === units && c.shape[c.shape.length - 1] === units) bias = ctx.constTensor(new Tensor(c.dtype, [units], c.source), `${node.inputs[2]}/bias`);
    else ctx.fail(`a bias C of ${units} values`);
  }
  const act = ctx.fuseActivation();
  ctx.emit(B.FULLY_CONNECTED, [ctx.input(0), ctx.constTensor(w, node.inputs[1]!), bias], [ctx.output(0)], fc(false, act));
};

const fc = (keep: boolean, act: number): TflOp['options'] => opt(8, (b) => FullyConnectedOptions.createFullyConnectedOptions(b, act, 0, keep, false, 0));

/** MatMul by a constant 2-D matrix: FULLY_CONNECTED (keeping leading axes); else BATCH_MATMUL. */
const matMul: Emitter = (ctx) => {
  const node = ctx.node;
  const b = ctx.constant(node.inputs[1]!);
  const aRank = ctx.shape(node.inputs[0]!).length;
  if (b && b.shape.length === 2 && aRank >= 2 && b.dtype === 'float32') {
    const act = ctx.fuseActivation();
    ctx.emit(B.FULLY_CONNECTED, [ctx.input(0), ctx.constTensor(permuted(b, [1, 0]), node.inputs[1]!), -1], [ctx.output(0)], fc(aRank > 2, act));
    return;
  }
  ctx.emit(B.BATCH_MATMUL, [ctx.input(0), ctx.input(1)], [ctx.output(0)], opt(101, (bb) => BatchMatMulOptions.createBatchMatMulOptions(bb, false, false, false)));
};

/** Whatever the IR reshaped to, by its shape as the probe run saw it. */
const reshape: Emitter = (ctx) => {
  const v = ctx.node.outputs[0]!;
  const sig = ctx.signature(v);
  // One size following the batch becomes -1; with more, the sizes seen by the probe run are kept.
  const out = sig.filter((d) => d === -1).length === 1 ? sig : ctx.shape(v);
  ctx.emit(B.RESHAPE, [ctx.input(0), ctx.int32s(out, `${ctx.node.outputs[0]}/shape`)], [ctx.output(0)], opt(17, (b) => ReshapeOptions.createReshapeOptions(b, ReshapeOptions.createNewShapeVector(b, [...out]))));
};

const softmax =
  (code: number): Emitter =>
  (ctx) => {
    const node = ctx.node;
    const rank = ctx.shape(node.inputs[0]!).length;
    const axis = attrInt(node, 'axis', -1);
    if ((axis + rank) % rank !== rank - 1) ctx.fail(`softmax over the last axis (${rank - 1}), not axis ${axis}`);
    const options = code === B.SOFTMAX ? opt(9, (b) => SoftmaxOptions.createSoftmaxOptions(b, 1)) : undefined;
    ctx.emit(code, [ctx.input(0)], [ctx.output(0)], options);
  };

/** Clip as RELU6 / RELU_N1_TO_1 / RELU when its bounds are theirs, else MAXIMUM then MINIMUM. */
const clip: Emitter = (ctx) => {
  const node = ctx.node;
  const bound = (i: number, key: string, fallback: number): number => {
    if (ctx.has(i)) {
      const c = ctx.constant(node.inputs[i]!);
      if (!c || c.size !== 1) return ctx.fail(`constant bounds`);
      return c.toNumbers()[0]!;
    }
    return attrFloat(node, key, fallback);
  };
  const lo = bound(1, 'min', -Infinity);
  const hi = bound(2, 'max', Infinity);
  if (lo === 0 && hi === 6) return ctx.emit(B.RELU6, [ctx.input(0)], [ctx.output(0)]);
  if (lo === -1 && hi === 1) return ctx.emit(B.RELU_N1_TO_1, [ctx.input(0)], [ctx.output(0)]);
  if (lo === 0 && hi === Infinity) return ctx.emit(B.RELU, [ctx.input(0)], [ctx.output(0)]);
  const v = node.outputs[0]!;
  const dtype = ctx.dtype(node.inputs[0]!);
  let x = ctx.input(0);
  if (lo !== -Infinity) {
    const t = hi === Infinity ? ctx.output(0) : ctx.temp(ctx.shape(v), dtype, `${v}/max`);
    ctx.emit(B.MAXIMUM, [x, ctx.constTensor(Tensor.from(dtype, [], [lo]), `${v}/min`)], [t]);
    x = t;
  }
  if (hi !== Infinity) ctx.emit(B.MINIMUM, [x, ctx.constTensor(Tensor.from(dtype, [], [hi]), `${v}/max_value`)], [ctx.output(0)]);
  if (lo === -Infinity && hi === Infinity) ctx.fail('a Clip with a bound');
};

/** Reductions: axes from the attribute (or input 1 from opset 18 / ReduceSum 13), as int32. */
function reduce(code: number): Emitter {
  return (ctx) => {
    const node = ctx.node;
    const rank = ctx.shape(node.inputs[0]!).length;
    let axes = attrInts(node, 'axes') ?? (ctx.has(1) ? ctx.ints(1, 'axes') : undefined);
    if (!axes || axes.length === 0) {
      if (attrInt(node, 'noop_with_empty_axes', 0) !== 0) ctx.fail('axes to reduce');
      axes = [...Array(rank).keys()];
    }
    const keep = attrInt(node, 'keepdims', 1) !== 0;
    ctx.emit(code, [ctx.input(0), ctx.int32s(axes.map((a) => (a + rank) % rank), `${node.outputs[0]}/axes`)], [ctx.output(0)], opt(27, (b) => ReducerOptions.createReducerOptions(b, keep)));
  };
}

const globalPool =
  (code: number): Emitter =>
  (ctx) => {
    const rank = ctx.shape(ctx.node.inputs[0]!).length;
    const axes = [...Array(rank - 2).keys()].map((a) => a + 2);
    ctx.emit(code, [ctx.input(0), ctx.int32s(axes, `${ctx.node.outputs[0]}/axes`)], [ctx.output(0)], opt(27, (b) => ReducerOptions.createReducerOptions(b, true)));
  };

/** Inference BatchNormalization with constant statistics: x * scale + offset, per channel (axis 1). */
const batchNorm: Emitter = (ctx) => {
  const node = ctx.node;
  const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => ctx.weight(i, 'constant statistics').toFloat32());
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const c = gamma!.length;
  const scale = new Float32Array(c);
  const offset = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    scale[i] = gamma![i]! / Math.sqrt(variance![i]! + eps);
    offset[i] = beta![i]! - mean![i]! * scale[i]!;
  }
  const rank = ctx.shape(node.inputs[0]!).length;
  const shape = [c, ...new Array<number>(Math.max(rank - 2, 0)).fill(1)];
  const v = node.outputs[0]!;
  const scaled = ctx.temp(ctx.shape(v), 'float32', `${v}/scaled`);
  ctx.emit(B.MUL, [ctx.input(0), ctx.constTensor(Tensor.fromArray('float32', shape, scale), `${node.name}/scale`)], [scaled], opt(21, (b) => noActivation(b, 'Mul')));
  ctx.emit(B.ADD, [scaled, ctx.constTensor(Tensor.fromArray('float32', shape, offset), `${node.name}/offset`)], [ctx.output(0)], opt(11, (b) => AddOptions.createAddOptions(b, ActivationFunctionType.NONE, true)));
};

/** LayerNormalization over the last axes: (x - mean) * rsqrt(var + eps) * scale + bias. */
const layerNorm: Emitter = (ctx) => {
  const node = ctx.node;
  const v = node.outputs[0]!;
  const x = node.inputs[0]!;
  const shape = ctx.shape(x);
  const rank = shape.length;
  const axis = (attrInt(node, 'axis', -1) + rank) % rank;
  const axes = ctx.int32s([...Array(rank - axis).keys()].map((a) => a + axis), `${v}/axes`);
  const reduced = shape.map((d, i) => (i >= axis ? 1 : d));
  const t = (s: readonly number[], n: string) => ctx.temp(s, 'float32', `${v}/${n}`);
  const keep = opt(27, (b) => ReducerOptions.createReducerOptions(b, true));
  const mean = t(reduced, 'mean');
  ctx.emit(B.MEAN, [ctx.input(0), axes], [mean], keep);
  const sq = t(shape, 'sqdiff');
  ctx.emit(B.SQUARED_DIFFERENCE, [ctx.input(0), mean], [sq]);
  const variance = t(reduced, 'var');
  ctx.emit(B.MEAN, [sq, axes], [variance], keep);
  const eps = t(reduced, 'var_eps');
  ctx.emit(B.ADD, [variance, ctx.constTensor(Tensor.from('float32', [], [attrFloat(node, 'epsilon', 1e-5)]), `${v}/epsilon`)], [eps], addOpt());
  const inv = t(reduced, 'rsqrt');
  ctx.emit(B.RSQRT, [eps], [inv]);
  const centred = t(shape, 'centred');
  ctx.emit(B.SUB, [ctx.input(0), mean], [centred], opt(28, (b) => noActivation(b, 'Sub')));
  const normed = t(shape, 'normed');
  ctx.emit(B.MUL, [centred, inv], [normed], opt(21, (b) => noActivation(b, 'Mul')));
  if (!ctx.has(2)) {
    ctx.emit(B.MUL, [normed, ctx.input(1)], [ctx.output(0)], opt(21, (b) => noActivation(b, 'Mul')));
    return;
  }
  const scaled = t(shape, 'scaled');
  ctx.emit(B.MUL, [normed, ctx.input(1)], [scaled], opt(21, (b) => noActivation(b, 'Mul')));
  ctx.emit(B.ADD, [scaled, ctx.input(2)], [ctx.output(0)], addOpt());
};

const addOpt = (): TflOp['options'] => opt(11, (b) => AddOptions.createAddOptions(b, ActivationFunctionType.NONE, true));

/** Options tables of the activation-only kind (MulOptions, SubOptions, DivOptions): one field, NONE. */
function noActivation(b: Builder, _op: string): Offset {
  b.startObject(1);
  return b.endObject();
}

const concat: Emitter = (ctx) => {
  const rank = ctx.shape(ctx.node.outputs[0]!).length;
  const axis = (attrInt(ctx.node, 'axis', 0) + rank) % rank;
  ctx.emit(B.CONCATENATION, ctx.node.inputs.map((_, i) => ctx.input(i)), [ctx.output(0)], opt(10, (b) => ConcatenationOptions.createConcatenationOptions(b, axis, ActivationFunctionType.NONE)));
};

const gather: Emitter = (ctx) => {
  const rank = ctx.shape(ctx.node.inputs[0]!).length;
  const axis = (attrInt(ctx.node, 'axis', 0) + rank) % rank;
  const idx = ctx.constant(ctx.node.inputs[1]!);
  // ONNX counts negative indices from the end; TFLite's GATHER does not: constant ones are normalised.
  let indices = ctx.input(1);
  if (idx && idx.toNumbers().some((v) => v < 0)) {
    const size = ctx.shape(ctx.node.inputs[0]!)[axis]!;
    indices = ctx.constTensor(Tensor.from('int32', idx.shape, idx.toNumbers().map((v) => (v < 0 ? v + size : v))), `${ctx.node.inputs[1]}/positive`);
  }
  ctx.emit(B.GATHER, [ctx.input(0), indices], [ctx.output(0)], opt(23, (b) => GatherOptions.createGatherOptions(b, axis, 0)));
};

const transpose: Emitter = (ctx) => {
  const rank = ctx.shape(ctx.node.inputs[0]!).length;
  const perm = attrInts(ctx.node, 'perm') ?? [...Array(rank).keys()].reverse();
  ctx.emit(B.TRANSPOSE, [ctx.input(0), ctx.int32s(perm, `${ctx.node.outputs[0]}/perm`)], [ctx.output(0)]);
};

const pad: Emitter = (ctx) => {
  const node = ctx.node;
  if (attrString(node, 'mode', 'constant') !== 'constant') ctx.fail('mode constant');
  const pads = attrInts(node, 'pads') ?? ctx.ints(1, 'pads');
  const rank = ctx.shape(node.inputs[0]!).length;
  if (ctx.has(3)) ctx.fail('pads over every axis (no axes input)');
  const pairs = [...Array(rank).keys()].flatMap((i) => [pads[i]!, pads[i + rank]!]);
  if (pairs.some((p) => p < 0)) ctx.fail('non-negative pads');
  const paddings = ctx.constTensor(Tensor.from('int32', [rank, 2], pairs), `${node.outputs[0]}/paddings`);
  if (ctx.has(2)) ctx.emit(B.PADV2, [ctx.input(0), paddings, ctx.input(2)], [ctx.output(0)]);
  else ctx.emit(B.PAD, [ctx.input(0), paddings], [ctx.output(0)]);
};

const slice: Emitter = (ctx) => {
  const node = ctx.node;
  const shape = ctx.shape(node.inputs[0]!);
  const rank = shape.length;
  const starts = ctx.ints(1, 'starts');
  const ends = ctx.ints(2, 'ends');
  const axes = ctx.has(3) ? ctx.ints(3, 'axes').map((a) => (a + rank) % rank) : starts.map((_, i) => i);
  const steps = ctx.has(4) ? ctx.ints(4, 'steps') : starts.map(() => 1);
  // A whole axis read backwards (how the IR spells a reversal: TF's ReverseV2, TFLite's own) is REVERSE_V2.
  const whole = (k: number) => {
    const d = shape[axes[k]!]!;
    const s0 = starts[k]! < 0 ? starts[k]! + d : starts[k]!;
    const e0 = ends[k]! < 0 ? ends[k]! + d : ends[k]!;
    return steps[k] === -1 && s0 >= d - 1 && e0 < 0;
  };
  if (axes.length > 0 && axes.every((_, k) => whole(k))) {
    ctx.emit(B.REVERSE_V2, [ctx.input(0), ctx.int32s(axes, `${node.outputs[0]}/axes`)], [ctx.output(0)]);
    return;
  }
  const begin = new Array<number>(rank).fill(0);
  const end = [...shape];
  const strides = new Array<number>(rank).fill(1);
  // Axes read to their end (all the unsliced ones) take end_mask, so they follow a size LiteRT
  // resizes (a batch) instead of the probe run's.
  let endMask = 0;
  for (let a = 0; a < rank; a++) if (!axes.includes(a)) endMask |= 1 << a;
  axes.forEach((a, k) => {
    const d = shape[a]!;
    const s = steps[k]!;
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
    const norm = (v: number) => (v < 0 ? v + d : v);
    strides[a] = s;
    if (s > 0) {
      begin[a] = clamp(norm(starts[k]!), 0, d);
      end[a] = clamp(norm(ends[k]!), 0, d);
      if (norm(ends[k]!) >= d) endMask |= 1 << a;
    } else {
      begin[a] = clamp(norm(starts[k]!), -1, d - 1);
      const e = norm(ends[k]!);
      if (e < 0) endMask |= 1 << a;
      end[a] = clamp(e, -1, d - 1);
    }
  });
  const v = node.outputs[0]!;
  ctx.emit(B.STRIDED_SLICE, [ctx.input(0), ctx.int32s(begin, `${v}/begin`), ctx.int32s(end, `${v}/end`), ctx.int32s(strides, `${v}/strides`)], [ctx.output(0)], opt(32, (b) => StridedSliceOptions.createStridedSliceOptions(b, 0, endMask, 0, 0, 0, false)));
};

const binary = (code: number, member: number): Emitter => (ctx) => {
  const options = member === 11 ? addOpt() : opt(member, (b) => noActivation(b, 'binary'));
  ctx.emit(code, [ctx.input(0), ctx.input(1)], [ctx.output(0)], options);
};

/** ONNX Cast: the target type from the output's dtype. */
const cast: Emitter = (ctx) => ctx.emit(B.CAST, [ctx.input(0)], [ctx.output(0)]);

/**
 * ONNX LSTM (one forward layer, default activations) -> UNIDIRECTIONAL_SEQUENCE_LSTM laid out as
 * TFLiteConverter writes a Keras LSTM: 24 inputs (input; input-to-{i,f,c,o} weights [H, F];
 * recurrent-to-{i,f,c,o} weights [H, H]; no peepholes; {i,f,c,o} biases [H], ONNX's Wb + Rb; no
 * projection; the output and cell states as variable tensors [batch, H]; no layer norm), time_major
 * for layout 0, TANH, no clipping. The op's [T, B, H] (or [B, T, H]) result is reshaped to ONNX's
 * Y with its directions axis. What the op cannot hold is written unrolled (export-rnn.ts:
 * lstmUnrolled): an unknown batch (LiteRT does not resize the variable state tensors with the
 * input), non-zero initial states (variables start at zero), reverse and bidirectional layers, a
 * used Y_h or Y_c.
 */
const lstm: Emitter = (ctx) => {
  const node = ctx.node;
  const acts = node.attributes['activations'];
  const defaults = ['Sigmoid', 'Tanh', 'Tanh'];
  const direction = attrString(node, 'direction', 'forward');
  const directions = direction === 'bidirectional' ? 2 : 1;
  if (acts && (acts.type !== 'strings' || acts.value.join(',') !== Array.from({ length: directions }, () => defaults).flat().join(','))) ctx.fail('the default activations Sigmoid, Tanh, Tanh');
  if (node.attributes['clip'] !== undefined) ctx.fail('an LSTM without clip');
  if (attrInt(node, 'input_forget', 0) !== 0) ctx.fail('input_forget 0');
  if (ctx.has(4)) ctx.fail('no sequence_lens (every sequence runs its full length)');
  if (ctx.has(7)) ctx.fail('no peepholes (input P)');
  const layout = attrInt(node, 'layout', 0);
  // What the fused op cannot hold (its states are zero-started variables of a fixed [batch, H],
  // it runs forwards and gives Y only) is written unrolled (export-rnn.ts).
  const zeroStart = [5, 6].every((k) => !ctx.has(k) || ctx.zeros(node.inputs[k]!));
  if (direction !== 'forward' || !zeroStart || ctx.used(node.outputs[1] ?? '') || ctx.used(node.outputs[2] ?? '') || batchIsDynamic(ctx, { layout })) return lstmUnrolled(ctx);
  if (!ctx.used(node.outputs[0] ?? '')) ctx.fail('output Y used');
  const w = ctx.weight(1, 'W');
  const r = ctx.weight(2, 'R');
  if (w.shape.length !== 3 || w.shape[0] !== 1 || r.shape.length !== 3) ctx.fail(`W [1, 4H, F] and R [1, 4H, H], not [${w.shape}] and [${r.shape}]`);
  const hidden = r.shape[2]!;
  const features = w.shape[2]!;
  if (w.shape[1] !== 4 * hidden || r.shape[1] !== 4 * hidden) ctx.fail(`4·${hidden} gate rows in W and R`);
  const x = node.inputs[0]!;
  const xShape = ctx.shape(x);
  if (xShape.length !== 3) ctx.fail(`a 3-D input, not [${xShape}]`);
  const [steps, batch] = layout === 0 ? [xShape[0]!, xShape[1]!] : [xShape[1]!, xShape[0]!];
  const wv = w.toFloat32();
  const rv = r.toFloat32();
  const bv = ctx.has(3) ? ctx.weight(3, 'B').toFloat32() : new Float32Array(8 * hidden);
  if (bv.length !== 8 * hidden) ctx.fail(`B of 8·${hidden} values`);
  const name = node.name || node.outputs[0]!;
  // ONNX stacks gates i, o, f, c; TFLite's inputs take them as i, f, c, o.
  const ONNX_GATE = { i: 0, o: 1, f: 2, c: 3 } as const;
  const gates = ['i', 'f', 'c', 'o'] as const;
  const part = (values: Float32Array, gate: number, size: number) => values.subarray(gate * size, (gate + 1) * size);
  const inputW = gates.map((g) => ctx.constTensor(Tensor.from('float32', [hidden, features], part(wv, ONNX_GATE[g], hidden * features).slice()), `${name}/input_to_${g}_w`));
  const recurrentW = gates.map((g) => ctx.constTensor(Tensor.from('float32', [hidden, hidden], part(rv, ONNX_GATE[g], hidden * hidden).slice()), `${name}/recurrent_to_${g}_w`));
  const biases = gates.map((g) => {
    const sum = new Float32Array(hidden);
    const wb = part(bv, ONNX_GATE[g], hidden);
    const rb = part(bv, 4 + ONNX_GATE[g], hidden);
    for (let j = 0; j < hidden; j++) sum[j] = wb[j]! + rb[j]!;
    return ctx.constTensor(Tensor.from('float32', [hidden], sum), `${name}/${g}_gate_bias`);
  });
  const h = ctx.variable([batch, hidden], 'float32', `${name}/output_state`);
  const c = ctx.variable([batch, hidden], 'float32', `${name}/cell_state`);
  const none = [-1, -1, -1];
  const inputs = [ctx.input(0), ...inputW, ...recurrentW, ...none, ...biases, -1, -1, h, c, -1, -1, -1, -1];
  const y = node.outputs[0]!;
  const seq = ctx.temp(layout === 0 ? [steps, batch, hidden] : [batch, steps, hidden], 'float32', `${y}/sequence`);
  ctx.emit(B.UNIDIRECTIONAL_SEQUENCE_LSTM, inputs, [seq], opt(71, (b) => UnidirectionalSequenceLSTMOptions.createUnidirectionalSequenceLSTMOptions(b, ActivationFunctionType.TANH, 0, 0, layout === 0, false, false)));
  const yShape = ctx.shape(y);
  ctx.emit(B.RESHAPE, [seq, ctx.int32s(yShape, `${y}/shape`)], [ctx.output(0)]);
};

export const TFLITE_EXPORT: Readonly<Record<string, Emitter>> = {
  Conv: conv,
  MaxPool: pool(B.MAX_POOL_2D),
  AveragePool: pool(B.AVERAGE_POOL_2D),
  GlobalAveragePool: globalPool(B.MEAN),
  GlobalMaxPool: globalPool(B.REDUCE_MAX),
  Gemm: gemm,
  MatMul: matMul,
  Add: binary(B.ADD, 11),
  Sub: binary(B.SUB, 28),
  Mul: binary(B.MUL, 21),
  Div: binary(B.DIV, 29),
  Pow: simple(B.POW),
  Max: (ctx) => (ctx.node.inputs.length === 2 ? simple(B.MAXIMUM)(ctx) : ctx.fail('two inputs')),
  Min: (ctx) => (ctx.node.inputs.length === 2 ? simple(B.MINIMUM)(ctx) : ctx.fail('two inputs')),
  Relu: simple(B.RELU),
  Sigmoid: simple(B.LOGISTIC),
  Tanh: simple(B.TANH),
  HardSwish: simple(B.HARD_SWISH),
  LeakyRelu: simple(B.LEAKY_RELU, (ctx) => opt(75, (b) => LeakyReluOptions.createLeakyReluOptions(b, attrFloat(ctx.node, 'alpha', 0.01)))),
  Elu: (ctx) => (attrFloat(ctx.node, 'alpha', 1) === 1 ? simple(B.ELU)(ctx) : ctx.fail('alpha 1')),
  Gelu: simple(B.GELU, (ctx) => opt(116, (b) => GeluOptions.createGeluOptions(b, attrString(ctx.node, 'approximate', 'none') === 'tanh'))),
  Exp: simple(B.EXP),
  Log: simple(B.LOG),
  Sqrt: simple(B.SQRT),
  Reciprocal: (ctx) => {
    const v = ctx.node.inputs[0]!;
    ctx.emit(B.DIV, [ctx.constTensor(Tensor.from(ctx.dtype(v), [], [1]), `${ctx.node.outputs[0]}/one`), ctx.input(0)], [ctx.output(0)], opt(29, (b) => noActivation(b, 'Div')));
  },
  Abs: simple(B.ABS),
  Neg: simple(B.NEG),
  Floor: simple(B.FLOOR),
  Ceil: simple(B.CEIL),
  Sin: simple(B.SIN),
  Cos: simple(B.COS),
  Softmax: softmax(B.SOFTMAX),
  LogSoftmax: softmax(B.LOG_SOFTMAX),
  Clip: clip,
  Reshape: reshape,
  Flatten: reshape,
  Squeeze: reshape,
  Unsqueeze: reshape,
  Transpose: transpose,
  Concat: concat,
  Gather: gather,
  BatchNormalization: batchNorm,
  LayerNormalization: layerNorm,
  ReduceMean: reduce(B.MEAN),
  ReduceSum: reduce(B.SUM),
  ReduceMax: reduce(B.REDUCE_MAX),
  ReduceMin: reduce(B.REDUCE_MIN),
  Pad: pad,
  Slice: slice,
  Cast: cast,
  Where: simple(B.SELECT_V2),
  Equal: simple(B.EQUAL),
  Less: simple(B.LESS),
  Greater: simple(B.GREATER),
  Expand: (ctx) => ctx.emit(B.BROADCAST_TO, [ctx.input(0), ctx.int32s(ctx.shape(ctx.node.outputs[0]!), `${ctx.node.outputs[0]}/shape`)], [ctx.output(0)]),
  Tile: (ctx) => ctx.emit(B.TILE, [ctx.input(0), ctx.int32s(ctx.ints(1, 'repeats'), `${ctx.node.outputs[0]}/multiples`)], [ctx.output(0)]),
  LSTM: lstm,
  GRU: gruExport,
  RNN: rnnExport,
};

/**
 * The TFLite builtins each entry of TFLITE_EXPORT writes (layout TRANSPOSEs aside), for the op
 * coverage table (src/op-coverage); test/tflite.test.ts checks it has exactly the table's keys.
 */
export const TFLITE_EXPORT_BUILTINS: Readonly<Record<string, readonly string[]>> = {
  Conv: ['CONV_2D', 'DEPTHWISE_CONV_2D', 'PAD'],
  MaxPool: ['MAX_POOL_2D'],
  AveragePool: ['AVERAGE_POOL_2D'],
  GlobalAveragePool: ['MEAN'],
  GlobalMaxPool: ['REDUCE_MAX'],
  Gemm: ['FULLY_CONNECTED'],
  MatMul: ['FULLY_CONNECTED', 'BATCH_MATMUL'],
  Add: ['ADD'],
  Sub: ['SUB'],
  Mul: ['MUL'],
  Div: ['DIV'],
  Pow: ['POW'],
  Max: ['MAXIMUM'],
  Min: ['MINIMUM'],
  Relu: ['RELU'],
  Sigmoid: ['LOGISTIC'],
  Tanh: ['TANH'],
  HardSwish: ['HARD_SWISH'],
  LeakyRelu: ['LEAKY_RELU'],
  Elu: ['ELU'],
  Gelu: ['GELU'],
  Exp: ['EXP'],
  Log: ['LOG'],
  Sqrt: ['SQRT'],
  Reciprocal: ['DIV'],
  Abs: ['ABS'],
  Neg: ['NEG'],
  Floor: ['FLOOR'],
  Ceil: ['CEIL'],
  Sin: ['SIN'],
  Cos: ['COS'],
  Softmax: ['SOFTMAX'],
  LogSoftmax: ['LOG_SOFTMAX'],
  Clip: ['RELU6', 'RELU_N1_TO_1', 'RELU', 'MAXIMUM', 'MINIMUM'],
  Reshape: ['RESHAPE'],
  Flatten: ['RESHAPE'],
  Squeeze: ['RESHAPE'],
  Unsqueeze: ['RESHAPE'],
  Transpose: ['TRANSPOSE'],
  Concat: ['CONCATENATION'],
  Gather: ['GATHER'],
  BatchNormalization: ['MUL', 'ADD'],
  LayerNormalization: ['MEAN', 'SQUARED_DIFFERENCE', 'ADD', 'RSQRT', 'SUB', 'MUL'],
  ReduceMean: ['MEAN'],
  ReduceSum: ['SUM'],
  ReduceMax: ['REDUCE_MAX'],
  ReduceMin: ['REDUCE_MIN'],
  Pad: ['PAD', 'PADV2'],
  Slice: ['STRIDED_SLICE', 'REVERSE_V2'],
  Cast: ['CAST'],
  Where: ['SELECT_V2'],
  Equal: ['EQUAL'],
  Less: ['LESS'],
  Greater: ['GREATER'],
  Expand: ['BROADCAST_TO'],
  Tile: ['TILE'],
  LSTM: ['UNIDIRECTIONAL_SEQUENCE_LSTM', 'RESHAPE', 'FULLY_CONNECTED', 'UNPACK', 'ADD', 'LOGISTIC', 'MUL', 'TANH', 'PACK', 'GATHER', 'CONCATENATION'],
  GRU: ['FULLY_CONNECTED', 'UNPACK', 'ADD', 'LOGISTIC', 'MUL', 'TANH', 'SUB', 'PACK', 'GATHER', 'RESHAPE', 'CONCATENATION'],
  RNN: ['UNIDIRECTIONAL_SEQUENCE_RNN', 'REVERSE_V2', 'GATHER', 'RESHAPE', 'CONCATENATION', 'FULLY_CONNECTED', 'UNPACK', 'ADD', 'TANH', 'RELU', 'PACK'],
};

/** Ops that pass their input through (aliases in the TFLite graph). */
const ALIASES = new Set(['Identity', 'Dropout']);

/** The activation a TFLite op can fuse that `node` computes, if it is one. */
function activationCode(node: Node, constants: ReadonlyMap<string, Tensor>): number | undefined {
  // TANH is left a node: LiteRT's FULLY_CONNECTED refuses it as a fused activation.
  if (node.op === 'Relu') return ActivationFunctionType.RELU;
  if (node.op !== 'Clip') return undefined;
  const bound = (i: number, key: string, fallback: number): number | undefined => {
    const v = node.inputs[i];
    if (v) {
      const c = constants.get(v);
      return c && c.size === 1 ? c.toNumbers()[0] : undefined;
    }
    return attrFloat(node, key, fallback);
  };
  const lo = bound(1, 'min', -Infinity);
  const hi = bound(2, 'max', Infinity);
  if (lo === 0 && hi === 6) return ActivationFunctionType.RELU6;
  if (lo === -1 && hi === 1) return ActivationFunctionType.RELU_N1_TO_1;
  if (lo === 0 && hi === Infinity) return ActivationFunctionType.RELU;
  return undefined;
}

/**
 * IR rewrites TFLite's converter also makes: an inference BatchNormalization after a
 * convolution folds into its filter and bias (W * s per output channel, (b - mean) * s + beta),
 * and a 2-D MatMul by a constant followed by a bias Add becomes one Gemm (FULLY_CONNECTED's bias).
 * Only where the intermediate value has that one reader and is no graph output.
 */
function fold(nodes: readonly Node[], constants: Map<string, Tensor>, shapes: ReadonlyMap<string, readonly number[]>, outputs: ReadonlySet<string>): Node[] {
  const readers = new Map<string, Node[]>();
  for (const n of nodes) for (const i of n.inputs) if (i) readers.set(i, [...(readers.get(i) ?? []), n]);
  const only = (v: string): Node | undefined => (outputs.has(v) ? undefined : readers.get(v)?.length === 1 ? readers.get(v)![0] : undefined);
  const replaced = new Map<Node, Node | null>();
  for (const n of nodes) {
    const next = only(n.outputs[0] ?? '');
    if (!next) continue;
    if (n.op === 'Conv' && next.op === 'BatchNormalization' && next.inputs[0] === n.outputs[0] && attrInt(next, 'training_mode', 0) === 0) {
      const w = constants.get(n.inputs[1]!);
      const b = n.inputs[2] ? constants.get(n.inputs[2]) : undefined;
      const stats = [1, 2, 3, 4].map((i) => constants.get(next.inputs[i] ?? ''));
      if (!w || w.dtype !== 'float32' || (n.inputs[2] && !b) || stats.some((t) => !t)) continue;
      const [gamma, beta, mean, variance] = stats.map((t) => t!.toFloat32()) as [Float32Array, Float32Array, Float32Array, Float32Array];
      const eps = attrFloat(next, 'epsilon', 1e-5);
      const outC = w.shape[0]!;
      if (gamma.length !== outC) continue;
      const per = w.size / outC;
      const wv = w.toFloat32();
      const bv = b ? b.toFloat32() : new Float32Array(outC);
      const w2 = new Float32Array(w.size);
      const b2 = new Float32Array(outC);
      for (let o = 0; o < outC; o++) {
        const scale = gamma[o]! / Math.sqrt(variance[o]! + eps);
        for (let k = 0; k < per; k++) w2[o * per + k] = wv[o * per + k]! * scale;
        b2[o] = (bv[o]! - mean[o]!) * scale + beta[o]!;
      }
      const wName = `${n.inputs[1]}/bn_folded`;
      const bName = `${next.name}/bias_folded`;
      constants.set(wName, Tensor.fromArray('float32', w.shape, w2));
      constants.set(bName, Tensor.fromArray('float32', [outC], b2));
      replaced.set(n, { ...n, inputs: [n.inputs[0]!, wName, bName], outputs: next.outputs });
      replaced.set(next, null);
    } else if (n.op === 'MatMul' && next.op === 'Add' && shapes.get(n.inputs[0]!)?.length === 2) {
      const w = constants.get(n.inputs[1]!);
      const bias = next.inputs[0] === n.outputs[0] ? next.inputs[1]! : next.inputs[0]!;
      const b = constants.get(bias);
      if (!w || !b || w.shape.length !== 2 || b.size !== w.shape[1] || b.shape[b.shape.length - 1] !== w.shape[1]) continue;
      replaced.set(n, { ...n, op: 'Gemm', inputs: [n.inputs[0]!, n.inputs[1]!, bias], outputs: next.outputs, attributes: {} });
      replaced.set(next, null);
    }
  }
  const rewritten = nodes.flatMap((n) => (replaced.has(n) ? (replaced.get(n) ? [replaced.get(n)!] : []) : [n]));
  return live(geluFromErf(rewritten, constants), outputs);
}

const near = (t: Tensor | undefined, v: number): boolean => t !== undefined && t.size === 1 && Math.abs(t.toNumbers()[0]! - v) <= 1e-6 * Math.abs(v);

/**
 * x * 0.5 * (1 + erf(x / sqrt 2)), as ONNX graphs below opset 20 (and modelbridge's TFLite
 * reader) spell GELU, back to one Gelu: TFLite has GELU but no ERF. The three factors may come
 * in any grouping of two Muls: (x * 0.5) * (1 + erf), or (x * (1 + erf)) * 0.5 as
 * torch.onnx.export writes nn.GELU (torchvision's ViT), and x / sqrt 2 may be a Div.
 */
function geluFromErf(nodes: readonly Node[], constants: ReadonlyMap<string, Tensor>): Node[] {
  const producer = new Map(nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const other = (n: Node, v: string) => (n.inputs[0] === v ? n.inputs[1]! : n.inputs[0]!);
  /** x when `v` is x / sqrt 2 (Mul by 1/sqrt 2 or Div by sqrt 2). */
  const scaledFrom = (v: string): string | undefined => {
    const p = producer.get(v);
    if (p?.op === 'Div' && p.inputs.length === 2 && near(constants.get(p.inputs[1]!), Math.SQRT2)) return p.inputs[0];
    if (p?.op !== 'Mul' || p.inputs.length !== 2) return undefined;
    return p.inputs.find((i) => near(constants.get(other(p, i)), Math.SQRT1_2));
  };
  /** x when `v` is 1 + erf(x / sqrt 2). */
  const onePlusErf = (v: string): string | undefined => {
    const a = producer.get(v);
    if (a?.op !== 'Add' || a.inputs.length !== 2) return undefined;
    const erf = a.inputs.map((i) => producer.get(i)).find((p) => p?.op === 'Erf');
    if (!erf || !near(constants.get(other(a, erf.outputs[0]!)), 1)) return undefined;
    return scaledFrom(erf.inputs[0]!);
  };
  return nodes.map((n) => {
    if (n.op !== 'Mul' || n.inputs.length !== 2) return n;
    for (const [inner, outer] of [[n.inputs[0]!, n.inputs[1]!], [n.inputs[1]!, n.inputs[0]!]] as const) {
      const m = producer.get(inner);
      if (m?.op !== 'Mul' || m.inputs.length !== 2) continue;
      // the three factors: the inner Mul's two and the outer input
      const factors = [...m.inputs, outer];
      const half = factors.findIndex((f) => near(constants.get(f), 0.5));
      if (half < 0) continue;
      const rest = factors.filter((_, k) => k !== half);
      for (const [x, erfTerm] of [[rest[0]!, rest[1]!], [rest[1]!, rest[0]!]] as const) {
        if (onePlusErf(erfTerm) === x) return { ...n, op: 'Gelu', inputs: [x], attributes: {} };
      }
    }
    return n;
  });
}

/** Nodes that reach a graph output. */
function live(nodes: readonly Node[], outputs: ReadonlySet<string>): Node[] {
  const needed = new Set(outputs);
  const keep = new Array<boolean>(nodes.length).fill(false);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!n.outputs.some((o) => o && needed.has(o))) continue;
    keep[i] = true;
    for (const input of n.inputs) if (input) needed.add(input);
  }
  return nodes.filter((_, i) => keep[i]);
}

/**
 * Refuses, before any run of the graph, a node whose op TFLite has no mapping for and that no
 * rewrite removes: a value computed without input data (folded into a constant), an Identity, an
 * Erf inside a GELU. The probe runs a whole forward pass first (ViT-B/16: 21 s and 1 GB before
 * an unmapped Erf was reported); `constantNames` are the values it will find constant.
 */
export function refuseUnmapped(graph: Graph, constantNames: ReadonlySet<string>): void {
  const outputs = new Set(graph.outputs.map((o) => o.name));
  for (const node of live(geluFromErf(orderedOrThrow(graph, (line) => new UsageError(line)), constantValues(graph)), outputs)) {
    if (node.outputs.every((o) => o === '' || constantNames.has(o)) || ALIASES.has(node.op)) continue;
    if ((node.domain === '' || node.domain === 'ai.onnx') && !TFLITE_EXPORT[node.op]) {
      throw new UsageError(`node ${node.name}: TFLite export has no mapping for ${node.op} (supported: ${Object.keys(TFLITE_EXPORT).sort().join(', ')})`);
    }
  }
}

export function lowerGraph(graph: Graph, probe: Probe): Lowered {
  const { shapes, dtypes, signatures, dynamic, zeros } = probe;
  const constants = new Map(probe.constants);
  const outputSet = new Set(graph.outputs.map((o) => o.name));
  const nodes = fold(orderedOrThrow(graph, (line) => new UsageError(line)), constants, shapes, outputSet);
  const readers = new Map<string, Node[]>();
  for (const n of nodes) for (const i of n.inputs) if (i) readers.set(i, [...(readers.get(i) ?? []), n]);
  const absorbed = new Set<Node>();
  const tensors: TflTensorSpec[] = [];
  const tensorIndex = new Map<string, number>();
  const names = new Set<string>();
  const alias = new Map<string, string>();
  const resolve = (v: string): string => {
    while (alias.has(v)) v = alias.get(v)!;
    return v;
  };
  const uniqueName = (base: string): string => {
    let name = base;
    for (let k = 1; names.has(name); k++) name = `${base}_${k}`;
    names.add(name);
    return name;
  };
  const add = (spec: TflTensorSpec): number => {
    tensors.push({ ...spec, name: uniqueName(spec.name) });
    return tensors.length - 1;
  };
  const shapeOf = (v: string): readonly number[] => {
    const s = shapes.get(v) ?? constants.get(v)?.shape;
    if (!s) throw new UsageError(`value ${v} has no shape (the probe run did not compute it)`);
    return s;
  };
  const dtypeOf = (v: string): DType => dtypes.get(v) ?? 'float32';
  const tensorFor = (value: string): number => {
    const v = resolve(value);
    const known = tensorIndex.get(v);
    if (known !== undefined) return known;
    const c = constants.get(v);
    const signature = signatures.get(v);
    const index = add({ name: v, shape: shapeOf(v), dtype: c?.dtype ?? dtypeOf(v), ...(c ? { data: c } : {}), ...(signature ? { signature } : {}) });
    tensorIndex.set(v, index);
    return index;
  };
  const ops: TflOp[] = [];
  const inputs = graph.inputs.filter((i) => !graph.initializers.has(i.name)).map((i) => tensorFor(i.name));

  for (const node of nodes) {
    if (absorbed.has(node)) continue;
    if (node.domain !== '' && node.domain !== 'ai.onnx') throw new UsageError(`node ${node.name}: TFLite has no ${node.domain}.${node.op}`);
    // Values that depend on no input were computed by the probe run: they become constants.
    if (node.outputs.every((o) => o === '' || constants.has(o))) continue;
    if (ALIASES.has(node.op)) {
      const out = node.outputs[0]!;
      if (outputSet.has(out)) {
        // A graph output keeps its own name: a RESHAPE to its own shape stands in for the copy.
        const shape = shapeOf(out);
        const target = add({ name: `${out}/shape`, shape: [shape.length], dtype: 'int32', data: Tensor.from('int32', [shape.length], shape) });
        ops.push({ code: B.RESHAPE, inputs: [tensorFor(node.inputs[0]!), target], outputs: [tensorFor(out)] });
      } else alias.set(out, node.inputs[0]!);
      continue;
    }
    const emitter = TFLITE_EXPORT[node.op];
    const fail = (expected: string): never => {
      throw new UsageError(`node ${node.name} (${node.op}): TFLite needs ${expected}`);
    };
    if (!emitter) throw new UsageError(`node ${node.name}: TFLite export has no mapping for ${node.op} (supported: ${Object.keys(TFLITE_EXPORT).sort().join(', ')})`);
    let fusedOutput: string | undefined;
    const ctx: Ctx = {
      node,
      fuseActivation: () => {
        const out = node.outputs[0]!;
        const rs = readers.get(out) ?? [];
        if (outputSet.has(out) || rs.length !== 1 || rs[0]!.inputs[0] !== out) return ActivationFunctionType.NONE;
        const code = activationCode(rs[0]!, constants);
        if (code === undefined) return ActivationFunctionType.NONE;
        absorbed.add(rs[0]!);
        fusedOutput = rs[0]!.outputs[0]!;
        return code;
      },
      input: (i) => {
        const v = node.inputs[i];
        if (!v) return fail(`input ${i}`);
        return tensorFor(v);
      },
      has: (i) => (node.inputs[i] ?? '') !== '',
      output: (k) => tensorFor(k === 0 && fusedOutput !== undefined ? fusedOutput : node.outputs[k]!),
      shape: shapeOf,
      signature: (v) => signatures.get(resolve(v)) ?? shapeOf(v),
      dtype: (v) => constants.get(resolve(v))?.dtype ?? dtypeOf(resolve(v)),
      constant: (v) => (dynamic.has(resolve(v)) ? fail(`${v} not to depend on an unknown input size`) : constants.get(resolve(v))),
      zeros: (v) => zeros.has(resolve(v)),
      weight: (i, what) => ctx.constant(node.inputs[i] ?? '') ?? fail(`a constant ${what} (input ${i})`),
      ints: (i, what) => {
        const c = ctx.constant(node.inputs[i] ?? '');
        if (!c) return fail(`a constant ${what} (input ${i})`);
        return c.toNumbers();
      },
      constTensor: (t, name) => add({ name, shape: t.shape, dtype: t.dtype, data: t }),
      int32s: (values, name) => add({ name, shape: [values.length], dtype: 'int32', data: Tensor.from('int32', [values.length], values) }),
      temp: (shape, dtype, name, signature) => add({ name, shape, dtype, ...(signature?.includes(-1) ? { signature } : {}) }),
      variable: (shape, dtype, name) => add({ name, shape, dtype, variable: true }),
      used: (v) => v !== '' && (outputSet.has(v) || (readers.get(v)?.length ?? 0) > 0),
      emit: (code, ins, outs, options) => void ops.push({ code, inputs: ins, outputs: outs, ...(options ? { options } : {}) }),
      fail,
    };
    emitter(ctx);
  }
  const outputs = graph.outputs.map((o) => tensorFor(o.name));
  return pruned({ tensors, ops: cancelTransposes(ops, tensors, outputs), inputs, outputs, tensorIndex });

}

/** One-input ops that act on each element alone: a layout change commutes with them. */
const ELEMENTWISE = new Set<number>([B.HARD_SWISH, B.LOGISTIC, B.TANH, B.RELU, B.RELU6, B.RELU_N1_TO_1, B.LEAKY_RELU, B.ELU, B.GELU, B.EXP, B.LOG, B.SQRT, B.ABS, B.NEG, B.FLOOR, B.CEIL, B.SIN, B.COS]);

/**
 * TRANSPOSE(p) -> elementwise op -> TRANSPOSE(inverse of p), each value read once: the op runs on
 * the untransposed tensor and writes the second TRANSPOSE's output (same shape, same layout), and
 * both TRANSPOSEs go. A Hardswish between two convolutions then stays NHWC like a fused ReLU.
 */
function throughElementwise(ops: readonly TflOp[], permOf: (op: TflOp) => number[] | undefined, outputs: readonly number[]): TflOp[] {
  const readers = new Map<number, number>();
  for (const op of ops) for (const i of op.inputs) if (i >= 0) readers.set(i, (readers.get(i) ?? 0) + 1);
  for (const o of outputs) readers.set(o, (readers.get(o) ?? 0) + 1);
  const producer = new Map<number, TflOp>();
  for (const op of ops) for (const o of op.outputs) producer.set(o, op);
  const dropped = new Set<TflOp>();
  const replaced = new Map<TflOp, TflOp>();
  for (const t2 of ops) {
    if (t2.code !== B.TRANSPOSE) continue;
    const u = producer.get(t2.inputs[0]!);
    if (!u || !ELEMENTWISE.has(u.code) || u.inputs.length !== 1 || readers.get(u.outputs[0]!) !== 1 || replaced.has(u)) continue;
    const t1 = producer.get(u.inputs[0]!);
    if (!t1 || t1.code !== B.TRANSPOSE || readers.get(t1.outputs[0]!) !== 1 || dropped.has(t1)) continue;
    const p1 = permOf(t1);
    const p2 = permOf(t2);
    if (!p1 || !p2 || p1.length !== p2.length || !p2.every((p, i) => p1[p] === i)) continue;
    replaced.set(u, { ...u, inputs: [t1.inputs[0]!], outputs: [t2.outputs[0]!] });
    dropped.add(t1).add(t2);
  }
  return ops.filter((op) => !dropped.has(op)).map((op) => replaced.get(op) ?? op);
}

/** The graph without the tensors no operator, input or output refers to (the perms of cancelled TRANSPOSEs). */
function pruned(g: Lowered): Lowered {
  const used = new Set<number>([...g.inputs, ...g.outputs, ...g.ops.flatMap((o) => [...o.inputs, ...o.outputs])]);
  const remap = new Map<number, number>();
  const tensors: TflTensorSpec[] = [];
  g.tensors.forEach((t, i) => {
    if (!used.has(i)) return;
    remap.set(i, tensors.length);
    tensors.push(t);
  });
  const at = (i: number) => (i < 0 ? i : remap.get(i)!);
  const tensorIndex = new Map<string, number>();
  for (const [name, i] of g.tensorIndex) if (remap.has(i)) tensorIndex.set(name, remap.get(i)!);
  return {
    tensors,
    ops: g.ops.map((o) => ({ ...o, inputs: o.inputs.map(at), outputs: o.outputs.map(at) })),
    inputs: g.inputs.map(at),
    outputs: g.outputs.map(at),
    tensorIndex,
  };
}

/**
 * TRANSPOSE(TRANSPOSE(x, p), q) with q undoing p: readers of the second read x. The NCHW <-> NHWC
 * pairs between consecutive convolutions vanish; TRANSPOSEs left unread are dropped.
 */
function cancelTransposes(ops0: readonly TflOp[], tensors: readonly TflTensorSpec[], outputs: readonly number[]): TflOp[] {
  const permOf = (op: TflOp): number[] | undefined => {
    const t = tensors[op.inputs[1]!]?.data;
    return t ? t.toNumbers() : undefined;
  };
  const ops = throughElementwise(ops0, permOf, outputs);
  const producer = new Map<number, TflOp>();
  const replace = new Map<number, number>();
  const resolve = (t: number): number => {
    while (replace.has(t)) t = replace.get(t)!;
    return t;
  };
  const out = new Set(outputs);
  let result: TflOp[] = [];
  for (const op0 of ops) {
    const op = { ...op0, inputs: op0.inputs.map((i) => (i < 0 ? i : resolve(i))) };
    if (op.code === B.TRANSPOSE && !out.has(op.outputs[0]!)) {
      const before = producer.get(op.inputs[0]!);
      const p1 = before?.code === B.TRANSPOSE ? permOf(before) : undefined;
      const p2 = permOf(op);
      if (p1 && p2 && p1.length === p2.length && p2.every((p, i) => p1[p] === i)) {
        replace.set(op.outputs[0]!, before!.inputs[0]!);
        continue;
      }
    }
    for (const o of op.outputs) producer.set(o, op);
    result.push(op);
  }
  // Drop ops nothing reads (the first TRANSPOSE of a cancelled pair).
  for (let changed = true; changed; ) {
    changed = false;
    const read = new Set([...outputs, ...result.flatMap((o) => o.inputs)]);
    const kept = result.filter((o) => o.outputs.some((t) => read.has(t)));
    changed = kept.length !== result.length;
    result = kept;
  }
  return result;
}
