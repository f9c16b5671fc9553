import { claimExpansion } from '../../core/budget.js';
import { dtypeSize, isFloat, type DType } from '../../core/dtypes.js';
import type { FormatErrors } from '../../core/errors.js';
import { attr, makeNode, type Attribute, type Dim, type Node } from '../../core/graph.js';
import { escapeControl } from '../../core/printable.js';
import { Tensor } from '../../core/tensor.js';
import { tensorMeta, type TensorMetaInfo } from './archive.js';
import { asArray, asBool, asFloat, asInt, asObject, asString, isObject, union, type Json, type JsonObject } from './json.js';

/**
 * The state of one ExportedProgram graph being lowered into the IR: the nodes emitted so far, the
 * constants the lowering adds, each torch value's IR name and metadata (dtype and sizes, which
 * torch records for every tensor value, so ranks and static sizes are always known), and the
 * symbolic ints (aten.sym_size results), carried as int64 tensors of shape [1].
 */
export class Lowering {
  readonly nodes: Node[] = [];
  readonly initializers = new Map<string, Tensor>();
  private readonly names = new Map<string, string>();
  private readonly taken = new Set<string>();
  private counter = 0;
  /** Transpose outputs and what they transpose, so Gemm can take a weight with transB instead. */
  readonly transposes = new Map<string, { readonly source: string; readonly perm: readonly number[] }>();

  constructor(
    readonly opset: number,
    readonly meta: ReadonlyMap<string, TensorMetaInfo>,
    /** Every torch value some node or the output reads: an output nothing reads needs no mapping. */
    readonly read: ReadonlySet<string>,
    readonly e: FormatErrors,
    readonly where: string,
  ) {}

  /** Reserves an IR name (graph inputs, weights' FQNs) for a torch value. */
  bind(torchName: string, irName: string): void {
    this.names.set(torchName, irName);
    this.taken.add(irName);
  }

  reserve(irName: string): void {
    this.taken.add(irName);
  }

  /** The IR name of a torch value already defined. */
  value(torchName: string, where: string): string {
    const name = this.names.get(torchName);
    this.e.check(name !== undefined, where, `a value defined before it is used, not ${JSON.stringify(escapeControl(torchName))}`);
    return name;
  }

  private readonly preferred = new Map<string, string>();

  /** The IR name a torch value is to get when defined (an output's name before modelbridge wrote it). */
  prefer(torchName: string, irName: string): void {
    this.preferred.set(torchName, irName);
  }

  /** Defines a torch value: its IR name is torch's, unless a weight or input already has it. */
  define(torchName: string): string {
    this.e.check(!this.names.has(torchName), `${this.where} value ${JSON.stringify(escapeControl(torchName))}`, 'each value defined once');
    const name = this.unique(this.preferred.get(torchName) ?? torchName);
    this.names.set(torchName, name);
    return name;
  }

  unique(base: string): string {
    let name = base;
    while (this.taken.has(name)) name = `${base}_${++this.counter}`;
    this.taken.add(name);
    return name;
  }

  fresh(base: string): string {
    return this.unique(`${base}__${++this.counter}`);
  }

  node(op: string, inputs: readonly string[], attributes: Record<string, Attribute> = {}, outputs?: readonly string[]): string {
    const outs = outputs ?? [this.fresh(op)];
    this.nodes.push(makeNode(op, inputs, outs, attributes, outs[0]));
    return outs[0]!;
  }

  /** Claims the bytes of a constant the program declares by its sizes (ones for a layer norm, an arange) before allocating it. */
  claim(what: string, dtype: DType, count: number): void {
    claimExpansion((w, x) => this.e.fail(w, x), this.where, what, count * Math.max(1, dtypeSize(dtype)));
  }

  constant(dtype: DType, shape: readonly number[], values: readonly number[]): string {
    const name = this.fresh('const');
    // Integer constants from float arguments truncate as torch's casts do; infinities saturate.
    const typed = isFloat(dtype) ? values : values.map((v) => (Number.isFinite(v) ? Math.trunc(v) : Math.sign(v) * Number.MAX_SAFE_INTEGER));
    this.initializers.set(name, Tensor.from(dtype, shape, typed));
    return name;
  }

  ints(values: readonly number[]): string {
    return this.constant('int64', [values.length], values);
  }

  /** A reduction over `axes`: axes as an input from opset 18 (ReduceSum: 13), an attribute before. */
  reduce(op: string, x: string, axes: readonly number[] | undefined, keepdims: boolean, output?: string): string {
    const asInput = op === 'ReduceSum' ? this.opset >= 13 : this.opset >= 18;
    const keep = { keepdims: attr.int(keepdims ? 1 : 0) };
    const outputs = output ? [output] : undefined;
    if (axes === undefined) return this.node(op, [x], keep, outputs);
    return asInput ? this.node(op, [x, this.ints(axes)], keep, outputs) : this.node(op, [x], { ...keep, axes: attr.ints(axes) }, outputs);
  }

  cast(x: string, from: DType, to: DType): string {
    return from === to ? x : this.node('Cast', [x], { to: attr.int(ONNX_TYPES[to] ?? this.e.fail(this.where, `a dtype ONNX can cast to, not ${to}`)) });
  }
}

/** onnx.TensorProto.DataType codes for Cast. */
export const ONNX_TYPES: Readonly<Partial<Record<DType, number>>> = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11, uint32: 12, uint64: 13, bfloat16: 16,
};

/** A scalar argument: a number, or a tensor value (by IR name) with its metadata. */
export type ScalarArg = { readonly kind: 'number'; readonly value: number; readonly float: boolean } | { readonly kind: 'tensor'; readonly name: string; readonly meta: TensorMetaInfo };

/**
 * One ATen call: its named arguments (schema names: self, other, dim...) and outputs. Accessors
 * take the schema default when torch left the argument out, and fail with one line naming the
 * node and the argument when it holds something else.
 */
export class Call {
  private readonly args = new Map<string, Json>();
  readonly outputs: readonly string[];
  private readonly outputMeta: readonly (TensorMetaInfo | undefined)[];
  private readonly torchOutputs: readonly string[];

  constructor(
    readonly lo: Lowering,
    readonly target: string,
    readonly name: string,
    node: JsonObject,
    readonly where: string,
  ) {
    const e = lo.e;
    for (const [i, a] of asArray(node['inputs'], `${where} inputs`, e).entries()) {
      const o = asObject(a, `${where} inputs[${i}]`, e);
      this.args.set(asString(o['name'], `${where} inputs[${i}].name`, e), o['arg'] ?? null);
    }
    // Outputs flatten (a list result, as split's, is its elements); '' marks an omitted one.
    const torchOutputs: string[] = [];
    for (const [i, o] of asArray(node['outputs'], `${where} outputs`, e).entries()) {
      const [tag, v] = union(o, `${where} outputs[${i}]`, e);
      if (tag === 'as_tensor') torchOutputs.push(asString(asObject(v, `${where} outputs[${i}]`, e)['name'], `${where} outputs[${i}].name`, e));
      else if (tag === 'as_tensors') for (const [j, t] of asArray(v, `${where} outputs[${i}]`, e).entries()) torchOutputs.push(asString(asObject(t, `${where} outputs[${i}][${j}]`, e)['name'], `${where} outputs[${i}][${j}]`, e));
      else if (tag === 'as_sym_int') torchOutputs.push(asString(asObject(v, `${where} outputs[${i}]`, e)['as_name'], `${where} outputs[${i}].as_name`, e));
      else if (tag === 'as_none') torchOutputs.push('');
      else e.fail(`${where} outputs[${i}]`, `a tensor or SymInt output, not ${tag}`);
    }
    this.torchOutputs = torchOutputs;
    this.outputMeta = torchOutputs.map((t) => (t ? lo.meta.get(t) : undefined));
    this.outputs = torchOutputs.map((t) => (t ? lo.define(t) : ''));
  }

  fail(expected: string): never {
    return this.lo.e.fail(this.where, expected);
  }

  has(name: string): boolean {
    const a = this.args.get(name);
    return a !== undefined && !(typeof a === 'object' && a !== null && 'as_none' in a);
  }

  private tagged(name: string): [string, Json] | undefined {
    const a = this.args.get(name);
    if (a === undefined) return undefined;
    return union(a, `${this.where} argument ${name}`, this.lo.e);
  }

  private at(name: string): string {
    return `${this.where} argument ${name}`;
  }

  tensor(name: string): string {
    const t = this.tagged(name);
    if (!t || t[0] !== 'as_tensor') return this.fail(`argument ${name} to be a tensor`);
    return this.lo.value(asString(asObject(t[1], this.at(name), this.lo.e)['name'], this.at(name), this.lo.e), this.at(name));
  }

  optionalTensor(name: string): string | undefined {
    const t = this.tagged(name);
    if (!t || t[0] === 'as_none') return undefined;
    if (t[0] === 'as_optional_tensor') {
      const [tag, v] = union(t[1], this.at(name), this.lo.e);
      return tag === 'as_none' ? undefined : this.lo.value(asString(asObject(v, this.at(name), this.lo.e)['name'], this.at(name), this.lo.e), this.at(name));
    }
    return this.tensor(name);
  }

  /** A list of tensors; an optional-tensor list (index's) gives undefined for its Nones. */
  tensors(name: string): (string | undefined)[] {
    const t = this.tagged(name);
    if (!t) return this.fail(`argument ${name}`);
    const e = this.lo.e;
    if (t[0] === 'as_tensors') return asArray(t[1], this.at(name), e).map((x) => this.lo.value(asString(asObject(x, this.at(name), e)['name'], this.at(name), e), this.at(name)));
    if (t[0] === 'as_optional_tensors') {
      return asArray(t[1], this.at(name), e).map((x) => {
        const [tag, v] = union(x, this.at(name), e);
        return tag === 'as_none' ? undefined : this.lo.value(asString(asObject(v, this.at(name), e)['name'], this.at(name), e), this.at(name));
      });
    }
    return this.fail(`argument ${name} to be a list of tensors, not ${t[0]}`);
  }

  /** Metadata of each tensor of a list argument (undefined for its Nones). */
  listMeta(name: string): (TensorMetaInfo | undefined)[] {
    const t = this.tagged(name);
    if (!t || (t[0] !== 'as_tensors' && t[0] !== 'as_optional_tensors')) return this.fail(`argument ${name} to be a list of tensors`);
    const e = this.lo.e;
    return asArray(t[1], this.at(name), e).map((x) => {
      const o = asObject(x, this.at(name), e);
      const inner = t[0] === 'as_tensors' ? o : isObject(o['as_tensor']) ? o['as_tensor'] : undefined;
      return inner && typeof inner['name'] === 'string' ? this.lo.meta.get(inner['name']) : undefined;
    });
  }

  /** The positional arguments in order, for calls whose schema names are not fixed (_operator.*). */
  positional(): Json[] {
    return [...this.args.values()];
  }

  /** Metadata of a tensor argument. */
  meta(name: string): TensorMetaInfo {
    const t = this.tagged(name);
    if (!t || t[0] !== 'as_tensor') return this.fail(`argument ${name} to be a tensor`);
    const torchName = asString(asObject(t[1], this.at(name), this.lo.e)['name'], this.at(name), this.lo.e);
    const m = this.lo.meta.get(torchName);
    return m ?? this.fail(`metadata (tensor_values) for ${JSON.stringify(escapeControl(torchName))}`);
  }

  rank(name: string): number {
    return this.meta(name).shape.length;
  }

  out(i = 0): string {
    const o = this.outputs[i];
    return o ? o : this.fail(`an output ${i}`);
  }

  outMeta(i = 0): TensorMetaInfo {
    return this.outputMeta[i] ?? this.fail(`metadata (tensor_values) for output ${i}`);
  }

  /** True when output i exists and a node or the program's output reads it. */
  outputUsed(i: number): boolean {
    const o = this.torchOutputs[i];
    return o !== undefined && o !== '' && this.lo.read.has(o);
  }

  int(name: string, fallback?: number): number {
    const t = this.tagged(name);
    if (!t || t[0] === 'as_none') return fallback ?? this.fail(`argument ${name}`);
    if (t[0] === 'as_int') return asInt(t[1], this.at(name), this.lo.e);
    if (t[0] === 'as_bool') return asBool(t[1], this.at(name), this.lo.e) ? 1 : 0;
    return this.fail(`argument ${name} to be a static int, not ${t[0]}`);
  }

  optionalInt(name: string): number | undefined {
    return this.has(name) ? this.int(name) : undefined;
  }

  ints(name: string, fallback?: readonly number[]): number[] {
    const t = this.tagged(name);
    if (!t || t[0] === 'as_none') return fallback ? [...fallback] : this.fail(`argument ${name}`);
    if (t[0] === 'as_ints') return asArray(t[1], this.at(name), this.lo.e).map((v) => asInt(v, this.at(name), this.lo.e));
    if (t[0] === 'as_int') return [asInt(t[1], this.at(name), this.lo.e)];
    if (t[0] === 'as_sym_ints') {
      return asArray(t[1], this.at(name), this.lo.e).map((v) => {
        const [tag, x] = union(v, this.at(name), this.lo.e);
        return tag === 'as_int' ? asInt(x, this.at(name), this.lo.e) : this.fail(`argument ${name} to hold static sizes here, not the symbolic ${JSON.stringify(escapeControl(String(x)))}`);
      });
    }
    return this.fail(`argument ${name} to be a list of ints, not ${t[0]}`);
  }

  /** The number of items of a list argument (static or symbolic sizes). */
  listLength(name: string): number {
    const t = this.tagged(name);
    if (!t || t[0] === 'as_none') return this.fail(`argument ${name}`);
    if (t[0] === 'as_int') return 1;
    return asArray(t[1], this.at(name), this.lo.e).length;
  }

  /**
   * A size list as an int64 tensor of shape [n]: a constant when static, else the symbolic
   * sizes (aten.sym_size values, already int64 [1] tensors) concatenated with the static ones.
   */
  sizes(name: string, keep = -1): { readonly value: string; readonly static?: readonly number[] } {
    const t = this.tagged(name);
    if (t && t[0] === 'as_sym_ints') {
      const e = this.lo.e;
      const parts = asArray(t[1], this.at(name), e).map((v) => union(v, this.at(name), e));
      if (parts.some(([tag]) => tag === 'as_name')) {
        // torch's -1 ("this size as it is") is `keep` in the IR op (-1 for Reshape, 1 for Expand).
        const piece = (n: number) => this.lo.ints([n === -1 ? keep : n]);
        const pieces = parts.map(([tag, v]) => (tag === 'as_int' ? piece(asInt(v, this.at(name), e)) : this.lo.value(asString(v, this.at(name), e), this.at(name))));
        return { value: this.lo.node('Concat', pieces, { axis: attr.int(0) }) };
      }
    }
    const values = this.ints(name);
    return { value: this.lo.ints(values), static: values };
  }

  /** A list of numbers (float[] arguments: scale factors). */
  floats(name: string): number[] {
    const t = this.tagged(name);
    if (!t || t[0] === 'as_none') return this.fail(`argument ${name}`);
    if (t[0] === 'as_floats' || t[0] === 'as_ints') return asArray(t[1], this.at(name), this.lo.e).map((v) => asFloat(v, this.at(name), this.lo.e));
    return this.fail(`argument ${name} to be a list of numbers, not ${t[0]}`);
  }

  float(name: string, fallback?: number): number {
    const t = this.tagged(name);
    if (!t || t[0] === 'as_none') return fallback ?? this.fail(`argument ${name}`);
    if (t[0] === 'as_float' || t[0] === 'as_int') return asFloat(t[1], this.at(name), this.lo.e);
    return this.fail(`argument ${name} to be a static number, not ${t[0]}`);
  }

  bool(name: string, fallback?: boolean): boolean {
    const t = this.tagged(name);
    if (!t || t[0] === 'as_none') return fallback ?? this.fail(`argument ${name}`);
    if (t[0] === 'as_bool') return asBool(t[1], this.at(name), this.lo.e);
    return this.fail(`argument ${name} to be true or false, not ${t[0]}`);
  }

  string(name: string, fallback?: string): string {
    const t = this.tagged(name);
    if (!t || t[0] === 'as_none') return fallback ?? this.fail(`argument ${name}`);
    if (t[0] === 'as_string') return asString(t[1], this.at(name), this.lo.e);
    return this.fail(`argument ${name} to be a string, not ${t[0]}`);
  }

  /** A dtype argument (as_scalar_type), or undefined when absent. */
  dtype(name: string): DType | undefined {
    const t = this.tagged(name);
    if (!t || t[0] === 'as_none') return undefined;
    if (t[0] !== 'as_scalar_type') return this.fail(`argument ${name} to be a dtype, not ${t[0]}`);
    return tensorMeta({ dtype: t[1], sizes: [] }, this.at(name), this.lo.e).dtype;
  }

  /** A Scalar argument (a number or a tensor), or undefined when absent or None. */
  scalar(name: string): ScalarArg | undefined {
    const t = this.tagged(name);
    if (!t || t[0] === 'as_none') return undefined;
    if (t[0] === 'as_tensor') return { kind: 'tensor', name: this.tensor(name), meta: this.meta(name) };
    if (t[0] === 'as_int') return { kind: 'number', value: asInt(t[1], this.at(name), this.lo.e), float: false };
    if (t[0] === 'as_bool') return { kind: 'number', value: asBool(t[1], this.at(name), this.lo.e) ? 1 : 0, float: false };
    if (t[0] === 'as_float') return { kind: 'number', value: asFloat(t[1], this.at(name), this.lo.e), float: true };
    return this.fail(`argument ${name} to be a number or a tensor, not ${t[0]}`);
  }

  /** A tensor or number argument as an IR value of `dtype` (cast, or a constant). */
  operand(name: string, dtype: DType): string {
    const s = this.scalar(name) ?? this.fail(`argument ${name}`);
    if (s.kind === 'number') return this.lo.constant(dtype, [], [s.value]);
    return this.lo.cast(s.name, s.meta.dtype, dtype);
  }
}

/** Static sizes, or undefined when any is symbolic. */
export function staticShape(shape: readonly Dim[]): number[] | undefined {
  return shape.every((d): d is number => typeof d === 'number') ? [...shape] : undefined;
}

/** torch's type promotion for two operands, enough for the models' comparisons and mixed arithmetic. */
export function promote(a: DType, b: DType): DType {
  if (a === b) return a;
  if (isFloat(a) !== isFloat(b)) return isFloat(a) ? a : b;
  if (a === 'bool') return b;
  if (b === 'bool') return a;
  const size = (d: DType) => ['int8', 'uint8', 'int16', 'float16', 'bfloat16', 'int32', 'float32', 'int64', 'float64'].indexOf(d);
  return size(a) >= size(b) ? a : b;
}
