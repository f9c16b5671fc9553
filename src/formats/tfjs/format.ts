import { closeSync, mkdirSync, openSync, readSync, statSync } from '../../core/vfs.js';
import { basename, dirname, join } from 'node:path';
import * as atomic from '../../core/atomic.js'; // lazy in the CLI bundle
import { UsageError } from '../../core/errors.js';
import type { Model } from '../../core/model.js';
import type { FormatHandler, Probe } from '../format.js';
import * as reader from './reader.js'; // lazy in the CLI bundle
import * as writer from './writer.js'; // lazy in the CLI bundle
import type { TfjsWriteOptions } from './writer.js';
import * as weights from './weights.js'; // lazy in the CLI bundle

/**
 * TF.js graph models: model.json plus binary weight shards beside it.
 *
 * Reading takes model.json or the directory holding it. Writing to a path ending in .json writes
 * that file and its shards in the same directory; any other path is a directory (made if needed)
 * that receives model.json and group1-shard*.bin, as tensorflowjs_converter lays it out. Shards
 * of a JSON file not called model.json are prefixed with its stem (or-gate.json ->
 * or-gate.group1-shard1of1.bin), so two models written into one directory keep their own shards.
 */
export const tfjsFormat: FormatHandler = {
  name: 'tfjs',
  title: 'TensorFlow.js graph model (model.json + weight shards)',
  extensions: ['.json'],
  detect: looksLikeGraphModel,
  read(path, options): Model {
    return reader.readGraphModel(path, options);
  },
  write(model, path, options) {
    if (options.quantize === 'dynamic-int8') throw new UsageError('--quantize dynamic-int8 applies to tflite output only; TF.js takes float16, uint8 or uint16');
    return writeGraphModel(model, path, { ...options, quantize: options.quantize });
  },
};

/**
 * Writes the shards, streaming the weights into them, and model.json last, as one atomic set: on
 * any failure none of the files is left, and the JSON never names missing shards.
 */
export function writeGraphModel(model: Model, path: string, options: TfjsWriteOptions = {}): string[] {
  const isJson = path.toLowerCase().endsWith('.json');
  const dir = isJson ? dirname(path) : path;
  const jsonName = isJson ? basename(path) : 'model.json';
  const prefix = jsonName === 'model.json' ? '' : `${jsonName.slice(0, -'.json'.length)}.`;
  const files = writer.graphModelFiles(model, options, prefix);
  mkdirSync(dir, { recursive: true });
  const written = files.shards.map((s) => join(dir, s.name));
  const jsonPath = join(dir, jsonName);
  atomic.writeFilesAtomic((set) => {
    weights.writeShards(files.weights, files.shards.map((s) => s.byteLength), (i) => {
      const shard = set.add(written[i]!);
      return (bytes) => shard.append(bytes);
    });
    set.add(jsonPath).append(new TextEncoder().encode(files.modelJson));
  });
  return [jsonPath, ...written];
}

/** Text a graph model's JSON must contain: both top-level keys every model.json has. */
const KEYS = ['"modelTopology"', '"weightsManifest"'];
/** model.json is read whole to detect it; beyond this it is no model.json. */
const MAX_DETECT_BYTES = 1 << 28;

/** A .json file (or a directory's model.json) that names both modelTopology and weightsManifest. */
export function looksLikeGraphModel(probe: Probe): boolean {
  if (probe.isDirectory) return probe.entries.includes('model.json') && jsonHasKeys(join(probe.path, 'model.json'));
  if (!probe.path.toLowerCase().endsWith('.json')) return false;
  const first = new TextDecoder().decode(probe.head).trimStart();
  return first.startsWith('{') && jsonHasKeys(probe.path);
}

function jsonHasKeys(path: string): boolean {
  try {
    const size = statSync(path).size;
    if (size > MAX_DETECT_BYTES) return false;
    const bytes = new Uint8Array(size);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, bytes, 0, size, 0);
    } finally {
      closeSync(fd);
    }
    const text = new TextDecoder().decode(bytes);
    return KEYS.every((k) => text.includes(k));
  } catch {
    return false;
  }
}
