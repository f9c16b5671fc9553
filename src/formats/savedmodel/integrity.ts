import { existsSync } from '../../core/vfs.js';
import { join } from 'node:path';
import { FormatError } from '../../core/errors.js';
import type { IntegrityCheck } from '../format.js';
import { verifyTensorBundle } from '../tensorbundle/reader.js';
import { savedModelDir } from './reader.js';

/**
 * What `validate` checks of a SavedModel beyond parsing: the checkpoint in variables/ carries a
 * masked CRC-32C for every block of variables.index and for every tensor's bytes in the data
 * files, as TensorFlow verifies them on restore. The index is one check (it parses, every block
 * CRC matches); the tensors another, naming each one whose bytes do not match.
 */
export function savedModelIntegrity(path: string): IntegrityCheck[] {
  const prefix = join(savedModelDir(path), 'variables', 'variables');
  if (!existsSync(`${prefix}.index`)) return [{ name: 'checksums', status: 'skip', message: 'no variables/variables.index: the SavedModel has no checkpoint to verify' }];
  let result: ReturnType<typeof verifyTensorBundle>;
  try {
    result = verifyTensorBundle(prefix);
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    return [
      { name: 'checksums:index', status: 'fail', message: err.message },
      { name: 'checksums:tensors', status: 'skip', message: 'not run: the index could not be read' },
    ];
  }
  const bad = result.tensors.filter((t) => t.error);
  const index: IntegrityCheck = { name: 'checksums:index', status: 'pass', message: `variables.index: every block's CRC-32C matches (${result.tensors.length} entries, ${result.header.numShards} data file(s))` };
  if (!bad.length) return [index, { name: 'checksums:tensors', status: 'pass', message: `every tensor's CRC-32C matches its bytes (${result.tensors.length} tensors)` }];
  const shown = bad.slice(0, 5).map((t) => t.error!.message);
  const more = bad.length > shown.length ? `; and ${bad.length - shown.length} more` : '';
  return [index, { name: 'checksums:tensors', status: 'fail', message: `${bad.length} of ${result.tensors.length} tensors fail their check: ${shown.join('; ')}${more}` }];
}
