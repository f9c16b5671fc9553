import { realpathSync, statSync, type FileStat as Stats } from './vfs.js';
import { isAbsolute, relative } from 'node:path';
import { FormatError } from './errors.js';

/**
 * What a model may make us open. A model's files are regular files: opening a FIFO blocks for
 * ever, a device can be endless, and a socket cannot be read at all, so each is refused by its
 * kind before anything opens it. A file that a model names (a shard, external data, a data file
 * of a checkpoint) must also lie inside the model's own folder once symbolic links are resolved:
 * a downloaded model must not make us read ~/.ssh. MODELBRIDGE_ALLOW_OUTSIDE=1 lifts that second
 * rule for the rare layouts that share weights across folders on purpose.
 */

/** What a non-regular file is, in words, for the one-line refusal. */
function kindOf(stat: Stats): string {
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  if (stat.isDirectory()) return 'a directory';
  return 'not a regular file';
}

/**
 * The model path given by the user: a regular file or a directory, never a special file. Throws a
 * FormatError naming what it found; a missing path is left for the reader to report as it does.
 */
export function assertModelPath(path: string): void {
  let stat: Stats;
  try {
    stat = statSync(path);
  } catch {
    return;
  }
  if (!stat.isFile() && !stat.isDirectory()) throw new FormatError(path, 'path', `a model file or directory, not ${kindOf(stat)}`);
}

export function outsideAllowed(): boolean {
  return process.env['MODELBRIDGE_ALLOW_OUTSIDE'] === '1';
}

/**
 * A file that `model` (the file naming it, e.g. an index or model.json) refers to as `member`:
 * it must exist, be a regular file, and resolve to a place inside `root`. Returns its size.
 */
export function memberFile(model: string, where: string, root: string, member: string): number {
  let stat: Stats;
  try {
    stat = statSync(member);
  } catch {
    throw new FormatError(model, where, `an existing file at ${member}`);
  }
  if (!stat.isFile()) throw new FormatError(model, where, `a regular file at ${member}, not ${kindOf(stat)}`);
  if (!outsideAllowed()) {
    const real = realpathSync(member);
    const inside = relative(realpathSync(root), real);
    if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) {
      throw new FormatError(model, where, `a file inside the model's directory ${root}, but ${member} leads to ${real} (MODELBRIDGE_ALLOW_OUTSIDE=1 allows it)`);
    }
  }
  return stat.size;
}
