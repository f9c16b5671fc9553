/**
 * TF Serving's JSON tensor mapping (tensorflow_serving/util/json_tensor.cc and g3doc/api_rest.md):
 * a predict body in row ("instances") or columnar ("inputs") form becomes named tensors of the
 * signature's dtypes, and the outputs become `{"predictions": ...}` or `{"outputs": ...}`. The
 * checks and their messages follow json_tensor.cc so clients see what TF Serving would say.
 */
import type { DType } from '../core/dtypes.js';
import type { Dim } from '../core/graph.js';
import { Tensor } from '../core/tensor.js';
import { debugString, jsonTypeString } from './json.js';
import { invalidArgument, ServeError } from './status.js';

/** A signature input as the request parser needs it. */
export interface InputSpec {
  readonly name: string;
  readonly dtype: DType;
}

export type RequestFormat = 'row' | 'columnar';

export interface PredictRequest {
  readonly signatureName?: string;
  readonly format: RequestFormat;
  readonly tensors: Map<string, Tensor>;
}

/** TensorFlow's DataTypeString names (the words in TF Serving's messages). */
const TF_NAME: Partial<Record<DType, string>> = { float32: 'float', float64: 'double', float16: 'half' };

export function tfTypeName(dtype: DType): string {
  return TF_NAME[dtype] ?? dtype;
}

/** The DataType enum name as TF Serving's metadata prints it (DT_FLOAT, DT_INT64, ...). */
export function tfEnumName(dtype: DType): string {
  return `DT_${tfTypeName(dtype).toUpperCase()}`;
}

const B64 = 'b64';

function isB64Object(v: unknown): v is { b64: string } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && keys[0] === B64 && typeof (v as Record<string, unknown>)[B64] === 'string';
}

function isElementObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !isB64Object(v);
}

type Leaf = number | bigint | Uint8Array;

const INT_RANGE: Partial<Record<DType, readonly [number, number]>> = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
};

function typeError(v: unknown, dtype: DType): ServeError {
  return invalidArgument(`JSON Value: ${debugString(v)} Type: ${jsonTypeString(v)} is not of expected type: ${tfTypeName(dtype)}`);
}

/** One leaf value for `dtype`, as AddValueToTensor checks it (integers must be integral and in range). */
function leafValue(v: unknown, dtype: DType): Leaf {
  switch (dtype) {
    case 'float32':
    case 'float64':
    case 'float16':
    case 'bfloat16':
      if (typeof v !== 'number') throw typeError(v, dtype);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw typeError(v, dtype);
      return v ? 1 : 0;
    case 'int64':
    case 'uint64':
      if (typeof v !== 'number' || !Number.isInteger(v) || (dtype === 'uint64' && v < 0)) throw typeError(v, dtype);
      return BigInt(v);
    case 'string':
      if (typeof v === 'string') return new TextEncoder().encode(v);
      if (isB64Object(v)) {
        const text = v[B64];
        // absl::Base64Unescape accepts the standard alphabet, padding optional.
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.replace(/=+$/, '').length % 4 === 1) throw invalidArgument('Unable to base64 decode');
        return new Uint8Array(Buffer.from(text, 'base64'));
      }
      throw typeError(v, dtype);
    default: {
      const range = INT_RANGE[dtype];
      if (!range) throw new ServeError('UNIMPLEMENTED', `Conversion of JSON Value: ${debugString(v)} to type: ${tfTypeName(dtype)}`);
      if (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1]) throw typeError(v, dtype);
      return v;
    }
  }
}

/** GetDenseTensorShape: the sizes of the first element at each level. */
function denseShape(v: unknown): number[] {
  const shape: number[] = [];
  let x = v;
  while (Array.isArray(x)) {
    shape.push(x.length);
    if (x.length === 0) break;
    x = x[0];
  }
  return shape;
}

/**
 * Where leaf values go. float32 and float64 (images, embeddings: the large requests) are written
 * straight into a typed array sized from the first element's shape; other dtypes are collected
 * and converted by Tensor.from. Writes past a typed array's end are dropped by the array and the
 * element counts, compared by the caller, catch them.
 */
class Leaves {
  count = 0;
  private readonly typed: Float32Array | Float64Array | undefined;
  private readonly list: Leaf[] = [];

  constructor(
    readonly dtype: DType,
    capacity: number,
  ) {
    this.typed = dtype === 'float32' ? new Float32Array(capacity) : dtype === 'float64' ? new Float64Array(capacity) : undefined;
  }

  push(v: Leaf): void {
    if (this.typed) this.typed[this.count] = v as number;
    else this.list.push(v);
    this.count++;
  }

  tensor(shape: readonly number[]): Tensor {
    if (this.typed) return Tensor.fromArray(this.dtype, shape, this.count === this.typed.length ? this.typed : this.typed.subarray(0, this.count));
    if (this.dtype === 'string') return Tensor.fromStrings(shape, this.list as Uint8Array[]);
    return Tensor.from(this.dtype, shape, this.list as number[] | bigint[]);
  }
}

const sizeOfShape = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** FillTensorProto: every list at its level has the level's size, every leaf sits at the last level. */
function fill(v: unknown, level: number, shape: readonly number[], dtype: DType, out: Leaves): void {
  const rank = shape.length;
  if (!Array.isArray(v)) {
    if (level !== rank) throw invalidArgument(`JSON Value: ${debugString(v)} found at incorrect level: ${level + 1} in the JSON DOM. Expected at level: ${rank}`);
    if (isElementObject(v) || (isB64Object(v) && dtype !== 'string')) throw typeError(v, dtype);
    out.push(leafValue(v, dtype));
    return;
  }
  if (level >= rank) throw invalidArgument(`Encountered list at unexpected level: ${level} expected < ${rank}`);
  if (v.length !== shape[level]) throw invalidArgument(`Encountered list at unexpected size: ${v.length} at level: ${level} expected size: ${shape[level]}`);
  for (const item of v) fill(item, level + 1, shape, dtype, out);
}

function parseSignatureName(doc: Record<string, unknown>): string | undefined {
  if (!('signature_name' in doc)) return undefined;
  const name = doc['signature_name'];
  if (typeof name !== 'string') throw invalidArgument(`JSON Value: ${debugString(doc)} not formatted correctly. 'signature_name' key must be a string value.`);
  return name;
}

/** The top level of a predict body must be an object (ParseJson); returns it with its signature_name. */
export function predictDocument(doc: unknown): { doc: Record<string, unknown>; signatureName?: string } {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalidArgument(`JSON Value: ${debugString(doc)} Is not object`);
  const record = doc as Record<string, unknown>;
  const signatureName = parseSignatureName(record);
  return { doc: record, ...(signatureName === undefined ? {} : { signatureName }) };
}

/**
 * FillPredictRequestFromJson after the signature is known: `inputs` are the signature's inputs
 * (TF Serving iterates its protobuf map; here in the signature's order). `maxBatch` bounds the
 * rows of a row-format request and the 0th dimension of columnar inputs.
 */
export function parsePredictTensors(doc: Record<string, unknown>, inputs: readonly InputSpec[], maxBatch: number): { format: RequestFormat; tensors: Map<string, Tensor> } {
  if (inputs.length === 0) throw invalidArgument('Failed to get input map for signature: DEFAULT');
  const hasInstances = 'instances' in doc;
  const hasInputs = 'inputs' in doc;
  if (hasInstances && hasInputs) throw invalidArgument(`JSON Value: ${debugString(doc)} Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist `);
  if (hasInstances) {
    const instances = doc['instances'];
    if (!Array.isArray(instances)) throw invalidArgument(`JSON Value: ${debugString(doc)} Expecting 'instances' to be an list/array`);
    if (instances.length === 0) throw invalidArgument(`JSON Value: ${debugString(doc)} No values in 'instances' array`);
    if (instances.length > maxBatch) throw invalidArgument(`Batch size ${instances.length} exceeds the server's limit of ${maxBatch} (--max-batch-size)`);
    return { format: 'row', tensors: fromInstances(instances, inputs) };
  }
  if (hasInputs) {
    const tensors = fromInputs(doc['inputs'], inputs);
    for (const t of tensors.values()) {
      if (t.shape.length > 0 && t.shape[0]! > maxBatch) throw invalidArgument(`Batch size ${t.shape[0]} exceeds the server's limit of ${maxBatch} (--max-batch-size)`);
    }
    return { format: 'columnar', tensors };
  }
  throw invalidArgument("Missing 'inputs' or 'instances' key");
}

function fromInstances(instances: readonly unknown[], inputs: readonly InputSpec[]): Map<string, Tensor> {
  if (!isElementObject(instances[0]) && inputs.length > 1) {
    throw invalidArgument('instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map');
  }
  const objects = isElementObject(instances[0]);
  const byName = new Map(inputs.map((i) => [i.name, i]));
  const names = [...byName.keys()].sort();
  const shapes = new Map<string, number[]>();
  const leaves = new Map<string, Leaves>();
  const add = (item: unknown, name: string) => {
    const spec = byName.get(name);
    if (!spec) throw invalidArgument(`JSON object: does not have named input: ${name}`);
    const shape = denseShape(item);
    let first = shapes.get(name);
    let out = leaves.get(name);
    if (!first || !out) {
      first = shape;
      out = new Leaves(spec.dtype, instances.length * sizeOfShape(shape));
      shapes.set(name, shape);
      leaves.set(name, out);
    }
    const start = out.count;
    fill(item, 0, shape, spec.dtype, out);
    const size = sizeOfShape(first);
    if (out.count - start !== size) throw invalidArgument(`Expecting tensor size: ${size} but got: ${out.count - start}`);
    if (first.length !== shape.length || first.some((d, i) => d !== shape[i])) throw invalidArgument(`Expecting shape [${first.join(',')}] but got: [${shape.join(',')}]`);
  };
  instances.forEach((elem, index) => {
    if (objects) {
      if (!isElementObject(elem)) throw invalidArgument(`Expecting object but got list at item ${index} of input list`);
      const keys = Object.keys(elem as object);
      for (const key of keys) {
        try {
          add((elem as Record<string, unknown>)[key], key);
        } catch (error) {
          if (error instanceof ServeError) throw new ServeError(error.code, `Failed to process element: ${index} key: ${key} of 'instances' list. Error: ${error.message}`);
          throw error;
        }
      }
      const sorted = [...keys].sort();
      if (sorted.length !== names.length || sorted.some((k, i) => k !== names[i])) {
        throw invalidArgument(`Failed to process element: ${index} of 'instances' list. JSON object: ${debugString(elem)} keys must be equal to: ${names.join(',')}`);
      }
    } else {
      if (isElementObject(elem)) throw invalidArgument(`Expecting value/list but got object at item ${index} of input list`);
      try {
        add(elem, inputs[0]!.name);
      } catch (error) {
        if (error instanceof ServeError) throw new ServeError(error.code, `Failed to process element: ${index} of 'instances' list. Error: ${error.message}`);
        throw error;
      }
    }
  });
  const tensors = new Map<string, Tensor>();
  for (const [name, shape] of shapes) tensors.set(name, leaves.get(name)!.tensor([instances.length, ...shape]));
  return tensors;
}

function fromInputs(value: unknown, inputs: readonly InputSpec[]): Map<string, Tensor> {
  const tensors = new Map<string, Tensor>();
  const one = (v: unknown, spec: InputSpec) => {
    const shape = denseShape(v);
    const out = new Leaves(spec.dtype, sizeOfShape(shape));
    fill(v, 0, shape, spec.dtype, out);
    tensors.set(spec.name, out.tensor(shape));
  };
  if (!isElementObject(value)) {
    if (inputs.length > 1) throw invalidArgument('inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map');
    one(value, inputs[0]!);
    return tensors;
  }
  const object = value as Record<string, unknown>;
  for (const spec of inputs) {
    if (!(spec.name in object)) throw invalidArgument(`Missing named input: ${spec.name} in 'inputs' object.`);
    one(object[spec.name], spec);
  }
  return tensors;
}

// ---------------------------------------------------------------------------------------------
// Responses

/** printf's %g with `precision` significant digits (what absl's StrCat and StrFormat write). */
function gFormat(v: number, precision: number): string {
  const exp = Number(v.toExponential(precision - 1).split('e')[1]);
  if (exp < -4 || exp >= precision) {
    const [mantissa, e] = v.toExponential(precision - 1).split('e') as [string, string];
    const m = mantissa.includes('.') ? mantissa.replace(/0+$/, '').replace(/\.$/, '') : mantissa;
    const sign = e.startsWith('-') ? '-' : '+';
    return `${m}e${sign}${e.replace(/^[+-]/, '').padStart(2, '0')}`;
  }
  const fixed = v.toFixed(Math.max(0, precision - 1 - exp));
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

/**
 * WriteDecimal: six significant digits when they read back as the same value, else max_digits10
 * (9 for float, 17 for double); ".0" on whole numbers; NaN and +-Infinity as bare tokens.
 */
export function formatDecimal(v: number, double: boolean): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v < 0 ? '-Infinity' : 'Infinity';
  const same = (s: string) => (double ? Number(s) === v : Math.fround(Number(s)) === v);
  let s = gFormat(v, 6);
  if (!same(s)) s = gFormat(v, double ? 17 : 9);
  if (!s.includes('.') && !s.includes('e')) s += '.0';
  return s;
}

/** One element of a tensor as JSON text. */
type Writer = (i: number) => string;

function elementWriter(name: string, t: Tensor): Writer {
  const dtype = t.dtype;
  if (dtype === 'string') {
    const strings = t.strings!;
    // Tensors named *_bytes hold binary data: written as {"b64": ...} (IsNamedTensorBytes).
    if (name.endsWith('_bytes')) return (i) => `{"b64":"${Buffer.from(strings[i]!).toString('base64')}"}`;
    const decoder = new TextDecoder();
    return (i) => JSON.stringify(decoder.decode(strings[i]!));
  }
  if (dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16') {
    const data = t.toFloat32();
    return (i) => formatDecimal(data[i]!, false);
  }
  if (dtype === 'float64') {
    const data = t.storage();
    return (i) => formatDecimal(data[i] as number, true);
  }
  if (dtype === 'bool') {
    const data = t.storage();
    return (i) => (data[i] ? 'true' : 'false');
  }
  if (dtype in INT_RANGE || dtype === 'int64' || dtype === 'uint64') {
    const data = t.storage();
    return (i) => String(data[i]);
  }
  throw invalidArgument(`Failed to write JSON value for tensor type: ${tfTypeName(dtype)}`);
}

/** AddTensorValues: the elements from `offset` nested as the dims from `dim` on. */
function nested(shape: readonly number[], dim: number, write: Writer, offset: { i: number }, parts: string[]): void {
  if (dim >= shape.length) {
    parts.push(write(offset.i++));
    return;
  }
  parts.push('[');
  for (let k = 0; k < shape[dim]!; k++) {
    if (k > 0) parts.push(',');
    nested(shape, dim + 1, write, offset, parts);
  }
  parts.push(']');
}

/** MakeJsonFromTensors: the response body for a request of the given format. */
export function predictResponse(outputs: ReadonlyArray<readonly [string, Tensor]>, format: RequestFormat): string {
  if (outputs.length === 0) throw invalidArgument('Cannot convert empty tensor map to JSON');
  const parts: string[] = [];
  const writers = outputs.map(([name, t]) => elementWriter(name, t));
  const many = outputs.length > 1;
  if (format === 'columnar') {
    parts.push('{"outputs":');
    if (many) parts.push('{');
    outputs.forEach(([name, t], k) => {
      if (k > 0) parts.push(',');
      if (many) parts.push(`${JSON.stringify(name)}:`);
      nested(t.shape, 0, writers[k]!, { i: 0 }, parts);
    });
    if (many) parts.push('}');
    parts.push('}');
    return parts.join('');
  }
  let batch = -1;
  for (const [name, t] of outputs) {
    if (t.shape.length === 0) throw invalidArgument(`Tensor name: ${name} has no shape information `);
    if (batch >= 0 && batch !== t.shape[0]) throw invalidArgument(`Tensor name: ${name} has inconsistent batch size: ${t.shape[0]} expecting: ${batch}`);
    batch = t.shape[0]!;
  }
  const offsets = outputs.map(() => ({ i: 0 }));
  parts.push('{"predictions":[');
  for (let item = 0; item < batch; item++) {
    if (item > 0) parts.push(',');
    if (many) parts.push('{');
    outputs.forEach(([name, t], k) => {
      if (k > 0) parts.push(',');
      if (many) parts.push(`${JSON.stringify(name)}:`);
      nested(t.shape, 1, writers[k]!, offsets[k]!, parts);
    });
    if (many) parts.push('}');
  }
  parts.push(']}');
  return parts.join('');
}

/** A signature tensor's shape as TF Serving's metadata prints a TensorShapeProto. */
export function shapeProto(shape: readonly Dim[] | null): { dim: { size: string; name: string }[]; unknown_rank: boolean } {
  if (shape === null) return { dim: [], unknown_rank: true };
  return { dim: shape.map((d) => ({ size: typeof d === 'number' ? String(d) : '-1', name: '' })), unknown_rank: false };
}
