import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The Python peers: real PyTorch in the virtualenv scripts/peers-env.sh makes, driven through
 * python/cross_check.py. Tests call peerPython() at collection time and skip their peer suites
 * when it returns undefined; under CI=true a missing environment throws instead, failing the run.
 */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const PEER_PYTHON = join(ROOT, '.peers', 'venv', ...(process.platform === 'win32' ? ['Scripts', 'python.exe'] : ['bin', 'python']));
export const PYTHON_DIR = join(ROOT, 'python');
export const CROSS_CHECK = join(PYTHON_DIR, 'cross_check.py');
export const PEERS_MISSING = 'peers environment missing: run scripts/peers-env.sh';

let warned = false;

/** The peers' python, or undefined (with a warning) when absent; throws when absent under CI=true. */
export function peerPython(): string | undefined {
  if (existsSync(PEER_PYTHON)) return PEER_PYTHON;
  if (process.env.CI === 'true') throw new Error(`${PEERS_MISSING} (no ${PEER_PYTHON})`);
  if (!warned) {
    warned = true;
    console.warn(`skipping the PyTorch cross-checks: ${PEERS_MISSING} (no ${PEER_PYTHON}); under CI=true this fails`);
  }
  return undefined;
}

function requirePython(): string {
  const python = peerPython();
  if (!python) throw new Error(`${PEERS_MISSING} (no ${PEER_PYTHON})`);
  return python;
}

export interface PeerResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface PeerOptions {
  /** Text for the script's stdin. */
  readonly input?: string;
  readonly timeoutMs?: number;
}

/** Runs `python/<script> ...args` with the peers' python from the project root. */
export function runPeerScript(script: string, args: readonly string[] = [], options: PeerOptions = {}): PeerResult {
  const r = spawnSync(requirePython(), [join(PYTHON_DIR, script), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    input: options.input,
    timeout: options.timeoutMs ?? 110_000,
    maxBuffer: 1 << 28,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' },
  });
  if (r.error) throw new Error(`python/${script} could not run: ${r.error.message}`);
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `cross_check.py ...args`; the exit code and both streams, for tests of failures. */
export function runPeer(args: readonly string[], options: PeerOptions = {}): PeerResult {
  return runPeerScript('cross_check.py', args, options);
}

/** Runs `cross_check.py ...args` and parses its stdout; throws with its stderr when it fails. */
export function runPeerJson(args: readonly string[], options: PeerOptions = {}): unknown {
  const r = runPeer(args, options);
  if (r.status !== 0) throw new Error(`cross_check.py ${args.join(' ')} exited with ${r.status}: ${r.stderr.trim()}`);
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`cross_check.py ${args.join(' ')} printed no JSON: ${r.stdout.slice(0, 200)}`);
  }
}

/** A nested list of numbers as cross_check.py prints it (non-finite values as strings). */
export type Nested = number | string | Nested[];

/** Reads cross_check.py's JSON numbers, including "NaN", "Infinity" and "-Infinity". */
export function peerNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') return Number(v);
  throw new Error(`not a peer number: ${JSON.stringify(v)}`);
}

/** A nested list's values in row-major order, as float32 values would be stored. */
export function flatten(nested: Nested): number[] {
  return Array.isArray(nested) ? nested.flatMap(flatten) : [peerNumber(nested)];
}

/** A nested list's shape (from its first elements). */
export function nestedShape(nested: Nested): number[] {
  const shape: number[] = [];
  for (let v = nested; Array.isArray(v); v = v[0]!) shape.push(v.length);
  return shape;
}

export interface PeerPrediction {
  /** One nested list per model output (a module stack has one). */
  readonly outputs: Nested[];
  readonly shapes: number[][];
  /** Every state-dict entry, flattened, in state-dict order. */
  readonly weights: Record<string, (number | string)[]>;
}

/** Loads a bundle in PyTorch (load_bundle) and runs it on `inputs` (float32). */
export function peerPredict(bundle: string, inputs: Nested): PeerPrediction {
  return runPeerJson(['predict', bundle, '--inputs', '-'], { input: JSON.stringify(inputs) }) as PeerPrediction;
}

export interface PeerOrGate {
  /** For (0,0), (0,1), (1,0), (1,1). */
  readonly predictions: number[];
  readonly loss: number;
  readonly bundle: string;
}

/** Trains the OR gate in PyTorch and saves it as a bundle at `out`. */
export function peerTrainOr(out: string, seed = 0): PeerOrGate {
  return runPeerJson(['train-or', out, '--seed', String(seed)]) as PeerOrGate;
}

export interface ZooEntry {
  readonly name: string;
  readonly bundle: string;
  /** A JSON file: {"input": nested list, "output": torch's output}. */
  readonly case: string;
  readonly input_shape: number[];
  readonly output_shape: number[];
}

export interface ZooCase {
  readonly input: Nested;
  readonly output: Nested;
}

/** Writes the seeded bundles (mlp, cnn, cnn_options, norm_mlp, named) into `dir`. */
export function peerMakeZoo(dir: string, seed = 0): ZooEntry[] {
  return (runPeerJson(['make-zoo', dir, '--seed', String(seed)]) as { bundles: ZooEntry[] }).bundles;
}

export function readZooCase(entry: ZooEntry): ZooCase {
  return JSON.parse(readFileSync(entry.case, 'utf8')) as ZooCase;
}

export interface PeerInspection {
  readonly metadata: Record<string, string>;
  readonly tensors: Record<string, { dtype: string; shape: number[] }>;
}

/** A safetensors file's metadata and tensor dtypes/shapes, as the safetensors package reads them. */
export function peerInspect(bundle: string): PeerInspection {
  return runPeerJson(['inspect', bundle]) as PeerInspection;
}
