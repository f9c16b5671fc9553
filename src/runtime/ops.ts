import { DEFAULT_OPSET } from '../core/graph.js';
import type { KernelFactory } from './kernel.js';
import { ACTIVATIONS } from './kernels/activations.js';
import { ARITHMETIC } from './kernels/arithmetic.js';
import { CAST_OPS } from './kernels/cast.js';
import { COMPARE } from './kernels/compare.js';
import { CONSTANT_OPS } from './kernels/constant.js';
import { CONTROL_FLOW_OPS } from './kernels/control-flow.js';
import { Conv } from './kernels/conv.js';
import { ConvTranspose } from './kernels/conv-transpose.js';
import { GATHER_OPS } from './kernels/gather.js';
import { LAYOUT_OPS } from './kernels/layout.js';
import { LINALG_OPS } from './kernels/linalg.js';
import { Gemm, MatMul } from './kernels/matmul.js';
import { NORM_OPS } from './kernels/norm.js';
import { POOL_OPS } from './kernels/pool.js';
import { REDUCE_OPS } from './kernels/reduce.js';
import { Resize, Upsample } from './kernels/resize.js';
import { RNN_OPS } from './kernels/rnn.js';
import { SELECTION_OPS } from './kernels/selection.js';
import { SHAPE_OPS } from './kernels/shape.js';
import { SOFTMAX } from './kernels/softmax.js';
import { UNARY } from './kernels/unary.js';
import { VARIADIC } from './kernels/variadic.js';

/**
 * The one table of ops the runtime executes (ONNX names, default domain): the single answer to
 * "is this op supported" for the executor, `inspect`, `validate` and the docs. Each entry names
 * the lowest opset whose semantics its kernel implements; kernels handle every later version
 * (they receive the graph's opset, e.g. Softmax's axis coercion before 13, Unsqueeze's axes
 * attribute before 13, Clip's bounds before 11). Earlier versions that differ (Add's explicit
 * `broadcast` attribute before 7, Reshape's shape attribute before 5, ...) are not supported.
 */
export interface OpEntry {
  readonly kernel: KernelFactory;
  readonly sinceOpset: number;
}

/** Lowest supported opset per op; ops not listed here are supported from opset 1. */
const SINCE: Readonly<Record<string, number>> = {
  // Multidirectional broadcasting replaced the `broadcast`/`axis` attributes in opset 7.
  Add: 7, Sub: 7, Mul: 7, Div: 7, Pow: 7, Equal: 7, Less: 7, Greater: 7, And: 7, Or: 7, Xor: 7, Gemm: 7, PRelu: 7,
  // Opset 6 dropped the legacy `consumed_inputs` attribute of the elementwise ops.
  Abs: 6, Neg: 6, Relu: 6, Sigmoid: 6, Tanh: 6, Exp: 6, Log: 6, Sqrt: 6, Reciprocal: 6, Floor: 6, Ceil: 6,
  LeakyRelu: 6, Elu: 6, Selu: 6, HardSigmoid: 6, Clip: 6, InstanceNormalization: 6, Cast: 6, Tile: 6,
  BatchNormalization: 7, AveragePool: 7,
  Concat: 4, Reshape: 5, Pad: 2, Split: 2,
  // Variadic ops broadcast from opset 8.
  Max: 8, Min: 8, Sum: 8, Mean: 8, Expand: 8,
  Erf: 9, Where: 9, Sign: 9, Shrink: 9, IsNaN: 9, NonZero: 9, ConstantOfShape: 9, EyeLike: 9, OneHot: 9, Sinh: 9, Cosh: 9, Asinh: 9, Acosh: 9, Atanh: 9,
  MeanVarianceNormalization: 9, Mod: 10, IsInf: 10, ThresholdedRelu: 10, Round: 11, Range: 11, CumSum: 11, BitShift: 11, GatherElements: 11,
  GatherND: 11, ScatterElements: 11, ScatterND: 11, Celu: 12, LessOrEqual: 12, GreaterOrEqual: 12, HardSwish: 14, Trilu: 14,
  CastLike: 15, LayerNormalization: 17, Mish: 18, BitwiseAnd: 18, BitwiseOr: 18, BitwiseXor: 18, BitwiseNot: 18, Gelu: 20,
  RMSNormalization: 23, Swish: 24,
  // Resize's roi/scales/sizes inputs and coordinate modes date from 11; Upsample's from 7 (removed in 10).
  Resize: 11, Upsample: 7, TopK: 10, Compress: 9, ReverseSequence: 10, Einsum: 12, Det: 11,
  GroupNormalization: 18, CumProd: 26,
  // Opset 7 dropped output_sequence and fixed the recurrent layers' attributes (GRU's linear_before_reset from 3).
  LSTM: 7, GRU: 7, RNN: 7,
  // Scan's opset-8 form (batch axis, sequence_lens) is run too; Loop and If from their first version.
  Scan: 8,
};

const FAMILIES: readonly Readonly<Record<string, KernelFactory>>[] = [
  ARITHMETIC, COMPARE, VARIADIC, UNARY, ACTIVATIONS, SOFTMAX, SHAPE_OPS, LAYOUT_OPS, GATHER_OPS, CAST_OPS, CONSTANT_OPS, REDUCE_OPS, POOL_OPS, NORM_OPS,
  SELECTION_OPS, LINALG_OPS, RNN_OPS, CONTROL_FLOW_OPS,
  { MatMul, Gemm, Conv, ConvTranspose, Resize, Upsample },
];

export const OPS: ReadonlyMap<string, OpEntry> = new Map(
  FAMILIES.flatMap((family) => Object.entries(family)).map(([op, kernel]) => [op, { kernel, sinceOpset: SINCE[op] ?? 1 }]),
);

function isDefaultDomain(domain: string): boolean {
  return domain === '' || domain === 'ai.onnx';
}

/** Every op name the runtime has a kernel for, sorted. */
export function supportedOps(): string[] {
  return [...OPS.keys()].sort();
}

/** The kernel for an op at an opset, or undefined when the runtime cannot run it. */
export function kernelFor(op: string, opset: number, domain = ''): KernelFactory | undefined {
  if (!isDefaultDomain(domain)) return undefined;
  const entry = OPS.get(op);
  return entry && opset >= entry.sinceOpset ? entry.kernel : undefined;
}

export function isSupported(op: string, opset: number = DEFAULT_OPSET, domain = ''): boolean {
  return kernelFor(op, opset, domain) !== undefined;
}
