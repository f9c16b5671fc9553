import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import * as os from 'node:os'; // lazy in the CLI bundle
import { join } from 'node:path';
import { UsageError } from '../core/errors.js';
import { formatByName } from '../formats/registry.js';

/**
 * `-` as a model path, the Unix way: standard input for a model to read, standard output for one
 * to write. Readers need a file (they seek, and large ones are read lazily by range), and writers
 * build their output aside before committing it, so standard input is first copied to a private
 * temporary file and an output is written to one and then copied to standard output. Only
 * single-file formats can travel this way: a SavedModel or TF.js model is a directory.
 */
export const STDIO = '-';

/**
 * What a `-` argument becomes before yargs parses the command line: yargs re-parses positionals
 * as `--name VALUE` and so reads a lone `-` as an empty string. No real path starts with NUL.
 */
export const STDIO_ARG = '\u0000-';

/** The command-line arguments with each lone `-` marked as standard input/output. */
export function markStdio(args: readonly string[]): string[] {
  return args.map((a) => (a === STDIO ? STDIO_ARG : a));
}

/** A path as the user wrote it: `-` for standard input/output. */
export function shownPath(path: string): string {
  return path === STDIO_ARG ? STDIO : path;
}

/** The formats that are one file, and so can come from standard input or go to standard output. */
const SINGLE_FILE = ['safetensors', 'pytorch', 'pt2', 'onnx', 'graphdef', 'tflite'];

let scratch: string | undefined;

/** A private temporary directory, removed when the process exits (lazy readers may hold files open until then). */
function scratchDir(): string {
  if (scratch === undefined) {
    const dir = mkdtempSync(join(os.tmpdir(), 'modelbridge-stdio-'));
    scratch = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return scratch;
}

/** Sleeps briefly: a non-blocking descriptor (a pipe Node made non-blocking) said EAGAIN. */
function pause(): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
}

function isAgain(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'EAGAIN';
}

let stdinCopy: string | undefined;

/** The model path to read: `path` itself, or for `-` a temporary copy of standard input (made once). */
export function modelPath(path: string): string {
  if (path !== STDIO_ARG) return path;
  if (stdinCopy !== undefined) return stdinCopy;
  if (process.stdin.isTTY) throw new UsageError('the model is - (standard input), but standard input is a terminal: pipe a model file into it');
  const copy = join(scratchDir(), 'stdin');
  const fd = openSync(copy, 'w', 0o600);
  const chunk = Buffer.allocUnsafe(1 << 20);
  let total = 0;
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(0, chunk, 0, chunk.byteLength, null);
      } catch (error) {
        if (isAgain(error)) {
          pause();
          continue;
        }
        if ((error as NodeJS.ErrnoException).code === 'EOF') break;
        throw error;
      }
      if (n === 0) break;
      writeAll(fd, chunk.subarray(0, n));
      total += n;
    }
  } finally {
    closeSync(fd);
  }
  if (total === 0) throw new UsageError('the model is - (standard input), but standard input was empty');
  stdinCopy = copy;
  return copy;
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.byteLength) {
    try {
      at += writeSync(fd, bytes, at, bytes.byteLength - at);
    } catch (error) {
      if (!isAgain(error)) throw error;
      pause();
    }
  }
}

/**
 * Where to write an output given as `path`: itself, or for `-` a file in the scratch directory
 * (named with the format's extension), which `finishStdout` then copies to standard output.
 * Writing to standard output needs the format (`--to`), which must be a single-file one.
 */
export function outputPath(path: string, to: string | undefined, options: { shardBytes?: number | undefined; externalData?: boolean | number | undefined }): string {
  if (path !== STDIO_ARG) return path;
  if (to === undefined) throw new UsageError(`the output is - (standard output): give its format with --to (one of ${SINGLE_FILE.join(', ')})`);
  const format = formatByName(to);
  if (!SINGLE_FILE.includes(format.name)) throw new UsageError(`a ${format.name} model is a directory of files and cannot go to standard output: give a directory instead of -`);
  if (options.shardBytes !== undefined) throw new UsageError('--shard-size writes several files, which cannot go to standard output: give a directory instead of -');
  if (options.externalData !== undefined && options.externalData !== false) throw new UsageError('--external-data writes a second file, which cannot go to standard output: give a file path instead of -');
  return join(scratchDir(), `output${format.extensions[0] ?? ''}`);
}

/** Copies a written output file to standard output. */
export function finishStdout(file: string): void {
  const fd = openSync(file, 'r');
  const chunk = Buffer.allocUnsafe(1 << 20);
  try {
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.byteLength, null);
      if (n === 0) break;
      writeAll(1, chunk.subarray(0, n));
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EPIPE') throw new UsageError('standard output was closed before the whole model was written to it');
    throw error;
  } finally {
    closeSync(fd);
  }
}
