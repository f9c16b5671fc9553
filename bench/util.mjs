// Small helpers shared by the benchmarks: timing, child-process peak RSS, machine description.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

export function machine() {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} x ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${process.platform}/${process.arch}`;
}

/** Median seconds of `reps` calls of fn (after one warm-up). */
export function timeIt(fn, reps = 5) {
  fn();
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** Median of a list of numbers. */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

/**
 * Per-call seconds of a function, fast or slow: calls it in batches sized to take ~10 ms each,
 * after ~0.2 s of warm-up, until `minSeconds` have passed; returns total time / calls (so GC
 * pauses caused by the function count against it). A 4 us call gets batches of ~2500, a 20 ms
 * call batches of 1.
 */
export function perCall(fn, minSeconds = 1) {
  return measureBatches((n) => {
    for (let i = 0; i < n; i++) fn();
  }, minSeconds);
}

/** perCall for an async function (each call awaited before the next). */
export async function perCallAsync(fn, minSeconds = 1) {
  return measureBatchesAsync(async (n) => {
    for (let i = 0; i < n; i++) await fn();
  }, minSeconds);
}

function measureBatches(runBatch, minSeconds) {
  let n = 1;
  for (let t = 0; (t = timed(() => runBatch(n))) < 0.01; ) n = Math.ceil(n * Math.min(10, 0.012 / Math.max(t, 1e-6)));
  for (const end = now() + 0.2; now() < end; ) runBatch(n);
  let calls = 0;
  const t0 = now();
  while (now() - t0 < minSeconds) {
    runBatch(n);
    calls += n;
  }
  return (now() - t0) / calls;
}

async function measureBatchesAsync(runBatch, minSeconds) {
  let n = 1;
  for (;;) {
    const start = now();
    await runBatch(n);
    const t = now() - start;
    if (t >= 0.01) break;
    n = Math.ceil(n * Math.min(10, 0.012 / Math.max(t, 1e-6)));
  }
  for (const end = now() + 0.2; now() < end; ) await runBatch(n);
  let calls = 0;
  const t0 = now();
  while (now() - t0 < minSeconds) {
    await runBatch(n);
    calls += n;
  }
  return (now() - t0) / calls;
}

function timed(fn) {
  const t0 = now();
  fn();
  return now() - t0;
}

/** Median wall seconds of running a command `reps` times in fresh processes (after one warm-up). */
export function wallTime(command, args, reps = 10) {
  const run = () => {
    const t0 = now();
    const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
    const seconds = now() - t0;
    if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${r.stderr}`);
    return seconds;
  };
  run();
  return median(Array.from({ length: reps }, run));
}

/**
 * Wall times of several commands measured in alternation (a, b, c, a, b, c, ...), median of each:
 * a comparison between commands (a CLI against `node -e 0`) then sees the same machine state
 * rather than two windows a few seconds apart.
 */
export function wallTimes(commands, reps = 10) {
  const run = ([command, args]) => {
    const t0 = now();
    const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
    const seconds = now() - t0;
    if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${r.stderr}`);
    return seconds;
  };
  for (const c of commands) run(c);
  const times = commands.map(() => []);
  for (let i = 0; i < reps; i++) commands.forEach((c, j) => times[j].push(run(c)));
  return times.map(median);
}

/**
 * Runs a command in a fresh process and measures its peak RSS with GNU time (`%M`). Why not
 * the child's own getrusage: Linux carries a process's RSS high-water mark across fork and exec,
 * so a child spawned straight from this (large) bench process reports at least the parent's RSS.
 * /usr/bin/time is a small process, so its child starts from a clean mark. Returns the spawn
 * result and the peak RSS in bytes (undefined where /usr/bin/time does not exist).
 */
export function spawnMeasured(command, args, options = {}) {
  if (!existsSync(TIME)) return { r: spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 24, ...options }), maxRSS: undefined };
  const dir = mkdtempSync(join(tmpdir(), 'bench-time-'));
  const report = join(dir, 'time.txt');
  try {
    const r = spawnSync(TIME, ['-f', '%M', '-o', report, command, ...args], { encoding: 'utf8', maxBuffer: 1 << 24, ...options });
    const kib = Number(readFileSync(report, 'utf8').trim().split('\n').pop());
    return { r, maxRSS: Number.isFinite(kib) ? kib * 1024 : undefined };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const TIME = '/usr/bin/time';

/** The last line of a child's stdout as JSON, with maxRSS from GNU time where it was measured. */
function measuredJson(what, { r, maxRSS }) {
  if (r.status !== 0) throw new Error(`${what} failed:\n${r.stderr}`);
  const result = JSON.parse(r.stdout.trim().split('\n').pop());
  return maxRSS === undefined ? result : { ...result, selfRSS: result.maxRSS, maxRSS };
}

/**
 * Runs a bench worker script in a fresh process and returns what it printed as JSON, plus its
 * peak RSS in bytes (GNU time's %M; the worker's own report, process.resourceUsage().maxRSS, is
 * kept as selfRSS and used where /usr/bin/time is missing).
 */
export function runWorker(script, args, options = {}) {
  return measuredJson(`${script} ${args.join(' ')}`, spawnMeasured(process.execPath, ['--expose-gc', script, ...args], options));
}

/** Runs Python code in a fresh process; it must print one JSON line last (maxRSS as for runWorker). */
export function runPython(python, code, args = []) {
  return measuredJson('python', spawnMeasured(python, ['-c', code, ...args]));
}

/** Runs a Python script in a fresh process; it must print one JSON line last (maxRSS as for runWorker). */
export function runPythonScript(python, script, args = [], options = {}) {
  return measuredJson(`${script} ${args.join(' ')}`, spawnMeasured(python, [script, ...args], options));
}

export const MiB = 2 ** 20;
export const GB = 1e9;
export const GiB = 2 ** 30;
