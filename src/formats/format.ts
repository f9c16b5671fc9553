import type { Model } from '../core/model.js';
import type { ModuleSpec } from '../module/spec.js';

/** What detection sees of a path: enough to recognise a format without reading the weights. */
export interface Probe {
  readonly path: string;
  readonly isDirectory: boolean;
  /** Up to the first 64 bytes of a file (empty for a directory). */
  readonly head: Uint8Array;
  readonly size: number;
  /** Entry names when the path is a directory. */
  readonly entries: readonly string[];
}

export interface ReadOptions {
  /** Architecture for a bare state dict (--module). */
  readonly module?: ModuleSpec;
  /** Which entry of a checkpoint holding several objects is the state dict (--key; PyTorch). */
  readonly key?: string;
  /** Which signature to read, for formats that hold several (SavedModel; default serving_default). */
  readonly signature?: string;
}

export interface WriteOptions {
  /** Maximum bytes per shard, for formats that shard (safetensors, TF.js). */
  readonly shardBytes?: number;
  /** ai.onnx opset to write (ONNX; default 17). */
  readonly opset?: number;
  /** Initializers in a side file: true, or the size threshold in bytes (ONNX). */
  readonly externalData?: boolean | number;
  /**
   * Store float weights quantized: as tensorflowjs_converter --quantize_* does (TF.js: float16,
   * uint8, uint16), or as TFLiteConverter's post-training float16 and dynamic-range int8
   * quantization do (TFLite: float16, dynamic-int8).
   */
  readonly quantize?: 'float16' | 'uint8' | 'uint16' | 'dynamic-int8';
}

/** One integrity finding of a format's own checks (checksums), for `validate`. */
export interface IntegrityCheck {
  readonly name: string;
  readonly status: 'pass' | 'warn' | 'fail' | 'skip';
  readonly message: string;
}

/**
 * A table of what a format stores beyond the Model (a SavedModel's tag sets and every signature,
 * its checkpoint's variables), for `inspect`. Read from headers, never from weight data.
 */
export interface DetailTable {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | number)[])[];
}

/**
 * One file format: how to recognise it, read it into a Model and write a Model out. Conversion
 * is always read -> Model -> write, so each format added here converts to and from every other.
 */
export interface FormatHandler {
  readonly name: string;
  readonly title: string;
  readonly extensions: readonly string[];
  detect(probe: Probe): boolean;
  /** The format is only read (legacy Keras HDF5): `write` refuses with a UsageError, and `demo` skips it. */
  readonly readOnly?: boolean;
  read(path: string, options: ReadOptions): Model;
  /** Writes atomically and returns the files written. */
  write(model: Model, path: string, options: WriteOptions): string[];
  /** Verifies the integrity data the format carries (CRCs, checksums), beyond parsing. */
  validate?(path: string): IntegrityCheck[];
  /** Format-specific details for `inspect` (headers only). */
  describe?(path: string): DetailTable[];
}
