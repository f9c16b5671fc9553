import { readFileSync } from 'node:fs';
import { FormatError, UsageError } from '../../core/errors.js';
import type { FormatHandler, Probe } from '../format.js';
import { readOnnxModel } from './reader.js';

/**
 * Whether the first bytes look like a ModelProto: ONNX writers emit ir_version (field 1, varint)
 * first, then another ModelProto field. Detection by extension covers the rest.
 */
export function looksLikeOnnx(head: Uint8Array): boolean {
  // Keys of ModelProto fields 2-8: producer_name .. opset_import, as written after ir_version.
  const next = new Set([0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42]);
  return head.length >= 3 && head[0] === 0x08 && head[1]! >= 1 && head[1]! <= 20 && next.has(head[2]!);
}

/**
 * ONNX as a FormatHandler, read-only for now: reading gives the graph and the initializers as
 * weights. Not yet in the registry (src/formats/registry.ts) until writing exists.
 */
export const onnxFormat: FormatHandler = {
  name: 'onnx',
  title: 'ONNX model (ModelProto, external data beside it)',
  extensions: ['.onnx'],
  detect(probe: Probe): boolean {
    return !probe.isDirectory && (probe.path.toLowerCase().endsWith('.onnx') || looksLikeOnnx(probe.head));
  },
  read(path) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch {
      throw new FormatError(path, 'path', 'a readable file');
    }
    return readOnnxModel(bytes, path);
  },
  write() {
    throw new UsageError('writing ONNX is not supported yet');
  },
};
