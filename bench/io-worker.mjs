// One measurement per process, so each gets its own peak RSS, for the format sections (PyTorch,
// ONNX, SavedModel, TF.js). Prints one JSON line {"mode", "seconds", "bytes", "maxRSS", ...}:
// bytes is the size of the source (a file, or every file under a directory). Modes:
//   copy <src> <dst> [<src> <dst>...]   plain copy of files or whole directories (8 MiB buffer,
//                                       every output fsync'd): the physical baseline of a conversion
//   read-plain <path>...                plain sequential read of every byte of the files/directories
//   convert <src> <dst> [options]       modelbridge convertModel (options: ConvertOptions as JSON)
//   sum <path> [options]                modelbridge loadModel (options: LoadOptions as JSON), then
//                                       streams every weight's bytes and sums them as 32-bit words
// The sums are comparable across formats: the Python scripts that make the models print the same
// sum of the tensors they wrote (bench/py/common.py word_sum).
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { convertModel, loadModel } from '../dist/index.js';
import { sumWords } from './words.mjs';

const [mode, ...args] = process.argv.slice(2);
const CHUNK = 8 << 20;
const t0 = process.hrtime.bigint();
let extra = {};

/** Total bytes of a file, or of every file under a directory. */
function sizeOf(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((n, name) => n + sizeOf(join(path, name)), 0);
}

function copyFile(src, dst, buffer) {
  const from = openSync(src, 'r');
  const to = openSync(dst, 'w');
  for (let at = 0; ; ) {
    const got = readSync(from, buffer, 0, CHUNK, at);
    if (got === 0) break;
    for (let done = 0; done < got; ) done += writeSync(to, buffer, done, got - done);
    at += got;
  }
  fsyncSync(to);
  closeSync(from);
  closeSync(to);
}

function copy(src, dst, buffer) {
  if (!statSync(src).isDirectory()) return copyFile(src, dst, buffer);
  mkdirSync(dst, { recursive: true });
  for (const name of readdirSync(src)) copy(join(src, name), join(dst, name), buffer);
}

function readPlain(path, buffer) {
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path)) readPlain(join(path, name), buffer);
    return;
  }
  const fd = openSync(path, 'r');
  let sum = 0;
  for (let at = 0; ; ) {
    const got = readSync(fd, buffer, 0, CHUNK, at);
    if (got === 0) break;
    sum = (sum + sumWords(buffer.subarray(0, got & ~3))) | 0;
    at += got;
  }
  closeSync(fd);
  extra.plainSum = ((extra.plainSum ?? 0) + sum) | 0;
}

let sources = [];
switch (mode) {
  case 'copy': {
    const buffer = new Uint8Array(CHUNK);
    for (let i = 0; i < args.length; i += 2) {
      rmSync(args[i + 1], { recursive: true, force: true });
      copy(args[i], args[i + 1], buffer);
      sources.push(args[i]);
    }
    break;
  }
  case 'read-plain': {
    const buffer = new Uint8Array(CHUNK);
    for (const path of args) readPlain(path, buffer);
    sources = args;
    break;
  }
  case 'convert': {
    const [src, dst, options] = args;
    rmSync(dst, { recursive: true, force: true });
    const { files } = convertModel(src, dst, options ? JSON.parse(options) : {});
    extra = { files: files.length };
    sources = [src];
    break;
  }
  case 'sum': {
    const [src, options] = args;
    const model = loadModel(src, options ? JSON.parse(options) : {});
    let sum = 0;
    let tensors = 0;
    for (const t of new Set(model.weights.values())) {
      tensors++;
      for (const chunk of t.source.chunks(CHUNK)) sum = (sum + sumWords(chunk)) | 0;
    }
    extra = { sum, tensors };
    sources = [src];
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}

const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const bytes = sources.reduce((n, p) => n + sizeOf(p), 0);
console.log(JSON.stringify({ mode, seconds, bytes, maxRSS: process.resourceUsage().maxRSS * 1024, ...extra }));
