import { MOUNT_FD_SPAN, type FileStat, type MountedFileSystem, type OpenFlags } from './vfs.js';

/**
 * An in-memory volume: the files a page (or a caller holding bytes) gives, mounted under a path
 * prefix so the path-based readers and writers work on it unchanged (see vfs.ts). Written by hand
 * because the few libraries that do this (memfs) emulate all of node:fs, callbacks and streams
 * included, and pull Node's buffer and events modules into a browser bundle; this needs twenty sync calls.
 *
 * A file is bytes, or a Blob read a range at a time where the platform can do that synchronously
 * (FileReaderSync, in a Web Worker): a large model given as a File is then never copied whole.
 */

/** A Blob as far as this module uses it (the project's lib has no DOM). */
export interface BlobLike {
  readonly size: number;
  slice(start: number, end: number): BlobLike;
  arrayBuffer(): Promise<ArrayBuffer>;
}

interface FileSyncReader {
  readAsArrayBuffer(blob: BlobLike): ArrayBuffer;
}

type Entry = { kind: 'dir' } | { kind: 'file'; data: Uint8Array; size: number; blob?: BlobLike; ino: number };

interface Open {
  path: string;
  writable: boolean;
  position: number;
}

let nextVolume = 1;
let nextIno = 1;

function fsError(code: string, syscall: string, path: string): Error {
  const error = new Error(`${code}: ${syscall} '${path}'`) as Error & { code: string; path: string; syscall: string };
  error.code = code;
  error.path = path;
  error.syscall = syscall;
  return error;
}

/** A sync Blob reader where the platform has one (Web Workers); undefined on a page's main thread and in Node. */
export function syncBlobReader(): FileSyncReader | undefined {
  const ctor = (globalThis as { FileReaderSync?: new () => FileSyncReader }).FileReaderSync;
  return ctor ? new ctor() : undefined;
}

export class MemoryVolume implements MountedFileSystem {
  readonly prefix: string;
  readonly fdBase: number;
  private readonly entries = new Map<string, Entry>();
  private readonly fds = new Map<number, Open>();
  private nextFd: number;
  private temp = 0;

  constructor() {
    const id = nextVolume++;
    this.prefix = `/@modelbridge-memory/${id}/`;
    // Far above what an OS hands out, and a distinct span per volume.
    this.fdBase = (1 << 30) + id * MOUNT_FD_SPAN;
    this.nextFd = this.fdBase;
    this.entries.set(this.root, { kind: 'dir' });
  }

  /** The volume's root directory (no trailing slash). */
  get root(): string {
    return this.prefix.slice(0, -1);
  }

  /** Adds a file at `relative` (a/b/c.bin), making its folders. */
  addFile(relative: string, bytes: Uint8Array | BlobLike): string {
    const path = this.resolve(`${this.root}/${relative}`);
    this.mkdirSync(parentOf(path), { recursive: true });
    if (bytes instanceof Uint8Array) this.entries.set(path, { kind: 'file', data: bytes, size: bytes.byteLength, ino: nextIno++ });
    else this.entries.set(path, { kind: 'file', data: new Uint8Array(0), size: bytes.size, blob: bytes, ino: nextIno++ });
    return path;
  }

  /** Every file under `dir`, as relative path -> bytes, in sorted order (deterministic output maps). */
  filesUnder(dir: string): Map<string, Uint8Array> {
    const base = this.resolve(dir);
    const out = new Map<string, Uint8Array>();
    for (const path of [...this.entries.keys()].sort()) {
      const e = this.entries.get(path)!;
      if (e.kind !== 'file') continue;
      if (path === base) out.set(path.slice(path.lastIndexOf('/') + 1), this.bytesOf(path, e));
      else if (path.startsWith(`${base}/`)) out.set(path.slice(base.length + 1), this.bytesOf(path, e));
    }
    return out;
  }

  private bytesOf(path: string, e: Entry & { kind: 'file' }): Uint8Array {
    if (e.blob) return this.readFileSync(path);
    return e.data.subarray(0, e.size);
  }

  /** Normalises a path: absolute, no '.', '..' or doubled slashes. */
  private resolve(path: string): string {
    const parts: string[] = [];
    for (const p of path.split('/')) {
      if (p === '' || p === '.') continue;
      if (p === '..') parts.pop();
      else parts.push(p);
    }
    return `/${parts.join('/')}`;
  }

  private get(path: string, syscall: string): Entry {
    const e = this.entries.get(this.resolve(path));
    if (!e) throw fsError('ENOENT', syscall, path);
    return e;
  }

  private file(path: string, syscall: string): Entry & { kind: 'file' } {
    const e = this.get(path, syscall);
    if (e.kind !== 'file') throw fsError('EISDIR', syscall, path);
    return e;
  }

  private stat(e: Entry): FileStat {
    const isFile = e.kind === 'file';
    return {
      size: isFile ? e.size : 0,
      mode: isFile ? 0o100644 : 0o40755,
      ino: isFile ? e.ino : 0,
      dev: this.fdBase,
      mtimeMs: 0,
      isFile: () => isFile,
      isDirectory: () => !isFile,
      isFIFO: () => false,
      isCharacterDevice: () => false,
      isBlockDevice: () => false,
      isSocket: () => false,
      isSymbolicLink: () => false,
    };
  }

  readFileSync(path: string): Uint8Array;
  readFileSync(path: string, encoding: 'utf8'): string;
  readFileSync(path: string, encoding?: 'utf8'): Uint8Array | string {
    const e = this.file(path, 'open');
    let bytes: Uint8Array;
    if (e.blob) {
      bytes = new Uint8Array(e.size);
      this.readInto(e, bytes, 0, e.size, 0);
    } else bytes = e.data.subarray(0, e.size);
    return encoding ? new TextDecoder().decode(bytes) : bytes;
  }

  private readInto(e: Entry & { kind: 'file' }, buffer: Uint8Array, offset: number, length: number, position: number): number {
    const n = Math.max(0, Math.min(length, e.size - position));
    if (n === 0) return 0;
    if (e.blob) {
      const reader = syncBlobReader();
      // readModel copies Blobs into memory where no sync reader exists, so this is a bug if reached.
      if (!reader) throw new Error('a Blob read synchronously outside a worker');
      buffer.set(new Uint8Array(reader.readAsArrayBuffer(e.blob.slice(position, position + n))), offset);
    } else buffer.set(e.data.subarray(position, position + n), offset);
    return n;
  }

  openSync(path: string, flags: OpenFlags): number {
    const p = this.resolve(path);
    const existing = this.entries.get(p);
    if (flags === 'wx' && existing) throw fsError('EEXIST', 'open', path);
    if (existing?.kind === 'dir' && flags !== 'r') throw fsError('EISDIR', 'open', path);
    if (flags === 'w' || flags === 'wx') {
      const parent = this.entries.get(parentOf(p));
      if (parent?.kind !== 'dir') throw fsError('ENOENT', 'open', path);
      this.entries.set(p, { kind: 'file', data: new Uint8Array(0), size: 0, ino: nextIno++ });
    } else if (!existing) throw fsError('ENOENT', 'open', path);
    if (this.nextFd >= this.fdBase + MOUNT_FD_SPAN) this.nextFd = this.fdBase;
    const fd = this.nextFd++;
    this.fds.set(fd, { path: p, writable: flags !== 'r', position: 0 });
    return fd;
  }

  private open(fd: number): Open {
    const o = this.fds.get(fd);
    if (!o) throw fsError('EBADF', 'read', String(fd));
    return o;
  }

  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number {
    const o = this.open(fd);
    const e = this.file(o.path, 'read');
    const n = this.readInto(e, buffer, offset, length, position ?? o.position);
    if (position === null) o.position += n;
    return n;
  }

  writeSync(fd: number, buffer: Uint8Array, offset = 0, length = buffer.byteLength - offset): number {
    const o = this.open(fd);
    if (!o.writable) throw fsError('EBADF', 'write', o.path);
    const e = this.file(o.path, 'write');
    const end = o.position + length;
    if (end > e.data.byteLength) {
      // Doubling growth: a streamed write of n bytes copies O(n) in all.
      const grown = new Uint8Array(Math.max(end, e.data.byteLength * 2, 1024));
      grown.set(e.data.subarray(0, e.size));
      e.data = grown;
    }
    e.data.set(buffer.subarray(offset, offset + length), o.position);
    o.position = end;
    e.size = Math.max(e.size, end);
    return length;
  }

  closeSync(fd: number): void {
    this.open(fd);
    this.fds.delete(fd);
  }

  fsyncSync(fd: number): void {
    this.open(fd);
  }

  fstatSync(fd: number): FileStat {
    return this.stat(this.get(this.open(fd).path, 'fstat'));
  }

  statSync(path: string): FileStat {
    return this.stat(this.get(path, 'stat'));
  }

  lstatSync(path: string): FileStat {
    return this.stat(this.get(path, 'lstat'));
  }

  existsSync(path: string): boolean {
    return this.entries.has(this.resolve(path));
  }

  readdirSync(path: string): string[] {
    const dir = this.resolve(path);
    if (this.get(path, 'scandir').kind !== 'dir') throw fsError('ENOTDIR', 'scandir', path);
    const names: string[] = [];
    for (const p of this.entries.keys()) if (p !== dir && parentOf(p) === dir) names.push(p.slice(dir.length + 1));
    return names.sort();
  }

  realpathSync(path: string): string {
    this.get(path, 'realpath');
    return this.resolve(path);
  }

  mkdirSync(path: string, options?: { recursive?: boolean }): void {
    const p = this.resolve(path);
    const e = this.entries.get(p);
    if (e) {
      if (options?.recursive && e.kind === 'dir') return;
      throw fsError('EEXIST', 'mkdir', path);
    }
    const parent = parentOf(p);
    if (!this.entries.has(parent)) {
      if (!options?.recursive || parent === p) throw fsError('ENOENT', 'mkdir', path);
      this.mkdirSync(parent, options);
    }
    this.entries.set(p, { kind: 'dir' });
  }

  mkdtempSync(prefix: string): string {
    const path = `${prefix}${(this.temp++).toString(36).padStart(6, '0')}`;
    this.mkdirSync(path);
    return path;
  }

  renameSync(from: string, to: string): void {
    const a = this.resolve(from);
    const b = this.resolve(to);
    const e = this.get(from, 'rename');
    const target = this.entries.get(b);
    if (target?.kind === 'dir' && (e.kind !== 'dir' || this.readdirSync(b).length > 0)) throw fsError(e.kind === 'dir' ? 'ENOTEMPTY' : 'EISDIR', 'rename', to);
    if (!this.entries.has(parentOf(b))) throw fsError('ENOENT', 'rename', to);
    for (const [p, entry] of [...this.entries]) {
      if (p === a || p.startsWith(`${a}/`)) {
        this.entries.delete(p);
        this.entries.set(b + p.slice(a.length), entry);
      }
    }
  }

  rmSync(path: string, options?: { recursive?: boolean; force?: boolean }): void {
    const p = this.resolve(path);
    const e = this.entries.get(p);
    if (!e) {
      if (options?.force) return;
      throw fsError('ENOENT', 'rm', path);
    }
    if (e.kind === 'dir' && !options?.recursive) throw fsError('ERR_FS_EISDIR', 'rm', path);
    for (const q of [...this.entries.keys()]) if (q === p || q.startsWith(`${p}/`)) this.entries.delete(q);
  }

  chmodSync(path: string): void {
    this.get(path, 'chmod');
  }
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}
