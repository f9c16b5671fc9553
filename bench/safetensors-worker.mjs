// One measurement per process, so each gets its own peak RSS. Prints one JSON line:
// {"seconds": s, "maxRSS": bytes, ...}. Modes:
//   make <file> <bytes>       synthetic float32 bundle of ~<bytes>, streamed (not measured)
//   copy <src> <dst>          plain read/write copy of the bytes, 8 MiB buffer, fsync'd like our
//                             atomic writer (the physical baseline)
//   read-plain <src>          plain sequential read of the file, checksumming every data byte
//   convert <src> <dst>       modelbridge: read the bundle lazily, write it as safetensors
//   read <src>                modelbridge: read the bundle, checksum every tensor byte
// Both read modes sum the data section as 32-bit words, so their checksums must be equal.
//   inspect <src>             modelbridge: load + inspect (headers only)
import { closeSync, fsyncSync, openSync, readSync, rmSync, writeSync, statSync } from 'node:fs';
import { convertModel, inspectModel, loadModel, Tensor, saveModel } from '../dist/index.js';
import { sumWords } from './words.mjs';

const [mode, src, dst] = process.argv.slice(2);
const CHUNK = 8 << 20;
const t0 = process.hrtime.bigint();
let extra = {};

/** A byte source that generates a deterministic pattern, so `make` never holds the model in memory. */
function patternSource(byteLength, seed) {
  const block = new Uint8Array(CHUNK);
  const view = new Float32Array(block.buffer);
  for (let i = 0; i < view.length; i++) view[i] = Math.sin(i * 0.001 + seed);
  return {
    byteLength,
    read() {
      const out = new Uint8Array(byteLength);
      for (let at = 0; at < byteLength; at += CHUNK) out.set(block.subarray(0, Math.min(CHUNK, byteLength - at)), at);
      return out;
    },
    *chunks(size) {
      for (let at = 0; at < byteLength; at += Math.min(size, CHUNK)) yield block.subarray(0, Math.min(size, CHUNK, byteLength - at));
    },
  };
}

switch (mode) {
  case 'make': {
    const total = Number(dst);
    const count = 16;
    const rows = Math.floor(total / count / 4 / 4096);
    const weights = new Map();
    for (let i = 0; i < count; i++) weights.set(`layers.${String(i).padStart(2, '0')}.weight`, new Tensor('float32', [rows, 4096], patternSource(rows * 4096 * 4, i)));
    rmSync(src, { force: true });
    saveModel({ format: 'memory', weights, signatures: [], metadata: { format: 'pt' } }, src);
    break;
  }
  case 'copy': {
    const from = openSync(src, 'r');
    const to = openSync(dst, 'w');
    const buffer = new Uint8Array(CHUNK);
    for (let at = 0; ; ) {
      const got = readSync(from, buffer, 0, CHUNK, at);
      if (got === 0) break;
      for (let done = 0; done < got; ) done += writeSync(to, buffer, done, got - done);
      at += got;
    }
    fsyncSync(to);
    closeSync(from);
    closeSync(to);
    break;
  }
  case 'read-plain': {
    // The whole file is read; the checksum skips the 8-byte length and the header (the data section).
    const fd = openSync(src, 'r');
    const buffer = new Uint8Array(CHUNK);
    let sum = 0;
    let dataStart = -1;
    for (let at = 0; ; ) {
      const got = readSync(fd, buffer, 0, CHUNK, at);
      if (got === 0) break;
      if (dataStart < 0) dataStart = 8 + Number(new DataView(buffer.buffer).getBigUint64(0, true));
      const from = Math.max(0, Math.min(got, dataStart - at));
      sum = (sum + sumWords(buffer.subarray(from, got))) | 0;
      at += got;
    }
    closeSync(fd);
    extra = { sum };
    break;
  }
  case 'convert': {
    rmSync(dst, { force: true });
    convertModel(src, dst);
    break;
  }
  case 'read': {
    const model = loadModel(src);
    let sum = 0;
    for (const t of model.weights.values()) for (const chunk of t.source.chunks(CHUNK)) sum = (sum + sumWords(chunk)) | 0;
    extra = { sum };
    break;
  }
  case 'inspect': {
    const report = inspectModel(loadModel(src), src);
    extra = { parameters: report.parameters.elements };
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}

const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const bytes = src ? statSync(src).size : 0;
console.log(JSON.stringify({ mode, seconds, bytes, maxRSS: process.resourceUsage().maxRSS * 1024, ...extra }));
