import { formatErrors, type FormatErrors } from '../../core/errors.js';
import type { RandomAccess } from './bytes.js';
import { PickleTruncated, unpickle, type Site } from './pickle.js';
import { PyDict, PyList, type PyValue } from './pickle-values.js';
import { parseStoragePid, torchResolver } from './torch-globals.js';
import type { StorageData } from './tensors.js';
import { StorageRef, TORCH_DTYPES, type TorchDtype } from './torch-types.js';

/**
 * The pre-1.6 torch.save format (still written with _use_new_zipfile_serialization=False): five
 * pickles in a row (magic number, protocol version 1001, sys_info, the object, the list of
 * storage keys), then each storage in that order as an i64 element count and its little-endian
 * bytes. Persistent ids carry view metadata: a storage may be a slice of another.
 */

/** 0x1950a86a20f9469cfc6c, torch.serialization.MAGIC_NUMBER. */
const MAGIC = 0x1950a86a20f9469cfc6cn;
const PROTOCOL_VERSION = 1001;
/** The pickles of a legitimate file are small; a stream claiming more is refused. */
const MAX_PICKLES = 1 << 30;

export interface LegacyCheckpoint {
  readonly root: PyValue;
  readonly storages: ReadonlyMap<string, StorageData>;
  readonly littleEndian: boolean;
}

export function readLegacy(access: RandomAccess): LegacyCheckpoint {
  const e: FormatErrors = formatErrors(access.file);
  // The pickles come first; read a growing prefix until they all parse.
  for (let length = Math.min(access.size, 1 << 20); ; length = Math.min(access.size, length * 8)) {
    try {
      return parse(access, access.read(0, length), e);
    } catch (error) {
      if (!(error instanceof PickleTruncated) || length >= access.size) throw error;
      e.check(length < MAX_PICKLES, 'legacy pickles', `at most ${MAX_PICKLES} bytes of pickles before the storage data`);
    }
  }
}

function parse(access: RandomAccess, head: Uint8Array, e: FormatErrors): LegacyCheckpoint {
  const resolver = torchResolver();
  const file = access.file;
  const magic = unpickle(head, { file, where: 'legacy magic number', resolver });
  e.check(magic.value === MAGIC, 'byte 0', 'the legacy torch.save magic number 0x1950a86a20f9469cfc6c (or a zip archive)');
  const protocol = unpickle(head, { file, where: 'legacy protocol version', resolver }, magic.end);
  e.check(protocol.value === PROTOCOL_VERSION, `byte ${magic.end}`, `legacy protocol version ${PROTOCOL_VERSION}, got ${String(protocol.value)}`);
  const sysInfo = unpickle(head, { file, where: 'legacy sys_info', resolver }, protocol.end);

  // Root storages by key, and views (a slice of a root) by their own key.
  const roots = new Map<string, StorageRef>();
  const views = new Map<string, StorageRef>();
  const persistentLoad = (pid: PyValue, site: Site): StorageRef => {
    const p = parseStoragePid(pid, site, true);
    const dtype: TorchDtype = p.storageClass.dtype ?? TORCH_DTYPES.get('uint8')!;
    const bytes = p.numel * dtype.size;
    let root = roots.get(p.key);
    if (!root) {
      root = new StorageRef(p.key, dtype, bytes);
      roots.set(p.key, root);
    }
    if (!p.view) return root;
    let view = views.get(p.view.key);
    if (!view) {
      view = new StorageRef(p.key, dtype, p.view.size * dtype.size, p.view.offset * dtype.size);
      if (view.byteOffset + view.nbytes > root.nbytes) site.fail(`a storage view within its root storage of ${root.nbytes} bytes`);
      views.set(p.view.key, view);
    }
    return view;
  };
  const object = unpickle(head, { file, where: 'legacy object pickle', resolver, persistentLoad }, sysInfo.end);
  const keys = unpickle(head, { file, where: 'legacy storage key list', resolver }, object.end);
  e.check(keys.value instanceof PyList && keys.value.items.every((k) => typeof k === 'string'), `byte ${object.end}`, 'the list of storage keys');

  // The storage tail: per key, an i64 element count, then the bytes.
  const storages = new Map<string, StorageData>();
  let at = keys.end;
  for (const key of (keys.value as PyList).items as string[]) {
    const root = roots.get(key);
    e.check(root !== undefined, `byte ${at}`, `storage ${JSON.stringify(key)} to be used by the object pickle`);
    e.check(at + 8 <= access.size, `byte ${at}`, `the element count of storage ${JSON.stringify(key)} (the file is truncated)`);
    const count = new DataView(access.read(at, 8).slice().buffer).getBigInt64(0, true);
    e.check(count === BigInt(root.nbytes / root.dtype.size), `byte ${at}`, `storage ${JSON.stringify(key)} of ${root.nbytes / root.dtype.size} elements as its persistent id says, got ${count}`);
    e.check(at + 8 + root.nbytes <= access.size, `byte ${at + 8}`, `${root.nbytes} bytes of storage ${JSON.stringify(key)} (the file is truncated)`);
    storages.set(key, { key, source: access.source(at + 8, root.nbytes), bigEndian: false });
    at += 8 + root.nbytes;
  }
  // The tail is little-endian whatever the writer was (big-endian hosts convert); kept for info.
  const littleEndian = !(sysInfo.value instanceof PyDict && sysInfo.value.get('little_endian') === false);
  return { root: object.value, storages, littleEndian };
}
