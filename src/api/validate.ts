import { FormatError, UsageError } from '../core/errors.js';
import type { Model } from '../core/model.js';
import { progressPhase } from '../core/progress.js';
import type { FormatHandler } from '../formats/format.js';
import { detectFormat, formatByName, FORMATS } from '../formats/registry.js';
import type { ModuleSpec } from '../module/spec.js';
import { jsonNumber } from './checks/elements.js';
import { readTensorFile } from './checks/inputs.js';
import { checkGolden, checkRoundtrip, checkRuns } from './checks/run.js';
import { checkShapes } from './checks/shapes.js';
import { checkArchitecture, checkChecksums, checkFinite, checkOps, checkSignatures } from './checks/structure.js';
import { DEFAULT_TOLERANCE, result, type CheckContext, type CheckResult, type InputSet, type Tolerance } from './checks/types.js';

export type { CheckResult, CheckStatus, InputSet, InputValue, Tolerance } from './checks/types.js';
export { readTensorFile } from './checks/inputs.js';

/**
 * `validate`: per model, a list of checks that each pass, warn, fail or skip. Everything here works
 * over Model and the format registry, so a format added to FORMATS is validated without changes;
 * a format that can verify more than its reader does (checksums) exposes `validate(path)`.
 */

/** A model's verdict: the worst of its checks, or `unreadable` when it could not be read at all. */
export type ModelStatus = 'pass' | 'warn' | 'fail' | 'unreadable';

export interface ModelReport {
  readonly path: string;
  /** The detected (or --from) format; null when no format recognises the file. */
  readonly format: string | null;
  readonly status: ModelStatus;
  readonly checks: readonly CheckResult[];
}

export interface ValidateReport {
  readonly models: readonly ModelReport[];
  /** The worst model status. */
  readonly status: ModelStatus;
  readonly strict: boolean;
  readonly tolerance: Tolerance;
}

export interface ValidateOptions {
  /** Format name instead of detection (--from). */
  readonly format?: string;
  /** Architecture for bare state dicts (--module). */
  readonly module?: ModuleSpec;
  /** Warnings fail (--strict). */
  readonly strict?: boolean;
  /** Inputs to run on (a file path, or named tensors): replaces the generated input. */
  readonly inputs?: string | InputSet;
  /** Expected outputs for the golden check (a file path, or named tensors). */
  readonly expect?: string | InputSet;
  readonly atol?: number;
  readonly rtol?: number;
  /** Format names to convert through, in order, checking nothing changes. */
  readonly roundtrip?: readonly string[];
}

/** The checks every model gets, in report order (golden and roundtrip:<format> follow when asked). */
export const CHECK_NAMES = ['parse', 'checksums', 'architecture', 'ops', 'shapes', 'signatures', 'finite', 'runs'] as const;

const RANK: Readonly<Record<ModelStatus, number>> = { pass: 0, warn: 1, fail: 2, unreadable: 3 };

/** Exit code for a report: 0 pass (or warnings), 1 a check failed, 2 a file could not be read. */
export function exitCodeOf(status: ModelStatus): number {
  return status === 'unreadable' ? 2 : status === 'fail' ? 1 : 0;
}

interface Prepared {
  readonly strict: boolean;
  readonly tolerance: Tolerance;
  readonly inputs?: InputSet;
  readonly expect?: InputSet;
  readonly roundtrip: readonly FormatHandler[];
  readonly format?: FormatHandler;
  readonly module?: ModuleSpec;
}

/** Option checks happen once, before any model: a bad option is a usage error, not a failed check. */
function prepare(options: ValidateOptions): Prepared {
  const tolerance = { atol: options.atol ?? DEFAULT_TOLERANCE.atol, rtol: options.rtol ?? DEFAULT_TOLERANCE.rtol };
  for (const [k, v] of Object.entries(tolerance)) if (!(v >= 0)) throw new UsageError(`--${k} must be a number >= 0, not ${v}`);
  const load = (v: string | InputSet | undefined) => (typeof v === 'string' ? readTensorFile(v) : v);
  const roundtrip = (options.roundtrip ?? []).map((name) => formatByName(name));
  const inputs = load(options.inputs);
  const expect = load(options.expect);
  if (expect && !inputs) throw new UsageError('--expect needs --inputs: the outputs it gives are for those inputs');
  return {
    strict: options.strict ?? false,
    tolerance,
    roundtrip,
    ...(inputs ? { inputs } : {}),
    ...(expect ? { expect } : {}),
    ...(options.format ? { format: formatByName(options.format) } : {}),
    ...(options.module ? { module: options.module } : {}),
  };
}

/**
 * The format to read a model with. When no format recognises the bytes but the file's extension
 * names one, that format's reader gets to say what is wrong (a header length past the end of the
 * file is a better answer than "not a model"); otherwise detection's own error stands.
 */
function formatFor(path: string): FormatHandler {
  try {
    return detectFormat(path);
  } catch (error) {
    const lower = path.toLowerCase();
    const byName = FORMATS.find((f) => f.extensions.some((ext) => ext !== '' && lower.endsWith(ext)));
    if (error instanceof FormatError && byName && error.where !== 'path') return byName;
    throw error;
  }
}

/** A check that throws something other than a verdict is a bug: reported as a failed check, not a crash. */
function guarded(name: string, run: () => CheckResult | CheckResult[]): CheckResult[] {
  try {
    const r = run();
    return Array.isArray(r) ? r : [r];
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const kind = error instanceof FormatError || error instanceof UsageError ? '' : 'internal error (a modelbridge bug): ';
    return [result(name, 'fail', `${kind}${message.split('\n')[0]}`)];
  }
}

function validatePrepared(path: string, p: Prepared): ModelReport {
  let format: FormatHandler | undefined;
  let model: Model | undefined;
  let parse: CheckResult;
  try {
    format = p.format ?? formatFor(path);
    model = format.read(path, p.module ? { module: p.module } : {});
    let bytes = 0;
    let elements = 0;
    for (const t of model.weights.values()) {
      bytes += t.byteLength;
      elements += t.size;
    }
    parse = result('parse', 'pass', `read as ${format.name}: ${model.weights.size} tensors, ${elements.toLocaleString('en-US')} values, ${bytes.toLocaleString('en-US')} bytes`, { tensors: model.weights.size, elements, bytes });
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    const internal = !(error instanceof FormatError || error instanceof UsageError);
    const message = internal ? `internal error while reading (a modelbridge bug): ${error.message.split('\n')[0]}` : error.message;
    parse = result('parse', 'fail', message, error instanceof FormatError ? { file: error.file, where: error.where, expected: error.expected } : {});
  }
  const checks: CheckResult[] = [parse];
  // A format's own integrity checks run even when the reader gave up: they say more about why.
  const bytes = model ? [...model.weights.values()].reduce((n, t) => n + t.byteLength, 0) : 0;
  progressPhase('checksums', bytes);
  if (format) checks.push(...guarded('checksums', () => checkChecksums(path, format!)));
  else checks.push(result('checksums', 'skip', 'not run: no format recognises the file'));
  if (!model || !format) {
    for (const name of CHECK_NAMES.slice(2)) checks.push(result(name, 'skip', 'not run: the model could not be read'));
    if (p.expect) checks.push(result('golden', 'skip', 'not run: the model could not be read'));
    for (const f of p.roundtrip) checks.push(result(`roundtrip:${f.name}`, 'skip', 'not run: the model could not be read', { format: f.name }));
    return finish(path, format?.name ?? null, checks, p.strict, true);
  }
  const ctx: CheckContext = { path, format, model, strict: p.strict, tolerance: p.tolerance, roundtrip: p.roundtrip, ...(p.inputs ? { inputs: p.inputs } : {}), ...(p.expect ? { expect: p.expect } : {}) };
  checks.push(...guarded('architecture', () => checkArchitecture(ctx)));
  checks.push(...guarded('ops', () => checkOps(ctx)));
  checks.push(...guarded('shapes', () => checkShapes(ctx)));
  checks.push(...guarded('signatures', () => checkSignatures(ctx)));
  progressPhase('finite', bytes);
  checks.push(...guarded('finite', () => checkFinite(ctx)));
  progressPhase('outputs', model.graph ? bytes : 0);
  checks.push(...guarded('runs', () => checkRuns(ctx)));
  if (p.expect) checks.push(...guarded('golden', () => checkGolden(ctx)));
  if (p.roundtrip.length) checks.push(...guarded('roundtrip', () => checkRoundtrip(ctx)));
  return finish(path, format.name, checks, p.strict, false);
}

/** Applies --strict (a warning becomes a failure, marked "strict": true) and folds the statuses. */
function finish(path: string, format: string | null, raw: readonly CheckResult[], strict: boolean, unreadable: boolean): ModelReport {
  const checks = raw.map((c) => (strict && c.status === 'warn' ? { ...c, status: 'fail' as const, strict: true } : c));
  let status: ModelStatus = 'pass';
  for (const c of checks) {
    const s: ModelStatus = c.status === 'fail' ? 'fail' : c.status === 'warn' ? 'warn' : 'pass';
    if (RANK[s] > RANK[status]) status = s;
  }
  return { path, format, status: unreadable ? 'unreadable' : status, checks };
}

/** Validates one model file or directory. */
export function validateModel(path: string, options: ValidateOptions = {}): ModelReport {
  return validatePrepared(path, prepare(options));
}

/** Validates several models with the same options; the report's status is the worst of them. */
export function validateModels(paths: readonly string[], options: ValidateOptions = {}): ValidateReport {
  const p = prepare(options);
  const models = paths.map((path) => validatePrepared(path, p));
  const status = models.reduce<ModelStatus>((worst, m) => (RANK[m.status] > RANK[worst] ? m.status : worst), 'pass');
  return { models, status, strict: p.strict, tolerance: p.tolerance };
}

/** The report as JSON text (non-finite numbers as "NaN"/"Infinity" strings). */
export function validateReportJson(report: ValidateReport): string {
  return JSON.stringify(report, (_key, value) => (typeof value === 'number' ? jsonNumber(value) : value), 2);
}
