import { existsSync, readdirSync, statSync } from '../../core/vfs.js';
import { join } from 'node:path';
import { FormatError } from '../../core/errors.js';
import type { Model } from '../../core/model.js';
import * as bundle from '../../module/bundle.js'; // lazy in the CLI bundle
import type { FormatHandler } from '../format.js';
import { looksLikeSafetensors } from './detect.js';
import * as reader from './reader.js'; // lazy in the CLI bundle
import * as writer from './writer.js'; // lazy in the CLI bundle

const INDEX_SUFFIX = '.safetensors.index.json';

/** safetensors as modelbridge's pickle-free state-dict bundle: the module spec rides in __metadata__. */
export const safetensorsFormat: FormatHandler = {
  name: 'safetensors',
  title: 'safetensors state-dict bundle (single file or sharded index)',
  extensions: ['.safetensors', INDEX_SUFFIX],
  detect(probe) {
    if (probe.isDirectory) return probe.entries.some((e) => e.endsWith(INDEX_SUFFIX) || e.endsWith('.safetensors'));
    return probe.path.endsWith(INDEX_SUFFIX) || looksLikeSafetensors(probe.head, probe.size);
  },
  read(path, options): Model {
    const target = statSafe(path)?.isDirectory() ? bundleInDirectory(path) : path;
    const file = target.endsWith(INDEX_SUFFIX) ? reader.readSafetensorsIndex(target) : reader.readSafetensorsFile(target);
    return bundle.modelFromBundle({ tensors: file.tensors, metadata: file.metadata ?? {} }, 'safetensors', path, options.module);
  },
  write(model, path, options) {
    const parts = bundle.bundleFromModel(model);
    // No metadata at all is written as no __metadata__, as safetensors' own writer does.
    const metadata = Object.keys(parts.metadata).length ? parts.metadata : undefined;
    const isDir = path.endsWith('/') || (statSafe(path)?.isDirectory() ?? false);
    if (isDir || options.shardBytes !== undefined) {
      return writer.writeSafetensorsSharded(path, parts.tensors, metadata, options.shardBytes ?? 5e9);
    }
    writer.writeSafetensorsFile(path, parts.tensors, metadata);
    return [path];
  },
};

function statSafe(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** A directory holds a sharded bundle (its index) or a single model.safetensors. */
function bundleInDirectory(dir: string): string {
  const index = readdirSync(dir).filter((e) => e.endsWith(INDEX_SUFFIX)).sort();
  if (index.length === 1) return join(dir, index[0]!);
  if (index.length > 1) throw new FormatError(dir, 'directory', `one ${INDEX_SUFFIX} file, found ${index.length}`);
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return single;
  throw new FormatError(dir, 'directory', `model.safetensors or a ${INDEX_SUFFIX} file`);
}
