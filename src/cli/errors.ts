import { describeError } from '../core/error-line.js';

export { EXIT, describeError } from '../core/error-line.js';

export function exitWithError(error: unknown): never {
  const { line, code } = describeError(error);
  process.stderr.write(`${line}\n`);
  if (process.env['MODELBRIDGE_DEBUG'] && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  process.exit(code);
}
