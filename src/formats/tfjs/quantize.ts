import { float16BitsToFloat32, float32ToFloat16Bits } from '../../core/half.js';

/**
 * TF.js weight quantization, as the converter writes it (tfjs-converter quantization.py) and
 * tfjs-core reads it back (io_utils decodeWeight). Only float32 weights are quantized.
 *
 *  - uint8/uint16 (affine): scale = (max - min) / qmax. When the range holds 0 it is nudged so 0
 *    is exact: min' = -round(-min / scale) * scale. q = round((clip(x, min', max') - min') / scale),
 *    rounding half to even as NumPy does. The arithmetic is float64 (NumPy 2 promotes the float32
 *    data against the float64 min/scale). A constant tensor stores zeros with scale 1.
 *  - float16: IEEE half, rounded to nearest even.
 *
 * TF.js dequantizes as `q * scale + min` in float64 stored into a Float32Array (int32 weights:
 * Math.round of that), and float16 exactly.
 */
export type QuantizationDType = 'uint8' | 'uint16' | 'float16';

export interface Quantization {
  readonly dtype: QuantizationDType;
  readonly min?: number;
  readonly scale?: number;
}

export interface Quantized {
  readonly bytes: Uint8Array;
  readonly quantization: Quantization;
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round rounds .5 up; NumPy rounds it to the even neighbour.
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function quantize(values: Float32Array, dtype: QuantizationDType): Quantized {
  if (dtype === 'float16') {
    const out = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]!);
    return { bytes: new Uint8Array(out.buffer), quantization: { dtype } };
  }
  const qmax = dtype === 'uint8' ? 255 : 65535;
  const out = dtype === 'uint8' ? new Uint8Array(values.length) : new Uint16Array(values.length);
  const bytes = new Uint8Array(out.buffer);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (values.length === 0 || lo === hi) return { bytes, quantization: { dtype, min: values.length ? lo : 0, scale: 1 } };
  const scale = (hi - lo) / qmax;
  let min = lo;
  let max = hi;
  if (lo <= 0 && 0 <= hi) {
    min = -roundHalfEven((0 - lo) / scale) * scale;
    max = qmax * scale + min;
  }
  for (let i = 0; i < values.length; i++) {
    const clipped = Math.min(Math.max(values[i]!, min), max);
    out[i] = Math.min(qmax, Math.max(0, roundHalfEven((clipped - min) / scale)));
  }
  return { bytes, quantization: { dtype, min, scale } };
}

/** The float32 values TF.js decodes from quantized bytes (bytes.byteLength checked by the caller). */
export function dequantizeFloat32(bytes: Uint8Array, q: Quantization, count: number): Float32Array {
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (q.dtype === 'float16') {
    for (let i = 0; i < count; i++) out[i] = float16BitsToFloat32(view.getUint16(2 * i, true));
    return out;
  }
  const scale = q.scale!;
  const min = q.min!;
  if (q.dtype === 'uint8') for (let i = 0; i < count; i++) out[i] = bytes[i]! * scale + min;
  else for (let i = 0; i < count; i++) out[i] = view.getUint16(2 * i, true) * scale + min;
  return out;
}

/** int32 weights quantized to uint8/uint16 decode as Math.round(q * scale + min). */
export function dequantizeInt32(bytes: Uint8Array, q: Quantization, count: number): Int32Array {
  const wide = q.dtype === 'uint8' ? (i: number) => bytes[i]! : (i: number) => bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.round(wide(i) * q.scale! + q.min!);
  return out;
}

/** Bytes per stored element of a quantization dtype. */
export function quantizedSize(dtype: QuantizationDType): number {
  return dtype === 'uint8' ? 1 : 2;
}

/** The largest |dequantized - original| quantization can cause for these values (for tests and reports). */
export function quantizationBound(q: Quantization, maxAbs: number): number {
  if (q.dtype === 'float16') return maxAbs * 2 ** -11 + 2 ** -25;
  return (q.scale! / 2) * (1 + 1e-6) + Math.abs(q.min!) * 2 ** -23;
}
