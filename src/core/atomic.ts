import { chmodSync, closeSync, existsSync, fsyncSync, lstatSync, mkdtempSync, openSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeSync, type FileStat as Stats } from './vfs.js';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from './errors.js';

/**
 * Every temporary file or directory modelbridge makes carries this mark and its process id, so a
 * later run can tell its own leftovers (a conversion killed with SIGKILL, or interrupted while
 * synchronous work kept Node's signal handlers from running) from the user's files, and remove
 * them once the process that made them is gone.
 */
const MARK = 'modelbridge-tmp';
const LEFTOVER = new RegExp(`^\\..*\\.${MARK}-(\\d+)-[0-9A-Za-z._-]+$`);

let watchDir: ((dir: string) => void) | undefined;

/**
 * Registers a function told of every directory that receives a temporary, before it is made (the
 * CLI's temp guard removes them when the process is interrupted; see src/cli/temp-guard.ts).
 */
export function setTempWatcher(watch: ((dir: string) => void) | undefined): void {
  watchDir = watch;
}

/** A temporary name beside `path` for the file or directory that will replace it. */
export function tempPath(path: string, suffix = ''): string {
  watchDir?.(resolve(dirname(path)));
  return join(dirname(path), `.${basename(path)}.${MARK}-${process.pid}-${Date.now().toString(36)}${suffix}`);
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the temporaries of dead modelbridge processes from `dir`; returns what it removed. */
export function sweepLeftovers(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const entry of entries) {
    const m = LEFTOVER.exec(entry);
    if (!m || alive(Number(m[1]))) continue;
    rmSync(join(dir, entry), { recursive: true, force: true });
    removed.push(entry);
  }
  return removed;
}

/**
 * Writes a file atomically: everything goes to a temporary file beside the target, which is
 * renamed over it only when complete, so a failure never leaves a partial output behind.
 * `write` receives a function that appends bytes.
 */
export function writeFileAtomic(path: string, write: (append: (bytes: Uint8Array) => void) => void): void {
  writeFilesAtomic((files) => {
    const file = files.add(path);
    write((bytes) => file.append(bytes));
  });
}

export function writeBytesAtomic(path: string, bytes: Uint8Array): void {
  writeFileAtomic(path, (append) => append(bytes));
}

/** A file of an AtomicFileSet being written: bytes go to its temporary file. */
export interface PendingFile {
  append(bytes: Uint8Array): void;
}

/**
 * Many files written as one output (a TF.js model's hundreds of 4 MiB shards and its model.json).
 * Each goes to a temporary file beside its target; `commit` syncs them all and only then renames
 * them, in the order they were added, so a failure before the commit leaves none of them behind.
 * One pass of fsyncs at the end lets the kernel write the files back together, where a sync per
 * file would wait for the disk once per shard.
 */
export class AtomicFileSet {
  private readonly files: { readonly path: string; readonly temp: string; fd: number | undefined }[] = [];

  /** Starts the next file, closing the one before (a set writes one file at a time). */
  add(path: string): PendingFile {
    this.closeLast();
    const temp = tempPath(path);
    const file = { path, temp, fd: openSync(temp, 'wx') as number | undefined };
    this.files.push(file);
    return {
      append(bytes) {
        if (file.fd === undefined) throw new Error(`${path} was already closed`);
        let done = 0;
        while (done < bytes.byteLength) done += writeSync(file.fd, bytes, done, bytes.byteLength - done);
      },
    };
  }

  /** Syncs every file, then renames each over its target. */
  commit(): void {
    this.closeLast();
    for (const f of this.files) {
      const fd = openSync(f.temp, 'r+');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    for (const f of this.files) renameSync(f.temp, f.path);
    this.files.length = 0;
  }

  /** Removes every temporary file not yet committed (safe to call after a commit). */
  abort(): void {
    this.closeLast();
    for (const f of this.files) rmSync(f.temp, { force: true });
    this.files.length = 0;
  }

  private closeLast(): void {
    const last = this.files.at(-1);
    if (last?.fd !== undefined) {
      closeSync(last.fd);
      last.fd = undefined;
    }
  }
}

/** Writes files through an AtomicFileSet: all of them, or on any error none. */
export function writeFilesAtomic(write: (files: AtomicFileSet) => void): void {
  const files = new AtomicFileSet();
  try {
    write(files);
    files.commit();
  } finally {
    files.abort();
  }
}

/** Refuses to replace an existing output unless forced; the CLI's --force maps here. */
export function assertWritable(path: string, force: boolean): void {
  if (!force && existsSync(path)) {
    throw new OutputExistsError(path);
  }
}

export class OutputExistsError extends Error {
  override readonly name = 'OutputExistsError';
  constructor(readonly path: string) {
    super(`${path} already exists (use --force to overwrite)`);
  }
}

function kindOf(stat: Stats): string {
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'a special file';
}

/**
 * Where an output really goes. Through a symbolic link, the file it points to (written in place of
 * the link's target, keeping its mode, as `cp` would); a special file (a FIFO, a device such as
 * /dev/stdout) is refused: the CLI takes `-` for standard output.
 */
export function outputTarget(path: string): { path: string; mode?: number } {
  let link: Stats;
  try {
    link = lstatSync(path);
  } catch {
    return { path };
  }
  let target = path;
  if (link.isSymbolicLink()) {
    try {
      target = realpathSync(path);
    } catch {
      throw new UsageError(`${path} is a symbolic link to nothing; remove it or give another output path`);
    }
  }
  // Stat through the link, not its resolved name: /dev/stdout resolves to a /proc name such as
  // "socket:[123]" for a pipe or socket, which no path reaches.
  const stat = statSync(path);
  if (stat.isDirectory()) return { path: target };
  if (!stat.isFile()) throw new UsageError(`${path} is ${kindOf(stat)}, not a regular file or directory to write a model to (use - for standard output)`);
  return { path: target, mode: stat.mode & 0o7777 };
}

/**
 * Writes an output of one or many files (a SavedModel or TF.js directory, a sharded bundle, an ONNX
 * file with its .data) crash-safely: `write` builds it under a temporary sibling directory, and only
 * a complete output is moved into place. A new directory appears in one rename; over an existing
 * model directory the new one is swapped in whole (the old one renamed aside, then removed), and in
 * a directory holding other files each entry is replaced on its own. A failure, a full disk, or a
 * kill leaves the target as it was (killed temporaries are swept by the next run here). Returns the
 * files written, at their final paths.
 */
export function writeOutputStaged(path: string, write: (staged: string) => string[]): string[] {
  const target = outputTarget(resolve(path));
  const dir = dirname(target.path);
  sweepLeftovers(dir);
  const stage = mkdtempSync(tempPath(target.path, '-'));
  try {
    const staged = join(stage, basename(target.path));
    const files = write(staged);
    if (target.mode !== undefined && existsSync(staged) && statSync(staged).isFile()) chmodSync(staged, target.mode);
    for (const entry of readdirSync(stage)) moveInto(join(stage, entry), join(dir, entry));
    return files.map((f) => (f.startsWith(stage) ? join(dir, f.slice(stage.length + 1)) : f));
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** Moves `from` over `to`: a rename, or for two directories a swap, or an entry-wise merge. */
function moveInto(from: string, to: string): void {
  let existing: Stats | undefined;
  try {
    existing = statSync(to);
  } catch {
    existing = undefined;
  }
  if (!existing || !existing.isDirectory() || !statSync(from).isDirectory()) {
    renameSync(from, to);
    return;
  }
  const fresh = new Set(readdirSync(from));
  if (readdirSync(to).every((e) => fresh.has(e))) {
    // Nothing of the user's would be lost: the whole model directory is swapped.
    const old = tempPath(to, '.old');
    renameSync(to, old);
    renameSync(from, to);
    rmSync(old, { recursive: true, force: true });
    return;
  }
  for (const entry of fresh) moveInto(join(from, entry), join(to, entry));
}

/**
 * Removes what a write produced (a conversion whose output failed its verification): the files,
 * then the folders they were in, up to and including `output`, where nothing else is left in them
 * (a folder also holding the user's other files stays, with those files).
 */
export function removeWritten(output: string, files: readonly string[]): void {
  const root = resolve(output);
  const dirs = new Set<string>();
  for (const file of files) {
    rmSync(file, { force: true, recursive: true });
    for (let d = dirname(resolve(file)); d === root || d.startsWith(`${root}/`); d = dirname(d)) dirs.add(d);
  }
  // Deepest first, so a folder is empty of its subfolders before it is looked at.
  for (const dir of [...dirs].sort((a, b) => b.length - a.length)) {
    try {
      if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true, force: true });
    } catch {
      // Already gone, or not readable: nothing of ours to remove there.
    }
  }
}
