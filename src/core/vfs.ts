import { nodeFileSystem } from './vfs-node.js';

/**
 * The file-system seam between the readers/writers and the platform. Every reader and writer was
 * written against a synchronous subset of node:fs (open, read a range, stat, list, write, rename);
 * rather than rewrite each of them over a new interface, they import these functions of the same
 * names and shapes, and each call is routed by its path (or file descriptor) to a file system:
 * Node's own, or an in-memory volume mounted under a path prefix (vfs-memory.ts), which is what
 * readModel/writeModel over bytes use (src/api/bytes.ts) and all the browser has. Routing by path
 * rather than by a scope matters because readers hand out lazy sources (FileRangeSource, an ONNX
 * skeleton's file) that read long after the reader returned.
 *
 * The browser bundle swaps vfs-node.ts for vfs-none.ts (scripts/build.mjs), so its module graph
 * has no node:fs; there, a path outside every mounted volume is refused in one line.
 */

/** What a stat call tells: the subset of node:fs Stats the readers and writers look at. */
export interface FileStat {
  readonly size: number;
  readonly mode: number;
  readonly ino: number;
  readonly dev: number;
  readonly mtimeMs: number;
  isFile(): boolean;
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
  isSymbolicLink(): boolean;
}

/** Flags openSync is called with in this project. */
export type OpenFlags = 'r' | 'r+' | 'w' | 'wx';

/** The synchronous file operations modelbridge needs (the FileSource it reads through and the sink it writes to). */
export interface FileSystem {
  readFileSync(path: string): Uint8Array;
  readFileSync(path: string, encoding: 'utf8'): string;
  openSync(path: string, flags: OpenFlags, mode?: number): number;
  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number;
  writeSync(fd: number, buffer: Uint8Array, offset?: number, length?: number): number;
  closeSync(fd: number): void;
  fsyncSync(fd: number): void;
  fstatSync(fd: number): FileStat;
  statSync(path: string): FileStat;
  lstatSync(path: string): FileStat;
  existsSync(path: string): boolean;
  readdirSync(path: string): string[];
  realpathSync(path: string): string;
  mkdirSync(path: string, options?: { recursive?: boolean }): void;
  mkdtempSync(prefix: string): string;
  renameSync(from: string, to: string): void;
  rmSync(path: string, options?: { recursive?: boolean; force?: boolean }): void;
  chmodSync(path: string, mode: number): void;
}

/** A file system that answers for the paths under `prefix` and the descriptors in [fdBase, fdBase + 2^20). */
export interface MountedFileSystem extends FileSystem {
  readonly prefix: string;
  readonly fdBase: number;
}

const mounts: MountedFileSystem[] = [];

/** Makes `fs` answer for its prefix until unmount(fs). */
export function mount(fs: MountedFileSystem): void {
  mounts.push(fs);
}

export function unmount(fs: MountedFileSystem): void {
  const i = mounts.indexOf(fs);
  if (i >= 0) mounts.splice(i, 1);
}

/** How many volumes are mounted (for leak checks: a released model's volume is gone). */
export function mountedCount(): number {
  return mounts.length;
}

/** Descriptors of mounted volumes start above anything an OS hands out in practice. */
export const MOUNT_FD_SPAN = 1 << 20;

function byPath(path: string): FileSystem {
  for (const m of mounts) if (path === m.prefix.slice(0, -1) || path.startsWith(m.prefix)) return m;
  return nodeFileSystem;
}

function byFd(fd: number): FileSystem {
  for (const m of mounts) if (fd >= m.fdBase && fd < m.fdBase + MOUNT_FD_SPAN) return m;
  return nodeFileSystem;
}

export function readFileSync(path: string): Uint8Array;
export function readFileSync(path: string, encoding: 'utf8'): string;
export function readFileSync(path: string, encoding?: 'utf8'): Uint8Array | string {
  return encoding ? byPath(path).readFileSync(path, encoding) : byPath(path).readFileSync(path);
}
export const openSync = (path: string, flags: OpenFlags, mode?: number): number => byPath(path).openSync(path, flags, mode);
export const readSync = (fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number => byFd(fd).readSync(fd, buffer, offset, length, position);
export const writeSync = (fd: number, buffer: Uint8Array, offset?: number, length?: number): number => byFd(fd).writeSync(fd, buffer, offset, length);
export const closeSync = (fd: number): void => byFd(fd).closeSync(fd);
export const fsyncSync = (fd: number): void => byFd(fd).fsyncSync(fd);
export const fstatSync = (fd: number): FileStat => byFd(fd).fstatSync(fd);
export const statSync = (path: string): FileStat => byPath(path).statSync(path);
export const lstatSync = (path: string): FileStat => byPath(path).lstatSync(path);
export const existsSync = (path: string): boolean => byPath(path).existsSync(path);
export const readdirSync = (path: string): string[] => byPath(path).readdirSync(path);
export const realpathSync = (path: string): string => byPath(path).realpathSync(path);
export const mkdirSync = (path: string, options?: { recursive?: boolean }): void => byPath(path).mkdirSync(path, options);
export const mkdtempSync = (prefix: string): string => byPath(prefix).mkdtempSync(prefix);
export const renameSync = (from: string, to: string): void => byPath(from).renameSync(from, to);
export const rmSync = (path: string, options?: { recursive?: boolean; force?: boolean }): void => byPath(path).rmSync(path, options);
export const chmodSync = (path: string, mode: number): void => byPath(path).chmodSync(path, mode);
