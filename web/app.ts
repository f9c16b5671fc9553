/**
 * The web page (web/index.html, built by `npm run web` into dist/web): open a model's files,
 * inspect, run, convert with verification and download, diff. Everything runs in the page on
 * the browser bundle's API over bytes (src/browser.ts); nothing is fetched after the page's own
 * files and nothing is uploaded. An error shows the one line the CLI prints for it.
 */
import { zipSync } from 'fflate';
import { releaseModel, convertModelBytes, diffModels, diffReportJson, errorLine, FORMATS, gemmKernel, inspectFiles, loadHdf5, startThreads, readModel, readNpy, runModel, Tensor, VERSION, type DType, type InspectReport, type Model } from '../src/browser.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

interface Opened {
  readonly model: Model;
  readonly report: InspectReport;
  /** The model's name as given: its file, or its folder. */
  readonly name: string;
}

let current: Opened | undefined;

/** The files as relative path -> File, a folder's under its own name (File.webkitRelativePath). */
function filesOf(list: Iterable<File>): { files: Map<string, File>; name: string } {
  const files = new Map<string, File>();
  for (const f of list) files.set(f.webkitRelativePath || f.name, f);
  const keys = [...files.keys()];
  const tops = new Set(keys.map((k) => k.split('/')[0]!));
  // A folder: its name; loose files: the one a model's reader starts from (a .json names its shards).
  const name = tops.size === 1 && keys[0]!.includes('/') ? [...tops][0]! : (keys.find((k) => k.endsWith('.json')) ?? keys[0]!);
  return { files, name };
}

/** Runs an action with the page marked busy; an error becomes the CLI's one line. */
async function act(action: () => Promise<void> | void): Promise<void> {
  document.body.dataset['state'] = 'busy';
  $('error').textContent = '';
  // Let the page paint "busy" before a long synchronous conversion.
  await new Promise((r) => setTimeout(r, 0));
  try {
    await action();
  } catch (error) {
    $('error').textContent = errorLine(error).line;
  } finally {
    document.body.dataset['state'] = 'idle';
  }
}

async function open(list: Iterable<File>): Promise<void> {
  const { files, name } = filesOf(list);
  if (files.size === 0) return;
  // The previous model's bytes go (its volume is unmounted) once another is opened.
  if (current) releaseModel(current.model);
  current = undefined;
  $('model-section').hidden = true;
  const { model, report } = await inspectFiles(files, { name: name.split('/').pop()! });
  current = { model, report, name };
  render(report);
}

function render(report: InspectReport): void {
  const dl = $('summary');
  dl.replaceChildren();
  const row = (k: string, v: string): void => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    dd.dataset['key'] = k;
    dl.append(dt, dd);
  };
  row('file', report.path);
  row('format', report.format);
  row('runnable', String(report.runnable));
  if (report.opset !== null) row('opset', String(report.opset));
  for (const s of report.signatures) {
    const io = (xs: InspectReport['signatures'][number]['inputs']): string => xs.map((x) => `${x.name}: ${x.dtype}[${(x.shape ?? ['?']).map((d) => d ?? '?').join(', ')}]`).join('; ');
    row(`signature ${s.name}`, `inputs ${io(s.inputs)} -> outputs ${io(s.outputs)}`);
  }
  row('ops', report.ops.join(', ') || '(none: weights only)');
  row('parameters', `${report.parameters.tensors} tensors, ${report.parameters.elements} elements, ${report.parameters.bytes} bytes`);
  const body = $('tensors').querySelector('tbody')!;
  body.replaceChildren(
    ...report.tensors.map((t) => {
      const tr = document.createElement('tr');
      for (const v of [t.name, t.dtype, `[${t.shape.join(', ')}]`, String(t.bytes)]) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.append(td);
      }
      return tr;
    }),
  );
  const inputs = $('inputs');
  inputs.replaceChildren();
  for (const x of report.signatures[0]?.inputs ?? []) {
    const label = document.createElement('label');
    label.textContent = `${x.name} (${x.dtype}, shape [${(x.shape ?? []).map((d) => d ?? '?').join(', ')}])`;
    const text = document.createElement('textarea');
    text.dataset['input'] = x.name;
    text.dataset['dtype'] = x.dtype;
    const npy = document.createElement('input');
    npy.type = 'file';
    npy.accept = '.npy';
    npy.addEventListener('change', () =>
      act(async () => {
        const f = npy.files?.[0];
        if (!f) return;
        const t = readNpy(new Uint8Array(await f.arrayBuffer()), f.name);
        text.value = JSON.stringify(nest(t.toNumbers(), t.shape as number[]));
      }),
    );
    inputs.append(label, text, npy);
  }
  $('run-output').textContent = '';
  $('convert-output').textContent = '';
  $('diff-output').textContent = '';
  $('model-section').hidden = false;
}

/** A JSON nested array as a shape and its values in row-major order. */
function flatten(value: unknown, name: string): { shape: number[]; values: number[] } {
  const shape: number[] = [];
  for (let v = value; Array.isArray(v); v = v[0]) shape.push(v.length);
  const values: number[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (typeof v !== 'number' && typeof v !== 'boolean') throw new Error(`input ${name}: expected numbers in a nested array`);
      values.push(Number(v));
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) throw new Error(`input ${name}: a ragged array (every row must have ${shape[depth]} entries)`);
    for (const x of v) walk(x, depth + 1);
  };
  walk(value, 0);
  return { shape, values };
}

function nest(values: readonly number[], shape: readonly number[]): unknown {
  if (shape.length === 0) return values[0];
  const [n, ...rest] = shape as [number, ...number[]];
  const step = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: n }, (_, i) => nest(values.slice(i * step, (i + 1) * step), rest));
}

function run(): void {
  if (!current) return;
  const feeds: Record<string, Tensor> = {};
  for (const text of $('inputs').querySelectorAll<HTMLTextAreaElement>('textarea')) {
    const name = text.dataset['input']!;
    const dtype = text.dataset['dtype'] as DType;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text.value);
    } catch {
      throw new Error(`input ${name}: expected a JSON nested array like [[0, 1]]`);
    }
    const { shape, values } = flatten(parsed, name);
    feeds[name] = dtype === 'int64' || dtype === 'uint64' ? Tensor.from(dtype, shape, values.map((v) => BigInt(v))) : Tensor.from(dtype, shape, values);
  }
  const outputs = runModel(current.model, feeds);
  const shown: Record<string, unknown> = {};
  for (const [k, t] of Object.entries(outputs)) shown[k] = nest(t.toNumbers(), t.shape as number[]);
  $('run-output').textContent = JSON.stringify(shown);
}

/** Saves bytes as a download (no network: an object URL of a Blob). */
function download(name: string, bytes: Uint8Array): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>]));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

async function convert(): Promise<void> {
  if (!current) return;
  const format = $<HTMLSelectElement>('to').value;
  // Keras's weights are HDF5: h5wasm loads (a file of the page's own) before the synchronous writer runs.
  if (format === 'keras' || format === 'h5') await loadHdf5();
  const handler = FORMATS.find((f) => f.name === format)!;
  const base = current.name.split('/').pop()!.replace(/(\.safetensors\.index\.json|\.[A-Za-z0-9]+)$/, '');
  const ext = handler.extensions[0] ?? '';
  const r = convertModelBytes(current.model, format, { name: `${base}${ext}` });
  const files = [...r.files];
  $('convert-output').textContent = `verified: ${r.verification.summary}; files: ${files.map(([k, v]) => `${k} (${v.byteLength} bytes)`).join(', ')}`;
  if (files.length === 1) download(files[0]![0].split('/').pop()!, files[0]![1]);
  else {
    // A folder (SavedModel) or a file with its shards (TF.js) as one zip; a fixed time keeps it deterministic.
    download(`${base}-${format}.zip`, zipSync(Object.fromEntries(files), { mtime: new Date('1980-01-01T00:00:00Z') }));
  }
}

async function diff(list: Iterable<File>): Promise<void> {
  if (!current) return;
  const { files, name } = filesOf(list);
  if (files.size === 0) return;
  const other = await readModel(files, { name: name.split('/').pop()! });
  const report = diffModels(current.model, other, {}, [current.name, name]);
  releaseModel(other);
  $('diff-output').textContent = diffReportJson(report);
  $('diff-output').dataset['status'] = report.status;
}

/** Every file under a dropped folder, with webkitRelativePath-like names. */
async function droppedFiles(items: DataTransferItemList): Promise<File[]> {
  const out: File[] = [];
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
      // A dropped folder's files carry no webkitRelativePath (only an input's do): give them one.
      out.push(prefix ? Object.defineProperty(file, 'webkitRelativePath', { value: `${prefix}${file.name}` }) : file);
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (batch.length === 0) break;
        for (const e of batch) await walk(e, `${prefix}${entry.name}/`);
      }
    }
  };
  const entries = [...items].map((i) => i.webkitGetAsEntry()).filter((e): e is FileSystemEntry => e !== null);
  for (const e of entries) await walk(e, '');
  return out;
}

/** The page's product threads: this one and Web Workers (cross-origin isolated pages only; at most 4, beyond which a page's models gain little). */
async function threads(): Promise<void> {
  const count = await startThreads(Math.min(navigator.hardwareConcurrency || 1, 4));
  const kernel = gemmKernel();
  $('kernel').textContent = `products: ${kernel === 'js' ? 'JavaScript' : `WebAssembly ${kernel}`}, ${count === 1 ? 'one thread' : `${count} threads`}`;
  $('kernel').dataset['kernel'] = kernel;
  $('kernel').dataset['threads'] = String(count);
}

function init(): void {
  $('version').textContent = `v${VERSION}`;
  const to = $<HTMLSelectElement>('to');
  for (const f of FORMATS) to.append(new Option(`${f.name} (${f.title})`, f.name));
  for (const id of ['file', 'folder']) $<HTMLInputElement>(id).addEventListener('change', (e) => act(() => open((e.target as HTMLInputElement).files ?? [])));
  for (const id of ['other', 'other-folder']) $<HTMLInputElement>(id).addEventListener('change', (e) => act(() => diff((e.target as HTMLInputElement).files ?? [])));
  $('run').addEventListener('click', () => act(run));
  $('convert').addEventListener('click', () => act(convert));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const items = e.dataTransfer?.items;
    if (items) void act(async () => open(await droppedFiles(items)));
  });
  // Idle once the threads have started (Web Workers start only while the page is between tasks).
  void threads().finally(() => (document.body.dataset['state'] = 'idle'));
}

init();
