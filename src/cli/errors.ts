import { OutputExistsError } from '../core/atomic.js';
import { FormatError, UsageError } from '../core/errors.js';

/** Exit codes: 1 a usage problem or failed check, 2 a file that could not be read, 70 a bug. */
export const EXIT = { ok: 0, usage: 1, badFile: 2, internal: 70 } as const;

/** One line for the user and the exit code; a stack trace only when MODELBRIDGE_DEBUG is set. */
export function describeError(error: unknown): { line: string; code: number } {
  if (error instanceof FormatError) return { line: `error: ${error.message}`, code: EXIT.badFile };
  if (error instanceof UsageError || error instanceof OutputExistsError) return { line: `error: ${error.message}`, code: EXIT.usage };
  const err = error as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && typeof err.path === 'string') {
    return { line: `error: ${err.path}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.code}`, code: EXIT.usage };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { line: `internal error: ${message.split('\n')[0]} (set MODELBRIDGE_DEBUG=1 for details)`, code: EXIT.internal };
}

export function exitWithError(error: unknown): never {
  const { line, code } = describeError(error);
  process.stderr.write(`${line}\n`);
  if (process.env['MODELBRIDGE_DEBUG'] && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  process.exit(code);
}
