import { UsageError } from './errors.js';

/**
 * The memory budget: how many bytes a file may make us allocate beyond the bytes it holds. Files
 * declare sizes (an inflated zip entry, a constant broadcast from one value, a densified sparse
 * tensor, a string tensor's elements, a checkpoint's prefix-compressed keys) that a small hostile
 * file can set to anything; every such size is checked here before anything is allocated, so a
 * 1 MB file cannot make a multi-GB process. Weights a file really holds are not counted: they are
 * the model's own size, and large ones stay in the file as lazy ranges.
 *
 * MODELBRIDGE_MAX_MEMORY sets it (bytes, or with a K/M/G/T suffix in powers of 1024); the default
 * is 256 MiB, far above what real models expand by (a few broadcast constants, a deflated
 * data.pkl of a few MB). docs/limits.md lists every check.
 */
export const DEFAULT_MAX_MEMORY = 256 * 1024 * 1024;

const UNITS: Readonly<Record<string, number>> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

export function memoryBudget(): number {
  const raw = process.env['MODELBRIDGE_MAX_MEMORY'];
  if (raw === undefined || raw.trim() === '') return DEFAULT_MAX_MEMORY;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(raw);
  const value = m ? Number(m[1]) * UNITS[m[2]!.toUpperCase()]! : NaN;
  if (!Number.isFinite(value) || value <= 0) {
    throw new UsageError(`MODELBRIDGE_MAX_MEMORY must be a size in bytes such as 268435456 or 256M, not ${JSON.stringify(raw)}`);
  }
  return Math.floor(value);
}

/** The claims of the model read in progress; outside one, each claim is checked on its own. */
let scope: { used: number } | undefined;

/** Runs one model read (loadModel does) with its claims added up against the budget. */
export function withExpansionScope<T>(read: () => T): T {
  const outer = scope;
  scope = { used: 0 };
  try {
    return read();
  } finally {
    scope = outer;
  }
}

/** A size in words for messages. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/**
 * Claims `bytes` of memory that `file` asks for beyond its own bytes (at `where`, for `what`).
 * Throws the one-line error through `fail` when the claims of this read pass the budget.
 */
export function claimExpansion(fail: (where: string, expected: string) => never, where: string, what: string, bytes: number): void {
  const budget = memoryBudget();
  const used = scope?.used ?? 0;
  if (!(bytes >= 0) || used + bytes > budget) {
    fail(where, `${what} within the memory budget of ${formatSize(budget)} (set MODELBRIDGE_MAX_MEMORY to allow more), not ${Number.isFinite(bytes) ? formatSize(bytes) : 'an unbounded size'}${used > 0 ? ` after ${formatSize(used)} already expanded` : ''}`);
  }
  if (scope) scope.used += bytes;
}
