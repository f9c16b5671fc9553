import type { DType } from '../../core/dtypes.js';
import { formatErrors, type FormatErrors } from '../../core/errors.js';
import { byteLengthOf } from '../../core/dtypes.js';
import { elementCount } from '../../core/shape.js';
import { Tensor } from '../../core/tensor.js';

/**
 * NumPy's .npy format (versions 1.0-3.0): the magic \x93NUMPY, a version, a header length and a
 * Python-literal dict {'descr', 'fortran_order', 'shape'}. modelbridge reads little-endian,
 * C-order arrays, which is what numpy.save writes on every common machine.
 */
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

const DESCR_TO_DTYPE: Readonly<Record<string, DType>> = {
  '<f4': 'float32',
  '<f8': 'float64',
  '<f2': 'float16',
  '|i1': 'int8',
  '<i2': 'int16',
  '<i4': 'int32',
  '<i8': 'int64',
  '|u1': 'uint8',
  '<u2': 'uint16',
  '<u4': 'uint32',
  '<u8': 'uint64',
  '|b1': 'bool',
};

export function readNpy(bytes: Uint8Array, file: string): Tensor {
  const e: FormatErrors = formatErrors(file);
  e.check(bytes.byteLength >= 10 && MAGIC.every((b, i) => bytes[i] === b), 'byte 0', 'the .npy magic \\x93NUMPY');
  const major = bytes[6]!;
  e.check(major >= 1 && major <= 3, 'byte 6', 'npy format version 1, 2 or 3');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const wide = major >= 2;
  e.check(bytes.byteLength >= (wide ? 12 : 10), 'byte 8', 'a header length');
  const headerLength = wide ? view.getUint32(8, true) : view.getUint16(8, true);
  const start = wide ? 12 : 10;
  e.check(start + headerLength <= bytes.byteLength, `byte ${start}`, `a header of ${headerLength} bytes within the file`);
  const header = new TextDecoder('latin1').decode(bytes.subarray(start, start + headerLength));

  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) e.fail('header', "a dict with 'descr', 'fortran_order' and 'shape'");
  const dtype = DESCR_TO_DTYPE[descr] ?? e.fail('header descr', `a little-endian numeric dtype, not ${descr}`);
  e.check(fortran === 'False', 'header fortran_order', 'C order (fortran_order False)');
  const dims = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '');
  e.check(dims.every((d) => /^\d+$/.test(d)), 'header shape', 'a tuple of non-negative integers');
  const shape = dims.map(Number);
  const count = elementCount(shape);
  const needed = count === undefined ? undefined : byteLengthOf(dtype, count);
  const dataStart = start + headerLength;
  e.check(needed !== undefined && dataStart + needed === bytes.byteLength, `byte ${dataStart}`, `${needed ?? 'a representable number of'} bytes of ${dtype} data, found ${bytes.byteLength - dataStart}`);
  return Tensor.fromBytes(dtype, shape, bytes.subarray(dataStart));
}

/** Writes a version 1.0 .npy (header padded so the data starts on a 64-byte boundary). */
export function writeNpy(tensor: Tensor): Uint8Array {
  const descr = Object.entries(DESCR_TO_DTYPE).find(([, d]) => d === tensor.dtype)?.[0];
  if (!descr) throw new RangeError(`.npy cannot hold ${tensor.dtype}`);
  const shape = tensor.shape.length === 1 ? `(${tensor.shape[0]},)` : `(${tensor.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const data = tensor.bytes();
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(data, 10 + header.length);
  return out;
}
