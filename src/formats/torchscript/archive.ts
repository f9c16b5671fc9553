import { formatErrors, type FormatErrors } from '../../core/errors.js';
import { escapeControl } from '../../core/printable.js';
import type { Tensor } from '../../core/tensor.js';
import { openAccess } from '../pytorch/bytes.js';
import { unpickle } from '../pytorch/pickle.js';
import { PyDict, PyList, PyObject, PyTuple, type PyValue } from '../pytorch/pickle-values.js';
import { materialise, type StorageData } from '../pytorch/tensors.js';
import { torchResolver } from '../pytorch/torch-globals.js';
import { StorageRef, TensorRef } from '../pytorch/torch-types.js';
import { readZip, type ZipArchive, type ZipEntry } from '../pytorch/zip.js';
import { MAX_SOURCE_BYTES } from './syntax.js';
import { storageLoader } from '../pytorch/reader.js';

/**
 * A torch.jit.save archive (torch/csrc/jit/serialization/export_module.cpp): a zip under one
 * folder holding
 *   data.pkl + data/<key>            the module object tree (`__torch__.*` instances) and its tensors
 *   constants.pkl + constants/<key>  the tuple of tensor constants the code names CONSTANTS.c<i>
 *   code/__torch__/<module path>.py  each class's TorchScript source
 *   traced_inputs.pkl + traced_inputs/<key>   {method: [example inputs]} that torch.jit.trace
 *                                    stored (torch >= 2.0, _store_inputs=True by default)
 * Every pickle goes through the allowlist unpickler (module objects are inert attribute dicts);
 * nothing is executed.
 */
export interface ScriptArchive {
  readonly zip: ZipArchive;
  readonly folder: string;
  readonly root: PyObject;
  /** Every module object's FQN ("" for the root, "layer1.0" below it). */
  readonly paths: ReadonlyMap<PyObject, string>;
  /** The state dict: parameters and buffers under their FQNs. */
  readonly weights: ReadonlyMap<string, Tensor>;
  /** The same tensors by the pickled tensor that names them, for attribute access in the code. */
  readonly byRef: ReadonlyMap<TensorRef, Tensor>;
  readonly constants: readonly PyValue[];
  readonly constantTensors: ReadonlyMap<TensorRef, Tensor>;
  /** The traced example inputs per method (their dtypes and sizes), when the archive stored them. */
  readonly tracedInputs?: ReadonlyMap<string, readonly PyValue[]>;
  readonly e: FormatErrors;
  /** The source of a code record, by its path after the folder ("code/__torch__/x.py"); undefined when absent. */
  source(record: string): string | undefined;
}

/** True when a torch.jit.save archive carries code (and is not a plain torch.save zip). */
export function isScriptArchive(zip: ZipArchive): boolean {
  const folder = archiveFolder(zip);
  return folder !== undefined && zip.find(`${folder}constants.pkl`) !== undefined && zip.entries.some((x) => x.name.startsWith(`${folder}code/`));
}

function archiveFolder(zip: ZipArchive): string | undefined {
  const first = zip.entries[0];
  if (!first) return undefined;
  const slash = first.name.indexOf('/');
  return slash < 0 ? '' : first.name.slice(0, slash + 1);
}

export function openScriptZip(path: string): ZipArchive {
  return readZip(openAccess(path, undefined));
}

export function openScriptArchive(zip: ZipArchive): ScriptArchive {
  const e: FormatErrors = formatErrors(zip.file);
  const folder = archiveFolder(zip) ?? e.fail('zip archive', 'at least one record');
  const record = (name: string): ZipEntry | undefined => zip.find(folder + name);
  const byteorderEntry = record('byteorder');
  const byteorder = byteorderEntry ? new TextDecoder('latin1').decode(zip.read(byteorderEntry, { verify: true, maxSize: 16 })) : 'little';
  e.check(byteorder === 'little' || byteorder === 'big', `record ${folder}byteorder`, `"little" or "big", not ${JSON.stringify(escapeControl(byteorder.slice(0, 20)))}`);

  /** One pickle and the tensors it names, their storages in `storageDir`. */
  const load = (pkl: ZipEntry, storageDir: string, materialize = true): { value: PyValue; tensors: Map<TensorRef, Tensor> } => {
    const { refs, persistentLoad } = storageLoader();
    const value = unpickle(zip.read(pkl, { verify: true, maxSize: 1 << 30 }), { file: zip.file, where: pkl.name, resolver: torchResolver({ torchScript: true }), persistentLoad }).value;
    const storages = new Map<string, StorageData>();
    if (!materialize) return { value, tensors: new Map() };
    for (const [key, ref] of refs) {
      const entry = record(`${storageDir}/${key}`);
      e.check(entry !== undefined, `storage ${JSON.stringify(escapeControl(key))} of ${pkl.name}`, `a record ${folder}${storageDir}/${key}`);
      e.check(entry.size === ref.nbytes, `record ${entry.name}`, `${ref.nbytes} bytes as the pickle says, got ${entry.size}`);
      storages.set(key, { key, source: zip.source(entry, { maxSize: ref.nbytes }), bigEndian: byteorder === 'big' });
    }
    const tensors = new Map<TensorRef, Tensor>();
    const visit = (v: PyValue, name: string, depth: number): void => {
      if (depth > 200) return;
      if (v instanceof TensorRef) {
        if (!tensors.has(v)) tensors.set(v, materialise(v, storages.get(v.storage.key)!, name, e));
      } else if (v instanceof PyTuple || v instanceof PyList) v.items.forEach((x, i) => visit(x, `${name}[${i}]`, depth + 1));
      else if (v instanceof PyDict) for (const [k, x] of v.entries()) visit(x, `${name}.${String(k)}`, depth + 1);
      else if (v instanceof PyObject) visit(v.state, name, depth + 1);
    };
    visit(value, pkl.name, 0);
    return { value, tensors };
  };

  const dataPkl = record('data.pkl') ?? e.fail('zip archive', `a ${folder}data.pkl record (the module object)`);
  const data = load(dataPkl, 'data');
  e.check(data.value instanceof PyObject, `record ${dataPkl.name}`, 'a TorchScript module object (a __torch__ class instance)');
  const root = data.value;

  // Module FQNs and the state dict, in the order torch's state_dict() gives them.
  const paths = new Map<PyObject, string>();
  const weights = new Map<string, Tensor>();
  const walk = (m: PyObject, path: string, depth: number): void => {
    e.check(depth <= 100, `module ${JSON.stringify(escapeControl(path))}`, 'modules nested at most 100 deep');
    if (paths.has(m)) return;
    paths.set(m, path);
    if (!(m.state instanceof PyDict)) return;
    const subs: [PyObject, string][] = [];
    for (const [k, v] of m.state.entries()) {
      if (typeof k !== 'string') continue;
      const name = path ? `${path}.${k}` : k;
      if (v instanceof TensorRef) weights.set(name, data.tensors.get(v)!);
      else if (v instanceof PyObject && v.type.module.startsWith('__torch__')) subs.push([v, name]);
    }
    for (const [s, name] of subs) walk(s, name, depth + 1);
  };
  walk(root, '', 0);

  const constantsPkl = record('constants.pkl');
  const constants = constantsPkl ? load(constantsPkl, 'constants') : { value: new PyTuple([]), tensors: new Map<TensorRef, Tensor>() };
  e.check(constants.value instanceof PyTuple, `record ${constantsPkl?.name}`, 'a tuple of constants');

  const tracedPkl = record('traced_inputs.pkl');
  let tracedInputs: Map<string, readonly PyValue[]> | undefined;
  if (tracedPkl) {
    // Only the inputs' dtypes and sizes are used: torch writes their storage records empty.
    const traced = load(tracedPkl, 'traced_inputs', false);
    e.check(traced.value instanceof PyDict, `record ${tracedPkl.name}`, 'a dict of method names to example inputs');
    tracedInputs = new Map();
    for (const [k, v] of traced.value.entries()) {
      if (typeof k === 'string' && (v instanceof PyList || v instanceof PyTuple)) tracedInputs.set(k, v.items);
    }
  }

  const decoder = new TextDecoder('utf-8');
  return {
    zip,
    folder,
    root,
    paths,
    weights,
    byRef: data.tensors,
    constants: constants.value.items,
    constantTensors: constants.tensors,
    ...(tracedInputs ? { tracedInputs } : {}),
    e,
    source(name: string): string | undefined {
      const entry = record(name);
      if (!entry) return undefined;
      return decoder.decode(zip.read(entry, { verify: true, maxSize: MAX_SOURCE_BYTES }));
    },
  };
}
