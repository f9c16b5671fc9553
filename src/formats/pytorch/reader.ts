import { formatErrors, FormatError, type FormatErrors } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { MemoryAccess, openAccess, type RandomAccess } from './bytes.js';
import { readLegacy } from './legacy.js';
import { unpickle, type Site } from './pickle.js';
import type { PyValue } from './pickle-values.js';
import { pickStateDict } from './state-dict.js';
import { materialise, type StorageData } from './tensors.js';
import { parseStoragePid, torchResolver } from './torch-globals.js';
import { StorageRef, TORCH_DTYPES, type TensorRef } from './torch-types.js';
import { readZip, type ZipArchive, type ZipEntry } from './zip.js';

/**
 * Reads torch.save checkpoints without running their pickle: the zip format (PyTorch >= 1.6),
 * the legacy pickle stream, and the weights inside TorchScript archives. The state dict is found
 * in the saved object (pickStateDict) and each tensor becomes a view of its storage's bytes.
 */

export interface PytorchReadOptions {
  /** Use this entry of a checkpoint dict as the state dict ("model_state_dict"); default: found automatically. */
  readonly key?: string;
  /** Leave tensor bytes in the file (read on demand). Default: for files of 64 MiB and more. */
  readonly lazy?: boolean;
  /** Check every storage's CRC-32 while reading. Default: when the file is read into memory. */
  readonly verifyCrc?: boolean;
}

export interface PytorchInfo {
  readonly container: 'zip' | 'legacy' | 'torchscript';
  /** The zip's top-level folder (torch.save uses the file's stem, or "archive"). */
  readonly archive?: string;
  /** The archive's format version record. */
  readonly version?: number;
  readonly byteorder: 'little' | 'big';
  /** Where the state dict was found: "" for the saved object itself, else its key ("model_state_dict"). */
  readonly picked: string;
  /** The checkpoint's other top-level keys (optimizer state, epoch...), which were not read. */
  readonly ignored: readonly string[];
}

export interface PytorchFile {
  readonly tensors: Map<string, Tensor>;
  /** modelbridge's own record (module spec, signature, carried metadata); {} for files from torch. */
  readonly metadata: Record<string, string>;
  readonly info: PytorchInfo;
}

/** Where modelbridge keeps its metadata inside the archive; torch.load ignores unknown records. */
export const METADATA_RECORD = 'modelbridge/metadata.json';

export function readPytorchFile(path: string, options: PytorchReadOptions = {}): PytorchFile {
  const access = openAccess(path, options.lazy);
  return readCheckpoint(access, { ...options, verifyCrc: options.verifyCrc ?? access instanceof MemoryAccess });
}

/** A checkpoint held in memory; tensors are views into `bytes` where the layout allows. */
export function parsePytorch(bytes: Uint8Array, file: string, options: PytorchReadOptions = {}): PytorchFile {
  return readCheckpoint(new MemoryAccess(bytes, file), { verifyCrc: true, ...options });
}

function readCheckpoint(access: RandomAccess, options: PytorchReadOptions): PytorchFile {
  const e: FormatErrors = formatErrors(access.file);
  const head = access.read(0, Math.min(access.size, 264)).slice();
  const startsWith = (text: string, at = 0) => [...text].every((c, i) => head[at + i] === c.charCodeAt(0));
  e.check(!startsWith('PYTORCH1'), 'byte 0', 'a torch.save archive; this is the unsupported format of the PyTorch preview release');
  e.check(!startsWith('ustar', 257), 'byte 257', 'a zip or pickle checkpoint; the tar format of PyTorch < 0.4 is not supported (torch.load(weights_only=True) refuses it too)');
  // A legacy stream opens with the pickled magic number: PROTO 2 + LONG1, or LONG text at protocol 0/1.
  if (head[0] === 0x80 || head[0] === 0x4c) {
    const legacy = readLegacy(access);
    return assemble(legacy.root, legacy.storages, options, access.file, { container: 'legacy', byteorder: 'little' });
  }
  let zip: ZipArchive;
  try {
    zip = readZip(access);
  } catch (error) {
    if (error instanceof FormatError && !startsWith('PK\x03\x04')) {
      e.fail('byte 0', 'a PyTorch checkpoint: a zip archive (torch.save since 1.6, torch.jit.save) or a legacy pickle stream');
    }
    throw error;
  }
  return readZipCheckpoint(zip, options);
}

function readZipCheckpoint(zip: ZipArchive, options: PytorchReadOptions): PytorchFile {
  const e: FormatErrors = formatErrors(zip.file);
  const first = zip.entries[0];
  e.check(first !== undefined, 'zip archive', 'at least one record');
  // PyTorchStreamReader: the archive name is everything before the first "/" of the first entry.
  const slash = first.name.indexOf('/');
  const folder = slash < 0 ? '' : first.name.slice(0, slash + 1);
  const record = (name: string): ZipEntry | undefined => zip.find(folder + name);
  const small = (entry: ZipEntry): Uint8Array => zip.read(entry, { verify: true, maxSize: 1 << 30 });
  const torchScript = record('constants.pkl') !== undefined;
  const pkl = record('data.pkl');
  e.check(pkl !== undefined, 'zip archive', `a ${folder}data.pkl record (the torch.save pickle)${torchScript ? '' : '; this zip is not a PyTorch checkpoint'}`);

  const versionEntry = record('.data/version') ?? record('version');
  let version: number | undefined;
  if (versionEntry) {
    const text = new TextDecoder('latin1').decode(small(versionEntry)).trim();
    e.check(/^\d{1,6}$/.test(text), `record ${versionEntry.name}`, `a decimal format version, not ${JSON.stringify(text.slice(0, 20))}`);
    version = Number(text);
  }
  const byteorderEntry = record('byteorder');
  const byteorder = byteorderEntry ? new TextDecoder('latin1').decode(small(byteorderEntry)) : 'little';
  e.check(byteorder === 'little' || byteorder === 'big', `record ${byteorderEntry?.name}`, `"little" or "big", not ${JSON.stringify(byteorder.slice(0, 20))}`);

  const { refs, persistentLoad } = storageLoader();
  const root = unpickle(small(pkl), { file: zip.file, where: pkl.name, resolver: torchResolver({ torchScript }), persistentLoad }).value;

  const storages = new Map<string, StorageData>();
  for (const [key, ref] of refs) {
    const entry = record(`data/${key}`);
    e.check(entry !== undefined, `storage ${JSON.stringify(key)}`, `a record ${folder}data/${key}`);
    e.check(entry.size === ref.nbytes, `record ${entry.name}`, `${ref.nbytes} bytes as the pickle says, got ${entry.size}`);
    if (options.verifyCrc) zip.verify(entry);
    storages.set(key, { key, source: zip.source(entry, { maxSize: ref.nbytes }), bigEndian: byteorder === 'big' });
  }

  const result = assemble(root, storages, options, zip.file, {
    container: torchScript ? 'torchscript' : 'zip',
    archive: folder.slice(0, -1),
    byteorder,
    ...(version === undefined ? {} : { version }),
  });
  const meta = record(METADATA_RECORD);
  return meta ? { ...result, metadata: parseMetadata(small(meta), meta.name, e) } : result;
}

function assemble(
  root: PyValue,
  storages: ReadonlyMap<string, StorageData>,
  options: PytorchReadOptions,
  file: string,
  info: Omit<PytorchInfo, 'picked' | 'ignored'>,
): PytorchFile {
  const e: FormatErrors = formatErrors(file);
  const picked = pickStateDict(root, options.key);
  const tensors = new Map<string, Tensor>();
  // One pickled tensor under two names (tied weights) stays one Tensor object.
  const done = new Map<TensorRef, Tensor>();
  for (const [name, ref] of picked.tensors) {
    e.check(!tensors.has(name), `tensor ${JSON.stringify(name)}`, 'one tensor per name (nested keys flatten to a name another key already has)');
    const storage = storages.get(ref.storage.key);
    e.check(storage !== undefined, `tensor ${JSON.stringify(name)}`, `its storage ${JSON.stringify(ref.storage.key)} in the file`);
    const tensor = done.get(ref) ?? materialise(ref, storage, name, e);
    done.set(ref, tensor);
    tensors.set(name, tensor);
  }
  return { tensors, metadata: {}, info: { ...info, picked: picked.picked, ignored: picked.ignored } };
}

function parseMetadata(bytes: Uint8Array, name: string, e: FormatErrors): Record<string, string> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    e.fail(`record ${name}`, 'UTF-8 JSON');
  }
  e.check(
    typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string'),
    `record ${name}`,
    'a JSON object of string values',
  );
  return { ...(value as Record<string, string>) };
}

/**
 * The persistent_load of a zip archive's pickles: storages by key, as torch loads a key once and
 * every later reference shares it. `refs` holds the storages the pickle named, for reading after.
 */
export function storageLoader(): { refs: Map<string, StorageRef>; persistentLoad: (pid: PyValue, site: Site) => StorageRef } {
  const refs = new Map<string, StorageRef>();
  const persistentLoad = (pid: PyValue, site: Site): StorageRef => {
    const p = parseStoragePid(pid, site, false);
    const known = refs.get(p.key);
    if (known) return known;
    const dtype = p.storageClass.dtype ?? TORCH_DTYPES.get('uint8')!;
    const nbytes = p.numel * dtype.size;
    if (!Number.isSafeInteger(nbytes)) site.fail(`a storage size below 2^53 bytes, not ${p.numel} elements`);
    const ref = new StorageRef(p.key, dtype, nbytes);
    refs.set(p.key, ref);
    return ref;
  };
  return { refs, persistentLoad };
}
