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
  /** Adds an ONNX node with `count` outputs and returns them. */
  nodeOutputs(op: string, inputs: readonly string[], attributes: Record<string, Attribute>, count: number): string[];
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
  /**
   * What the module returns besides its main output (torch.nn.LSTM's h_n and c_n, GRU's h_n):
   * the model's further outputs when the module is the whole model.
   */
  readonly states?: readonly { readonly name: string; readonly value: string }[];
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

function convPads(f: Fields, n: number): Record<string, Attribute> {
  const padding = f.spec['padding'];
  if (padding === 'valid') return {};
  if (padding === 'same') return { auto_pad: attr.string('SAME_UPPER') };
  const p = f.tuple('padding', n, 0);
  return { pads: attr.ints([...p, ...p]) };
}

/** Conv1d and Conv2d (`n` spatial axes): ONNX Conv takes torch's weight layout as stored. */
function conv(n: number): LayerKind {
  return {
    params(f) {
      const inC = f.positive('in_channels');
      const outC = f.positive('out_channels');
      const groups = f.positive('groups', 1);
      const kernel = f.tuple('kernel_size', n, [], 1);
      if (inC % groups !== 0 || outC % groups !== 0) throw new SpecFieldError(f.path, `groups must divide in_channels and out_channels`);
      const ps: ParamSpec[] = [{ name: 'weight', shape: [outC, inC / groups, ...kernel] }];
      if (f.bool('bias', true)) ps.push({ name: 'bias', shape: [outC] });
      return ps;
    },
    lower(f, ctx, x) {
      f.string('padding_mode', 'zeros', ['zeros']);
      const inputs = [x.value, ctx.param('weight'), ...(f.bool('bias', true) ? [ctx.param('bias')] : [])];
      const attributes: Record<string, Attribute> = {
        kernel_shape: attr.ints(f.tuple('kernel_size', n, [], 1)),
        strides: attr.ints(f.tuple('stride', n, 1, 1)),
        dilations: attr.ints(f.tuple('dilation', n, 1, 1)),
        group: attr.int(f.positive('groups', 1)),
        ...convPads(f, n),
      };
      return { value: ctx.node('Conv', inputs, attributes), rank: n + 2 };
    },
  };
}

/** ConvTranspose2d: torch's weight is [in, out / groups, kh, kw], which is ONNX's layout too. */
const convTranspose2d: LayerKind = {
  params(f) {
    const inC = f.positive('in_channels');
    const outC = f.positive('out_channels');
    const groups = f.positive('groups', 1);
    const [kh, kw] = f.tuple('kernel_size', 2, [], 1);
    if (inC % groups !== 0 || outC % groups !== 0) throw new SpecFieldError(f.path, `groups must divide in_channels and out_channels`);
    const ps: ParamSpec[] = [{ name: 'weight', shape: [inC, outC / groups, kh!, kw!] }];
    if (f.bool('bias', true)) ps.push({ name: 'bias', shape: [outC] });
    return ps;
  },
  lower(f, ctx, x) {
    f.string('padding_mode', 'zeros', ['zeros']);
    const p = f.tuple('padding', 2, 0);
    const inputs = [x.value, ctx.param('weight'), ...(f.bool('bias', true) ? [ctx.param('bias')] : [])];
    const attributes: Record<string, Attribute> = {
      kernel_shape: attr.ints(f.tuple('kernel_size', 2, [], 1)),
      strides: attr.ints(f.tuple('stride', 2, 1, 1)),
      dilations: attr.ints(f.tuple('dilation', 2, 1, 1)),
      output_padding: attr.ints(f.tuple('output_padding', 2, 0)),
      group: attr.int(f.positive('groups', 1)),
      pads: attr.ints([...p, ...p]),
    };
    return { value: ctx.node('ConvTranspose', inputs, attributes), rank: 4 };
  },
};

/** Embedding: a row lookup, ONNX Gather on axis 0. padding_idx only shapes training. */
const embedding: LayerKind = {
  params: (f) => [{ name: 'weight', shape: [f.positive('num_embeddings'), f.positive('embedding_dim')] }],
  lower(f, ctx, x) {
    if (f.spec['max_norm'] !== undefined && f.spec['max_norm'] !== null) {
      throw new SpecFieldError(f.path, `Embedding with max_norm renormalises its weight in place on every call, which a graph cannot do`);
    }
    return { value: ctx.node('Gather', [ctx.param('weight'), x.value], { axis: attr.int(0) }), rank: x.rank === undefined ? undefined : x.rank + 1 };
  },
};

/** SiLU is x * sigmoid(x); ONNX has no op of its own for it before opset 24's Swish. */
const silu: LayerKind = {
  params: () => [],
  lower: (_f, ctx, x) => ({ value: ctx.node('Mul', [x.value, ctx.node('Sigmoid', [x.value])]), rank: x.rank }),
};

const hardswish: LayerKind = {
  params: () => [],
  lower(_f, ctx, x) {
    ctx.requireOpset(14);
    return { value: ctx.node('HardSwish', [x.value]), rank: x.rank };
  },
};

/**
 * GroupNorm through InstanceNormalization over [N, groups, rest] (ONNX's GroupNormalization
 * changed the meaning of its scale between opsets 18 and 21, and older runtimes lack it), then
 * torch's per-channel affine.
 */
const groupNorm: LayerKind = {
  params(f) {
    const c = f.positive('num_channels');
    const g = f.positive('num_groups');
    if (c % g !== 0) throw new SpecFieldError(f.path, `num_groups must divide num_channels`);
    return f.bool('affine', true) ? [{ name: 'weight', shape: [c] }, { name: 'bias', shape: [c] }] : [];
  },
  lower(f, ctx, x) {
    const c = f.positive('num_channels');
    const g = f.positive('num_groups');
    if (x.rank === undefined) throw new SpecFieldError(f.path, `GroupNorm needs the input rank (give a signature)`);
    const shape = ctx.node('Shape', [x.value]);
    const grouped = ctx.node('Reshape', [x.value, ctx.constant('groups', [3], [0, g, -1], 'int64')]);
    const ones = ctx.constant('ones', [g], new Array<number>(g).fill(1));
    const zeros = ctx.constant('zeros', [g], new Array<number>(g).fill(0));
    const normed = ctx.node('InstanceNormalization', [grouped, ones, zeros], { epsilon: attr.float(f.float('eps', 1e-5)) });
    let y = ctx.node('Reshape', [normed, shape]);
    if (f.bool('affine', true)) {
      const perChannel = ctx.constant('channel_shape', [x.rank - 1], [c, ...new Array<number>(x.rank - 2).fill(1)], 'int64');
      y = ctx.node('Mul', [y, ctx.node('Reshape', [ctx.param('weight'), perChannel])]);
      y = ctx.node('Add', [y, ctx.node('Reshape', [ctx.param('bias'), perChannel])]);
    }
    return { value: y, rank: x.rank };
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

/** BatchNorm1d ([N, C] or [N, C, L]) and BatchNorm2d: ONNX BatchNormalization takes any rank. */
function batchNorm(name: string): LayerKind {
  return {
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
      if (!f.bool('track_running_stats', true)) throw new SpecFieldError(f.path, `${name} without running stats normalises by batch statistics, which inference does not do`);
      const affine = f.bool('affine', true);
      const scale = affine ? ctx.param('weight') : ctx.constant('ones', [c], new Array<number>(c).fill(1));
      const bias = affine && f.bool('bias', true) ? ctx.param('bias') : ctx.constant('zeros', [c], new Array<number>(c).fill(0));
      const y = ctx.node('BatchNormalization', [x.value, scale, bias, ctx.param('running_mean'), ctx.param('running_var')], {
        epsilon: attr.float(f.float('eps', 1e-5)),
      });
      return { value: y, rank: x.rank ?? (name === 'BatchNorm2d' ? 4 : undefined) };
    },
  };
}

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
 * LSTM and GRU (torch.nn.RNNBase's arguments) as ONNX LSTM/GRU nodes, one per layer. torch keeps
 * the gates as row blocks in another order (LSTM i,f,g,o; GRU r,z,n) than ONNX (i,o,f,c; z,r,h):
 * a Gather of the rows reorders them in the graph, so the state dict stays as torch wrote it.
 * torch's GRU applies the reset gate after the recurrent product: ONNX linear_before_reset=1.
 */
function recurrent(kind: 'LSTM' | 'GRU'): LayerKind {
  const gates = kind === 'LSTM' ? 4 : 3;
  const order = kind === 'LSTM' ? [0, 3, 1, 2] : [1, 0, 2];
  const shape = (f: Fields) => {
    const hidden = f.positive('hidden_size');
    const proj = kind === 'LSTM' ? f.int('proj_size', 0) : 0;
    if (proj !== 0 && (proj < 0 || proj >= hidden)) throw new SpecFieldError(f.path, `${kind}.proj_size must be 0 or less than hidden_size`);
    return { input: f.positive('input_size'), hidden, layers: f.positive('num_layers', 1), bias: f.bool('bias', true), directions: f.bool('bidirectional', false) ? 2 : 1, proj };
  };
  const suffixes = (directions: number) => (directions === 2 ? ['', '_reverse'] : ['']);
  return {
    params(f) {
      const { input, hidden, layers, bias, directions, proj } = shape(f);
      const out = proj || hidden;
      const ps: ParamSpec[] = [];
      for (let l = 0; l < layers; l++) {
        for (const sfx of suffixes(directions)) {
          ps.push({ name: `weight_ih_l${l}${sfx}`, shape: [gates * hidden, l === 0 ? input : out * directions] });
          ps.push({ name: `weight_hh_l${l}${sfx}`, shape: [gates * hidden, out] });
          if (bias) ps.push({ name: `bias_ih_l${l}${sfx}`, shape: [gates * hidden] }, { name: `bias_hh_l${l}${sfx}`, shape: [gates * hidden] });
          if (proj) ps.push({ name: `weight_hr_l${l}${sfx}`, shape: [proj, hidden] });
        }
      }
      return ps;
    },
    lower(f, ctx, x) {
      const { input, hidden, layers, bias, directions, proj } = shape(f);
      if (proj) throw new SpecFieldError(f.path, `LSTM with proj_size has no ONNX LSTM equivalent`);
      if (x.rank !== 3) throw new SpecFieldError(f.path, `${kind} takes a batched 3-D input here (got rank ${x.rank ?? 'unknown'})`);
      const batchFirst = f.bool('batch_first', false);
      const rows = order.flatMap((block) => Array.from({ length: hidden }, (_, i) => block * hidden + i));
      const perm = ctx.constant('gate_order', [rows.length], rows, 'int64');
      const reordered = (name: string, dims: number[]): string =>
        ctx.node('Reshape', [ctx.node('Gather', [ctx.param(name), perm], { axis: attr.int(0) }), ctx.constant('shape', [dims.length], dims, 'int64')]);
      const stack = (parts: string[]): string => (parts.length === 1 ? parts[0]! : ctx.node('Concat', parts, { axis: attr.int(0) }));
      // ONNX takes [seq, batch, features] (layout 0, every opset); torch's batch_first is [batch, seq, features].
      let seq = batchFirst ? ctx.node('Transpose', [x.value], { perm: attr.ints([1, 0, 2]) }) : x.value;
      // Y_h and Y_c are [directions, batch, hidden] per layer; torch's h_n and c_n stack the layers.
      const lastH: string[] = [];
      const lastC: string[] = [];
      for (let l = 0; l < layers; l++) {
        const inSize = l === 0 ? input : hidden * directions;
        const sfx = suffixes(directions);
        const w = stack(sfx.map((d) => reordered(`weight_ih_l${l}${d}`, [1, gates * hidden, inSize])));
        const r = stack(sfx.map((d) => reordered(`weight_hh_l${l}${d}`, [1, gates * hidden, hidden])));
        const inputs = [seq, w, r];
        if (bias) {
          const b = sfx.map((d) =>
            ctx.node('Reshape', [
              ctx.node('Concat', [ctx.node('Gather', [ctx.param(`bias_ih_l${l}${d}`), perm], { axis: attr.int(0) }), ctx.node('Gather', [ctx.param(`bias_hh_l${l}${d}`), perm], { axis: attr.int(0) })], { axis: attr.int(0) }),
              ctx.constant('shape', [2], [1, 2 * gates * hidden], 'int64'),
            ]),
          );
          inputs.push(stack(b));
        }
        const attributes: Record<string, Attribute> = { hidden_size: attr.int(hidden), direction: attr.string(directions === 2 ? 'bidirectional' : 'forward') };
        if (kind === 'GRU') attributes['linear_before_reset'] = attr.int(1);
        const [y, yh, yc] = ctx.nodeOutputs(kind, inputs, attributes, kind === 'LSTM' ? 3 : 2) as [string, string, string | undefined];
        lastH.push(yh);
        if (yc) lastC.push(yc);
        // Y is [seq, directions, batch, hidden]; torch's output is [seq, batch, directions * hidden].
        const t = ctx.node('Transpose', [y], { perm: attr.ints([0, 2, 1, 3]) });
        seq = ctx.node('Reshape', [t, ctx.constant('shape', [3], [0, 0, directions * hidden], 'int64')]);
      }
      const states = [{ name: 'h_n', value: stack(lastH) }, ...(kind === 'LSTM' ? [{ name: 'c_n', value: stack(lastC) }] : [])];
      return { value: batchFirst ? ctx.node('Transpose', [seq], { perm: attr.ints([1, 0, 2]) }) : seq, rank: 3, states };
    },
  };
}

/**
 * The torch.nn classes a spec may name, each with its state-dict entries and its lowering into
 * ONNX ops. Containers (Sequential) are handled by the lowering itself.
 */
export const LAYERS: Readonly<Record<string, LayerKind>> = {
  Linear: linear,
  Conv1d: conv(1),
  Conv2d: conv(2),
  ConvTranspose2d: convTranspose2d,
  Embedding: embedding,
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
  SiLU: silu,
  Hardswish: hardswish,
  BatchNorm1d: batchNorm('BatchNorm1d'),
  BatchNorm2d: batchNorm('BatchNorm2d'),
  LayerNorm: layerNorm,
  GroupNorm: groupNorm,
  LSTM: recurrent('LSTM'),
  GRU: recurrent('GRU'),
  Dropout: passThrough,
  Identity: passThrough,
};

/** Containers: Sequential runs its children in order; ModuleList and ModuleDict only hold them. */
export const CONTAINERS = ['Sequential', 'ModuleList', 'ModuleDict'] as const;

export function knownModuleTypes(): string[] {
  return [...CONTAINERS, ...Object.keys(LAYERS), 'Graph'].sort();
}
