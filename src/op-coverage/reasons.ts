/**
 * Why an IR op has no mapping in a column of the coverage table: the only hand-kept facts of it
 * (everything else is read from the tables that do the work). `impossible` means the target has
 * no equivalent and no decomposition into what it runs exists; `not yet` means the mapping could
 * exist and is not written. test/coverage.test.ts fails when an op has neither a mapping nor a
 * reason, and when a reason stays behind after its op gained the mapping.
 */
export type ReasonColumn = 'tfImport' | 'tfExport';

export interface Reason {
  readonly kind: 'impossible' | 'not yet';
  readonly why: string;
}

const impossible = (why: string): Reason => ({ kind: 'impossible', why });
const notYet = (why: string): Reason => ({ kind: 'not yet', why });

/** The TFLite column of an op the TFLite writer has no entry for (src/formats/tflite/export-ops.ts). */
export const TFLITE = 'no TFLite export mapping yet';

const NO_TF_OP = impossible('TensorFlow has no op of its own; its graphs compute it from other ops, which import one by one');
const CONTROL_FLOW = notYet('TF While/If loops (or TF1 loop frames, as TF.js graph models hold them) other than Keras LSTM/GRU (and the TensorList ops they use) are not imported');
const RNN_EXPORT = notYet('general ONNX control flow is not written to TF (the writers emit While loops with a function library only for LSTM, GRU and RNN over an open length, and lift tf2onnx\'s Loop of a Keras GRU/LSTM cell to that node)');

function each(ops: string, reason: Reason): [string, Reason][] {
  return ops.split(/\s+/).filter(Boolean).map((op) => [op, reason]);
}

const IMPORT: Record<string, Reason> = Object.fromEntries([
  ...each(
    `Celu Constant Dropout Flatten Gelu GlobalLpPool HardSigmoid HardSwish Hardmax Identity LayerNormalization LpNormalization LpPool
     MeanVarianceNormalization Mish RMSNormalization ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceSumSquare Shrink Swish
     ThresholdedRelu GroupNormalization InstanceNormalization Trilu EyeLike GatherElements Compress CastLike Gemm Upsample
     GlobalAveragePool GlobalMaxPool Mean PRelu`,
    NO_TF_OP,
  ),
  // LSTM is imported from Keras's While loops (src/formats/tf/rnn.ts); GRU too, from the same TF op, whose row is LSTM's.
  ['GRU', notYet('imported from a Keras GRU\'s While loop (see LSTM: the table names one main IR op per TF op)')],
  ...each('RNN If Loop Scan', CONTROL_FLOW),
  ['Split', impossible('TF Split and SplitV import as one Slice per output (the IR here has single-output import nodes)')],
  ['TopK', notYet('TF TopKV2 has two outputs; the import builds single-output nodes only')],
  ...each(
    `Acos Acosh Asin Asinh Atan Atanh Cosh Sinh BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor Det
     CumProd DepthToSpace SpaceToDepth LRN NonZero OneHot ReverseSequence ScatterElements ScatterND Size Xor`,
    notYet('a direct TF op exists; its import mapping is not written'),
  ),
]);

const EXPORT: Record<string, Reason> = Object.fromEntries([
  ...each('If Loop Scan', RNN_EXPORT),
  ...each(
    `Acos Acosh Asin Asinh Atan Atanh Cosh Sinh BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor CumProd Det DepthToSpace SpaceToDepth
     LRN OneHot ReverseSequence Size`,
    notYet('a direct TF op exists; its export mapping is not written'),
  ),
  ...each(
    `Celu CastLike EyeLike GlobalLpPool GroupNormalization Hardmax InstanceNormalization LpNormalization LpPool MeanVarianceNormalization
     Mish RMSNormalization ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceSumSquare ScatterElements Shrink Swish ThresholdedRelu`,
    notYet('decomposes into TF ops (ONNX function body or a hand-written lowering); not written'),
  ),
  ...each('NonZero Compress', notYet("TF's Where computes it (its output size depends on the values, which TF.js runs only in executeAsync); not written")),
]);

export const REASONS: Readonly<Record<ReasonColumn, Readonly<Record<string, Reason>>>> = { tfImport: IMPORT, tfExport: EXPORT };
