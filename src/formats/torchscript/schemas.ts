/**
 * The ATen schemas of the `torch.<op>(...)` calls traced TorchScript code makes, by argument
 * name, and the core ATen overload (src/formats/pt2/ops.ts) each is lowered through. The code
 * passes arguments in schema order, so a call's positional arguments take these names; keyword
 * arguments keep theirs. Taken from torch 2.13's registered schemas
 * (torch._C._jit_get_schemas_for_operator("aten::<op>")).
 *
 * An entry lists overloads; `scalar` is the one taken when the argument named by `on` is a
 * number rather than a tensor (add.Tensor vs add.Scalar).
 */
export interface ScriptSchema {
  readonly target: string;
  readonly args: readonly string[];
  /** The overload for a number in argument `on`. */
  readonly scalar?: { readonly on: string; readonly target: string; readonly args?: readonly string[] };
  /** Arguments fixed by the mapping (floor_divide is div with rounding_mode "floor"). */
  readonly fixed?: Readonly<Record<string, string | number | boolean>>;
}

const s = (target: string, args: string, scalar?: ScriptSchema['scalar'], fixed?: ScriptSchema['fixed']): ScriptSchema => ({
  target,
  args: args.split(' ').filter(Boolean),
  ...(scalar ? { scalar } : {}),
  ...(fixed ? { fixed } : {}),
});
const unary = (op: string): ScriptSchema => s(`aten.${op}.default`, 'self');
const binary = (op: string, args = 'self other alpha'): ScriptSchema => s(`aten.${op}.Tensor`, args, { on: 'other', target: `aten.${op}.Scalar` });

export const SCRIPT_SCHEMAS: Readonly<Record<string, ScriptSchema>> = {
  // linear algebra and convolution
  _convolution: s('aten.convolution.default', 'input weight bias stride padding dilation transposed output_padding groups benchmark deterministic cudnn_enabled allow_tf32'),
  conv1d: s('aten.convolution.default', 'input weight bias stride padding dilation groups'),
  conv2d: s('aten.convolution.default', 'input weight bias stride padding dilation groups'),
  conv3d: s('aten.convolution.default', 'input weight bias stride padding dilation groups'),
  linear: s('aten.linear.default', 'input weight bias'),
  matmul: s('aten.matmul.default', 'self other'),
  mm: s('aten.mm.default', 'self mat2'),
  bmm: s('aten.bmm.default', 'self mat2'),
  addmm: s('aten.addmm.default', 'self mat1 mat2 beta alpha'),
  scaled_dot_product_attention: s('aten.scaled_dot_product_attention.default', 'query key value attn_mask dropout_p is_causal scale enable_gqa'),
  // normalization (batch_norm's `training` is checked by the lowering: eval mode only)
  batch_norm: s('aten._native_batch_norm_legit_no_training.default', 'input weight bias running_mean running_var training momentum eps cudnn_enabled'),
  layer_norm: s('aten.native_layer_norm.default', 'input normalized_shape weight bias eps cudnn_enable'),
  // activations
  relu: unary('relu'),
  sigmoid: unary('sigmoid'),
  tanh: unary('tanh'),
  hardswish: unary('hardswish'),
  hardsigmoid: unary('hardsigmoid'),
  silu: unary('silu'),
  gelu: s('aten.gelu.default', 'self approximate'),
  elu: s('aten.elu.default', 'self alpha scale input_scale'),
  leaky_relu: s('aten.leaky_relu.default', 'self negative_slope'),
  hardtanh: s('aten.hardtanh.default', 'self min_val max_val'),
  softplus: s('aten.softplus.default', 'self beta threshold'),
  // softmax(self, dim, dtype): the dtype (None in traced code) is checked by the lowering
  softmax: s('aten._softmax.default', 'self dim dtype'),
  log_softmax: s('aten._log_softmax.default', 'self dim dtype'),
  // elementwise math
  exp: unary('exp'),
  log: unary('log'),
  sqrt: unary('sqrt'),
  rsqrt: unary('rsqrt'),
  reciprocal: unary('reciprocal'),
  neg: unary('neg'),
  abs: unary('abs'),
  erf: unary('erf'),
  sin: unary('sin'),
  cos: unary('cos'),
  tan: unary('tan'),
  floor: unary('floor'),
  ceil: unary('ceil'),
  sign: unary('sign'),
  round: unary('round'),
  selu: unary('selu'),
  isnan: unary('isnan'),
  isinf: unary('isinf'),
  add: binary('add'),
  sub: binary('sub'),
  rsub: binary('rsub'),
  mul: binary('mul', 'self other'),
  div: s('aten.div.Tensor', 'self other', { on: 'other', target: 'aten.div.Scalar' }),
  floor_divide: s('aten.div.Tensor_mode', 'self other', { on: 'other', target: 'aten.div.Scalar_mode' }, { rounding_mode: 'floor' }),
  remainder: binary('remainder', 'self other'),
  fmod: binary('fmod', 'self other'),
  pow: s('aten.pow.Tensor_Tensor', 'self exponent', { on: 'exponent', target: 'aten.pow.Tensor_Scalar' }),
  maximum: s('aten.maximum.default', 'self other'),
  minimum: s('aten.minimum.default', 'self other'),
  clamp: s('aten.clamp.default', 'self min max'),
  clamp_min: s('aten.clamp_min.default', 'self min'),
  clamp_max: s('aten.clamp_max.default', 'self max'),
  cumsum: s('aten.cumsum.default', 'self dim dtype'),
  einsum: s('aten.einsum.default', 'equation tensors path'),
  // comparisons and logic
  eq: binary('eq', 'self other'),
  ne: binary('ne', 'self other'),
  lt: binary('lt', 'self other'),
  le: binary('le', 'self other'),
  gt: binary('gt', 'self other'),
  ge: binary('ge', 'self other'),
  logical_not: unary('logical_not'),
  logical_and: s('aten.logical_and.default', 'self other'),
  logical_or: s('aten.logical_or.default', 'self other'),
  logical_xor: s('aten.logical_xor.default', 'self other'),
  __and__: s('aten.bitwise_and.Tensor', 'self other'),
  __or__: s('aten.bitwise_or.Tensor', 'self other'),
  bitwise_not: unary('bitwise_not'),
  where: s('aten.where.self', 'condition self other'),
  // reductions
  mean: s('aten.mean.dim', 'self dim keepdim dtype'),
  sum: s('aten.sum.dim_IntList', 'self dim keepdim dtype'),
  amax: s('aten.amax.default', 'self dim keepdim'),
  amin: s('aten.amin.default', 'self dim keepdim'),
  argmax: s('aten.argmax.default', 'self dim keepdim'),
  argmin: s('aten.argmin.default', 'self dim keepdim'),
  // pooling
  max_pool2d: s('aten.max_pool2d.default', 'self kernel_size stride padding dilation ceil_mode'),
  avg_pool2d: s('aten.avg_pool2d.default', 'self kernel_size stride padding ceil_mode count_include_pad divisor_override'),
  adaptive_avg_pool2d: s('aten.adaptive_avg_pool2d.default', 'self output_size'),
  // F.interpolate(mode="bilinear") traces to the .vec overload (output_size or scale_factors)
  upsample_bilinear2d: s('aten.upsample_bilinear2d.vec', 'input output_size align_corners scale_factors'),
  // shapes and layout
  view: s('aten.view.default', 'self size'),
  reshape: s('aten.reshape.default', 'self shape'),
  permute: s('aten.permute.default', 'self dims'),
  transpose: s('aten.transpose.int', 'self dim0 dim1'),
  t: unary('t'),
  expand: s('aten.expand.default', 'self size implicit'),
  slice: s('aten.slice.Tensor', 'self dim start end step'),
  select: s('aten.select.int', 'self dim index'),
  cat: s('aten.cat.default', 'tensors dim'),
  unsqueeze: s('aten.unsqueeze.default', 'self dim'),
  flip: s('aten.flip.default', 'self dims'),
  repeat: s('aten.repeat.default', 'self repeats'),
  constant_pad_nd: s('aten.constant_pad_nd.default', 'self pad value'),
  contiguous: s('aten.contiguous.default', 'self memory_format'),
  clone: s('aten.clone.default', 'self memory_format'),
  detach: unary('detach'),
  // dropout(input, p, train): named `self` here, as pt2's lowering of aten.dropout reads it
  dropout: s('aten.dropout.default', 'self p train'),
  feature_dropout: s('aten.dropout.default', 'self p train'),
  // gathers
  embedding: s('aten.embedding.default', 'weight indices padding_idx scale_grad_by_freq sparse'),
  index_select: s('aten.index_select.default', 'self dim index'),
  gather: s('aten.gather.default', 'self dim index sparse_grad'),
  index: s('aten.index.Tensor', 'self indices'),
  // creation
  zeros: s('aten.zeros.default', 'size dtype layout device pin_memory'),
  ones: s('aten.ones.default', 'size dtype layout device pin_memory'),
  full: s('aten.full.default', 'size fill_value dtype layout device pin_memory'),
  zeros_like: s('aten.zeros_like.default', 'self dtype layout device pin_memory memory_format'),
  ones_like: s('aten.ones_like.default', 'self dtype layout device pin_memory memory_format'),
  new_ones: s('aten.ones.default', 'self size dtype layout device pin_memory'),
  new_zeros: s('aten.zeros.default', 'self size dtype layout device pin_memory'),
};
