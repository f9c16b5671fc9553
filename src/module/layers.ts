import { attr, type Attribute } from '../core/graph.js';
import { SpecFieldError, type Fields } from './fields.js';

/** A parameter or buffer a module keeps in its state dict. */
export interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
  /** Buffers of integer type (BatchNorm's num_batches_tracked); floats otherwise. */
  readonly integer?: boolean;
}

/** What a layer may do while lowering into the graph. */
export interface LowerContext {
  /** Adds an ONNX node and returns its (single) output value. */
  node(op: string, inputs: readonly string[], attributes?: Record<string, Attribute>): string;
  /** The graph value holding this module's parameter `name` (its state-dict key). */
  param(name: string): string;
  /** A constant the layer needs that torch does not store (BatchNorm without affine, a shape). */
  constant(name: string, shape: readonly number[], values: readonly number[], dtype?: 'float32' | 'int64'): string;
  /** Raises the graph's opset when an op needs a newer one (Gelu is opset 20). */
  requireOpset(opset: number): void;
}

export interface Lowered {
  readonly value: string;
  /** Rank of the output when known; some lowerings depend on it. */
  readonly rank: number | undefined;
}

export interface LayerKind {
  params(f: Fields): ParamSpec[];
  lower(f: Fields, ctx: LowerContext, input: Lowered): Lowered;
}

function unary(op: string): LayerKind {
  return { params: () => [], lower: (_f, ctx, x) => ({ value: ctx.node(op, [x.value]), rank: x.rank }) };
}

const passThrough: LayerKind = { params: () => [], lower: (_f, ctx, x) => ({ value: ctx.node('Identity', [x.value]), rank: x.rank }) };

/** torch's implicit softmax dim for `dim=None` (torch.nn.functional._get_softmax_dim). */
function softmaxAxis(f: Fields, rank: number | undefined): number {
  const dim = f.optionalInt('dim');
  if (dim !== undefined) return dim;
  if (rank === undefined) throw new SpecFieldError(f.path, `${f.spec.type} without dim needs the input rank`);
  return rank === 0 || rank === 1 || rank === 3 ? 0 : 1;
}

function softmax(op: string): LayerKind {
  return {
    params: () => [],
    lower: (f, ctx, x) => ({ value: ctx.node(op, [x.value], { axis: attr.int(softmaxAxis(f, x.rank)) }), rank: x.rank }),
  };
}

const linear: LayerKind = {
  params(f) {
    const inF = f.int('in_features');
    const outF = f.int('out_features');
    const ps: ParamSpec[] = [{ name: 'weight', shape: [outF, inF] }];
    if (f.bool('bias', true)) ps.push({ name: 'bias', shape: [outF] });
    return ps;
  },
  lower(f, ctx, x) {
    const bias = f.bool('bias', true);
    if (x.rank === 2) {
      // Gemm with transB takes torch's [out, in] weight as stored: no copy, no transpose node.
      const inputs = [x.value, ctx.param('weight'), ...(bias ? [ctx.param('bias')] : [])];
      return { value: ctx.node('Gemm', inputs, { transB: attr.int(1) }), rank: 2 };
    }
    // Gemm is 2-D only; nn.Linear acts on the last axis of any rank, which MatMul broadcasts.
    const wt = ctx.node('Transpose', [ctx.param('weight')], { perm: attr.ints([1, 0]) });
    const y = ctx.node('MatMul', [x.value, wt]);
    return { value: bias ? ctx.node('Add', [y, ctx.param('bias')]) : y, rank: x.rank };
  },
};

function convPads(f: Fields): Record<string, Attribute> {
  const padding = f.spec['padding'];
  if (padding === 'valid') return {};
  if (padding === 'same') return { auto_pad: attr.string('SAME_UPPER') };
  const [ph, pw] = f.tuple('padding', 2, 0);
  return { pads: attr.ints([ph!, pw!, ph!, pw!]) };
}

const conv2d: LayerKind = {
  params(f) {
    const inC = f.positive('in_channels');
    const outC = f.positive('out_channels');
    const groups = f.positive('groups', 1);
    const [kh, kw] = f.tuple('kernel_size', 2, [], 1);
    if (inC % groups !== 0 || outC % groups !== 0) throw new SpecFieldError(f.path, `groups must divide in_channels and out_channels`);
    const ps: ParamSpec[] = [{ name: 'weight', shape: [outC, inC / groups, kh!, kw!] }];
    if (f.bool('bias', true)) ps.push({ name: 'bias', shape: [outC] });
    return ps;
  },
  lower(f, ctx, x) {
    f.string('padding_mode', 'zeros', ['zeros']);
    const inputs = [x.value, ctx.param('weight'), ...(f.bool('bias', true) ? [ctx.param('bias')] : [])];
    const attributes: Record<string, Attribute> = {
      kernel_shape: attr.ints(f.tuple('kernel_size', 2, [], 1)),
      strides: attr.ints(f.tuple('stride', 2, 1, 1)),
      dilations: attr.ints(f.tuple('dilation', 2, 1, 1)),
      group: attr.int(f.positive('groups', 1)),
      ...convPads(f),
    };
    return { value: ctx.node('Conv', inputs, attributes), rank: 4 };
  },
};

function poolAttributes(f: Fields): Record<string, Attribute> {
  const kernel = f.tuple('kernel_size', 2, [], 1);
  const stride = f.spec['stride'] === undefined || f.spec['stride'] === null ? kernel : f.tuple('stride', 2, 1, 1);
  const [ph, pw] = f.tuple('padding', 2, 0);
  return {
    kernel_shape: attr.ints(kernel),
    strides: attr.ints(stride),
    pads: attr.ints([ph!, pw!, ph!, pw!]),
    ceil_mode: attr.int(f.bool('ceil_mode', false) ? 1 : 0),
  };
}

const maxPool2d: LayerKind = {
  params: () => [],
  lower(f, ctx, x) {
    if (f.bool('return_indices', false)) throw new SpecFieldError(f.path, `MaxPool2d with return_indices is not supported`);
    const attributes = { ...poolAttributes(f), dilations: attr.ints(f.tuple('dilation', 2, 1, 1)) };
    return { value: ctx.node('MaxPool', [x.value], attributes), rank: 4 };
  },
};

const avgPool2d: LayerKind = {
  params: () => [],
  lower(f, ctx, x) {
    if (f.spec['divisor_override'] !== undefined && f.spec['divisor_override'] !== null) {
      throw new SpecFieldError(f.path, `AvgPool2d with divisor_override is not supported`);
    }
    // torch counts padding in the average by default; ONNX does not.
    const attributes = { ...poolAttributes(f), count_include_pad: attr.int(f.bool('count_include_pad', true) ? 1 : 0) };
    return { value: ctx.node('AveragePool', [x.value], attributes), rank: 4 };
  },
};

const flatten: LayerKind = {
  params: () => [],
  lower(f, ctx, x) {
    const start = f.int('start_dim', 1);
    const end = f.int('end_dim', -1);
    const rank = x.rank;
    const lastAxis = rank === undefined ? -1 : rank - 1;
    if (end !== -1 && end !== lastAxis) throw new SpecFieldError(f.path, `Flatten is supported up to the last axis only (end_dim=-1)`);
    const s = start < 0 && rank !== undefined ? start + rank : start;
    if (s < 0) throw new SpecFieldError(f.path, `Flatten with a negative start_dim needs the input rank`);
    if (s === 1) return { value: ctx.node('Flatten', [x.value], { axis: attr.int(1) }), rank: 2 };
    // Keep the leading axes (0 copies the input's size) and merge the rest.
    const shape = ctx.constant('shape', [s + 1], [...new Array<number>(s).fill(0), -1], 'int64');
    return { value: ctx.node('Reshape', [x.value, shape]), rank: s + 1 };
  },
};

const leakyRelu: LayerKind = {
  params: () => [],
  lower: (f, ctx, x) => ({
    value: ctx.node('LeakyRelu', [x.value], { alpha: attr.float(f.float('negative_slope', 0.01)) }),
    rank: x.rank,
  }),
};

const gelu: LayerKind = {
  params: () => [],
  lower(f, ctx, x) {
    ctx.requireOpset(20);
    const approximate = f.string('approximate', 'none', ['none', 'tanh']);
    return { value: ctx.node('Gelu', [x.value], { approximate: attr.string(approximate) }), rank: x.rank };
  },
};

const batchNorm2d: LayerKind = {
  params(f) {
    const c = f.positive('num_features');
    const ps: ParamSpec[] = [];
    // torch 2.13 added BatchNorm's keyword-only `bias`; without it the shift is zero.
    if (f.bool('affine', true)) ps.push({ name: 'weight', shape: [c] }, ...(f.bool('bias', true) ? [{ name: 'bias', shape: [c] }] : []));
    if (f.bool('track_running_stats', true)) {
      ps.push({ name: 'running_mean', shape: [c] }, { name: 'running_var', shape: [c] }, { name: 'num_batches_tracked', shape: [], integer: true });
    }
    return ps;
  },
  lower(f, ctx, x) {
    const c = f.positive('num_features');
    if (!f.bool('track_running_stats', true)) throw new SpecFieldError(f.path, `BatchNorm2d without running stats normalises by batch statistics, which inference does not do`);
    const affine = f.bool('affine', true);
    const scale = affine ? ctx.param('weight') : ctx.constant('ones', [c], new Array<number>(c).fill(1));
    const bias = affine && f.bool('bias', true) ? ctx.param('bias') : ctx.constant('zeros', [c], new Array<number>(c).fill(0));
    const y = ctx.node('BatchNormalization', [x.value, scale, bias, ctx.param('running_mean'), ctx.param('running_var')], {
      epsilon: attr.float(f.float('eps', 1e-5)),
    });
    return { value: y, rank: 4 };
  },
};

const layerNorm: LayerKind = {
  params(f) {
    const shape = f.shape('normalized_shape');
    if (!f.bool('elementwise_affine', true)) return [];
    return [{ name: 'weight', shape }, ...(f.bool('bias', true) ? [{ name: 'bias', shape }] : [])];
  },
  lower(f, ctx, x) {
    const shape = f.shape('normalized_shape');
    const affine = f.bool('elementwise_affine', true);
    const n = shape.reduce((a, b) => a * b, 1);
    const scale = affine ? ctx.param('weight') : ctx.constant('ones', shape, new Array<number>(n).fill(1));
    const inputs = [x.value, scale, ...(affine && f.bool('bias', true) ? [ctx.param('bias')] : [])];
    const y = ctx.node('LayerNormalization', inputs, { axis: attr.int(-shape.length), epsilon: attr.float(f.float('eps', 1e-5)) });
    return { value: y, rank: x.rank };
  },
};

/**
 * The torch.nn classes a spec may name, each with its state-dict entries and its lowering into
 * ONNX ops. Containers (Sequential) are handled by the lowering itself.
 */
export const LAYERS: Readonly<Record<string, LayerKind>> = {
  Linear: linear,
  Conv2d: conv2d,
  MaxPool2d: maxPool2d,
  AvgPool2d: avgPool2d,
  Flatten: flatten,
  ReLU: unary('Relu'),
  Sigmoid: unary('Sigmoid'),
  Tanh: unary('Tanh'),
  LeakyReLU: leakyRelu,
  Softmax: softmax('Softmax'),
  LogSoftmax: softmax('LogSoftmax'),
  GELU: gelu,
  BatchNorm2d: batchNorm2d,
  LayerNorm: layerNorm,
  Dropout: passThrough,
  Identity: passThrough,
};

export const CONTAINERS = ['Sequential'] as const;

export function knownModuleTypes(): string[] {
  return [...CONTAINERS, ...Object.keys(LAYERS), 'Graph'].sort();
}
