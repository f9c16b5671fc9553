import { readFileSync } from 'node:fs';
import type { DType } from '../core/dtypes.js';
import { UsageError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { readNpy } from '../formats/npy/npy.js';

/**
 * Parses `--input NAME=VALUE` arguments. VALUE is a JSON nested array (its nesting gives the
 * shape) or @file.npy. With a single model input, `NAME=` may be left out.
 */
export function parseInputs(args: readonly string[], inputNames: readonly string[], dtypeOf: (name: string) => DType): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const arg of args) {
    const eq = arg.indexOf('=');
    const named = eq > 0 && /^[^[\]{}@"]+$/.test(arg.slice(0, eq));
    let name: string;
    if (named) name = arg.slice(0, eq);
    else if (inputNames.length === 1) name = inputNames[0]!;
    else throw new UsageError(`--input ${arg}: name the input (NAME=VALUE); the model has ${inputNames.join(', ')}`);
    const value = named ? arg.slice(eq + 1) : arg;
    if (out[name]) throw new UsageError(`input ${name} given twice`);
    out[name] = value.startsWith('@') ? readNpyInput(value.slice(1)) : parseNested(value, name, dtypeOf(name));
  }
  return out;
}

function readNpyInput(path: string): Tensor {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch {
    throw new UsageError(`cannot read input file ${path}`);
  }
  return readNpy(bytes, path);
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
