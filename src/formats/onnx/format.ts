import type { FormatHandler, Probe, WriteOptions } from '../format.js';
import * as file from './file.js'; // lazy in the CLI bundle
import * as writer from './writer.js'; // lazy in the CLI bundle
import type { OnnxWriteOptions } from './writer.js';

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
 * ONNX as a FormatHandler. Reading gives the graph, the initializers as weights and, for files
 * modelbridge wrote from a torch.nn-shaped model, the module spec back (metadata_props); external
 * data is read from beside the model, never from outside its folder, and the inline weights of a
 * large file are left in it until used (readOnnxFile). Writing converts the graph
 * to the requested opset (WriteOptions may carry the ONNX options `opset` and `externalData`;
 * default opset 17, tensors inline unless the model passes 2 GB).
 */
export const onnxFormat: FormatHandler = {
  name: 'onnx',
  title: 'ONNX model (ModelProto, external data beside it)',
  extensions: ['.onnx'],
  detect(probe: Probe): boolean {
    return !probe.isDirectory && (probe.path.toLowerCase().endsWith('.onnx') || looksLikeOnnx(probe.head));
  },
  read(path, options) {
    return file.readOnnxFile(path, { module: options.module });
  },
  write(model, path, options: WriteOptions & OnnxWriteOptions) {
    return writer.writeOnnxModel(model, path, { opset: options.opset, externalData: options.externalData }).files;
  },
};
