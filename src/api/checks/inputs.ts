import { readFileSync } from '../../core/vfs.js';
import { isDType, isFloat, type DType } from '../../core/dtypes.js';
import { FormatError, UsageError } from '../../core/errors.js';
import type { Dim } from '../../core/graph.js';
import type { Model, Signature } from '../../core/model.js';
import { Tensor } from '../../core/tensor.js';
import { readNpy } from '../../formats/npy/npy.js';
import { isComputable } from '../../runtime/value.js';
import { seededRandom } from '../../train/random.js';
import { readNpz } from '../npz.js';
import type { InputSet, InputValue } from './types.js';

/**
 * Named tensors from a file, for --inputs and --expect: an .npz (arrays by name), a single .npy
 * (one unnamed array), or JSON. JSON is an object of NAME: nested array (dtype taken from the
 * model) or NAME: {"dtype", "shape", "data"}; `run --json` output ({"outputs": {...}}) is accepted
 * as it is, and a bare nested array is one unnamed tensor.
 */
export function readTensorFile(path: string): InputSet {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new UsageError(`cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  if (bytes[0] === 0x50 && bytes[1] === 0x4b) return readNpz(bytes, path);
  if (bytes[0] === 0x93 && bytes[1] === 0x4e) return new Map([['', readNpy(bytes, path)]]);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new FormatError(path, 'file', `an .npz, an .npy or JSON (${(error as Error).message})`);
  }
  return parseTensorJson(value, path);
}

export function parseTensorJson(value: unknown, file: string): InputSet {
  if (Array.isArray(value) || typeof value === 'number') return new Map([['', { json: value }]]);
  if (typeof value !== 'object' || value === null) throw new FormatError(file, 'top level', 'an object of NAME: nested array');
  let object = value as Record<string, unknown>;
  const keys = Object.keys(object);
  if (keys.length === 1 && (keys[0] === 'inputs' || keys[0] === 'outputs') && isPlainObject(object[keys[0]])) object = object[keys[0]] as Record<string, unknown>;
  const out = new Map<string, InputValue>();
  for (const [name, v] of Object.entries(object)) {
    if (isPlainObject(v) && 'data' in v) out.set(name, explicitTensor(v, file, name));
    else out.set(name, { json: v });
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function explicitTensor(v: Record<string, unknown>, file: string, name: string): Tensor {
  const where = `tensor ${JSON.stringify(name)}`;
  const dtype = v['dtype'] ?? 'float32';
  if (typeof dtype !== 'string' || !isDType(dtype) || dtype === 'string') throw new FormatError(file, `${where} dtype`, 'a numeric dtype name such as "float32"');
  const { shape, values } = flattenNested(v['data'], file, where);
  const declared = v['shape'];
  const finalShape = Array.isArray(declared) ? declared : shape;
  if (!finalShape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) throw new FormatError(file, `${where} shape`, 'a list of sizes');
  try {
    return Tensor.from(dtype, finalShape as number[], values);
  } catch (error) {
    throw new FormatError(file, where, (error as Error).message);
  }
}

/** A nested JSON array's shape and values in row-major order ("NaN"/"Infinity" strings allowed). */
export function flattenNested(value: unknown, file: string, where: string): { shape: number[]; values: number[] } {
  const shape: number[] = [];
  for (let v = value; Array.isArray(v); v = v[0]) shape.push(v.length);
  const values: number[] = [];
  const visit = (v: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (typeof v === 'number') values.push(v);
      else if (typeof v === 'boolean') values.push(v ? 1 : 0);
      else if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') values.push(Number(v));
      else throw new FormatError(file, where, `a number at depth ${depth}, not ${JSON.stringify(v)}`);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) throw new FormatError(file, where, `a rectangular array (every row at depth ${depth} with ${shape[depth]} items)`);
    for (const item of v) visit(item, depth + 1);
  };
  visit(value, 0);
  return { shape, values };
}

/** The graph value info behind a signature's input or output key. */
export function signatureValue(model: Model, signature: Signature, key: string, side: 'inputs' | 'outputs'): { dtype: DType; shape: readonly Dim[] | null } | undefined {
  const graph = model.graph;
  const name = signature[side].get(key);
  if (!graph || name === undefined) return undefined;
  return (side === 'inputs' ? graph.inputs : graph.outputs).find((v) => v.name === name);
}

/**
 * Pairs a named set with a signature's keys: by name, or, when both sides have exactly one entry,
 * whatever their names. Returns the pairs and the names left over on either side.
 */
export function pairByName<T>(keys: readonly string[], set: ReadonlyMap<string, T>): { pairs: Array<[string, T]>; missing: string[]; unused: string[] } {
  if (keys.length === 1 && set.size === 1) return { pairs: [[keys[0]!, [...set.values()][0]!]], missing: [], unused: [] };
  const pairs: Array<[string, T]> = [];
  const missing: string[] = [];
  for (const key of keys) {
    const v = set.get(key);
    if (v === undefined) missing.push(key);
    else pairs.push([key, v]);
  }
  const unused = [...set.keys()].filter((k) => !keys.includes(k));
  return { pairs, missing, unused };
}

/** Tensors for a signature's inputs from an input set (JSON values take the input's dtype). */
export function bindInputs(model: Model, signature: Signature, set: InputSet): Record<string, Tensor> {
  const keys = [...signature.inputs.keys()];
  const { pairs, missing, unused } = pairByName(keys, set);
  if (missing.length) throw new UsageError(`the inputs give no ${missing.join(', ')} (have: ${[...set.keys()].map((k) => k || '(unnamed)').join(', ')})`);
  if (unused.length) throw new UsageError(`the inputs give ${unused.join(', ')}, which the model does not take (inputs: ${keys.join(', ')})`);
  const out: Record<string, Tensor> = {};
  for (const [key, value] of pairs) {
    const info = signatureValue(model, signature, key, 'inputs');
    out[key] = value instanceof Tensor ? value : jsonTensor(value.json, info?.dtype ?? 'float32', key);
  }
  return out;
}

export function jsonTensor(json: unknown, dtype: DType, name: string): Tensor {
  const { shape, values } = flattenNested(json, 'inputs', `input ${name}`);
  return Tensor.from(dtype, shape, values);
}

export interface GeneratedInput {
  readonly tensors: Record<string, Tensor>;
  /** e.g. "ones x [1, 2] float32" */
  readonly description: string;
  /** Some dims were unknown and set to 1. */
  readonly guessed: boolean;
}

/** What generateInputs fills a float input with: "uniform [0, 1)" in its description. */
const GENERATED_FLOATS = 'uniform [0, 1)';

/**
 * An input made from the signature: for float inputs a seeded uniform sample in [0, 1) (the same
 * on every run and machine), zeros for integer and bool inputs (a valid index for any
 * embedding), unknown dims set to 1. Undefined when a rank is unknown. Not ones: on a constant
 * image a convolution's inner outputs are the sums of its kernels, so a kernel stored flipped or
 * with its axes swapped gave the same outputs as the right one; and [0, 1), not [-1, 1), keeps
 * inputs inside the domain of a Log or Sqrt applied to them.
 */
export function generateInputs(model: Model, signature: Signature): GeneratedInput | { readonly error: string } {
  const tensors: Record<string, Tensor> = {};
  const parts: string[] = [];
  let guessed = false;
  for (const key of signature.inputs.keys()) {
    const info = signatureValue(model, signature, key, 'inputs');
    if (!info) return { error: `input ${key} is no graph input` };
    if (!info.shape) return { error: `input ${key} has an unknown rank` };
    if (info.dtype === 'string' || !isComputable(info.dtype)) return { error: `input ${key} is ${info.dtype}, which cannot be generated` };
    const shape = info.shape.map((d) => (typeof d === 'number' ? d : 1));
    guessed ||= info.shape.some((d) => typeof d !== 'number');
    const count = shape.reduce((p, d) => p * d, 1);
    const float = isFloat(info.dtype);
    // one stream per input, seeded by its position: two inputs of one shape get different values
    const next = seededRandom(parts.length + 1);
    tensors[key] = Tensor.from(info.dtype, shape, float ? Array.from({ length: count }, next) : new Array<number>(count).fill(0));
    parts.push(`${float ? GENERATED_FLOATS : 'zeros'} ${key} [${shape.join(', ')}] ${info.dtype}`);
  }
  return { tensors, description: parts.join(', ') || 'no inputs', guessed };
}
