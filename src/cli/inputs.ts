import { zipSync } from 'fflate';
import type { DType } from '../core/dtypes.js';
import { resolve } from 'node:path';
import { assertWritable, outputTarget, writeBytesAtomic } from '../core/atomic.js';
import { UsageError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { writeNpy } from '../formats/npy/npy.js';
import { jsonTensor, readTensorFile } from '../api/checks/inputs.js';

/**
 * Parses `--input` arguments. Each is `NAME=VALUE` or a bare VALUE, where VALUE is a JSON nested
 * array (its nesting gives the shape; the dtype is the input's) or `@FILE`: an .npy (one array),
 * an .npz (arrays by name) or a JSON file, read as `validate --inputs` reads them. A bare VALUE
 * names nothing: it is the model's single input, or for a file, the inputs its names say. A name
 * the model does not have is refused, naming the ones it has.
 */
export function parseInputs(args: readonly string[], inputNames: readonly string[], dtypeOf: (name: string) => DType): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  const put = (name: string, tensor: () => Tensor, arg: string): void => {
    if (!inputNames.includes(name)) throw new UsageError(`--input ${arg}: the model has no input ${JSON.stringify(name)} (inputs: ${inputNames.join(', ')})`);
    if (out[name]) throw new UsageError(`input ${name} given twice`);
    out[name] = tensor();
  };
  const only = (arg: string): string => {
    if (inputNames.length === 1) return inputNames[0]!;
    throw new UsageError(`--input ${arg}: name the input (NAME=VALUE); the model has ${inputNames.join(', ')}`);
  };
  for (const arg of args) {
    const eq = arg.indexOf('=');
    const named = eq > 0 && /^[^[\]{}@"]+$/.test(arg.slice(0, eq));
    const value = named ? arg.slice(eq + 1) : arg;
    if (!value.startsWith('@')) {
      const name = named ? arg.slice(0, eq) : only(arg);
      put(name, () => parseNested(value, name, dtypeOf(name)), arg);
      continue;
    }
    const file = value.slice(1);
    const set = readTensorFile(file);
    const tensorOf = (key: string, name: string) => (): Tensor => {
      const v = set.get(key)!;
      return v instanceof Tensor ? v : jsonTensor(v.json, dtypeOf(name), name);
    };
    if (named) {
      // NAME=@file: the file's one array, or its array called NAME.
      const name = arg.slice(0, eq);
      const key = set.size === 1 ? [...set.keys()][0]! : name;
      if (!set.has(key)) throw new UsageError(`--input ${arg}: ${file} holds ${[...set.keys()].join(', ')}, no ${name}`);
      put(name, tensorOf(key, name), arg);
      continue;
    }
    for (const key of set.keys()) {
      // An unnamed array (an .npy, a bare JSON array) is the single input; so is the lone array of
      // an .npz whose name is no input (numpy.savez names it arr_0).
      const name = key === '' || (set.size === 1 && inputNames.length === 1 && !inputNames.includes(key)) ? only(arg) : key;
      put(name, tensorOf(key, name), arg);
    }
  }
  return out;
}

/** Writes run's outputs: one array to an .npy, any number by name to an .npz (numpy.load reads both). */
export function writeOutputs(path: string, outputs: Readonly<Record<string, Tensor>>, force: boolean): void {
  const names = Object.keys(outputs);
  const lower = path.toLowerCase();
  let bytes: Uint8Array;
  if (lower.endsWith('.npy')) {
    if (names.length !== 1) throw new UsageError(`--output ${path}: the model has ${names.length} outputs (${names.join(', ')}) and an .npy holds one: write an .npz`);
    bytes = npyOf(outputs[names[0]!]!, names[0]!);
  } else if (lower.endsWith('.npz')) {
    // Stored, not deflated, as numpy.savez writes them.
    const entries: Record<string, [Uint8Array, { level: 0 }]> = {};
    for (const name of names) entries[`${name}.npy`] = [npyOf(outputs[name]!, name), { level: 0 }];
    bytes = zipSync(entries);
  } else {
    throw new UsageError(`--output ${path}: give a .npy or an .npz file`);
  }
  assertWritable(path, force);
  // Through a symbolic link to its target; a FIFO or device (/dev/stdout) is refused, not replaced.
  writeBytesAtomic(outputTarget(resolve(path)).path, bytes);
}

function npyOf(t: Tensor, name: string): Uint8Array {
  try {
    return writeNpy(t);
  } catch {
    throw new UsageError(`output ${name} is ${t.dtype}, which NumPy's .npy cannot hold`);
  }
}

function parseNested(text: string, name: string, dtype: DType): Tensor {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`input ${name}: ${JSON.stringify(text)} is not a JSON array or number`);
  }
  const shape: number[] = [];
  for (let v = value; Array.isArray(v); v = v[0]) shape.push(v.length);
  const flat: number[] = [];
  const visit = (v: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (typeof v === 'boolean') flat.push(v ? 1 : 0);
      else if (typeof v === 'number') flat.push(v);
      else throw new UsageError(`input ${name}: expected a number at depth ${depth}`);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) throw new UsageError(`input ${name}: ragged array (every row at depth ${depth} needs ${shape[depth]} items)`);
    for (const item of v) visit(item, depth + 1);
  };
  visit(value, 0);
  return Tensor.from(dtype, shape, flat);
}

/** A tensor as the nested JSON array its shape describes. */
export function toNested(values: readonly number[], shape: readonly number[]): unknown {
  if (shape.length === 0) return values[0];
  let at = 0;
  const build = (depth: number): unknown => {
    if (depth === shape.length) return values[at++];
    return Array.from({ length: shape[depth]! }, () => build(depth + 1));
  };
  return build(0);
}
