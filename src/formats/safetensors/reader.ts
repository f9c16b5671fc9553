import { closeSync, existsSync, fstatSync, openSync, readSync } from '../../core/vfs.js';
import { dirname, join } from 'node:path';
import { FormatError } from '../../core/errors.js';
import { FileRangeSource, MemorySource, type ByteSource } from '../../core/source.js';
import { Tensor } from '../../core/tensor.js';
import { parseHeader, readHeaderLength, type HeaderEntry, type SafetensorsHeader } from './header.js';
import { compareNames, unsafeShardName } from './shards.js';
import { memberFile } from '../../core/files.js';

export interface SafetensorsFile {
  /** In data order (by offset). */
  tensors: Map<string, Tensor>;
  /** The header's __metadata__, or undefined when absent (or null). */
  metadata: Record<string, string> | undefined;
  /** File position of the data section (for a sharded checkpoint: the first shard's). */
  dataOffset: number;
}

export interface ReadOptions {
  /**
   * true: tensors read their bytes from the file on demand (FileRangeSource), so a large file is
   * never held in memory at once. false: the file is read whole and tensors are views into it.
   * Default: lazy for files of LAZY_THRESHOLD bytes or more.
   */
  lazy?: boolean;
}

/** Files this size and larger are read lazily unless told otherwise. */
export const LAZY_THRESHOLD = 64 * 1024 * 1024;

/** Parses a whole safetensors file held in memory; tensors are zero-copy views into `bytes`. */
export function parseSafetensors(bytes: Uint8Array, file: string): SafetensorsFile {
  const length = readHeaderLength(bytes.subarray(0, 8), bytes.byteLength, file);
  const header = parseHeader(bytes.subarray(8, 8 + length), bytes.byteLength, file);
  return assemble(header, (e) => new MemorySource(bytes.subarray(header.dataOffset + e.begin, header.dataOffset + e.end)));
}

/**
 * Reads a safetensors file. Only the length and header are read to validate it (with the same
 * code as parseSafetensors); the tensor bytes are then read whole or left in the file.
 */
export function readSafetensorsFile(path: string, options: ReadOptions = {}): SafetensorsFile {
  const fd = openFile(path);
  try {
    const size = fileSize(fd, path);
    const prefix = readExactly(fd, path, 0, Math.min(8, size));
    const length = readHeaderLength(prefix, size, path);
    const header = parseHeader(readExactly(fd, path, 8, length), size, path);
    if (options.lazy ?? size >= LAZY_THRESHOLD) {
      return assemble(header, (e) => new FileRangeSource(path, header.dataOffset + e.begin, e.end - e.begin));
    }
    const bytes = readExactly(fd, path, 0, size);
    return assemble(header, (e) => new MemorySource(bytes.subarray(header.dataOffset + e.begin, header.dataOffset + e.end)));
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a sharded checkpoint from its index (`model.safetensors.index.json`: {"metadata": {...},
 * "weight_map": {tensor: shard}}). Shards are read lazily. The index and the shards must agree
 * exactly: every listed tensor is in its shard, every shard tensor is listed under that shard.
 * The metadata returned is the first shard's __metadata__ (where the writer puts it).
 */
export function readSafetensorsIndex(indexPath: string): SafetensorsFile {
  const weightMap = readWeightMap(indexPath);
  const shardNames = [...new Set(weightMap.values())].sort(compareNames);
  const shards = new Map<string, SafetensorsFile>();
  for (const shard of shardNames) {
    const path = join(dirname(indexPath), shard);
    memberFile(indexPath, `weight_map shard ${JSON.stringify(shard)}`, dirname(indexPath), path);
    shards.set(shard, readSafetensorsFile(path, { lazy: true }));
  }
  for (const [shard, contents] of shards) {
    for (const name of contents.tensors.keys()) {
      const listed = weightMap.get(name);
      if (listed !== shard) {
        const where = `tensor ${JSON.stringify(name)} in shard ${JSON.stringify(shard)}`;
        // Also catches a tensor stored in two shards: weight_map can name only one of them.
        throw new FormatError(
          indexPath,
          where,
          listed === undefined
            ? 'every tensor of a listed shard to be in weight_map'
            : `the tensor listed under this shard (weight_map names ${JSON.stringify(listed)}; a tensor belongs to one shard only)`,
        );
      }
    }
  }
  const tensors = new Map<string, Tensor>();
  for (const [name, shard] of weightMap) {
    const tensor = shards.get(shard)!.tensors.get(name);
    if (!tensor) throw new FormatError(indexPath, `weight_map ${JSON.stringify(name)}`, `the tensor present in its shard ${JSON.stringify(shard)}`);
    tensors.set(name, tensor);
  }
  const first = shards.get(shardNames[0] ?? '');
  return { tensors, metadata: first?.metadata, dataOffset: first?.dataOffset ?? 0 };
}

/** The index's weight_map, checked for shape and for shard names that stay beside the index. */
function readWeightMap(indexPath: string): Map<string, string> {
  const fd = openFile(indexPath);
  let text: string;
  try {
    const size = fileSize(fd, indexPath);
    text = new TextDecoder('utf-8', { fatal: true }).decode(readExactly(fd, indexPath, 0, size));
  } catch (error) {
    if (error instanceof FormatError) throw error;
    throw new FormatError(indexPath, 'file', 'UTF-8 JSON text');
  } finally {
    closeSync(fd);
  }
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch (error) {
    throw new FormatError(indexPath, 'file', `valid JSON (${(error as Error).message})`);
  }
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(index)) throw new FormatError(indexPath, 'top level', 'a JSON object {"metadata": {...}, "weight_map": {...}}');
  if (index.metadata !== undefined && !isObject(index.metadata)) throw new FormatError(indexPath, 'metadata', 'an object');
  const map = index.weight_map;
  if (!isObject(map)) throw new FormatError(indexPath, 'weight_map', 'an object mapping tensor names to shard file names');
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(map)) {
    const where = `weight_map ${JSON.stringify(name)}`;
    if (typeof shard !== 'string') throw new FormatError(indexPath, where, 'a shard file name (string)');
    const unsafe = unsafeShardName(shard);
    if (unsafe) throw new FormatError(indexPath, where, `${unsafe}, not ${JSON.stringify(shard)}`);
    out.set(name, shard);
  }
  return out;
}

function assemble(header: SafetensorsHeader, source: (entry: HeaderEntry) => ByteSource): SafetensorsFile {
  const tensors = new Map<string, Tensor>();
  // The header checks guarantee each range matches its shape, so Tensor's own checks cannot fail.
  for (const entry of header.entries) tensors.set(entry.name, new Tensor(entry.dtype, entry.shape, source(entry)));
  return { tensors, metadata: header.metadata, dataOffset: header.dataOffset };
}

/** Opens a file for reading; a missing or unreadable file is a FormatError like any bad file. */
export function openFile(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (error) {
    throw new FormatError(path, 'file', `a readable file (${describe(error)})`);
  }
}

function fileSize(fd: number, path: string): number {
  try {
    return fstatSync(fd).size;
  } catch (error) {
    throw new FormatError(path, 'file', `a readable file (${describe(error)})`);
  }
}

/** `length` bytes at `position`, looping over short reads; fewer bytes means the file changed. */
export function readExactly(fd: number, path: string, position: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  try {
    while (done < length) {
      const got = readSync(fd, out, done, Math.min(length - done, 1 << 30), position + done);
      if (got <= 0) break;
      done += got;
    }
  } catch (error) {
    throw new FormatError(path, `byte ${position + done}`, `readable bytes (${describe(error)})`);
  }
  if (done < length) throw new FormatError(path, `byte ${position + done}`, `${length - done} more bytes (the file shrank while reading)`);
  return out;
}

export function describe(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : String(error);
}
