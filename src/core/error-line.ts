import { OutputExistsError } from './atomic.js';
import { FormatError, UsageError } from './errors.js';
import { escapeControl } from './printable.js';

/**
 * The one line an error is shown as, and its exit code: the CLI prints it on stderr, the web
 * page (src/api/bytes.ts errorLine) shows it, so an unreadable file reads the same in both.
 */

/** Exit codes: 1 a usage problem or failed check, 2 a file that could not be read, 70 a bug. */
export const EXIT = { ok: 0, usage: 1, badFile: 2, internal: 70 } as const;

/** What the system said, in words, for the errno codes a user can cause or fix. */
const ERRNO: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  EEXIST: 'already exists',
  ENOTEMPTY: 'directory not empty',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many levels of symbolic links',
  EXDEV: 'cross-device link',
  EIO: 'input/output error',
  EPIPE: 'broken pipe',
};

/**
 * One line for the user and the exit code; a stack trace only when MODELBRIDGE_DEBUG is set. The
 * line is escaped as a whole: names and paths inside it came from files and command lines.
 */
export function describeError(error: unknown): { line: string; code: number } {
  const { line, code } = describeRaw(error);
  return { line: escapeControl(line), code };
}

function describeRaw(error: unknown): { line: string; code: number } {
  if (error instanceof FormatError) return { line: `error: ${error.message}`, code: EXIT.badFile };
  if (error instanceof UsageError || error instanceof OutputExistsError) return { line: `error: ${error.message}`, code: EXIT.usage };
  const err = error as { code?: unknown; path?: unknown; syscall?: unknown } | null | undefined;
  // The environment refusing (a full disk, a missing permission) is no bug: one line, exit 1.
  if (err && typeof err.code === 'string' && ERRNO[err.code]) {
    const what = `${ERRNO[err.code]} (${err.code})`;
    const where = typeof err.path === 'string' ? `${err.path}: ` : '';
    const during = typeof err.path === 'string' || typeof err.syscall !== 'string' ? '' : ` during ${err.syscall}`;
    return { line: `error: ${where}${what}${during}`, code: EXIT.usage };
  }
  if (err && typeof err.code === 'string' && typeof err.path === 'string') {
    return { line: `error: ${err.path}: ${err.code}`, code: EXIT.usage };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { line: `internal error: ${message.split('\n')[0]} (set MODELBRIDGE_DEBUG=1 for details)`, code: EXIT.internal };
}

