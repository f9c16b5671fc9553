/** The HDF5 trees the Keras reader and writer work on (h5.ts), the same on every platform. */

/** An attribute's value: text, numbers, or lists of either (Keras stores names as string arrays). */
export type H5Value = string | number | bigint | boolean | null | readonly H5Value[];

export interface H5Dataset {
  readonly kind: 'dataset';
  /** numpy-style type: f4, f8, f2, i1..i8, u1..u8, b1; 'other' for compound, string and the rest. */
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Little-endian element bytes, row-major (absent for an 'other' type). */
  readonly data?: Uint8Array;
  readonly attrs: Readonly<Record<string, H5Value>>;
}

export interface H5Group {
  readonly kind: 'group';
  readonly attrs: Readonly<Record<string, H5Value>>;
  /** Members in the file's (alphabetical) order. */
  readonly children: Readonly<Record<string, H5Group | H5Dataset>>;
}

/** What writeH5 lays out: groups with attributes, datasets of little-endian bytes. */
export interface H5WriteGroup {
  readonly attrs?: ReadonlyArray<readonly [string, string | readonly string[]]>;
  /** In creation order (Keras creates vars 0, 1, ... in order). */
  readonly children: ReadonlyArray<readonly [string, H5WriteGroup | H5WriteDataset]>;
}

export interface H5WriteDataset {
  readonly dtype: 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'int8' | 'int16' | 'uint16' | 'uint32';
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

/** Raised when HDF5 cannot read the bytes; `limit` is set when the datasets exceed the given byte limit. */
export class H5ReadError extends Error {
  constructor(
    message: string,
    readonly limit?: { path: string; bytes: number },
  ) {
    super(message);
  }
}

/** The error for h5wasm's failure message (`LIMIT <path> <bytes>` when the datasets pass the limit). */
export function h5ReadError(message: string): H5ReadError {
  const m = /^LIMIT (\S*) (\d+)$/.exec(message);
  return new H5ReadError(message, m ? { path: m[1]!, bytes: Number(m[2]) } : undefined);
}
