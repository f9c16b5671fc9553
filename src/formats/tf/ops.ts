import type { DType } from '../../core/dtypes.js';
import { attr, type Attribute } from '../../core/graph.js';
import { Tensor } from '../../core/tensor.js';
import { permuted } from '../../core/transpose.js';
import { dtypeToOnnxCode } from '../onnx/dtypes.js';
import { attrBool, attrFloat, attrInt, attrInts, attrString, attrType, type Attrs } from './attrs.js';
import { refKey, type TfNode, type TfRef } from './flatten.js';
import type { FunctionDef, NodeDef } from './messages.js';
import { TF_RNN_IMPORT_IR, TF_RNN_OPS } from './rnn.js';

/**
 * TensorFlow ops -> the IR (ONNX semantics, opset 17). ONE table, TF_OPS: each entry builds the IR
 * nodes for one TF node and returns the IR values of its outputs. Layout: TF's NHWC convolutions
 * and pools become the NCHW IR op between a Transpose in and a Transpose out (adjacent pairs
 * cancel later), and constant HWIO filters are transposed to OIHW once, as new weights.
 * Shape-like inputs (axes, perms, begin/end) must be constants; a TF op not in the table, or a
 * form of it the IR cannot express, is reported with its node, never dropped.
 */

export interface OpContext {
  readonly node: TfNode;
  readonly attr: Attrs;
  /** Number of data inputs. */
  readonly arity: number;
  /** The IR value of data input i. */
  input(i: number): string;
  dtype(value: string): DType;
  /** Static rank, when known. */
  rank(value: string): number | undefined;
  /** Static shape (null for unknown sizes), when known. */
  shape(value: string): readonly (number | null)[] | undefined;
  /** Input i's value when it is a constant. */
  constant(i: number): Tensor | undefined;
  /** The TF tensor feeding data input i, and the node computing a TF tensor (through Identity and Cast). */
  inputRef(i: number): TfRef;
  producer(ref: TfRef): { readonly node: TfNode; readonly ref: TfRef } | undefined;
  /** The value of a Const NodeDef (one inside a While body's FunctionDef). */
  constTensor(node: NodeDef): Tensor | undefined;
  /** A TF Const's integer values. */
  constOf(ref: TfRef): number[] | undefined;
  /** Input i as a list of integers; it must be a constant. */
  ints(i: number, what: string): number[];
  /** An IR node whose output is an intermediate value. */
  op(op: string, inputs: readonly string[], attributes?: Record<string, Attribute>, dtype?: DType, rank?: number): string;
  /** An IR node with several outputs (an ONNX LSTM's Y, Y_h, Y_c), all intermediate values. */
  ops(op: string, inputs: readonly string[], count: number, attributes?: Record<string, Attribute>, dtype?: DType): string[];
  /** An IR node computing TF output k of this node (named after it). */
  out(op: string, inputs: readonly string[], attributes?: Record<string, Attribute>, dtype?: DType, rank?: number, k?: number): string;
  /** A new constant (int64 lists for axes and shapes, scalars for bounds). */
  constInts(values: readonly (number | bigint)[], shape?: readonly number[]): string;
  scalar(value: number, dtype: DType): string;
  /** A constant HWIO filter transposed once to OIHW (or a Transpose node when not constant). */
  hwioToOihw(i: number, depthwise: boolean): string;
  /** The IR value of a TF tensor (one the graph computed before this node). */
  valueOfRef(ref: TfRef): string;
  /** An initializer's tensor, for a value that is one. */
  initializerOf(value: string): Tensor | undefined;
  /** A tensor made from initializer `raw` (rearranged), renamed back to `raw` when nothing else uses it. */
  derivedWeight(raw: string, tag: string, value: Tensor): string;
  /** The value of this Const node, or of this variable node (from the checkpoint). */
  constValue(): string;
  variable(): string;
  /** The dtype TF's attrs give output 0 (T, dtype, DstT, out_type), if any. */
  outDType(): DType | undefined;
  /** A new constant tensor (weights rearranged at import, e.g. a Keras LSTM's gates). */
  tensor(base: string, value: Tensor): string;
  /** A function of the graph's library (a While loop's body). */
  func(name: string): FunctionDef | undefined;
  fail(expected: string): never;
}

/** IR values of the TF outputs 0..n-1; undefined for an output the IR does not compute. */
export type OpBuilder = (ctx: OpContext) => (string | undefined)[];

const INT64_MAX = 9223372036854775807n;

const unary =
  (op: string, attributes: (a: Attrs) => Record<string, Attribute> = () => ({})): OpBuilder =>
  (ctx) => [ctx.out(op, [ctx.input(0)], attributes(ctx.attr))];

const binary =
  (op: string): OpBuilder =>
  (ctx) => [ctx.out(op, [ctx.input(0), ctx.input(1)])];

const passThrough: OpBuilder = (ctx) => [ctx.input(0)];

function isNchw(ctx: OpContext): boolean {
  const format = attrString(ctx.attr, 'data_format', 'NHWC');
  if (format !== 'NHWC' && format !== 'NCHW') ctx.fail(`data_format NHWC or NCHW, not ${format}`);
  return format === 'NCHW';
}

const toNchw = (ctx: OpContext, x: string) => ctx.op('Transpose', [x], { perm: attr.ints([0, 3, 1, 2]) }, undefined, 4);
const toNhwc = (ctx: OpContext, op: string, inputs: string[], attributes: Record<string, Attribute>) =>
  ctx.out('Transpose', [ctx.op(op, inputs, attributes, undefined, 4)], { perm: attr.ints([0, 2, 3, 1]) }, undefined, 4);

/** The two spatial entries of a 4-vector attr (strides, ksize, dilations) in the node's layout. */
function spatial(ctx: OpContext, key: string, nchw: boolean): number[] {
  const v = attrInts(ctx.attr, key) ?? [1, 1, 1, 1];
  if (v.length !== 4 || v.some((x) => !Number.isSafeInteger(x) || x < 1)) ctx.fail(`${key} of 4 positive integers`);
  const outer = nchw ? [v[0], v[1]] : [v[0], v[3]];
  if (outer.some((x) => x !== 1)) ctx.fail(`${key} of 1 on the batch and channel axes`);
  return nchw ? [v[2]!, v[3]!] : [v[1]!, v[2]!];
}

function padding(ctx: OpContext, nchw: boolean): Record<string, Attribute> {
  const p = attrString(ctx.attr, 'padding', '');
  if (p === 'VALID') return {};
  if (p === 'SAME') return { auto_pad: attr.string('SAME_UPPER') };
  if (p === 'EXPLICIT') {
    const e = attrInts(ctx.attr, 'explicit_paddings') ?? [];
    const [h, w] = nchw ? [2, 3] : [1, 2];
    if (e.length !== 8) ctx.fail('explicit_paddings of 8 values');
    return { pads: attr.ints([e[2 * h]!, e[2 * w]!, e[2 * h + 1]!, e[2 * w + 1]!]) };
  }
  ctx.fail(`padding SAME, VALID or EXPLICIT, not ${JSON.stringify(p)}`);
}

/**
 * TensorFlow's conv1d (nn_ops.py), which Keras's Conv1D exports: ExpandDims(x, 1) and
 * ExpandDims(filter, 0) into a Conv2D over [N, 1, W, C], then Squeeze. Read back as the 1-D
 * Conv it is, over the [k, Cin, Cout] variable as a [Cout, Cin, k] weight (so a 1-D convolution's
 * weight keeps its shape through a SavedModel), the Conv2D's unit height restored for what follows.
 */
function conv1dPattern(ctx: OpContext): string | undefined {
  const expanded = (i: number, axes: readonly number[]) => {
    const p = ctx.producer(ctx.inputRef(i));
    if (p?.node.op !== 'ExpandDims' || !p.node.inputs[1]) return undefined;
    const axis = ctx.constOf(p.node.inputs[1]);
    return axis?.length === 1 && axes.includes(axis[0]!) && p.node.inputs[0] ? ctx.valueOfRef(p.node.inputs[0]) : undefined;
  };
  const x = expanded(0, [1, -3]);
  const raw = expanded(1, [0, -4]);
  const kernel = raw === undefined ? undefined : ctx.initializerOf(raw);
  if (x === undefined || raw === undefined || !kernel || kernel.shape.length !== 3 || ctx.rank(x) !== 3) return undefined;
  const [hs, ws] = spatial(ctx, 'strides', false);
  const [hd, wd] = spatial(ctx, 'dilations', false);
  const pads = padding(ctx, false);
  // NHWC explicit_paddings: [N0, N1, H0, H1, W0, W1, C0, C1]; the unit height takes none.
  const e = attrString(ctx.attr, 'padding', '') === 'EXPLICIT' ? attrInts(ctx.attr, 'explicit_paddings') ?? [] : [0, 0, 0, 0, 0, 0, 0, 0];
  if (hs !== 1 || hd !== 1 || e[2] !== 0 || e[3] !== 0) return undefined;
  const w = ctx.derivedWeight(raw, 'oiw', permuted(kernel, [2, 1, 0]));
  const attributes: Record<string, Attribute> = { strides: attr.ints([ws!]), dilations: attr.ints([wd!]), ...(pads['pads'] ? { pads: attr.ints([e[4]!, e[5]!]) } : {}), ...(pads['auto_pad'] ? { auto_pad: pads['auto_pad'] } : {}) };
  const ncw = ctx.op('Transpose', [x], { perm: attr.ints([0, 2, 1]) }, undefined, 3);
  const y = ctx.op('Conv', [ncw, w], attributes, undefined, 3);
  const nwc = ctx.op('Transpose', [y], { perm: attr.ints([0, 2, 1]) }, undefined, 3);
  return ctx.out('Unsqueeze', [nwc, ctx.constInts([1])], {}, undefined, 4);
}

function conv(depthwise: boolean): OpBuilder {
  return (ctx) => {
    const nchw = isNchw(ctx);
    const oneD = depthwise || nchw ? undefined : conv1dPattern(ctx);
    if (oneD) return [oneD];
    const x = ctx.input(0);
    const w = ctx.hwioToOihw(1, depthwise);
    const filter = ctx.constant(1);
    const attributes: Record<string, Attribute> = {
      strides: attr.ints(spatial(ctx, 'strides', nchw)),
      dilations: attr.ints(spatial(ctx, 'dilations', nchw)),
      ...padding(ctx, nchw),
    };
    if (depthwise) {
      if (!filter) return ctx.fail('a constant filter (depthwise convolutions need the channel count)');
      attributes['group'] = attr.int(filter.shape[2]!);
    } else if (filter) {
      // A grouped convolution is a Conv2D whose filter has fewer input channels than the input.
      const channels = ctx.shape(x)?.[nchw ? 1 : 3];
      const perGroup = filter.shape[2]!;
      if (typeof channels === 'number' && channels !== perGroup) {
        if (channels % perGroup !== 0) ctx.fail(`input channels (${channels}) a multiple of the filter's (${perGroup})`);
        attributes['group'] = attr.int(channels / perGroup);
      }
    }
    return nchw ? [ctx.out('Conv', [x, w], attributes)] : [toNhwc(ctx, 'Conv', [toNchw(ctx, x), w], attributes)];
  };
}

/**
 * Conv2DBackpropInput (input_sizes, filter [kh, kw, Cout, Cin], out_backprop): the transposed
 * convolution Keras's Conv2DTranspose exports (tf.nn.conv_transpose) and modelbridge's
 * ConvTranspose export writes, as ONNX ConvTranspose. TF gives the output size; ONNX derives it
 * from pads and output_padding, so the spatial sizes must be constants (Keras writes them as Const
 * entries of a Pack beside the batch size, modelbridge too when they are known): the padding is
 * the forward convolution's (SAME: before = total / 2 rounded down, as TF pads), and whatever the
 * output has beyond the kernel's reach is output_padding (zeros at the end, as in TF).
 */
const conv2dBackpropInput: OpBuilder = (ctx) => {
  if (isNchw(ctx)) ctx.fail('data_format NHWC');
  const whole = ctx.constant(0)?.toNumbers();
  let sizes = whole?.length === 4 ? [whole[1]!, whole[2]!] : undefined;
  if (!sizes) {
    const pack = ctx.producer(ctx.inputRef(0));
    if (pack?.node.op === 'Pack' && pack.node.inputs.length === 4) {
      const [h, w] = [ctx.constOf(pack.node.inputs[1]!), ctx.constOf(pack.node.inputs[2]!)];
      if (h?.length === 1 && w?.length === 1) sizes = [h[0]!, w[0]!];
    }
  }
  if (!sizes) return ctx.fail('input_sizes whose height and width are constants (ONNX ConvTranspose sizes its output from its attributes)');
  const filter = ctx.constant(1);
  if (!filter || filter.shape.length !== 4) return ctx.fail('a constant 4-D filter');
  const [kh, kw] = filter.shape as [number, number, number, number];
  const x = ctx.input(2);
  const xs = ctx.shape(x);
  const input = [xs?.[1], xs?.[2]];
  if (xs?.length !== 4 || typeof input[0] !== 'number' || typeof input[1] !== 'number') return ctx.fail('an input of known height and width');
  const strides = spatial(ctx, 'strides', false);
  const dilations = spatial(ctx, 'dilations', false);
  const mode = attrString(ctx.attr, 'padding', '');
  const explicit = attrInts(ctx.attr, 'explicit_paddings') ?? [];
  if (mode === 'EXPLICIT' && explicit.length !== 8) ctx.fail('explicit_paddings of 8 values');
  const before: number[] = [];
  const after: number[] = [];
  const extra: number[] = [];
  [kh, kw].forEach((k, i) => {
    const reach = strides[i]! * ((input[i] as number) - 1) + (k - 1) * dilations[i]! + 1;
    let [b, a] = [0, 0];
    if (mode === 'SAME') {
      const total = Math.max(reach - sizes![i]!, 0);
      [b, a] = [Math.floor(total / 2), total - Math.floor(total / 2)];
    } else if (mode === 'EXPLICIT') {
      [b, a] = [explicit[2 + 2 * i]!, explicit[3 + 2 * i]!];
    } else if (mode !== 'VALID') ctx.fail(`padding SAME, VALID or EXPLICIT, not ${JSON.stringify(mode)}`);
    const pad = sizes![i]! - (reach - b - a);
    if (pad < 0) ctx.fail(`input_sizes within the transposed convolution's reach (${reach - b - a} along axis ${i + 1}), not ${sizes![i]}`);
    before.push(b);
    after.push(a);
    extra.push(pad);
  });
  // TF's [kh, kw, Cout, Cin] is ONNX's [Cin, Cout, kh, kw].
  const w = ctx.derivedWeight(ctx.input(1), 'iohw', permuted(filter, [3, 2, 0, 1]));
  const attributes: Record<string, Attribute> = {
    strides: attr.ints(strides),
    dilations: attr.ints(dilations),
    pads: attr.ints([...before, ...after]),
    ...(extra.some((v) => v !== 0) ? { output_padding: attr.ints(extra) } : {}),
  };
  return [toNhwc(ctx, 'ConvTranspose', [toNchw(ctx, x), w], attributes)];
};

function pool(op: 'MaxPool' | 'AveragePool'): OpBuilder {
  return (ctx) => {
    const nchw = isNchw(ctx);
    const attributes: Record<string, Attribute> = {
      kernel_shape: attr.ints(spatial(ctx, 'ksize', nchw)),
      strides: attr.ints(spatial(ctx, 'strides', nchw)),
      ...padding(ctx, nchw),
    };
    const x = ctx.input(0);
    return nchw ? [ctx.out(op, [x], attributes)] : [toNhwc(ctx, op, [toNchw(ctx, x)], attributes)];
  };
}

const fusedBatchNorm: OpBuilder = (ctx) => {
  if (attrBool(ctx.attr, 'is_training', true)) ctx.fail('is_training false (batch statistics are computed in training only)');
  const nchw = isNchw(ctx);
  const params = [1, 2, 3, 4].map((i) => ctx.input(i));
  const attributes = { epsilon: attr.float(attrFloat(ctx.attr, 'epsilon', 1e-4)) };
  const x = ctx.input(0);
  const y = nchw ? ctx.out('BatchNormalization', [x, ...params], attributes) : toNhwc(ctx, 'BatchNormalization', [toNchw(ctx, x), ...params], attributes);
  return [y];
};

/** TF's MatMul is 2-D: plain products stay MatMul (lift reads MatMul + Add as Linear), transposed ones become Gemm. */
const matMul: OpBuilder = (ctx) => {
  const ta = attrBool(ctx.attr, 'transpose_a', false);
  const tb = attrBool(ctx.attr, 'transpose_b', false);
  const inputs = [ctx.input(0), ctx.input(1)];
  if (!ta && !tb) return [ctx.out('MatMul', inputs, {}, undefined, 2)];
  return [ctx.out('Gemm', inputs, { transA: attr.int(ta ? 1 : 0), transB: attr.int(tb ? 1 : 0) }, undefined, 2)];
};

const batchMatMul: OpBuilder = (ctx) => {
  const operand = (i: number, adjoint: string) => {
    const v = ctx.input(i);
    if (!attrBool(ctx.attr, adjoint, false)) return v;
    const rank = ctx.rank(v);
    if (rank === undefined || rank < 2) return ctx.fail(`a known rank for input ${i} (${adjoint} transposes its last two axes)`);
    const perm = [...Array(rank - 2).keys(), rank - 1, rank - 2];
    return ctx.op('Transpose', [v], { perm: attr.ints(perm) }, undefined, rank);
  };
  return [ctx.out('MatMul', [operand(0, 'adj_x'), operand(1, 'adj_y')])];
};

const biasAdd: OpBuilder = (ctx) => {
  const x = ctx.input(0);
  const b = ctx.input(1);
  if (!isNchw(ctx)) return [ctx.out('Add', [x, b])];
  // NCHW: the bias runs along axis 1, so it needs trailing unit axes to broadcast.
  const rank = ctx.rank(x) ?? 4;
  const axes = ctx.constInts([...Array(rank - 2).keys()].map((i) => i + 1));
  return [ctx.out('Add', [x, ctx.op('Unsqueeze', [b, axes], {}, undefined, rank - 1)])];
};

const relu6: OpBuilder = (ctx) => {
  const x = ctx.input(0);
  return [ctx.out('Clip', [x, ctx.scalar(0, ctx.dtype(x)), ctx.scalar(6, ctx.dtype(x))])];
};

/** Reshape: TF's 0 is a real zero size, ONNX's a copy of the input's size unless allowzero. */
/**
 * Whether a Reshape's shape is [batch, K] with the batch size read from the reshaped tensor
 * itself: how Keras' Flatten (and modelbridge's writer) spell a flatten, Pack(StridedSlice(
 * Shape(x), shrink), K) or ConcatV2(StridedSlice(Shape(x), 0:1), [K]). K is -1 or the static
 * size of the rest, which a successful reshape keeping the batch axis implies anyway.
 */
function isFlatten(ctx: OpContext): boolean {
  const shape = ctx.producer(ctx.inputRef(1));
  if (!shape || (shape.node.op !== 'Pack' && shape.node.op !== 'ConcatV2')) return false;
  const parts = shape.node.op === 'Pack' ? shape.node.inputs : shape.node.inputs.slice(0, -1);
  if (parts.length !== 2) return false;
  if (shape.node.op === 'ConcatV2' ? ctx.constOf(shape.node.inputs[2]!)?.[0] !== 0 : attrInt(shape.node.attr, 'axis', 0) !== 0) return false;
  const rest = ctx.constOf(parts[1]!);
  if (rest?.length !== 1 || (rest[0] !== -1 && rest[0]! < 1)) return false;
  const slice = ctx.producer(parts[0]!);
  if (slice?.node.op !== 'StridedSlice') return false;
  const [begin, end, strides] = [1, 2, 3].map((i) => ctx.constOf(slice.node.inputs[i]!)?.join());
  const shrink = attrInt(slice.node.attr, 'shrink_axis_mask', 0);
  if (begin !== '0' || end !== '1' || strides !== '1' || shrink !== (shape.node.op === 'Pack' ? 1 : 0)) return false;
  for (const m of ['begin_mask', 'end_mask', 'ellipsis_mask', 'new_axis_mask']) if (attrInt(slice.node.attr, m, 0)) return false;
  const of = ctx.producer(slice.node.inputs[0]!);
  const x = ctx.producer(ctx.inputRef(0));
  return of?.node.op === 'Shape' && x !== undefined && refKey(ctx.producer(of.node.inputs[0]!)?.ref ?? of.ref) === refKey(x.ref);
}

const reshape: OpBuilder = (ctx) => {
  if (isFlatten(ctx)) return [ctx.out('Flatten', [ctx.input(0)], { axis: attr.int(1) }, undefined, 2)];
  const shape = ctx.constant(1);
  if (shape) {
    const dims = ctx.ints(1, 'shape');
    const allowZero: Record<string, Attribute> = dims.includes(0) ? { allowzero: attr.int(1) } : {};
    return [ctx.out('Reshape', [ctx.input(0), ctx.constInts(dims)], allowZero, undefined, dims.length)];
  }
  const dynamic = ctx.input(1);
  const asInt64 = ctx.dtype(dynamic) === 'int64' ? dynamic : ctx.op('Cast', [dynamic], { to: attr.int(7) }, 'int64', 1);
  return [ctx.out('Reshape', [ctx.input(0), asInt64], { allowzero: attr.int(1) })];
};

const squeeze: OpBuilder = (ctx) => {
  const axes = attrInts(ctx.attr, 'squeeze_dims') ?? attrInts(ctx.attr, 'axis') ?? [];
  const x = ctx.input(0);
  const rank = ctx.rank(x);
  const outRank = rank === undefined || axes.length === 0 ? undefined : rank - axes.length;
  return [ctx.out('Squeeze', axes.length ? [x, ctx.constInts(axes)] : [x], {}, undefined, outRank)];
};

const expandDims: OpBuilder = (ctx) => {
  const axis = ctx.ints(1, 'axis');
  if (axis.length !== 1) ctx.fail('a single axis');
  const x = ctx.input(0);
  const rank = ctx.rank(x);
  return [ctx.out('Unsqueeze', [x, ctx.constInts(axis)], {}, undefined, rank === undefined ? undefined : rank + 1)];
};

const transpose: OpBuilder = (ctx) => {
  const perm = ctx.ints(1, 'perm');
  return [ctx.out('Transpose', [ctx.input(0)], { perm: attr.ints(perm) }, undefined, perm.length)];
};

/** ConcatV2: N values, then the axis. */
const concatV2: OpBuilder = (ctx) => {
  const n = ctx.arity - 1;
  const axis = ctx.ints(n, 'axis');
  if (axis.length !== 1) ctx.fail('a scalar axis');
  const values = [...Array(n).keys()].map((i) => ctx.input(i));
  return [ctx.out('Concat', values, { axis: attr.int(axis[0]!) }, undefined, ctx.rank(values[0]!))];
};

const pack: OpBuilder = (ctx) => {
  const axis = attrInt(ctx.attr, 'axis', 0);
  const axes = ctx.constInts([axis]);
  const parts = [...Array(ctx.arity).keys()].map((i) => {
    const rank = ctx.rank(ctx.input(i));
    return ctx.op('Unsqueeze', [ctx.input(i), axes], {}, undefined, rank === undefined ? undefined : rank + 1);
  });
  return [ctx.out('Concat', parts, { axis: attr.int(axis) })];
};

const cast: OpBuilder = (ctx) => {
  const to = ctx.outDType();
  const code = to && dtypeToOnnxCode(to);
  if (!to || code === undefined) return ctx.fail('a DstT the IR can cast to');
  return [ctx.out('Cast', [ctx.input(0)], { to: attr.int(code) }, to)];
};

/** Shape gives int64 in ONNX; TF's default out_type is int32. */
const shape: OpBuilder = (ctx) => {
  const to = ctx.outDType() ?? 'int32';
  if (to === 'int64') return [ctx.out('Shape', [ctx.input(0)], {}, 'int64', 1)];
  const s = ctx.op('Shape', [ctx.input(0)], {}, 'int64', 1);
  return [ctx.out('Cast', [s], { to: attr.int(dtypeToOnnxCode(to)!) }, to, 1)];
};

function reduce(op: string, axesAsInput: boolean): OpBuilder {
  return (ctx) => {
    const axes = ctx.ints(1, 'reduction indices');
    const x = ctx.input(0);
    // TF reduces nothing over an empty axis list; ONNX would reduce everything.
    if (axes.length === 0) return [x];
    const keepDims = attr.int(attrBool(ctx.attr, 'keep_dims', false) ? 1 : 0);
    if (axesAsInput) return [ctx.out(op, [x, ctx.constInts(axes)], { keepdims: keepDims })];
    return [ctx.out(op, [x], { axes: attr.ints(axes), keepdims: keepDims })];
  };
}

/**
 * StridedSlice with constant begin/end/strides: one Slice over the sliced axes, a Squeeze for
 * shrink_axis_mask and an Unsqueeze for new_axis_mask. An ellipsis needs a known rank unless
 * nothing follows it.
 */
const stridedSlice: OpBuilder = (ctx) => {
  if (!ctx.constant(1) || !ctx.constant(2)) return dynamicStridedSlice(ctx);
  const [begin, end, strides] = [ctx.ints(1, 'begin'), ctx.ints(2, 'end'), ctx.ints(3, 'strides')];
  if (begin.length !== end.length || begin.length !== strides.length) ctx.fail('begin, end and strides of one length');
  const mask = (key: string) => attrInt(ctx.attr, key, 0);
  const [beginMask, endMask, ellipsisMask, newAxisMask, shrinkMask] = ['begin_mask', 'end_mask', 'ellipsis_mask', 'new_axis_mask', 'shrink_axis_mask'].map(mask) as [number, number, number, number, number];
  const x = ctx.input(0);
  const rank = ctx.rank(x);
  const bit = (m: number, i: number) => ((m >> i) & 1) === 1;
  const starts: bigint[] = [], ends: bigint[] = [], axes: number[] = [], steps: number[] = [], squeezeAxes: number[] = [], newAxes: number[] = [];
  let axis = 0;
  let outAxis = 0;
  for (let i = 0; i < begin.length; i++) {
    if (bit(ellipsisMask, i)) {
      const rest = [...Array(begin.length - i - 1).keys()].filter((j) => !bit(newAxisMask, i + 1 + j)).length;
      if (rest === 0) break;
      if (rank === undefined) return ctx.fail('a known input rank (an ellipsis is followed by more slices)');
      const skip = rank - axis - rest;
      axis += skip;
      outAxis += skip;
      continue;
    }
    if (bit(newAxisMask, i)) {
      newAxes.push(outAxis++);
      continue;
    }
    const step = strides[i]!;
    if (step === 0) ctx.fail('non-zero strides');
    if (bit(shrinkMask, i)) {
      const b = BigInt(begin[i]!);
      starts.push(b);
      ends.push(b === -1n ? INT64_MAX : b + 1n);
      steps.push(1);
      axes.push(axis);
      squeezeAxes.push(axis++);
      continue;
    }
    starts.push(bit(beginMask, i) ? (step > 0 ? 0n : INT64_MAX) : BigInt(begin[i]!));
    ends.push(bit(endMask, i) ? (step > 0 ? INT64_MAX : -INT64_MAX - 1n) : BigInt(end[i]!));
    steps.push(step);
    axes.push(axis++);
    outAxis++;
  }
  const stages: [string, (v: string) => string[], number | undefined][] = [];
  if (axes.length) stages.push(['Slice', (v) => [v, ctx.constInts(starts), ctx.constInts(ends), ctx.constInts(axes), ctx.constInts(steps)], rank]);
  const squeezed = rank === undefined ? undefined : rank - squeezeAxes.length;
  if (squeezeAxes.length) stages.push(['Squeeze', (v) => [v, ctx.constInts(squeezeAxes)], squeezed]);
  if (newAxes.length) stages.push(['Unsqueeze', (v) => [v, ctx.constInts(newAxes)], squeezed === undefined ? undefined : squeezed + newAxes.length]);
  if (!stages.length) return [x];
  let y = x;
  stages.forEach(([op, inputs, outRank], i) => {
    y = i === stages.length - 1 ? ctx.out(op, inputs(y), {}, undefined, outRank) : ctx.op(op, inputs(y), {}, undefined, outRank);
  });
  return [y];
};

/**
 * StridedSlice whose begin or end is computed at run time (what the TF export of an ONNX Slice
 * with computed starts/ends writes, and TF's own shape arithmetic): ONNX Slice over the leading
 * axes with those bounds, a masked entry taking the full-range bound. The masks that change the
 * rank (ellipsis, new axis, shrink) need constant bounds.
 */
function dynamicStridedSlice(ctx: OpContext): string[] {
  const strides = ctx.ints(3, 'strides');
  const mask = (key: string) => attrInt(ctx.attr, key, 0);
  for (const key of ['ellipsis_mask', 'new_axis_mask', 'shrink_axis_mask']) if (mask(key)) ctx.fail(`constant begin and end (${key} is set)`);
  if (strides.includes(0)) ctx.fail('non-zero strides');
  const n = strides.length;
  const bit = (m: number, i: number) => ((m >> i) & 1) === 1;
  // masked ? bound : value, as value * keep + bound with keep 0 or 1 (no boolean constants needed).
  const bounds = (i: number, key: string, full: (step: number) => bigint) => {
    const m = mask(key);
    const fixed = ctx.constant(i);
    if (fixed) return ctx.constInts(fixed.toNumbers().map((v, a) => (bit(m, a) ? full(strides[a]!) : BigInt(v))));
    const v = asInt64(ctx, i, 1);
    if (m === 0) return v;
    const keep = ctx.constInts(strides.map((_, a) => (bit(m, a) ? 0 : 1)));
    const fill = ctx.constInts(strides.map((step, a) => (bit(m, a) ? full(step) : 0n)));
    return ctx.op('Add', [ctx.op('Mul', [v, keep], {}, 'int64', 1), fill], {}, 'int64', 1);
  };
  const starts = bounds(1, 'begin_mask', (step) => (step > 0 ? 0n : INT64_MAX));
  const ends = bounds(2, 'end_mask', (step) => (step > 0 ? INT64_MAX : -INT64_MAX - 1n));
  const x = ctx.input(0);
  return [ctx.out('Slice', [x, starts, ends, ctx.constInts([...Array(n).keys()]), ctx.constInts(strides)], {}, undefined, ctx.rank(x))];
}

/** Pad/PadV2 (constant padding): TF's [rank, 2] paddings as ONNX's begins-then-ends list. */
const pad: OpBuilder = (ctx) => {
  const p = ctx.ints(1, 'paddings');
  const rank = p.length / 2;
  const pads = [...Array(rank).keys()].map((i) => p[2 * i]!).concat([...Array(rank).keys()].map((i) => p[2 * i + 1]!));
  const x = ctx.input(0);
  const inputs = [x, ctx.constInts(pads)];
  if (ctx.arity > 2) inputs.push(ctx.input(2));
  return [ctx.out('Pad', inputs, { mode: attr.string('constant') }, undefined, rank)];
};

/** OnesLike/ZerosLike: a constant of the input's shape and type. */
const filledLike =
  (value: number): OpBuilder =>
  (ctx) => {
    const x = ctx.input(0);
    const fill = Tensor.from(ctx.dtype(x), [1], [value]);
    return [ctx.out('ConstantOfShape', [ctx.op('Shape', [x], {}, 'int64', 1)], { value: attr.tensor(fill) }, ctx.dtype(x), ctx.rank(x))];
  };

const softmax = (op: string): OpBuilder => (ctx) => [ctx.out(op, [ctx.input(0)], { axis: attr.int(-1) })];

const compare =
  (op: string): OpBuilder =>
  (ctx) => [ctx.out(op, [ctx.input(0), ctx.input(1)], {}, 'bool')];

const isFloatType = (d: DType) => d.startsWith('float') || d === 'bfloat16';

/** An integer input as int64, which ONNX's shape-like inputs take. */
const asInt64 = (ctx: OpContext, i: number, rank?: number) => {
  const v = ctx.input(i);
  return ctx.dtype(v) === 'int64' ? v : ctx.op('Cast', [v], { to: attr.int(7) }, 'int64', rank ?? ctx.rank(v));
};

/** GatherV2: a constant axis, no batch dims (TF refuses negative indices, so ONNX's reading of them never matters). */
const gatherV2: OpBuilder = (ctx) => {
  if (attrInt(ctx.attr, 'batch_dims', 0) !== 0) ctx.fail('batch_dims 0');
  const axis = ctx.arity > 2 ? ctx.ints(2, 'axis') : [0];
  if (axis.length !== 1) ctx.fail('a scalar axis');
  const [x, i] = [ctx.input(0), ctx.input(1)];
  const [rx, ri] = [ctx.rank(x), ctx.rank(i)];
  return [ctx.out('Gather', [x, i], { axis: attr.int(axis[0]!) }, ctx.dtype(x), rx === undefined || ri === undefined ? undefined : rx + ri - 1)];
};

/** Select (v1, a vector condition picks whole rows) and SelectV2 (broadcasting, ONNX's Where). */
const select =
  (v1: boolean): OpBuilder =>
  (ctx) => {
    let c = ctx.input(0);
    const rc = ctx.rank(c);
    const rx = ctx.rank(ctx.input(1));
    if (v1 && rc === 1 && rx !== undefined && rx > 1) c = ctx.op('Unsqueeze', [c, ctx.constInts([...Array(rx - 1).keys()].map((k) => k + 1))], {}, 'bool', rx);
    return [ctx.out('Where', [c, ctx.input(1), ctx.input(2)], {}, ctx.dtype(ctx.input(1)))];
  };

/** Fill(dims, value): ConstantOfShape for a constant value, else the value expanded. */
const fill: OpBuilder = (ctx) => {
  const value = ctx.constant(1);
  const dims = asInt64(ctx, 0, 1);
  if (value && value.size === 1) return [ctx.out('ConstantOfShape', [dims], { value: attr.tensor(Tensor.fromBytes(value.dtype, [1], value.bytes())) }, value.dtype)];
  return [ctx.out('Expand', [ctx.input(1), dims], {}, ctx.dtype(ctx.input(1)))];
};

const mirrorPad: OpBuilder = (ctx) => {
  const mode = attrString(ctx.attr, 'mode', 'REFLECT');
  const p = ctx.ints(1, 'paddings');
  // SYMMETRIC repeats the border cell itself: for one cell that is ONNX's edge padding.
  if (mode === 'SYMMETRIC' && p.some((v) => v > 1)) ctx.fail('REFLECT, or SYMMETRIC by at most one cell (ONNX pads edge or reflect)');
  if (mode !== 'REFLECT' && mode !== 'SYMMETRIC') ctx.fail(`mode REFLECT or SYMMETRIC, not ${mode}`);
  const rank = p.length / 2;
  const pads = [...Array(rank).keys()].map((i) => p[2 * i]!).concat([...Array(rank).keys()].map((i) => p[2 * i + 1]!));
  return [ctx.out('Pad', [ctx.input(0), ctx.constInts(pads)], { mode: attr.string(mode === 'REFLECT' ? 'reflect' : 'edge') }, undefined, rank)];
};

/** FloorMod: ONNX's Mod (fmod 0) for integers; for floats x - floor(x / y) * y. */
const floorMod: OpBuilder = (ctx) => {
  const [x, y] = [ctx.input(0), ctx.input(1)];
  if (!isFloatType(ctx.dtype(x))) return [ctx.out('Mod', [x, y], { fmod: attr.int(0) })];
  return [ctx.out('Sub', [x, ctx.op('Mul', [ctx.op('Floor', [ctx.op('Div', [x, y])]), y])])];
};

/** TruncateMod: the remainder of a truncating division, C's fmod: ONNX's Mod with fmod 1. */
const truncateMod: OpBuilder = (ctx) => [ctx.out('Mod', [ctx.input(0), ctx.input(1)], { fmod: attr.int(1) })];

/** Unpack: output k is the slice k of the axis, dropped (a Gather of the scalar k). */
const unpack: OpBuilder = (ctx) => {
  const n = attrInt(ctx.attr, 'num', 0);
  const axis = attrInt(ctx.attr, 'axis', 0);
  const x = ctx.input(0);
  const rank = ctx.rank(x);
  return [...Array(n).keys()].map((k) => ctx.out('Gather', [x, ctx.constInts([k], [])], { axis: attr.int(axis) }, undefined, rank === undefined ? undefined : rank - 1, k));
};

/** Split/SplitV into Slices, one per output: the sizes must be known (SplitV's, or the axis's static size). */
function splitInto(ctx: OpContext, x: string, axis: number, sizes: number[]): string[] {
  const rank = ctx.rank(x);
  let start = 0;
  return sizes.map((size, k) => {
    const out = ctx.out('Slice', [x, ctx.constInts([start]), ctx.constInts([start + size]), ctx.constInts([axis])], {}, undefined, rank, k);
    start += size;
    return out;
  });
}

const splitOp: OpBuilder = (ctx) => {
  const axis = ctx.ints(0, 'split axis')[0]!;
  const x = ctx.input(1);
  const n = attrInt(ctx.attr, 'num_split', 1);
  const shape = ctx.shape(x);
  const dim = shape?.[axis < 0 ? axis + shape.length : axis];
  if (typeof dim === 'number') {
    if (dim % n !== 0) ctx.fail(`an axis size (${dim}) divisible by num_split (${n})`);
    return splitInto(ctx, x, axis, new Array<number>(n).fill(dim / n));
  }
  // The size is known only at run time (GPT-2's fused q/k/v projection split in three, as the TF
  // export of ONNX Split writes it): each part's bounds are k and k+1 times size / num_split.
  const rank = ctx.rank(x);
  const at = axis < 0 ? (rank === undefined ? ctx.fail('a known rank for a negative split axis') : axis + rank) : axis;
  const size = ctx.op('Slice', [ctx.op('Shape', [x], {}, 'int64', 1), ctx.constInts([at]), ctx.constInts([at + 1]), ctx.constInts([0])], {}, 'int64', 1);
  const part = ctx.op('Div', [size, ctx.constInts([n])], {}, 'int64', 1);
  const bound = (k: number) => (k === 0 ? ctx.constInts([0]) : k === 1 ? part : ctx.op('Mul', [part, ctx.constInts([k])], {}, 'int64', 1));
  return [...Array(n).keys()].map((k) => ctx.out('Slice', [x, bound(k), bound(k + 1), ctx.constInts([at])], {}, undefined, rank, k));
};

/**
 * BroadcastArgs: the IR has no op broadcasting two shapes; it is the shape of a one-byte tensor of
 * the first shape expanded to the second (ONNX's Expand broadcasts both ways). The bytes are one
 * per cell of the broadcast result, which the BroadcastTo this feeds materialises anyway.
 */
const broadcastArgs: OpBuilder = (ctx) => {
  const to = ctx.dtype(ctx.input(0));
  const cells = ctx.op('ConstantOfShape', [asInt64(ctx, 0, 1)], { value: attr.tensor(Tensor.from('uint8', [1], [0])) }, 'uint8');
  const s = ctx.op('Shape', [ctx.op('Expand', [cells, asInt64(ctx, 1, 1)], {}, 'uint8')], {}, 'int64', 1);
  return [to === 'int64' ? ctx.out('Identity', [s], {}, 'int64', 1) : ctx.out('Cast', [s], { to: attr.int(dtypeToOnnxCode(to)!) }, to, 1)];
};

const splitV: OpBuilder = (ctx) => {
  const x = ctx.input(0);
  const axis = ctx.ints(2, 'split axis')[0]!;
  const sizes = ctx.ints(1, 'size_splits');
  if (sizes.includes(-1)) {
    const shape = ctx.shape(x);
    const dim = shape?.[axis < 0 ? axis + shape.length : axis];
    if (typeof dim !== 'number') return ctx.fail('a static size on the split axis (size_splits holds -1)');
    sizes[sizes.indexOf(-1)] = dim - sizes.filter((s) => s !== -1).reduce((a, b) => a + b, 0);
  }
  return splitInto(ctx, x, axis, sizes);
};

const argExtreme =
  (op: 'ArgMax' | 'ArgMin'): OpBuilder =>
  (ctx) => {
    const axis = ctx.ints(1, 'dimension');
    const x = ctx.input(0);
    const rank = ctx.rank(x);
    const to = ctx.outDType() ?? 'int64';
    const y = ctx.op(op, [x], { axis: attr.int(axis[0]!), keepdims: attr.int(0) }, 'int64', rank === undefined ? undefined : rank - 1);
    return [to === 'int64' ? ctx.out('Identity', [y], {}, 'int64') : ctx.out('Cast', [y], { to: attr.int(dtypeToOnnxCode(to)!) }, to)];
  };

/** ResizeBilinear / ResizeNearestNeighbor (NHWC) as ONNX Resize between layout Transposes. */
const resizeOp =
  (mode: 'linear' | 'nearest'): OpBuilder =>
  (ctx) => {
    const align = attrBool(ctx.attr, 'align_corners', false);
    const half = attrBool(ctx.attr, 'half_pixel_centers', false);
    if (align && half) ctx.fail('align_corners and half_pixel_centers not both set');
    const coord = align ? 'align_corners' : half ? (mode === 'nearest' ? 'tf_half_pixel_for_nn' : 'half_pixel') : 'asymmetric';
    const nearest = align ? 'round_prefer_ceil' : 'floor';
    const x = ctx.input(0);
    const nchw = toNchw(ctx, x);
    const hw = ctx.op('Cast', [ctx.input(1)], { to: attr.int(7) }, 'int64', 1);
    const nc = ctx.op('Slice', [ctx.op('Shape', [nchw], {}, 'int64', 1), ctx.constInts([0]), ctx.constInts([2])], {}, 'int64', 1);
    const sizes = ctx.op('Concat', [nc, hw], { axis: attr.int(0) }, 'int64', 1);
    const attributes: Record<string, Attribute> = { mode: attr.string(mode), coordinate_transformation_mode: attr.string(coord) };
    if (mode === 'nearest') attributes['nearest_mode'] = attr.string(nearest);
    const y = ctx.op('Resize', [nchw, '', '', sizes], attributes, undefined, 4);
    return [ctx.out('Transpose', [y], { perm: attr.ints([0, 2, 3, 1]) }, undefined, 4)];
  };

export const TF_OPS: Readonly<Record<string, OpBuilder>> = {
  // Sources: the graph's inputs, constants and variables.
  Const: (ctx) => [ctx.constValue()],
  VariableV2: (ctx) => [ctx.variable()],
  Variable: (ctx) => [ctx.variable()],
  VarHandleOp: (ctx) => [ctx.variable()],
  PlaceholderWithDefault: passThrough,
  // Values passed along unchanged.
  Identity: passThrough,
  ReadVariableOp: passThrough,
  StopGradient: passThrough,
  Snapshot: passThrough,
  PreventGradient: passThrough,
  IdentityN: (ctx) => [...Array(ctx.arity).keys()].map((i) => ctx.input(i)),
  NoOp: () => [],
  // Arithmetic.
  Add: binary('Add'),
  AddV2: binary('Add'),
  BiasAdd: biasAdd,
  BiasAddV1: biasAdd,
  Sub: binary('Sub'),
  Mul: binary('Mul'),
  RealDiv: binary('Div'),
  Maximum: binary('Max'),
  Minimum: binary('Min'),
  Neg: unary('Neg'),
  Abs: unary('Abs'),
  Exp: unary('Exp'),
  Log: unary('Log'),
  Sqrt: unary('Sqrt'),
  Square: (ctx) => [ctx.out('Mul', [ctx.input(0), ctx.input(0)])],
  Rsqrt: (ctx) => [ctx.out('Reciprocal', [ctx.op('Sqrt', [ctx.input(0)])])],
  Reciprocal: unary('Reciprocal'),
  Inv: unary('Reciprocal'),
  MatMul: matMul,
  BatchMatMul: batchMatMul,
  BatchMatMulV2: batchMatMul,
  BatchMatMulV3: batchMatMul,
  // Activations.
  Relu: unary('Relu'),
  Relu6: relu6,
  Sigmoid: unary('Sigmoid'),
  Tanh: unary('Tanh'),
  Elu: unary('Elu', () => ({ alpha: attr.float(1) })),
  Selu: unary('Selu'),
  LeakyRelu: unary('LeakyRelu', (a) => ({ alpha: attr.float(attrFloat(a, 'alpha', 0.2)) })),
  Softplus: unary('Softplus'),
  Softsign: unary('Softsign'),
  Softmax: softmax('Softmax'),
  LogSoftmax: softmax('LogSoftmax'),
  // Shapes and layout.
  Reshape: reshape,
  Squeeze: squeeze,
  ExpandDims: expandDims,
  Transpose: transpose,
  ConcatV2: concatV2,
  Pack: pack,
  Cast: cast,
  Pad: pad,
  PadV2: pad,
  OnesLike: filledLike(1),
  ZerosLike: filledLike(0),
  Shape: shape,
  StridedSlice: stridedSlice,
  // Reductions.
  Mean: reduce('ReduceMean', false),
  Sum: reduce('ReduceSum', true),
  Max: reduce('ReduceMax', false),
  Min: reduce('ReduceMin', false),
  Prod: reduce('ReduceProd', false),
  // Comparisons, logic and selection (Keras masks: Embedding(mask_zero), pooling over masks).
  Equal: compare('Equal'),
  NotEqual: (ctx) => [ctx.out('Not', [ctx.op('Equal', [ctx.input(0), ctx.input(1)], {}, 'bool')], {}, 'bool')],
  Less: compare('Less'),
  LessEqual: compare('LessOrEqual'),
  Greater: compare('Greater'),
  GreaterEqual: compare('GreaterOrEqual'),
  LogicalNot: unary('Not'),
  LogicalAnd: binary('And'),
  LogicalOr: binary('Or'),
  IsNan: (ctx) => [ctx.out('IsNaN', [ctx.input(0)], {}, 'bool')],
  IsInf: (ctx) => [ctx.out('IsInf', [ctx.input(0)], {}, 'bool')],
  Select: select(true),
  SelectV2: select(false),
  // More arithmetic.
  Pow: binary('Pow'),
  FloorMod: floorMod,
  TruncateMod: truncateMod,
  SquaredDifference: (ctx) => {
    const d = ctx.op('Sub', [ctx.input(0), ctx.input(1)]);
    return [ctx.out('Mul', [d, d])];
  },
  AddN: (ctx) => [ctx.out('Sum', [...Array(ctx.arity).keys()].map((i) => ctx.input(i)))],
  ClipByValue: (ctx) => [ctx.out('Max', [ctx.op('Min', [ctx.input(0), ctx.input(2)]), ctx.input(1)])],
  Erf: unary('Erf'),
  Floor: unary('Floor'),
  Ceil: unary('Ceil'),
  Round: unary('Round'),
  Sign: unary('Sign'),
  Sin: unary('Sin'),
  Cos: unary('Cos'),
  Tan: unary('Tan'),
  Cumsum: (ctx) => [
    ctx.out('CumSum', [ctx.input(0), ctx.input(1)], {
      exclusive: attr.int(attrBool(ctx.attr, 'exclusive', false) ? 1 : 0),
      reverse: attr.int(attrBool(ctx.attr, 'reverse', false) ? 1 : 0),
    }),
  ],
  Einsum: (ctx) => [ctx.out('Einsum', [...Array(ctx.arity).keys()].map((i) => ctx.input(i)), { equation: attr.string(attrString(ctx.attr, 'equation', '')) })],
  ArgMax: argExtreme('ArgMax'),
  ArgMin: argExtreme('ArgMin'),
  // Indexing and shapes.
  GatherV2: gatherV2,
  GatherNd: (ctx) => [ctx.out('GatherND', [ctx.input(0), asInt64(ctx, 1)], {}, ctx.dtype(ctx.input(0)))],
  Range: (ctx) => [ctx.out('Range', [ctx.input(0), ctx.input(1), ctx.input(2)], {}, undefined, 1)],
  Fill: fill,
  Tile: (ctx) => [ctx.out('Tile', [ctx.input(0), asInt64(ctx, 1, 1)], {}, undefined, ctx.rank(ctx.input(0)))],
  BroadcastTo: (ctx) => [ctx.out('Expand', [ctx.input(0), asInt64(ctx, 1, 1)])],
  BroadcastArgs: broadcastArgs,
  MirrorPad: mirrorPad,
  Unpack: unpack,
  Split: splitOp,
  SplitV: splitV,
  ResizeBilinear: resizeOp('linear'),
  ResizeNearestNeighbor: resizeOp('nearest'),
  // Convolution, pooling, normalisation.
  Conv2D: conv(false),
  DepthwiseConv2dNative: conv(true),
  Conv2DBackpropInput: conv2dBackpropInput,
  MaxPool: pool('MaxPool'),
  AvgPool: pool('AveragePool'),
  FusedBatchNorm: fusedBatchNorm,
  FusedBatchNormV2: fusedBatchNorm,
  FusedBatchNormV3: fusedBatchNorm,
  // Keras LSTM/GRU While loops, lifted to ONNX LSTM/GRU (rnn.ts).
  ...TF_RNN_OPS,
};

/**
 * What each TF_OPS entry becomes in the IR (the main op first, then the helpers it may add):
 * the TF import column of the coverage table (src/op-coverage). Sources and pass-throughs become
 * no IR op. test/coverage.test.ts fails when TF_OPS and this list disagree on a key.
 */
export const TF_IMPORT_IR: Readonly<Record<string, readonly string[]>> = {
  Const: [], VariableV2: [], Variable: [], VarHandleOp: [], PlaceholderWithDefault: [],
  Identity: [], ReadVariableOp: [], StopGradient: [], Snapshot: [], PreventGradient: [], IdentityN: [], NoOp: [],
  Add: ['Add'], AddV2: ['Add'], BiasAdd: ['Add', 'Unsqueeze'], BiasAddV1: ['Add', 'Unsqueeze'], Sub: ['Sub'], Mul: ['Mul'],
  RealDiv: ['Div'], Maximum: ['Max'], Minimum: ['Min'], Neg: ['Neg'], Abs: ['Abs'], Exp: ['Exp'], Log: ['Log'], Sqrt: ['Sqrt'],
  Square: ['Mul'], Rsqrt: ['Reciprocal', 'Sqrt'], Reciprocal: ['Reciprocal'], Inv: ['Reciprocal'],
  MatMul: ['MatMul', 'Gemm'], BatchMatMul: ['MatMul', 'Transpose'], BatchMatMulV2: ['MatMul', 'Transpose'], BatchMatMulV3: ['MatMul', 'Transpose'],
  Relu: ['Relu'], Relu6: ['Clip'], Sigmoid: ['Sigmoid'], Tanh: ['Tanh'], Elu: ['Elu'], Selu: ['Selu'], LeakyRelu: ['LeakyRelu'],
  Softplus: ['Softplus'], Softsign: ['Softsign'], Softmax: ['Softmax'], LogSoftmax: ['LogSoftmax'],
  Reshape: ['Reshape', 'Flatten', 'Cast'], Squeeze: ['Squeeze'], ExpandDims: ['Unsqueeze'], Transpose: ['Transpose'],
  ConcatV2: ['Concat'], Pack: ['Concat', 'Unsqueeze'], Cast: ['Cast'], Pad: ['Pad'], PadV2: ['Pad'],
  OnesLike: ['ConstantOfShape', 'Shape'], ZerosLike: ['ConstantOfShape', 'Shape'], Shape: ['Shape', 'Cast'],
  StridedSlice: ['Slice', 'Squeeze', 'Unsqueeze', 'Cast', 'Mul', 'Add'],
  Mean: ['ReduceMean'], Sum: ['ReduceSum'], Max: ['ReduceMax'], Min: ['ReduceMin'], Prod: ['ReduceProd'],
  Conv2D: ['Conv', 'Transpose', 'Unsqueeze'], Conv2DBackpropInput: ['ConvTranspose', 'Transpose'], DepthwiseConv2dNative: ['Conv', 'Transpose'], MaxPool: ['MaxPool', 'Transpose'], AvgPool: ['AveragePool', 'Transpose'],
  FusedBatchNorm: ['BatchNormalization', 'Transpose'], FusedBatchNormV2: ['BatchNormalization', 'Transpose'], FusedBatchNormV3: ['BatchNormalization', 'Transpose'],
  Equal: ['Equal'], NotEqual: ['Not', 'Equal'], Less: ['Less'], LessEqual: ['LessOrEqual'], Greater: ['Greater'], GreaterEqual: ['GreaterOrEqual'],
  LogicalNot: ['Not'], LogicalAnd: ['And'], LogicalOr: ['Or'], IsNan: ['IsNaN'], IsInf: ['IsInf'], Select: ['Where', 'Unsqueeze'], SelectV2: ['Where'],
  Pow: ['Pow'], FloorMod: ['Mod', 'Sub', 'Mul', 'Floor', 'Div'], TruncateMod: ['Mod'], SquaredDifference: ['Mul', 'Sub'], AddN: ['Sum'], ClipByValue: ['Max', 'Min'],
  Erf: ['Erf'], Floor: ['Floor'], Ceil: ['Ceil'], Round: ['Round'], Sign: ['Sign'], Sin: ['Sin'], Cos: ['Cos'], Tan: ['Tan'],
  Cumsum: ['CumSum'], Einsum: ['Einsum'], ArgMax: ['ArgMax', 'Cast'], ArgMin: ['ArgMin', 'Cast'],
  GatherV2: ['Gather'], GatherNd: ['GatherND', 'Cast'], Range: ['Range'], Fill: ['ConstantOfShape', 'Expand', 'Cast'], Tile: ['Tile', 'Cast'],
  BroadcastTo: ['Expand', 'Cast'], BroadcastArgs: ['Shape', 'Expand', 'ConstantOfShape', 'Cast', 'Identity'], MirrorPad: ['Pad'], Unpack: ['Gather'],
  Split: ['Slice', 'Shape', 'Div', 'Mul'], SplitV: ['Slice'],
  ResizeBilinear: ['Resize', 'Transpose', 'Cast', 'Slice', 'Shape', 'Concat'], ResizeNearestNeighbor: ['Resize', 'Transpose', 'Cast', 'Slice', 'Shape', 'Concat'],
  ...TF_RNN_IMPORT_IR,
};

/** TF's output dtype attr per op, when it is not T (the common case). */
export function outputTypeAttr(attrs: Attrs): number | undefined {
  return attrType(attrs, 'DstT') ?? attrType(attrs, 'out_type') ?? attrType(attrs, 'dtype') ?? attrType(attrs, 'T');
}
