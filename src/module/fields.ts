import type { ModuleSpec } from './spec.js';

/**
 * Typed access to a module spec's constructor arguments. A missing field takes torch.nn's
 * default; a field of the wrong type is reported with the module's path, because specs arrive
 * from files written by other tools.
 */
export class SpecFieldError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

export class Fields {
  constructor(
    readonly spec: ModuleSpec,
    readonly path: string,
  ) {}

  private fail(field: string, expected: string): never {
    throw new SpecFieldError(this.path, `${this.spec.type}.${field} must be ${expected}, got ${JSON.stringify(this.spec[field])}`);
  }

  int(field: string, fallback?: number): number {
    const v = this.spec[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(field, 'an integer');
    return v;
  }

  positive(field: string, fallback?: number): number {
    const v = this.int(field, fallback);
    if (v <= 0) this.fail(field, 'a positive integer');
    return v;
  }

  float(field: string, fallback: number): number {
    const v = this.spec[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(field, 'a finite number');
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.spec[field] ?? fallback;
    if (typeof v !== 'boolean') this.fail(field, 'true or false');
    return v;
  }

  string(field: string, fallback: string, allowed: readonly string[]): string {
    const v = this.spec[field] ?? fallback;
    if (typeof v !== 'string' || !allowed.includes(v)) this.fail(field, `one of ${allowed.join(', ')}`);
    return v;
  }

  /** An int or a tuple of `n` ints (torch's `_pair`), expanded to `n` values. */
  tuple(field: string, n: number, fallback: number | readonly number[], min = 0): number[] {
    const v = this.spec[field] ?? fallback;
    const values = typeof v === 'number' ? new Array<number>(n).fill(v) : v;
    if (!Array.isArray(values) || values.length !== n || !values.every((x) => Number.isSafeInteger(x) && x >= min)) {
      this.fail(field, `an integer >= ${min} or a list of ${n} of them`);
    }
    return values as number[];
  }

  /** A list of positive ints, or a single int (LayerNorm's normalized_shape). */
  shape(field: string): number[] {
    const v = this.spec[field];
    const values = typeof v === 'number' ? [v] : v;
    if (!Array.isArray(values) || values.length === 0 || !values.every((x) => Number.isSafeInteger(x) && x > 0)) {
      this.fail(field, 'a positive integer or a list of them');
    }
    return values as number[];
  }

  /** Optional int (torch's `dim=None`). */
  optionalInt(field: string): number | undefined {
    const v = this.spec[field];
    if (v === undefined || v === null) return undefined;
    return this.int(field);
  }
}
