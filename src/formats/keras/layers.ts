import { attr, type Attribute } from '../../core/graph.js';
import { Tensor } from '../../core/tensor.js';
import { permuted } from '../../core/transpose.js';
import { gateMajor, GRU_ORDER, LSTM_ORDER, reorderBias } from '../tf/rnn.js';
import { HWIO_TO_OIHW, reshaped } from '../tf/layout.js';
import { applyActivation } from './activations.js';
import { bool, num, str, tuple, type Config, type KValue, type LayerContext } from './context.js';

/**
 * Keras layers -> the IR. ONE table, LAYERS: per layer class, the weights it stores (in the order
 * Keras's save_own_variables writes them) and a builder of its IR nodes. Values keep Keras's
 * layout (channels last), as the TensorFlow importer keeps a Keras SavedModel's: a convolution or
 * pool is the NCHW IR op between a Transpose in and a Transpose out (adjacent pairs cancel in
 * simplify), filters are transposed once to OIHW, and axis arguments stay Keras's.
 */

/** A group of weights under one `vars` group: '' for the layer's own, else the sublayer attribute path ('cell'). */
export interface VarGroup {
  readonly sub: string;
  readonly names: readonly string[];
}

export interface LayerDef {
  /** The layer's weight groups, in the order Keras saves them. */
  readonly vars?: (config: Config) => readonly VarGroup[];
  /**
   * What the layer does with a Keras mask on its input (layer.py's __call__): 'pass' for layers
   * that support masking without changing it (the output keeps the first input's mask), 'own'
   * for builders that read their inputs' masks and set their outputs' themselves, 'refuse' for a
   * layer whose call would use the mask in a way not built here. Absent: Keras drops the mask.
   */
  readonly masking?: 'pass' | 'own' | 'refuse';
  readonly build: (ctx: LayerContext, inputs: readonly KValue[], call: Config) => KValue[];
}

const own = (...names: (string | false)[]): VarGroup[] => [{ sub: '', names: names.filter((n): n is string => n !== false) }];

const perm = (p: readonly number[]): Record<string, Attribute> => ({ perm: attr.ints(p) });

function one(ctx: LayerContext, inputs: readonly KValue[]): KValue {
  if (inputs.length !== 1) ctx.fail(`one input, not ${inputs.length}`);
  return inputs[0]!;
}

/** A size that must be known, or the layer is refused with `expected`. */
function known(ctx: LayerContext, size: number | null | undefined, expected: string): number {
  return typeof size === 'number' ? size : ctx.fail(expected);
}

function lastDim(ctx: LayerContext, x: KValue): number {
  const d = x.shape[x.shape.length - 1];
  if (typeof d !== 'number') ctx.fail(`a known size of the last axis of the input (shape ${JSON.stringify(x.shape)})`);
  return d;
}

function channelsLast(ctx: LayerContext): boolean {
  const f = str(ctx.config, 'data_format', 'channels_last');
  if (f !== 'channels_last' && f !== 'channels_first') ctx.fail(`data_format channels_last or channels_first, not ${f}`);
  return f === 'channels_last';
}

/** Output size of a window along one axis (TF's rule for valid and same). */
function windowOut(size: number | null, k: number, stride: number, dilation: number, padding: string): number | null {
  if (size === null) return null;
  if (padding === 'same') return Math.ceil(size / stride);
  return Math.floor((size - ((k - 1) * dilation + 1)) / stride) + 1;
}

/**
 * ONNX padding for Keras's. 'same' is TF's: out = ceil(in / stride), the smaller half of the
 * padding first. Written as explicit pads where the sizes are known (onnxruntime refuses
 * SAME_UPPER with dilations), else as SAME_UPPER, which computes the same pads.
 */
function paddingAttrs(ctx: LayerContext, padding: string, kernel: readonly number[], dilation: readonly number[], strides: readonly number[], sizes: readonly (number | null)[]): Record<string, Attribute> {
  if (padding === 'valid') return {};
  if (padding === 'same') {
    if (sizes.some((s) => s === null)) return { auto_pad: attr.string('SAME_UPPER') };
    const total = sizes.map((s, i) => Math.max((Math.ceil(s! / strides[i]!) - 1) * strides[i]! + (kernel[i]! - 1) * (dilation[i] ?? 1) + 1 - s!, 0));
    return { pads: attr.ints([...total.map((t) => Math.floor(t / 2)), ...total.map((t) => t - Math.floor(t / 2))]) };
  }
  if (padding === 'causal' && kernel.length === 1) return { pads: attr.ints([(kernel[0]! - 1) * dilation[0]!, 0]) };
  ctx.fail(`padding valid or same${kernel.length === 1 ? ' or causal' : ''}, not ${JSON.stringify(padding)}`);
}

/** Runs `op` on a channels-last value in channels-first order: Transpose, op, Transpose back. */
function inChannelsFirst(ctx: LayerContext, x: KValue, outShape: readonly (number | null)[], run: (nchw: string, shape: (number | null)[]) => KValue): KValue {
  const r = x.shape.length;
  const toFirst = [0, r - 1, ...Array.from({ length: r - 2 }, (_, i) => i + 1)];
  const toLast = [0, ...Array.from({ length: r - 2 }, (_, i) => i + 2), 1];
  const firstShape = toFirst.map((p) => x.shape[p]!);
  const t = ctx.op('Transpose', [x.name], firstShape, perm(toFirst));
  const y = run(t.name, toFirst.map((p) => outShape[p]!));
  return ctx.op('Transpose', [y.name], outShape, perm(toLast));
}

/** Conv1D/2D/3D and DepthwiseConv2D (a grouped Conv with one input channel per group). */
function convolution(rank: number, depthwise: boolean): LayerDef {
  return {
    vars: (c) => own(depthwise && c['depthwise_kernel'] !== undefined ? 'depthwise_kernel' : 'kernel', c['use_bias'] !== false && 'bias'),
    build(ctx, inputs) {
      const x = one(ctx, inputs);
      if (x.shape.length !== rank + 2) ctx.fail(`a ${rank + 2}-D input, not shape ${JSON.stringify(x.shape)}`);
      const last = channelsLast(ctx);
      const c = ctx.config;
      const k = tuple(c, 'kernel_size', rank);
      const strides = tuple(c, 'strides', rank, new Array<number>(rank).fill(1));
      const dilation = tuple(c, 'dilation_rate', rank, new Array<number>(rank).fill(1));
      const padding = str(c, 'padding', 'valid');
      const inC = known(ctx, x.shape[last ? rank + 1 : 1], 'a known number of input channels');
      let w: Tensor;
      let how: string;
      let outC: number;
      let group = 1;
      if (depthwise) {
        const mult = num(c, 'depth_multiplier', 1);
        const kernel = ctx.weight('kernel', [...k, inC, mult]);
        // [kh, kw, in, mult] -> [kh, kw, 1, in*mult] -> OIHW: output channel i*mult+m reads input i.
        w = permuted(reshaped(kernel, [...k, 1, inC * mult]), HWIO_TO_OIHW);
        how = `perm:${HWIO_TO_OIHW.join(',')}`;
        outC = inC * mult;
        group = inC;
      } else {
        const groups = num(c, 'groups', 1);
        outC = num(c, 'filters');
        if (inC % groups !== 0) ctx.fail(`input channels (${inC}) divisible by groups (${groups})`);
        const kernel = ctx.weight('kernel', [...k, inC / groups, outC]);
        const p = rank === 1 ? [2, 1, 0] : rank === 2 ? [...HWIO_TO_OIHW] : [4, 3, 0, 1, 2];
        w = permuted(kernel, p);
        how = `perm:${p.join(',')}`;
        group = groups;
      }
      const bias = ctx.hasWeight('bias') ? ctx.init('bias', ctx.weight('bias', [outC])) : undefined;
      const spatial = (last ? x.shape.slice(1, rank + 1) : x.shape.slice(2)).map((s, i) => (padding === 'causal' ? s : windowOut(s, k[i]!, strides[i]!, dilation[i]!, padding)));
      const attributes: Record<string, Attribute> = {
        kernel_shape: attr.ints(k),
        strides: attr.ints(strides),
        dilations: attr.ints(dilation),
        ...paddingAttrs(ctx, padding, k, dilation, strides, last ? x.shape.slice(1, rank + 1) : x.shape.slice(2)),
        ...(group > 1 ? { group: attr.int(group) } : {}),
      };
      const inputsOf = (v: string) => [v, ctx.init('kernel', w, { key: 'kernel', how }), ...(bias ? [bias] : [])];
      const outShape = last ? [x.shape[0]!, ...spatial, outC] : [x.shape[0]!, outC, ...spatial];
      const y = last
        ? inChannelsFirst(ctx, x, outShape, (v, shape) => ctx.op('Conv', inputsOf(v), shape, attributes))
        : ctx.op('Conv', inputsOf(x.name), outShape, attributes);
      return [applyActivation(ctx, y, c['activation'])];
    },
  };
}

const separableConv2d: LayerDef = {
  vars: (c) => own('depthwise_kernel', 'pointwise_kernel', c['use_bias'] !== false && 'bias'),
  build(ctx, inputs) {
    const x = one(ctx, inputs);
    if (x.shape.length !== 4) ctx.fail(`a 4-D input, not shape ${JSON.stringify(x.shape)}`);
    if (!channelsLast(ctx)) ctx.fail('data_format channels_last');
    const c = ctx.config;
    const k = tuple(c, 'kernel_size', 2);
    const strides = tuple(c, 'strides', 2, [1, 1]);
    const dilation = tuple(c, 'dilation_rate', 2, [1, 1]);
    const padding = str(c, 'padding', 'valid');
    const inC = lastDim(ctx, x);
    const mult = num(c, 'depth_multiplier', 1);
    const outC = num(c, 'filters');
    const dw = permuted(reshaped(ctx.weight('depthwise_kernel', [...k, inC, mult]), [...k, 1, inC * mult]), HWIO_TO_OIHW);
    const pw = permuted(ctx.weight('pointwise_kernel', [1, 1, inC * mult, outC]), HWIO_TO_OIHW);
    const spatial = x.shape.slice(1, 3).map((s, i) => windowOut(s, k[i]!, strides[i]!, dilation[i]!, padding));
    const outShape = [x.shape[0]!, ...spatial, outC];
    const bias = ctx.hasWeight('bias') ? [ctx.init('bias', ctx.weight('bias', [outC]))] : [];
    const y = inChannelsFirst(ctx, x, outShape, (v, shape) => {
      const mid = ctx.op('Conv', [v, ctx.init('depthwise_kernel', dw, { key: 'depthwise_kernel', how: `perm:${HWIO_TO_OIHW.join(',')}` })], [shape[0]!, inC * mult, shape[2]!, shape[3]!], {
        kernel_shape: attr.ints(k),
        strides: attr.ints(strides),
        dilations: attr.ints(dilation),
        group: attr.int(inC),
        ...paddingAttrs(ctx, padding, k, dilation, strides, x.shape.slice(1, 3)),
      });
      return ctx.op('Conv', [mid.name, ctx.init('pointwise_kernel', pw, { key: 'pointwise_kernel', how: `perm:${HWIO_TO_OIHW.join(',')}` }), ...bias], shape, { kernel_shape: attr.ints([1, 1]) });
    });
    return [applyActivation(ctx, y, c['activation'])];
  },
};

const conv2dTranspose: LayerDef = {
  vars: (c) => own('kernel', c['use_bias'] !== false && 'bias'),
  build(ctx, inputs) {
    const x = one(ctx, inputs);
    if (x.shape.length !== 4) ctx.fail(`a 4-D input, not shape ${JSON.stringify(x.shape)}`);
    if (!channelsLast(ctx)) ctx.fail('data_format channels_last');
    const c = ctx.config;
    if (c['output_padding'] !== undefined && c['output_padding'] !== null) ctx.fail('output_padding None');
    const k = tuple(c, 'kernel_size', 2);
    const strides = tuple(c, 'strides', 2, [1, 1]);
    const dilation = tuple(c, 'dilation_rate', 2, [1, 1]);
    if (dilation.some((d) => d !== 1)) ctx.fail('dilation_rate 1');
    const padding = str(c, 'padding', 'valid');
    const inC = lastDim(ctx, x);
    const outC = num(c, 'filters');
    // Keras: kernel_size + (filters, input channels); ONNX ConvTranspose: [in, out, kh, kw].
    const w = permuted(ctx.weight('kernel', [...k, outC, inC]), [3, 2, 0, 1]);
    const spatial = x.shape.slice(1, 3).map((s, i) => (s === null ? null : padding === 'same' ? s * strides[i]! : (s - 1) * strides[i]! + k[i]!));
    const outShape = [x.shape[0]!, ...spatial, outC];
    const bias = ctx.hasWeight('bias') ? [ctx.init('bias', ctx.weight('bias', [outC]))] : [];
    // 'same' is TF's forward-convolution padding seen backwards: k - s in all, the smaller half
    // first. Written as explicit pads (what ONNX's SAME_UPPER computes), which every target takes.
    let pads: number[] = [0, 0, 0, 0];
    if (padding === 'same') {
      const total = k.map((kk, i) => kk - strides[i]!);
      if (total.some((t) => t < 0)) ctx.fail('a kernel at least as large as the stride for padding same');
      pads = [...total.map((t) => Math.floor(t / 2)), ...total.map((t) => t - Math.floor(t / 2))];
    } else if (padding !== 'valid') {
      ctx.fail(`padding valid or same, not ${JSON.stringify(padding)}`);
    }
    const y = inChannelsFirst(ctx, x, outShape, (v, shape) =>
      ctx.op('ConvTranspose', [v, ctx.init('kernel', w, { key: 'kernel', how: 'perm:3,2,0,1' }), ...bias], shape, { kernel_shape: attr.ints(k), strides: attr.ints(strides), pads: attr.ints(pads) }),
    );
    return [applyActivation(ctx, y, c['activation'])];
  },
};

const dense: LayerDef = {
  masking: 'pass',
  vars: (c) => own('kernel', c['use_bias'] !== false && 'bias'),
  build(ctx, inputs) {
    const x = one(ctx, inputs);
    const units = num(ctx.config, 'units');
    const inF = lastDim(ctx, x);
    const kernel = ctx.init('kernel', ctx.weight('kernel', [inF, units]));
    const bias = ctx.hasWeight('bias') ? ctx.init('bias', ctx.weight('bias', [units])) : undefined;
    const shape = [...x.shape.slice(0, -1), units];
    let y: KValue;
    if (x.shape.length === 2) {
      y = ctx.op('Gemm', [x.name, kernel, ...(bias ? [bias] : [])], shape);
    } else {
      y = ctx.op('MatMul', [x.name, kernel], shape);
      if (bias) y = ctx.op('Add', [y.name, bias], shape);
    }
    return [applyActivation(ctx, y, ctx.config['activation'])];
  },
};

/** The channel axis as a positive index, from Keras's axis (an int or a one-element list). */
function axisOf(ctx: LayerContext, rank: number, fallback: number): number {
  let a = ctx.config['axis'];
  if (Array.isArray(a) && a.length === 1) a = a[0];
  if (a === undefined || a === null) a = fallback;
  if (typeof a !== 'number' || !Number.isSafeInteger(a) || a < -rank || a >= rank) ctx.fail(`one axis within the input's ${rank} axes, not ${JSON.stringify(ctx.config['axis'])}`);
  return a < 0 ? a + rank : a;
}

const batchNormalization: LayerDef = {
  // At inference the mask changes nothing (it only narrows the batch statistics in training).
  masking: 'pass',
  vars: (c) => own(c['scale'] !== false && 'gamma', c['center'] !== false && 'beta', 'moving_mean', 'moving_variance'),
  build(ctx, inputs) {
    const x = one(ctx, inputs);
    const r = x.shape.length;
    const axis = axisOf(ctx, r, -1);
    const n = known(ctx, x.shape[axis], 'a known size of the normalized axis');
    const param = (key: string, fill: number) => (ctx.hasWeight(key) ? ctx.init(key, ctx.weight(key, [n])) : ctx.init(key, Tensor.from('float32', [n], new Array<number>(n).fill(fill))));
    const ins = [param('gamma', 1), param('beta', 0), param('moving_mean', 0), param('moving_variance', 1)];
    const attributes = { epsilon: attr.float(num(ctx.config, 'epsilon', 1e-3)) };
    if (axis === 1 || r === 2) return [ctx.op('BatchNormalization', [x.name, ...ins], x.shape, attributes)];
    if (axis !== r - 1) ctx.fail(`the channel axis first or last, not axis ${axis}`);
    return [inChannelsFirst(ctx, x, x.shape, (v, shape) => ctx.op('BatchNormalization', [v, ...ins], shape, attributes))];
  },
};

const layerNormalization: LayerDef = {
  masking: 'pass',
  vars: (c) => own(c['scale'] !== false && 'gamma', c['center'] !== false && 'beta'),
  build(ctx, inputs) {
    const x = one(ctx, inputs);
    if (bool(ctx.config, 'rms_scaling', false)) ctx.fail('rms_scaling False');
    const axis = axisOf(ctx, x.shape.length, -1);
    if (axis !== x.shape.length - 1) ctx.fail('normalization over the last axis');
    const n = lastDim(ctx, x);
    const gamma = ctx.hasWeight('gamma') ? ctx.weight('gamma', [n]) : Tensor.from('float32', [n], new Array<number>(n).fill(1));
    const beta = ctx.hasWeight('beta') ? [ctx.init('beta', ctx.weight('beta', [n]))] : [];
    return [ctx.op('LayerNormalization', [x.name, ctx.init('gamma', gamma), ...beta], x.shape, { axis: attr.int(-1), epsilon: attr.float(num(ctx.config, 'epsilon', 1e-3)) })];
  },
};

const activation: LayerDef = { masking: 'pass', build: (ctx, inputs) => [applyActivation(ctx, one(ctx, inputs), ctx.config['activation'])] };

const identity: LayerDef = { masking: 'pass', build: (ctx, inputs) => [one(ctx, inputs)] };

const relu: LayerDef = {
  masking: 'pass',
  build(ctx, inputs) {
    const x = one(ctx, inputs);
    const c = ctx.config;
    if (num(c, 'threshold', 0) !== 0) ctx.fail('threshold 0');
    const slope = num(c, 'negative_slope', 0);
    const max = c['max_value'] === null || c['max_value'] === undefined ? undefined : num(c, 'max_value');
    let y = slope === 0 ? ctx.op('Relu', [x.name], x.shape) : ctx.op('LeakyRelu', [x.name], x.shape, { alpha: attr.float(slope) });
    if (max !== undefined) y = ctx.op('Min', [y.name, ctx.floats(max)], x.shape);
    return [y];
  },
};

const leakyRelu: LayerDef = {
  masking: 'pass',
  build(ctx, inputs) {
    const x = one(ctx, inputs);
    const raw = ctx.config['negative_slope'] ?? ctx.config['alpha'] ?? 0.3;
    const slope = typeof raw === 'number' ? raw : ctx.fail('a number negative_slope');
    return [ctx.op('LeakyRelu', [x.name], x.shape, { alpha: attr.float(slope) })];
  },
};

const softmax: LayerDef = {
  masking: 'refuse',
  build(ctx, inputs) {
    const x = one(ctx, inputs);
    return [ctx.op('Softmax', [x.name], x.shape, { axis: attr.int(axisOf(ctx, x.shape.length, -1)) })];
  },
};

const elu: LayerDef = {
  masking: 'pass',
  build: (ctx, inputs) => {
    const x = one(ctx, inputs);
    const alpha = num(ctx.config, 'alpha', 1);
    if (alpha === 1) return [ctx.op('Elu', [x.name], x.shape, { alpha: attr.float(1) })];
    // relu(x) + alpha (exp(min(x, 0)) - 1): the same function, in ops every target has (TensorFlow's Elu has no alpha).
    const neg = ctx.op('Sub', [ctx.op('Exp', [ctx.op('Min', [x.name, ctx.floats(0)], x.shape).name], x.shape).name, ctx.floats(1)], x.shape);
    return [ctx.op('Add', [ctx.op('Relu', [x.name], x.shape).name, ctx.op('Mul', [neg.name, ctx.floats(alpha)], x.shape).name], x.shape)];
  },
};

/** The broadcast shape of elementwise inputs. */
function broadcast(ctx: LayerContext, inputs: readonly KValue[]): (number | null)[] {
  const rank = Math.max(...inputs.map((i) => i.shape.length));
  const out: (number | null)[] = [];
  for (let d = 0; d < rank; d++) {
    let size: number | null = 1;
    for (const i of inputs) {
      const s = i.shape[d - (rank - i.shape.length)] ?? 1;
      if (s === 1) continue;
      if (size === 1 || size === null) size = s;
      else if (s !== null && s !== size) ctx.fail(`inputs of broadcastable shapes, not ${inputs.map((v) => JSON.stringify(v.shape)).join(' and ')}`);
    }
    out.push(size);
  }
  return out;
}

/** The logical Or (or And) of masks, as base_merge.py's and concatenate.py's compute_mask combine them. */
function combineMasks(ctx: LayerContext, masks: readonly string[], op: 'And' | 'Or', shape: readonly (number | null)[]): string | undefined {
  if (masks.length === 0) return undefined;
  return masks.slice(1).reduce((a, m) => ctx.op(op, [a, m], shape, {}, 'bool').name, masks[0]!);
}

const presentMasks = (inputs: readonly KValue[]): string[] => inputs.flatMap((i) => (i.mask ? [i.mask] : []));

function merge(op: 'Sum' | 'Mul' | 'Max' | 'Min' | 'Mean' | 'Sub'): LayerDef {
  return {
    masking: 'own',
    build(ctx, inputs) {
      if (inputs.length < 2 || (op === 'Sub' && inputs.length !== 2)) ctx.fail(op === 'Sub' ? 'two inputs' : 'at least two inputs');
      const shape = broadcast(ctx, inputs);
      let y: KValue;
      if (op === 'Mul' || op === 'Sub') {
        y = inputs[0]!;
        for (const x of inputs.slice(1)) y = ctx.op(op, [y.name, x.name], shape);
      } else {
        y = ctx.op(op, inputs.map((i) => i.name), shape);
      }
      // base_merge.py compute_mask: the Or of the inputs' masks, none if one input has none.
      const masks = presentMasks(inputs);
      return masks.length === inputs.length ? [{ ...y, mask: combineMasks(ctx, masks, 'Or', shape.slice(0, 2)) }] : [y];
    },
  };
}

const concatenate: LayerDef = {
  masking: 'own',
  build(ctx, inputs) {
    if (inputs.length < 1) ctx.fail('at least one input');
    const rank = inputs[0]!.shape.length;
    const axis = axisOf(ctx, rank, -1);
    const shape = inputs[0]!.shape.map((s, d) => (d === axis ? inputs.reduce<number | null>((a, i) => (a === null || i.shape[d] === null ? null : a + (i.shape[d] as number)), 0) : s));
    const y = ctx.op('Concat', inputs.map((i) => i.name), shape, { axis: attr.int(axis) });
    const masks = presentMasks(inputs);
    if (masks.length === 0) return [y];
    // concatenate.py: each input's mask spread over its features (all true where it has none),
    // concatenated and reduced with `any` over the last axis. Along the last axis that is the Or
    // of the masks, all true (no mask) as soon as one input has none.
    if (axis !== rank - 1 || rank !== 3) ctx.fail('masked inputs concatenated along the last axis of [batch, time, features]');
    if (masks.length < inputs.length) return [y];
    return [{ ...y, mask: combineMasks(ctx, masks, 'Or', shape.slice(0, 2)) }];
  },
};

/** ((top, bottom), (left, right)) from an int, a pair, or a pair of pairs. */
function pairs(ctx: LayerContext, key: string, rank: number): [number, number][] {
  const v = ctx.config[key];
  const asPair = (p: unknown): [number, number] => {
    if (typeof p === 'number') return [p, p];
    if (Array.isArray(p) && p.length === 2 && p.every((x) => typeof x === 'number')) return [p[0] as number, p[1] as number];
    return ctx.fail(`${key} as an int, a pair or pairs, not ${JSON.stringify(v)}`);
  };
  if (typeof v === 'number') return new Array(rank).fill([v, v]) as [number, number][];
  if (Array.isArray(v) && v.length === rank) return v.map(asPair);
  if (rank === 1) return [asPair(v)];
  return ctx.fail(`${key} as an int, a pair or pairs, not ${JSON.stringify(v)}`);
}

function zeroPadding(rank: number): LayerDef {
  return {
    build(ctx, inputs) {
      const x = one(ctx, inputs);
      if (!channelsLast(ctx)) ctx.fail('data_format channels_last');
      const p = pairs(ctx, 'padding', rank);
      const begin = [0, ...p.map((q) => q[0]), 0];
      const end = [0, ...p.map((q) => q[1]), 0];
      const shape = x.shape.map((s, d) => (s === null ? null : s + begin[d]! + end[d]!));
      return [ctx.op('Pad', [x.name, ctx.ints([...begin, ...end])], shape)];
    },
  };
}

function cropping(rank: number): LayerDef {
  return {
    build(ctx, inputs) {
      const x = one(ctx, inputs);
      if (!channelsLast(ctx)) ctx.fail('data_format channels_last');
      const p = pairs(ctx, 'cropping', rank);
      const axes = p.map((_, i) => i + 1);
      const sizes = axes.map((a) => x.shape[a]);
      if (sizes.some((s) => s === null)) ctx.fail('known spatial sizes to crop');
      const ends = sizes.map((s, i) => (s as number) - p[i]![1]);
      const shape = x.shape.map((s, d) => (d >= 1 && d <= rank ? ends[d - 1]! - p[d - 1]![0] : s));
      return [ctx.op('Slice', [x.name, ctx.ints(p.map((q) => q[0])), ctx.ints(ends), ctx.ints(axes)], shape)];
    },
  };
}

function pooling(rank: number, op: 'MaxPool' | 'AveragePool'): LayerDef {
  return {
    build(ctx, inputs) {
      const x = one(ctx, inputs);
      if (x.shape.length !== rank + 2) ctx.fail(`a ${rank + 2}-D input`);
      if (!channelsLast(ctx)) ctx.fail('data_format channels_last');
      const c = ctx.config;
      const k = tuple(c, 'pool_size', rank);
      const strides = tuple(c, 'strides', rank, k);
      const padding = str(c, 'padding', 'valid');
      const spatial = x.shape.slice(1, rank + 1).map((s, i) => windowOut(s, k[i]!, strides[i]!, 1, padding));
      const outShape = [x.shape[0]!, ...spatial, x.shape[rank + 1]!];
      return [
        inChannelsFirst(ctx, x, outShape, (v, shape) =>
          ctx.op(op, [v], shape, { kernel_shape: attr.ints(k), strides: attr.ints(strides), ...paddingAttrs(ctx, padding, k, k.map(() => 1), strides, x.shape.slice(1, rank + 1)) }),
        ),
      ];
    },
  };
}

function globalPooling(rank: number, op: 'ReduceMean' | 'ReduceMax'): LayerDef {
  const masked = rank === 1 && op === 'ReduceMean';
  return {
    // GlobalAveragePooling1D averages over the steps its mask keeps (and drops the mask).
    ...(masked ? { masking: 'own' as const } : {}),
    build(ctx, inputs) {
      const x = one(ctx, inputs);
      const last = channelsLast(ctx);
      const keep = bool(ctx.config, 'keepdims', false);
      const axes = Array.from({ length: rank }, (_, i) => (last ? i + 1 : i + 2));
      const shape = keep ? x.shape.map((s, d) => (axes.includes(d) ? 1 : s)) : x.shape.filter((_, d) => !axes.includes(d));
      if (masked && x.mask) {
        // global_average_pooling1d.py: where(mask, x, 0) summed over the steps, over the mask's count.
        const m = ctx.op('Unsqueeze', [x.mask, ctx.ints([last ? 2 : 1])], last ? [x.shape[0]!, x.shape[1]!, 1] : [x.shape[0]!, 1, x.shape[2]!], {}, 'bool');
        const kept = ctx.op('Where', [m.name, x.name, ctx.floats(0)], x.shape);
        const count = ctx.op('Cast', [m.name], m.shape, { to: attr.int(1) }, 'float32');
        const sums = (v: KValue) => ctx.op('ReduceSum', [v.name, ctx.ints(axes)], keep ? v.shape.map((s, d) => (axes.includes(d) ? 1 : s)) : v.shape.filter((_, d) => !axes.includes(d)), { keepdims: attr.int(keep ? 1 : 0) }, 'float32');
        return [ctx.op('Div', [sums(kept).name, sums(count).name], shape)];
      }
      return [ctx.op(op, [x.name], shape, { axes: attr.ints(axes), keepdims: attr.int(keep ? 1 : 0) })];
    },
  };
}

const flatten: LayerDef = {
  build(ctx, inputs) {
    const x = one(ctx, inputs);
    const rest = x.shape.slice(1);
    const size = rest.every((s): s is number => s !== null) ? rest.reduce((a, b) => a * b, 1) : null;
    return [ctx.op('Flatten', [x.name], [x.shape[0]!, size], { axis: attr.int(1) })];
  },
};

const reshape: LayerDef = {
  build(ctx, inputs) {
    const x = one(ctx, inputs);
    const target = ctx.config['target_shape'];
    if (!Array.isArray(target) || !target.every((t) => typeof t === 'number' && Number.isSafeInteger(t))) ctx.fail('target_shape as a list of integers');
    const dims = target as number[];
    let shape: (number | null)[] = [x.shape[0]!, ...dims];
    if (dims.includes(-1)) {
      const known = x.shape.slice(1);
      const total = known.every((s): s is number => s !== null) ? known.reduce((a, b) => a * b, 1) : null;
      const rest = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      shape = [x.shape[0]!, ...dims.map((d) => (d === -1 ? (total === null ? null : total / rest) : d))];
    }
    return [ctx.op('Reshape', [x.name, ctx.ints([0, ...dims])], shape)];
  },
};

const permute: LayerDef = {
  build(ctx, inputs) {
    const x = one(ctx, inputs);
    const dims = ctx.config['dims'];
    if (!Array.isArray(dims) || dims.length !== x.shape.length - 1) ctx.fail(`dims naming the ${x.shape.length - 1} non-batch axes`);
    const p = [0, ...(dims as number[])];
    return [ctx.op('Transpose', [x.name], p.map((d) => x.shape[d]!), perm(p))];
  },
};

const rescaling: LayerDef = {
  masking: 'pass',
  build(ctx, inputs) {
    const x = one(ctx, inputs);
    const scale = ctx.config['scale'] ?? 1;
    const offset = ctx.config['offset'] ?? 0;
    const asFloats = (v: unknown, key: string): number | number[] => {
      if (typeof v === 'number') return v;
      if (Array.isArray(v) && v.every((e) => typeof e === 'number')) return v as number[];
      return ctx.fail(`${key} as a number or a list of numbers`);
    };
    const y = ctx.op('Mul', [x.name, ctx.floats(asFloats(scale, 'scale'))], x.shape);
    return [ctx.op('Add', [y.name, ctx.floats(asFloats(offset, 'offset'))], x.shape)];
  },
};

const normalization: LayerDef = {
  masking: 'pass',
  vars: (c) => (c['mean'] === null || c['mean'] === undefined ? own('mean', 'variance', 'count') : []),
  build(ctx, inputs) {
    const x = one(ctx, inputs);
    const c = ctx.config;
    const r = x.shape.length;
    const rawAxis = c['axis'] === undefined ? [-1] : c['axis'] === null ? [] : Array.isArray(c['axis']) ? c['axis'] : [c['axis']];
    const keep = (rawAxis as number[]).map((a) => (a < 0 ? a + r : a)).sort((a, b) => a - b);
    const bshape = x.shape.map((s, d) => (keep.includes(d) ? s : 1));
    if (bshape.some((s) => s === null)) ctx.fail('known sizes of the kept axes');
    const count = (bshape as number[]).reduce((a, b) => a * b, 1);
    let mean: Tensor;
    let variance: Tensor;
    if (ctx.hasWeight('mean')) {
      const kept = keep.map((d) => x.shape[d] as number);
      mean = reshaped(ctx.weight('mean', kept), bshape as number[]);
      variance = reshaped(ctx.weight('variance', kept), bshape as number[]);
    } else {
      const values = (key: string): Tensor => {
        const v = c[key];
        const list = typeof v === 'number' ? new Array<number>(count).fill(v) : Array.isArray(v) ? v.flat(8) : undefined;
        if (!list || list.length !== count || !list.every((e) => typeof e === 'number')) ctx.fail(`${key} of ${count} numbers`);
        return Tensor.from('float32', bshape as number[], list as number[]);
      };
      mean = values('mean');
      variance = values('variance');
    }
    // Keras: (x - mean) / max(sqrt(variance), epsilon), epsilon = 1e-7; invert: mean + x * that.
    const stored = ctx.hasWeight('mean');
    if (stored) ctx.keep('count');
    const meanName = ctx.init('mean', mean, stored ? { key: 'mean', how: 'same' } : undefined);
    const varName = ctx.init('variance', variance, stored ? { key: 'variance', how: 'same' } : undefined);
    const stdName = ctx.op('Max', [ctx.op('Sqrt', [varName], variance.shape).name, ctx.floats(1e-7)], variance.shape).name;
    if (bool(c, 'invert', false)) return [ctx.op('Add', [ctx.op('Mul', [x.name, stdName], x.shape).name, meanName], x.shape)];
    return [ctx.op('Div', [ctx.op('Sub', [x.name, meanName], x.shape).name, stdName], x.shape)];
  },
};

const embedding: LayerDef = {
  masking: 'own',
  vars: () => own('embeddings'),
  build(ctx, inputs) {
    const x = one(ctx, inputs);
    const n = num(ctx.config, 'input_dim');
    const d = num(ctx.config, 'output_dim');
    const table = ctx.init('embeddings', ctx.weight('embeddings', [n, d]));
    const ids = x.dtype === 'int32' || x.dtype === 'int64' ? x : ctx.op('Cast', [x.name], x.shape, { to: attr.int(7) }, 'int64');
    const y = ctx.op('Gather', [table, ids.name], [...x.shape, d], { axis: attr.int(0) }, 'float32');
    if (!bool(ctx.config, 'mask_zero', false)) return [y];
    // embedding.py compute_mask: ids != 0, on the ids as given (a float id 0.5 is not 0).
    const asFloat = x.dtype === 'float32';
    const wide = asFloat || x.dtype === 'int64' ? x : ctx.op('Cast', [x.name], x.shape, { to: attr.int(7) }, 'int64');
    const mask = ctx.op('Not', [ctx.op('Equal', [wide.name, asFloat ? ctx.floats(0) : ctx.ints([0])], x.shape, {}, 'bool').name], x.shape, {}, 'bool');
    return [{ ...y, mask: mask.name }];
  },
};

/**
 * Masking (masking.py): the steps whose features all equal mask_value are zeroed and masked:
 * mask = any(x != mask_value, axis=-1), output where(mask, x, 0).
 */
const masking: LayerDef = {
  masking: 'own',
  build(ctx, inputs) {
    const x = one(ctx, inputs);
    if (x.shape.length < 2) ctx.fail('an input with a time axis');
    const value = num(ctx.config, 'mask_value', 0);
    const differs = ctx.op('Not', [ctx.op('Equal', [x.name, ctx.floats(value)], x.shape, {}, 'bool').name], x.shape, {}, 'bool');
    // `any` over the features: bool has no ReduceMax in ONNX, so through 0/1 floats.
    const kept = [...x.shape.slice(0, -1), 1];
    const any = ctx.op('ReduceMax', [ctx.op('Cast', [differs.name], x.shape, { to: attr.int(1) }, 'float32').name], kept, { axes: attr.ints([-1]), keepdims: attr.int(1) }, 'float32');
    const keep = ctx.op('Cast', [any.name], kept, { to: attr.int(9) }, 'bool');
    const y = ctx.op('Where', [keep.name, x.name, ctx.floats(0)], x.shape);
    const mask = ctx.op('Squeeze', [keep.name, ctx.ints([-1])], x.shape.slice(0, -1), {}, 'bool');
    return [{ ...y, mask: mask.name }];
  },
};

type RnnKind = 'LSTM' | 'GRU' | 'RNN';

const GATES: Readonly<Record<RnnKind, number>> = { LSTM: 4, GRU: 3, RNN: 1 };
const ORDERS: Readonly<Record<RnnKind, readonly number[]>> = { LSTM: LSTM_ORDER, GRU: GRU_ORDER, RNN: [0] };

/** One direction's ONNX weights W, R and B from a Keras cell's kernel, recurrent kernel and bias. */
interface Direction {
  readonly W: Tensor;
  readonly R: Tensor;
  readonly B: Tensor;
  readonly resetAfter: boolean;
  readonly hasBias: boolean;
}

function rnnConfig(ctx: LayerContext, c: Config, kind: RnnKind): number {
  if (bool(c, 'stateful', false)) ctx.fail('stateful False');
  const act = str(c, 'activation', 'tanh');
  if (act !== 'tanh' || (kind !== 'RNN' && str(c, 'recurrent_activation', 'sigmoid') !== 'sigmoid')) ctx.fail('activation tanh and recurrent_activation sigmoid');
  return num(c, 'units');
}

function direction(ctx: LayerContext, c: Config, kind: RnnKind, prefix: string, inF: number, units: number): Direction {
  const gh = GATES[kind] * units;
  const order = ORDERS[kind];
  const kernel = ctx.weight(`${prefix}cell/kernel`, [inF, gh]);
  const rec = ctx.weight(`${prefix}cell/recurrent_kernel`, [units, gh]);
  const resetAfter = kind === 'GRU' && bool(c, 'reset_after', true);
  const b = new Float32Array(2 * gh);
  const hasBias = ctx.hasWeight(`${prefix}cell/bias`);
  if (hasBias) {
    const values = ctx.weight(`${prefix}cell/bias`, resetAfter ? [2, gh] : [gh]).toFloat32();
    if (resetAfter) b.set(values);
    else b.set(reorderBias(values, units, order));
  }
  return { W: gateMajor(kernel, units, order), R: gateMajor(rec, units, order), B: Tensor.from('float32', [1, 2 * gh], b), resetAfter, hasBias };
}

/** [d0; d1] along the first axis (the ONNX num_directions axis). */
function stack(a: Tensor, b: Tensor): Tensor {
  const x = a.toFloat32();
  const y = b.toFloat32();
  const out = new Float32Array(x.length + y.length);
  out.set(x);
  out.set(y, x.length);
  return Tensor.fromArray('float32', [2, ...a.shape.slice(1)], out);
}

/** One direction of a masked recurrence: each step's output ([1, batch, units], in reading order) and the final states. */
interface Unrolled {
  readonly steps: readonly string[];
  readonly h: string;
  readonly c?: string;
}

/**
 * A recurrence under a Keras mask, one ONNX recurrent node per step: Keras's rnn loop
 * (backend/tensorflow/rnn.py, zero_output_for_mask False) keeps the previous output and states
 * on a masked step, so each step's new states pass through Where(mask[t], new, previous) into the
 * next. ONNX's sequence_lens would only match a mask that is a prefix of each row (right
 * padding); this matches any mask. `reverse` reads the steps last first (go_backwards).
 */
function unrollMasked(ctx: LayerContext, kind: RnnKind, x: KValue, mask: string, weights: readonly [string, string, string], units: number, reverse: boolean, attributes: Record<string, Attribute>): Unrolled {
  const time = known(ctx, x.shape[1], 'a fixed number of time steps (a masked recurrence is unrolled)');
  const batch = x.shape[0]!;
  const inF = lastDim(ctx, x);
  const steps: string[] = [];
  let h: string | undefined;
  let c: string | undefined;
  for (let k = 0; k < time; k++) {
    const t = reverse ? time - 1 - k : k;
    const at = (v: string, shape: readonly (number | null)[], dtype?: 'bool') => ctx.op('Slice', [v, ctx.ints([t]), ctx.ints([t + 1]), ctx.ints([1])], shape, {}, dtype);
    const xt = ctx.op('Transpose', [at(x.name, [batch, 1, inF]).name], [1, batch, inF], perm([1, 0, 2]));
    const mt = ctx.op('Unsqueeze', [at(mask, [batch, 1], 'bool').name, ctx.ints([0])], [1, batch, 1], {}, 'bool');
    const states = h === undefined ? [] : kind === 'LSTM' ? ['', h, c!] : ['', h];
    const outs = ctx.multi(kind, [xt.name, ...weights, ...states], kind === 'LSTM' ? 3 : 2, attributes);
    const keep = (next: string, previous: string | undefined) => ctx.op('Where', [mt.name, next, previous ?? ctx.floats(0)], [1, batch, units], {}, 'float32').name;
    h = keep(outs[1]!, h);
    if (kind === 'LSTM') c = keep(outs[2]!, c);
    steps.push(h);
  }
  return { steps, h: h!, c };
}

/**
 * LSTM, GRU and SimpleRNN as the ONNX recurrent node, Keras's gates reordered into ONNX's
 * (src/formats/tf/rnn.ts); Bidirectional as the node's bidirectional form, whose backward half
 * is Keras's backward layer (go_backwards, its outputs flipped back into time order).
 */
function recurrent(kind: RnnKind): LayerDef {
  return {
    masking: 'own',
    vars: (c) => [{ sub: 'cell', names: ['kernel', 'recurrent_kernel', ...(c['use_bias'] !== false ? ['bias'] : [])] }],
    build(ctx, inputs) {
      const x = inputs[0] ?? ctx.fail('an input');
      if (x.shape.length !== 3) ctx.fail('a 3-D input [batch, time, features]');
      if (inputs.length > 1) ctx.fail('no initial state inputs');
      const c = ctx.config;
      const units = rnnConfig(ctx, c, kind);
      const inF = lastDim(ctx, x);
      const d = direction(ctx, c, kind, '', inF, units);
      const [batch, time] = [x.shape[0]!, x.shape[1]!];
      // Keras's go_backwards reads the sequence last step first and returns the outputs in that order.
      const how = (part: string) => `rnn:${kind}:${units}:${part}`;
      const W = ctx.init('W', d.W, { key: 'cell/kernel', how: how('gates') });
      const R = ctx.init('R', d.R, { key: 'cell/recurrent_kernel', how: how('gates') });
      const B = ctx.init('B', d.B, d.hasBias ? { key: 'cell/bias', how: how(d.resetAfter ? 'both' : 'bias') } : undefined);
      const attributes = { hidden_size: attr.int(units), ...(kind === 'GRU' ? { linear_before_reset: attr.int(d.resetAfter ? 1 : 0) } : {}) };
      if (x.mask) {
        const run = unrollMasked(ctx, kind, x, x.mask, [W, R, B], units, bool(c, 'go_backwards', false), attributes);
        const squeeze = (v: string) => ctx.op('Squeeze', [v, ctx.ints([0])], [batch, units], {}, 'float32');
        const sequences = bool(c, 'return_sequences', false);
        // go_backwards returns its outputs in reading order, as the unmasked node does.
        const y = sequences ? { ...ctx.op('Transpose', [ctx.op('Concat', run.steps, [time, batch, units], { axis: attr.int(0) }).name], [batch, time, units], perm([1, 0, 2])), mask: x.mask } : squeeze(run.h);
        if (!bool(c, 'return_state', false)) return [y];
        return kind === 'LSTM' ? [y, squeeze(run.h), squeeze(run.c!)] : [y, squeeze(run.h)];
      }
      const xs = bool(c, 'go_backwards', false) ? ctx.op('Slice', [x.name, ctx.ints([-1]), ctx.ints([-Number.MAX_SAFE_INTEGER]), ctx.ints([1]), ctx.ints([-1])], x.shape) : x;
      const tm = ctx.op('Transpose', [xs.name], [time, batch, inF], perm([1, 0, 2]));
      const outs = ctx.multi(kind, [tm.name, W, R, B], kind === 'LSTM' ? 3 : 2, attributes);
      const last = (v: string) => ctx.op('Squeeze', [v, ctx.ints([0])], [batch, units], {}, 'float32');
      let y: KValue;
      if (bool(c, 'return_sequences', false)) {
        const seq = ctx.op('Squeeze', [outs[0]!, ctx.ints([1])], [time, batch, units], {}, 'float32');
        y = ctx.op('Transpose', [seq.name], [batch, time, units], perm([1, 0, 2]));
      } else {
        y = last(outs[1]!);
      }
      if (!bool(c, 'return_state', false)) return [y];
      return kind === 'LSTM' ? [y, last(outs[1]!), last(outs[2]!)] : [y, last(outs[1]!)];
    },
  };
}

const RNN_CLASSES: Readonly<Record<string, RnnKind>> = { LSTM: 'LSTM', GRU: 'GRU', SimpleRNN: 'RNN' };

/** The wrapped layer's class and config ({class_name, config}). */
function wrapped(c: Config, key: string): { kind: RnnKind; config: Config } | undefined {
  const v = c[key];
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const name = typeof o['class_name'] === 'string' ? o['class_name'] : '';
  const kind = RNN_CLASSES[name];
  return kind && typeof o['config'] === 'object' && o['config'] !== null ? { kind, config: o['config'] as Config } : undefined;
}

const bidirectional: LayerDef = {
  masking: 'own',
  vars: (c) => {
    const names = (cfg: Config | undefined) => ['kernel', 'recurrent_kernel', ...(cfg?.['use_bias'] !== false ? ['bias'] : [])];
    const fwd = wrapped(c, 'layer');
    const bwd = wrapped(c, 'backward_layer') ?? fwd;
    return [
      { sub: 'forward_layer/cell', names: names(fwd?.config) },
      { sub: 'backward_layer/cell', names: names(bwd?.config) },
    ];
  },
  build(ctx, inputs) {
    const x = inputs[0] ?? ctx.fail('an input');
    if (x.shape.length !== 3 || inputs.length > 1) ctx.fail('one 3-D input [batch, time, features]');
    const c = ctx.config;
    const fwd = wrapped(c, 'layer') ?? ctx.fail('a wrapped LSTM, GRU or SimpleRNN layer');
    const bwd = wrapped(c, 'backward_layer') ?? fwd;
    if (bwd.kind !== fwd.kind) ctx.fail('forward and backward layers of one class');
    const mode = str(c, 'merge_mode', 'concat');
    if (mode !== 'concat') ctx.fail(`merge_mode concat, not ${mode}`);
    const kind = fwd.kind;
    const units = rnnConfig(ctx, fwd.config, kind);
    if (rnnConfig(ctx, bwd.config, kind) !== units) ctx.fail('forward and backward layers of the same units');
    if (bool(fwd.config, 'return_state', false)) ctx.fail('return_state False');
    if (bool(fwd.config, 'go_backwards', false)) ctx.fail('a forward layer that reads forwards');
    const inF = lastDim(ctx, x);
    const f = direction(ctx, fwd.config, kind, 'forward_layer/', inF, units);
    const b = direction(ctx, bwd.config, kind, 'backward_layer/', inF, units);
    if (f.resetAfter !== b.resetAfter) ctx.fail('the same reset_after both ways');
    const [batch, time] = [x.shape[0]!, x.shape[1]!];
    if (x.mask) {
      // Masked: each direction unrolled on its own (the backward one reading last step first), from its own weights.
      const attributes = { hidden_size: attr.int(units), ...(kind === 'GRU' ? { linear_before_reset: attr.int(f.resetAfter ? 1 : 0) } : {}) };
      const run = (d: Direction, side: 'forward' | 'backward') => {
        const how = (part: string) => ({ key: `${side}_layer/cell/${part === 'gates' ? 'kernel' : 'bias'}`, how: `rnn:${kind}:${units}:${part}` });
        const W = ctx.init(`${side}_W`, d.W, how('gates'));
        const R = ctx.init(`${side}_R`, d.R, { key: `${side}_layer/cell/recurrent_kernel`, how: `rnn:${kind}:${units}:gates` });
        const B = ctx.init(`${side}_B`, d.B, d.hasBias ? how(d.resetAfter ? 'both' : 'bias') : undefined);
        return unrollMasked(ctx, kind, x, x.mask!, [W, R, B], units, side === 'backward', attributes);
      };
      const fw = run(f, 'forward');
      const bw = run(b, 'backward');
      if (bool(fwd.config, 'return_sequences', false)) {
        // bidirectional.py flips the backward outputs back into time order, then concatenates the features.
        const seq = (steps: readonly string[]) => ctx.op('Concat', steps, [time, batch, units], { axis: attr.int(0) }, 'float32').name;
        const both = ctx.op('Concat', [seq(fw.steps), seq([...bw.steps].reverse())], [time, batch, 2 * units], { axis: attr.int(2) }, 'float32');
        return [{ ...ctx.op('Transpose', [both.name], [batch, time, 2 * units], perm([1, 0, 2])), mask: x.mask }];
      }
      const squeeze = (v: string) => ctx.op('Squeeze', [v, ctx.ints([0])], [batch, units], {}, 'float32').name;
      return [ctx.op('Concat', [squeeze(fw.h), squeeze(bw.h)], [batch, 2 * units], { axis: attr.int(-1) }, 'float32')];
    }
    const tm = ctx.op('Transpose', [x.name], [time, batch, inF], perm([1, 0, 2]));
    // The IR tensors stack both directions; the writer takes each Keras variable back from its half.
    const how = (part: string, dir: number) => `rnn:${kind}:${units}:${part}:${dir}`;
    const W = ctx.init('W', stack(f.W, b.W));
    const R = ctx.init('R', stack(f.R, b.R));
    const B = ctx.init('B', stack(f.B, b.B));
    ctx.alias(W, 'forward_layer/cell/kernel', how('gates', 0));
    ctx.alias(W, 'backward_layer/cell/kernel', how('gates', 1));
    ctx.alias(R, 'forward_layer/cell/recurrent_kernel', how('gates', 0));
    ctx.alias(R, 'backward_layer/cell/recurrent_kernel', how('gates', 1));
    if (f.hasBias) ctx.alias(B, 'forward_layer/cell/bias', how(f.resetAfter ? 'both' : 'bias', 0));
    if (b.hasBias) ctx.alias(B, 'backward_layer/cell/bias', how(b.resetAfter ? 'both' : 'bias', 1));
    const attributes = { hidden_size: attr.int(units), direction: attr.string('bidirectional'), ...(kind === 'GRU' ? { linear_before_reset: attr.int(f.resetAfter ? 1 : 0) } : {}) };
    const outs = ctx.multi(kind, [tm.name, W, R, B], kind === 'LSTM' ? 3 : 2, attributes);
    if (bool(fwd.config, 'return_sequences', false)) {
      // Y [time, 2, batch, units] -> [batch, time, 2, units] -> [batch, time, 2·units]: forward then backward.
      const t = ctx.op('Transpose', [outs[0]!], [batch, time, 2, units], perm([2, 0, 1, 3]));
      return [ctx.op('Reshape', [t.name, ctx.ints([0, 0, 2 * units])], [batch, time, 2 * units])];
    }
    const t = ctx.op('Transpose', [outs[1]!], [batch, 2, units], perm([1, 0, 2]));
    return [ctx.op('Reshape', [t.name, ctx.ints([0, 2 * units])], [batch, 2 * units])];
  },
};

/**
 * MultiHeadAttention (keras/src/layers/attention/multi_head_attention.py) over [batch, time,
 * features] inputs: its four EinsumDense projections as MatMuls over their kernels flattened to
 * 2-D (the same bytes), the query scaled by 1/sqrt(key_dim), softmax over the keys, per head.
 */
const multiHeadAttention: LayerDef = {
  masking: 'own',
  vars: (c) => {
    const b = c['use_bias'] !== false;
    return ['query_dense', 'key_dense', 'value_dense', 'output_dense'].map((sub) => ({ sub, names: b ? ['kernel', 'bias'] : ['kernel'] }));
  },
  build(ctx, inputs, call) {
    const c = ctx.config;
    if (bool(c, 'use_gate', false)) ctx.fail('use_gate False');
    if (c['sliding_window'] !== undefined && c['sliding_window'] !== null) ctx.fail('sliding_window None');
    if (c['output_shape'] !== undefined && c['output_shape'] !== null) ctx.fail('output_shape None');
    const axes = c['attention_axes'];
    if (axes !== undefined && axes !== null && !(Array.isArray(axes) && axes.length === 1 && (axes[0] === 1 || axes[0] === -2))) ctx.fail('attention over the time axis (attention_axes [1])');
    if (call['attention_mask'] !== undefined && call['attention_mask'] !== null) ctx.fail('no explicit attention_mask argument (the masks of the query, key and value inputs and use_causal_mask are supported)');
    if (call['return_attention_scores'] === true) ctx.fail('return_attention_scores False');
    if (inputs.length < 2 || inputs.length > 3) ctx.fail('query and value inputs (and an optional key)');
    const [q, v] = [inputs[0]!, inputs[1]!];
    const k = inputs[2] ?? v;
    for (const x of [q, k, v]) if (x.shape.length !== 3) ctx.fail(`3-D inputs [batch, time, features], not ${JSON.stringify(x.shape)}`);
    const heads = num(c, 'num_heads');
    const keyDim = num(c, 'key_dim');
    const valueDim = c['value_dim'] === null || c['value_dim'] === undefined ? keyDim : num(c, 'value_dim');
    const project = (x: KValue, sub: string, dim: number): KValue => {
      const inF = lastDim(ctx, x);
      const kernel = ctx.weight(`${sub}/kernel`, [inF, heads, dim]);
      const w = ctx.init(`${sub}/kernel`, reshaped(kernel, [inF, heads * dim]), { key: `${sub}/kernel`, how: 'same' });
      let y = ctx.op('MatMul', [x.name, w], [x.shape[0]!, x.shape[1]!, heads * dim]);
      if (ctx.hasWeight(`${sub}/bias`)) {
        const bias = ctx.init(`${sub}/bias`, reshaped(ctx.weight(`${sub}/bias`, [heads, dim]), [heads * dim]), { key: `${sub}/bias`, how: 'same' });
        y = ctx.op('Add', [y.name, bias], y.shape);
      }
      // [batch, time, heads·dim] -> [batch, time, heads, dim]
      return ctx.op('Reshape', [y.name, ctx.ints([0, 0, heads, dim])], [x.shape[0]!, x.shape[1]!, heads, dim]);
    };
    const [batch, tq, tk] = [q.shape[0]!, q.shape[1]!, k.shape[1]!];
    const qh = project(q, 'query_dense', keyDim);
    const scaled = ctx.op('Mul', [qh.name, ctx.floats(1 / Math.sqrt(keyDim))], qh.shape);
    const qt = ctx.op('Transpose', [scaled.name], [batch, heads, tq, keyDim], perm([0, 2, 1, 3]));
    const kt = ctx.op('Transpose', [project(k, 'key_dense', keyDim).name], [batch, heads, keyDim, tk], perm([0, 2, 3, 1]));
    const vt = ctx.op('Transpose', [project(v, 'value_dense', valueDim).name], [batch, heads, tk, valueDim], perm([0, 2, 1, 3]));
    let scores = ctx.op('MatMul', [qt.name, kt.name], [batch, heads, tq, tk]);
    // _compute_attention_mask: the query's mask [B, T, 1], the value's and key's [B, 1, S] and the
    // causal mask [1, T, S] combined with And; _masked_softmax sets the scores it hides to -1e9.
    const parts: string[] = [];
    if (q.mask) parts.push(ctx.op('Unsqueeze', [q.mask, ctx.ints([2])], [batch, tq, 1], {}, 'bool').name);
    if (v.mask) parts.push(ctx.op('Unsqueeze', [v.mask, ctx.ints([1])], [batch, 1, tk], {}, 'bool').name);
    if (inputs[2]?.mask) parts.push(ctx.op('Unsqueeze', [inputs[2].mask, ctx.ints([1])], [batch, 1, tk], {}, 'bool').name);
    if (call['use_causal_mask'] === true) {
      const rows = known(ctx, tq, 'a fixed query length for use_causal_mask');
      const cols = known(ctx, tk, 'a fixed key length for use_causal_mask');
      parts.push(ctx.init('causal_mask', Tensor.from('bool', [1, rows, cols], Array.from({ length: rows * cols }, (_, i) => (Math.floor(i / cols) >= i % cols ? 1 : 0)))));
    }
    if (parts.length) {
      const mask = parts.slice(1).reduce((a, m) => ctx.op('And', [a, m], [batch, tq, tk], {}, 'bool').name, parts[0]!);
      const wide = ctx.op('Unsqueeze', [mask, ctx.ints([1])], [batch, 1, tq, tk], {}, 'bool');
      scores = ctx.op('Where', [wide.name, scores.name, ctx.floats(-1e9)], scores.shape);
    }
    const probs = ctx.op('Softmax', [scores.name], scores.shape, { axis: attr.int(-1) });
    const context = ctx.op('MatMul', [probs.name, vt.name], [batch, heads, tq, valueDim]);
    const merged = ctx.op('Reshape', [ctx.op('Transpose', [context.name], [batch, tq, heads, valueDim], perm([0, 2, 1, 3])).name, ctx.ints([0, 0, heads * valueDim])], [batch, tq, heads * valueDim]);
    const outF = lastDim(ctx, q);
    const wo = ctx.init('output_dense/kernel', reshaped(ctx.weight('output_dense/kernel', [heads, valueDim, outF]), [heads * valueDim, outF]), { key: 'output_dense/kernel', how: 'same' });
    let y = ctx.op('MatMul', [merged.name, wo], [batch, tq, outF]);
    if (ctx.hasWeight('output_dense/bias')) y = ctx.op('Add', [y.name, ctx.init('output_dense/bias', ctx.weight('output_dense/bias', [outF]))], y.shape);
    // The output carries the query's mask.
    return [{ ...y, mask: q.mask }];
  },
};

/**
 * Every layer class modelbridge reads, by the class_name config.json gives. InputLayer, and the
 * nested models (Sequential, Functional, Model), are handled by the reader itself.
 */
export const LAYERS: Readonly<Record<string, LayerDef>> = {
  Dense: dense,
  Conv1D: convolution(1, false),
  Conv2D: convolution(2, false),
  Conv3D: convolution(3, false),
  DepthwiseConv2D: convolution(2, true),
  SeparableConv2D: separableConv2d,
  Conv2DTranspose: conv2dTranspose,
  BatchNormalization: batchNormalization,
  LayerNormalization: layerNormalization,
  Activation: activation,
  ReLU: relu,
  LeakyReLU: leakyRelu,
  Softmax: softmax,
  ELU: elu,
  Add: merge('Sum'),
  Multiply: merge('Mul'),
  Subtract: merge('Sub'),
  Average: merge('Mean'),
  Maximum: merge('Max'),
  Minimum: merge('Min'),
  Concatenate: concatenate,
  ZeroPadding1D: zeroPadding(1),
  ZeroPadding2D: zeroPadding(2),
  Cropping1D: cropping(1),
  Cropping2D: cropping(2),
  MaxPooling1D: pooling(1, 'MaxPool'),
  MaxPooling2D: pooling(2, 'MaxPool'),
  AveragePooling1D: pooling(1, 'AveragePool'),
  AveragePooling2D: pooling(2, 'AveragePool'),
  GlobalAveragePooling1D: globalPooling(1, 'ReduceMean'),
  GlobalAveragePooling2D: globalPooling(2, 'ReduceMean'),
  GlobalMaxPooling1D: globalPooling(1, 'ReduceMax'),
  GlobalMaxPooling2D: globalPooling(2, 'ReduceMax'),
  Flatten: flatten,
  Reshape: reshape,
  Permute: permute,
  Dropout: identity,
  SpatialDropout1D: identity,
  SpatialDropout2D: identity,
  GaussianNoise: identity,
  GaussianDropout: identity,
  AlphaDropout: identity,
  ActivityRegularization: identity,
  Identity: identity,
  Rescaling: rescaling,
  Normalization: normalization,
  Embedding: embedding,
  LSTM: recurrent('LSTM'),
  GRU: recurrent('GRU'),
  SimpleRNN: recurrent('RNN'),
  Bidirectional: bidirectional,
  Masking: masking,
  MultiHeadAttention: multiHeadAttention,
};

/** The IR ops each layer class makes (for docs and `inspect`), besides layout Transposes. */
export const KERAS_LAYER_CLASSES: readonly string[] = Object.keys(LAYERS).sort();
