import type { DType } from '../../core/dtypes.js';
import { attrFloat, attrInt, attrInts, attrString, type Node } from '../../core/graph.js';
import { Tensor } from '../../core/tensor.js';
import { onnxCodeToDType } from '../onnx/dtypes.js';
import { tfAttr } from './attrs.js';
import { permuted } from '../../core/transpose.js';
import { OIHW_TO_HWIO, reshaped } from './layout.js';
import { shapeToProto, tfCode } from './tensor.js';

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
  /** The TF tensor for IR input i. */
  input(i: number): string;
  hasInput(i: number): boolean;
  dtype(i: number): DType;
  rank(i: number): number | undefined;
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
  fail(expected: string): never;
}

/** An export entry: the TF tensors of the IR outputs, and the dtype of output 0 when it is not input 0's. */
export interface ExportEntry {
  emit(ctx: ExportContext): string[];
  dtype?(node: Node, inputs: readonly (DType | undefined)[]): DType | undefined;
  /** Rank of output 0 when it is not input 0's; `constant` gives initializer inputs. */
  rank?(node: Node, ranks: readonly (number | undefined)[], constant: (i: number) => Tensor | undefined): number | undefined;
}

const T = (ctx: ExportContext, i = 0) => tfAttr.type(tfCode(ctx.dtype(i)));
const i32 = (values: readonly number[]) => Tensor.from('int32', [values.length], values);

const unary = (op: string, attrs: (n: Node) => TfAttrs = () => ({})): ExportEntry => ({
  emit: (ctx) => [ctx.tf(op, [ctx.input(0)], { T: T(ctx), ...attrs(ctx.node) }, true)],
});

const maxRank = (_n: Node, r: readonly (number | undefined)[]) => (r.some((x) => x === undefined) ? undefined : Math.max(...(r as number[])));

const binary = (op: string): ExportEntry => ({
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

const conv: ExportEntry = {
  rank: () => 4,
  emit(ctx) {
    const w = ctx.constant(1);
    if (!w || w.shape.length !== 4) return ctx.fail('a constant 4-D weight');
    const [outC, inPerGroup, kh, kw] = w.shape as [number, number, number, number];
    const group = attrInt(ctx.node, 'group', 1);
    const { padding, pads } = tfPadding(ctx);
    const common = {
      T: T(ctx),
      strides: tfAttr.ints(quad(attrInts(ctx.node, 'strides'))),
      dilations: tfAttr.ints(quad(attrInts(ctx.node, 'dilations'))),
      padding: tfAttr.string(padding),
      explicit_paddings: tfAttr.ints(padding === 'EXPLICIT' ? explicit(pads) : []),
      data_format: tfAttr.string('NHWC'),
    };
    let y: string;
    if (inPerGroup === 1 && group > 1 && outC % group === 0) {
      // Depthwise: OIHW [C*M, 1, kh, kw] is HWIO [kh, kw, 1, C*M], the same bytes as [kh, kw, C, M].
      const filter = ctx.weight(1, (t) => reshaped(permuted(t, OIHW_TO_HWIO), [kh, kw, group, outC / group]), 'depthwise');
      y = ctx.tf('DepthwiseConv2dNative', [toNhwc(ctx, ctx.input(0)), filter], common);
    } else {
      // TF groups a Conv2D by the filter's input channels; the channel count the input must have
      // is recorded as its static shape, where readers (ours included) find the group count.
      const channels: TfAttrs = group > 1 ? { _output_shapes: tfAttr.shapes([shapeToProto([null, null, null, inPerGroup * group])]) } : {};
      const filter = ctx.weight(1, (t) => permuted(t, OIHW_TO_HWIO), 'hwio');
      y = ctx.tf('Conv2D', [toNhwc(ctx, ctx.input(0), channels), filter], { ...common, use_cudnn_on_gpu: tfAttr.bool(true) });
    }
    if (ctx.hasInput(2)) y = ctx.tf('BiasAdd', [y, ctx.input(2)], { T: T(ctx), data_format: tfAttr.string('NHWC') });
    return [toNchw(ctx, y)];
  },
};

function pool(tfOp: 'MaxPool' | 'AvgPool'): ExportEntry {
  return {
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
  rank: maxRank,
  emit(ctx) {
    if (ctx.rank(0) === 2 && ctx.rank(1) === 2) return [ctx.tf('MatMul', [ctx.input(0), ctx.input(1)], { T: T(ctx), transpose_a: tfAttr.bool(false), transpose_b: tfAttr.bool(false) }, true)];
    return [ctx.tf('BatchMatMulV2', [ctx.input(0), ctx.input(1)], { T: T(ctx), adj_x: tfAttr.bool(false), adj_y: tfAttr.bool(false) }, true)];
  },
};

/** TF's softmax works on the last axis: another axis is swapped to the end and back. */
function softmax(op: string): ExportEntry {
  return {
    emit(ctx) {
      const rank = ctx.rank(0);
      let axis = attrInt(ctx.node, 'axis', -1);
      if (axis < 0 && rank !== undefined) axis += rank;
      if (axis === -1 || axis === (rank ?? 0) - 1) return [ctx.tf(op, [ctx.input(0)], { T: T(ctx) }, true)];
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
  const full = ctx.tf('ConcatV2', [...parts, ctx.const(Tensor.from('int32', [], [0]))], { T: tfAttr.type(3), N: tfAttr.int(parts.length), Tidx: tfAttr.type(3) });
  return ctx.tf('Reshape', [x, full], attrs, true);
}

const masks = (m: Partial<Record<'begin_mask' | 'end_mask' | 'ellipsis_mask' | 'new_axis_mask' | 'shrink_axis_mask', number>> = {}) =>
  Object.fromEntries(['begin_mask', 'end_mask', 'ellipsis_mask', 'new_axis_mask', 'shrink_axis_mask'].map((k) => [k, tfAttr.int(m[k as keyof typeof m] ?? 0)]));

const reshape: ExportEntry = {
  rank: (_n, _r, constant) => constant(1)?.shape[0],
  emit(ctx) {
    const allowZero = attrInt(ctx.node, 'allowzero', 0) !== 0;
    if (ctx.constant(1)) return [reshapeTo(ctx, ctx.input(0), ctx.ints(1, 'shape'), allowZero)];
    // A shape computed at run time: TF's Reshape takes it as is, which is ONNX's allowzero.
    if (!allowZero) ctx.fail('a constant shape, or allowzero 1 (TF reads a computed 0 as a zero size)');
    return [ctx.tf('Reshape', [ctx.input(0), ctx.input(1)], { T: T(ctx), Tshape: T(ctx, 1) }, true)];
  },
};

const flatten: ExportEntry = {
  rank: () => 2,
  emit(ctx) {
    const axis = attrInt(ctx.node, 'axis', 1);
    if (axis === 0) return [reshapeTo(ctx, ctx.input(0), [1, -1], false)];
    if (axis !== 1) ctx.fail('Flatten axis 0 or 1');
    return [reshapeTo(ctx, ctx.input(0), [0, -1], false)];
  },
};

/** ONNX reductions take axes as an attribute or (ReduceSum from opset 13, the rest from 18) an input. */
function reduce(tfOp: string): ExportEntry {
  return {
    rank(n, r, constant) {
      const axes = attrInts(n, 'axes') ?? constant(1)?.toNumbers();
      if (attrInt(n, 'keepdims', 1)) return r[0];
      return r[0] === undefined || !axes?.length ? (axes?.length ? undefined : 0) : r[0] - axes.length;
    },
    emit(ctx) {
      let axes = attrInts(ctx.node, 'axes') ?? (ctx.hasInput(1) ? ctx.ints(1, 'axes') : undefined);
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
 * end mask bits), and ONNX's "to the end" sentinels (|v| >= 2^62) become mask bits as well.
 */
const slice: ExportEntry = {
  emit(ctx) {
    const starts = ctx.ints(1, 'starts');
    const ends = ctx.ints(2, 'ends');
    const rank = ctx.rank(0);
    const axes = (ctx.hasInput(3) ? ctx.ints(3, 'axes') : starts.map((_, i) => i)).map((a) => (a < 0 ? (rank === undefined ? ctx.fail('a known rank for negative axes') : a + rank) : a));
    const steps = ctx.hasInput(4) ? ctx.ints(4, 'steps') : starts.map(() => 1);
    const length = Math.max(...axes) + 1;
    const [begin, end, strides] = [new Array<number>(length).fill(0), new Array<number>(length).fill(0), new Array<number>(length).fill(1)];
    let beginMask = 0;
    let endMask = 0;
    const huge = 2 ** 62;
    for (let a = 0; a < length; a++) {
      const i = axes.indexOf(a);
      if (i < 0) {
        beginMask |= 1 << a;
        endMask |= 1 << a;
        continue;
      }
      strides[a] = steps[i]!;
      if (Math.abs(starts[i]!) >= huge) beginMask |= 1 << a;
      else begin[a] = starts[i]!;
      if (Math.abs(ends[i]!) >= huge) endMask |= 1 << a;
      else end[a] = ends[i]!;
    }
    const vec = (v: number[]) => ctx.const(Tensor.from('int64', [length], v.map(BigInt)));
    return [ctx.tf('StridedSlice', [ctx.input(0), vec(begin), vec(end), vec(strides)], { T: T(ctx), Index: tfAttr.type(9), ...masks({ begin_mask: beginMask, end_mask: endMask }) }, true)];
  },
};

const castTo = (n: Node): DType | undefined => onnxCodeToDType(attrInt(n, 'to', 0));

export const IR_TO_TF: Readonly<Record<string, ExportEntry>> = {
  Identity: unary('Identity'),
  Dropout: { emit: (ctx) => [ctx.tf('Identity', [ctx.input(0)], { T: T(ctx) }, true)] },
  Add: binary('AddV2'),
  Sub: binary('Sub'),
  Mul: binary('Mul'),
  Div: { emit: (ctx) => [ctx.tf(ctx.dtype(0).startsWith('float') ? 'RealDiv' : 'TruncateDiv', [ctx.input(0), ctx.input(1)], { T: T(ctx) }, true)], rank: maxRank },
  Max: binary('Maximum'),
  Min: binary('Minimum'),
  Neg: unary('Neg'),
  Abs: unary('Abs'),
  Exp: unary('Exp'),
  Log: unary('Log'),
  Sqrt: unary('Sqrt'),
  Reciprocal: unary('Reciprocal'),
  Relu: unary('Relu'),
  Sigmoid: unary('Sigmoid'),
  Tanh: unary('Tanh'),
  Softplus: unary('Softplus'),
  Softsign: unary('Softsign'),
  Elu: {
    emit(ctx) {
      if (attrFloat(ctx.node, 'alpha', 1) !== 1) ctx.fail('Elu alpha 1');
      return [ctx.tf('Elu', [ctx.input(0)], { T: T(ctx) }, true)];
    },
  },
  Selu: unary('Selu'),
  LeakyRelu: unary('LeakyRelu', (n) => ({ alpha: tfAttr.float(attrFloat(n, 'alpha', 0.01)) })),
  Clip: clip,
  Softmax: softmax('Softmax'),
  LogSoftmax: softmax('LogSoftmax'),
  Gemm: gemm,
  MatMul: matMul,
  Conv: conv,
  MaxPool: pool('MaxPool'),
  AveragePool: pool('AvgPool'),
  BatchNormalization: batchNorm,
  Flatten: flatten,
  Reshape: reshape,
  Transpose: {
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
  Concat: {
    rank: maxRank,
    emit(ctx) {
      const n = ctx.node.inputs.length;
      const values = [...Array(n).keys()].map((i) => ctx.input(i));
      return [ctx.tf('ConcatV2', [...values, ctx.const(Tensor.from('int32', [], [attrInt(ctx.node, 'axis', 0)]))], { T: T(ctx), N: tfAttr.int(n), Tidx: tfAttr.type(3) }, true)];
    },
  },
  Unsqueeze: {
    rank: (_n, r, constant) => (r[0] === undefined || !constant(1) ? undefined : r[0] + constant(1)!.size),
    emit(ctx) {
      const axes = ctx.ints(1, 'axes');
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
    rank: (_n, r, constant) => (r[0] === undefined || !constant(1) ? undefined : r[0] - constant(1)!.size),
    emit(ctx) {
      const axes = ctx.hasInput(1) ? ctx.ints(1, 'axes') : [];
      return [ctx.tf('Squeeze', [ctx.input(0)], { T: T(ctx), squeeze_dims: tfAttr.ints(axes) }, true)];
    },
  },
  Cast: {
    dtype: castTo,
    emit(ctx) {
      const to = castTo(ctx.node);
      if (!to) return ctx.fail('a cast to a type TF has');
      return [ctx.tf('Cast', [ctx.input(0)], { SrcT: T(ctx), DstT: tfAttr.type(tfCode(to)), Truncate: tfAttr.bool(false) }, true)];
    },
  },
  Shape: {
    dtype: () => 'int64',
    rank: () => 1,
    emit: (ctx) => [ctx.tf('Shape', [ctx.input(0)], { T: T(ctx), out_type: tfAttr.type(9) }, true)],
  },
  ReduceMean: reduce('Mean'),
  ReduceSum: reduce('Sum'),
  ReduceMax: reduce('Max'),
  ReduceMin: reduce('Min'),
};
