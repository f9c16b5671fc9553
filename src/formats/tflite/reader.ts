import type { DType } from '../../core/dtypes.js';
import { byteLengthOf } from '../../core/dtypes.js';
import { formatErrors, type FormatErrors } from '../../core/errors.js';
import { attr, DEFAULT_OPSET, makeNode, type Attribute, type Graph, type Node, type ValueInfo } from '../../core/graph.js';
import type { Model, Signature } from '../../core/model.js';
import { elementCount } from '../../core/shape.js';
import { FileRangeSource, MemorySource, type ByteSource } from '../../core/source.js';
import { Tensor } from '../../core/tensor.js';
import { permuted } from '../../core/transpose.js';
import { dtypeToOnnxCode } from '../onnx/dtypes.js';
import { simplify } from '../tf/simplify.js';
import { readTfliteFile, optionsOf, type TflModel, type TflQuantization, type TflSubgraph, type TflTensor } from './file.js';
import { builtinName, dtypeOfTensor, TENSOR_TYPE_NAMES, TFLITE_OPS, type OpContext } from './ops.js';

/**
 * Reads a .tflite model into a runnable Model: one subgraph (the signature's, else the first) as
 * IR nodes through the op table (ops.ts), its constant tensors as weights.
 *
 * Quantization, as dequantized arithmetic: a quantized constant (int8/uint8/int16 weights,
 * int32 biases, per tensor or per channel) becomes its float32 values scale * (q - zero_point),
 * computed when first read; a quantized activation is carried as its float value, rounded to its
 * quantization grid (clamped to the type's range) wherever an operator produces it, as TFLite's
 * integer kernels do; quantized model inputs and outputs keep their integer type at the graph's
 * edge. Results then match LiteRT's within one quantization step.
 */
export interface TfliteReadOptions {
  /** The SignatureDef key to read (default: the first signature, else subgraph 0). */
  readonly signature?: string;
}

export function readTflite(path: string, options: TfliteReadOptions = {}): Model {
  return tfliteToModel(readTfliteFile(path), options);
}

export function tfliteToModel(file: TflModel, options: TfliteReadOptions = {}): Model {
  const e: FormatErrors = formatErrors(file.path);
  let sig = file.signatures[0];
  if (options.signature !== undefined) {
    sig = file.signatures.find((s) => s.key === options.signature);
    if (!sig) e.fail('signature_defs', `a signature ${JSON.stringify(options.signature)} (the file has ${file.signatures.map((s) => JSON.stringify(s.key)).join(', ') || 'none'})`);
  }
  const sub = file.subgraphs[sig?.subgraph ?? 0]!;
  const builder = new GraphBuilder(file, sub, e);
  const graph = builder.build();
  const { graph: simple, renamed } = simplify(graph.graph, graph.derived);
  const rename = (v: string) => renamed.get(v) ?? v;
  const signature: Signature = sig
    ? {
        name: sig.key || 'default',
        inputs: new Map(sig.inputs.map((i) => [i.name, builder.valueName(i.tensor)])),
        outputs: new Map(sig.outputs.map((o) => [o.name, rename(builder.valueName(o.tensor))])),
      }
    : {
        name: 'default',
        inputs: new Map(simple.inputs.map((i) => [i.name, i.name])),
        outputs: new Map(simple.outputs.map((o) => [o.name, o.name])),
      };
  const metadata: Record<string, string> = { 'tflite.version': String(file.version) };
  if (file.description) metadata['tflite.description'] = file.description;
  for (const m of file.metadata) {
    // Text entries (a converter's min_runtime_version, what modelbridge wrote) come back as
    // strings under their own names; binary ones (CONVERSION_METADATA) are only described.
    const b = file.buffers[m.buffer];
    const bytes = b?.kind === 'inline' ? b.data : undefined;
    const text = bytes && bytes.byteLength <= 1 << 20 ? utf8Text(bytes) : undefined;
    if (text !== undefined) metadata[m.name] = text;
    else metadata[`tflite.${m.name}`] = `${b?.kind === 'file' ? b.size : (bytes?.byteLength ?? 0)} bytes of binary metadata`;
  }
  return { format: 'tflite', graph: simple, weights: simple.initializers, signatures: [signature], metadata };
}

/** Printable UTF-8 text (trailing NULs dropped), or undefined for binary bytes. */
function utf8Text(bytes: Uint8Array): string | undefined {
  let end = bytes.byteLength;
  while (end > 0 && bytes[end - 1] === 0) end--;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, end));
    return /[\u0000-\u0008\u000e-\u001f]/.test(text) ? undefined : text;
  } catch {
    return undefined;
  }
}

/** A quantized type: its integer range. */
const RANGES: Readonly<Partial<Record<DType, readonly [number, number]>>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  int32: [-(2 ** 31), 2 ** 31 - 1],
};

class GraphBuilder {
  private readonly nodes: Node[] = [];
  private readonly initializers = new Map<string, Tensor>();
  /** Weights made from another (a transposed filter) -> the original's name, for simplify. */
  readonly derived = new Map<string, string>();
  private readonly values = new Map<number, string>();
  private readonly names: string[];
  private readonly used = new Set<string>();
  private readonly constants = new Map<number, Tensor | null>();
  /** Constants computed at read time (a DEQUANTIZE of a weight) keep the weight's name. */
  private readonly constantNames = new Map<number, string>();
  private counter = 0;

  constructor(
    private readonly file: TflModel,
    private readonly sub: TflSubgraph,
    private readonly e: FormatErrors,
  ) {
    // Unique value names from the tensor names (converters repeat them, or leave them empty).
    this.names = sub.tensors.map((t) => this.unique(t.name || `tensor_${t.index}`));
  }

  valueName(tensor: number): string {
    return this.names[tensor]!;
  }

  private unique(base: string): string {
    let name = base;
    for (let k = 1; this.used.has(name); k++) name = `${base}:${k}`;
    this.used.add(name);
    return name;
  }

  private fresh(base: string): string {
    return this.unique(`${base}/${this.counter++}`);
  }

  build(): { graph: Graph; derived: Map<string, string> } {
    const sub = this.sub;
    const inputs: ValueInfo[] = [];
    for (const i of sub.inputs) {
      const t = sub.tensors[i]!;
      const name = this.names[i]!;
      const dtype = this.dtype(t);
      inputs.push({ name, dtype, shape: shapeOf(t) });
      this.values.set(i, this.isQuantized(t, dtype) ? this.dequantizeValue(name, t.quantization!, dtype) : name);
    }
    for (const op of sub.operators) this.operator(op.index);
    const outputs: ValueInfo[] = [];
    for (const o of sub.outputs) {
      const t = sub.tensors[o]!;
      const name = this.names[o]!;
      const dtype = this.dtype(t);
      let v = this.value(o, `outputs`);
      if (this.isQuantized(t, dtype)) v = this.quantizeValue(v, t.quantization!, dtype);
      if (v !== name) this.nodes.push(makeNode('Identity', [v], [name]));
      outputs.push({ name, dtype, shape: shapeOf(t) });
    }
    return { graph: { inputs, outputs, initializers: this.initializers, nodes: this.nodes, opset: DEFAULT_OPSET }, derived: this.derived };
  }

  private dtype(t: TflTensor): DType {
    return dtypeOfTensor({ fail: (expected) => this.e.fail(`subgraphs[${this.sub.index}] tensors[${t.index}]`, expected) }, t);
  }

  private isQuantized(t: TflTensor, dtype: DType): boolean {
    return t.quantization !== null && RANGES[dtype] !== undefined && dtype !== 'int32';
  }

  /** The IR value of tensor i (its constant's initializer, or what computed it). */
  private value(i: number, where: string): string {
    const v = this.values.get(i);
    if (v !== undefined) return v;
    const c = this.constant(i);
    if (c) {
      const name = this.constantNames.get(i) ?? this.names[i]!;
      this.initializers.set(name, c);
      this.values.set(i, name);
      return name;
    }
    const t = this.sub.tensors[i]!;
    return this.e.fail(`subgraphs[${this.sub.index}] ${where}`, `tensor ${i} (${t.name}) to be a constant, a subgraph input or an earlier operator's output`);
  }

  /** Readers of other subgraphs' constants (a WHILE's body). */
  private readonly others = new Map<number, GraphBuilder>();

  constantOf(i: number): Tensor | undefined {
    return this.constant(i) ?? undefined;
  }

  /** Tensor i's constant value (dequantized when quantized), or null when it has no data. */
  private constant(i: number): Tensor | null {
    if (this.constants.has(i)) return this.constants.get(i)!;
    const t = this.sub.tensors[i]!;
    const where = `subgraphs[${this.sub.index}] tensors[${i}] (${t.name})`;
    if (t.buffer >= this.file.buffers.length) this.e.fail(where, `a buffer index below the ${this.file.buffers.length} buffers, not ${t.buffer}`);
    const b = this.file.buffers[t.buffer]!;
    let result: Tensor | null = null;
    if (b.kind !== 'empty') {
      if (t.sparse) this.e.fail(where, 'a dense tensor (sparse TFLite tensors are not read)');
      const dtype = this.dtype(t);
      const count = elementCount(t.shape);
      if (count === undefined || t.shape.some((d) => d < 0)) this.e.fail(where, `a constant with a static shape, not [${t.shape}]`);
      const need = byteLengthOf(dtype, count) ?? this.e.fail(where, `a constant of at most 2^53 bytes`);
      const have = b.kind === 'inline' ? b.data.byteLength : b.size;
      if (have < need) this.e.fail(where, `a buffer of ${need} bytes for its ${TENSOR_TYPE_NAMES[t.type]} shape [${t.shape}], not ${have} (buffers[${t.buffer}] is shorter than its shape)`);
      const source: ByteSource = b.kind === 'inline' ? new MemorySource(b.data.subarray(0, need)) : new FileRangeSource(this.file.path, b.offset, need);
      const raw = new Tensor(dtype, t.shape, source);
      result = t.quantization && RANGES[dtype] ? dequantized(raw, t.quantization, where, this.e) : raw;
    }
    this.constants.set(i, result);
    return result;
  }

  private node(op: string, inputs: readonly string[], attributes: Record<string, Attribute>, base: string, outputs = 1): string[] {
    const outs = Array.from({ length: outputs }, () => this.fresh(base));
    this.nodes.push(makeNode(op, inputs, outs, attributes));
    return outs;
  }

  private scalar(value: number, dtype: DType, base: string): string {
    const name = this.fresh(`${base}/const`);
    this.initializers.set(name, Tensor.from(dtype, [], [value]));
    return name;
  }

  private ints(values: readonly number[], shape: readonly number[] | undefined, base: string): string {
    const name = this.fresh(`${base}/const`);
    this.initializers.set(name, Tensor.from('int64', shape ?? [values.length], values.map((v) => BigInt(Math.trunc(v)))));
    return name;
  }

  /** Float value of a quantized integer value: (float(q) - zero_point) * scale (per tensor only). */
  private dequantizeValue(v: string, q: TflQuantization, dtype: DType): string {
    if (q.scale.length !== 1) this.e.fail(`value ${v}`, 'per-tensor quantization on a model input');
    const f = this.node('Cast', [v], { to: attr.int(dtypeToOnnxCode('float32')!) }, v)[0]!;
    const centred = this.node('Sub', [f, this.scalar(q.zeroPoint[0] ?? 0, 'float32', v)], {}, v)[0]!;
    return this.node('Mul', [centred, this.scalar(q.scale[0]!, 'float32', v)], {}, v)[0]!;
  }

  /** The integer value of a float one: round(x / scale) + zero_point, clamped to the type. */
  private quantizeValue(v: string, q: TflQuantization, dtype: DType): string {
    const grid = this.gridIndex(v, q, dtype);
    return this.node('Cast', [grid], { to: attr.int(dtypeToOnnxCode(dtype)!) }, v)[0]!;
  }

  /** round(x / scale) + zero_point clamped to the type's range, as float. */
  private gridIndex(v: string, q: TflQuantization, dtype: DType): string {
    if (q.scale.length !== 1) this.e.fail(`value ${v}`, 'per-tensor quantization on an activation');
    const [lo, hi] = RANGES[dtype]!;
    const scaled = this.node('Div', [v, this.scalar(q.scale[0]!, 'float32', v)], {}, v)[0]!;
    const shifted = this.node('Add', [this.node('Round', [scaled], {}, v)[0]!, this.scalar(q.zeroPoint[0] ?? 0, 'float32', v)], {}, v)[0]!;
    return this.node('Clip', [shifted, this.scalar(lo, 'float32', v), this.scalar(hi, 'float32', v)], {}, v)[0]!;
  }

  /** A float value rounded to a quantization grid: what the integer tensor holds, as float. */
  private fakeQuantize(v: string, q: TflQuantization, dtype: DType): string {
    const grid = this.gridIndex(v, q, dtype);
    const centred = this.node('Sub', [grid, this.scalar(q.zeroPoint[0] ?? 0, 'float32', v)], {}, v)[0]!;
    return this.node('Mul', [centred, this.scalar(q.scale[0]!, 'float32', v)], {}, v)[0]!;
  }

  private operator(index: number): void {
    const op = this.sub.operators[index]!;
    // DEQUANTIZE of a float16 weight (TFLiteConverter's float16 quantization): the widened weight
    // is a constant under the weight's name, so convolutions see their filter as a weight.
    if (op.code === 6 && op.inputs.length === 1 && op.outputs.length === 1 && op.inputs[0]! >= 0 && op.outputs[0]! >= 0) {
      const c = this.constant(op.inputs[0]!);
      if (c && (c.dtype === 'float16' || c.dtype === 'bfloat16' || c.dtype === 'float32')) {
        this.constants.set(op.outputs[0]!, c.dtype === 'float32' ? c : widened(c));
        this.constantNames.set(op.outputs[0]!, this.names[op.inputs[0]!]!);
        return;
      }
    }
    const name = builtinName(op.code) ?? `code ${op.code}`;
    const where = `subgraphs[${this.sub.index}] operators[${index}] (${op.code === 32 ? `CUSTOM ${op.custom}` : name})`;
    const builder = TFLITE_OPS.get(op.code);
    if (!builder) {
      if (op.code === 32) this.e.fail(where, `a builtin operator (custom operator ${JSON.stringify(op.custom)} has no IR mapping)`);
      if (builtinName(op.code) === undefined) this.e.fail(where, `a known builtin operator code (0..161), not ${op.code}`);
      this.e.fail(where, `an operator modelbridge maps to the IR (${name} has no mapping yet)`);
    }
    const base = this.names[op.outputs[0] ?? -1] ?? `op${index}`;
    const fail = (expected: string): never => this.e.fail(where, expected);
    const inputTensor = (i: number): TflTensor => {
      const t = op.inputs[i];
      if (t === undefined || t < 0) return fail(`input ${i}`);
      return this.sub.tensors[t]!;
    };
    const ctx: OpContext = {
      op,
      arity: op.inputs.length,
      has: (i) => op.inputs[i] !== undefined && op.inputs[i]! >= 0,
      input: (i) => {
        const t = inputTensor(i);
        return this.value(t.index, `operators[${index}] inputs[${i}]`);
      },
      tensor: inputTensor,
      outTensor: (k) => {
        const t = op.outputs[k];
        if (t === undefined || t < 0) return fail(`output ${k}`);
        return this.sub.tensors[t]!;
      },
      dtype: (i) => {
        const t = inputTensor(i);
        const c = this.constant(t.index);
        return c ? c.dtype : this.isQuantized(t, this.dtype(t)) ? 'float32' : this.dtype(t);
      },
      constant: (i) => this.constant(inputTensor(i).index) ?? undefined,
      ints: (i, what) => {
        const c = this.constant(inputTensor(i).index);
        if (!c || !['int32', 'int64', 'int16', 'int8', 'uint8'].includes(c.dtype)) return fail(`${what} (input ${i}) as a constant integer tensor`);
        return c.toNumbers();
      },
      permutedInput: (i, perm) => {
        const t = inputTensor(i);
        const c = this.constant(t.index);
        if (!c) return this.node('Transpose', [ctx.input(i)], { perm: attr.ints(perm) }, base)[0]!;
        const original = this.constantNames.get(t.index) ?? this.names[t.index]!;
        const name = this.unique(`${original}#oihw`);
        this.initializers.set(name, permuted(c, perm));
        this.derived.set(name, original);
        return name;
      },
      node: (opName, inputs, attributes = {}, outputs = 1) => this.node(opName, inputs, attributes, base, outputs),
      constInts: (values, shape) => this.ints(values, shape, base),
      scalar: (value, dtype) => this.scalar(value, dtype, base),
      subgraph: (i) => {
        const s = this.file.subgraphs[i];
        return s ?? fail(`a subgraph index below ${this.file.subgraphs.length}, not ${i}`);
      },
      subgraphConstant: (i, t) => {
        const s = this.file.subgraphs[i];
        if (!s || t < 0 || t >= s.tensors.length) return fail(`tensor ${t} of subgraph ${i}`);
        if (s === this.sub) return this.constant(t) ?? undefined;
        let other = this.others.get(i);
        if (!other) this.others.set(i, (other = new GraphBuilder(this.file, s, this.e)));
        return other.constantOf(t);
      },
      weight: (name, value) => {
        const v = this.fresh(`${base}/${name}`);
        this.initializers.set(v, value);
        return v;
      },
      options: (member, Ctor) => optionsOf(op, member, Ctor),
      fail,
    };
    const results = builder(ctx);
    if (results.length !== op.outputs.length) fail(`${results.length} outputs, not ${op.outputs.length}`);
    op.outputs.forEach((t, k) => {
      if (t < 0) return;
      const tensor = this.sub.tensors[t]!;
      const dtype = this.dtype(tensor);
      let v = results[k]!;
      if (this.isQuantized(tensor, dtype)) v = this.fakeQuantize(v, tensor.quantization!, dtype);
      this.values.set(t, v);
    });
  }
}

function shapeOf(t: TflTensor): (number | null)[] {
  return t.shape.map((d, i) => (d < 0 || (t.signature && t.signature[i] === -1) ? null : d));
}

/** scale * (q - zero_point) as float32, per tensor or along the quantized dimension, computed when read. */
function dequantized(raw: Tensor, q: TflQuantization, where: string, e: FormatErrors): Tensor {
  const n = q.scale.length;
  const axis = q.axis;
  if (n > 1) {
    if (axis < 0 || axis >= raw.shape.length || raw.shape[axis] !== n) e.fail(`${where} quantization`, `${raw.shape[axis] ?? '?'} scales along quantized_dimension ${axis}, not ${n}`);
  }
  if (q.zeroPoint.length !== 0 && q.zeroPoint.length !== n) e.fail(`${where} quantization`, `as many zero points as scales (${n}), not ${q.zeroPoint.length}`);
  const count = raw.size;
  const inner = n > 1 ? raw.shape.slice(axis + 1).reduce((a, b) => a * b, 1) : count;
  const source: ByteSource = lazySource(count * 4, () => {
    const values = raw.storage();
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const c = n > 1 ? Math.floor(i / inner) % n : 0;
      out[i] = q.scale[c]! * (Number(values[i]!) - (q.zeroPoint[c] ?? 0));
    }
    return new Uint8Array(out.buffer);
  });
  return new Tensor('float32', raw.shape, source);
}

/** A 16-bit float weight as float32, computed when read. */
function widened(t: Tensor): Tensor {
  return new Tensor('float32', t.shape, lazySource(t.size * 4, () => new Uint8Array(t.toFloat32().slice().buffer)));
}

/** Bytes computed on first read and kept (the dequantized weights of one tensor). */
function lazySource(byteLength: number, compute: () => Uint8Array): ByteSource {
  let bytes: Uint8Array | undefined;
  const read = () => (bytes ??= compute());
  return {
    byteLength,
    read,
    *chunks(chunkSize: number) {
      const all = read();
      for (let at = 0; at < all.byteLength; at += chunkSize) yield all.subarray(at, Math.min(at + chunkSize, all.byteLength));
    },
  };
}
