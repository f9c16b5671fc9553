import * as fs from 'node:fs';
import type { FileSystem } from './vfs.js';

/** Node's own file system behind the seam of vfs.ts (the browser bundle swaps in vfs-none.ts). */
export const nodeFileSystem: FileSystem = {
  readFileSync: fs.readFileSync as FileSystem['readFileSync'],
  openSync: (path, flags, mode) => fs.openSync(path, flags, mode),
  readSync: (fd, buffer, offset, length, position) => fs.readSync(fd, buffer, offset, length, position),
  writeSync: (fd, buffer, offset, length) => fs.writeSync(fd, buffer, offset, length),
  closeSync: (fd) => fs.closeSync(fd),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  fstatSync: (fd) => fs.fstatSync(fd),
  statSync: (path) => fs.statSync(path),
  lstatSync: (path) => fs.lstatSync(path),
  existsSync: (path) => fs.existsSync(path),
  readdirSync: (path) => fs.readdirSync(path),
  realpathSync: (path) => fs.realpathSync(path),
  mkdirSync: (path, options) => void fs.mkdirSync(path, options),
  mkdtempSync: (prefix) => fs.mkdtempSync(prefix),
  renameSync: (from, to) => fs.renameSync(from, to),
  rmSync: (path, options) => fs.rmSync(path, options),
  chmodSync: (path, mode) => fs.chmodSync(path, mode),
};
