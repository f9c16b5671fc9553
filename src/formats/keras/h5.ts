import { existsSync } from '../../core/vfs.js';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';

/**
 * HDF5 through h5wasm (the HDF5 C library compiled to WebAssembly), for Keras's weight files.
 * No hand-written HDF5 parser: the format has B-trees, heaps, filters and several superblock
 * versions, and the reference library reads all of them.
 *
 * h5wasm only starts asynchronously (its WebAssembly instantiates behind a promise), while every
 * reader and writer of this project is synchronous. So it runs on a worker thread, and this
 * thread blocks on an Atomics word until the worker has answered through a MessagePort, whose
 * message is then taken with receiveMessageOnPort: a synchronous call, without an event loop.
 * The worker starts on first use, is kept for later calls and never keeps the process alive.
 *
 * The worker loads h5wasm from dist/h5wasm.mjs beside the bundle (scripts/build.mjs bundles it
 * there, so the installed package needs no node_modules), or from node_modules when running from
 * the sources (tests).
 */

/** An attribute's value: text, numbers, or lists of either (Keras stores names as string arrays). */
export type H5Value = string | number | bigint | boolean | null | readonly H5Value[];

export interface H5Dataset {
  readonly kind: 'dataset';
  /** numpy-style type: f4, f8, f2, i1..i8, u1..u8, b1; 'other' for compound, string and the rest. */
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Little-endian element bytes, row-major (absent for an 'other' type). */
  readonly data?: Uint8Array;
  readonly attrs: Readonly<Record<string, H5Value>>;
}

export interface H5Group {
  readonly kind: 'group';
  readonly attrs: Readonly<Record<string, H5Value>>;
  /** Members in the file's (alphabetical) order. */
  readonly children: Readonly<Record<string, H5Group | H5Dataset>>;
}

/** What writeH5 lays out: groups with attributes, datasets of little-endian bytes. */
export interface H5WriteGroup {
  readonly attrs?: ReadonlyArray<readonly [string, string | readonly string[]]>;
  /** In creation order (Keras creates vars 0, 1, ... in order). */
  readonly children: ReadonlyArray<readonly [string, H5WriteGroup | H5WriteDataset]>;
}

export interface H5WriteDataset {
  readonly dtype: 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'int8' | 'int16' | 'uint16' | 'uint32';
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

/** The bridge gives up on a worker that has not answered in this long (a bug, not a bad file). */
const TIMEOUT_MS = 10 * 60_000;

const workerSource = (moduleUrl: string): string => `
const { workerData } = require('node:worker_threads');
// HDF5 prints its error stack through the WebAssembly runtime's console; a bad file is reported
// in one line by the reader instead, so the worker's console stays silent. (h5wasm's ES build:
// its files are in memory, where the node build would write them to the real file system.)
console.log = console.info = console.warn = console.error = () => {};
const flag = new Int32Array(workerData.flag);
const port = workerData.port;
const loaded = import(${JSON.stringify(moduleUrl)}).then(async (h5) => { await h5.ready; return h5; });
const reply = (message, transfer) => {
  port.postMessage(message, transfer);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
};
const DTYPES = { float32: '<f', float64: '<d', int32: '<i', int64: '<q', uint8: '|B', int8: '|b', int16: '<h', uint16: '<H', uint32: '<I' };
const ARRAYS = { float32: Float32Array, float64: Float64Array, int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array, int8: Int8Array, int16: Int16Array, uint16: Uint16Array, uint32: Uint32Array };
function plain(v) {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : String(v);
  if (ArrayBuffer.isView(v)) return Array.from(v, plain);
  if (Array.isArray(v)) return v.map(plain);
  if (v === undefined) return null;
  if (typeof v === 'object' && v !== null) return String(v);
  return v;
}
function attrsOf(h5, obj) {
  const out = {};
  for (const name of obj.attrs ? Object.keys(obj.attrs) : []) {
    try { out[name] = plain(obj.get_attribute(name, true)); } catch (e) { out[name] = null; }
  }
  return out;
}
function typeOf(meta) {
  // h5wasm metadata: type 0 integer, 1 float, 8 enum (h5py's bool); size in bytes.
  if (meta.type === 1 && [2, 4, 8].includes(meta.size)) return 'f' + meta.size;
  if (meta.type === 0 && [1, 2, 4, 8].includes(meta.size)) return (meta.signed ? 'i' : 'u') + meta.size;
  if (meta.type === 8 && meta.size === 1) return 'b1';
  return 'other';
}
function walk(h5, group, limit, total, out, buffers) {
  for (const name of group.keys()) {
    const obj = group.get(name);
    if (obj instanceof h5.Group) {
      const child = { kind: 'group', attrs: attrsOf(h5, obj), children: {} };
      out.children[name] = child;
      walk(h5, obj, limit, total, child, buffers);
    } else if (obj instanceof h5.Dataset) {
      const meta = obj.metadata;
      const dtype = typeOf(meta);
      const shape = (obj.shape ?? []).map(Number);
      const count = shape.reduce((a, b) => a * b, 1);
      const entry = { kind: 'dataset', dtype, shape, attrs: attrsOf(h5, obj) };
      if (dtype !== 'other') {
        total.bytes += count * meta.size;
        if (total.bytes > limit) throw new Error('LIMIT ' + (group.path === '/' ? '' : group.path) + '/' + name + ' ' + total.bytes);
        const value = obj.value;
        // A scalar dataset (Normalization's count) comes back as a plain number or bigint.
        const A = { f4: Float32Array, f8: Float64Array, i1: Int8Array, i2: Int16Array, i4: Int32Array, i8: BigInt64Array, u1: Uint8Array, u2: Uint16Array, u4: Uint32Array, u8: BigUint64Array, b1: Uint8Array }[dtype];
        const view = ArrayBuffer.isView(value) ? value : A && (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') ? A.from([A === BigInt64Array || A === BigUint64Array ? BigInt(value) : Number(value)]) : new Uint8Array(0);
        entry.data = new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
        buffers.push(entry.data.buffer);
      }
      out.children[name] = entry;
    }
  }
}
function build(h5, group, spec) {
  for (const [name, value] of spec.attrs ?? []) group.create_attribute(name, value);
  for (const [name, child] of spec.children) {
    if (child.children) build(h5, group.create_group(name), child);
    else {
      const A = ARRAYS[child.dtype];
      const copy = child.data.slice();
      const data = new A(copy.buffer, 0, copy.byteLength / A.BYTES_PER_ELEMENT);
      group.create_dataset({ name, data, shape: child.shape, dtype: DTYPES[child.dtype] });
    }
  }
}
let serial = 0;
port.on('message', (request) => {
  loaded.then((h5) => {
    const path = '/modelbridge-' + (serial++) + '.h5';
    try {
      if (request.op === 'read') {
        h5.FS.writeFile(path, request.bytes);
        const file = new h5.File(path, 'r');
        try {
          const root = { kind: 'group', attrs: attrsOf(h5, file), children: {} };
          // The weights move to the caller's thread rather than being copied once more.
          const buffers = [];
          walk(h5, file, request.limit, { bytes: 0 }, root, buffers);
          reply({ ok: true, root }, buffers);
        } finally {
          file.close();
        }
      } else {
        // HDF5 stamps each object with the time it was made (H5Pset_obj_track_times, which
        // h5wasm does not expose); its clock is the WebAssembly runtime's Date.now, held at 0 here
        // so the same model always gives the same bytes.
        const now = Date.now;
        Date.now = () => 0;
        const file = new h5.File(path, 'w');
        try { build(h5, file, request.root); } finally { file.close(); Date.now = now; }
        const bytes = h5.FS.readFile(path);
        reply({ ok: true, bytes }, [bytes.buffer]);
      }
    } catch (error) {
      reply({ ok: false, message: String(error && error.message ? error.message : error) });
    } finally {
      try { h5.FS.unlink(path); } catch {}
    }
  }, (error) => reply({ ok: false, message: 'h5wasm did not load: ' + String(error && error.message ? error.message : error) }));
});
`;

/** Where h5wasm's ES module is: bundled beside dist/, else the installed package (sources, tests). */
function h5wasmUrl(): string {
  const here = fileURLToPath(import.meta.url);
  const bundled = join(dirname(here), 'h5wasm.mjs');
  if (existsSync(bundled)) return pathToFileURL(bundled).href;
  const require = createRequire(import.meta.url);
  for (const dir of require.resolve.paths('h5wasm') ?? []) {
    const candidate = join(dir, 'h5wasm', 'dist', 'esm', 'hdf5_hl.js');
    if (existsSync(candidate)) return pathToFileURL(candidate).href;
  }
  throw new Error('h5wasm is missing: neither dist/h5wasm.mjs nor node_modules/h5wasm was found');
}

interface Bridge {
  readonly port: MessagePort;
  readonly flag: Int32Array;
}

let bridge: Bridge | undefined;

function start(): Bridge {
  if (bridge) return bridge;
  // The channel first: where there are no worker threads (the browser build) it refuses in one line.
  const { port1, port2 } = new MessageChannel();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(workerSource(h5wasmUrl()), { eval: true, workerData: { flag: flag.buffer, port: port2 }, transferList: [port2] });
  // An idle worker waits on its port; it must never keep the process alive.
  worker.unref();
  port1.unref();
  bridge = { port: port1, flag };
  return bridge;
}

type Reply = { ok: true; root?: H5Group; bytes?: Uint8Array } | { ok: false; message: string };

function call(request: object, transfer: ArrayBuffer[] = []): Reply {
  const b = start();
  Atomics.store(b.flag, 0, 0);
  b.port.postMessage(request, transfer);
  if (Atomics.wait(b.flag, 0, 0, TIMEOUT_MS) === 'timed-out') throw new Error('the HDF5 worker thread did not answer');
  const got = receiveMessageOnPort(b.port);
  if (!got) throw new Error('the HDF5 worker thread answered without a message');
  return got.message as Reply;
}

/** Raised when HDF5 cannot read the bytes; `limit` is set when the datasets exceed the given byte limit. */
export class H5ReadError extends Error {
  constructor(
    message: string,
    readonly limit?: { path: string; bytes: number },
  ) {
    super(message);
  }
}

/**
 * The whole tree of an HDF5 file held in memory: groups, attributes and every dataset's bytes.
 * `limit` bounds the datasets' total bytes (a compressed dataset can declare any size).
 */
export function readH5(bytes: Uint8Array, limit: number): H5Group {
  const reply = call({ op: 'read', bytes, limit });
  if (!reply.ok) {
    const m = /^LIMIT (\S*) (\d+)$/.exec(reply.message);
    throw new H5ReadError(reply.message, m ? { path: m[1]!, bytes: Number(m[2]) } : undefined);
  }
  return reply.root!;
}

/** The bytes of a new HDF5 file laid out as `root` says (the library's default file layout). */
export function writeH5(root: H5WriteGroup): Uint8Array {
  const reply = call({ op: 'write', root });
  if (!reply.ok) throw new Error(`HDF5 writing failed: ${reply.message}`);
  return reply.bytes!;
}
