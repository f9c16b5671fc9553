import { mkdirSync, statSync } from '../core/vfs.js';
import { dirname, extname, resolve } from 'node:path';
import type { Model } from '../core/model.js';
import { detectFormat, formatByName, formatForOutput } from '../formats/registry.js';
import { checkReadOptions, checkWriteOptions } from '../formats/options.js';
import type { ReadOptions, WriteOptions } from '../formats/format.js';
import { assertWritable, removeWritten, writeOutputStaged } from '../core/atomic.js';
import { UsageError } from '../core/errors.js';
import { assertModelPath } from '../core/files.js';
import { withExpansionScope } from '../core/budget.js';
import { FormatError } from '../core/errors.js';
import { orderGraph } from '../core/graph-order.js';
import { typeFault } from '../core/graph-types.js';
import { progressPhase } from '../core/progress.js';
import * as verify from './verify.js'; // lazy in the CLI bundle
import type { VerifyReport } from './verify.js';

export interface LoadOptions extends ReadOptions {
  /** Format name; detected from the file when omitted. */
  readonly format?: string;
}

/** Reads any supported model file or directory into a Model. */
export function loadModel(path: string, options: LoadOptions = {}): Model {
  assertModelPath(path);
  return withExpansionScope(() => {
    const format = options.format ? formatByName(options.format) : detectFormat(path);
    checkReadOptions(format.name, options);
    const model = format.read(path, options);
    // Refused at read time, whatever the format: a cycle, a dangling input, a value written twice.
    if (model.graph) {
      const ordered = orderGraph(model.graph);
      if ('fault' in ordered) throw new FormatError(path, `node ${ordered.fault.node} (${ordered.fault.op})`, `a well-formed graph, but it ${ordered.fault.problem}`);
      // And two values of different element types where the op takes one (a float32 + an int64).
      const mismatch = typeFault(model.graph, ordered.nodes);
      if (mismatch) throw new FormatError(path, `node ${mismatch.node} (${mismatch.op})`, mismatch.problem);
    }
    return model;
  });
}

export interface SaveOptions extends WriteOptions {
  /** Format name; taken from the output path's extension when omitted. */
  readonly format?: string;
  /** Replace an existing output. */
  readonly force?: boolean;
}

/** Writes a Model atomically; returns the files written. */
export function saveModel(model: Model, path: string, options: SaveOptions = {}): string[] {
  const format = options.format ? formatByName(options.format) : formatForOutput(path);
  checkWriteOptions(format.name, options);
  assertWritable(path, options.force ?? false);
  // Like the directory formats (SavedModel, TF.js) do for themselves: `convert a.pt out/b.onnx` makes out/.
  mkdirSync(dirname(resolve(path)), { recursive: true });
  // Built aside and moved into place complete: a kill, a full disk or a failing writer leaves the
  // target as it was. Writers tell a directory output by the path's trailing slash or an existing
  // directory, so the staged path keeps both.
  const intoDirectory = /[\\/]$/.test(path) || isDirectory(path);
  return writeOutputStaged(path, (staged) => {
    if (intoDirectory) mkdirSync(staged);
    return format.write(model, intoDirectory ? `${staged}/` : staged, options);
  });
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export interface ConvertOptions {
  readonly from?: string;
  readonly key?: string;
  readonly signature?: string;
  readonly to?: string;
  readonly module?: LoadOptions['module'];
  readonly force?: boolean;
  readonly shardBytes?: number;
  readonly opset?: WriteOptions['opset'];
  readonly externalData?: WriteOptions['externalData'];
  readonly quantize?: WriteOptions['quantize'];
  /** Read the output back and compare it with what was written (the CLI does by default). */
  readonly verify?: boolean;
}

/** reader -> Model -> writer. Refuses to write over its own input. */
export interface ConvertResult {
  readonly model: Model;
  readonly files: string[];
  /** The format written. */
  readonly format: string;
  /** What verification compared (with `verify`). */
  readonly verification?: VerifyReport;
  /** Wall time of each phase, seconds. */
  readonly seconds: { readonly read: number; readonly write: number; readonly verify: number };
}

export function convertModel(input: string, output: string, options: ConvertOptions = {}): ConvertResult {
  if (sameFile(input, output)) throw new UsageError(`output ${output} is the input file; choose another path`);
  const t0 = performance.now();
  const model = loadModel(input, { format: options.from, module: options.module, key: options.key, signature: options.signature });
  const t1 = performance.now();
  let bytes = 0;
  for (const t of model.weights.values()) bytes += t.byteLength;
  progressPhase('write', bytes);
  // An output path with no extension at all (a directory for shards) keeps the input's format.
  const to = options.to ?? (extname(output) === '' ? model.format : undefined);
  const files = saveModel(model, output, {
    format: to,
    force: options.force,
    shardBytes: options.shardBytes,
    opset: options.opset,
    externalData: options.externalData,
    quantize: options.quantize,
  });
  const t2 = performance.now();
  const format = to ?? formatForOutput(output).name;
  const verification = options.verify ? verify.verifyConversion(model, readBack(output, format, files), files, { output, ...(options.quantize ? { quantize: options.quantize } : {}) }) : undefined;
  const t3 = performance.now();
  return { model, files, format, ...(verification ? { verification } : {}), seconds: { read: verify.roundMs(t1 - t0), write: verify.roundMs(t2 - t1), verify: verify.roundMs(t3 - t2) } };
}

/**
 * The written output read back for verification. A file modelbridge cannot read back is a wrong
 * file: it is removed like one whose values differ, and the failure says what the reader said.
 */
function readBack(output: string, format: string, files: readonly string[]): Model {
  try {
    return loadModel(output, { format });
  } catch (error) {
    if (!(error instanceof FormatError || error instanceof UsageError)) throw error;
    removeWritten(output, files);
    throw new UsageError(`verification failed, output removed: the written ${format} does not read back: ${error.message}`);
  }
}

function sameFile(a: string, b: string): boolean {
  try {
    const sa = statSync(a);
    const sb = statSync(b);
    return sa.ino === sb.ino && sa.dev === sb.dev;
  } catch {
    return false;
  }
}
