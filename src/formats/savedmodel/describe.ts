import { existsSync, readFileSync } from '../../core/vfs.js';
import { join } from 'node:path';
import { formatShape } from '../../core/shape.js';
import type { DetailTable } from '../format.js';
import { tfTypeName } from '../tensorbundle/dtypes.js';
import { parseBundleIndex } from '../tensorbundle/reader.js';
import type { TensorInfo } from '../tf/messages.js';
import { shapeFromProto } from '../tf/tensor.js';
import { decodeSavedModel, savedModelDir } from './reader.js';

/** A TensorInfo's shape as saved_model_cli prints it: (-1, 2), () for a scalar, unknown_rank. */
function shapeText(info: TensorInfo): string {
  const shape = info.tensor_shape ? shapeFromProto(info.tensor_shape) : null;
  if (shape === null) return 'unknown_rank';
  return `(${shape.map((d) => d ?? -1).join(', ')})`;
}

/**
 * What `saved_model_cli show --all` lists — every tag set and every signature with its inputs'
 * and outputs' dtypes, shapes and graph tensors — plus the checkpoint's variables with their
 * shapes and sizes, read from variables.index alone.
 */
export function describeSavedModel(path: string): DetailTable[] {
  const dir = savedModelDir(path);
  const file = join(dir, 'saved_model.pb');
  const saved = decodeSavedModel(readFileSync(file), file);
  const tables: DetailTable[] = [];
  for (const meta of saved.meta_graphs) {
    const tags = (meta.meta_info_def?.tags ?? []).join(',');
    const version = meta.meta_info_def?.tensorflow_version;
    for (const key of Object.keys(meta.signature_def).sort()) {
      const sig = meta.signature_def[key]!;
      const rows: string[][] = [];
      for (const [kind, infos] of [['input', sig.inputs], ['output', sig.outputs]] as const) {
        for (const name of Object.keys(infos).sort()) {
          const info = infos[name]!;
          rows.push([kind, name, tfTypeName(info.dtype), shapeText(info), info.name]);
        }
      }
      const method = sig.method_name ? `, method ${sig.method_name}` : '';
      tables.push({ title: `tag-set '${tags}'${version ? ` (TensorFlow ${version})` : ''}: signature_def['${key}']${method}`, columns: ['', 'key', 'dtype', 'shape', 'tensor'], rows });
    }
  }
  const index = join(dir, 'variables', 'variables.index');
  if (existsSync(index)) {
    const { entries } = parseBundleIndex(readFileSync(index), index);
    const rows = [...entries].map(([name, entry]) => [name, tfTypeName(entry.dtype), formatShape(entry.shape), entry.size]);
    tables.push({ title: `variables (variables/variables.index, ${rows.length})`, columns: ['name', 'dtype', 'shape', 'bytes'], rows });
  }
  return tables;
}
