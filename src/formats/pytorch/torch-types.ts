import type { DType } from '../../core/dtypes.js';
import { PyHost } from './pickle-values.js';

/**
 * PyTorch's dtypes and storage classes as a checkpoint names them, and the objects the unpickler
 * builds for storages and tensors. Nothing here touches bytes: reader.ts materialises tensors once
 * the whole pickle is read and every storage is known.
 */

export interface TorchDtype {
  /** The name after "torch." (torch.float32 pickles as GLOBAL torch float32). */
  readonly name: string;
  /** Bytes per element as torch counts them (float4_e2m1fn_x2: one byte holds two values). */
  readonly size: number;
  /** Ours, when modelbridge can hold it. */
  readonly dtype?: DType;
}

const dtype = (name: string, size: number, ours?: DType): TorchDtype => (ours ? { name, size, dtype: ours } : { name, size });

/** Every dtype torch's weights_only unpickler allowlists, by name. */
export const TORCH_DTYPES: ReadonlyMap<string, TorchDtype> = new Map(
  [
    dtype('float32', 4, 'float32'),
    dtype('float64', 8, 'float64'),
    dtype('float16', 2, 'float16'),
    dtype('bfloat16', 2, 'bfloat16'),
    dtype('int8', 1, 'int8'),
    dtype('int16', 2, 'int16'),
    dtype('int32', 4, 'int32'),
    dtype('int64', 8, 'int64'),
    dtype('uint8', 1, 'uint8'),
    dtype('uint16', 2, 'uint16'),
    dtype('uint32', 4, 'uint32'),
    dtype('uint64', 8, 'uint64'),
    dtype('bool', 1, 'bool'),
    dtype('complex64', 8, 'complex64'),
    dtype('complex128', 16, 'complex128'),
    dtype('float8_e4m3fn', 1, 'float8_e4m3fn'),
    dtype('float8_e5m2', 1, 'float8_e5m2'),
    dtype('float8_e4m3fnuz', 1, 'float8_e4m3fnuz'),
    dtype('float8_e5m2fnuz', 1, 'float8_e5m2fnuz'),
    dtype('float8_e8m0fnu', 1, 'float8_e8m0fnu'),
    dtype('float4_e2m1fn_x2', 1, 'float4_e2m1fn_x2'),
    // Allowed in checkpoints but not representable here: refused when a tensor uses them.
    dtype('complex32', 4),
    dtype('qint8', 1),
    dtype('qint32', 4),
    dtype('quint8', 1),
    dtype('quint4x2', 1),
    dtype('quint2x4', 1),
    dtype('bits8', 1),
    dtype('bits16', 2),
    dtype('bits1x8', 1),
    dtype('bits2x4', 1),
    dtype('bits4x2', 1),
    ...[1, 2, 3, 4, 5, 6, 7].flatMap((n) => [dtype(`uint${n}`, 1), dtype(`int${n}`, 1)]),
  ].map((d) => [d.name, d] as const),
);

/** The legacy typed-storage classes (torch/storage.py _dtype_to_storage_type_map). */
export const STORAGE_CLASSES: ReadonlyMap<string, string> = new Map([
  ['DoubleStorage', 'float64'],
  ['FloatStorage', 'float32'],
  ['HalfStorage', 'float16'],
  ['LongStorage', 'int64'],
  ['IntStorage', 'int32'],
  ['ShortStorage', 'int16'],
  ['CharStorage', 'int8'],
  ['ByteStorage', 'uint8'],
  ['BoolStorage', 'bool'],
  ['BFloat16Storage', 'bfloat16'],
  ['ComplexDoubleStorage', 'complex128'],
  ['ComplexFloatStorage', 'complex64'],
  ['QInt8Storage', 'qint8'],
  ['QInt32Storage', 'qint32'],
  ['QUInt8Storage', 'quint8'],
  ['QUInt4x2Storage', 'quint4x2'],
  ['QUInt2x4Storage', 'quint2x4'],
]);

/** How torch.save writes each of our dtypes: a legacy class, or UntypedStorage + _rebuild_tensor_v3. */
export function torchSaveForm(ours: DType): { readonly dtype: TorchDtype; readonly storageClass?: string } | undefined {
  for (const d of TORCH_DTYPES.values()) {
    if (d.dtype !== ours) continue;
    for (const [cls, name] of STORAGE_CLASSES) if (name === d.name) return { dtype: d, storageClass: cls };
    return { dtype: d };
  }
  return undefined;
}

export class DtypeValue extends PyHost {
  constructor(readonly dtype: TorchDtype) {
    super();
  }
  describe(): string {
    return `torch.${this.dtype.name}`;
  }
}

/** A storage class: typed (FloatStorage) or untyped (its elements are bytes). */
export class StorageClassValue extends PyHost {
  constructor(
    readonly name: string,
    readonly dtype: TorchDtype | undefined,
  ) {
    super();
  }
  describe(): string {
    return `torch.${this.name}`;
  }
}

/** One storage a persistent id names: `nbytes` bytes of record `key`, or a view into another. */
export class StorageRef extends PyHost {
  constructor(
    readonly key: string,
    /** The storage's element type (uint8 for UntypedStorage). */
    readonly dtype: TorchDtype,
    readonly nbytes: number,
    /** Legacy format only: this storage is bytes [byteOffset, byteOffset + nbytes) of storage `key`. */
    readonly byteOffset = 0,
  ) {
    super();
  }
  describe(): string {
    return `storage ${JSON.stringify(this.key)}`;
  }
}

/** A tensor as torch rebuilds it: a strided view into a storage, offsets and strides in elements. */
export class TensorRef extends PyHost {
  constructor(
    readonly storage: StorageRef,
    readonly dtype: TorchDtype,
    readonly offset: number,
    readonly size: readonly number[],
    readonly stride: readonly number[],
    readonly requiresGrad: boolean,
    readonly parameter: boolean,
    /** torch's lazy conjugate / negative bits: the stored values are to be conjugated / negated. */
    readonly flags: { readonly conj: boolean; readonly neg: boolean } = { conj: false, neg: false },
  ) {
    super();
  }
  describe(): string {
    return this.parameter ? 'torch.nn.Parameter' : 'torch.Tensor';
  }
  asParameter(requiresGrad: boolean): TensorRef {
    return new TensorRef(this.storage, this.dtype, this.offset, this.size, this.stride, requiresGrad, true, this.flags);
  }
}
