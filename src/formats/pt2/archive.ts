import type { DType } from '../../core/dtypes.js';
import { formatErrors, type FormatErrors } from '../../core/errors.js';
import type { Dim } from '../../core/graph.js';
import { escapeControl } from '../../core/printable.js';
import type { Tensor } from '../../core/tensor.js';
import { openAccess } from '../pytorch/bytes.js';
import { parsePytorch } from '../pytorch/reader.js';
import { materialise, type StorageData } from '../pytorch/tensors.js';
import { StorageRef, TensorRef, TORCH_DTYPES, type TorchDtype } from '../pytorch/torch-types.js';
import { readZip, type ZipArchive, type ZipEntry } from '../pytorch/zip.js';
import { asArray, asBool, asInt, asObject, asString, isObject, parseJson, union, type Json, type JsonObject } from './json.js';

/**
 * The torch.export.save archive (torch/export/pt2_archive/_package.py, constants in
 * torch/csrc/export/pt2_archive_constants.h): a zip written by PyTorchFileWriter whose records sit
 * under one folder (the file's stem), with
 *   archive_format                         "pt2"
 *   archive_version                        "0" (the archive layout; absent means 0)
 *   models/<name>.json                     the serialized ExportedProgram (schema.py), JSON
 *   data/weights/<name>_weights_config.json   PayloadConfig: state-dict FQN -> {path_name,
 *                                          is_param, use_pickle, tensor_meta}
 *   data/weights/weight_<k>                raw storage bytes (or a torch.save zip when use_pickle)
 *   data/constants/<name>_constants_config.json, data/constants/tensor_<k>   the same for lifted
 *                                          constants and non-persistent buffers
 *   data/sample_inputs/<name>.pt           torch.save of the example inputs (not read here)
 * A pickled payload (torch.save of a tensor subclass) is read by the allowlist unpickler, which
 * refuses any global it does not know; nothing in the archive is executed.
 */

export const ARCHIVE_FORMAT = 'pt2';
/** The archive layouts this reader knows (ARCHIVE_VERSION_VALUE in torch 2.13). */
export const ARCHIVE_VERSIONS: readonly number[] = [0];
/** ExportedProgram schema majors this reader knows (schema.py SCHEMA_VERSION = (8, 20) in torch 2.13). */
export const SCHEMA_MAJORS: readonly number[] = [8];

/** schema.ScalarType codes. */
const SCALAR_TYPES: ReadonlyMap<number, string> = new Map([
  [1, 'uint8'], [2, 'int8'], [3, 'int16'], [4, 'int32'], [5, 'int64'], [6, 'float16'], [7, 'float32'], [8, 'float64'],
  [9, 'complex32'], [10, 'complex64'], [11, 'complex128'], [12, 'bool'], [13, 'bfloat16'], [28, 'uint16'],
  [29, 'float8_e4m3fn'], [30, 'float8_e5m2'], [31, 'float8_e4m3fnuz'], [32, 'float8_e5m2fnuz'], [33, 'float8_e8m0fnu'],
  [34, 'uint32'], [35, 'uint64'],
]);

/** Ours to schema.ScalarType, for the writer. */
export const SCALAR_TYPE_CODES: ReadonlyMap<DType, number> = new Map(
  [...SCALAR_TYPES].flatMap(([code, name]) => {
    const d = TORCH_DTYPES.get(name)?.dtype;
    return d ? [[d, code] as const] : [];
  }),
);

export function torchDtype(code: Json | undefined, where: string, e: FormatErrors): TorchDtype {
  const n = asInt(code, where, e);
  const name = SCALAR_TYPES.get(n);
  e.check(name !== undefined, where, `a torch scalar type code (schema.ScalarType), not ${n}`);
  return TORCH_DTYPES.get(name)!;
}

export function scalarType(code: Json | undefined, where: string, e: FormatErrors): DType {
  const t = torchDtype(code, where, e);
  e.check(t.dtype !== undefined, where, `a dtype modelbridge can hold, not torch.${t.name}`);
  return t.dtype;
}

/** A SymInt of tensor metadata: an int, or a symbol ("s77", from "Symbol('s77', positive=True, integer=True)"). */
export function symDim(v: Json | undefined, where: string, e: FormatErrors): Dim {
  const [tag, value] = union(v, where, e);
  if (tag === 'as_int') return asInt(value, where, e);
  e.check(tag === 'as_expr', where, 'a SymInt (as_int or as_expr)');
  const expr = asString(asObject(value, where, e)['expr_str'], `${where} expr_str`, e);
  const symbol = /^Symbol\('([A-Za-z_][A-Za-z0-9_]*)'/.exec(expr);
  return symbol ? symbol[1]! : expr.replace(/\s+/g, '');
}

export interface TensorMetaInfo {
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

export function tensorMeta(v: Json | undefined, where: string, e: FormatErrors): TensorMetaInfo {
  const o = asObject(v, where, e);
  const sizes = asArray(o['sizes'], `${where} sizes`, e).map((s, i) => symDim(s, `${where} sizes[${i}]`, e));
  return { dtype: scalarType(o['dtype'], `${where} dtype`, e), shape: sizes };
}

export interface Pt2Archive {
  readonly zip: ZipArchive;
  readonly folder: string;
  readonly modelName: string;
  readonly program: JsonObject;
  /** Parameters and persistent buffers by FQN, then constants (lifted tensors, non-persistent buffers). */
  readonly weights: ReadonlyMap<string, Tensor>;
  readonly constants: ReadonlyMap<string, Tensor>;
  readonly schemaVersion: string;
  readonly torchVersion: string;
}

/** The archive's folder and whether it says it is a pt2 archive, or undefined for another zip. */
export function pt2Folder(zip: ZipArchive): string | undefined {
  const first = zip.entries[0];
  if (!first) return undefined;
  const slash = first.name.indexOf('/');
  const folder = slash < 0 ? '' : first.name.slice(0, slash + 1);
  const entry = zip.find(`${folder}archive_format`);
  if (!entry || entry.size > 16) return undefined;
  return new TextDecoder('latin1').decode(zip.read(entry, { maxSize: 16 })) === ARCHIVE_FORMAT ? folder : undefined;
}

export function openPt2(path: string, options: { lazy?: boolean; verifyCrc?: boolean } = {}): Pt2Archive {
  const access = openAccess(path, options.lazy);
  const zip = readZip(access);
  return readArchive(zip, options.verifyCrc ?? !options.lazy);
}

export function readArchive(zip: ZipArchive, verifyCrc: boolean): Pt2Archive {
  const e: FormatErrors = formatErrors(zip.file);
  const folder = pt2Folder(zip);
  e.check(folder !== undefined, 'zip archive', 'a torch.export archive: a record <folder>/archive_format holding "pt2"');
  const record = (name: string): ZipEntry | undefined => zip.find(folder + name);
  const small = (entry: ZipEntry): Uint8Array => zip.read(entry, { verify: true, maxSize: 1 << 30 });

  const versionEntry = record('archive_version');
  const versionText = versionEntry ? new TextDecoder('latin1').decode(small(versionEntry)).trim() : '0';
  e.check(/^\d{1,6}$/.test(versionText) && ARCHIVE_VERSIONS.includes(Number(versionText)), `record ${folder}archive_version`, `a pt2 archive version modelbridge knows (${ARCHIVE_VERSIONS.join(', ')}), not ${JSON.stringify(escapeControl(versionText.slice(0, 20)))}`);

  const models = zip.entries.filter((x) => x.name.startsWith(`${folder}models/`) && x.name.endsWith('.json')).map((x) => x.name.slice(`${folder}models/`.length, -'.json'.length));
  e.check(models.length > 0, 'zip archive', `a serialized program ${folder}models/<name>.json (this pt2 archive holds none: AOTInductor-only packages hold compiled code, not a graph)`);
  const modelName = models.includes('model') ? 'model' : models.length === 1 ? models[0]! : e.fail('zip archive', `one program, or one called "model"; this archive holds ${models.map((m) => JSON.stringify(escapeControl(m))).join(', ')}`);

  const programEntry = record(`models/${modelName}.json`)!;
  const program = asObject(parseJson(small(programEntry), `record ${programEntry.name}`, e), `record ${programEntry.name}`, e);
  const where = `record ${programEntry.name}`;
  const version = asObject(program['schema_version'], `${where} schema_version`, e);
  const major = asInt(version['major'], `${where} schema_version.major`, e);
  const minor = asInt(version['minor'], `${where} schema_version.minor`, e);
  e.check(SCHEMA_MAJORS.includes(major), `${where} schema_version`, `an ExportedProgram schema version modelbridge knows (major ${SCHEMA_MAJORS.join(', ')}, as torch 2.5 to 2.13 write), not ${major}.${minor}`);
  const torchVersion = typeof program['torch_version'] === 'string' ? program['torch_version'] : '';

  const weights = readPayloads(zip, folder, 'weights', `data/weights/${modelName}_weights_config.json`, verifyCrc, e);
  const constants = readPayloads(zip, folder, 'constants', `data/constants/${modelName}_constants_config.json`, verifyCrc, e);
  return { zip, folder, modelName, program, weights, constants, schemaVersion: `${major}.${minor}`, torchVersion };
}

/** Every tensor a payload config names; tensors sharing a record share its storage, as torch aliases them. */
function readPayloads(zip: ZipArchive, folder: string, kind: 'weights' | 'constants', configName: string, verifyCrc: boolean, e: FormatErrors): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const configEntry = zip.find(folder + configName);
  if (!configEntry) {
    // torch writes both configs even when empty; older archives kept a pickled <name>.pt instead.
    e.check(!zip.find(`${folder}data/${kind}/${configName.split('/').pop()!.split('_')[0]}.pt`), `record ${folder}data/${kind}/`, `${kind} in the payload-config layout of torch >= 2.8 (this archive has the older pickled layout; re-save it with torch.export.save)`);
    return out;
  }
  const where = `record ${configEntry.name}`;
  const config = asObject(asObject(parseJson(zip.read(configEntry, { verify: true, maxSize: 1 << 30 }), where, e), where, e)['config'], `${where} config`, e);
  const storages = new Map<string, StorageData>();
  for (const [fqn, metaJson] of Object.entries(config)) {
    const at = `${where} ${JSON.stringify(escapeControl(fqn))}`;
    const meta = asObject(metaJson, at, e);
    const pathName = asString(meta['path_name'], `${at} path_name`, e);
    e.check(/^[A-Za-z0-9_.-]+$/.test(pathName), `${at} path_name`, 'a record name inside the archive folder');
    const entry = zip.find(`${folder}data/${kind}/${pathName}`);
    e.check(entry !== undefined, `${kind} ${JSON.stringify(escapeControl(fqn))}`, `its record ${folder}data/${kind}/${pathName} in the archive`);
    if (asBool(meta['use_pickle'], `${at} use_pickle`, e)) {
      // torch.save of a tensor (subclass), written by torch.save into the record: the same safe
      // reader as any .pt file, so a hostile pickle is refused by name before anything else.
      const file = parsePytorch(zip.read(entry, { verify: true }), `${zip.file} record ${entry.name}`);
      const only = [...file.tensors.values()];
      e.check(only.length === 1, `${kind} ${JSON.stringify(escapeControl(fqn))}`, 'one pickled tensor in its record');
      out.set(fqn, only[0]!);
      continue;
    }
    const tmeta = asObject(meta['tensor_meta'], `${at} tensor_meta`, e);
    const dtype = torchDtype(tmeta['dtype'], `${at} tensor_meta.dtype`, e);
    const ints = (key: string) => asArray(tmeta[key], `${at} tensor_meta.${key}`, e).map((s, i) => {
      const d = symDim(s, `${at} tensor_meta.${key}[${i}]`, e);
      e.check(typeof d === 'number' && d >= 0, `${at} tensor_meta.${key}[${i}]`, 'a static, non-negative size');
      return d;
    });
    const size = ints('sizes');
    const stride = ints('strides');
    e.check(stride.length === size.length, `${at} tensor_meta.strides`, `one stride per dimension (${size.length})`);
    const offset = symDim(tmeta['storage_offset'], `${at} tensor_meta.storage_offset`, e);
    e.check(typeof offset === 'number' && offset >= 0, `${at} tensor_meta.storage_offset`, 'a static, non-negative offset');
    let storage = storages.get(pathName);
    if (!storage) {
      if (verifyCrc) zip.verify(entry);
      storage = { key: pathName, source: zip.source(entry), bigEndian: false };
      storages.set(pathName, storage);
    }
    // torch (_build_file_map) reads the record as size/element_size elements of the dtype; an
    // empty record is a tensor of zeros (fake or empty tensors).
    const ref = new TensorRef(new StorageRef(pathName, dtype, entry.size), dtype, offset, size, stride, false, isObject(meta) && meta['is_param'] === true);
    if (entry.size === 0 && size.reduce((a, b) => a * b, 1) > 0) {
      e.fail(`${kind} ${JSON.stringify(escapeControl(fqn))}`, `the tensor's bytes in record ${entry.name} (it is empty: a fake tensor was saved)`);
    }
    out.set(fqn, materialise(ref, storage, fqn, e));
  }
  return out;
}
