import { basename } from 'node:path';
import { writeFileAtomic } from '../../core/atomic.js';
import { UsageError } from '../../core/errors.js';
import type { ByteSource } from '../../core/source.js';
import type { Tensor } from '../../core/tensor.js';
import { pickleStateDict, type PickledStorage, type PickledTensor } from './pickler.js';
import { METADATA_RECORD } from './reader.js';
import { StorageSlice, type StorageData } from './tensors.js';
import { torchSaveForm } from './torch-types.js';
import { ZipWriter } from './zip-writer.js';

/**
 * Writes a state dict as torch.save(OrderedDict, path) does in PyTorch 2.x, so that
 * torch.load(path, weights_only=True) (and its mmap path) returns the same tensors: records
 * data.pkl, .format_version ("1"), .storage_alignment ("64"), byteorder ("little"), data/0..n in
 * key order, version ("3\n") and .data/serialization_id, laid out by ZipWriter as miniz does.
 * modelbridge's metadata (module spec, signature) rides in one extra record, modelbridge/metadata.json,
 * which torch.load never looks at. Tensors that share a storage (the same Tensor under two names,
 * or views of one storage read from a checkpoint) are written once and stay shared in torch.
 */

export interface PytorchWriteOptions {
  /** The zip's top-level folder; default: the file's stem, as torch.save names it ("archive" in memory). */
  readonly archiveName?: string;
}

interface PlannedStorage extends PickledStorage {
  readonly source: ByteSource;
}

interface Plan {
  readonly pickle: Uint8Array;
  readonly storages: readonly PlannedStorage[];
}

function plan(tensors: ReadonlyMap<string, Tensor>): Plan {
  const byTensor = new Map<Tensor, PickledTensor>();
  // Storages read from a checkpoint, by identity: their views become views again.
  const shared = new Map<StorageData, PlannedStorage>();
  const storages: PlannedStorage[] = [];
  const addStorage = (s: Omit<PlannedStorage, 'key'>): PlannedStorage => {
    const storage = { ...s, key: String(storages.length) };
    storages.push(storage);
    return storage;
  };
  const entries: [string, PickledTensor][] = [];
  for (const [name, tensor] of tensors) {
    let pickled = byTensor.get(tensor);
    if (!pickled) {
      pickled = planTensor(name, tensor, shared, addStorage);
      byTensor.set(tensor, pickled);
    }
    entries.push([name, pickled]);
  }
  return { pickle: pickleStateDict(entries), storages };
}

function planTensor(
  name: string,
  tensor: Tensor,
  shared: Map<StorageData, PlannedStorage>,
  addStorage: (s: Omit<PlannedStorage, 'key'>) => PlannedStorage,
): PickledTensor {
  const what = `tensor ${JSON.stringify(name)}`;
  const form = torchSaveForm(tensor.dtype);
  if (!form) throw new UsageError(`${what}: PyTorch has no dtype ${tensor.dtype}`);
  let size = [...tensor.shape];
  if (!size.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new UsageError(`${what}: shape [${size.join(', ')}] must be non-negative integers`);
  if (tensor.dtype === 'float4_e2m1fn_x2') {
    // torch.float4_e2m1fn_x2 counts bytes (two values each); modelbridge counts values.
    const last = size.at(-1);
    if (last === undefined || last % 2 !== 0) throw new UsageError(`${what}: float4_e2m1fn_x2 needs an even last dimension to pack two values per byte, got [${size.join(', ')}]`);
    size = [...size.slice(0, -1), last / 2];
  }
  const es = form.dtype.size;
  const stride = contiguousStrides(size);
  const storageFor = (byteLength: number) => (form.storageClass === undefined ? byteLength : byteLength / es);

  // A view of a storage this process read from a checkpoint: share the storage.
  const source = tensor.source;
  if (source instanceof StorageSlice && source.byteOffset % es === 0 && source.storage.source.byteLength % es === 0) {
    const known = shared.get(source.storage);
    if (known === undefined || known.storageClass === form.storageClass) {
      const storage =
        known ??
        addStorage({ source: source.storage.source, numel: storageFor(source.storage.source.byteLength), ...(form.storageClass ? { storageClass: form.storageClass } : {}) });
      shared.set(source.storage, storage);
      return { storage, dtype: form.dtype, offset: source.byteOffset / es, size, stride };
    }
  }
  const storage = addStorage({ source, numel: storageFor(tensor.byteLength), ...(form.storageClass ? { storageClass: form.storageClass } : {}) });
  return { storage, dtype: form.dtype, offset: 0, size, stride };
}

/** torch's contiguous strides: dimensions of size 0 count as 1. */
function contiguousStrides(size: readonly number[]): number[] {
  const stride = new Array<number>(size.length);
  let s = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    stride[i] = s;
    s *= Math.max(size[i]!, 1);
  }
  return stride;
}

/** The archive folder torch.save would use for `path`: its base name without the last extension. */
export function archiveNameFor(path: string): string {
  const base = basename(path);
  const dot = base.lastIndexOf('.');
  const stem = dot > 0 ? base.slice(0, dot) : dot === 0 ? '' : base;
  // PyTorchStreamWriter takes ASCII paths only; torch.save writes other names through a stream as "archive".
  return stem !== '' && /^[\x20-\x7e]+$/.test(path) ? stem : 'archive';
}

function emit(append: (bytes: Uint8Array) => void, { pickle, storages }: Plan, meta: Uint8Array | undefined, archive: string): void {
  const zip = new ZipWriter(append);
  const names: string[] = [];
  const add = (name: string, data: Uint8Array | ByteSource) => {
    names.push(`${archive}/${name}`);
    zip.add(`${archive}/${name}`, data);
  };
  const ascii = (text: string) => new TextEncoder().encode(text);
  add('data.pkl', pickle);
  add('.format_version', ascii('1'));
  add('.storage_alignment', ascii('64'));
  add('byteorder', ascii('little'));
  // In key order with nothing between them: torch's mmap loader computes these offsets itself.
  for (const storage of storages) add(`data/${storage.key}`, storage.source);
  if (meta) add(METADATA_RECORD, meta);
  add('version', ascii('3\n'));
  add('.data/serialization_id', ascii(serializationId(names, zip.descriptorCrcs)));
  zip.finish();
}

/**
 * 40 digits like torch's: a 20-digit hash of the record names, then the records' CRC-32s folded
 * with c10::hash_combine (this half matches torch for the same records). torch hashes the names
 * in unordered_set order with std::hash; here they are hashed in write order with FNV-1a, which
 * keeps the id deterministic. torch.load only logs the id.
 */
function serializationId(names: readonly string[], crcs: readonly number[]): string {
  const mask = (1n << 64n) - 1n;
  let nameHash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(names.join('\n'))) nameHash = ((nameHash ^ BigInt(byte)) * 0x100000001b3n) & mask;
  let combined = 0n;
  for (const crc of crcs) combined = (combined ^ ((BigInt(crc) + 0x9e3779b9n + ((combined << 6n) & mask) + (combined >> 2n)) & mask)) & mask;
  return nameHash.toString().padStart(20, '0') + combined.toString().padStart(20, '0');
}

/** The metadata record, or undefined when there is nothing to carry (a file torch.save could have written). */
function metadataRecord(metadata: Readonly<Record<string, string>> | undefined): Uint8Array | undefined {
  if (!metadata || Object.keys(metadata).length === 0) return undefined;
  const sorted: Record<string, string> = {};
  for (const key of Object.keys(metadata).sort()) {
    const value: unknown = metadata[key];
    if (typeof value !== 'string') throw new UsageError(`metadata ${JSON.stringify(key)} must be a string, got ${typeof value}`);
    sorted[key] = value;
  }
  return new TextEncoder().encode(JSON.stringify(sorted));
}

/** The whole checkpoint in memory (tests, small models); archive "archive" as torch.save(obj, BytesIO). */
export function serializePytorch(tensors: ReadonlyMap<string, Tensor>, metadata?: Readonly<Record<string, string>>, options: PytorchWriteOptions = {}): Uint8Array {
  const planned = plan(tensors);
  const meta = metadataRecord(metadata);
  const chunks: Uint8Array[] = [];
  let length = 0;
  // Sources may reuse their chunk buffer, so each chunk is copied.
  const append = (bytes: Uint8Array) => {
    chunks.push(bytes.slice());
    length += bytes.byteLength;
  };
  emit(append, planned, meta, options.archiveName ?? 'archive');
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** Writes a checkpoint atomically, streaming tensor bytes from their sources. */
export function writePytorchFile(path: string, tensors: ReadonlyMap<string, Tensor>, metadata?: Readonly<Record<string, string>>, options: PytorchWriteOptions = {}): void {
  // Planned first, so a bad dtype or shape fails before anything touches the disk.
  const planned = plan(tensors);
  const meta = metadataRecord(metadata);
  writeFileAtomic(path, (append) => emit(append, planned, meta, options.archiveName ?? archiveNameFor(path)));
}
