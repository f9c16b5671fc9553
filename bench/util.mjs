// Small helpers shared by the benchmarks: timing, child-process peak RSS, machine description.
import { spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';

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

/** Per-call seconds of a fast function: runs it in batches until `minSeconds` have passed. */
export function perCall(fn, minSeconds = 1) {
  for (let i = 0; i < 1000; i++) fn();
  let calls = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < minSeconds) {
    for (let i = 0; i < 1000; i++) fn();
    calls += 1000;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  return elapsed / calls;
}

/**
 * Runs a bench worker script in a fresh process and returns what it printed as JSON, plus its
 * peak RSS in bytes (the worker reports process.resourceUsage().maxRSS, which Linux gives in KiB).
 */
export function runWorker(script, args, options = {}) {
  const r = spawnSync(process.execPath, ['--expose-gc', script, ...args], { encoding: 'utf8', maxBuffer: 1 << 24, ...options });
  if (r.status !== 0) throw new Error(`${script} ${args.join(' ')} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

export function runPython(python, code, args = []) {
  const r = spawnSync(python, ['-c', code, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`python failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

export const MiB = 2 ** 20;
export const GiB = 2 ** 30;
