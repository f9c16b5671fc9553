import { mkdirSync, rmSync } from '../../core/vfs.js';
import { join } from 'node:path';
import { writeBytesAtomic, writeFileAtomic } from '../../core/atomic.js';
import { UsageError } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { dtypeRank, fromDType, type SafetensorsDType } from './dtypes.js';
import { MAX_HEADER_SIZE } from './header.js';
import { compareNames, INDEX_FILE, shardFileName, SINGLE_FILE } from './shards.js';

/**
 * The writer reproduces the reference serializer byte for byte (formats.md 3.4): tensors ordered
 * by descending dtype alignment then by name, offsets contiguous from 0, a compact header with
 * __metadata__ first, entries as {dtype, shape, data_offsets}, padded with spaces to a multiple
 * of 8 so every tensor starts aligned to its element size.
 *
 * One deliberate choice where the reference is not deterministic: it keeps __metadata__ in a hash
 * map, so with several keys their order varies from run to run. Here they are sorted by key.
 * `metadata` undefined omits __metadata__; {} writes "__metadata__":{} as the reference does.
 */

/** Tensor bytes are streamed to disk in chunks of this size, so memory does not grow with the model. */
const CHUNK = 8 * 1024 * 1024;

interface Layout {
  /** The 8-byte length followed by the padded header. */
  readonly head: Uint8Array;
  /** Tensors in data order. */
  readonly order: readonly (readonly [string, Tensor])[];
}

function layout(tensors: ReadonlyMap<string, Tensor>, metadata: Readonly<Record<string, string>> | undefined): Layout {
  const coded = [...tensors].map(([name, tensor]) => {
    const code = fromDType(tensor.dtype);
    if (!code) throw new UsageError(`tensor ${JSON.stringify(name)}: safetensors cannot store dtype ${tensor.dtype}`);
    checkText(name, `tensor name ${JSON.stringify(name)}`);
    // Tensor accepts e.g. [-1, 0] (zero elements); a safetensors shape is unsigned integers.
    if (!tensor.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new UsageError(`tensor ${JSON.stringify(name)}: shape [${tensor.shape.join(', ')}] must be non-negative integers`);
    }
    return { name, tensor, code };
  });
  coded.sort((a, b) => dtypeRank(b.code) - dtypeRank(a.code) || compareNames(a.name, b.name));

  const parts: string[] = [];
  if (metadata !== undefined) parts.push(`"__metadata__":${metadataJson(metadata)}`);
  let offset = 0;
  for (const { name, tensor, code } of coded) {
    const end = offset + tensor.byteLength;
    parts.push(`${JSON.stringify(name)}:${entryJson(code, tensor.shape, offset, end)}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = json.byteLength + ((8 - (json.byteLength % 8)) % 8);
  if (padded > MAX_HEADER_SIZE) {
    throw new UsageError(`safetensors header would be ${padded} bytes, over the ${MAX_HEADER_SIZE}-byte limit readers enforce (HeaderTooLarge)`);
  }
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return { head, order: coded.map(({ name, tensor }) => [name, tensor] as const) };
}

/** Key order dtype, shape, data_offsets: the field order of the reference's TensorInfo. */
function entryJson(code: SafetensorsDType, shape: readonly number[], begin: number, end: number): string {
  return `{"dtype":"${code}","shape":[${shape.join(',')}],"data_offsets":[${begin},${end}]}`;
}

function metadataJson(metadata: Readonly<Record<string, string>>): string {
  const keys = Object.keys(metadata).sort(compareNames);
  const fields = keys.map((key) => {
    const value: unknown = metadata[key];
    if (typeof value !== 'string') throw new UsageError(`safetensors metadata ${JSON.stringify(key)} must be a string, got ${typeof value}`);
    checkText(key, `metadata key ${JSON.stringify(key)}`);
    checkText(value, `metadata ${JSON.stringify(key)}`);
    // JSON.stringify escapes exactly as serde_json does: \" \\ \b \f \n \r \t, other controls as \u00xx.
    return `${JSON.stringify(key)}:${JSON.stringify(value)}`;
  });
  return `{${fields.join(',')}}`;
}

/** A lone surrogate cannot be encoded in UTF-8; readers would refuse the escaped form. */
function checkText(text: string, what: string): void {
  if (/\p{Surrogate}/u.test(text)) throw new UsageError(`${what} contains a lone UTF-16 surrogate, which safetensors (UTF-8) cannot store`);
}

/** The whole file in memory: for small models and tests; use writeSafetensorsFile for files. */
export function serializeSafetensors(tensors: ReadonlyMap<string, Tensor>, metadata?: Readonly<Record<string, string>>): Uint8Array {
  const { head, order } = layout(tensors, metadata);
  const out = new Uint8Array(head.byteLength + order.reduce((n, [, t]) => n + t.byteLength, 0));
  out.set(head);
  let at = head.byteLength;
  for (const [name, tensor] of order) {
    copyTensor(name, tensor, (chunk) => {
      out.set(chunk, at);
      at += chunk.byteLength;
    });
  }
  return out;
}

/**
 * Writes a safetensors file: header, then each tensor's bytes a chunk at a time, through a
 * temporary file renamed into place at the end (a failure leaves no partial file).
 */
export function writeSafetensorsFile(path: string, tensors: ReadonlyMap<string, Tensor>, metadata?: Readonly<Record<string, string>>): void {
  const { head, order } = layout(tensors, metadata);
  writeFileAtomic(path, (append) => {
    append(head);
    for (const [name, tensor] of order) copyTensor(name, tensor, append);
  });
}

/**
 * Streams one tensor's chunks to `sink` (which must consume each chunk before the next: file
 * sources reuse their buffer), checking the source yields exactly its declared length.
 */
function copyTensor(name: string, tensor: Tensor, sink: (chunk: Uint8Array) => void): void {
  let written = 0;
  for (const chunk of tensor.source.chunks(CHUNK)) {
    written += chunk.byteLength;
    if (written > tensor.byteLength) break;
    sink(chunk);
  }
  if (written !== tensor.byteLength) {
    throw new Error(`tensor ${JSON.stringify(name)}: its byte source gave ${written} bytes where ${tensor.byteLength} were declared`);
  }
}

/**
 * Writes a sharded checkpoint into `dir` the Hugging Face way: tensors packed greedily, in map
 * order, into shards of at most `maxShardBytes` of tensor data (a larger tensor gets a shard of
 * its own), named model-0000i-of-0000n.safetensors, plus model.safetensors.index.json. A single
 * shard is written as model.safetensors without an index. Every shard carries `metadata`; the
 * index carries it too, with total_size. Returns the paths written, shards first.
 */
export function writeSafetensorsSharded(
  dir: string,
  tensors: ReadonlyMap<string, Tensor>,
  metadata: Readonly<Record<string, string>> | undefined,
  maxShardBytes: number,
): string[] {
  if (!(maxShardBytes > 0) || !Number.isFinite(maxShardBytes)) throw new UsageError(`shard size must be a positive number of bytes, not ${maxShardBytes}`);
  // Validate everything (dtypes, names, header size) before touching the disk.
  const shards = splitShards(tensors, maxShardBytes);
  for (const shard of shards) layout(shard, metadata);

  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  try {
    if (shards.length <= 1) {
      const path = join(dir, SINGLE_FILE);
      writeSafetensorsFile(path, shards[0] ?? new Map(), metadata);
      written.push(path);
      return written;
    }
    const weightMap = new Map<string, string>();
    shards.forEach((shard, i) => {
      const name = shardFileName(i, shards.length);
      const path = join(dir, name);
      writeSafetensorsFile(path, shard, metadata);
      written.push(path);
      for (const tensorName of shard.keys()) weightMap.set(tensorName, name);
    });
    const totalSize = [...tensors.values()].reduce((n, t) => n + t.byteLength, 0);
    const indexPath = join(dir, INDEX_FILE);
    writeBytesAtomic(indexPath, new TextEncoder().encode(indexJson(weightMap, metadata, totalSize)));
    written.push(indexPath);
    return written;
  } catch (error) {
    // Each file is atomic; also remove the shards already written so no half checkpoint remains.
    for (const path of written) rmSync(path, { force: true });
    throw error;
  }
}

/** huggingface_hub's greedy split, without its shared-storage handling (our tensors share none). */
function splitShards(tensors: ReadonlyMap<string, Tensor>, maxShardBytes: number): Map<string, Tensor>[] {
  const shards: Map<string, Tensor>[] = [];
  let current = new Map<string, Tensor>();
  let currentSize = 0;
  for (const [name, tensor] of tensors) {
    if (tensor.byteLength > maxShardBytes) {
      shards.push(new Map([[name, tensor]]));
      continue;
    }
    if (currentSize + tensor.byteLength > maxShardBytes) {
      shards.push(current);
      current = new Map();
      currentSize = 0;
    }
    current.set(name, tensor);
    currentSize += tensor.byteLength;
  }
  if (current.size > 0) shards.push(current);
  return shards;
}

/** The index as transformers writes it: sorted keys, two-space indent, final newline. */
function indexJson(weightMap: ReadonlyMap<string, string>, metadata: Readonly<Record<string, string>> | undefined, totalSize: number): string {
  const meta: [string, string][] = Object.entries(metadata ?? {})
    .filter(([key]) => key !== 'total_size')
    .map(([key, value]) => [key, JSON.stringify(value)]);
  meta.push(['total_size', String(totalSize)]);
  const weights = [...weightMap].map(([name, shard]): [string, string] => [name, JSON.stringify(shard)]);
  const object = (fields: [string, string][], indent: string) =>
    `{\n${fields
      .sort(([a], [b]) => compareNames(a, b))
      .map(([key, value]) => `${indent}  ${JSON.stringify(key)}: ${value}`)
      .join(',\n')}\n${indent}}`;
  return `{\n  "metadata": ${object(meta, '  ')},\n  "weight_map": ${object(weights, '  ')}\n}\n`;
}
