import { DTYPES, type DType } from '../../core/dtypes.js';
import { bfloat16BitsToFloat32, float16BitsToFloat32 } from '../../core/half.js';
import type { Tensor } from '../../core/tensor.js';
import { sameBytes } from '../../core/source.js';
import type { Tolerance } from './types.js';
import { bytesEqual as sameBytesOf } from '../../core/bytes.js';

/**
 * Element-wise passes over tensors that never hold a file-backed tensor in memory twice: the
 * bytes are streamed through the tensor's ByteSource in chunks of whole elements, decoded a block
 * at a time. `finite` and `diff` are built on these.
 */

/** Bytes per streamed chunk. */
export const CHUNK_BYTES = 1 << 22;

/** How values of a dtype are compared: as numbers, or (storage-only and sub-byte types) as bits. */
export function valueKind(dtype: DType): 'number' | 'bits' | 'string' {
  const kind = DTYPES[dtype].kind;
  if (kind === 'string') return 'string';
  if (kind === 'storage') return 'bits';
  return 'number';
}

/** The unit a tensor's bytes are streamed in: one element (a complex number counts as two floats). */
export function unitBytes(dtype: DType): number {
  if (valueKind(dtype) !== 'number') return 1;
  if (dtype === 'complex64') return 4;
  if (dtype === 'complex128') return 8;
  return DTYPES[dtype].bits / 8;
}

/**
 * A tensor's bytes in chunks of whole units, each aligned for a typed-array view (copied into a
 * scratch buffer only when the source's bytes are misaligned or a unit straddles two chunks).
 * The yielded arrays may be reused: consume each before asking for the next.
 */
export function* alignedChunks(tensor: Tensor, chunkBytes = CHUNK_BYTES): Generator<Uint8Array> {
  const unit = unitBytes(tensor.dtype);
  const size = Math.max(unit, chunkBytes - (chunkBytes % unit));
  let scratch: Uint8Array | undefined;
  let carry = 0;
  for (const chunk of tensor.source.chunks(size)) {
    let at = 0;
    if (carry > 0) {
      const take = Math.min(unit - carry, chunk.byteLength);
      scratch!.set(chunk.subarray(0, take), carry);
      carry += take;
      at = take;
      if (carry < unit) continue;
      yield scratch!.subarray(0, unit);
      carry = 0;
    }
    const whole = chunk.byteLength - at - ((chunk.byteLength - at) % unit);
    if (whole > 0) {
      const view = chunk.subarray(at, at + whole);
      if (view.byteOffset % unit === 0) {
        yield view;
      } else {
        if (!scratch || scratch.byteLength < whole) scratch = new Uint8Array(Math.max(whole, unit));
        scratch.set(view);
        yield scratch.subarray(0, whole);
      }
    }
    const rest = chunk.byteLength - at - whole;
    if (rest > 0) {
      if (!scratch || scratch.byteLength < unit) scratch = new Uint8Array(Math.max(size, unit));
      scratch.set(chunk.subarray(at + whole), 0);
      carry = rest;
    }
  }
}

/** Decodes aligned bytes of whole units into numbers (int64 beyond 2^53 rounds; bits compare exactly). */
export function decode(dtype: DType, bytes: Uint8Array, out: Float64Array, at = 0): number {
  const { buffer, byteOffset, byteLength } = bytes;
  const n = byteLength / unitBytes(dtype);
  switch (dtype) {
    case 'float32':
    case 'complex64':
      out.set(new Float32Array(buffer, byteOffset, n), at);
      break;
    case 'float64':
    case 'complex128':
      out.set(new Float64Array(buffer, byteOffset, n), at);
      break;
    case 'float16': {
      const v = new Uint16Array(buffer, byteOffset, n);
      for (let i = 0; i < n; i++) out[at + i] = float16BitsToFloat32(v[i]!);
      break;
    }
    case 'bfloat16': {
      const v = new Uint16Array(buffer, byteOffset, n);
      for (let i = 0; i < n; i++) out[at + i] = bfloat16BitsToFloat32(v[i]!);
      break;
    }
    case 'int8':
      out.set(new Int8Array(buffer, byteOffset, n), at);
      break;
    case 'int16':
      out.set(new Int16Array(buffer, byteOffset, n), at);
      break;
    case 'int32':
      out.set(new Int32Array(buffer, byteOffset, n), at);
      break;
    case 'uint16':
      out.set(new Uint16Array(buffer, byteOffset, n), at);
      break;
    case 'uint32':
      out.set(new Uint32Array(buffer, byteOffset, n), at);
      break;
    case 'int64': {
      const v = new BigInt64Array(buffer, byteOffset, n);
      for (let i = 0; i < n; i++) out[at + i] = Number(v[i]!);
      break;
    }
    case 'uint64': {
      const v = new BigUint64Array(buffer, byteOffset, n);
      for (let i = 0; i < n; i++) out[at + i] = Number(v[i]!);
      break;
    }
    default:
      // uint8, bool and the bit-compared storage types: one byte each.
      out.set(bytes, at);
  }
  return n;
}

export interface NonFinite {
  readonly nan: number;
  readonly inf: number;
  /** Index (in storage units) of the first non-finite value, or -1. */
  readonly first: number;
}

/**
 * Counts NaN and infinite values by their bit patterns, streaming: no float conversion, no copy of
 * the tensor. Types that cannot hold NaN or Inf (integers, float4/float6) report zeros.
 */
export function scanNonFinite(tensor: Tensor, chunkBytes = CHUNK_BYTES): NonFinite {
  let nan = 0;
  let inf = 0;
  let first = -1;
  let index = 0;
  const note = (isNan: boolean, i: number) => {
    if (isNan) nan++;
    else inf++;
    if (first < 0) first = i;
  };
  const dtype = tensor.dtype;
  // Per dtype: [exponent mask, mantissa mask] for IEEE-like types over 16 or 32 bits.
  const ieee: Partial<Record<DType, readonly [number, number]>> = {
    float32: [0x7f800000, 0x007fffff],
    complex64: [0x7f800000, 0x007fffff],
    float16: [0x7c00, 0x03ff],
    bfloat16: [0x7f80, 0x007f],
  };
  const masks = ieee[dtype];
  const byteRule = BYTE_RULES[dtype];
  if (!masks && !byteRule && dtype !== 'float64' && dtype !== 'complex128') return { nan: 0, inf: 0, first: -1 };
  for (const bytes of alignedChunks(tensor, chunkBytes)) {
    if (masks) {
      const [exp, man] = masks;
      const wide = dtype === 'float32' || dtype === 'complex64';
      const v = wide ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) : new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
      for (let i = 0; i < v.length; i++) {
        const b = v[i]!;
        if ((b & exp) === exp) note((b & man) !== 0, index + i);
      }
      index += v.length;
    } else if (byteRule) {
      for (let i = 0; i < bytes.byteLength; i++) {
        const r = byteRule(bytes[i]!);
        if (r !== 0) note(r === 1, index + i);
      }
      index += bytes.byteLength;
    } else {
      const v = new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
      for (let i = 0; i < v.length; i++) {
        const x = v[i]!;
        if (x - x !== 0) note(x !== x, index + i);
      }
      index += v.length;
    }
  }
  return { nan, inf, first };
}

/** 8-bit float types: 1 for NaN, 2 for infinity, 0 otherwise (per the OCP/ONNX definitions). */
const BYTE_RULES: Partial<Record<DType, (b: number) => number>> = {
  float8_e4m3fn: (b) => ((b & 0x7f) === 0x7f ? 1 : 0),
  float8_e4m3fnuz: (b) => (b === 0x80 ? 1 : 0),
  float8_e5m2: (b) => ((b & 0x7c) === 0x7c ? ((b & 0x03) !== 0 ? 1 : 2) : 0),
  float8_e5m2fnuz: (b) => (b === 0x80 ? 1 : 0),
  float8_e8m0fnu: (b) => (b === 0xff ? 1 : 0),
};

/** Elements of a tensor in compare units (a complex number counts as two). */
export function unitCount(t: Tensor): number {
  if (t.dtype === 'string') return t.size;
  if (valueKind(t.dtype) === 'bits') return t.byteLength;
  return t.byteLength / unitBytes(t.dtype);
}

/** Statistics of comparing `actual` with `expected` element by element. */
export interface CompareStats {
  /** Elements compared (units: a complex number counts twice). */
  count: number;
  /** Every byte equal. */
  identical: boolean;
  /** Largest |actual - expected| (Infinity when a NaN or infinity meets a different value); null for bit-compared types. */
  maxAbs: number | null;
  /** Largest |actual - expected| / |expected| (Infinity where expected is 0 and actual is not). */
  maxRel: number | null;
  /** Elements outside the tolerance. */
  beyond: number;
  /** Index of the first element outside the tolerance, or -1. */
  firstBeyond: number;
}

/** Whether two numbers are equal within tolerance (NaN equals NaN, infinities must match). */
export function within(actual: number, expected: number, tol: Tolerance): boolean {
  if (actual === expected) return true;
  if (actual !== actual || expected !== expected) return actual !== actual && expected !== expected;
  return Math.abs(actual - expected) <= tol.atol + tol.rtol * Math.abs(expected);
}

/**
 * Compares two tensors of the same dtype or not (values are compared as numbers), streaming both
 * in lockstep. `stopEarly` returns at the first element beyond tolerance (for trying candidates).
 * The tensors must have the same element count.
 */
export function compareTensors(actual: Tensor, expected: Tensor, tol: Tolerance, stopEarly = false, onBytes?: (bytes: number) => void): CompareStats {
  const stats: CompareStats = { count: 0, identical: true, maxAbs: 0, maxRel: 0, beyond: 0, firstBeyond: -1 };
  const kind = valueKind(actual.dtype);
  if (kind === 'string' || valueKind(expected.dtype) === 'string') return compareStrings(actual, expected, stats);
  const bitsOnly = kind === 'bits' || valueKind(expected.dtype) === 'bits';
  const sameType = actual.dtype === expected.dtype;
  // Nearly every comparison is of equal bytes (a conversion's check, a diff of copies): memcmp
  // over the two streams settles it at memory speed; values are decoded only when bytes differ.
  if (sameType && actual.byteLength === expected.byteLength && sameBytes(actual.source, expected.source, onBytes)) {
    return { count: unitCount(actual), identical: true, maxAbs: bitsOnly ? null : 0, maxRel: bitsOnly ? null : 0, beyond: 0, firstBeyond: -1 };
  }
  if (bitsOnly) {
    stats.maxAbs = null;
    stats.maxRel = null;
    if (!sameType) stats.identical = false;
  }
  const block = 1 << 16;
  const a = blocks(actual, block, bitsOnly);
  const b = blocks(expected, block, bitsOnly);
  for (;;) {
    const x = a.next();
    const y = b.next();
    if (x.done || y.done) {
      if (!x.done || !y.done) throw new RangeError(`compareTensors: ${actual} and ${expected} differ in size`);
      break;
    }
    const { values: va, bytes: ba } = x.value;
    const { values: vb, bytes: bb } = y.value;
    if (stats.identical && (!sameType || !bytesEqual(ba, bb))) stats.identical = false;
    const n = va.length;
    if (!bitsOnly) {
      for (let i = 0; i < n; i++) {
        const p = va[i]!;
        const q = vb[i]!;
        if (p === q) continue;
        if (p !== p && q !== q) continue;
        const d = Math.abs(p - q);
        const abs = d === d ? d : Infinity;
        if (abs > stats.maxAbs!) stats.maxAbs = abs;
        const rel = q === 0 ? Infinity : abs / Math.abs(q);
        if (rel > stats.maxRel!) stats.maxRel = rel;
        if (!(abs <= tol.atol + tol.rtol * Math.abs(q))) {
          if (stats.firstBeyond < 0) stats.firstBeyond = stats.count + i;
          stats.beyond++;
          if (stopEarly) return stats;
        }
      }
    } else if (!bytesEqual(ba, bb)) {
      for (let i = 0; i < ba.byteLength; i++) {
        if (ba[i] !== bb[i]) {
          if (stats.firstBeyond < 0) stats.firstBeyond = stats.count + i;
          stats.beyond++;
          if (stopEarly) return stats;
        }
      }
    }
    stats.count += n;
  }
  return stats;
}

function compareStrings(actual: Tensor, expected: Tensor, stats: CompareStats): CompareStats {
  stats.maxAbs = null;
  stats.maxRel = null;
  const a = actual.strings ?? [];
  const b = expected.strings ?? [];
  stats.count = a.length;
  for (let i = 0; i < a.length; i++) {
    if (!b[i] || !bytesEqual(a[i]!, b[i]!)) {
      stats.identical = false;
      if (stats.firstBeyond < 0) stats.firstBeyond = i;
      stats.beyond++;
    }
  }
  if (actual.dtype !== expected.dtype || a.length !== b.length) stats.identical = false;
  return stats;
}

/** A tensor as blocks of exactly `size` units (the last may be shorter): the values and their bytes. */
function* blocks(tensor: Tensor, size: number, bitsOnly: boolean): Generator<{ values: Float64Array; bytes: Uint8Array }> {
  const unit = bitsOnly ? 1 : unitBytes(tensor.dtype);
  const values = new Float64Array(size);
  const bytes = new Uint8Array(size * unit);
  let filled = 0;
  for (const chunk of alignedChunks(tensor)) {
    let at = 0;
    while (at < chunk.byteLength) {
      const take = Math.min(chunk.byteLength - at, (size - filled) * unit);
      const part = chunk.subarray(at, at + take);
      bytes.set(part, filled * unit);
      if (bitsOnly) values.set(part, filled);
      else decode(tensor.dtype, part, values, filled);
      filled += take / unit;
      at += take;
      if (filled === size) {
        yield { values, bytes };
        filled = 0;
      }
    }
  }
  if (filled > 0) yield { values: values.subarray(0, filled), bytes: bytes.subarray(0, filled * unit) };
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && sameBytesOf(a, b);
}

/** Numbers for JSON: non-finite values become the strings "NaN", "Infinity", "-Infinity". */
export function jsonNumber(value: number | null): number | string | null {
  if (value === null) return null;
  return Number.isFinite(value) ? value : String(value);
}

/** Short text for a statistic: 0, 1.2e-7, 0.5, Infinity. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined) return '-';
  if (value === 0 || !Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  return abs >= 1e-3 && abs < 1e6 ? String(Number(value.toPrecision(3))) : value.toExponential(2);
}
