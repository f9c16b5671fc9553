import type { FormatErrors } from '../../core/errors.js';
import { attrFloat, attrInt, attrString, attrType } from '../tf/attrs.js';
import type { AttrValue, NodeDef } from '../tf/messages.js';
import { emptyAttr } from './attrs.js';

/**
 * The ops only TF.js graph models have. Everything else a graph model holds is a plain TensorFlow
 * op, mapped to and from the IR by src/formats/tf (TF_OPS for reading, IR_TO_TF for writing), so
 * this ONE table only says how each TF.js-only op expands into those plain ops:
 *  - Grappler's fused ops, which the converter keeps: a MatMul or convolution followed by its
 *    `fused_ops`, BiasAdd first (taking the next extra input), then at most one activation;
 *  - TF.js's own Prelu (the converter fuses Keras PReLU into it): relu(x) - alpha * relu(-x).
 * The writer emits plain ops only, so nothing maps the other way.
 */

interface Emitter {
  /** Data input i of the TF.js node. */
  input(i: number): string;
  /** The next extra input of a fused op (bias, then PReLU's alpha). */
  arg(): string;
  /** Emits a plain node; the last one emitted takes the TF.js node's name. */
  node(op: string, inputs: readonly string[], attr?: Record<string, AttrValue>): string;
  fail(expected: string): never;
}

type Expander = (n: NodeDef, emit: Emitter) => void;

const av = {
  type: (type: number): AttrValue => ({ ...emptyAttr(), value: 'type', type }),
  float: (f: number): AttrValue => ({ ...emptyAttr(), value: 'f', f }),
  string: (s: string): AttrValue => ({ ...emptyAttr(), value: 's', s: new TextEncoder().encode(s) }),
};

const typed = (n: NodeDef, extra: Record<string, AttrValue> = {}): Record<string, AttrValue> => {
  const t = attrType(n.attr, 'T');
  return t === undefined ? extra : { T: av.type(t), ...extra };
};

function prelu(n: NodeDef, emit: Emitter, x: string, alpha: string): void {
  const negative = emit.node('Relu', [emit.node('Neg', [x], typed(n))], typed(n));
  const scaled = emit.node('Mul', [alpha, negative], typed(n));
  emit.node('Sub', [emit.node('Relu', [x], typed(n)), scaled], typed(n));
}

/** Fused activations by TF.js's lower-cased name (prelu is handled apart: it takes an input). */
const ACTIVATIONS: Readonly<Record<string, (n: NodeDef) => [string, Record<string, AttrValue>]>> = {
  relu: () => ['Relu', {}],
  relu6: () => ['Relu6', {}],
  elu: () => ['Elu', {}],
  sigmoid: () => ['Sigmoid', {}],
  tanh: () => ['Tanh', {}],
  // TF.js's (and TF's) default alpha of a fused LeakyRelu is 0.2.
  leakyrelu: (n) => ['LeakyRelu', { alpha: av.float(attrFloat(n.attr, 'leakyrelu_alpha', 0.2)) }],
};

function fused(base: string, keep: readonly string[]): Expander {
  return (n, emit) => {
    const ops = (n.attr['fused_ops']?.list?.s ?? []).map((s) => new TextDecoder().decode(s));
    const kept = Object.fromEntries(keep.filter((k) => n.attr[k]).map((k) => [k, n.attr[k]!]));
    let y = emit.node(base, [emit.input(0), emit.input(1)], kept);
    let at = 0;
    if (ops[0]?.toLowerCase() === 'biasadd') {
      y = emit.node('BiasAdd', [y, emit.arg()], typed(n, { data_format: av.string(attrString(n.attr, 'data_format', 'NHWC')) }));
      at = 1;
    }
    const rest = ops.slice(at);
    if (rest.length > 1) emit.fail(`BiasAdd and at most one activation in fused_ops, not [${ops.join(', ')}]`);
    const act = rest[0]?.toLowerCase();
    if (act === undefined) return;
    if (act === 'prelu') return prelu(n, emit, y, emit.arg());
    const make = Object.prototype.hasOwnProperty.call(ACTIVATIONS, act) ? ACTIVATIONS[act] : undefined;
    if (!make) return emit.fail(`fused_ops TF.js runs (BiasAdd then Relu, Relu6, Elu, LeakyRelu, Sigmoid, Tanh or Prelu), not ${rest[0]}`);
    const [op, attr] = make(n);
    emit.node(op, [y], typed(n, attr));
  };
}

const CONV_ATTRS = ['T', 'strides', 'padding', 'explicit_paddings', 'dilations', 'data_format'];

export const TFJS_OPS: Readonly<Record<string, Expander>> = {
  _FusedMatMul: fused('MatMul', ['T', 'transpose_a', 'transpose_b']),
  _FusedConv2D: fused('Conv2D', [...CONV_ATTRS, 'use_cudnn_on_gpu']),
  FusedDepthwiseConv2dNative: fused('DepthwiseConv2dNative', CONV_ATTRS),
  Prelu: (n, emit) => prelu(n, emit, emit.input(0), emit.input(1)),
};

/**
 * The TF ops TF.js runs: tfjs-converter 4.22's op_list (docs/supported_ops.md), less the
 * TensorArray/TensorList and decision-forest ops no exported graph holds (but the three TensorList
 * ops of the TF export's While loops for recurrent nodes, rnn-loop.ts). The writer checks
 * every op the TensorFlow exporter emits against it, so a graph TF.js cannot load is refused when
 * written, naming the op, rather than failing in the browser.
 */
export const TFJS_RUNS: ReadonlySet<string> = new Set(
  `Abs Acos Acosh Add AddN AddV2 All Any ArgMax ArgMin Asin Asinh Atan Atan2 Atanh AvgPool AvgPool3D BatchMatMul BatchMatMulV2
  BatchToSpaceND BiasAdd Bincount BitwiseAnd BroadcastArgs BroadcastTo Cast Ceil ClipByValue Complex ComplexAbs Concat ConcatV2 Const
  Conv1D Conv2D Conv2DBackpropInput Conv3D Cos Cosh CropAndResize Cumprod Cumsum DenseBincount DepthToSpace DepthwiseConv2d
  DepthwiseConv2dNative Dilation2D Div DivNoNan Einsum Elu EmptyTensorList EnsureShape Enter Equal Erf EuclideanNorm Exit Exp
  ExpandDims Expm1 FFT FakeQuantWithMinMaxVars Fill Floor FloorDiv FloorMod FusedBatchNorm FusedBatchNormV2 FusedBatchNormV3
  FusedDepthwiseConv2dNative Gather GatherNd GatherV2 Greater GreaterEqual HashTable HashTableV2 IFFT IRFFT Identity IdentityN If
  Imag ImageProjectiveTransformV3 InitializeTable InitializeTableV2 IsFinite IsInf IsNan LRN LeakyRelu Less LessEqual LinSpace
  ListDiff Log Log1p LogSoftmax LogicalAnd LogicalNot LogicalOr LookupTableFind LookupTableFindV2 LookupTableImport
  LookupTableImportV2 LookupTableSize LookupTableSizeV2 LoopCond LowerBound MatMul MatrixBandPart Max MaxPool MaxPool3D
  MaxPoolWithArgmax Maximum Mean Merge Min Minimum MirrorPad Mod Mul Multinomial Neg NextIteration NoOp NonMaxSuppressionV2
  NonMaxSuppressionV3 NonMaxSuppressionV4 NonMaxSuppressionV5 NotEqual OneHot Ones OnesLike Pack Pad PadV2 Placeholder
  PlaceholderWithDefault Pow Prelu Print Prod RFFT RaggedGather RaggedRange RaggedTensorToTensor RandomStandardNormal RandomUniform
  RandomUniformInt Range Rank Real RealDiv Reciprocal Relu Relu6 Reshape ResizeBilinear ResizeNearestNeighbor Reverse ReverseV2
  Round Rsqrt ScatterNd Select SelectV2 Selu Shape ShapeN Sigmoid Sign Sin Sinh Size Slice Snapshot Softmax Softplus SpaceToBatchND
  SparseFillEmptyRows SparseReshape SparseSegmentMean SparseSegmentSum SparseToDense Split SplitV Sqrt Square SquaredDifference
  Squeeze StatelessIf StatelessWhile StaticRegexReplace StopGradient StridedSlice StringNGrams StringSplit StringToHashBucketFast
  Sub Sum Switch Tan Tanh TensorListReserve TensorListSetItem TensorListStack TensorScatterUpdate Tile TopKV2 Transpose TruncatedNormal Unique UniqueV2 Unpack UpperBound Where While
  Zeros ZerosLike _FusedConv2D _FusedMatMul`.split(/\s+/),
);

/** Replaces every TF.js-only node by the plain nodes it stands for, the last under its name. */
export function expandTfjsOps(nodes: readonly NodeDef[], e: FormatErrors): NodeDef[] {
  const taken = new Set(nodes.map((n) => n.name));
  const out: NodeDef[] = [];
  for (const n of nodes) {
    const expand = Object.prototype.hasOwnProperty.call(TFJS_OPS, n.op) ? TFJS_OPS[n.op]! : undefined;
    if (!expand) {
      out.push(n);
      continue;
    }
    const where = `node ${n.name} (${n.op})`;
    const data = n.input.filter((i) => !i.startsWith('^'));
    const emitted: NodeDef[] = [];
    let args = 2;
    const emit: Emitter = {
      input: (i) => data[i] ?? e.fail(where, `at least ${i + 1} inputs`),
      arg: () => data[args++] ?? e.fail(where, `an extra input for each of its fused_ops (num_args ${attrInt(n.attr, 'num_args', 0)})`),
      node(op, inputs, attr = {}) {
        let name = `${n.name}/${op}`;
        for (let i = 1; taken.has(name); i++) name = `${n.name}/${op}_${i}`;
        taken.add(name);
        emitted.push({ name, op, input: [...inputs], device: n.device, attr });
        return name;
      },
      fail: (expected) => e.fail(where, expected),
    };
    expand(n, emit);
    // The last node computes the TF.js node's output, so it takes its name: readers are unchanged.
    const last = emitted.pop()!;
    out.push(...emitted, { ...last, name: n.name });
  }
  return out;
}
