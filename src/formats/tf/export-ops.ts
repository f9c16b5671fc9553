import type { DType } from '../../core/dtypes.js';
import { attrFloat, attrInt, attrInts, attrString, type Node } from '../../core/graph.js';
import { Tensor } from '../../core/tensor.js';
import { onnxCodeToDType } from '../onnx/dtypes.js';
import { tfAttr } from './attrs.js';
import { permuted } from '../../core/transpose.js';
import { OIHW_TO_HWIO, reshaped } from './layout.js';
import { shapeToProto, tensorToProto, tfCode } from './tensor.js';
import { bodyFunction, condFunction, LOOP_TF_OPS, loopArgs, loopIndex, loopName, type FunctionDefObject, type LoopCell } from './rnn-loop.js';

/**
 * The IR -> TensorFlow table for the writers: each entry emits the TF nodes computing one IR node
 * and returns the TF tensor name of each IR output. It covers what lowering a module spec
 * produces (Gemm, MatMul, Add, activations, Conv, pools, BatchNormalization, Flatten/Reshape,
 * Identity) and the IR the TF reader makes. TF runs convolutions and pools NHWC on CPU, so those
 * sit between Transposes, with the OIHW weight stored HWIO.
 */

export type TfAttrs = Record<string, object>;

export interface ExportContext {
  readonly node: Node;
  /** The graph's opset: the IR node's semantics (attributes vs inputs) follow it. */
  readonly opset: number;
  /** The TF tensor for IR input i. */
  input(i: number): string;
  hasInput(i: number): boolean;
  dtype(i: number): DType;
  rank(i: number): number | undefined;
  /**
   * Size `axis` of IR input i when it is the same whatever sizes the graph inputs' unknown
   * dimensions take (two runtime probes agree), else undefined.
   */
  staticDim(i: number, axis: number): number | undefined;
  /** IR input i's value when it is an initializer. */
  constant(i: number): Tensor | undefined;
  /** IR input i as integers; it must be an initializer. */
  ints(i: number, what: string): number[];
  /** IR input i as a weight transformed for TF's layout (stored in place of the IR one). */
  weight(i: number, transform: (t: Tensor) => Tensor, tag: string): string;
  /** Emits a TF node; the last one an entry emits takes the IR node's name. Returns "name:0". */
  tf(op: string, inputs: readonly string[], attrs: TfAttrs, final?: boolean): string;
  /** A Const node. */
  const(t: Tensor): string;
  /**
   * Adds a function to the GraphDef's library (a While loop's cond or body; a name already added
   * is the same function). Undefined when the target holds no library (TF.js here).
   */
  readonly func?: (def: FunctionDefObject) => void;
  fail(expected: string): never;
}

/** An export entry: the TF tensors of the IR outputs, and the dtype of output 0 when it is not input 0's. */
export interface ExportEntry {
  /**
   * Every TF op `emit` may emit (Const through ctx.const aside). The exporter refuses anything
   * else as a bug, so the coverage table can trust this list to say what TF.js must run.
   */
  readonly tf: readonly string[];
  emit(ctx: ExportContext): string[];
  /** The dtype of output k when it is not input 0's. */
  dtype?(node: Node, inputs: readonly (DType | undefined)[], k: number): DType | undefined;
  /** Rank of output k when it is not input 0's; `constant` gives initializer inputs. */
  rank?(node: Node, ranks: readonly (number | undefined)[], constant: (i: number) => Tensor | undefined, k: number): number | undefined;
}

const T = (ctx: ExportContext, i = 0) => tfAttr.type(tfCode(ctx.dtype(i)));
const i32 = (values: readonly number[]) => Tensor.from('int32', [values.length], values);

const unary = (op: string, attrs: (n: Node) => TfAttrs = () => ({})): ExportEntry => ({
  tf: [op],
  emit: (ctx) => [ctx.tf(op, [ctx.input(0)], { T: T(ctx), ...attrs(ctx.node) }, true)],
});

const maxRank = (_n: Node, r: readonly (number | undefined)[]) => (r.some((x) => x === undefined) ? undefined : Math.max(...(r as number[])));

const binary = (op: string): ExportEntry => ({
  tf: [op],
  emit: (ctx) => [ctx.tf(op, [ctx.input(0), ctx.input(1)], { T: T(ctx) }, true)],
  rank: maxRank,
});

/** TF's data_format NHWC everywhere: activations are transposed in and out. */
const toNhwc = (ctx: ExportContext, x: string, extra: TfAttrs = {}) => ctx.tf('Transpose', [x, ctx.const(i32([0, 2, 3, 1]))], { T: T(ctx), Tperm: tfAttr.type(3), ...extra });
const toNchw = (ctx: ExportContext, x: string) => ctx.tf('Transpose', [x, ctx.const(i32([0, 3, 1, 2]))], { T: T(ctx), Tperm: tfAttr.type(3) }, true);

/** ONNX padding as TF's: SAME, VALID, or EXPLICIT paddings in NHWC order. */
function tfPadding(ctx: ExportContext): { padding: string; pads: number[] } {
  const auto = attrString(ctx.node, 'auto_pad', 'NOTSET');
  if (auto === 'SAME_UPPER') return { padding: 'SAME', pads: [0, 0, 0, 0] };
  if (auto === 'VALID') return { padding: 'VALID', pads: [0, 0, 0, 0] };
  if (auto !== 'NOTSET') ctx.fail(`auto_pad SAME_UPPER, VALID or NOTSET (TF pads SAME at the end), not ${auto}`);
  const p = attrInts(ctx.node, 'pads') ?? [0, 0, 0, 0];
  if (p.length !== 4) ctx.fail('2-D padding');
  return { padding: p.every((v) => v === 0) ? 'VALID' : 'EXPLICIT', pads: [...p] };
}

const explicit = (p: readonly number[]) => [0, 0, p[0]!, p[2]!, p[1]!, p[3]!, 0, 0];
const quad = (v: readonly number[] | undefined) => [1, v?.[0] ?? 1, v?.[1] ?? 1, 1];

/**
 * A 1-D convolution as TensorFlow's own conv1d (nn_ops.py) builds it, and so as Keras's Conv1D
 * exports: the NWC input expanded to [N, 1, W, C], the [k, Cin, Cout] filter to [1, k, Cin, Cout],
 * a Conv2D striding along W, and the unit axis squeezed off again.
 */
function conv1d(ctx: ExportContext): string[] {
  if (attrInt(ctx.node, 'group', 1) !== 1) ctx.fail('group 1 for a 1-D convolution');
  const stride = attrInts(ctx.node, 'strides')?.[0] ?? 1;
  const dilation = attrInts(ctx.node, 'dilations')?.[0] ?? 1;
  const auto = attrString(ctx.node, 'auto_pad', 'NOTSET');
  let padding: string;
  let pads = [0, 0];
  if (auto === 'SAME_UPPER') padding = 'SAME';
  else if (auto === 'VALID') padding = 'VALID';
  else if (auto === 'NOTSET') {
    pads = [...(attrInts(ctx.node, 'pads') ?? [0, 0])];
    if (pads.length !== 2) ctx.fail('1-D padding');
    padding = pads.every((p) => p === 0) ? 'VALID' : 'EXPLICIT';
  } else return ctx.fail(`auto_pad SAME_UPPER, VALID or NOTSET (TF pads SAME at the end), not ${auto}`);
  const nwc = ctx.tf('Transpose', [ctx.input(0), ctx.const(i32([0, 2, 1]))], { T: T(ctx), Tperm: tfAttr.type(3) });
  const x = ctx.tf('ExpandDims', [nwc, ctx.const(Tensor.from('int32', [], [1]))], { T: T(ctx), Tdim: tfAttr.type(3) });
  // ONNX [Cout, Cin, k] is TF's [k, Cin, Cout], the variable Keras's Conv1D holds; conv1d gives it its unit height in the graph.
  const kernel = ctx.weight(1, (t) => permuted(t, [2, 1, 0]), 'wio');
  const filter = ctx.tf('ExpandDims', [kernel, ctx.const(Tensor.from('int32', [], [0]))], { T: T(ctx), Tdim: tfAttr.type(3) });
  let y = ctx.tf('Conv2D', [x, filter], {
    T: T(ctx),
    strides: tfAttr.ints([1, 1, stride, 1]),
    dilations: tfAttr.ints([1, 1, dilation, 1]),
    padding: tfAttr.string(padding),
    explicit_paddings: tfAttr.ints(padding === 'EXPLICIT' ? [0, 0, 0, 0, pads[0]!, pads[1]!, 0, 0] : []),
    data_format: tfAttr.string('NHWC'),
    use_cudnn_on_gpu: tfAttr.bool(true),
  });
  if (ctx.hasInput(2)) y = ctx.tf('BiasAdd', [y, ctx.input(2)], { T: T(ctx), data_format: tfAttr.string('NHWC') });
  const squeezed = ctx.tf('Squeeze', [y], { T: T(ctx), squeeze_dims: tfAttr.ints([1]) });
  return [ctx.tf('Transpose', [squeezed, ctx.const(i32([0, 2, 1]))], { T: T(ctx), Tperm: tfAttr.type(3) })];
}

const conv: ExportEntry = {
  tf: ['Transpose', 'Pad', 'Conv2D', 'DepthwiseConv2dNative', 'SplitV', 'StridedSlice', 'ConcatV2', 'BiasAdd', 'ExpandDims', 'Squeeze'],
  rank: (_n, _r, constant) => (constant(1)?.shape.length === 3 ? 3 : 4),
  emit(ctx) {
    const w = ctx.constant(1);
    if (w && w.shape.length === 3) return conv1d(ctx);
    if (!w || w.shape.length !== 4) return ctx.fail('a constant 3-D or 4-D weight');
    if (ctx.rank(0) !== undefined && ctx.rank(0) !== 4) ctx.fail('a 4-D input (TensorFlow convolves 2-D images here)');
    const [outC, inPerGroup, kh, kw] = w.shape as [number, number, number, number];
    const group = attrInt(ctx.node, 'group', 1);
    if (outC % group !== 0) ctx.fail(`output channels (${outC}) a multiple of group (${group})`);
    const depthwise = inPerGroup === 1 && group > 1;
    let { padding, pads } = tfPadding(ctx);
    let x = toNhwc(ctx, ctx.input(0));
    // DepthwiseConv2dNative with padding EXPLICIT followed by BiasAdd aborts TensorFlow
    // (tensor_format.h: Check failed: index >= 0 && index < num_total_dims), and the grouped form
    // splits the input: both pad first and convolve VALID, which every TF runtime and TF.js run.
    if (padding === 'EXPLICIT' && group > 1) {
      x = ctx.tf('Pad', [x, ctx.const(Tensor.from('int32', [4, 2], explicit(pads)))], { T: T(ctx), Tpaddings: tfAttr.type(3) });
      [padding, pads] = ['VALID', [0, 0, 0, 0]];
    }
    const common = {
      T: T(ctx),
      strides: tfAttr.ints(quad(attrInts(ctx.node, 'strides'))),
      dilations: tfAttr.ints(quad(attrInts(ctx.node, 'dilations'))),
      padding: tfAttr.string(padding),
      explicit_paddings: tfAttr.ints(padding === 'EXPLICIT' ? explicit(pads) : []),
      data_format: tfAttr.string('NHWC'),
    };
    const conv2d = (input: string, filter: string) => ctx.tf('Conv2D', [input, filter], { ...common, use_cudnn_on_gpu: tfAttr.bool(true) });
    let y: string;
    if (depthwise) {
      // Depthwise: OIHW [C*M, 1, kh, kw] is HWIO [kh, kw, 1, C*M], the same bytes as [kh, kw, C, M].
      const filter = ctx.weight(1, (t) => reshaped(permuted(t, OIHW_TO_HWIO), [kh, kw, group, outC / group]), 'depthwise');
      y = ctx.tf('DepthwiseConv2dNative', [x, filter], common);
    } else if (group > 1) {
      // Grouped: one Conv2D per group over its slice of the channels (TF's CPU kernels and TF.js
      // have no grouped Conv2D), each with its own slice of the output channels' filters.
      const perGroup = outC / group;
      // SplitV with the sizes written out: a reader needs no static channel count to split it back.
      const sizes = Tensor.from('int32', [group], new Array<number>(group).fill(inPerGroup));
      const parts = ctx.tf('SplitV', [x, ctx.const(sizes), ctx.const(Tensor.from('int32', [], [3]))], { T: T(ctx), Tlen: tfAttr.type(3), num_split: tfAttr.int(group) });
      // The filter stays one HWIO weight, as for group 1 (so it reads back under its own name);
      // each group's output channels are sliced from it in the graph.
      const filter = ctx.weight(1, (t) => permuted(t, OIHW_TO_HWIO), 'hwio');
      const outs = [...Array(group).keys()].map((g) => {
        const slice = ctx.tf('StridedSlice', [filter, ctx.const(i32([0, 0, 0, g * perGroup])), ctx.const(i32([kh, kw, inPerGroup, (g + 1) * perGroup])), ctx.const(i32([1, 1, 1, 1]))], {
          T: T(ctx),
          Index: tfAttr.type(3),
          ...masks(),
        });
        return conv2d(`${parts}:${g}`, slice);
      });
      y = ctx.tf('ConcatV2', [...outs, ctx.const(Tensor.from('int32', [], [3]))], { T: T(ctx), N: tfAttr.int(group), Tidx: tfAttr.type(3) });
    } else {
      y = conv2d(x, ctx.weight(1, (t) => permuted(t, OIHW_TO_HWIO), 'hwio'));
    }
    if (ctx.hasInput(2)) y = ctx.tf('BiasAdd', [y, ctx.input(2)], { T: T(ctx), data_format: tfAttr.string('NHWC') });
    return [toNchw(ctx, y)];
  },
};

function pool(tfOp: 'MaxPool' | 'AvgPool'): ExportEntry {
  return {
    tf: ['Transpose', tfOp, 'PadV2', 'OnesLike', 'RealDiv'],
    rank: () => 4,
    emit(ctx) {
      if (attrInt(ctx.node, 'ceil_mode', 0)) ctx.fail('ceil_mode 0');
      if ((attrInts(ctx.node, 'dilations') ?? [1, 1]).some((d) => d !== 1)) ctx.fail('dilations of 1');
      if (ctx.node.outputs.length > 1 && ctx.node.outputs[1]) ctx.fail('no Indices output');
      const kernel = attrInts(ctx.node, 'kernel_shape') ?? [];
      if (kernel.length !== 2) ctx.fail('a 2-D kernel_shape');
      const { padding, pads } = tfPadding(ctx);
      const attrs = (p: string) => ({
        T: T(ctx),
        ksize: tfAttr.ints(quad(kernel)),
        strides: tfAttr.ints(quad(attrInts(ctx.node, 'strides') ?? kernel)),
        padding: tfAttr.string(p),
        data_format: tfAttr.string('NHWC'),
      });
      const x = toNhwc(ctx, ctx.input(0));
      const includePad = attrInt(ctx.node, 'count_include_pad', 0) !== 0;
      if (padding === 'SAME' && tfOp === 'AvgPool' && includePad) ctx.fail('count_include_pad 0 with SAME padding (TF averages over the real cells only)');
      if (padding !== 'EXPLICIT') return [toNchw(ctx, ctx.tf(tfOp, [x], attrs(padding)))];
      // TF pools pad SAME or not at all: explicit padding is a Pad first, with -inf for a max.
      const paddings = ctx.const(Tensor.from('int32', [4, 2], explicit(pads)));
      const padded = (v: string, fill: number) => ctx.tf('PadV2', [v, paddings, ctx.const(Tensor.from(ctx.dtype(0), [], [fill]))], { T: T(ctx), Tpaddings: tfAttr.type(3) });
      if (tfOp === 'MaxPool') return [toNchw(ctx, ctx.tf(tfOp, [padded(x, -Infinity)], attrs('VALID')))];
      const sums = ctx.tf(tfOp, [padded(x, 0)], attrs('VALID'));
      if (includePad) return [toNchw(ctx, sums)];
      // Averages over the real cells only: the mean over the zero-padded input divided by the
      // mean of a padded mask of ones (the window size cancels).
      const cells = ctx.tf(tfOp, [padded(ctx.tf('OnesLike', [x], { T: T(ctx) }), 0)], attrs('VALID'));
      return [toNchw(ctx, ctx.tf('RealDiv', [sums, cells], { T: T(ctx) }))];
    },
  };
}

const batchNorm: ExportEntry = {
  tf: ['Transpose', 'FusedBatchNormV3'],
  rank: () => 4,
  emit(ctx) {
    if (ctx.node.outputs.slice(1).some((o) => o)) ctx.fail('no running-statistics outputs (training mode)');
    const params = [1, 2, 3, 4].map((i) => ctx.input(i));
    const y = ctx.tf('FusedBatchNormV3', [toNhwc(ctx, ctx.input(0)), ...params], {
      T: T(ctx),
      U: T(ctx, 1),
      epsilon: tfAttr.float(attrFloat(ctx.node, 'epsilon', 1e-5)),
      exponential_avg_factor: tfAttr.float(1),
      data_format: tfAttr.string('NHWC'),
      is_training: tfAttr.bool(false),
    });
    return [toNchw(ctx, y)];
  },
};

/** Gemm: MatMul (with its transposes), then alpha, then the bias (BiasAdd for a vector). */
const gemm: ExportEntry = {
  tf: ['MatMul', 'Mul', 'BiasAdd', 'AddV2'],
  rank: () => 2,
  emit(ctx) {
    const alpha = attrFloat(ctx.node, 'alpha', 1);
    const beta = attrFloat(ctx.node, 'beta', 1);
    const hasC = ctx.hasInput(2);
    const mm = { T: T(ctx), transpose_a: tfAttr.bool(attrInt(ctx.node, 'transA', 0) !== 0), transpose_b: tfAttr.bool(attrInt(ctx.node, 'transB', 0) !== 0) };
    let y = ctx.tf('MatMul', [ctx.input(0), ctx.input(1)], mm, !hasC && alpha === 1);
    const scale = (v: string, k: number, final: boolean) => ctx.tf('Mul', [v, ctx.const(Tensor.from(ctx.dtype(0), [], [k]))], { T: T(ctx) }, final);
    if (alpha !== 1) y = scale(y, alpha, !hasC);
    if (!hasC) return [y];
    let c = ctx.input(2);
    if (beta !== 1) c = scale(c, beta, false);
    const vector = ctx.rank(2) === 1;
    return [ctx.tf(vector ? 'BiasAdd' : 'AddV2', [y, c], vector ? { T: T(ctx), data_format: tfAttr.string('NHWC') } : { T: T(ctx) }, true)];
  },
};

const matMul: ExportEntry = {
  tf: ['MatMul', 'BatchMatMulV2', 'ExpandDims', 'Squeeze'],
  rank: (_n, r) => (r[0] === undefined || r[1] === undefined ? undefined : Math.max(r[0], r[1], 2) - (r[0] === 1 ? 1 : 0) - (r[1] === 1 ? 1 : 0)),
  emit(ctx) {
    const [ra, rb] = [ctx.rank(0), ctx.rank(1)];
    if (ra === 2 && rb === 2) return [ctx.tf('MatMul', [ctx.input(0), ctx.input(1)], { T: T(ctx), transpose_a: tfAttr.bool(false), transpose_b: tfAttr.bool(false) }, true)];
    // ONNX (numpy) matmul promotes a vector to a matrix and drops that axis again; TF's does not.
    const expand = (i: number, axis: number) => ctx.tf('ExpandDims', [ctx.input(i), ctx.const(Tensor.from('int32', [], [axis]))], { T: T(ctx), Tdim: tfAttr.type(3) });
    const a = ra === 1 ? expand(0, 0) : ctx.input(0);
    const b = rb === 1 ? expand(1, 1) : ctx.input(1);
    const squeeze = [...(ra === 1 ? [-2] : []), ...(rb === 1 ? [-1] : [])];
    const y = ctx.tf('BatchMatMulV2', [a, b], { T: T(ctx), adj_x: tfAttr.bool(false), adj_y: tfAttr.bool(false) }, !squeeze.length);
    return [squeeze.length ? ctx.tf('Squeeze', [y], { T: T(ctx), squeeze_dims: tfAttr.ints(squeeze) }, true) : y];
  },
};

/** TF's softmax works on the last axis: another axis is swapped to the end and back. */
function softmax(op: string): ExportEntry {
  return {
    tf: [op, 'Transpose'],
    emit(ctx) {
      const rank = ctx.rank(0);
      // Before opset 13 the axis defaults to 1 and splits the input into a 2-D matrix there.
      let axis = attrInt(ctx.node, 'axis', ctx.opset >= 13 ? -1 : 1);
      if (axis < 0 && rank !== undefined) axis += rank;
      if (axis === -1 || axis === (rank ?? 0) - 1) return [ctx.tf(op, [ctx.input(0)], { T: T(ctx) }, true)];
      if (ctx.opset < 13) ctx.fail(`the last axis before opset 13 (${op} then flattens the axes from ${axis} on into one)`);
      if (rank === undefined || axis < 0 || axis >= rank) return ctx.fail('a known rank for a softmax over an inner axis');
      const perm = [...Array(rank).keys()];
      [perm[axis], perm[rank - 1]] = [perm[rank - 1]!, perm[axis]!];
      const swap = (v: string, final: boolean) => ctx.tf('Transpose', [v, ctx.const(i32(perm))], { T: T(ctx), Tperm: tfAttr.type(3) }, final);
      return [swap(ctx.tf(op, [swap(ctx.input(0), false)], { T: T(ctx) }), true)];
    },
  };
}

/** Reshape's shape as TF means it: ONNX's 0 (copy the input's size) becomes that size, read at run time. */
function reshapeTo(ctx: ExportContext, x: string, dims: readonly number[], allowZero: boolean): string {
  const attrs = { T: T(ctx), Tshape: tfAttr.type(3) };
  if (allowZero || !dims.includes(0)) return ctx.tf('Reshape', [x, ctx.const(i32(dims))], attrs, true);
  const shape = ctx.tf('Shape', [x], { T: T(ctx), out_type: tfAttr.type(3) });
  const parts = dims.map((d, i) =>
    d !== 0 ? ctx.const(i32([d])) : ctx.tf('StridedSlice', [shape, ctx.const(i32([i])), ctx.const(i32([i + 1])), ctx.const(i32([1]))], { T: tfAttr.type(3), Index: tfAttr.type(3), ...masks() }),
  );
  const full = parts.length === 1 ? parts[0]! : ctx.tf('ConcatV2', [...parts, ctx.const(Tensor.from('int32', [], [0]))], { T: tfAttr.type(3), N: tfAttr.int(parts.length), Tidx: tfAttr.type(3) });
  return ctx.tf('Reshape', [x, full], attrs, true);
}

const masks = (m: Partial<Record<'begin_mask' | 'end_mask' | 'ellipsis_mask' | 'new_axis_mask' | 'shrink_axis_mask', number>> = {}) =>
  Object.fromEntries(['begin_mask', 'end_mask', 'ellipsis_mask', 'new_axis_mask', 'shrink_axis_mask'].map((k) => [k, tfAttr.int(m[k as keyof typeof m] ?? 0)]));

const RESHAPE_OPS = ['Reshape', 'Shape', 'StridedSlice', 'ConcatV2', 'ZerosLike', 'Equal', 'SelectV2'];

const reshape: ExportEntry = {
  tf: RESHAPE_OPS,
  rank: (_n, _r, constant) => constant(1)?.shape[0],
  emit(ctx) {
    const allowZero = attrInt(ctx.node, 'allowzero', 0) !== 0;
    if (ctx.constant(1)) return [reshapeTo(ctx, ctx.input(0), ctx.ints(1, 'shape'), allowZero)];
    // A shape computed at run time: TF's Reshape takes it as is, which is ONNX's allowzero.
    if (allowZero) return [ctx.tf('Reshape', [ctx.input(0), ctx.input(1)], { T: T(ctx), Tshape: T(ctx, 1) }, true)];
    // Else a 0 at position i copies the input's size i: where(shape == 0, shape(x)[:len], shape).
    const st = { T: T(ctx, 1) };
    const shape = ctx.input(1);
    const zeros = ctx.tf('ZerosLike', [shape], st);
    const padded = ctx.tf('ConcatV2', [ctx.tf('Shape', [ctx.input(0)], { T: T(ctx), out_type: T(ctx, 1) }), zeros, ctx.const(Tensor.from('int32', [], [0]))], { ...st, N: tfAttr.int(2), Tidx: tfAttr.type(3) });
    const length = ctx.tf('Shape', [shape], { T: T(ctx, 1), out_type: tfAttr.type(3) });
    const copied = ctx.tf('StridedSlice', [padded, ctx.const(i32([0])), length, ctx.const(i32([1]))], { ...st, Index: tfAttr.type(3), ...masks() });
    const full = ctx.tf('SelectV2', [ctx.tf('Equal', [shape, zeros], { ...st, incompatible_shape_error: tfAttr.bool(true) }), copied, shape], st);
    return [ctx.tf('Reshape', [ctx.input(0), full], { T: T(ctx), Tshape: T(ctx, 1) }, true)];
  },
};

const flatten: ExportEntry = {
  tf: [...RESHAPE_OPS, 'Prod'],
  rank: () => 2,
  emit(ctx) {
    let axis = attrInt(ctx.node, 'axis', 1);
    if (axis < 0) axis = normAxis(ctx, axis, needRank(ctx, 0, 'a negative axis counts from its end'));
    if (axis === 0) return [reshapeTo(ctx, ctx.input(0), [1, -1], false)];
    if (axis === 1) return [reshapeTo(ctx, ctx.input(0), [0, -1], false)];
    // Any other axis (transformers' attention masks flatten at -1 or 2): the outer size is the
    // product of the input's leading sizes, read at run time; the inner one is what remains.
    const x = ctx.input(0);
    const shape = ctx.tf('Shape', [x], { T: T(ctx), out_type: tfAttr.type(3) });
    const lead = ctx.tf('StridedSlice', [shape, ctx.const(i32([0])), ctx.const(i32([axis])), ctx.const(i32([1]))], { T: tfAttr.type(3), Index: tfAttr.type(3), ...masks() });
    const outer = ctx.tf('Prod', [lead, ctx.const(i32([0]))], { T: tfAttr.type(3), Tidx: tfAttr.type(3), keep_dims: tfAttr.bool(true) });
    const full = ctx.tf('ConcatV2', [outer, ctx.const(i32([-1])), ctx.const(Tensor.from('int32', [], [0]))], { T: tfAttr.type(3), N: tfAttr.int(2), Tidx: tfAttr.type(3) });
    return [ctx.tf('Reshape', [x, full], { T: T(ctx), Tshape: tfAttr.type(3) }, true)];
  },
};

/** ONNX reductions take axes as an attribute or (ReduceSum from opset 13, the rest from 18) an input. */
function reduce(tfOp: string): ExportEntry {
  return {
    tf: [tfOp, 'Identity'],
    rank(n, r, constant) {
      const axes = attrInts(n, 'axes') ?? constant(1)?.toNumbers();
      if (attrInt(n, 'keepdims', 1)) return r[0];
      return r[0] === undefined || !axes?.length ? (axes?.length ? undefined : 0) : r[0] - axes.length;
    },
    emit(ctx) {
      let axes = attrInts(ctx.node, 'axes') ?? (ctx.hasInput(1) ? ctx.ints(1, 'axes') : undefined);
      if ((!axes || axes.length === 0) && attrInt(ctx.node, 'noop_with_empty_axes', 0)) return [ctx.tf('Identity', [ctx.input(0)], { T: T(ctx) }, true)];
      if (!axes || axes.length === 0) {
        const rank = ctx.rank(0);
        if (rank === undefined) ctx.fail('axes, or a known input rank');
        axes = [...Array(rank).keys()];
      }
      return [ctx.tf(tfOp, [ctx.input(0), ctx.const(i32(axes))], { T: T(ctx), Tidx: tfAttr.type(3), keep_dims: tfAttr.bool(attrInt(ctx.node, 'keepdims', 1) !== 0) }, true)];
    },
  };
}

const clip: ExportEntry = {
  tf: ['Relu6', 'ClipByValue', 'Maximum', 'Minimum', 'Identity'],
  emit(ctx) {
    const bound = (i: number) => (ctx.hasInput(i) ? ctx.constant(i)?.toNumbers()[0] ?? null : undefined);
    const [lo, hi] = [bound(1), bound(2)];
    if (lo === 0 && hi === 6) return [ctx.tf('Relu6', [ctx.input(0)], { T: T(ctx) }, true)];
    if (ctx.hasInput(1) && ctx.hasInput(2)) return [ctx.tf('ClipByValue', [ctx.input(0), ctx.input(1), ctx.input(2)], { T: T(ctx) }, true)];
    if (ctx.hasInput(1)) return [ctx.tf('Maximum', [ctx.input(0), ctx.input(1)], { T: T(ctx) }, true)];
    if (ctx.hasInput(2)) return [ctx.tf('Minimum', [ctx.input(0), ctx.input(2)], { T: T(ctx) }, true)];
    return [ctx.tf('Identity', [ctx.input(0)], { T: T(ctx) }, true)];
  },
};

/**
 * Slice as a StridedSlice over axes 0..max(axes): the axes not sliced take everything (begin and
 * end mask bits), and ONNX's "to the end" sentinels (|v| >= 2^62) become mask bits as well. Starts,
 * ends or steps computed at run time (constant axes) are assembled into the vectors from pieces;
 * TF clamps them to the axis as ONNX does.
 */
const slice: ExportEntry = {
  tf: ['StridedSlice', 'ConcatV2', 'Cast'],
  emit(ctx) {
    const rank = ctx.rank(0);
    const n = ctx.constant(1)?.size ?? ctx.constant(2)?.size ?? (ctx.hasInput(3) ? ctx.constant(3)?.size : undefined);
    const axes = (ctx.hasInput(3) ? ctx.ints(3, 'axes') : [...Array(n ?? ctx.fail('constant starts, ends or axes (how many axes are sliced)')).keys()]).map((a) =>
      a < 0 ? (rank === undefined ? ctx.fail('a known rank for negative axes') : a + rank) : a,
    );
    const fixed = (i: number) => (ctx.hasInput(i) ? ctx.constant(i)?.toNumbers() : axes.map(() => 1));
    const [starts, ends, steps] = [fixed(1), fixed(2), fixed(4)];
    const length = Math.max(...axes) + 1;
    let beginMask = 0;
    let endMask = 0;
    const huge = 2 ** 62;
    // One vector per operand: constant values where known, else pieces of the computed input.
    const vector = (values: number[] | undefined, input: number, fill: number, maskOf?: (bit: number) => void) => {
      if (values) {
        const full = new Array<number>(length).fill(fill);
        axes.forEach((a, i) => {
          if (maskOf && Math.abs(values[i]!) >= huge) maskOf(1 << a);
          else full[a] = values[i]!;
        });
        return ctx.const(Tensor.from('int64', [length], full.map(BigInt)));
      }
      let v = ctx.input(input);
      if (ctx.dtype(input) !== 'int64') v = ctx.tf('Cast', [v], { SrcT: T(ctx, input), DstT: tfAttr.type(9), Truncate: tfAttr.bool(false) });
      const pieces = [...Array(length).keys()].map((a) => {
        const i = axes.indexOf(a);
        if (i < 0) return ctx.const(Tensor.from('int64', [1], [BigInt(fill)]));
        return ctx.tf('StridedSlice', [v, ctx.const(i32([i])), ctx.const(i32([i + 1])), ctx.const(i32([1]))], { T: tfAttr.type(9), Index: tfAttr.type(3), ...masks() });
      });
      return pieces.length === 1 ? pieces[0]! : ctx.tf('ConcatV2', [...pieces, ctx.const(Tensor.from('int32', [], [0]))], { T: tfAttr.type(9), N: tfAttr.int(length), Tidx: tfAttr.type(3) });
    };
    for (let a = 0; a < length; a++) {
      if (axes.includes(a)) continue;
      beginMask |= 1 << a;
      endMask |= 1 << a;
    }
    const begin = vector(starts, 1, 0, (bit) => (beginMask |= bit));
    const end = vector(ends, 2, 0, (bit) => (endMask |= bit));
    const strides = vector(steps, 4, 1);
    return [ctx.tf('StridedSlice', [ctx.input(0), begin, end, strides], { T: T(ctx), Index: tfAttr.type(9), ...masks({ begin_mask: beginMask, end_mask: endMask }) }, true)];
  },
};

const castTo = (n: Node): DType | undefined => onnxCodeToDType(attrInt(n, 'to', 0));

const typeOf = (d: DType) => tfAttr.type(tfCode(d));
const scalarOf = (ctx: ExportContext, dtype: DType, v: number) => ctx.const(Tensor.from(dtype, [], [v]));
const isFloat = (d: DType) => d.startsWith('float') || d === 'bfloat16';

/** A rank the lowering needs: input i's, or a one-line refusal. */
function needRank(ctx: ExportContext, i: number, why: string): number {
  const r = ctx.rank(i);
  return r === undefined ? ctx.fail(`a known rank for input ${i} (${why})`) : r;
}

const normAxis = (ctx: ExportContext, axis: number, rank: number) => {
  const a = axis < 0 ? axis + rank : axis;
  return a < 0 || a >= rank ? ctx.fail(`an axis within rank ${rank}, not ${axis}`) : a;
};

/** The size of axis `axis` of `x` (a TF tensor of dtype `dtype`) at run time, as a scalar of type `out`. */
function dimOf(ctx: ExportContext, x: string, dtype: DType, axis: number, out: 'int32' | 'int64'): string {
  const shape = ctx.tf('Shape', [x], { T: typeOf(dtype), out_type: typeOf(out) });
  return ctx.tf('StridedSlice', [shape, ctx.const(i32([axis])), ctx.const(i32([axis + 1])), ctx.const(i32([1]))], { T: typeOf(out), Index: tfAttr.type(3), ...masks({ shrink_axis_mask: 1 }) });
}

/** x[..., start:end, ...] along one axis (end undefined: to the end). */
function sliceAxis(ctx: ExportContext, x: string, dtype: DType, rank: number, axis: number, start: number, end: number | undefined): string {
  const begin = new Array<number>(rank).fill(0);
  const stop = new Array<number>(rank).fill(0);
  begin[axis] = start;
  stop[axis] = end ?? 0;
  const all = ((1 << rank) - 1) & ~(1 << axis);
  return ctx.tf('StridedSlice', [x, ctx.const(i32(begin)), ctx.const(i32(stop)), ctx.const(i32(new Array<number>(rank).fill(1)))], {
    T: typeOf(dtype),
    Index: tfAttr.type(3),
    ...masks({ begin_mask: all, end_mask: end === undefined ? all | (1 << axis) : all }),
  });
}

/** A scalar int32 from IR input i (a constant, or a [1]-shaped/scalar value reshaped and cast). */
function scalarInt(ctx: ExportContext, i: number): string {
  if (ctx.constant(i)) return ctx.const(Tensor.from('int32', [], [ctx.ints(i, `input ${i}`)[0]!]));
  let v = ctx.tf('Reshape', [ctx.input(i), ctx.const(i32([]))], { T: T(ctx, i), Tshape: tfAttr.type(3) });
  if (ctx.dtype(i) !== 'int32') v = ctx.tf('Cast', [v], { SrcT: T(ctx, i), DstT: tfAttr.type(3), Truncate: tfAttr.bool(false) });
  return v;
}

const toBool = () => 'bool' as DType;

const compare = (op: string, extra: TfAttrs = {}): ExportEntry => ({
  tf: [op],
  dtype: toBool,
  rank: maxRank,
  emit: (ctx) => [ctx.tf(op, [ctx.input(0), ctx.input(1)], { T: T(ctx), ...extra }, true)],
});

const logical = (op: string): ExportEntry => ({
  tf: [op],
  rank: maxRank,
  emit: (ctx) => [ctx.tf(op, [...Array(ctx.node.inputs.length).keys()].map((i) => ctx.input(i)), {}, true)],
});

/** Variadic Max/Min/Sum/Mean as a chain of binary ops (Sum and Mean through AddN). */
function variadic(op: 'Maximum' | 'Minimum' | 'AddN', mean = false): ExportEntry {
  return {
    tf: [op, 'Identity', 'RealDiv'],
    rank: maxRank,
    emit(ctx) {
      const n = ctx.node.inputs.length;
      const xs = [...Array(n).keys()].map((i) => ctx.input(i));
      if (n === 1) return [ctx.tf('Identity', xs, { T: T(ctx) }, true)];
      if (op === 'AddN') {
        // AddN needs one shape; differing shapes broadcast through Maximum-style chaining instead.
        const ranks = xs.map((_, i) => ctx.rank(i));
        if (ranks.some((r) => r !== ranks[0] || r === undefined)) ctx.fail('inputs of one rank (TF adds N tensors of one shape)');
        const sum = ctx.tf('AddN', xs, { T: T(ctx), N: tfAttr.int(n) }, !mean);
        return [mean ? ctx.tf('RealDiv', [sum, scalarOf(ctx, ctx.dtype(0), n)], { T: T(ctx) }, true) : sum];
      }
      let y = xs[0]!;
      for (let i = 1; i < n; i++) y = ctx.tf(op, [y, xs[i]!], { T: T(ctx) }, i === n - 1);
      return [y];
    },
  };
}

function globalPool(op: 'Mean' | 'Max'): ExportEntry {
  return {
    tf: [op],
    emit(ctx) {
      const rank = needRank(ctx, 0, 'it reduces every axis after the channels');
      if (rank < 3) ctx.fail('an input of rank 3 or more (batch, channels, spatial axes)');
      const axes = [...Array(rank - 2).keys()].map((a) => a + 2);
      return [ctx.tf(op, [ctx.input(0), ctx.const(i32(axes))], { T: T(ctx), Tidx: tfAttr.type(3), keep_dims: tfAttr.bool(true) }, true)];
    },
  };
}

/** alpha * x + beta clipped to [0, 1] (HardSigmoid; HardSwish multiplies x by it). */
function hardSigmoid(ctx: ExportContext, alpha: number, beta: number, final: boolean): string {
  const d = ctx.dtype(0);
  const lin = ctx.tf('AddV2', [ctx.tf('Mul', [ctx.input(0), scalarOf(ctx, d, alpha)], { T: T(ctx) }), scalarOf(ctx, d, beta)], { T: T(ctx) });
  return ctx.tf('ClipByValue', [lin, scalarOf(ctx, d, 0), scalarOf(ctx, d, 1)], { T: T(ctx) }, final);
}

const layerNorm: ExportEntry = {
  tf: ['Mean', 'Sub', 'Square', 'AddV2', 'Rsqrt', 'Mul'],
  emit(ctx) {
    if (ctx.node.outputs.slice(1).some((o) => o)) ctx.fail('no Mean or InvStdDev outputs');
    const rank = needRank(ctx, 0, 'it normalizes the axes from `axis` on');
    const axis = normAxis(ctx, attrInt(ctx.node, 'axis', -1), rank);
    const axes = ctx.const(i32([...Array(rank - axis).keys()].map((a) => a + axis)));
    const t = { T: T(ctx) };
    const mean = (v: string) => ctx.tf('Mean', [v, axes], { ...t, Tidx: tfAttr.type(3), keep_dims: tfAttr.bool(true) });
    const d = ctx.tf('Sub', [ctx.input(0), mean(ctx.input(0))], t);
    const inv = ctx.tf('Rsqrt', [ctx.tf('AddV2', [mean(ctx.tf('Square', [d], t)), scalarOf(ctx, ctx.dtype(0), attrFloat(ctx.node, 'epsilon', 1e-5))], t)], t);
    const hasB = ctx.hasInput(2);
    const y = ctx.tf('Mul', [ctx.tf('Mul', [d, inv], t), ctx.input(1)], t, !hasB);
    return [hasB ? ctx.tf('AddV2', [y, ctx.input(2)], t, true) : y];
  },
};

const gelu: ExportEntry = {
  tf: ['Mul', 'Erf', 'AddV2', 'Tanh'],
  emit(ctx) {
    const d = ctx.dtype(0);
    const t = { T: T(ctx) };
    const x = ctx.input(0);
    const mul = (a: string, b: string) => ctx.tf('Mul', [a, b], t);
    const approx = attrString(ctx.node, 'approximate', 'none');
    let inner: string;
    if (approx === 'tanh') {
      const cube = mul(mul(x, x), x);
      const poly = ctx.tf('AddV2', [x, mul(cube, scalarOf(ctx, d, 0.044715))], t);
      inner = ctx.tf('Tanh', [mul(poly, scalarOf(ctx, d, Math.sqrt(2 / Math.PI)))], t);
    } else if (approx === 'none') {
      inner = ctx.tf('Erf', [mul(x, scalarOf(ctx, d, Math.SQRT1_2))], t);
    } else {
      return ctx.fail(`approximate "none" or "tanh", not ${JSON.stringify(approx)}`);
    }
    const onePlus = ctx.tf('AddV2', [inner, scalarOf(ctx, d, 1)], t);
    return [ctx.tf('Mul', [mul(x, scalarOf(ctx, d, 0.5)), onePlus], t, true)];
  },
};

/** ONNX indices may be negative (from the end); TF's gathers refuse them: they wrap with FloorMod. */
function wrapIndices(ctx: ExportContext, data: number, indices: number, axis: number): string {
  const idx = ctx.constant(indices);
  const values = idx?.toNumbers();
  if (idx && values && values.every((v) => v >= 0)) return ctx.input(indices);
  const table = ctx.constant(data);
  if (idx && values && table) {
    const n = table.shape[axis]!;
    return ctx.const(Tensor.from(idx.dtype, idx.shape, values.map((v) => (v < 0 ? v + n : v))));
  }
  const dt = ctx.dtype(indices);
  if (dt !== 'int32' && dt !== 'int64') return ctx.fail('int32 or int64 indices');
  return ctx.tf('FloorMod', [ctx.input(indices), dimOf(ctx, ctx.input(data), ctx.dtype(data), axis, dt)], { T: T(ctx, indices) });
}

const gather: ExportEntry = {
  tf: ['GatherV2', 'FloorMod', 'Shape', 'StridedSlice'],
  rank: (_n, r) => (r[0] === undefined || r[1] === undefined ? undefined : r[0] + r[1] - 1),
  emit(ctx) {
    const rank = needRank(ctx, 0, 'negative axes and indices count from its end');
    const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), rank);
    const indices = wrapIndices(ctx, 0, 1, axis);
    return [ctx.tf('GatherV2', [ctx.input(0), indices, ctx.const(Tensor.from('int32', [], [axis]))], { Tparams: T(ctx), Tindices: T(ctx, 1), Taxis: tfAttr.type(3), batch_dims: tfAttr.int(0) }, true)];
  },
};

/** GatherElements: the full coordinates of every output cell (iotas on the other axes), then GatherNd. */
const gatherElements: ExportEntry = {
  tf: ['GatherNd', 'Pack', 'BroadcastTo', 'Reshape', 'Range', 'Shape', 'StridedSlice', 'FloorMod'],
  rank: (_n, r) => r[1],
  emit(ctx) {
    const rank = needRank(ctx, 1, 'one coordinate per axis');
    const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), rank);
    const dt = ctx.dtype(1);
    if (dt !== 'int32' && dt !== 'int64') return ctx.fail('int32 or int64 indices');
    const idx = wrapIndices(ctx, 0, 1, axis);
    const shape = ctx.tf('Shape', [ctx.input(1)], { T: T(ctx, 1), out_type: typeOf(dt) });
    const coords = [...Array(rank).keys()].map((a) => {
      if (a === axis) return idx;
      const n = dimOf(ctx, ctx.input(1), dt, a, dt);
      const iota = ctx.tf('Range', [scalarOf(ctx, dt, 0), n, scalarOf(ctx, dt, 1)], { Tidx: typeOf(dt) });
      const along = ctx.tf('Reshape', [iota, ctx.const(i32([...Array(rank).keys()].map((b) => (b === a ? -1 : 1))))], { T: typeOf(dt), Tshape: tfAttr.type(3) });
      return ctx.tf('BroadcastTo', [along, shape], { T: typeOf(dt), Tidx: typeOf(dt) });
    });
    const full = ctx.tf('Pack', coords, { T: typeOf(dt), N: tfAttr.int(rank), axis: tfAttr.int(-1) });
    return [ctx.tf('GatherNd', [ctx.input(0), full], { Tparams: T(ctx), Tindices: typeOf(dt) }, true)];
  },
};

const gatherNd: ExportEntry = {
  tf: ['GatherNd'],
  rank: (_n, r, constant) => {
    const idx = constant(1);
    return r[0] === undefined || r[1] === undefined || !idx ? undefined : r[0] + r[1] - 1 - idx.shape[idx.shape.length - 1]!;
  },
  emit(ctx) {
    if (attrInt(ctx.node, 'batch_dims', 0) !== 0) ctx.fail('batch_dims 0 (TF GatherNd has no batch axes)');
    return [ctx.tf('GatherNd', [ctx.input(0), ctx.input(1)], { Tparams: T(ctx), Tindices: T(ctx, 1) }, true)];
  },
};

/** Constant's value as a tensor, whichever attribute holds it. */
function constantValue(n: Node): Tensor | undefined {
  const a = n.attributes;
  const v = a['value'];
  if (v?.type === 'tensor') return v.value;
  const f = a['value_float'];
  if (f?.type === 'float' || f?.type === 'int') return Tensor.from('float32', [], [f.value]);
  const fs = a['value_floats'];
  if (fs?.type === 'floats') return Tensor.from('float32', [fs.value.length], fs.value);
  const i = a['value_int'];
  if (i?.type === 'int') return Tensor.from('int64', [], [BigInt(i.value)]);
  const is = a['value_ints'];
  if (is?.type === 'ints') return Tensor.from('int64', [is.value.length], is.value.map(BigInt));
  return undefined;
}

const constant: ExportEntry = {
  tf: ['Const'],
  dtype: (n) => constantValue(n)?.dtype,
  rank: (n) => constantValue(n)?.shape.length,
  emit(ctx) {
    const t = constantValue(ctx.node);
    if (!t) return ctx.fail('a value, value_float(s) or value_int(s) attribute (sparse and string constants have no TF form here)');
    return [ctx.tf('Const', [], { dtype: typeOf(t.dtype), value: tfAttr.tensor(tensorToProto(t)) }, true)];
  },
};

const fillValue = (n: Node): Tensor => {
  const v = n.attributes['value'];
  return v?.type === 'tensor' ? v.value : Tensor.from('float32', [1], [0]);
};

const constantOfShape: ExportEntry = {
  tf: ['Fill'],
  dtype: (n) => fillValue(n).dtype,
  rank: (_n, _r, constant) => constant(0)?.size,
  emit(ctx) {
    const v = fillValue(ctx.node);
    const scalar = ctx.const(Tensor.fromBytes(v.dtype, [], v.bytes()));
    return [ctx.tf('Fill', [ctx.input(0), scalar], { T: typeOf(v.dtype), index_type: T(ctx, 0) }, true)];
  },
};

const shape: ExportEntry = {
  tf: ['Shape', 'StridedSlice'],
  dtype: () => 'int64',
  rank: () => 1,
  emit(ctx) {
    const start = attrInt(ctx.node, 'start', 0);
    const end = ctx.node.attributes['end'] ? attrInt(ctx.node, 'end', 0) : undefined;
    const whole = start === 0 && end === undefined;
    const s = ctx.tf('Shape', [ctx.input(0)], { T: T(ctx), out_type: tfAttr.type(9) }, whole);
    if (whole) return [s];
    return [ctx.tf('StridedSlice', [s, ctx.const(i32([start])), ctx.const(i32([end ?? 0])), ctx.const(i32([1]))], { T: tfAttr.type(9), Index: tfAttr.type(3), ...masks({ end_mask: end === undefined ? 1 : 0 }) }, true)];
  },
};

const expand: ExportEntry = {
  tf: ['Shape', 'BroadcastArgs', 'BroadcastTo'],
  rank: (_n, r, constant) => (r[0] === undefined || !constant(1) ? undefined : Math.max(r[0], constant(1)!.size)),
  emit(ctx) {
    // ONNX broadcasts both ways (a 1 in `shape` keeps x's size); BroadcastTo wants the final shape.
    const sd = ctx.dtype(1);
    const xs = ctx.tf('Shape', [ctx.input(0)], { T: T(ctx), out_type: typeOf(sd) });
    const full = ctx.tf('BroadcastArgs', [xs, ctx.input(1)], { T: typeOf(sd) });
    return [ctx.tf('BroadcastTo', [ctx.input(0), full], { T: T(ctx), Tidx: typeOf(sd) }, true)];
  },
};

const split: ExportEntry = {
  tf: ['Split', 'SplitV'],
  emit(ctx) {
    const n = ctx.node.outputs.length;
    const rank = ctx.rank(0);
    let axis = attrInt(ctx.node, 'axis', 0);
    if (axis < 0) axis = rank === undefined ? ctx.fail('a known rank for a negative axis') : axis + rank;
    const sizes = ctx.opset >= 13 ? (ctx.hasInput(1) ? ctx.ints(1, 'split') : undefined) : attrInts(ctx.node, 'split');
    const axisConst = ctx.const(Tensor.from('int32', [], [axis]));
    const y = sizes
      ? ctx.tf('SplitV', [ctx.input(0), ctx.const(i32(sizes)), axisConst], { T: T(ctx), Tlen: tfAttr.type(3), num_split: tfAttr.int(n) }, true)
      : ctx.tf('Split', [axisConst, ctx.input(0)], { T: T(ctx), num_split: tfAttr.int(n) }, true);
    return [...Array(n).keys()].map((k) => (k === 0 ? y : `${y}:${k}`));
  },
};

const pow: ExportEntry = {
  tf: ['Pow', 'Cast'],
  rank: maxRank,
  emit(ctx) {
    let e = ctx.input(1);
    if (ctx.dtype(1) !== ctx.dtype(0)) e = ctx.tf('Cast', [e], { SrcT: T(ctx, 1), DstT: T(ctx), Truncate: tfAttr.bool(false) });
    return [ctx.tf('Pow', [ctx.input(0), e], { T: T(ctx) }, true)];
  },
};

/**
 * Resize (and Upsample) of NCHW images through TF's ResizeBilinear / ResizeNearestNeighbor, which
 * compute exactly these ONNX coordinate modes: linear with half_pixel (pytorch_half_pixel while
 * outputs are larger than 1), align_corners or asymmetric; nearest with asymmetric+floor,
 * half_pixel+round_prefer_ceil (= tf_half_pixel_for_nn+floor) or align_corners+round_prefer_ceil.
 */
const resize: ExportEntry = {
  tf: ['Transpose', 'ResizeBilinear', 'ResizeNearestNeighbor', 'Shape', 'StridedSlice', 'Cast', 'Mul', 'Floor'],
  rank: () => 4,
  emit(ctx) {
    if (needRank(ctx, 0, 'TF resizes NHWC images') !== 4) ctx.fail('a 4-D input (TF resizes the two spatial axes of images)');
    const n = ctx.node;
    const upsample = n.op === 'Upsample';
    const mode = attrString(n, 'mode', 'nearest');
    const coord = upsample ? 'asymmetric' : attrString(n, 'coordinate_transformation_mode', 'half_pixel');
    const nearest = upsample ? 'floor' : attrString(n, 'nearest_mode', 'round_prefer_floor');
    if (attrInt(n, 'antialias', 0)) ctx.fail('antialias 0 (TF.js and TF1 kernels have no antialiased resize)');
    if (attrInt(n, 'exclude_outside', 0)) ctx.fail('exclude_outside 0');
    if (attrInts(n, 'axes')) ctx.fail('no axes attribute');
    if (attrString(n, 'keep_aspect_ratio_policy', 'stretch') !== 'stretch') ctx.fail('keep_aspect_ratio_policy stretch');
    let align = false;
    let half = false;
    if (mode === 'linear' || mode === 'bilinear') {
      if (coord === 'half_pixel' || coord === 'pytorch_half_pixel') half = true;
      else if (coord === 'align_corners') align = true;
      else if (coord !== 'asymmetric') ctx.fail(`linear resize with coordinate mode half_pixel, pytorch_half_pixel, align_corners or asymmetric (TF's ResizeBilinear has no ${coord})`);
    } else if (mode === 'nearest') {
      if ((coord === 'half_pixel' && nearest === 'round_prefer_ceil') || (coord === 'tf_half_pixel_for_nn' && nearest === 'floor')) half = true;
      else if (coord === 'align_corners' && nearest === 'round_prefer_ceil') align = true;
      else if (!(coord === 'asymmetric' && nearest === 'floor'))
        ctx.fail(`nearest resize as TF's ResizeNearestNeighbor rounds: asymmetric+floor, half_pixel+round_prefer_ceil or align_corners+round_prefer_ceil, not ${coord}+${nearest}`);
    } else {
      return ctx.fail(`mode nearest or linear (${mode}: TF.js has no bicubic resize and TF's differs in its cubic coefficient)`);
    }
    // The output size: `sizes` (Resize from opset 11), else floor(input size * scales).
    const sizesAt = upsample ? -1 : 3;
    const scalesAt = upsample ? 1 : ctx.opset >= 11 ? 2 : 1;
    let size: string;
    if (sizesAt > 0 && ctx.hasInput(sizesAt)) {
      if (ctx.constant(sizesAt)) size = ctx.const(i32(ctx.ints(sizesAt, 'sizes').slice(2)));
      else {
        // Sizes computed at run time (torch's interpolate to another tensor's size): the last two.
        const hw = sliceAxis(ctx, ctx.input(sizesAt), ctx.dtype(sizesAt), 1, 0, 2, 4);
        size = ctx.dtype(sizesAt) === 'int32' ? hw : ctx.tf('Cast', [hw], { SrcT: T(ctx, sizesAt), DstT: tfAttr.type(3), Truncate: tfAttr.bool(false) });
      }
    } else {
      const s = attrFloats(n, 'scales') ?? ctx.constant(scalesAt)?.toNumbers() ?? ctx.fail('constant scales or sizes');
      if (s.length !== 4 || s[0] !== 1 || s[1] !== 1) ctx.fail('scales of 1 on the batch and channel axes');
      const hw = sliceAxis(ctx, ctx.tf('Shape', [ctx.input(0)], { T: T(ctx), out_type: tfAttr.type(3) }), 'int32', 1, 0, 2, 4);
      const scaled = ctx.tf('Mul', [ctx.tf('Cast', [hw], { SrcT: tfAttr.type(3), DstT: tfAttr.type(1), Truncate: tfAttr.bool(false) }), ctx.const(Tensor.from('float32', [2], s.slice(2)))], { T: tfAttr.type(1) });
      size = ctx.tf('Cast', [ctx.tf('Floor', [scaled], { T: tfAttr.type(1) })], { SrcT: tfAttr.type(1), DstT: tfAttr.type(3), Truncate: tfAttr.bool(false) });
    }
    const op = mode === 'nearest' ? 'ResizeNearestNeighbor' : 'ResizeBilinear';
    const y = ctx.tf(op, [toNhwc(ctx, ctx.input(0)), size], { T: T(ctx), align_corners: tfAttr.bool(align), half_pixel_centers: tfAttr.bool(half) });
    return [toNchw(ctx, y)];
  },
};

function attrFloats(n: Node, key: string): number[] | undefined {
  const a = n.attributes[key];
  return a?.type === 'floats' ? [...a.value] : undefined;
}

/** Pad: constant as PadV2, reflect as MirrorPad, edge and wrap as slices tiled and concatenated per axis. */
const pad: ExportEntry = {
  tf: ['PadV2', 'MirrorPad', 'Reshape', 'StridedSlice', 'Tile', 'ConcatV2'],
  emit(ctx) {
    const n = ctx.node;
    const mode = attrString(n, 'mode', 'constant');
    const raw = ctx.opset >= 11 ? ctx.ints(1, 'pads') : attrInts(n, 'pads') ?? ctx.fail('a pads attribute');
    const rank = ctx.rank(0) ?? (ctx.hasInput(3) ? ctx.fail('a known rank (pads name axes)') : raw.length / 2);
    const axes = ctx.hasInput(3) ? ctx.ints(3, 'axes').map((a) => normAxis(ctx, a, rank)) : [...Array(rank).keys()];
    if (raw.length !== 2 * axes.length) ctx.fail(`${2 * axes.length} pads (a begin and an end per axis)`);
    const before = new Array<number>(rank).fill(0);
    const after = new Array<number>(rank).fill(0);
    axes.forEach((a, i) => {
      before[a] = raw[i]!;
      after[a] = raw[i + axes.length]!;
    });
    if ([...before, ...after].some((p) => p < 0)) ctx.fail('pads of 0 or more (a negative pad crops, which TF Pad does not)');
    const paddings = () => ctx.const(Tensor.from('int32', [rank, 2], before.flatMap((b, a) => [b, after[a]!])));
    const t = { T: T(ctx), Tpaddings: tfAttr.type(3) };
    if (mode === 'constant') {
      let value: string;
      const has = ctx.opset >= 11 ? ctx.hasInput(2) : false;
      if (!has) value = scalarOf(ctx, ctx.dtype(0), ctx.opset >= 11 ? 0 : attrFloat(n, 'value', 0));
      else if (ctx.constant(2)) value = ctx.const(Tensor.fromBytes(ctx.dtype(0), [], ctx.constant(2)!.bytes()));
      else value = ctx.tf('Reshape', [ctx.input(2), ctx.const(i32([]))], { T: T(ctx), Tshape: tfAttr.type(3) });
      return [ctx.tf('PadV2', [ctx.input(0), paddings(), value], t, true)];
    }
    if (mode === 'reflect') return [ctx.tf('MirrorPad', [ctx.input(0), paddings()], { ...t, mode: tfAttr.string('REFLECT') }, true)];
    if (mode !== 'edge' && mode !== 'wrap') return ctx.fail(`mode constant, reflect, edge or wrap, not ${mode}`);
    let y = ctx.input(0);
    const d = ctx.dtype(0);
    const padded = [...Array(rank).keys()].filter((a) => before[a]! > 0 || after[a]! > 0);
    padded.forEach((a, i) => {
      const [b, e] = [before[a]!, after[a]!];
      const parts: string[] = [];
      const tile = (v: string, k: number) => ctx.tf('Tile', [v, ctx.const(i32([...Array(rank).keys()].map((x) => (x === a ? k : 1))))], { T: T(ctx), Tmultiples: tfAttr.type(3) });
      if (b > 0) parts.push(mode === 'edge' ? tile(sliceAxis(ctx, y, d, rank, a, 0, 1), b) : sliceAxis(ctx, y, d, rank, a, -b, undefined));
      parts.push(y);
      if (e > 0) parts.push(mode === 'edge' ? tile(sliceAxis(ctx, y, d, rank, a, -1, undefined), e) : sliceAxis(ctx, y, d, rank, a, 0, e));
      y = ctx.tf('ConcatV2', [...parts, ctx.const(Tensor.from('int32', [], [a]))], { T: T(ctx), N: tfAttr.int(parts.length), Tidx: tfAttr.type(3) }, i === padded.length - 1);
    });
    return [padded.length ? y : ctx.tf('StridedSlice', [y, ctx.const(i32([0])), ctx.const(i32([0])), ctx.const(i32([1]))], { T: T(ctx), Index: tfAttr.type(3), ...masks({ begin_mask: 1, end_mask: 1 }) }, true)];
  },
};

const einsum: ExportEntry = {
  tf: ['Einsum'],
  rank(n) {
    const eq = attrString(n, 'equation', '').replace(/\s/g, '');
    const out = eq.split('->')[1];
    return out === undefined || out.includes('.') ? undefined : out.length;
  },
  emit(ctx) {
    const n = ctx.node.inputs.length;
    const eq = attrString(ctx.node, 'equation', '').replace(/\s/g, '');
    if (!eq.includes('->')) ctx.fail('an explicit output in the equation ("...->...")');
    return [ctx.tf('Einsum', [...Array(n).keys()].map((i) => ctx.input(i)), { T: T(ctx), N: tfAttr.int(n), equation: tfAttr.string(eq) }, true)];
  },
};

const cumsum: ExportEntry = {
  tf: ['Cumsum'],
  emit: (ctx) => [
    ctx.tf('Cumsum', [ctx.input(0), ctx.input(1)], {
      T: T(ctx),
      Tidx: T(ctx, 1),
      exclusive: tfAttr.bool(attrInt(ctx.node, 'exclusive', 0) !== 0),
      reverse: tfAttr.bool(attrInt(ctx.node, 'reverse', 0) !== 0),
    }, true),
  ],
};

/** Trilu: keep cells whose column - row is >= k (upper) or <= k (lower), from two iotas. */
const trilu: ExportEntry = {
  tf: ['Shape', 'StridedSlice', 'Range', 'ExpandDims', 'Sub', 'GreaterEqual', 'LessEqual', 'SelectV2', 'ZerosLike', 'Reshape', 'Cast'],
  emit(ctx) {
    const rank = needRank(ctx, 0, 'rows and columns are its last two axes');
    if (rank < 2) ctx.fail('an input of rank 2 or more');
    const x = ctx.input(0);
    const iota = (axis: number) => ctx.tf('Range', [scalarOf(ctx, 'int32', 0), dimOf(ctx, x, ctx.dtype(0), axis, 'int32'), scalarOf(ctx, 'int32', 1)], { Tidx: tfAttr.type(3) });
    const rows = ctx.tf('ExpandDims', [iota(rank - 2), ctx.const(Tensor.from('int32', [], [1]))], { T: tfAttr.type(3), Tdim: tfAttr.type(3) });
    const diff = ctx.tf('Sub', [iota(rank - 1), rows], { T: tfAttr.type(3) });
    const k = ctx.hasInput(1) ? scalarInt(ctx, 1) : scalarOf(ctx, 'int32', 0);
    const upper = attrInt(ctx.node, 'upper', 1) !== 0;
    const mask = ctx.tf(upper ? 'GreaterEqual' : 'LessEqual', [diff, k], { T: tfAttr.type(3) });
    return [ctx.tf('SelectV2', [mask, x, ctx.tf('ZerosLike', [x], { T: T(ctx) })], { T: T(ctx) }, true)];
  },
};

const topK: ExportEntry = {
  tf: ['TopKV2', 'Transpose', 'Neg', 'Cast', 'Reshape', 'Identity'],
  dtype: (_n, inputs, k) => (k === 1 ? 'int64' : inputs[0]),
  emit(ctx) {
    const rank = needRank(ctx, 0, 'TF takes the top k of the last axis');
    const axis = normAxis(ctx, attrInt(ctx.node, 'axis', -1), rank);
    const largest = attrInt(ctx.node, 'largest', 1) !== 0;
    const t = { T: T(ctx) };
    const perm = [...Array(rank).keys()];
    [perm[axis], perm[rank - 1]] = [perm[rank - 1]!, perm[axis]!];
    const swap = (v: string, dtype: DType) => (axis === rank - 1 ? v : ctx.tf('Transpose', [v, ctx.const(i32(perm))], { T: typeOf(dtype), Tperm: tfAttr.type(3) }));
    let x = swap(ctx.input(0), ctx.dtype(0));
    // The k smallest are the k largest of -x, ties still in index order.
    if (!largest) x = ctx.tf('Neg', [x], t);
    const top = ctx.tf('TopKV2', [x, scalarInt(ctx, 1)], { ...t, sorted: tfAttr.bool(true) });
    let values = `${top}:0`;
    if (!largest) values = ctx.tf('Neg', [values], t);
    const indices = ctx.tf('Cast', [`${top}:1`], { SrcT: tfAttr.type(3), DstT: tfAttr.type(9), Truncate: tfAttr.bool(false) });
    return [ctx.tf('Identity', [swap(values, ctx.dtype(0))], t, true), ctx.tf('Identity', [swap(indices, 'int64')], { T: tfAttr.type(9) })];
  },
};

const scatterNd: ExportEntry = {
  tf: ['TensorScatterUpdate', 'TensorScatterAdd', 'TensorScatterMax', 'TensorScatterMin'],
  emit(ctx) {
    const reduction = attrString(ctx.node, 'reduction', 'none');
    const op = { none: 'TensorScatterUpdate', add: 'TensorScatterAdd', max: 'TensorScatterMax', min: 'TensorScatterMin' }[reduction];
    if (!op) return ctx.fail(`reduction none, add, max or min (TF has no TensorScatterMul), not ${reduction}`);
    return [ctx.tf(op, [ctx.input(0), ctx.input(1), ctx.input(2)], { T: T(ctx), Tindices: T(ctx, 1) }, true)];
  },
};

/** Axes of Squeeze/Unsqueeze: an input from opset 13, an attribute before. */
const axesOf = (ctx: ExportContext): readonly number[] | undefined => (ctx.opset >= 13 ? (ctx.hasInput(1) ? ctx.ints(1, 'axes') : undefined) : attrInts(ctx.node, 'axes'));
const axesCount = (n: Node, constant: (i: number) => Tensor | undefined) => attrInts(n, 'axes')?.length ?? constant(1)?.size;

/** ConvTranspose as Conv2DBackpropInput over VALID padding, then the pads cropped off. */
const convTranspose: ExportEntry = {
  tf: ['Transpose', 'Conv2DBackpropInput', 'Shape', 'StridedSlice', 'Mul', 'AddV2', 'Pack', 'BiasAdd'],
  rank: () => 4,
  emit(ctx) {
    const n = ctx.node;
    const w = ctx.constant(1);
    if (!w || w.shape.length !== 4) return ctx.fail('a constant 4-D weight');
    if (attrInt(n, 'group', 1) !== 1) ctx.fail('group 1 (TF transposed convolutions are not grouped)');
    if (attrInts(n, 'output_shape')) ctx.fail('pads instead of output_shape');
    const auto = attrString(n, 'auto_pad', 'NOTSET');
    if (auto !== 'NOTSET' && auto !== 'VALID') ctx.fail(`auto_pad NOTSET or VALID, not ${auto}`);
    const [, outC, kh, kw] = w.shape as [number, number, number, number];
    const strides = attrInts(n, 'strides') ?? [1, 1];
    const dil = attrInts(n, 'dilations') ?? [1, 1];
    const pads = auto === 'VALID' ? [0, 0, 0, 0] : attrInts(n, 'pads') ?? [0, 0, 0, 0];
    const outPad = attrInts(n, 'output_padding') ?? [0, 0];
    // Its static shape, as TF2 graphs record one (_output_shapes): the importer sizes the ONNX ConvTranspose from it.
    const [h, wd, c] = [ctx.staticDim(0, 2), ctx.staticDim(0, 3), ctx.staticDim(0, 1)];
    const x = toNhwc(ctx, ctx.input(0), h !== undefined && wd !== undefined ? { _output_shapes: tfAttr.shapes([shapeToProto([null, h, wd, c ?? null])]) } : {});
    // The full (unpadded) output: stride * (in - 1) + dilated kernel + output_padding; a constant
    // when the input's size is known, as Keras writes it (TF's importers need it static).
    const full = (axis: number, k: number, i: number) => {
      const known = ctx.staticDim(0, axis + 1);
      if (known !== undefined) return ctx.const(Tensor.from('int32', [], [strides[i]! * (known - 1) + (k - 1) * dil[i]! + 1 + outPad[i]!]));
      const scaled = ctx.tf('Mul', [dimOf(ctx, x, ctx.dtype(0), axis, 'int32'), scalarOf(ctx, 'int32', strides[i]!)], { T: tfAttr.type(3) });
      return ctx.tf('AddV2', [scaled, scalarOf(ctx, 'int32', (k - 1) * dil[i]! + 1 - strides[i]! + outPad[i]!)], { T: tfAttr.type(3) });
    };
    const sizes = ctx.tf('Pack', [dimOf(ctx, x, ctx.dtype(0), 0, 'int32'), full(1, kh, 0), full(2, kw, 1), scalarOf(ctx, 'int32', outC)], { T: tfAttr.type(3), N: tfAttr.int(4), axis: tfAttr.int(0) });
    // ONNX [Cin, Cout, kh, kw] is TF's backprop filter [kh, kw, Cout, Cin].
    const filter = ctx.weight(1, (t) => permuted(t, [2, 3, 1, 0]), 'backprop');
    let y = ctx.tf('Conv2DBackpropInput', [sizes, filter, x], {
      T: T(ctx),
      strides: tfAttr.ints(quad(strides)),
      dilations: tfAttr.ints(quad(dil)),
      padding: tfAttr.string('VALID'),
      explicit_paddings: tfAttr.ints([]),
      data_format: tfAttr.string('NHWC'),
      use_cudnn_on_gpu: tfAttr.bool(true),
    });
    if (pads.some((p) => p !== 0)) {
      const [t0, l0, b0, r0] = pads as [number, number, number, number];
      const end = (p: number) => (p === 0 ? 0 : -p);
      y = ctx.tf('StridedSlice', [y, ctx.const(i32([0, t0, l0, 0])), ctx.const(i32([0, end(b0), end(r0), 0])), ctx.const(i32([1, 1, 1, 1]))], {
        T: T(ctx),
        Index: tfAttr.type(3),
        ...masks({ begin_mask: 0b1001, end_mask: 0b1001 | (b0 === 0 ? 0b10 : 0) | (r0 === 0 ? 0b100 : 0) }),
      });
    }
    if (ctx.hasInput(2)) y = ctx.tf('BiasAdd', [y, ctx.input(2)], { T: T(ctx), data_format: tfAttr.string('NHWC') });
    return [toNchw(ctx, y)];
  },
};

const argExtreme = (op: 'ArgMax' | 'ArgMin'): ExportEntry => ({
  tf: [op, 'ExpandDims'],
  dtype: () => 'int64',
  rank: (n, r) => (r[0] === undefined ? undefined : attrInt(n, 'keepdims', 1) ? r[0] : r[0] - 1),
  emit(ctx) {
    if (attrInt(ctx.node, 'select_last_index', 0)) ctx.fail('select_last_index 0 (TF returns the first extreme)');
    const rank = needRank(ctx, 0, 'negative axes count from its end');
    const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), rank);
    const keep = attrInt(ctx.node, 'keepdims', 1) !== 0;
    const y = ctx.tf(op, [ctx.input(0), ctx.const(Tensor.from('int32', [], [axis]))], { T: T(ctx), Tidx: tfAttr.type(3), output_type: tfAttr.type(9) }, !keep);
    return [keep ? ctx.tf('ExpandDims', [y, ctx.const(Tensor.from('int32', [], [axis]))], { T: tfAttr.type(9), Tdim: tfAttr.type(3) }, true) : y];
  },
});

const prelu: ExportEntry = {
  tf: ['Relu', 'Neg', 'Mul', 'Sub'],
  emit(ctx) {
    // max(0, x) + slope * min(0, x) = relu(x) - slope * relu(-x), as TF.js's own Prelu.
    const t = { T: T(ctx) };
    const negative = ctx.tf('Relu', [ctx.tf('Neg', [ctx.input(0)], t)], t);
    return [ctx.tf('Sub', [ctx.tf('Relu', [ctx.input(0)], t), ctx.tf('Mul', [ctx.input(1), negative], t)], t, true)];
  },
};


/**
 * ONNX LSTM, GRU and RNN (one layer; forward, reverse or bidirectional; default activations) unrolled
 * over a sequence length that is static in the graph (the zoo's Keras and torch models all have
 * one): per time step a MatMul by W and by R, the gates split, and the state update in TF's
 * elementwise ops, which TensorFlow and TF.js both run. A While loop would take dynamic lengths
 * but TF.js runs control flow only in executeAsync and the TF writers emit no function library;
 * unrolling keeps every target a plain graph. W, R and B may be computed (a module spec reorders
 * torch's gates in the graph): each direction's slice is taken in the graph, not at export.
 */
function recurrentCell(kind: 'LSTM' | 'GRU' | 'RNN'): ExportEntry {
  return {
    tf: ['Transpose', 'StridedSlice', 'MatMul', 'AddV2', 'Split', 'Sigmoid', 'Tanh', 'Mul', 'Sub', 'Pack', 'Fill', 'Shape', 'Identity', ...LOOP_TF_OPS],
    rank: (_n, _r, _c, k) => (k === 0 ? 4 : 3),
    emit(ctx) {
      const n = ctx.node;
      const gates = kind === 'LSTM' ? 4 : kind === 'GRU' ? 3 : 1;
      const H = attrInt(n, 'hidden_size', 0);
      if (H <= 0) ctx.fail('a hidden_size attribute');
      const direction = attrString(n, 'direction', 'forward');
      const dirs = direction === 'bidirectional' ? 2 : 1;
      const acts = n.attributes['activations'];
      if (acts) {
        const defaults = kind === 'LSTM' ? ['sigmoid', 'tanh', 'tanh'] : kind === 'GRU' ? ['sigmoid', 'tanh'] : ['tanh'];
        const given = acts.type === 'strings' ? acts.value : [];
        if (given.length === 0 || given.some((a, i) => a.toLowerCase() !== defaults[i % defaults.length])) ctx.fail(`the default activations (${defaults.join(', ')})`);
      }
      if (n.attributes['clip']) ctx.fail('no clip');
      if (attrInt(n, 'input_forget', 0)) ctx.fail('input_forget 0');
      if (ctx.opset >= 14 && attrInt(n, 'layout', 0) !== 0) ctx.fail('layout 0 (time-major X)');
      if (ctx.hasInput(4)) ctx.fail('no sequence_lens (every sequence runs the full length)');
      if (kind === 'LSTM' && ctx.hasInput(7)) ctx.fail('no peephole weights P');
      if (needRank(ctx, 0, 'X is [seq, batch, input]') !== 3) ctx.fail('a 3-D X');
      const steps = ctx.staticDim(0, 0);
      if (steps === undefined && !ctx.func) ctx.fail('a sequence length fixed in the graph (the TF export unrolls the recurrence over it; this target holds no While loop)');
      if (steps !== undefined && steps < 1) ctx.fail('a sequence of at least one step');
      const lbr = kind === 'GRU' && attrInt(n, 'linear_before_reset', 0) !== 0;
      const t = { T: T(ctx) };
      const dt = ctx.dtype(0);
      const ints = (v: number[]) => ctx.const(i32(v));
      /** v[index] along axis 0, that axis dropped. */
      const row = (v: string, index: number, rank: number) =>
        ctx.tf('StridedSlice', [v, ints([index, ...Array(rank - 1).fill(0)]), ints([index + 1, ...Array(rank - 1).fill(0)]), ints(Array(rank).fill(1))], {
          ...t, Index: tfAttr.type(3), ...masks({ begin_mask: ((1 << rank) - 1) & ~1, end_mask: ((1 << rank) - 1) & ~1, shrink_axis_mask: 1 }),
        });
      /** Entries [from, from + count) of a vector. */
      const seg = (v: string, from: number, count: number) =>
        ctx.tf('StridedSlice', [v, ints([from]), ints([from + count]), ints([1])], { ...t, Index: tfAttr.type(3), ...masks() });
      const mm = (a: string, b: string) => ctx.tf('MatMul', [a, b], { ...t, transpose_a: tfAttr.bool(false), transpose_b: tfAttr.bool(true) });
      const add = (a: string, b: string) => ctx.tf('AddV2', [a, b], t);
      const mul = (a: string, b: string) => ctx.tf('Mul', [a, b], t);
      const sig = (a: string) => ctx.tf('Sigmoid', [a], t);
      const tanh = (a: string) => ctx.tf('Tanh', [a], t);
      const split = (v: string, k: number) => {
        const s = ctx.tf('Split', [ctx.const(Tensor.from('int32', [], [1])), v], { ...t, num_split: tfAttr.int(k) });
        return [...Array(k).keys()].map((i) => `${s}:${i}`);
      };
      const X = ctx.input(0);
      const xs = steps === undefined ? [] : [...Array(steps).keys()].map((s) => row(X, s, 3));
      // A zero state [batch, H]: Fill with the batch size read from X.
      const zeros = () => {
        const batch = dimOf(ctx, X, dt, 1, 'int32');
        return ctx.tf('Fill', [ctx.tf('Pack', [batch, ctx.const(Tensor.from('int32', [], [H]))], { T: tfAttr.type(3), N: tfAttr.int(2), axis: tfAttr.int(0) }), ctx.const(Tensor.from(dt, [], [0]))], { ...t, index_type: tfAttr.type(3) });
      };
      const ys: string[] = [];
      const lastH: string[] = [];
      const lastC: string[] = [];
      for (let d = 0; d < dirs; d++) {
        const W = row(ctx.input(1), d, 3);
        const R = row(ctx.input(2), d, 3);
        const B = ctx.hasInput(3) ? row(ctx.input(3), d, 2) : undefined;
        // B is [Wb, Rb]; each is added to its own product (GRU's Rbh belongs inside r * (...)).
        const bias = B ? { w: seg(B, 0, gates * H), r: seg(B, gates * H, gates * H) } : undefined;
        let h = ctx.hasInput(5) ? row(ctx.input(5), d, 3) : zeros();
        let c = kind === 'LSTM' ? (ctx.hasInput(6) ? row(ctx.input(6), d, 3) : zeros()) : undefined;
        const reverse = direction === 'reverse' || d === 1;
        if (steps === undefined) {
          // A length the graph leaves open: a While loop over it (rnn-loop.ts), W, R and the biases as loop values.
          if (dt !== 'float32') ctx.fail('float32 values for a While loop over a sequence length the graph leaves open');
          const cell: LoopCell = { kind, reverse, hidden: H, lbr };
          const at = loopIndex(cell);
          ctx.func!(condFunction(cell));
          ctx.func!(bodyFunction(cell));
          const n32 = dimOf(ctx, X, dt, 0, 'int32');
          const zerosGH = () => ctx.const(Tensor.from(dt, [gates * H], new Float32Array(gates * H)));
          const elementShape = () => ctx.const(i32([-1, H]));
          const list = ctx.tf('TensorListReserve', [elementShape(), n32], { element_dtype: T(ctx), shape_type: tfAttr.type(3) });
          const values = [ctx.const(Tensor.from('int32', [], [0])), n32, X, W, R, bias?.w ?? zerosGH(), bias?.r ?? zerosGH(), h, ...(c ? [c] : []), list];
          const types = loopArgs(cell).map((a) => a.type);
          const loop = ctx.tf('StatelessWhile', values, {
            T: tfAttr.types(types), body: tfAttr.func(loopName(cell, 'body')), cond: tfAttr.func(loopName(cell, 'cond')), parallel_iterations: tfAttr.int(1),
          });
          ys.push(ctx.tf('TensorListStack', [`${loop}:${at.y}`, elementShape()], { element_dtype: T(ctx), num_elements: tfAttr.int(-1) }));
          lastH.push(`${loop}:${at.h}`);
          if (at.c !== undefined) lastC.push(`${loop}:${at.c}`);
          continue;
        }
        const out: string[] = new Array<string>(steps);
        for (let k = 0; k < steps; k++) {
          const step = reverse ? steps - 1 - k : k;
          let gx = mm(xs[step]!, W);
          let gh = mm(h, R);
          if (bias) {
            gx = add(gx, bias.w);
            gh = add(gh, bias.r);
          }
          if (kind === 'LSTM') {
            const [i, o, f, g] = split(add(gx, gh), 4) as [string, string, string, string];
            c = add(mul(sig(f), c!), mul(sig(i), tanh(g)));
            h = mul(sig(o), tanh(c));
          } else if (kind === 'RNN') {
            h = tanh(add(gx, gh));
          } else {
            const [xz, xr, xh] = split(gx, 3) as [string, string, string];
            const [hz, hr, hh] = split(gh, 3) as [string, string, string];
            const z = sig(add(xz, hz));
            const r = sig(add(xr, hr));
            let cand: string;
            if (lbr) cand = tanh(add(xh, mul(r, hh)));
            else {
              // (r * H) · Rh^T + Rbh: the hidden gate's rows of R and of the recurrent bias.
              const Rh = ctx.tf('StridedSlice', [R, ints([2 * H, 0]), ints([3 * H, 0]), ints([1, 1])], { ...t, Index: tfAttr.type(3), ...masks({ end_mask: 2 }) });
              let rh = mm(mul(r, h), Rh);
              if (bias) rh = add(rh, seg(bias.r, 2 * H, H));
              cand = tanh(add(xh, rh));
            }
            // H = (1 - z) * cand + z * H = cand - z * (cand - H)
            h = ctx.tf('Sub', [cand, mul(z, ctx.tf('Sub', [cand, h], t))], t);
          }
          out[step] = h;
        }
        ys.push(ctx.tf('Pack', out, { ...t, N: tfAttr.int(steps), axis: tfAttr.int(0) }));
        lastH.push(h);
        if (c) lastC.push(c);
      }
      const outputs = n.outputs;
      const pack = (vs: string[], axis: number, final: boolean) => ctx.tf('Pack', vs, { ...t, N: tfAttr.int(vs.length), axis: tfAttr.int(axis) }, final);
      const y = pack(ys, 1, true);
      const results = [y, outputs[1] ? pack(lastH, 0, false) : y];
      if (kind === 'LSTM') results.push(outputs[2] ? pack(lastC, 0, false) : y);
      return results;
    },
  };
}

export const IR_TO_TF: Readonly<Record<string, ExportEntry>> = {
  Identity: unary('Identity'),
  Dropout: { tf: ['Identity'], emit: (ctx) => [ctx.tf('Identity', [ctx.input(0)], { T: T(ctx) }, true)] },
  Add: binary('AddV2'),
  Sub: binary('Sub'),
  Mul: binary('Mul'),
  // ONNX divides integers truncating, as TF's TruncateDiv, which TF.js lacks (its FloorDiv floors):
  // written as sign(a) * sign(b) * FloorDiv(|a|, |b|), which both run and which is exact.
  Div: {
    tf: ['RealDiv', 'Abs', 'FloorDiv', 'Sign', 'Mul'],
    rank: maxRank,
    emit(ctx) {
      const t = { T: T(ctx) };
      const [a, b] = [ctx.input(0), ctx.input(1)];
      if (isFloat(ctx.dtype(0))) return [ctx.tf('RealDiv', [a, b], t, true)];
      const floor = ctx.tf('FloorDiv', [ctx.tf('Abs', [a], t), ctx.tf('Abs', [b], t)], t);
      const sign = ctx.tf('Mul', [ctx.tf('Sign', [a], t), ctx.tf('Sign', [b], t)], t);
      return [ctx.tf('Mul', [sign, floor], t, true)];
    },
  },
  Pow: pow,
  Max: variadic('Maximum'),
  Min: variadic('Minimum'),
  Sum: variadic('AddN'),
  Mean: variadic('AddN', true),
  Neg: unary('Neg'),
  Abs: unary('Abs'),
  Exp: unary('Exp'),
  Log: unary('Log'),
  Sqrt: unary('Sqrt'),
  Reciprocal: unary('Reciprocal'),
  Floor: unary('Floor'),
  Ceil: unary('Ceil'),
  Round: unary('Round'),
  Sign: unary('Sign'),
  Sin: unary('Sin'),
  Cos: unary('Cos'),
  Tan: unary('Tan'),
  Erf: unary('Erf'),
  Relu: unary('Relu'),
  Sigmoid: unary('Sigmoid'),
  Tanh: unary('Tanh'),
  Softplus: unary('Softplus'),
  Softsign: unary('Softsign'),
  Elu: {
    tf: ['Elu'],
    emit(ctx) {
      if (attrFloat(ctx.node, 'alpha', 1) !== 1) ctx.fail('Elu alpha 1');
      return [ctx.tf('Elu', [ctx.input(0)], { T: T(ctx) }, true)];
    },
  },
  Selu: unary('Selu'),
  LeakyRelu: unary('LeakyRelu', (n) => ({ alpha: tfAttr.float(attrFloat(n, 'alpha', 0.01)) })),
  PRelu: prelu,
  HardSigmoid: { tf: ['Mul', 'AddV2', 'ClipByValue'], emit: (ctx) => [hardSigmoid(ctx, attrFloat(ctx.node, 'alpha', 0.2), attrFloat(ctx.node, 'beta', 0.5), true)] },
  HardSwish: { tf: ['Mul', 'AddV2', 'ClipByValue'], emit: (ctx) => [ctx.tf('Mul', [ctx.input(0), hardSigmoid(ctx, 1 / 6, 0.5, false)], { T: T(ctx) }, true)] },
  Gelu: gelu,
  Clip: clip,
  Softmax: softmax('Softmax'),
  LogSoftmax: softmax('LogSoftmax'),
  LayerNormalization: layerNorm,
  Gemm: gemm,
  MatMul: matMul,
  Einsum: einsum,
  Conv: conv,
  ConvTranspose: convTranspose,
  LSTM: recurrentCell('LSTM'),
  GRU: recurrentCell('GRU'),
  RNN: recurrentCell('RNN'),
  MaxPool: pool('MaxPool'),
  AveragePool: pool('AvgPool'),
  GlobalAveragePool: globalPool('Mean'),
  GlobalMaxPool: globalPool('Max'),
  BatchNormalization: batchNorm,
  Resize: resize,
  Upsample: resize,
  Flatten: flatten,
  Reshape: reshape,
  Transpose: {
    tf: ['Transpose'],
    rank: (n) => attrInts(n, 'perm')?.length,
    emit(ctx) {
      const perm = attrInts(ctx.node, 'perm');
      const rank = ctx.rank(0);
      if (!perm && rank === undefined) ctx.fail('a perm, or a known rank');
      const p = perm ?? [...Array(rank!).keys()].reverse();
      return [ctx.tf('Transpose', [ctx.input(0), ctx.const(i32(p))], { T: T(ctx), Tperm: tfAttr.type(3) }, true)];
    },
  },
  Slice: slice,
  Split: split,
  Concat: {
    tf: ['ConcatV2', 'Identity'],
    rank: maxRank,
    emit(ctx) {
      const n = ctx.node.inputs.length;
      const values = [...Array(n).keys()].map((i) => ctx.input(i));
      // TensorFlow's ConcatV2 takes at least two values (attr N >= 2); one is itself.
      if (n === 1) return [ctx.tf('Identity', values, { T: T(ctx) }, true)];
      return [ctx.tf('ConcatV2', [...values, ctx.const(Tensor.from('int32', [], [attrInt(ctx.node, 'axis', 0)]))], { T: T(ctx), N: tfAttr.int(n), Tidx: tfAttr.type(3) }, true)];
    },
  },
  Unsqueeze: {
    tf: ['ExpandDims'],
    rank: (n, r, constant) => (r[0] === undefined || axesCount(n, constant) === undefined ? undefined : r[0] + axesCount(n, constant)!),
    emit(ctx) {
      const axes = axesOf(ctx) ?? ctx.fail('axes');
      const rank = ctx.rank(0);
      const outRank = rank === undefined ? undefined : rank + axes.length;
      const sorted = axes.map((a) => (a < 0 ? (outRank === undefined ? ctx.fail('a known rank for negative axes') : a + outRank) : a)).sort((a, b) => a - b);
      let y = ctx.input(0);
      sorted.forEach((a, i) => {
        y = ctx.tf('ExpandDims', [y, ctx.const(Tensor.from('int32', [], [a]))], { T: T(ctx), Tdim: tfAttr.type(3) }, i === sorted.length - 1);
      });
      return [y];
    },
  },
  Squeeze: {
    tf: ['Squeeze'],
    rank: (n, r, constant) => (r[0] === undefined || axesCount(n, constant) === undefined ? undefined : r[0] - axesCount(n, constant)!),
    emit: (ctx) => [ctx.tf('Squeeze', [ctx.input(0)], { T: T(ctx), squeeze_dims: tfAttr.ints(axesOf(ctx) ?? []) }, true)],
  },
  Expand: expand,
  // fmod 0 (integers) is Python's modulo, TF's FloorMod; fmod 1 is C's fmod, TF's TruncateMod.
  Mod: {
    tf: ['FloorMod', 'TruncateMod'],
    rank: maxRank,
    emit: (ctx) => [ctx.tf(attrInt(ctx.node, 'fmod', 0) ? 'TruncateMod' : 'FloorMod', [ctx.input(0), ctx.input(1)], { T: T(ctx) }, true)],
  },
  Tile: { tf: ['Tile'], emit: (ctx) => [ctx.tf('Tile', [ctx.input(0), ctx.input(1)], { T: T(ctx), Tmultiples: T(ctx, 1) }, true)] },
  Pad: pad,
  Cast: {
    tf: ['Cast'],
    dtype: castTo,
    emit(ctx) {
      const to = castTo(ctx.node);
      if (!to) return ctx.fail('a cast to a type TF has');
      return [ctx.tf('Cast', [ctx.input(0)], { SrcT: T(ctx), DstT: tfAttr.type(tfCode(to)), Truncate: tfAttr.bool(false) }, true)];
    },
  },
  Constant: constant,
  ConstantOfShape: constantOfShape,
  Shape: shape,
  Range: { tf: ['Range'], rank: () => 1, emit: (ctx) => [ctx.tf('Range', [ctx.input(0), ctx.input(1), ctx.input(2)], { Tidx: T(ctx) }, true)] },
  Equal: compare('Equal', { incompatible_shape_error: tfAttr.bool(true) }),
  Less: compare('Less'),
  Greater: compare('Greater'),
  LessOrEqual: compare('LessEqual'),
  GreaterOrEqual: compare('GreaterEqual'),
  Not: { tf: ['LogicalNot'], emit: (ctx) => [ctx.tf('LogicalNot', [ctx.input(0)], {}, true)] },
  And: logical('LogicalAnd'),
  Or: logical('LogicalOr'),
  Xor: compare('NotEqual', { incompatible_shape_error: tfAttr.bool(true) }),
  IsNaN: { tf: ['IsNan'], dtype: toBool, emit: (ctx) => [ctx.tf('IsNan', [ctx.input(0)], { T: T(ctx) }, true)] },
  IsInf: {
    tf: ['IsInf'],
    dtype: toBool,
    emit(ctx) {
      if (!attrInt(ctx.node, 'detect_positive', 1) || !attrInt(ctx.node, 'detect_negative', 1)) ctx.fail('detect_positive and detect_negative 1 (TF IsInf finds both)');
      return [ctx.tf('IsInf', [ctx.input(0)], { T: T(ctx) }, true)];
    },
  },
  Where: {
    tf: ['SelectV2'],
    dtype: (_n, inputs) => inputs[1],
    rank: maxRank,
    emit: (ctx) => [ctx.tf('SelectV2', [ctx.input(0), ctx.input(1), ctx.input(2)], { T: T(ctx, 1) }, true)],
  },
  Gather: gather,
  GatherElements: gatherElements,
  GatherND: gatherNd,
  ScatterND: scatterNd,
  CumSum: cumsum,
  Trilu: trilu,
  TopK: topK,
  ArgMax: argExtreme('ArgMax'),
  ArgMin: argExtreme('ArgMin'),
  ReduceMean: reduce('Mean'),
  ReduceSum: reduce('Sum'),
  ReduceMax: reduce('Max'),
  ReduceMin: reduce('Min'),
  ReduceProd: reduce('Prod'),
};
