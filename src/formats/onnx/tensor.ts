import { realpathSync, statSync } from '../../core/vfs.js';
import { isAbsolute, join, relative } from 'node:path';
import { byteLengthOf, type DType } from '../../core/dtypes.js';
import { FormatError, formatErrors, type FormatErrors } from '../../core/errors.js';
import { formatShape } from '../../core/shape.js';
import { FileRangeSource, MemorySource } from '../../core/source.js';
import { allocate, Tensor } from '../../core/tensor.js';
import { onnxCodeToDType, onnxTypeName } from './dtypes.js';
import { int64ToBigInt, int64ToNumber, int64Words } from '../../core/int64.js';
import { hasField, type TensorProto } from './schema.js';

/** Where a TensorProto sits, for error messages and for resolving external data. */
export interface TensorContext {
  readonly file: string;
  /** e.g. `initializer fc1.weight` or `attribute value of node c1`. */
  readonly where: string;
  /** Directory external data locations are relative to; external data is refused without it. */
  readonly baseDir?: string;
  /**
   * Where raw_data lies in the model file when the skeleton reader left it there (the decoded
   * raw_data is then empty); the tensor reads it from the file on demand.
   */
  readonly rawDataInFile?: { readonly path: string; readonly offset: number; readonly length: number };
}

const EXTERNAL = 1;

/** Converts a decoded TensorProto to a Tensor; raw_data and external data stay views, not copies. */
export function tensorFromProto(proto: TensorProto, context: TensorContext): Tensor {
  const e: FormatErrors = formatErrors(context.file);
  const where = context.where;
  const dtype = onnxCodeToDType(proto.data_type);
  e.check(dtype !== undefined, where, `a data type modelbridge supports (got ${onnxTypeName(proto.data_type)})`);
  const shape = proto.dims.map((d, i) => {
    const n = int64ToNumber(d);
    e.check(n !== undefined && n >= 0, where, `a non-negative size for dimension ${i}`);
    return n;
  });
  let count = 1;
  for (const d of shape) count *= d;
  e.check(Number.isSafeInteger(count), where, `a shape with a countable number of elements, got ${formatShape(shape)}`);
  e.check(!proto.segment, where, 'a whole tensor (segmented TensorProto storage is not supported)');

  if (dtype === 'string') {
    e.check(proto.string_data.length === count, where, `${count} strings for shape ${formatShape(shape)}, got ${proto.string_data.length}`);
    return Tensor.fromStrings(shape, proto.string_data);
  }
  const byteLength = byteLengthOf(dtype, count);
  e.check(byteLength !== undefined, where, `${dtype} elements that fill whole bytes (shape ${formatShape(shape)})`);

  if (proto.data_location === EXTERNAL) return externalTensor(proto, dtype, shape, byteLength, context, e);
  if (hasField(proto, 'raw_data')) {
    const inFile = context.rawDataInFile;
    const got = inFile ? inFile.length : proto.raw_data.byteLength;
    e.check(got === byteLength, where, `${byteLength} bytes of raw_data for ${dtype} ${formatShape(shape)}, got ${got}`);
    if (inFile) return new Tensor(dtype, shape, new FileRangeSource(inFile.path, inFile.offset, inFile.length));
    return Tensor.fromBytes(dtype, shape, proto.raw_data);
  }
  return typedFieldTensor(proto, dtype, shape, count, where, e);
}

/** Copies the elements out of float_data / int32_data / int64_data / double_data / uint64_data. */
function typedFieldTensor(proto: TensorProto, dtype: DType, shape: number[], count: number, where: string, e: FormatErrors): Tensor {
  const need = (field: string, have: number, perElement = 1) => {
    e.check(have === count * perElement, where, `${count * perElement} values in ${field} for ${dtype} ${formatShape(shape)}, got ${have}`);
  };
  switch (dtype) {
    case 'float32':
    case 'complex64': {
      const perElement = dtype === 'complex64' ? 2 : 1;
      need('float_data', proto.float_data.length, perElement);
      return Tensor.fromArray(dtype, shape, Float32Array.from(proto.float_data));
    }
    case 'float64':
    case 'complex128': {
      const perElement = dtype === 'complex128' ? 2 : 1;
      need('double_data', proto.double_data.length, perElement);
      return Tensor.fromArray(dtype, shape, Float64Array.from(proto.double_data));
    }
    case 'int64': {
      need('int64_data', proto.int64_data.length);
      return Tensor.fromArray(dtype, shape, BigInt64Array.from(proto.int64_data, (v) => int64ToBigInt(v, false)));
    }
    case 'uint64':
    case 'uint32': {
      need('uint64_data', proto.uint64_data.length);
      if (dtype === 'uint64') return Tensor.fromArray(dtype, shape, BigUint64Array.from(proto.uint64_data, (v) => int64ToBigInt(v, true)));
      // uint32 values are the low words (a writer may not set bits above 32).
      return Tensor.fromArray(dtype, shape, Uint32Array.from(proto.uint64_data, (v) => int64Words(v)[0]));
    }
    case 'float4_e2m1fn_x2': {
      // Two 4-bit elements per int32 entry, the first in the low nibble, as in raw_data.
      need('int32_data', proto.int32_data.length * 2); // count is even: byteLengthOf checked whole bytes
      const bytes = Uint8Array.from(proto.int32_data, (v) => v & 0xff);
      return Tensor.fromBytes(dtype, shape, bytes);
    }
    default: {
      // int32, int16, int8, uint16, uint8, bool and the bit patterns of 16- and 8-bit floats.
      need('int32_data', proto.int32_data.length);
      const out = allocate(dtype, count) as Int32Array;
      const values = proto.int32_data;
      if (dtype === 'bool') for (let i = 0; i < count; i++) out[i] = values[i] !== 0 ? 1 : 0;
      else for (let i = 0; i < count; i++) out[i] = values[i]!; // narrower arrays keep the low bits
      return Tensor.fromArray(dtype, shape, out);
    }
  }
}

/** A tensor whose bytes live in another file beside the model (ONNX external data). */
function externalTensor(proto: TensorProto, dtype: DType, shape: number[], byteLength: number, context: TensorContext, e: FormatErrors): Tensor {
  const where = context.where;
  const entries = new Map(proto.external_data.map((entry) => [entry.key, entry.value]));
  const location = entries.get('location');
  e.check(location !== undefined && location !== '', where, 'an external_data "location" entry');
  e.check(context.baseDir !== undefined, where, 'data inside the file (external data needs the model path to resolve)');
  // ONNX forbids leaving the model's directory: no absolute paths and no `..` components.
  const parts = location.split(/[\\/]/);
  e.check(!isAbsolute(location) && !parts.includes('..'), where, `an external data location inside the model's directory, got ${JSON.stringify(location)}`);
  const decimal = (key: string): number | undefined => {
    const text = entries.get(key);
    if (text === undefined) return undefined;
    e.check(/^\d+$/.test(text) && Number.isSafeInteger(Number(text)), where, `a non-negative decimal external_data ${key}, got ${JSON.stringify(text)}`);
    return Number(text);
  };
  const offset = decimal('offset') ?? 0;
  const path = join(context.baseDir, location);
  let fileSize: number;
  let real: string;
  try {
    const stat = statSync(path);
    // A FIFO or device named as external data would block or never end.
    e.check(stat.isFile(), where, `external data ${path} to be a regular file`);
    fileSize = stat.size;
    real = realpathSync(path);
  } catch (err) {
    if (err instanceof FormatError) throw err;
    return e.fail(where, `external data file ${path} to exist`);
  }
  // A symbolic link inside the folder must not lead out of it either.
  const inside = relative(realpathSync(context.baseDir), real);
  e.check(inside !== '' && !inside.startsWith('..') && !isAbsolute(inside), where, `an external data file inside the model's directory, but ${JSON.stringify(location)} leads to ${real}`);
  const length = decimal('length') ?? fileSize - offset;
  e.check(offset + length <= fileSize, where, `bytes [${offset}, ${offset + length}) inside ${path} (${fileSize} bytes)`);
  e.check(length === byteLength, where, `${byteLength} bytes of external data for ${dtype} ${formatShape(shape)}, got ${length}`);
  return new Tensor(dtype, shape, byteLength === 0 ? new MemorySource(new Uint8Array(0)) : new FileRangeSource(path, offset, length));
}
