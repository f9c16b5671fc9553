import { attr } from '../../core/graph.js';
import type { KValue, LayerContext } from './context.js';

/**
 * Keras's built-in activations (keras/src/activations/activations.py, ALL_OBJECTS_DICT with the
 * swish and hard_swish aliases) as IR ops at opset 17. Ops ONNX added later (Gelu 20, Mish 18)
 * are written out as their formulas, so every target can take them.
 */
type Activation = (ctx: LayerContext, x: KValue) => KValue;

const unary =
  (op: string, attributes: Parameters<LayerContext['op']>[3] = {}): Activation =>
  (ctx, x) =>
    ctx.op(op, [x.name], x.shape, attributes);

const mulBy =
  (inner: Activation): Activation =>
  (ctx, x) =>
    ctx.op('Mul', [x.name, inner(ctx, x).name], x.shape);

const softplus: Activation = unary('Softplus');
const sigmoid: Activation = unary('Sigmoid');

export const ACTIVATIONS: Readonly<Record<string, Activation>> = {
  linear: (_ctx, x) => x,
  relu: unary('Relu'),
  relu6: (ctx, x) => ctx.op('Clip', [x.name, ctx.floats(0), ctx.floats(6)], x.shape),
  leaky_relu: unary('LeakyRelu', { alpha: attr.float(0.2) }),
  sigmoid,
  tanh: unary('Tanh'),
  softmax: unary('Softmax', { axis: attr.int(-1) }),
  log_softmax: unary('LogSoftmax', { axis: attr.int(-1) }),
  elu: unary('Elu', { alpha: attr.float(1) }),
  // Keras's constants (alpha 1.67326324, scale 1.05070098), not ONNX's defaults, which differ in the 8th digit.
  selu: unary('Selu', { alpha: attr.float(1.67326324), gamma: attr.float(1.05070098) }),
  // celu with Keras's alpha 1 is elu with alpha 1; Elu is the op every target has.
  celu: unary('Elu', { alpha: attr.float(1) }),
  softplus,
  softsign: unary('Softsign'),
  exponential: unary('Exp'),
  silu: mulBy(sigmoid),
  swish: mulBy(sigmoid),
  // relu6(x + 3) / 6, as Keras 3 defines it (tf.keras 2's was 0.2x + 0.5; files name the function only).
  hard_sigmoid: unary('HardSigmoid', { alpha: attr.float(1 / 6), beta: attr.float(0.5) }),
  hard_silu: unary('HardSwish'),
  hard_swish: unary('HardSwish'),
  hard_tanh: (ctx, x) => ctx.op('Clip', [x.name, ctx.floats(-1), ctx.floats(1)], x.shape),
  sparse_sigmoid: unary('HardSigmoid', { alpha: attr.float(0.5), beta: attr.float(0.5) }),
  // Shrink as Clip and Where, which TensorFlow and TF.js have: x - clip(x, -0.5, 0.5), and x where |x| > 0.5.
  soft_shrink: (ctx, x) => ctx.op('Sub', [x.name, ctx.op('Clip', [x.name, ctx.floats(-0.5), ctx.floats(0.5)], x.shape).name], x.shape),
  hard_shrink: (ctx, x) => {
    const outside = ctx.op('Greater', [ctx.op('Abs', [x.name], x.shape).name, ctx.floats(0.5)], x.shape, {}, 'bool');
    return ctx.op('Where', [outside.name, x.name, ctx.floats(0)], x.shape, {}, x.dtype);
  },
  tanh_shrink: (ctx, x) => ctx.op('Sub', [x.name, ctx.op('Tanh', [x.name], x.shape).name], x.shape),
  log_sigmoid: (ctx, x) => ctx.op('Neg', [softplus(ctx, ctx.op('Neg', [x.name], x.shape)).name], x.shape),
  mish: mulBy((ctx, x) => ctx.op('Tanh', [softplus(ctx, x).name], x.shape)),
  // 0.5 x (1 + erf(x / sqrt 2)): Keras's gelu(approximate=False), the default by name.
  gelu: (ctx, x) => {
    const e = ctx.op('Erf', [ctx.op('Mul', [x.name, ctx.floats(Math.SQRT1_2)], x.shape).name], x.shape);
    const half = ctx.op('Mul', [x.name, ctx.floats(0.5)], x.shape);
    return ctx.op('Mul', [half.name, ctx.op('Add', [e.name, ctx.floats(1)], x.shape).name], x.shape);
  },
  // (x + sqrt(x^2 + 4)) / 2
  squareplus: (ctx, x) => {
    const root = ctx.op('Sqrt', [ctx.op('Add', [ctx.op('Mul', [x.name, x.name], x.shape).name, ctx.floats(4)], x.shape).name], x.shape);
    return ctx.op('Mul', [ctx.op('Add', [x.name, root.name], x.shape).name, ctx.floats(0.5)], x.shape);
  },
  // x <= -1: 0; x >= 1: x; else (x + 1)^2 / 4
  sparse_plus: (ctx, x) => {
    const inside = ctx.op('Clip', [x.name, ctx.floats(-1), ctx.floats(1)], x.shape);
    const plus1 = ctx.op('Add', [inside.name, ctx.floats(1)], x.shape);
    const quad = ctx.op('Mul', [ctx.op('Mul', [plus1.name, plus1.name], x.shape).name, ctx.floats(0.25)], x.shape);
    // Above 1 the quadratic part is 1 and x - 1 is added.
    const above = ctx.op('Relu', [ctx.op('Sub', [x.name, ctx.floats(1)], x.shape).name], x.shape);
    return ctx.op('Add', [quad.name, above.name], x.shape);
  },
};

/** The activation a config names (a string; a dict for serialized functions, which must be built-ins). */
export function activationName(value: unknown): string {
  if (value === undefined || value === null) return 'linear';
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null) {
    const v = value as Record<string, unknown>;
    if (typeof v['config'] === 'string') return v['config'];
    if (typeof v['class_name'] === 'string' && v['class_name'] === 'function' && typeof v['config'] === 'string') return v['config'];
  }
  throw new RangeError(`a built-in activation name, not ${JSON.stringify(value).slice(0, 80)}`);
}

export function applyActivation(ctx: LayerContext, x: KValue, value: unknown): KValue {
  const name = activationName(value);
  const f = Object.prototype.hasOwnProperty.call(ACTIVATIONS, name) ? ACTIVATIONS[name]! : undefined;
  if (!f) ctx.fail(`a built-in activation, not ${JSON.stringify(name)} (supported: ${Object.keys(ACTIVATIONS).join(', ')})`);
  return f(ctx, x);
}
