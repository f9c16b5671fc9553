import { isFloat, type DType } from '../../core/dtypes.js';
import { attr, type Attribute } from '../../core/graph.js';
import { ONNX_TYPES, staticShape, promote, type Call } from './lowering.js';

/**
 * Core ATen ops (what torch.export's run_decompositions() leaves) to IR ops with ONNX semantics:
 * ONE table, keyed by the overload's name as the program names it (`aten.addmm.default`), each
 * entry writing the IR nodes for one call. The same table answers "is this op supported" for the
 * reader's one-line refusal and for the docs (PT2_IMPORT_IR: the IR ops each entry emits).
 *
 * Dtypes follow torch: an op's result dtype is in the program's metadata, so mixed operands
 * (an int64 tensor times a float scalar) are cast to it before ONNX's same-type ops run.
 */

export type AtenLowering = (c: Call) => void;

const nd = (c: Call, op: string, inputs: readonly string[], attributes: Record<string, Attribute> = {}, i = 0): string => c.lo.node(op, inputs, attributes, [c.out(i)]);
const normAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

function unary(op: string, attributes: Record<string, Attribute> = {}): AtenLowering {
  return (c) => void nd(c, op, [c.lo.cast(c.tensor('self'), c.meta('self').dtype, c.outMeta().dtype)], attributes);
}

/** Elementwise arithmetic: operands cast to the result dtype; add/sub scale `other` by `alpha`. */
function arithmetic(op: string, options: { alpha?: boolean; reverse?: boolean } = {}): AtenLowering {
  return (c) => {
    const dtype = c.outMeta().dtype;
    const a = c.operand('self', dtype);
    let b = c.operand('other', dtype);
    if (options.alpha) {
      const alpha = c.scalar('alpha');
      if (alpha && alpha.kind === 'number' && alpha.value !== 1) b = c.lo.node('Mul', [b, c.lo.constant(dtype, [], [alpha.value])]);
    }
    nd(c, op, options.reverse ? [b, a] : [a, b]);
  };
}

/** The dtype two operands compare in: torch promotes, and a float number lifts an int tensor to float32. */
function compareDtype(c: Call): DType {
  const a = c.meta('self').dtype;
  const s = c.scalar('other');
  if (!s) return c.fail('argument other');
  if (s.kind === 'tensor') return promote(a, s.meta.dtype);
  return s.float && !isFloat(a) ? 'float32' : a;
}

function compare(op: string, negate = false): AtenLowering {
  return (c) => {
    const dtype = compareDtype(c);
    const inputs = [c.operand('self', dtype), c.operand('other', dtype)];
    if (negate) nd(c, 'Not', [c.lo.node(op, inputs)]);
    else nd(c, op, inputs);
  };
}

function logical(op: string): AtenLowering {
  return (c) => {
    const a = c.lo.cast(c.tensor('self'), c.meta('self').dtype, 'bool');
    const b = c.lo.cast(c.tensor('other'), c.meta('other').dtype, 'bool');
    c.outMeta().dtype === 'bool' ? nd(c, op, [a, b]) : c.fail(`a bool result (${op} on integers is not mapped)`);
  };
}

function reduce(op: string, options: { bool?: boolean } = {}): AtenLowering {
  return (c) => {
    const rank = c.rank('self');
    const dims = c.has('dim') ? c.ints('dim') : undefined;
    const axes = dims === undefined || dims.length === 0 ? undefined : dims.map((d) => normAxis(d, rank));
    const keep = c.bool('keepdim', false);
    const inDtype = c.meta('self').dtype;
    const outDtype = c.outMeta().dtype;
    if (options.bool) {
      // any/all: ONNX reduces no bools before opset 20; max/min over 0/1 floats is exact.
      const x = c.lo.cast(c.tensor('self'), inDtype, 'float32');
      nd(c, 'Cast', [c.lo.reduce(op, x, axes, keep)], { to: attr.int(9) });
      return;
    }
    const x = c.lo.cast(c.tensor('self'), inDtype, outDtype);
    c.lo.reduce(op, x, axes, keep, c.out());
  };
}

/** A tensor of `shape` (an int64 [n] value) filled with one number, for full / full_like / zeros... */
function fill(c: Call, shapeValue: string | undefined, value: number): void {
  const dtype = c.outMeta().dtype;
  const scalar = c.lo.constant(dtype, [], [value]);
  if (shapeValue === undefined) nd(c, 'Identity', [scalar]);
  else nd(c, 'Expand', [scalar, shapeValue]);
}

function fillValue(c: Call, name: string): number {
  const s = c.scalar(name);
  if (!s || s.kind !== 'number') return c.fail(`argument ${name} to be a number`);
  return s.value;
}

function convolution(c: Call): void {
  const w = c.meta('weight').shape;
  const spatial = w.length - 2;
  const expand = (v: number[], n: number) => (v.length === 1 ? new Array<number>(n).fill(v[0]!) : v);
  const stride = expand(c.ints('stride', [1]), spatial);
  const padding = expand(c.ints('padding', [0]), spatial);
  const dilation = expand(c.ints('dilation', [1]), spatial);
  const groups = c.int('groups', 1);
  const kernel = staticShape(w.slice(2)) ?? c.fail('a weight with static kernel sizes');
  const bias = c.optionalTensor('bias');
  const inputs = [c.tensor('input'), c.tensor('weight'), ...(bias ? [bias] : [])];
  const common = { strides: attr.ints(stride), pads: attr.ints([...padding, ...padding]), dilations: attr.ints(dilation), group: attr.int(groups), kernel_shape: attr.ints(kernel) };
  if (c.bool('transposed', false)) {
    const outputPadding = expand(c.ints('output_padding', [0]), spatial);
    nd(c, 'ConvTranspose', inputs, { ...common, output_padding: attr.ints(outputPadding) });
  } else nd(c, 'Conv', inputs, common);
}

/** Gemm, taking a transposed weight (the permute torch puts before addmm) as transB of the weight itself. */
function gemm(c: Call, a: string, b: string, bias: string | undefined, alpha: number, beta: number): void {
  const t = c.lo.transposes.get(b);
  const transB = t !== undefined && t.perm.length === 2 && t.perm[0] === 1 && t.perm[1] === 0;
  const attributes: Record<string, Attribute> = {};
  if (alpha !== 1) attributes['alpha'] = attr.float(alpha);
  if (beta !== 1) attributes['beta'] = attr.float(beta);
  if (transB) attributes['transB'] = attr.int(1);
  nd(c, 'Gemm', [a, transB ? t.source : b, ...(bias ? [bias] : [])], attributes);
}

function pool(c: Call, op: 'MaxPool' | 'AveragePool'): void {
  const kernel = c.ints('kernel_size');
  const spatial = c.rank('self') - 2;
  const expand = (v: number[]) => (v.length === 1 ? new Array<number>(spatial).fill(v[0]!) : v);
  const k = expand(kernel);
  const strideArg = c.ints('stride', []);
  const stride = strideArg.length === 0 ? k : expand(strideArg);
  const padding = expand(c.ints('padding', [0]));
  const attributes: Record<string, Attribute> = { kernel_shape: attr.ints(k), strides: attr.ints(stride), pads: attr.ints([...padding, ...padding]), ceil_mode: attr.int(c.bool('ceil_mode', false) ? 1 : 0) };
  if (op === 'MaxPool') {
    const dilation = expand(c.ints('dilation', [1]));
    if (dilation.some((d) => d !== 1)) attributes['dilations'] = attr.ints(dilation);
    if (c.outputUsed(1)) c.fail('the indices output of max_pool unused (only the values are mapped)');
  } else {
    if (c.has('divisor_override')) c.fail('avg_pool without divisor_override');
    attributes['count_include_pad'] = attr.int(c.bool('count_include_pad', true) ? 1 : 0);
  }
  nd(c, op, [c.tensor('self')], attributes);
}

function adaptiveAvgPool(c: Call): void {
  const size = c.ints('output_size');
  const input = c.meta('self').shape;
  const spatial = input.slice(input.length - size.length);
  if (size.every((s) => s === 1)) return void nd(c, 'GlobalAveragePool', [c.tensor('self')]);
  const dims = staticShape(spatial);
  if (!dims || dims.some((d, i) => d % size[i]! !== 0)) return c.fail(`an adaptive pool whose input sizes are static multiples of its output size ${JSON.stringify(size)}`);
  const k = dims.map((d, i) => d / size[i]!);
  nd(c, 'AveragePool', [c.tensor('self')], { kernel_shape: attr.ints(k), strides: attr.ints(k) });
}

/**
 * upsample_bilinear2d (F.interpolate(mode="bilinear")): ONNX Resize, linear, as torch.onnx.export
 * writes it. torch maps an output pixel back with (x + 0.5) / scale - 0.5 (align_corners=False;
 * scale the given factor, else out/in), which is ONNX's half_pixel; align_corners=True is
 * ONNX's align_corners. Sizes are given for the two spatial axes only, so the batch and channel
 * sizes come from the input's Shape at run time (a program over a dynamic batch stays one).
 */
function upsampleBilinear(c: Call, input: string): void {
  if (c.rank(input) !== 4) return c.fail('a 4-D (NCHW) input to upsample_bilinear2d');
  const align = c.bool('align_corners');
  const attributes = { mode: attr.string('linear'), coordinate_transformation_mode: attr.string(align ? 'align_corners' : 'half_pixel') };
  const x = c.tensor(input);
  const factors = c.has('scale_factors') ? c.floats('scale_factors') : c.has('scales_h') && c.has('scales_w') ? [c.float('scales_h'), c.float('scales_w')] : undefined;
  if (factors && (factors.length !== 2 || !factors.every((f) => f > 0))) return c.fail(`two positive scale factors, not ${JSON.stringify(factors)}`);
  const byFactors = () => void nd(c, 'Resize', [x, '', c.lo.constant('float32', [4], [1, 1, ...factors!])], attributes);
  if (!c.has('output_size')) return factors ? byFactors() : c.fail('an output_size or scale factors');
  const size = c.ints('output_size');
  if (size.length !== 2 || !size.every((d) => d >= 1)) return c.fail(`an output_size of two positive sizes, not ${JSON.stringify(size)}`);
  if (factors) {
    // Both (upsample_bilinear2d.default after interpolate(scale_factor=...)): torch maps pixels
    // with the factors, ONNX's Resize with scales too, and its size is floor(in * factor).
    const spatial = c.meta(input).shape.slice(2);
    if (spatial.every((d, i) => typeof d === 'number' && Math.floor(d * factors[i]!) === size[i])) return byFactors();
    return c.fail('scale factors that give the output_size (floor(input size x factor)), as ONNX Resize computes it');
  }
  // Only an output_size: torch's scale is in/out, ONNX's Resize with sizes takes the same.
  const sizes = c.lo.node('Concat', [c.lo.node('Shape', [x], { start: attr.int(0), end: attr.int(2) }), c.lo.ints(size)], { axis: attr.int(0) });
  nd(c, 'Resize', [x, '', '', sizes], attributes);
}

function layerNorm(c: Call): void {
  const normalized = c.ints('normalized_shape');
  const x = c.tensor('input');
  const dtype = c.meta('input').dtype;
  const ones = (value: number) => {
    const count = normalized.reduce((a, b) => a * b, 1);
    c.lo.claim('the scale of a layer norm without weight', dtype, count);
    return c.lo.constant(dtype, normalized, new Array<number>(count).fill(value));
  };
  const scale = c.optionalTensor('weight') ?? ones(1);
  const bias = c.optionalTensor('bias');
  const outputs = [c.out(0), c.outputUsed(1) ? c.out(1) : '', c.outputUsed(2) ? c.out(2) : ''];
  while (outputs.length > 1 && outputs[outputs.length - 1] === '') outputs.pop();
  c.lo.node('LayerNormalization', [x, scale, ...(bias ? [bias] : [])], { axis: attr.int(-normalized.length), epsilon: attr.float(c.float('eps', 1e-5)) }, outputs);
}

function batchNorm(c: Call): void {
  const x = c.tensor('input');
  const channels = c.meta('input').shape[1];
  const dtype = c.meta('input').dtype;
  const filled = (value: number) => {
    if (typeof channels !== 'number') return c.fail('a static channel count');
    c.lo.claim('the scale of a batch norm without weight', dtype, channels);
    return c.lo.constant(dtype, [channels], new Array<number>(channels).fill(value));
  };
  const weight = c.optionalTensor('weight') ?? filled(1);
  const bias = c.optionalTensor('bias') ?? filled(0);
  if (c.outputUsed(1) || c.outputUsed(2)) c.fail('the saved mean/rstd outputs of batch norm unused');
  nd(c, 'BatchNormalization', [x, weight, bias, c.tensor('running_mean'), c.tensor('running_var')], { epsilon: attr.float(c.float('eps', 1e-5)), momentum: attr.float(1 - c.float('momentum', 0.1)) });
}

function reshape(c: Call, argument: 'size' | 'shape'): void {
  const size = c.sizes(argument);
  // A 0 in torch is an empty dimension; in ONNX's Reshape it copies the input's unless allowzero.
  nd(c, 'Reshape', [c.tensor('self'), size.value], size.static?.includes(0) ? { allowzero: attr.int(1) } : {});
}

function permute(c: Call, perm: number[]): void {
  const x = c.tensor('self');
  nd(c, 'Transpose', [x], { perm: attr.ints(perm) });
  c.lo.transposes.set(c.out(), { source: x, perm });
}

function slice(c: Call): void {
  const rank = c.rank('self');
  const dim = normAxis(c.int('dim', 0), rank);
  const size = c.meta('self').shape[dim];
  // "To the end" is INT64_MAX in torch; with a static size it is that size, which every target
  // (TF.js keeps int64 as int32) can hold.
  const limit = typeof size === 'number' ? size : Number.MAX_SAFE_INTEGER;
  const clamp = (v: number) => Math.max(-limit - 1, Math.min(v, limit));
  const start = clamp(c.optionalInt('start') ?? 0);
  const end = clamp(c.optionalInt('end') ?? Number.MAX_SAFE_INTEGER);
  const step = c.int('step', 1);
  nd(c, 'Slice', [c.tensor('self'), c.lo.ints([start]), c.lo.ints([end]), c.lo.ints([dim]), c.lo.ints([step])]);
}

function squeeze(c: Call, dims: number[] | undefined): void {
  const shape = c.meta('self').shape;
  // torch leaves a dimension that is not 1 in place; ONNX would fail on it, so only 1s are named.
  const axes = (dims ?? shape.map((_, i) => i)).map((d) => normAxis(d, shape.length)).filter((d) => shape[d] === 1);
  if (axes.length === 0) return void nd(c, 'Identity', [c.tensor('self')]);
  nd(c, 'Squeeze', [c.tensor('self'), c.lo.ints(axes)]);
}

function index(c: Call): void {
  const indices = c.tensors('indices');
  const x = c.tensor('self');
  const present = indices.map((t, i) => (t === undefined ? -1 : i)).filter((i) => i >= 0);
  const first = present[0];
  if (first === undefined) return c.fail('at least one index tensor');
  // torch's bool masks select nonzero() positions, a data-dependent shape: only integer index tensors are mapped.
  if (c.listMeta('indices').some((m) => m?.dtype === 'bool' || m?.dtype === 'uint8')) return c.fail('integer index tensors (boolean-mask indexing is not mapped)');
  if (present.length === 1) {
    // One index tensor at dim d: result = self[:d] + index.shape + self[d+1:], which is Gather.
    return void nd(c, 'Gather', [x, indices[first]!], { axis: attr.int(first) });
  }
  // Several adjacent index tensors from dim 0: broadcast them, stack them in the last axis, GatherND.
  if (present.some((p, k) => p !== k)) return c.fail('index tensors at the leading dimensions, adjacent (other advanced-indexing layouts are not mapped)');
  const rank = c.rank('self');
  const out = staticShape(c.outMeta().shape) ?? c.fail('index results of static shape');
  const broadcast = out.slice(0, out.length - (rank - present.length));
  const shape = c.lo.ints(broadcast);
  const stacked = present.map((p) => c.lo.node('Unsqueeze', [c.lo.node('Expand', [c.lo.cast(indices[p]!, 'int64', 'int64'), shape]), c.lo.ints([-1])]));
  nd(c, 'GatherND', [x, c.lo.node('Concat', stacked, { axis: attr.int(-1) })]);
}

function sdpa(c: Call): void {
  const q = c.tensor('query');
  const k = c.tensor('key');
  const v = c.tensor('value');
  const qm = c.meta('query');
  const dtype = qm.dtype;
  const e = qm.shape[qm.shape.length - 1];
  if (typeof e !== 'number') return c.fail('a static head size');
  if (c.float('dropout_p', 0) !== 0) c.fail('dropout_p 0 (inference)');
  const scale = c.has('scale') ? c.float('scale') : 1 / Math.sqrt(e);
  const rank = qm.shape.length;
  const perm = [...Array(rank).keys()];
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1]!, perm[rank - 2]!];
  let scores = c.lo.node('MatMul', [c.lo.node('Mul', [q, c.lo.constant(dtype, [], [scale])]), c.lo.node('Transpose', [k], { perm: attr.ints(perm) })]);
  const mask = c.optionalTensor('attn_mask');
  const maskDtype = mask ? c.meta('attn_mask').dtype : undefined;
  if (mask) {
    scores = maskDtype === 'bool'
      ? c.lo.node('Where', [mask, scores, c.lo.constant(dtype, [], [-Infinity])])
      : c.lo.node('Add', [scores, mask]);
  }
  if (c.bool('is_causal', false)) {
    const l = qm.shape[rank - 2];
    const s = c.meta('key').shape[rank - 2];
    if (typeof l !== 'number' || typeof s !== 'number') return c.fail('static sequence lengths for is_causal');
    const values: number[] = [];
    c.lo.claim('a causal mask', 'bool', l * s);
    for (let i = 0; i < l; i++) for (let j = 0; j < s; j++) values.push(j <= i ? 1 : 0);
    scores = c.lo.node('Where', [c.lo.constant('bool', [l, s], values), scores, c.lo.constant(dtype, [], [-Infinity])]);
  }
  nd(c, 'MatMul', [c.lo.node('Softmax', [scores], { axis: attr.int(-1) }), v]);
}

function arange(c: Call): void {
  const start = c.has('start') ? fillValue(c, 'start') : 0;
  const end = fillValue(c, 'end');
  const step = c.has('step') ? fillValue(c, 'step') : 1;
  const dtype = c.outMeta().dtype;
  const n = Math.max(0, Math.ceil((end - start) / step));
  c.lo.claim('an arange', dtype, n);
  nd(c, 'Identity', [c.lo.constant(dtype, [n], Array.from({ length: n }, (_, i) => start + i * step))]);
}

function clamp(c: Call): void {
  const dtype = c.outMeta().dtype;
  const x = c.lo.cast(c.tensor('self'), c.meta('self').dtype, dtype);
  const bound = (name: string) => (c.has(name) ? c.operand(name, dtype) : '');
  const inputs = [x, bound('min'), bound('max')];
  while (inputs[inputs.length - 1] === '') inputs.pop();
  nd(c, 'Clip', inputs);
}

function split(c: Call, sizes: number[] | undefined): void {
  const rank = c.rank('self');
  const dim = normAxis(c.int('dim', 0), rank);
  const length = c.meta('self').shape[dim];
  let parts = sizes;
  if (parts === undefined) {
    const each = c.int('split_size');
    if (typeof length !== 'number') return c.fail('a static size along the split dimension');
    if (!(each >= 1)) return c.fail(`a split size of at least 1, not ${each}`);
    c.lo.claim('the split sizes', 'int64', Math.ceil(length / each));
    parts = [];
    for (let left = length; left > 0; left -= each) parts.push(Math.min(each, left));
  }
  const outputs = c.outputs.map((o, i) => o || c.lo.fresh(`split_unused_${i}`));
  c.lo.node('Split', [c.tensor('self'), c.lo.ints(parts)], { axis: attr.int(dim) }, outputs);
}

/** torch's remainder takes the divisor's sign (Python's %): ONNX Mod fmod=0 for integers, a - floor(a/b)*b for floats. */
function remainder(c: Call): void {
  const dtype = c.outMeta().dtype;
  const a = c.operand('self', dtype);
  const b = c.operand('other', dtype);
  if (!isFloat(dtype)) return void nd(c, 'Mod', [a, b], { fmod: attr.int(0) });
  nd(c, 'Sub', [a, c.lo.node('Mul', [c.lo.node('Floor', [c.lo.node('Div', [a, b])]), b])]);
}

/** Division with rounding: floats divide then round (trunc: towards zero); integers divide in float64 (floor) or as ONNX does (trunc). */
function divMode(c: Call): void {
  const mode = c.has('rounding_mode') ? c.string('rounding_mode') : undefined;
  const dtype = c.outMeta().dtype;
  if (mode === undefined) return void nd(c, 'Div', [c.operand('self', dtype), c.operand('other', dtype)]);
  if (mode !== 'trunc' && mode !== 'floor') return c.fail(`rounding_mode trunc or floor, not ${mode}`);
  if (!isFloat(dtype)) {
    if (mode === 'trunc') return void nd(c, 'Div', [c.operand('self', dtype), c.operand('other', dtype)]);
    const q = c.lo.node('Floor', [c.lo.node('Div', [c.operand('self', 'float64'), c.operand('other', 'float64')])]);
    return void nd(c, 'Cast', [q], { to: attr.int(ONNX_TYPES[dtype] ?? c.fail(`a dtype ONNX casts to, not ${dtype}`)) });
  }
  const q = c.lo.node('Div', [c.operand('self', dtype), c.operand('other', dtype)]);
  if (mode === 'floor') return void nd(c, 'Floor', [q]);
  nd(c, 'Where', [c.lo.node('Less', [q, c.lo.constant(dtype, [], [0])]), c.lo.node('Ceil', [q]), c.lo.node('Floor', [q])]);
}

/** Nothing to compute: runtime checks of the program (shapes, dtypes), and layout-only copies. */
const noop: AtenLowering = () => undefined;
const identity: AtenLowering = (c) => void nd(c, 'Identity', [c.tensor('self')]);
const toCopy: AtenLowering = (c) => void nd(c, 'Identity', [c.lo.cast(c.tensor('self'), c.meta('self').dtype, c.outMeta().dtype)]);

/** The IR ops each ATen op is lowered to, for the docs and the coverage table (main op first). */
export const PT2_IMPORT_IR: Readonly<Record<string, readonly string[]>> = {};

const table: Record<string, [readonly string[], AtenLowering]> = {
  // linear algebra and convolution
  'aten.convolution.default': [['Conv', 'ConvTranspose'], convolution],
  'aten.addmm.default': [['Gemm'], (c) => gemm(c, c.tensor('mat1'), c.tensor('mat2'), c.tensor('self'), c.float('alpha', 1), c.float('beta', 1))],
  'aten.mm.default': [['MatMul'], (c) => void nd(c, 'MatMul', [c.tensor('self'), c.tensor('mat2')])],
  'aten.bmm.default': [['MatMul'], (c) => void nd(c, 'MatMul', [c.tensor('self'), c.tensor('mat2')])],
  'aten.matmul.default': [['MatMul'], (c) => void nd(c, 'MatMul', [c.tensor('self'), c.tensor('other')])],
  'aten.linear.default': [['Gemm', 'MatMul', 'Add'], (c) => {
    const bias = c.optionalTensor('bias');
    if (c.rank('input') === 2) return gemm(c, c.tensor('input'), transposeOf(c, c.tensor('weight')), bias, 1, 1);
    const y = c.lo.node('MatMul', [c.tensor('input'), c.lo.node('Transpose', [c.tensor('weight')], { perm: attr.ints([1, 0]) })]);
    nd(c, bias ? 'Add' : 'Identity', bias ? [y, bias] : [y]);
  }],
  'aten.scaled_dot_product_attention.default': [['MatMul', 'Softmax'], sdpa],
  'aten._scaled_dot_product_flash_attention_for_cpu.default': [['MatMul', 'Softmax'], (c) => {
    if (c.outputUsed(1)) c.fail('the logsumexp output unused');
    sdpa(c);
  }],
  // normalization
  'aten.native_layer_norm.default': [['LayerNormalization'], layerNorm],
  'aten._native_batch_norm_legit_no_training.default': [['BatchNormalization'], batchNorm],
  // activations
  'aten.relu.default': [['Relu'], unary('Relu')],
  'aten.sigmoid.default': [['Sigmoid'], unary('Sigmoid')],
  'aten.tanh.default': [['Tanh'], unary('Tanh')],
  'aten.gelu.default': [['Gelu'], (c) => unary('Gelu', { approximate: attr.string(c.string('approximate', 'none')) })(c)],
  'aten.hardswish.default': [['HardSwish'], unary('HardSwish')],
  'aten.hardsigmoid.default': [['HardSigmoid'], unary('HardSigmoid', { alpha: attr.float(1 / 6), beta: attr.float(0.5) })],
  'aten.silu.default': [['Mul', 'Sigmoid'], (c) => {
    const x = c.tensor('self');
    nd(c, 'Mul', [x, c.lo.node('Sigmoid', [x])]);
  }],
  'aten.elu.default': [['Elu'], (c) => {
    if (c.float('scale', 1) !== 1 || c.float('input_scale', 1) !== 1) c.fail('elu with scale and input_scale 1');
    unary('Elu', { alpha: attr.float(c.float('alpha', 1)) })(c);
  }],
  'aten.leaky_relu.default': [['LeakyRelu'], (c) => unary('LeakyRelu', { alpha: attr.float(c.float('negative_slope', 0.01)) })(c)],
  'aten.hardtanh.default': [['Clip'], (c) => {
    const dtype = c.outMeta().dtype;
    nd(c, 'Clip', [c.tensor('self'), c.lo.constant(dtype, [], [c.float('min_val', -1)]), c.lo.constant(dtype, [], [c.float('max_val', 1)])]);
  }],
  'aten._softmax.default': [['Softmax'], (c) => void nd(c, 'Softmax', [c.tensor('self')], { axis: attr.int(c.int('dim')) })],
  'aten._log_softmax.default': [['LogSoftmax'], (c) => void nd(c, 'LogSoftmax', [c.tensor('self')], { axis: attr.int(c.int('dim')) })],
  // elementwise math
  'aten.exp.default': [['Exp'], unary('Exp')],
  'aten.log.default': [['Log'], unary('Log')],
  'aten.sqrt.default': [['Sqrt'], unary('Sqrt')],
  'aten.rsqrt.default': [['Reciprocal', 'Sqrt'], (c) => void nd(c, 'Reciprocal', [c.lo.node('Sqrt', [c.lo.cast(c.tensor('self'), c.meta('self').dtype, c.outMeta().dtype)])])],
  'aten.reciprocal.default': [['Reciprocal'], unary('Reciprocal')],
  'aten.neg.default': [['Neg'], unary('Neg')],
  'aten.abs.default': [['Abs'], unary('Abs')],
  'aten.erf.default': [['Erf'], unary('Erf')],
  'aten.sin.default': [['Sin'], unary('Sin')],
  'aten.cos.default': [['Cos'], unary('Cos')],
  'aten.floor.default': [['Floor'], unary('Floor')],
  'aten.ceil.default': [['Ceil'], unary('Ceil')],
  'aten.tan.default': [['Tan'], unary('Tan')],
  'aten.sign.default': [['Sign'], unary('Sign')],
  'aten.round.default': [['Round'], unary('Round')],
  'aten.selu.default': [['Selu'], unary('Selu')],
  'aten.softplus.default': [['Softplus'], (c) => (c.float('beta', 1) === 1 ? unary('Softplus')(c) : c.fail('softplus with beta 1'))],
  'aten.isnan.default': [['IsNaN'], (c) => void nd(c, 'IsNaN', [c.tensor('self')])],
  'aten.isinf.default': [['IsInf'], (c) => void nd(c, 'IsInf', [c.tensor('self')])],
  'aten.isposinf.default': [['IsInf'], (c) => void nd(c, 'IsInf', [c.tensor('self')], { detect_negative: attr.int(0) })],
  'aten.isneginf.default': [['IsInf'], (c) => void nd(c, 'IsInf', [c.tensor('self')], { detect_positive: attr.int(0) })],
  'aten.fmod.Tensor': [['Mod'], (c) => void nd(c, 'Mod', [c.operand('self', c.outMeta().dtype), c.operand('other', c.outMeta().dtype)], { fmod: attr.int(1) })],
  'aten.fmod.Scalar': [['Mod'], (c) => void nd(c, 'Mod', [c.operand('self', c.outMeta().dtype), c.operand('other', c.outMeta().dtype)], { fmod: attr.int(1) })],
  'aten.remainder.Tensor': [['Mod', 'Sub'], remainder],
  'aten.remainder.Scalar': [['Mod', 'Sub'], remainder],
  'aten.div.Tensor_mode': [['Div', 'Floor'], divMode],
  'aten.div.Scalar_mode': [['Div', 'Floor'], divMode],
  'aten.cumsum.default': [['CumSum'], (c) => {
    const dtype = c.outMeta().dtype;
    nd(c, 'CumSum', [c.lo.cast(c.tensor('self'), c.meta('self').dtype, dtype), c.lo.constant('int64', [], [c.int('dim')])]);
  }],
  'aten.einsum.default': [['Einsum'], (c) => void nd(c, 'Einsum', c.tensors('tensors').map((t) => t ?? c.fail('no None among the tensors')), { equation: attr.string(c.string('equation')) })],
  'aten.repeat.default': [['Tile', 'Reshape'], (c) => {
    const repeats = c.ints('repeats');
    const shape = c.meta('self').shape;
    let x = c.tensor('self');
    // torch repeats with more entries than dims prepend dims of size 1; ONNX Tile wants equal ranks.
    if (repeats.length > shape.length) {
      const sizes = [...new Array<number>(repeats.length - shape.length).fill(1), ...shape.map((d) => (typeof d === 'number' ? d : 0))];
      x = c.lo.node('Reshape', [x, c.lo.ints(sizes)]);
    }
    nd(c, 'Tile', [x, c.lo.ints(repeats)]);
  }],
  'aten.add.Tensor': [['Add'], arithmetic('Add', { alpha: true })],
  'aten.add.Scalar': [['Add'], arithmetic('Add', { alpha: true })],
  'aten.sub.Tensor': [['Sub'], arithmetic('Sub', { alpha: true })],
  'aten.sub.Scalar': [['Sub'], arithmetic('Sub', { alpha: true })],
  'aten.rsub.Scalar': [['Sub'], arithmetic('Sub', { alpha: true, reverse: true })],
  'aten.rsub.Tensor': [['Sub'], arithmetic('Sub', { alpha: true, reverse: true })],
  'aten.mul.Tensor': [['Mul'], arithmetic('Mul')],
  'aten.mul.Scalar': [['Mul'], arithmetic('Mul')],
  'aten.div.Tensor': [['Div'], arithmetic('Div')],
  'aten.div.Scalar': [['Div'], arithmetic('Div')],
  'aten.pow.Tensor_Scalar': [['Pow'], (c) => void nd(c, 'Pow', [c.lo.cast(c.tensor('self'), c.meta('self').dtype, c.outMeta().dtype), c.operand('exponent', c.outMeta().dtype)])],
  'aten.pow.Tensor_Tensor': [['Pow'], (c) => void nd(c, 'Pow', [c.operand('self', c.outMeta().dtype), c.operand('exponent', c.outMeta().dtype)])],
  'aten.maximum.default': [['Max'], arithmetic('Max')],
  'aten.minimum.default': [['Min'], arithmetic('Min')],
  'aten.clamp.default': [['Clip'], clamp],
  'aten.clamp.Tensor': [['Clip'], clamp],
  'aten.clamp_min.default': [['Max'], (c) => void nd(c, 'Max', [c.operand('self', c.outMeta().dtype), c.operand('min', c.outMeta().dtype)])],
  'aten.clamp_max.default': [['Min'], (c) => void nd(c, 'Min', [c.operand('self', c.outMeta().dtype), c.operand('max', c.outMeta().dtype)])],
  // comparisons and logic
  'aten.eq.Tensor': [['Equal'], compare('Equal')],
  'aten.eq.Scalar': [['Equal'], compare('Equal')],
  'aten.ne.Tensor': [['Equal', 'Not'], compare('Equal', true)],
  'aten.ne.Scalar': [['Equal', 'Not'], compare('Equal', true)],
  'aten.lt.Tensor': [['Less'], compare('Less')],
  'aten.lt.Scalar': [['Less'], compare('Less')],
  'aten.le.Tensor': [['LessOrEqual'], compare('LessOrEqual')],
  'aten.le.Scalar': [['LessOrEqual'], compare('LessOrEqual')],
  'aten.gt.Tensor': [['Greater'], compare('Greater')],
  'aten.gt.Scalar': [['Greater'], compare('Greater')],
  'aten.ge.Tensor': [['GreaterOrEqual'], compare('GreaterOrEqual')],
  'aten.ge.Scalar': [['GreaterOrEqual'], compare('GreaterOrEqual')],
  'aten.logical_not.default': [['Not'], (c) => void nd(c, 'Not', [c.lo.cast(c.tensor('self'), c.meta('self').dtype, 'bool')])],
  'aten.logical_and.default': [['And'], logical('And')],
  'aten.logical_or.default': [['Or'], logical('Or')],
  'aten.logical_xor.default': [['Xor'], logical('Xor')],
  'aten.bitwise_and.Tensor': [['And'], logical('And')],
  'aten.bitwise_or.Tensor': [['Or'], logical('Or')],
  'aten.bitwise_not.default': [['Not'], (c) => (c.meta('self').dtype === 'bool' ? void nd(c, 'Not', [c.tensor('self')]) : c.fail('a bool operand (bitwise_not on integers is not mapped)'))],
  'aten.where.self': [['Where'], (c) => {
    const dtype = c.outMeta().dtype;
    nd(c, 'Where', [c.lo.cast(c.tensor('condition'), c.meta('condition').dtype, 'bool'), c.operand('self', dtype), c.operand('other', dtype)]);
  }],
  // reductions
  'aten.mean.dim': [['ReduceMean'], reduce('ReduceMean')],
  'aten.mean.default': [['ReduceMean'], reduce('ReduceMean')],
  'aten.sum.dim_IntList': [['ReduceSum'], reduce('ReduceSum')],
  'aten.sum.default': [['ReduceSum'], reduce('ReduceSum')],
  'aten.amax.default': [['ReduceMax'], reduce('ReduceMax')],
  'aten.amin.default': [['ReduceMin'], reduce('ReduceMin')],
  'aten.any.dim': [['ReduceMax'], reduce('ReduceMax', { bool: true })],
  'aten.any.dims': [['ReduceMax'], reduce('ReduceMax', { bool: true })],
  'aten.any.default': [['ReduceMax'], reduce('ReduceMax', { bool: true })],
  'aten.all.dim': [['ReduceMin'], reduce('ReduceMin', { bool: true })],
  'aten.all.default': [['ReduceMin'], reduce('ReduceMin', { bool: true })],
  'aten.argmax.default': [['ArgMax'], (c) => void nd(c, 'ArgMax', [c.tensor('self')], { axis: attr.int(c.int('dim')), keepdims: attr.int(c.bool('keepdim', false) ? 1 : 0) })],
  'aten.argmin.default': [['ArgMin'], (c) => void nd(c, 'ArgMin', [c.tensor('self')], { axis: attr.int(c.int('dim')), keepdims: attr.int(c.bool('keepdim', false) ? 1 : 0) })],
  // pooling
  'aten.max_pool2d_with_indices.default': [['MaxPool'], (c) => pool(c, 'MaxPool')],
  'aten.max_pool2d.default': [['MaxPool'], (c) => pool(c, 'MaxPool')],
  'aten.avg_pool2d.default': [['AveragePool'], (c) => pool(c, 'AveragePool')],
  'aten.adaptive_avg_pool2d.default': [['GlobalAveragePool', 'AveragePool'], adaptiveAvgPool],
  'aten._adaptive_avg_pool2d.default': [['GlobalAveragePool', 'AveragePool'], adaptiveAvgPool],
  'aten.upsample_bilinear2d.vec': [['Resize', 'Shape', 'Concat'], (c) => upsampleBilinear(c, 'input')],
  'aten.upsample_bilinear2d.default': [['Resize', 'Shape', 'Concat'], (c) => upsampleBilinear(c, 'self')],
  // shapes and layout
  'aten.view.default': [['Reshape'], (c) => reshape(c, 'size')],
  'aten.reshape.default': [['Reshape'], (c) => reshape(c, 'shape')],
  'aten._unsafe_view.default': [['Reshape'], (c) => reshape(c, 'size')],
  'aten.permute.default': [['Transpose'], (c) => permute(c, c.ints('dims').map((d) => normAxis(d, c.rank('self'))))],
  'aten.transpose.int': [['Transpose'], (c) => {
    const rank = c.rank('self');
    const perm = [...Array(rank).keys()];
    const a = normAxis(c.int('dim0'), rank);
    const b = normAxis(c.int('dim1'), rank);
    [perm[a], perm[b]] = [perm[b]!, perm[a]!];
    permute(c, perm);
  }],
  'aten.t.default': [['Transpose'], (c) => permute(c, c.rank('self') === 2 ? [1, 0] : [0])],
  'aten.expand.default': [['Expand'], (c) => {
    // -1 keeps a dimension: a 1 in ONNX's broadcasting Expand does the same.
    const size = c.sizes('size', 1);
    nd(c, 'Expand', [c.tensor('self'), size.static ? c.lo.ints(size.static.map((d) => (d === -1 ? 1 : d))) : size.value]);
  }],
  'aten.slice.Tensor': [['Slice'], slice],
  'aten.flip.default': [['Slice'], (c) => {
    // Reversed along each dim: ONNX Slice from the last element backwards past the first.
    const dims = c.ints('dims').map((d) => normAxis(d, c.rank('self')));
    if (dims.length === 0) return void nd(c, 'Identity', [c.tensor('self')]);
    const n = dims.length;
    const shape = c.meta('self').shape;
    // Past the first element: -(size + 1) when the size is static (small enough for any target).
    const ends = dims.map((d) => (typeof shape[d] === 'number' ? -(shape[d] as number) - 1 : -Number.MAX_SAFE_INTEGER));
    nd(c, 'Slice', [c.tensor('self'), c.lo.ints(new Array<number>(n).fill(-1)), c.lo.ints(ends), c.lo.ints(dims), c.lo.ints(new Array<number>(n).fill(-1))]);
  }],
  'aten.select.int': [['Gather'], (c) => void nd(c, 'Gather', [c.tensor('self'), c.lo.constant('int64', [], [c.int('index')])], { axis: attr.int(c.int('dim')) })],
  'aten.cat.default': [['Concat'], (c) => {
    const parts = c.tensors('tensors').map((t) => t ?? c.fail('no None in the tensors'));
    nd(c, 'Concat', parts, { axis: attr.int(c.int('dim', 0)) });
  }],
  'aten.split.Tensor': [['Split'], (c) => split(c, undefined)],
  'aten.split_with_sizes.default': [['Split'], (c) => split(c, c.ints('split_sizes'))],
  'aten.unsqueeze.default': [['Unsqueeze'], (c) => void nd(c, 'Unsqueeze', [c.tensor('self'), c.lo.ints([c.int('dim')])])],
  'aten.squeeze.dims': [['Squeeze'], (c) => squeeze(c, c.ints('dim'))],
  'aten.squeeze.dim': [['Squeeze'], (c) => squeeze(c, [c.int('dim')])],
  'aten.squeeze.default': [['Squeeze'], (c) => squeeze(c, undefined)],
  'aten.flatten.using_ints': [['Reshape'], (c) => {
    const out = c.outMeta().shape;
    nd(c, 'Reshape', [c.tensor('self'), c.lo.ints(out.map((d) => (typeof d === 'number' ? d : -1)))]);
  }],
  'aten.constant_pad_nd.default': [['Pad'], (c) => {
    const rank = c.rank('self');
    const pad = c.ints('pad');
    const begins = new Array<number>(rank).fill(0);
    const ends = new Array<number>(rank).fill(0);
    // torch lists (begin, end) pairs from the last dimension backwards.
    for (let i = 0; i * 2 < pad.length; i++) {
      begins[rank - 1 - i] = pad[2 * i]!;
      ends[rank - 1 - i] = pad[2 * i + 1] ?? 0;
    }
    const dtype = c.outMeta().dtype;
    nd(c, 'Pad', [c.tensor('self'), c.lo.ints([...begins, ...ends]), c.lo.constant(dtype, [], [c.float('value', 0)])]);
  }],
  'aten.clone.default': [['Identity'], identity],
  'aten.alias.default': [['Identity'], identity],
  'aten.detach.default': [['Identity'], identity],
  'aten.contiguous.default': [['Identity'], identity],
  'aten.lift_fresh_copy.default': [['Identity'], identity],
  'aten.dropout.default': [['Identity'], (c) => (c.bool('train', false) ? c.fail('dropout in eval mode (train=False)') : identity(c))],
  'aten._to_copy.default': [['Cast'], toCopy],
  'aten.to.dtype': [['Cast'], toCopy],
  'aten.type_as.default': [['Cast'], toCopy],
  // gathers
  'aten.embedding.default': [['Gather'], (c) => void nd(c, 'Gather', [c.tensor('weight'), c.tensor('indices')], { axis: attr.int(0) })],
  'aten.index_select.default': [['Gather'], (c) => void nd(c, 'Gather', [c.tensor('self'), c.tensor('index')], { axis: attr.int(c.int('dim')) })],
  'aten.gather.default': [['GatherElements'], (c) => void nd(c, 'GatherElements', [c.tensor('self'), c.tensor('index')], { axis: attr.int(c.int('dim')) })],
  'aten.index.Tensor': [['Gather', 'GatherND'], index],
  // creation
  'aten.arange.start_step': [['Range'], arange],
  'aten.arange.start': [['Range'], arange],
  'aten.arange.default': [['Range'], arange],
  'aten.full.default': [['Expand'], (c) => fill(c, c.listLength('size') ? c.sizes('size').value : undefined, fillValue(c, 'fill_value'))],
  'aten.full_like.default': [['Expand', 'Shape'], (c) => fill(c, c.rank('self') ? c.lo.node('Shape', [c.tensor('self')]) : undefined, fillValue(c, 'fill_value'))],
  'aten.zeros_like.default': [['Expand', 'Shape'], (c) => fill(c, c.rank('self') ? c.lo.node('Shape', [c.tensor('self')]) : undefined, 0)],
  'aten.ones_like.default': [['Expand', 'Shape'], (c) => fill(c, c.rank('self') ? c.lo.node('Shape', [c.tensor('self')]) : undefined, 1)],
  'aten.zeros.default': [['Expand'], (c) => fill(c, c.listLength('size') ? c.sizes('size').value : undefined, 0)],
  'aten.ones.default': [['Expand'], (c) => fill(c, c.listLength('size') ? c.sizes('size').value : undefined, 1)],
  'aten.scalar_tensor.default': [['Identity'], (c) => fill(c, undefined, c.float('s'))],
  // symbolic sizes: int64 tensors of shape [1]
  'aten.sym_size.int': [['Shape'], (c) => {
    const d = normAxis(c.int('dim'), c.rank('self'));
    nd(c, 'Shape', [c.tensor('self')], { start: attr.int(d), end: attr.int(d + 1) });
  }],
  // checks the program makes at run time; the inputs modelbridge feeds have been checked already
  'aten._assert_tensor_metadata.default': [[], noop],
  'aten._assert_scalar.default': [[], noop],
  'aten.sym_constrain_range_for_size.default': [[], noop],
  'aten.sym_constrain_range.default': [[], noop],
};

/** The rename is what torch put before addmm for the weight of a Linear; linear itself takes the weight as is. */
function transposeOf(c: Call, w: string): string {
  const t = c.lo.node('Transpose', [w], { perm: attr.ints([1, 0]) });
  c.lo.transposes.set(t, { source: w, perm: [1, 0] });
  return t;
}

export const ATEN_OPS: Readonly<Record<string, AtenLowering>> = Object.fromEntries(Object.entries(table).map(([k, [, f]]) => [k, f]));
Object.assign(PT2_IMPORT_IR, Object.fromEntries(Object.entries(table).map(([k, [ops]]) => [k, ops])));

/** Symbolic-int arithmetic (torch's _operator functions on SymInts, carried as int64 [1] tensors). */
export const SYM_OPS: Readonly<Record<string, string>> = {
  '_operator.mul': 'Mul',
  '_operator.add': 'Add',
  '_operator.sub': 'Sub',
  '_operator.floordiv': 'Div',
};
