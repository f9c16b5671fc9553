import { FormatError } from './errors.js';
import type { FileSystem } from './vfs.js';

/**
 * The browser bundle's stand-in for vfs-node.ts (scripts/build.mjs swaps it in): a page has no
 * file system, only the bytes it was given, mounted as in-memory volumes. A path outside them
 * (a model naming ../other.bin, an output path) is refused in one line, as a missing file is.
 */
function none(path: string): never {
  throw new FormatError(path, 'path', 'a file among those given (there is no file system here: pass the bytes)');
}
function badFd(): never {
  throw new FormatError('(descriptor)', 'file', 'a file among those given (there is no file system here)');
}

export const nodeFileSystem: FileSystem = {
  readFileSync: ((path: string) => none(path)) as FileSystem['readFileSync'],
  openSync: none,
  readSync: badFd,
  writeSync: badFd,
  closeSync: badFd,
  fsyncSync: badFd,
  fstatSync: badFd,
  statSync: none,
  lstatSync: none,
  existsSync: () => false,
  readdirSync: none,
  realpathSync: none,
  mkdirSync: none,
  mkdtempSync: none,
  renameSync: none,
  rmSync: none,
  chmodSync: none,
};
