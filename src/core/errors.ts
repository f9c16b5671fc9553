/**
 * The one error a reader or writer raises for a bad file. It names the file, where in it the
 * problem is (byte offset, tensor or node name) and what was expected, so the CLI can print it
 * as a single line. Anything else escaping a reader is a bug.
 */
export class FormatError extends Error {
  override readonly name = 'FormatError';

  constructor(
    readonly file: string,
    readonly where: string,
    readonly expected: string,
  ) {
    super(`${file}: ${where}: ${expected}`);
  }
}

/** A request the library cannot honour (unsupported op, bad argument), distinct from a bad file. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * FormatError builders for one file so readers do not repeat its name at every check. Declare the
 * result with its type (`const e: FormatErrors = formatErrors(file)`): TypeScript requires that
 * for assertion functions.
 */
export interface FormatErrors {
  fail(where: string, expected: string): never;
  check(ok: boolean, where: string, expected: string): asserts ok;
}

export function formatErrors(file: string): FormatErrors {
  return {
    fail(where: string, expected: string): never {
      throw new FormatError(file, where, expected);
    },
    check(ok: boolean, where: string, expected: string): asserts ok {
      if (!ok) throw new FormatError(file, where, expected);
    },
  };
}
