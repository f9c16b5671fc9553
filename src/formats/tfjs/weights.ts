import { readFileSync, realpathSync, statSync } from '../../core/vfs.js';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { outsideAllowed } from '../../core/files.js';
import type { DType } from '../../core/dtypes.js';
import type { FormatErrors } from '../../core/errors.js';
import { elementCount, formatShape } from '../../core/shape.js';
import { ConcatSource, FileRangeSource, MemorySource, type ByteSource } from '../../core/source.js';
import { Tensor } from '../../core/tensor.js';
import { isObject, type Json } from './attrs.js';
import { printable } from './printable.js';
import { dequantizeFloat32, dequantizeInt32, quantizedSize, type Quantization, type QuantizationDType } from './quantize.js';

/**
 * The weightsManifest and its .bin shards. A group's weights are stored back to back in manifest
 * order, little-endian, and the concatenation is cut into the group's shards in order; a weight
 * may span shards. Strings are a u32 byte length then the UTF-8 bytes, per element.
 */

/** The logical dtypes tfjs-core decodes, with their modelbridge dtype and bytes per element. */
const DTYPES: Readonly<Record<string, { dtype: DType; size: number }>> = {
  float32: { dtype: 'float32', size: 4 },
  int32: { dtype: 'int32', size: 4 },
  bool: { dtype: 'bool', size: 1 },
  complex64: { dtype: 'complex64', size: 8 },
  string: { dtype: 'string', size: 0 },
};
const QUANTIZED: readonly string[] = ['uint8', 'uint16', 'float16'];

export interface WeightSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: string;
  readonly quantization?: Quantization & { readonly original_dtype?: string };
}

export interface WeightGroup {
  readonly paths: readonly string[];
  readonly weights: readonly WeightSpec[];
}

export interface ReadWeights {
  readonly tensors: Map<string, Tensor>;
  /** Weights that were quantized in the file, by name. */
  readonly quantized: Map<string, Quantization>;
}

/** Checks the manifest's structure and every field the reader relies on. */
export function parseManifest(value: Json | undefined, e: FormatErrors): WeightGroup[] {
  if (!Array.isArray(value)) return e.fail('weightsManifest', 'a list of weight groups');
  const names = new Set<string>();
  return value.map((g, gi) => {
    const where = `weightsManifest[${gi}]`;
    if (!isObject(g)) return e.fail(where, 'an object with paths and weights');
    const paths = g['paths'];
    const weights = g['weights'];
    e.check(Array.isArray(paths) && paths.every((p) => typeof p === 'string'), `${where}.paths`, 'a list of shard file names');
    e.check(Array.isArray(weights), `${where}.weights`, 'a list of weights');
    for (const p of paths as string[]) {
      const parts = p.split(/[\\/]/);
      e.check(printable(p), `${where}.paths`, `shard names without control characters, not ${JSON.stringify(p)}`);
      e.check(p !== '' && !isAbsolute(p) && !/^[A-Za-z]:/.test(p) && !parts.includes('..'), `${where}.paths`, `shard paths inside the model's directory, not ${JSON.stringify(p)}`);
    }
    return { paths: paths as string[], weights: weights.map((w, wi) => parseSpec(w, `${where}.weights[${wi}]`, names, e)) };
  });
}

function parseSpec(w: Json, where: string, names: Set<string>, e: FormatErrors): WeightSpec {
  if (!isObject(w)) return e.fail(where, 'an object with name, shape and dtype');
  const { name, shape, dtype, quantization } = w;
  e.check(typeof name === 'string' && printable(name), where, `a string name without control characters, not ${JSON.stringify(name)}`);
  const at = `weight ${name}`;
  e.check(!names.has(name), at, 'a name unique across the manifest');
  names.add(name);
  e.check(Array.isArray(shape) && shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0), `${at} shape`, 'a list of non-negative integers');
  e.check(elementCount(shape as number[]) !== undefined, `${at} shape`, 'a shape of safe size');
  e.check(typeof dtype === 'string' && dtype in DTYPES, `${at} dtype`, `one of ${Object.keys(DTYPES).join(', ')}, not ${JSON.stringify(dtype)}`);
  if (quantization === undefined) return { name, shape: shape as number[], dtype };
  if (!isObject(quantization)) return e.fail(`${at} quantization`, 'an object');
  const q = quantization;
  e.check(typeof q['dtype'] === 'string' && QUANTIZED.includes(q['dtype']), `${at} quantization dtype`, `uint8, uint16 or float16, not ${JSON.stringify(q['dtype'])}`);
  const qd = q['dtype'] as QuantizationDType;
  if (qd === 'float16') {
    e.check(dtype === 'float32', `${at} quantization`, `float16 quantization of a float32 weight, not ${dtype}`);
    return { name, shape: shape as number[], dtype, quantization: { dtype: qd } };
  }
  e.check(dtype === 'float32' || dtype === 'int32', `${at} quantization`, `${qd} quantization of a float32 or int32 weight, not ${dtype}`);
  const finite = (v: Json | undefined) => typeof v === 'number' && Number.isFinite(v);
  e.check(finite(q['min']) && finite(q['scale']), `${at} quantization`, 'finite numbers min and scale');
  return { name, shape: shape as number[], dtype, quantization: { dtype: qd, min: q['min'] as number, scale: q['scale'] as number } };
}

/**
 * A group's shards, concatenated. Small groups are read into memory (tensors inside one shard are
 * views, others copies); a group of LAZY_GROUP_BYTES or more stays in its files, each tensor a
 * range of them read on demand, so a large model is inspected or converted without holding it.
 */
class GroupBytes {
  private readonly shards: { readonly file: string; readonly size: number; bytes?: Uint8Array }[] = [];
  private readonly starts: number[] = [];
  readonly size: number;

  constructor(group: WeightGroup, jsonPath: string, e: FormatErrors) {
    let at = 0;
    for (const p of group.paths) {
      const file = join(dirname(jsonPath), p);
      this.shards.push({ file, size: shardSize(file, p, dirname(jsonPath), e) });
      this.starts.push(at);
      at += this.shards[this.shards.length - 1]!.size;
    }
    this.size = at;
    if (at < LAZY_GROUP_BYTES) group.paths.forEach((p, i) => (this.shards[i]!.bytes = readShard(this.shards[i]!.file, p, e)));
  }

  /** Bytes [start, end) of the concatenation, in memory. */
  slice(start: number, end: number): Uint8Array {
    return this.source(start, end).read();
  }

  /** Bytes [start, end) of the concatenation, as a source (a view or file ranges). */
  source(start: number, end: number): ByteSource {
    const parts: ByteSource[] = [];
    for (let i = 0; i < this.shards.length && start < end; i++) {
      const shard = this.shards[i]!;
      const shardStart = this.starts[i]!;
      if (start >= shardStart + shard.size) continue;
      const from = start - shardStart;
      const n = Math.min(end - start, shard.size - from);
      parts.push(shard.bytes ? new MemorySource(shard.bytes.subarray(from, from + n)) : new FileRangeSource(shard.file, from, n));
      start += n;
    }
    return parts.length === 1 ? parts[0]! : new ConcatSource(parts);
  }
}

/** Groups this large are read lazily, as the other readers do with large files. */
const LAZY_GROUP_BYTES = 64 * 1024 * 1024;

function shardSize(file: string, name: string, root: string, e: FormatErrors): number {
  let size: number | undefined;
  try {
    const stat = statSync(file);
    if (stat.isFile()) size = stat.size;
  } catch {
    // reported below
  }
  e.check(size !== undefined, `shard ${name}`, `a weight shard file next to model.json (missing: ${file})`);
  // The manifest names shards relative to model.json: a link among them must not lead out.
  e.check(insideModel(root, file), `shard ${name}`, `a shard inside the model's directory, but ${file} leads outside it (MODELBRIDGE_ALLOW_OUTSIDE=1 allows it)`);
  return size!;
}

function insideModel(root: string, file: string): boolean {
  if (outsideAllowed()) return true;
  const inside = relative(realpathSync(root), realpathSync(file));
  return inside !== '' && !inside.startsWith('..') && !isAbsolute(inside);
}

function readShard(file: string, name: string, e: FormatErrors): Uint8Array {
  try {
    return readFileSync(file);
  } catch {
    return e.fail(`shard ${name}`, 'a readable file');
  }
}

/** Reads every group's shards and decodes every weight (dequantizing as TF.js does). */
export function readWeights(groups: readonly WeightGroup[], jsonPath: string, e: FormatErrors): ReadWeights {
  const tensors = new Map<string, Tensor>();
  const quantized = new Map<string, Quantization>();
  for (const group of groups) {
    const bytes = new GroupBytes(group, jsonPath, e);
    let offset = 0;
    const need = (n: number, spec: WeightSpec) => {
      if (offset + n <= bytes.size) return;
      const shard = group.paths.length ? group.paths[group.paths.length - 1]! : '(no shards)';
      e.fail(`shard ${shard}`, `${offset + n} bytes in its group for weight ${spec.name} (the manifest's weights up to it), found ${bytes.size}`);
    };
    for (const spec of group.weights) {
      const count = elementCount(spec.shape)!;
      const { dtype, size } = DTYPES[spec.dtype]!;
      if (spec.quantization) {
        const n = count * quantizedSize(spec.quantization.dtype);
        need(n, spec);
        const raw = bytes.slice(offset, offset + n);
        const values = spec.dtype === 'int32' ? dequantizeInt32(raw, spec.quantization, count) : dequantizeFloat32(raw, spec.quantization, count);
        tensors.set(spec.name, Tensor.fromArray(spec.dtype === 'int32' ? 'int32' : 'float32', spec.shape, values));
        quantized.set(spec.name, spec.quantization);
        offset += n;
      } else if (dtype === 'string') {
        const strings: Uint8Array[] = [];
        for (let i = 0; i < count; i++) {
          need(4, spec);
          const len = new DataView(bytes.slice(offset, offset + 4).slice().buffer).getUint32(0, true);
          offset += 4;
          need(len, spec);
          strings.push(bytes.slice(offset, offset + len).slice());
          offset += len;
        }
        tensors.set(spec.name, Tensor.fromStrings(spec.shape, strings));
      } else {
        const n = count * size;
        need(n, spec);
        tensors.set(spec.name, new Tensor(dtype, spec.shape, bytes.source(offset, offset + n)));
        offset += n;
      }
    }
    // A longer group is refused too: TF.js reads the shards as one stream, so bytes added inside
    // one shard would shift every weight after them.
    if (offset !== bytes.size) {
      const shard = group.paths.length ? group.paths[group.paths.length - 1]! : '(no shards)';
      e.fail(`shard ${shard}`, `${offset} bytes in its group for the manifest's weights, found ${bytes.size} (the shards are longer than the manifest says)`);
    }
  }
  return { tensors, quantized };
}

/** One weight as the writer stores it: its bytes may still be in the source file (streamed when written). */
export interface EncodedWeight {
  readonly spec: WeightSpec;
  readonly bytes: ByteSource;
}

/** Bytes per read while streaming weights into shards. */
const STREAM_CHUNK = 4 * 1024 * 1024;

/** The byte sizes of the shards a group of weights is cut into: `shardBytes` each, the last smaller. */
export function shardSizes(weights: readonly EncodedWeight[], shardBytes: number): number[] {
  const total = weights.reduce((n, w) => n + w.bytes.byteLength, 0);
  return Array.from({ length: Math.ceil(total / shardBytes) }, (_, i) => Math.min(shardBytes, total - i * shardBytes));
}

/**
 * Streams a group's weights, back to back, into its shards of `sizes` bytes (shardSizes):
 * `open(i)` starts shard i and returns where its bytes go. A weight may span shards, as TF.js
 * allows. Each weight is read a chunk at a time, so a model larger than memory converts with one
 * chunk in hand.
 */
export function writeShards(weights: readonly EncodedWeight[], sizes: readonly number[], open: (shard: number) => (bytes: Uint8Array) => void): void {
  let shard = -1;
  let left = 0;
  let append: (bytes: Uint8Array) => void = () => {};
  for (const w of weights) {
    for (let chunk of w.bytes.chunks(STREAM_CHUNK)) {
      while (chunk.byteLength > 0) {
        if (left === 0) {
          shard++;
          left = sizes[shard]!;
          append = open(shard);
        }
        const n = Math.min(left, chunk.byteLength);
        append(chunk.subarray(0, n));
        chunk = chunk.subarray(n);
        left -= n;
      }
    }
  }
}

/** The manifest JSON of one weight: the converter's key order, quantization last. */
export function specJson(spec: WeightSpec): Record<string, Json> {
  const out: Record<string, Json> = { name: spec.name, shape: [...spec.shape], dtype: spec.dtype };
  const q = spec.quantization;
  if (q) {
    out['quantization'] = {
      dtype: q.dtype,
      ...(q.min !== undefined ? { min: q.min, scale: q.scale! } : {}),
      ...(q.original_dtype ? { original_dtype: q.original_dtype } : {}),
    };
  }
  return out;
}

export function describe(spec: WeightSpec): string {
  return `${spec.name} (${spec.dtype} ${formatShape(spec.shape)})`;
}
