import { byteLengthOf, dtypeSize, type DType } from './dtypes.js';
import { bfloat16BitsToFloat32, float16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits } from './half.js';
import { elementCount, formatShape, type Shape } from './shape.js';
import { MemorySource, type ByteSource } from './source.js';

/** The typed array a dtype computes in: 16-bit floats widen to float32, 64-bit ints stay exact as BigInt. */
export type NumericArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

/**
 * A tensor: dtype, shape, and its elements as little-endian, row-major bytes. The bytes come
 * from a ByteSource, so a tensor read from a file is a view into that file's bytes.
 * Strings (TensorFlow, ONNX) are kept as a list instead of bytes.
 */
export class Tensor {
  readonly shape: Shape;

  constructor(
    readonly dtype: DType,
    shape: Shape,
    readonly source: ByteSource,
    readonly strings?: readonly Uint8Array[],
  ) {
    this.shape = Object.freeze([...shape]);
    const count = elementCount(shape);
    if (count === undefined) throw new RangeError(`tensor shape ${formatShape(shape)} is too large`);
    if (dtype === 'string') {
      if (!strings || strings.length !== count) throw new RangeError(`string tensor needs ${count} strings`);
    } else if (byteLengthOf(dtype, count) !== source.byteLength) {
      throw new RangeError(
        `${dtype} tensor of shape ${formatShape(shape)} needs ${byteLengthOf(dtype, count)} bytes, got ${source.byteLength}`,
      );
    }
  }

  get size(): number {
    return elementCount(this.shape)!;
  }

  get byteLength(): number {
    return this.source.byteLength;
  }

  /** The little-endian bytes (a view, not a copy, when the tensor lives in memory). */
  bytes(): Uint8Array {
    return this.source.read();
  }

  static fromBytes(dtype: DType, shape: Shape, bytes: Uint8Array): Tensor {
    return new Tensor(dtype, shape, new MemorySource(bytes));
  }

  static fromStrings(shape: Shape, strings: readonly Uint8Array[]): Tensor {
    return new Tensor('string', shape, new MemorySource(new Uint8Array(0)), strings);
  }

  /** Builds a tensor from numbers, converting to `dtype` (16-bit floats rounded to nearest even). */
  static from(dtype: DType, shape: Shape, values: ArrayLike<number> | ArrayLike<bigint>): Tensor {
    const count = elementCount(shape);
    if (count !== values.length) throw new RangeError(`shape ${formatShape(shape)} needs ${count} values, got ${values.length}`);
    const array = allocate(dtype, count);
    if (array instanceof BigInt64Array || array instanceof BigUint64Array) {
      for (let i = 0; i < count; i++) array[i] = BigInt(values[i]!);
    } else if (dtype === 'float16' || dtype === 'bfloat16') {
      const encode = dtype === 'float16' ? float32ToFloat16Bits : float32ToBfloat16Bits;
      for (let i = 0; i < count; i++) array[i] = encode(Number(values[i]!));
    } else if (dtype === 'bool') {
      for (let i = 0; i < count; i++) array[i] = Number(values[i]!) ? 1 : 0;
    } else {
      for (let i = 0; i < count; i++) array[i] = Number(values[i]!);
    }
    return Tensor.fromBytes(dtype, shape, new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
  }

  /** Wraps a typed array of the dtype's storage type without copying. */
  static fromArray(dtype: DType, shape: Shape, array: NumericArray): Tensor {
    return Tensor.fromBytes(dtype, shape, new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
  }

  /**
   * The elements in the dtype's storage array: a view when the bytes are aligned, else a copy.
   * float16/bfloat16 give their raw Uint16 bits; use toFloat32() for values.
   */
  storage(): NumericArray {
    const bytes = this.bytes();
    const Ctor = storageConstructor(this.dtype);
    const size = Ctor.BYTES_PER_ELEMENT;
    if (bytes.byteOffset % size === 0) return new Ctor(bytes.buffer, bytes.byteOffset, bytes.byteLength / size);
    const copy = new Uint8Array(bytes);
    return new Ctor(copy.buffer, 0, copy.byteLength / size);
  }

  /** Values as float32 (16-bit floats widened exactly; wider types rounded). */
  toFloat32(): Float32Array {
    const data = this.storage();
    if (data instanceof Float32Array) return data;
    const out = new Float32Array(data.length);
    if (this.dtype === 'float16') for (let i = 0; i < out.length; i++) out[i] = float16BitsToFloat32(data[i] as number);
    else if (this.dtype === 'bfloat16') for (let i = 0; i < out.length; i++) out[i] = bfloat16BitsToFloat32(data[i] as number);
    else for (let i = 0; i < out.length; i++) out[i] = Number(data[i]!);
    return out;
  }

  /** Values as plain numbers (int64 beyond 2^53 loses precision; for display and JSON). */
  toNumbers(): number[] {
    if (this.dtype === 'float16' || this.dtype === 'bfloat16') return Array.from(this.toFloat32());
    return Array.from(this.storage() as ArrayLike<number | bigint>, (v) => Number(v));
  }

  toString(): string {
    return `Tensor(${this.dtype}, ${formatShape(this.shape)})`;
  }
}

type StorageCtor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): NumericArray;
  new (length: number): NumericArray;
  readonly BYTES_PER_ELEMENT: number;
};

export function storageConstructor(dtype: DType): StorageCtor {
  switch (dtype) {
    case 'float32':
      return Float32Array;
    case 'float64':
      return Float64Array;
    case 'float16':
    case 'bfloat16':
    case 'uint16':
      return Uint16Array;
    case 'int8':
      return Int8Array;
    case 'int16':
      return Int16Array;
    case 'int32':
      return Int32Array;
    case 'int64':
      return BigInt64Array;
    case 'uint32':
      return Uint32Array;
    case 'uint64':
      return BigUint64Array;
    case 'complex64':
      return Float32Array;
    case 'complex128':
      return Float64Array;
    case 'string':
      throw new RangeError('string tensors have no numeric storage');
    default:
      // bool, uint8 and the 8-bit float storage types.
      if (dtypeSize(dtype) === 1) return Uint8Array;
      throw new RangeError(`dtype ${dtype} has no numeric storage`);
  }
}

export function allocate(dtype: DType, count: number): NumericArray {
  const Ctor = storageConstructor(dtype);
  const perElement = dtype === 'complex64' || dtype === 'complex128' ? 2 : 1;
  return new Ctor(count * perElement);
}
