import { collectGarbage } from '../core/gc-node.js';
import { rmSync } from '../core/vfs.js';
import { removeWritten } from '../core/atomic.js';
import { UsageError } from '../core/errors.js';
import type { Graph } from '../core/graph.js';
import type { Model } from '../core/model.js';
import { progressPhase } from '../core/progress.js';
import { Tensor } from '../core/tensor.js';
import { permuted } from '../core/transpose.js';
import { quantizationBound, type QuantizationDType } from '../formats/tfjs/quantize.js';
import { alignedChunks, compareTensors, decode, formatNumber, unitBytes } from './checks/elements.js';
import { DEFAULT_TOLERANCE } from './checks/types.js';
import { compareOutputs, compareWeights, UNIFORM_NOTE, type OutputsDiff, type TensorDiff } from './diff.js';

/**
 * Outputs of a converted model may differ by float rounding when ops are re-expressed (Gemm vs
 * MatMul+Add, a fused GELU against its erf decomposition, NHWC convolutions): `diff`'s default,
 * 1e-5 absolute + 1e-5 relative. 1e-6 of each refused ViT-B/16 -> TFLite (12 layers, sums of 768
 * and 3072 terms) at 1.37e-6 on logits of about 0.5; a wrong conversion is off by orders more.
 */
const OUTPUT_TOLERANCE = DEFAULT_TOLERANCE;

/**
 * A constant this small that the written graph no longer names was folded into the graph by the
 * writer (ReduceMean's axes input becoming an attribute below opset 18, a Reshape's shape): it is
 * checked by what the written model computes, not by its name.
 */
const FOLDABLE_BYTES = 4096;

export interface VerifyOptions {
  /**
   * The writer quantized float32 weights on purpose (TF.js --quantize): those weights must be
   * within the quantization's error bound of the source, the rest bit-identical; outputs are
   * reported, not held to a tolerance.
   */
  readonly quantize?: QuantizationDType | 'dynamic-int8';
  /** The output path the files were written under: on a failure its emptied folders go too. */
  readonly output?: string;
}

/** What a conversion's verification compared, for the success line and `convert --json`. */
export interface VerifyReport {
  readonly weights: {
    /** Source tensors compared with the written ones. */
    readonly tensors: number;
    readonly bytes: number;
    /** Bit-identical (by name, or renamed / transposed / permuted where the target's layout differs). */
    readonly identical: number;
    /** Of the identical ones, matched across names or layouts. */
    readonly viaLayout: number;
    /** Stored in a wider dtype with every value equal (float16 as float32 in TF.js). */
    readonly widened: readonly string[];
    /** The --quantize dtype, or null. */
    readonly quantization: QuantizationDType | 'dynamic-int8' | null;
    /** Quantized weights within their bound (--quantize). */
    readonly quantized: number;
    /** The largest quantization error seen (0 without --quantize). */
    readonly quantizationMaxAbs: number;
    /** Constants the writer folded into the graph (no tensor of theirs in the written file). */
    readonly folded: readonly string[];
  };
  readonly outputs: {
    readonly compared: boolean;
    /** What the models ran on, when they ran. */
    readonly inputs: string | null;
    readonly count: number;
    readonly maxAbs: number | null;
    /** Why outputs were not compared, or a note on how they were paired. */
    readonly note: string | null;
  };
  readonly seconds: { readonly weights: number; readonly outputs: number };
  /** One line for people: "16 tensors bit-identical (1.07 GB), outputs on ones x [1, 2] float32: max abs error 0". */
  readonly summary: string;
}

/**
 * After a conversion, the written files are read back and compared with the model that was
 * written, as safetensors' own convert script does: every source tensor must reappear bit for bit
 * (under its name, or transposed/renamed where the target's layout differs), and the outputs on
 * a generated input must agree. Tensors stream through memcmp a chunk at a time, so nothing is
 * held twice; the output check runs one model after the other. On a mismatch the output files are
 * removed and the conversion fails, so a wrong file is never left behind looking like a success.
 */
export function verifyConversion(source: Model, written: Model, files: readonly string[], options: VerifyOptions = {}): VerifyReport {
  try {
    return verify(source, written, options);
  } catch (error) {
    if (error instanceof VerifyFailure) {
      if (options.output !== undefined) removeWritten(options.output, files);
      else for (const file of files) rmSync(file, { force: true, recursive: true });
      throw new UsageError(`verification failed, output removed: ${error.message}`);
    }
    throw error;
  }
}

class VerifyFailure extends Error {}

function verify(source: Model, written: Model, options: VerifyOptions): VerifyReport {
  const t0 = performance.now();
  let bytes = 0;
  for (const t of source.weights.values()) bytes += t.byteLength;
  // No model is held whole: the weights stream past each other a chunk at a time, and the output
  // check's sessions run once, reading each weight when a step needs it and dropping it after its
  // last reader (runtime/executor.ts), one model after the other. What the writer dropped (a
  // transposed tensor's copies) goes first.
  const runnable = source.graph !== undefined && written.graph !== undefined;
  if (runnable) collectGarbage();
  progressPhase('verify', bytes);
  const quantized = options.quantize ? quantizedNames(source, written) : new Set<string>();
  // Quantized weights are compared apart (within their bound); the rest must be bit-identical.
  // Constants the TF import made itself ("node#const"; '#' is no TF name character) are the graph's
  // structure, not the model's weights: a rewritten graph (an unrolled LSTM) reads them back under
  // other names, so they are vouched for by the outputs, as folded constants are.
  const synthetic = [...source.weights.keys()].filter((name) => name.includes('#const') && source.graph?.initializers.has(name));
  const exact = new Map([...source.weights].filter(([name]) => !quantized.has(name) && !synthetic.includes(name)));
  const weights = squareTransposed(compareWeights(exact, written.weights, { atol: 0, rtol: 0 }), exact, written.weights);
  let quantizationMaxAbs = 0;
  for (const name of quantized) quantizationMaxAbs = Math.max(quantizationMaxAbs, checkQuantized(name, source.weights.get(name)!, written.weights.get(name)!, options.quantize!));
  const missing = weights.tensors.filter((t) => t.status === 'missing');
  // A dtype the target cannot store, widened exactly (float16 as TF.js's float32): the values are equal.
  const widened = weights.tensors.filter((t) => t.status === 'retyped' && t.beyond === 0);
  const bad = weights.tensors.find((t) => t.status !== 'identical' && t.status !== 'extra' && t.status !== 'missing' && !widened.includes(t));
  if (bad) throw new VerifyFailure(`tensor ${bad.name} is ${bad.status} after writing${bad.maxAbs !== null ? ` (max abs diff ${bad.maxAbs})` : ''}`);
  if (source.graph && !written.graph) throw new VerifyFailure('the architecture was lost: the written model is a bare state dict');
  // A missing tensor may be a constant the writer folded into the graph; only a graph can say.
  const folded = [
    ...missing.filter((t) => written.graph !== undefined && isFoldable(t, source.weights.get(t.name)!, written.graph)),
    ...synthetic.map((name) => ({ name })),
  ];
  const lost = missing.find((t) => !folded.includes(t));
  if (lost) throw new VerifyFailure(`tensor ${lost.name} is missing after writing`);
  const t1 = performance.now();
  progressPhase('outputs', source.graph ? bytes : 0);
  let outputs: OutputsDiff | undefined;
  if (source.graph && written.graph) {
    const tolerance = options.quantize ? { atol: Infinity, rtol: Infinity } : OUTPUT_TOLERANCE;
    // Given as a function, the source's run is collected before the written model's starts (see
    // compareOutputs): its sessions' spare weight buffers go first.
    outputs = compareOutputs(() => source, written, tolerance);
  }
  if (outputs?.status === 'different') {
    throw new VerifyFailure(options.quantize ? `the written model does not run as the source does: ${outputs.message}` : `outputs differ after writing: ${outputs.message}`);
  }
  // Folded constants are vouched for by the outputs alone: without a run, they are missing.
  if (folded.length && outputs?.status !== 'equal') throw new VerifyFailure(`tensor ${folded[0]!.name} is missing after writing (and outputs could not be compared: ${outputs?.message ?? 'no graph'})`);
  const t2 = performance.now();
  const identical = weights.tensors.filter((t) => t.status === 'identical');
  const report: Omit<VerifyReport, 'summary'> = {
    weights: {
      tensors: source.weights.size,
      // What was compared byte for byte: folded constants were checked through the outputs.
      bytes: bytes - folded.reduce((n, t) => n + source.weights.get(t.name)!.byteLength, 0),
      identical: identical.length,
      viaLayout: identical.filter((t) => t.via !== 'name').length,
      widened: widened.map((t) => `${t.name} (${t.dtype[0]} -> ${t.dtype[1]})`),
      quantization: options.quantize ?? null,
      quantized: quantized.size,
      quantizationMaxAbs,
      folded: folded.map((t) => t.name),
    },
    outputs: outputSummary(outputs),
    seconds: { weights: roundMs(t1 - t0), outputs: roundMs(t2 - t1) },
  };
  return { ...report, summary: summarize(report) };
}

function outputSummary(outputs: OutputsDiff | undefined): VerifyReport['outputs'] {
  if (!outputs) return { compared: false, inputs: null, count: 0, maxAbs: null, note: 'the model is a bare state dict with no architecture' };
  if (outputs.status === 'skip') return { compared: false, inputs: outputs.inputs, count: 0, maxAbs: null, note: outputs.message };
  const maxAbs = outputs.outputs.reduce((m, o) => Math.max(m, o.maxAbs ?? 0), 0);
  const positional = /\(\d+ paired by position[^)]*\)/.exec(outputs.message)?.[0];
  const uniform = outputs.message.endsWith(UNIFORM_NOTE) ? UNIFORM_NOTE : undefined;
  return { compared: true, inputs: outputs.inputs, count: outputs.outputs.length, maxAbs, note: [positional, uniform].filter((n) => n !== undefined).join(' ') || null };
}

function summarize(r: Omit<VerifyReport, 'summary'>): string {
  const w = r.weights;
  const parts: string[] = [];
  const gb = formatBytesSI(w.bytes);
  if (!w.quantized && !w.widened.length) parts.push(`${w.identical} tensor${w.identical === 1 ? '' : 's'} bit-identical (${gb})`);
  else {
    const kinds = [
      w.identical ? `${w.identical} bit-identical` : '',
      w.widened.length ? `${w.widened.length} stored in a wider dtype with equal values` : '',
      w.quantized ? `${w.quantized} quantized to ${w.quantization} within its bound (max abs error ${formatNumber(w.quantizationMaxAbs)})` : '',
    ].filter((k) => k !== '');
    parts.push(`${w.tensors - w.folded.length} tensor${w.tensors === 1 ? '' : 's'} (${gb}): ${kinds.join(', ')}`);
  }
  if (w.viaLayout) parts.push(`${w.viaLayout} matched across names or layouts`);
  if (w.folded.length) parts.push(`${w.folded.length} constant${w.folded.length === 1 ? '' : 's'} folded into the graph`);
  const o = r.outputs;
  if (o.compared) parts.push(`outputs on ${o.inputs === null ? 'the input' : describeInputs(o.inputs)}: max abs error ${formatNumber(o.maxAbs)}${o.note ? ` ${o.note}` : ''}`);
  else parts.push(`outputs not compared: ${notCompared(o.note ?? '')}`);
  return parts.join(', ');
}

/** "uniform [0, 1) x [1, 2] float32" reads as "a generated input (uniform [0, 1) x [1, 2] float32)". */
function describeInputs(text: string): string {
  return text.startsWith('given inputs') ? text : `a generated input (${text})`;
}

/** The runtime's "unsupported op: LSTM (node ...)" as the reason outputs were not compared. */
function notCompared(message: string): string {
  const unsupported = /unsupported ops?: (.*)$/.exec(message);
  if (unsupported) return `the runtime has no kernel for ${unsupported[1]}`;
  return message.replace(/^neither model can run: /, 'the model cannot run: ');
}

/** Milliseconds as seconds, to the millisecond. */
export function roundMs(ms: number): number {
  return Math.round(ms) / 1000;
}

function formatBytesSI(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${bytes} bytes`;
}

/** Names the written graph reads: its initializers and every node input of its top level. */
function namesRead(graph: Graph): Set<string> {
  const names = new Set<string>(graph.initializers.keys());
  for (const node of graph.nodes) for (const input of node.inputs) names.add(input);
  return names;
}

function isFoldable(diff: TensorDiff, tensor: Tensor, graph: Graph): boolean {
  return tensor.byteLength <= FOLDABLE_BYTES && !namesRead(graph).has(diff.name);
}

const QUANTIZABLE: ReadonlySet<string> = new Set(['float32', 'float16', 'bfloat16', 'float64']);

/**
 * Float weights stored quantized: those the written model has as float32 (or float16) under the
 * same name, in the same shape or a permutation of it (a TFLite FULLY_CONNECTED keeps a MatMul's
 * [k, n] weight as [n, k], convolutions their filters as OHWI).
 */
function quantizedNames(source: Model, written: Model): Set<string> {
  const names = new Set<string>();
  for (const [name, t] of source.weights) {
    const w = written.weights.get(name);
    const relaid = w !== undefined && w.shape.length === t.shape.length && [...w.shape].sort().join() === [...t.shape].sort().join();
    // float16: TFLite keeps the halves as weights (its DEQUANTIZE widens them in the graph).
    if (QUANTIZABLE.has(t.dtype) && w && (w.dtype === 'float32' || w.dtype === 'float16') && relaid) names.add(name);
  }
  return names;
}

/**
 * A quantized weight against its source: every value within the bound TF.js's quantization
 * allows (scale / 2 for uint8/uint16 over the source's range, half a float16 ulp), streaming.
 */
function checkQuantized(name: string, source: Tensor, written: Tensor, dtype: QuantizationDType | 'dynamic-int8'): number {
  let lo = Infinity;
  let hi = -Infinity;
  let values = new Float64Array(0);
  for (const chunk of alignedChunks(source)) {
    const n = chunk.byteLength / unitBytes(source.dtype);
    if (values.length < n) values = new Float64Array(n);
    decode(source.dtype, chunk, values);
    for (let i = 0; i < n; i++) {
      const x = values[i]!;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
  }
  const maxAbs = Math.max(Math.abs(lo), Math.abs(hi), 0);
  const qmax = dtype === 'uint8' ? 255 : 65535;
  const scale = hi > lo ? (hi - lo) / qmax : 0;
  // dynamic-int8 (TFLite): symmetric, 127 steps each side of zero per channel, at most the tensor's range.
  const bound =
    dtype === 'dynamic-int8'
      ? (maxAbs / 127 / 2) * (1 + 1e-6) + maxAbs * 2 ** -23
      : dtype === 'float16'
        ? quantizationBound({ dtype }, maxAbs)
        : quantizationBound({ dtype, min: maxAbs, scale }, maxAbs);
  const stats = written.shape.join() === source.shape.join() ? compareTensors(written, source, { atol: bound, rtol: 0 }) : undefined;
  if (stats && stats.beyond === 0) return stats.maxAbs ?? 0;
  if (stats && written.shape.length === 2 && written.shape[0] === written.shape[1]) {
    // A square FULLY_CONNECTED weight is transposed with no change of shape to tell.
    const t = compareTensors(permuted(written, [1, 0]), source, { atol: bound, rtol: 0 });
    if (t.beyond === 0) return t.maxAbs ?? 0;
  }
  // Stored in another layout (TFLite's OHWI filters, FULLY_CONNECTED's [n, k] weights, even when
  // square): the layout matchers find the arrangement within the bound, as for exact weights.
  const relaid = compareWeights(new Map([[name, asFloat32(source)]]), new Map([[name, asFloat32(written)]]), { atol: bound, rtol: 0 }).tensors[0];
  if (relaid && (relaid.status === 'identical' || relaid.status === 'close')) return relaid.maxAbs ?? 0;
  const beyond = stats?.beyond ?? relaid?.beyond ?? written.size;
  throw new VerifyFailure(`tensor ${name} is different after writing: ${beyond} values beyond the ${dtype} quantization bound ${formatNumber(bound)} (max abs diff ${formatNumber(stats?.maxAbs ?? relaid?.maxAbs ?? NaN)})`);
}

/**
 * A square 2-D weight stored transposed under its own name (a MatMul's [k, k] weight as TFLite's
 * FULLY_CONNECTED [units, k]) has no change of shape for the layout matchers to see: compared
 * transposed when it differs as stored.
 */
function squareTransposed<T extends { readonly tensors: readonly TensorDiff[] }>(diff: T, source: ReadonlyMap<string, Tensor>, written: ReadonlyMap<string, Tensor>): T {
  const tensors = diff.tensors.map((d) => {
    const a = source.get(d.name);
    const b = d.other !== null ? written.get(d.other) : undefined;
    if (d.status === 'identical' || !a || !b || b.shape.length !== 2 || b.shape[0] !== b.shape[1] || a.shape.join() !== b.shape.join() || a.dtype !== b.dtype) return d;
    // The source transposed band by band (see permuted) while the written file streams past: one
    // side of the pair is read whole, not both.
    const stats = compareTensors(b, permuted(a, [1, 0]), { atol: 0, rtol: 0 });
    return stats.identical ? { ...d, status: 'identical' as const, via: 'transposed', perm: [1, 0], maxAbs: 0, maxRel: 0, beyond: 0 } : d;
  });
  return { ...diff, tensors };
}

function asFloat32(t: Tensor): Tensor {
  return t.dtype === 'float32' ? t : Tensor.fromArray('float32', t.shape, t.toFloat32());
}
