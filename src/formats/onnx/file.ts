import { closeSync, fstatSync, openSync, readFileSync, statSync } from '../../core/vfs.js';
import { FormatError } from '../../core/errors.js';
import type { Model } from '../../core/model.js';
import { modelFromProto, readOnnxModel, type OnnxReadOptions } from './reader.js';
import { decodeModelProto } from './schema.js';
import { readSkeleton } from './skeleton.js';
import { asDecoderInput } from '../../core/bytes.js';

export interface OnnxFileOptions extends OnnxReadOptions {
  /**
   * Files this size and larger are read as a skeleton: initializer raw_data stays in the file and
   * is read when a writer or the runtime asks. Smaller files are read whole. Default 64 MiB.
   */
  readonly lazyThreshold?: number;
  /** In a skeleton read, raw_data payloads this size and larger stay in the file. Default 4 KiB. */
  readonly lazyRawBytes?: number;
}

/** Files this size and larger are read lazily unless told otherwise (as safetensors does). */
export const ONNX_LAZY_THRESHOLD = 64 * 1024 * 1024;
/** Below this a file range costs more (an open and a read per use) than the bytes it saves. */
export const ONNX_LAZY_RAW_BYTES = 4096;

/** Reads a .onnx file into a Model; a large one without reading its inline weights. */
export function readOnnxFile(path: string, options: OnnxFileOptions = {}): Model {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new FormatError(path, 'path', 'a readable file');
  }
  if (size < (options.lazyThreshold ?? ONNX_LAZY_THRESHOLD)) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch {
      throw new FormatError(path, 'path', 'a readable file');
    }
    return readOnnxModel(bytes, path, options);
  }
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    throw new FormatError(path, 'path', 'a readable file');
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new FormatError(path, 'path', 'a readable file');
    const skeleton = readSkeleton(fd, stat.size, path, options.lazyRawBytes ?? ONNX_LAZY_RAW_BYTES);
    // A Buffer, as readFileSync gives: protobufjs then decodes strings and bytes the same way.
    const bytes = asDecoderInput(skeleton.bytes);
    return modelFromProto(decodeModelProto(bytes, path), path, options, skeleton.initializerData);
  } finally {
    closeSync(fd);
  }
}
