/**
 * Model versions as TF Serving manages them: a base path holds numbered version folders
 * (`BASE/<version>/...`), a version policy says which of them should be served, and each one
 * goes START -> LOADING -> AVAILABLE -> UNLOADING -> END (tensorflow_serving/apis/
 * get_model_status.proto). A new version is loaded and checked before it becomes current, and
 * the switch is one assignment on the event loop, so a request sees either the old or the new
 * version, never half of one. A request holds the version it started on until it finishes; an
 * unloaded version is dropped only when its last request is done. A version that fails its
 * checks is refused (END with the error) and the versions already serving keep serving, as TF
 * Serving's availability-preserving policy does.
 *
 * Folders are noticed by fs.watch and, because watching is not reliable on every file system
 * (network mounts, some containers), by polling as well. A folder is loaded only once its file
 * list, sizes and modification times are unchanged between two looks `settleMs` apart, so a
 * version still being copied is not loaded half-way; a refused version is tried again when its
 * files change.
 */
import { existsSync, readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../api/load.js';
import { Runner } from '../api/run.js';
import { validateModel, type ModelReport } from '../api/validate.js';
import { readTensorFile } from '../api/checks/inputs.js';
import { FormatError, UsageError } from '../core/errors.js';
import type { Model, Signature } from '../core/model.js';
import { detectFormat } from '../formats/registry.js';
import type { ModelConfig, VersionPolicy } from './config.js';
import { invalidArgument, ServeError, type StatusCode } from './status.js';
import type { WorkerPool } from './pool.js';

export type VersionState = 'START' | 'LOADING' | 'AVAILABLE' | 'UNLOADING' | 'END';

/** What the manager tells its log: one structured event per state change or refusal. */
export interface ManagerLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** The signature TF Serving uses when a request names none. */
export const DEFAULT_SIGNATURE = 'serving_default';

/** Golden files a version folder may hold: the model must give these outputs for these inputs. */
const GOLDEN = /^golden-(inputs|outputs)\.(npz|npy|json)$/;

/** One loaded version: its model, a Runner per signature used, and the requests it is serving. */
export class LoadedVersion {
  inflight = 0;
  private readonly runners = new Map<string, Runner>();

  constructor(
    readonly modelName: string,
    readonly version: number,
    readonly path: string,
    readonly model: Model,
    readonly onDrained: (v: LoadedVersion) => void,
  ) {}

  /** The signature a request names (or the default one); INVALID_ARGUMENT as TF Serving words it. */
  runner(signatureName: string | undefined): Runner {
    const name = signatureName === undefined || signatureName === '' ? DEFAULT_SIGNATURE : signatureName;
    let r = this.runners.get(name);
    if (r) return r;
    const signature = this.signature(name);
    if (!signature) throw invalidArgument(`Serving signature name: "${name}" not found in signature def`);
    r = new Runner(this.model, signature.name);
    this.runners.set(name, r);
    return r;
  }

  /**
   * Signatures as served: a model from a format without named signatures (ONNX, safetensors ...)
   * has one, `default`, which is served as `serving_default` so TF Serving clients find it.
   */
  signatures(): Array<[string, Signature]> {
    const list = this.model.signatures;
    const hasDefault = list.some((s) => s.name === DEFAULT_SIGNATURE);
    return list.map((s, i) => [!hasDefault && i === 0 ? DEFAULT_SIGNATURE : s.name, s]);
  }

  private signature(name: string): Signature | undefined {
    return this.signatures().find(([n]) => n === name)?.[1] ?? this.model.signatures.find((s) => s.name === name);
  }

  /** The name worker threads know this version by. */
  get key(): string {
    return `${this.modelName}/${this.version}`;
  }

  release(): void {
    this.inflight--;
    if (this.inflight === 0) this.onDrained(this);
  }
}

interface VersionRecord {
  state: VersionState;
  /** The folder's file list, sizes and times when last looked at. */
  fingerprint?: string;
  /** When that fingerprint was first seen (for settling). */
  seenAt?: number;
  /** The fingerprint a refused version was refused with: tried again only when it changes. */
  refusedAt?: string;
  error?: { code: StatusCode; message: string };
  loaded?: LoadedVersion;
}

export interface ManagerOptions {
  /** Polling interval (TF Serving's --file_system_poll_wait_seconds), ms; 0 disables polling. */
  readonly pollMs: number;
  /** How long a new folder must stay unchanged before it is loaded, ms. */
  readonly settleMs: number;
  /** Watch the base paths with fs.watch as well (default true). */
  readonly watch?: boolean;
  readonly log: ManagerLog;
  /** Worker threads that run requests (serve --workers): each loads every version too. */
  readonly pool?: WorkerPool;
}

/** One configured model: its versions by number. */
class ServedModel {
  readonly versions = new Map<number, VersionRecord>();
  /** The highest AVAILABLE version, kept current so a request finds it in O(1). */
  latest: LoadedVersion | undefined;

  constructor(readonly config: ModelConfig) {}

  refreshLatest(): void {
    let best: LoadedVersion | undefined;
    for (const [v, r] of this.versions) if (r.state === 'AVAILABLE' && r.loaded && (!best || v > best.version)) best = r.loaded;
    this.latest = best;
  }
}

export class ModelManager {
  private readonly models = new Map<string, ServedModel>();
  private readonly watchers: FSWatcher[] = [];
  private poller: NodeJS.Timeout | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  /** Versions unloaded and not yet drained: close() waits for them. */
  private draining = new Set<LoadedVersion>();
  /** Loads under way in the worker threads. */
  private readonly loading = new Set<Promise<void>>();

  constructor(
    configs: readonly ModelConfig[],
    private readonly options: ManagerOptions,
  ) {
    for (const c of configs) this.models.set(c.name, new ServedModel(c));
  }

  /** First look at every base path: loads what the policies ask for (no settling: nothing is being copied yet, as far as anyone knows). */
  async start(): Promise<void> {
    for (const m of this.models.values()) {
      if (!isDirectory(m.config.basePath)) throw new UsageError(`model base path ${m.config.basePath} is not a directory (expected BASE/<version>/<model>)`);
      // A refused version stops being a candidate, so the next look picks the one below it.
      for (let pass = 0; pass < 64 && this.scan(m, true); pass++);
    }
    // Versions going into worker threads finish loading before the server answers anything.
    await Promise.all(this.loading);
    if (this.options.pollMs > 0) {
      this.poller = setInterval(() => this.scanAll(), this.options.pollMs);
      this.poller.unref();
    }
    if (this.options.watch !== false) for (const m of this.models.values()) this.watchModel(m);
  }

  private watchModel(m: ServedModel): void {
    const onChange = () => this.schedule(m, 50);
    try {
      // Recursive where the platform has it (Linux since Node 20): files landing inside a version folder count.
      this.watchers.push(watch(m.config.basePath, { recursive: true, persistent: false }, onChange));
    } catch {
      try {
        this.watchers.push(watch(m.config.basePath, { persistent: false }, onChange));
      } catch {
        // No watching here: polling alone notices new versions.
      }
    }
    const w = this.watchers[this.watchers.length - 1];
    w?.on('error', () => {
      // The base path went away or the watch broke: polling carries on.
    });
  }

  private schedule(m: ServedModel, ms: number): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) this.scan(m, false);
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  scanAll(): void {
    if (this.closed) return;
    for (const m of this.models.values()) this.scan(m, false);
  }

  /**
   * One look at a base path: load what should be served and is ready, unload what should not be.
   * Versions refused with the files they still have are no candidates, so with latest:N a broken
   * newest version leaves the newest good ones serving (also when the server starts). Returns
   * whether a version was refused (then another look is due).
   */
  private scan(m: ServedModel, initial: boolean): boolean {
    const present = listVersions(m.config.basePath);
    const aspired = this.aspired(m, present);
    let refused = false;
    const now = performance.now();
    let waiting = false;
    // Newest first: with latest:N the newest version is the one to get serving soonest.
    for (const v of [...aspired].sort((a, b) => b - a)) {
      const dir = present.get(v)!;
      let record = m.versions.get(v);
      if (record && (record.state === 'AVAILABLE' || record.state === 'LOADING' || record.state === 'UNLOADING')) continue;
      const fingerprint = fingerprintOf(dir);
      if (record && record.refusedAt === fingerprint) continue;
      if (!record || record.fingerprint !== fingerprint) {
        // New, back after being removed, or changed since the last look (a copy under way).
        record = { state: 'START', fingerprint, seenAt: now };
        m.versions.set(v, record);
        if (!initial) {
          waiting = true;
          continue;
        }
      }
      if (!initial && now - record.seenAt! < this.options.settleMs * 0.9) {
        waiting = true;
        continue;
      }
      this.load(m, v, dir, record, fingerprint);
      if (record.state === 'END') refused = true;
    }
    this.applyPolicy(m, present, aspired);
    if (waiting) this.schedule(m, this.options.settleMs);
    else if (refused && !initial) this.schedule(m, 0);
    return refused;
  }

  /** The versions the policy wants among those present, refused ones (with unchanged files) left out. */
  private aspired(m: ServedModel, present: ReadonlyMap<number, string>): Set<number> {
    const candidates = [...present.keys()].filter((v) => {
      const r = m.versions.get(v);
      return !(r && r.state === 'END' && r.refusedAt !== undefined && r.refusedAt === fingerprintOf(present.get(v)!));
    });
    return new Set(aspiredVersions(m.config.policy, candidates));
  }

  private load(m: ServedModel, version: number, dir: string, record: VersionRecord, fingerprint: string): void {
    record.state = 'LOADING';
    const started = performance.now();
    const refuse = (error: unknown) => {
      const code: StatusCode = error instanceof ServeError ? error.code : 'UNKNOWN';
      const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
      record.state = 'END';
      record.error = { code, message };
      record.refusedAt = fingerprint;
      delete record.loaded;
      this.options.log.warn({ model: m.config.name, version, path: dir, error: message }, 'version refused; the versions already serving keep serving');
    };
    const available = (loaded: LoadedVersion) => {
      record.state = 'AVAILABLE';
      record.loaded = loaded;
      delete record.error;
      delete record.refusedAt;
      m.refreshLatest();
      this.options.log.info({ model: m.config.name, version, path: loaded.path, format: loaded.model.format, ms: Math.round(performance.now() - started) }, 'version available');
    };
    let loaded: LoadedVersion;
    try {
      loaded = this.check(m.config.name, version, dir);
    } catch (error) {
      refuse(error);
      return;
    }
    const pool = this.options.pool;
    if (!pool) {
      available(loaded);
      return;
    }
    const done = pool.load(loaded.key, loaded.path).then(
      () => {
        if (this.closed) return;
        available(loaded);
        const present = listVersions(m.config.basePath);
        this.applyPolicy(m, present, this.aspired(m, present));
      },
      (error: unknown) => {
        refuse(error);
        this.schedule(m, 0);
      },
    );
    this.loading.add(done);
    void done.finally(() => this.loading.delete(done));
  }

  /** Reads and checks one version folder: parse, checksums, a run, golden outputs if present. */
  private check(name: string, version: number, dir: string): LoadedVersion {
    const path = modelPathIn(dir);
    const golden = goldenIn(dir);
    let report: ModelReport;
    try {
      report = validateModel(path, golden);
    } catch (error) {
      if (error instanceof UsageError || error instanceof FormatError) throw new ServeError('FAILED_PRECONDITION', error.message);
      throw error;
    }
    const failed = report.checks.find((c) => c.status === 'fail');
    if (failed) throw new ServeError(report.status === 'unreadable' ? 'DATA_LOSS' : 'FAILED_PRECONDITION', `${path}: check ${failed.name} failed: ${failed.message}`);
    const runs = report.checks.find((c) => c.name === 'runs');
    if (runs && runs.status !== 'pass' && runs.status !== 'warn') throw new ServeError('FAILED_PRECONDITION', `${path}: the model could not be run: ${runs.message}`);
    let model: Model;
    try {
      model = loadModel(path);
    } catch (error) {
      // The folder changed between the check and the read (still being written).
      if (error instanceof UsageError || error instanceof FormatError) throw new ServeError('DATA_LOSS', error.message);
      throw error;
    }
    if (!model.graph) throw new ServeError('FAILED_PRECONDITION', `${path}: a bare state dict has no architecture to serve (bundle the module spec with convert --module)`);
    const loaded = new LoadedVersion(name, version, path, model, (v) => this.drained(v));
    loaded.runner(undefined);
    return loaded;
  }

  /** Unloads versions the policy no longer wants (once something it wants is available) and versions whose folder is gone. */
  private applyPolicy(m: ServedModel, present: ReadonlyMap<number, string>, aspired: ReadonlySet<number>): void {
    const aspiredAvailable = [...aspired].some((v) => m.versions.get(v)?.state === 'AVAILABLE');
    for (const [v, record] of m.versions) {
      if (record.state !== 'AVAILABLE') {
        // A refused or waiting version whose folder was removed is forgotten.
        if ((record.state === 'START' || (record.state === 'END' && record.error)) && !present.has(v)) m.versions.delete(v);
        continue;
      }
      const gone = !present.has(v);
      if (gone || (!aspired.has(v) && aspiredAvailable)) this.unload(m, v, record, gone ? 'its folder was removed' : 'a newer version is available');
    }
    m.refreshLatest();
  }

  private unload(m: ServedModel, version: number, record: VersionRecord, why: string): void {
    const loaded = record.loaded!;
    record.state = 'UNLOADING';
    m.refreshLatest();
    this.options.log.info({ model: m.config.name, version, inflight: loaded.inflight, reason: why }, 'version unloading');
    if (loaded.inflight === 0) this.drained(loaded);
    else this.draining.add(loaded);
  }

  private drained(v: LoadedVersion): void {
    const m = this.models.get(v.modelName);
    const record = m?.versions.get(v.version);
    if (!record || record.loaded !== v || record.state !== 'UNLOADING') return;
    record.state = 'END';
    delete record.loaded;
    delete record.fingerprint;
    this.draining.delete(v);
    this.options.pool?.unload(v.key);
    this.options.log.info({ model: v.modelName, version: v.version }, 'version unloaded');
  }

  // -------------------------------------------------------------------------------------------
  // Requests

  /** ServerCore::ServableRequestFromModelSpec + GetServableHandle: the version a request runs on, held until release(). */
  acquire(name: string, version?: number, label?: string): LoadedVersion {
    const m = this.models.get(name);
    const wanted = label !== undefined ? this.labelVersion(name, label) : version;
    let loaded: LoadedVersion | undefined;
    if (m) loaded = wanted === undefined ? m.latest : stateOf(m.versions.get(wanted)) === 'AVAILABLE' ? m.versions.get(wanted)!.loaded : undefined;
    if (!loaded) throw new ServeError('NOT_FOUND', `Servable not found for request: ${wanted === undefined ? `Latest(${name})` : `Specific(${name}, ${wanted})`}`);
    loaded.inflight++;
    return loaded;
  }

  labelVersion(name: string, label: string): number {
    const v = this.models.get(name)?.config.labels.get(label);
    if (v === undefined) throw invalidArgument(`Unrecognized servable version label: ${label}`);
    return v;
  }

  /** GetModelStatusImpl: every version known (newest first), or the one asked for. */
  status(name: string, version?: number): Array<{ version: number; state: VersionState; error?: { code: StatusCode; message: string } }> {
    const m = this.models.get(name);
    const entries = m ? [...m.versions].filter(([, r]) => r.state !== 'START') : [];
    if (version !== undefined) {
      const found = entries.find(([v]) => v === version);
      if (!found) throw new ServeError('NOT_FOUND', `Could not find version ${version} of model ${name}`);
      return [describe(found)];
    }
    if (entries.length === 0) throw new ServeError('NOT_FOUND', `Could not find any versions of model ${name}`);
    return entries.sort((a, b) => b[0] - a[0]).map(describe);
  }

  modelNames(): string[] {
    return [...this.models.keys()];
  }

  /** Stops watching and polling; resolves when every unloaded version's requests are done. */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.watchers) w.close();
    if (this.poller) clearInterval(this.poller);
    for (const t of this.timers) clearTimeout(t);
    while (this.draining.size > 0) await new Promise((r) => setTimeout(r, 10));
  }
}

function stateOf(r: VersionRecord | undefined): VersionState | undefined {
  return r?.state;
}

function describe([version, r]: [number, VersionRecord]): { version: number; state: VersionState; error?: { code: StatusCode; message: string } } {
  return { version, state: r.state, ...(r.error ? { error: r.error } : {}) };
}

/** The versions a policy asks for among those present (servable_version_policy.proto). */
export function aspiredVersions(policy: VersionPolicy, present: readonly number[]): number[] {
  const sorted = [...present].sort((a, b) => b - a);
  if (policy.kind === 'all') return sorted;
  if (policy.kind === 'latest') return sorted.slice(0, policy.count);
  return sorted.filter((v) => policy.versions.includes(v));
}

/** Numbered folders in a base path (TF Serving ignores every other name). */
function listVersions(base: string): Map<number, string> {
  const out = new Map<number, string>();
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const v = Number(name);
    if (!Number.isSafeInteger(v)) continue;
    const dir = join(base, name);
    if (isDirectory(dir)) out.set(v, dir);
  }
  return out;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Every file under a folder with its size and modification time: changes while a copy is under way. */
function fingerprintOf(dir: string): string {
  const parts: string[] = [];
  const walk = (d: string, rel: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(d).sort();
    } catch {
      parts.push(`${rel}:unreadable`);
      return;
    }
    for (const name of names) {
      const p = join(d, name);
      try {
        const s = statSync(p);
        if (s.isDirectory() && depth < 8) walk(p, `${rel}${name}/`, depth + 1);
        else parts.push(`${rel}${name}:${s.size}:${s.mtimeMs}`);
      } catch {
        parts.push(`${rel}${name}:gone`);
      }
    }
  };
  walk(dir, '', 0);
  return parts.join('|');
}

/**
 * The model in a version folder: the folder itself when it is a SavedModel or TF.js model (as in
 * TF Serving, `BASE/1/saved_model.pb`), else its one model file or folder (golden files and
 * dotfiles aside).
 */
export function modelPathIn(dir: string): string {
  if (existsSync(join(dir, 'saved_model.pb'))) return dir;
  const entries = readdirSync(dir).filter((n) => !n.startsWith('.') && !GOLDEN.test(n));
  if (entries.length === 1) return join(dir, entries[0]!);
  try {
    detectFormat(dir);
    return dir;
  } catch {
    // Not a model folder: look for the one model among its entries.
  }
  const models = entries.filter((n) => {
    try {
      detectFormat(join(dir, n));
      return true;
    } catch {
      return false;
    }
  });
  if (models.length === 1) return join(dir, models[0]!);
  throw new ServeError('NOT_FOUND', `${dir}: expected one model file or folder in the version folder, found ${entries.length === 0 ? 'none' : `${models.length} models among ${entries.join(', ')}`}`);
}

function goldenIn(dir: string): { inputs?: ReturnType<typeof readTensorFile>; expect?: ReturnType<typeof readTensorFile> } {
  const names = readdirSync(dir).filter((n) => GOLDEN.test(n));
  const inputs = names.find((n) => n.startsWith('golden-inputs.'));
  const outputs = names.find((n) => n.startsWith('golden-outputs.'));
  if (!inputs && !outputs) return {};
  if (!inputs || !outputs) throw new ServeError('FAILED_PRECONDITION', `${dir}: golden-inputs and golden-outputs come together (found only ${inputs ?? outputs})`);
  try {
    return { inputs: readTensorFile(join(dir, inputs)), expect: readTensorFile(join(dir, outputs)) };
  } catch (error) {
    if (error instanceof UsageError || error instanceof FormatError) throw new ServeError('DATA_LOSS', error.message);
    throw error;
  }
}
