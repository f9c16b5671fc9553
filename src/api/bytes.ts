import { FormatError, UsageError } from '../core/errors.js';
import type { Model } from '../core/model.js';
import { MemoryVolume, syncBlobReader, type BlobLike } from '../core/vfs-memory.js';
import { mount, unmount } from '../core/vfs.js';
import { describeError } from '../core/error-line.js';
import { detectFormat, formatByName } from '../formats/registry.js';
import { loadHdf5 } from '../formats/keras/h5.js';
import type { WriteOptions } from '../formats/format.js';
import { inspectModel, type InspectReport } from './inspect.js';
import { loadModel, saveModel, type LoadOptions } from './load.js';
import { validateModel, type ModelReport, type ValidateOptions } from './validate.js';
import { roundMs, verifyConversion, type VerifyReport } from './verify.js';

/**
 * The environment-neutral API: models as bytes in and bytes out, no paths. It is what the browser
 * bundle (src/browser.ts) exports and what the web page uses; it works the same in Node.
 *
 * The readers and writers are the path-based ones the CLI uses: the bytes are mounted as an
 * in-memory volume (src/core/vfs.ts routes every file call under its prefix there), so both
 * APIs run the same code and a file's problems read the same in both. Error messages name the
 * files as the caller named them, not by the volume's internal prefix.
 */

/** One file's bytes: an array, or a Blob/File (read lazily a slice at a time in a Web Worker). */
export type FileBytes = Uint8Array | BlobLike;

/**
 * A model's files: the bytes of a single-file model (ONNX, safetensors, .pt, .pt2, .pb, .tflite),
 * or relative path -> bytes for a directory model (SavedModel, TF.js, sharded safetensors, ONNX
 * with external data). A map whose paths share one leading folder is that folder.
 */
export type ModelFiles = FileBytes | ArrayBuffer | ReadonlyMap<string, FileBytes> | Readonly<Record<string, FileBytes>>;

export interface BytesReadOptions extends LoadOptions {
  /** The file's name, for single-file bytes (detection falls back on its extension; messages name it). Default `model`. */
  readonly name?: string;
}

export interface BytesWriteOptions extends WriteOptions {
  /** The output's name (`model.onnx`, a SavedModel's folder). Default `model` plus the format's extension. */
  readonly name?: string;
}

function isBlob(x: unknown): x is BlobLike {
  return typeof x === 'object' && x !== null && typeof (x as BlobLike).slice === 'function' && typeof (x as BlobLike).size === 'number';
}

function entriesOf(files: ModelFiles, name: string): Array<[string, FileBytes]> {
  if (files instanceof Uint8Array || isBlob(files)) return [[name, files]];
  if (files instanceof ArrayBuffer) return [[name, new Uint8Array(files)]];
  const list: Array<[string, FileBytes]> = files instanceof Map ? [...files] : Object.entries(files as Record<string, FileBytes>);
  for (const [path, bytes] of list) {
    if (!(bytes instanceof Uint8Array) && !isBlob(bytes)) throw new UsageError(`${path}: expected a Uint8Array or Blob`);
    // A model names its own files relative to itself: an absolute path or a climb out is no member.
    if (path === '' || path.startsWith('/') || path.split('/').includes('..')) throw new UsageError(`${path}: expected a relative path inside the model's folder`);
  }
  if (list.length === 0) throw new UsageError('no files given');
  return list;
}

/**
 * Blobs as bytes where nothing can read them synchronously (a page's main thread, Node); and
 * HDF5 loaded when the files hold some (the browser build loads h5wasm asynchronously, before the
 * synchronous Keras reader needs it; in Node this costs nothing).
 */
async function materialize(entries: Array<[string, FileBytes]>): Promise<Array<[string, FileBytes]>> {
  if (await holdsHdf5(entries)) await loadHdf5();
  if (syncBlobReader()) return entries;
  return Promise.all(entries.map(async ([p, b]): Promise<[string, FileBytes]> => [p, b instanceof Uint8Array ? b : new Uint8Array(await b.arrayBuffer())]));
}

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
/** A .keras archive's weights file, as its zip's central directory (at the end) names it. */
const KERAS_WEIGHTS = new TextEncoder().encode('model.weights.h5');

async function bytesAt(b: FileBytes, start: number, end: number): Promise<Uint8Array> {
  return b instanceof Uint8Array ? b.subarray(start, end) : new Uint8Array(await b.slice(start, end).arrayBuffer());
}

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/** Whether a file is HDF5 (its signature) or a zip whose directory names model.weights.h5 (a .keras archive, whatever its name). */
async function holdsHdf5(entries: Array<[string, FileBytes]>): Promise<boolean> {
  for (const [, b] of entries) {
    const size = b instanceof Uint8Array ? b.byteLength : b.size;
    const head = await bytesAt(b, 0, 8);
    if (HDF5_SIGNATURE.every((v, i) => head[i] === v)) return true;
    if (head[0] === 0x50 && head[1] === 0x4b && contains(await bytesAt(b, Math.max(0, size - (1 << 16)), size), KERAS_WEIGHTS)) return true;
  }
  return false;
}

interface Mounted {
  readonly volume: MemoryVolume;
  /** The model's path inside the volume: its file, or its folder. */
  readonly path: string;
}

/** Mounts the files and finds the model among them (the folder, or the one file detection accepts). */
function mountModel(entries: Array<[string, FileBytes]>, options: BytesReadOptions): Mounted {
  const volume = new MemoryVolume();
  mount(volume);
  try {
    if (entries.length === 1 && !entries[0]![0].includes('/')) {
      return { volume, path: volume.addFile(entries[0]![0], entries[0]![1]) };
    }
    // One folder (a dropped SavedModel): the model is that folder. Loose files (a model.json and
    // its shards): they sit at the volume's root, where the model's own file is found among them.
    const tops = new Set(entries.map(([p]) => (p.includes('/') ? p.slice(0, p.indexOf('/')) : '')));
    const folder = tops.size === 1 && !tops.has('') ? [...tops][0]! : undefined;
    for (const [p, b] of entries) volume.addFile(p, b);
    const dir = folder === undefined ? volume.root : `${volume.root}/${folder}`;
    if (options.format) return { volume, path: pickForFormat(volume, dir, options.format) };
    return { volume, path: pickDetected(volume, dir) };
  } catch (error) {
    unmount(volume);
    throw relabel(error, volume);
  }
}

/** The folder when its layout is a model, else the one top-level file that is (model.json beside its shards). */
function pickDetected(volume: MemoryVolume, dir: string): string {
  try {
    detectFormat(dir);
    return dir;
  } catch (folderError) {
    const files = volume.readdirSync(dir).filter((n) => volume.statSync(`${dir}/${n}`).isFile());
    // JSON first: a TF.js model.json or a safetensors index names the other files.
    files.sort((a, b) => Number(b.endsWith('.json')) - Number(a.endsWith('.json')) || a.localeCompare(b));
    for (const n of files) {
      try {
        detectFormat(`${dir}/${n}`);
        return `${dir}/${n}`;
      } catch {
        // not this one
      }
    }
    throw folderError;
  }
}

/** With a format given: the folder for directory formats, else the file with the format's extension. */
function pickForFormat(volume: MemoryVolume, dir: string, format: string): string {
  const f = formatByName(format);
  const match = volume.readdirSync(dir).find((n) => f.extensions.some((e) => n.toLowerCase().endsWith(e)));
  return match ? `${dir}/${match}` : dir;
}

/** The error with the volume's prefix taken out of its text: the file as the caller named it. */
function relabel(error: unknown, volume: MemoryVolume): unknown {
  // The root itself (loose files no format recognised) is "." as a command line's folder would be.
  const strip = (s: string): string => s.split(volume.prefix).join('').split(volume.root).join('.');
  if (error instanceof FormatError) return new FormatError(strip(error.file), strip(error.where), strip(error.expected));
  if (error instanceof UsageError) return new UsageError(strip(error.message));
  if (error instanceof Error) {
    const e = error as Error & { path?: unknown };
    if (typeof e.path === 'string') e.path = strip(e.path);
    e.message = strip(e.message);
  }
  return error;
}

function display(volume: MemoryVolume, path: string): string {
  return path.slice(volume.prefix.length);
}

/** The volume each model read from bytes lives on (releaseModel unmounts it). */
const volumes = new WeakMap<Model, MemoryVolume>();

/**
 * Lets go of the bytes a model was read from: its volume is unmounted, so its files can be
 * collected. The model's tensors that were not read yet cannot be read after this.
 */
export function releaseModel(model: Model): void {
  const volume = volumes.get(model);
  if (volume) unmount(volume);
  volumes.delete(model);
}

/**
 * Reads a model from its bytes. The files stay mounted until releaseModel(model): large files'
 * tensors are read from them only when used (as from disk in Node).
 */
export async function readModel(files: ModelFiles, options: BytesReadOptions = {}): Promise<Model> {
  return readModelSync(await materialize(entriesOf(files, options.name ?? 'model')), options);
}

/** readModel for bytes already in memory (no Blob reads to wait for). */
export function readModelSync(files: ModelFiles | Array<[string, FileBytes]>, options: BytesReadOptions = {}): Model {
  const entries = Array.isArray(files) ? files : entriesOf(files, options.name ?? 'model');
  if (!syncBlobReader() && entries.some(([, b]) => !(b instanceof Uint8Array))) throw new UsageError('readModelSync takes Uint8Arrays here (no synchronous Blob reads outside a worker): use readModel');
  const { volume, path } = mountModel(entries, options);
  try {
    const model = loadModel(path, options);
    volumes.set(model, volume);
    return model;
  } catch (error) {
    unmount(volume);
    throw relabel(error, volume);
  }
}

interface Written {
  readonly volume: MemoryVolume;
  readonly path: string;
  readonly paths: string[];
  readonly format: string;
}

function writeInto(model: Model, format: string, options: BytesWriteOptions): Written {
  const handler = formatByName(format);
  const volume = new MemoryVolume();
  mount(volume);
  try {
    // SavedModel (no extension) is a folder; so are shards, when a size is given.
    const directory = handler.extensions.length === 0 || (handler.name === 'safetensors' && options.shardBytes !== undefined);
    const name = options.name ?? `model${handler.extensions[0] ?? ''}`;
    const path = `${volume.root}/${name}${directory ? '/' : ''}`;
    const { name: _name, ...writeOptions } = options;
    const paths = saveModel(model, path, { ...writeOptions, format: handler.name, force: true });
    return { volume, path: path.replace(/\/$/, ''), paths, format: handler.name };
  } catch (error) {
    unmount(volume);
    throw relabel(error, volume);
  }
}

/** Writes a model in a format; returns its files as relative path -> bytes (a folder's files under its name). */
export function writeModel(model: Model, format: string, options: BytesWriteOptions = {}): Map<string, Uint8Array> {
  const w = writeInto(model, format, options);
  try {
    return w.volume.filesUnder(w.volume.root);
  } finally {
    unmount(w.volume);
  }
}

export interface BytesConvertResult {
  readonly model: Model;
  readonly format: string;
  readonly files: Map<string, Uint8Array>;
  readonly verification: VerifyReport;
  /** Wall time of each phase, seconds. */
  readonly seconds: { readonly write: number; readonly verify: number };
}

/**
 * Writes a model in a format and proves it: the files are read back and compared with the model
 * (weights bit for bit, outputs on a generated input), as `modelbridge convert` does.
 */
export function convertModelBytes(model: Model, format: string, options: BytesWriteOptions = {}): BytesConvertResult {
  const t0 = performance.now();
  const w = writeInto(model, format, options);
  try {
    const t1 = performance.now();
    const written = loadModel(w.path, { format: w.format });
    const verification = verifyConversion(model, written, w.paths, options.quantize ? { quantize: options.quantize } : {});
    const t2 = performance.now();
    return { model, format: w.format, files: w.volume.filesUnder(w.volume.root), verification, seconds: { write: roundMs(t1 - t0), verify: roundMs(t2 - t1) } };
  } catch (error) {
    throw relabel(error, w.volume);
  } finally {
    unmount(w.volume);
  }
}

/** `inspect` over bytes: the report (with the format's own tables) and the model. */
export async function inspectFiles(files: ModelFiles, options: BytesReadOptions = {}): Promise<{ model: Model; report: InspectReport }> {
  const entries = await materialize(entriesOf(files, options.name ?? 'model'));
  const { volume, path } = mountModel(entries, options);
  try {
    const model = loadModel(path, options);
    volumes.set(model, volume);
    const report = inspectModel(model, display(volume, path), formatByName(model.format).describe?.(path) ?? []);
    return { model, report };
  } catch (error) {
    unmount(volume);
    throw relabel(error, volume);
  }
}

/** `validate` over bytes (inputs and expectations as tensors, not paths). */
export async function validateFiles(files: ModelFiles, options: BytesReadOptions & Omit<ValidateOptions, 'inputs' | 'expect' | 'format' | 'module'> & Pick<ValidateOptions, 'inputs' | 'expect'> = {}): Promise<ModelReport> {
  const entries = await materialize(entriesOf(files, options.name ?? 'model'));
  const { volume, path } = mountModel(entries, options);
  try {
    const report = validateModel(path, options);
    const strip = (s: string): string => s.split(volume.prefix).join('');
    return { ...report, path: strip(report.path), checks: report.checks.map((c) => ({ ...c, message: strip(c.message) })) };
  } finally {
    unmount(volume);
  }
}

/** The one line the CLI prints for an error, and its exit code (1 usage, 2 unreadable file, 70 bug). */
export function errorLine(error: unknown): { line: string; code: number } {
  return describeError(error);
}
