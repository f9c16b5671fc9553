import { closeSync, openSync, readdirSync, readSync, statSync } from '../core/vfs.js';
import * as levenshtein from 'fastest-levenshtein'; // lazy in the CLI bundle
import { FormatError, UsageError } from '../core/errors.js';
import { assertModelPath } from '../core/files.js';
import type { FormatHandler, Probe } from './format.js';
import { graphdefFormat } from './graphdef/format.js';
import { h5Format, kerasFormat } from './keras/format.js';
import { onnxFormat } from './onnx/format.js';
import { pt2Format } from './pt2/format.js';
import { pytorchFormat } from './pytorch/format.js';
import { safetensorsFormat } from './safetensors/format.js';
import { savedmodelFormat } from './savedmodel/format.js';
import { tfjsFormat } from './tfjs/format.js';
import { tfliteFormat } from './tflite/format.js';

/**
 * Every format modelbridge reads and writes, in detection order. Adding a format is one folder
 * under src/formats and one line here.
 */
// SavedModel before ONNX: a saved_model.pb opens like a ModelProto (field 1, a varint), and only
// SavedModel detection knows the file name. pt2 before pytorch: a torch.export archive's first
// record (<folder>/data/weights/...) looks like a torch.save archive's data/ records. Keras right
// after PyTorch, before the protobuf guesses: both are zips (PyTorch claims only its own record
// layout), and only Keras's detection looks for config.json.
export const FORMATS: readonly FormatHandler[] = [safetensorsFormat, pt2Format, pytorchFormat, kerasFormat, savedmodelFormat, onnxFormat, graphdefFormat, tfjsFormat, tfliteFormat, h5Format];


export function formatNames(): string[] {
  return FORMATS.map((f) => f.name);
}

/** The other names people give the formats. Names and aliases are matched case-insensitively. */
export const FORMAT_ALIASES: Readonly<Record<string, string>> = {
  st: 'safetensors',
  pt: 'pytorch',
  pth: 'pytorch',
  torch: 'pytorch',
  tf: 'savedmodel',
  saved_model: 'savedmodel',
  'saved-model': 'savedmodel',
  pb: 'graphdef',
  tensorflowjs: 'tfjs',
  'tf.js': 'tfjs',
  lite: 'tflite',
  litert: 'tflite',
};

/** A format by its name or an alias, any case; a near miss is answered with "did you mean". */
export function formatByName(name: string): FormatHandler {
  const key = name.trim().toLowerCase();
  const canonical = Object.prototype.hasOwnProperty.call(FORMAT_ALIASES, key) ? FORMAT_ALIASES[key]! : key;
  const format = FORMATS.find((f) => f.name === canonical);
  if (format) return format;
  const known = [...formatNames(), ...Object.keys(FORMAT_ALIASES)];
  const near = levenshtein.closest(key, known);
  // Two edits at most, and fewer than half the word: "onxx" is onnx, "tflt" is tflite.
  const hint = key !== '' && levenshtein.distance(key, near) <= Math.min(2, Math.floor(near.length / 2)) ? `did you mean ${FORMAT_ALIASES[near] ?? near}? ` : '';
  throw new UsageError(`unknown format ${JSON.stringify(name)} (${hint}supported: ${formatNames().join(', ')}; also ${Object.keys(FORMAT_ALIASES).join(', ')})`);
}

export function probe(path: string): Probe {
  assertModelPath(path);
  let stat;
  try {
    stat = statSync(path);
  } catch {
    throw new FormatError(path, 'path', 'an existing file or directory');
  }
  if (stat.isDirectory()) return { path, isDirectory: true, head: new Uint8Array(0), size: 0, entries: readdirSync(path) };
  const head = new Uint8Array(Math.min(64, stat.size));
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, head.byteLength, 0);
  } finally {
    closeSync(fd);
  }
  return { path, isDirectory: false, head, size: stat.size, entries: [] };
}

/** The format of an existing model: from its bytes or layout first, its extension last. */
export function detectFormat(path: string): FormatHandler {
  const p = probe(path);
  const byContent = FORMATS.find((f) => f.detect(p));
  if (byContent) return byContent;
  throw new FormatError(path, p.isDirectory ? 'directory layout' : 'first bytes', `a model in one of: ${formatNames().join(', ')} (give --from to force a format)`);
}

/** The format to write, from the output path's extension. */
export function formatForOutput(path: string): FormatHandler {
  const lower = path.toLowerCase();
  const match = FORMATS.find((f) => f.extensions.some((ext) => lower.endsWith(ext)));
  if (!match) throw new UsageError(`cannot tell the output format from ${path}: give --to (one of ${formatNames().join(', ')})`);
  return match;
}
