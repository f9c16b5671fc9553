import initWabt from 'wabt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GemmPool } from '../src/runtime/wasm/pool.js';

/**
 * The intra-op pool's hand-off: each call gives every worker a job and runs its own share; a job
 * its worker has not claimed when the calling thread's share is done is run by the calling thread
 * instead (a worker asleep in Atomics.wait takes long to wake on a VM), and every job runs exactly
 * once either way. The module here is a stand-in for the GEMM module with the same `gemm(job)`
 * export: it adds 1 to the word at the job's address, so the words count the runs.
 */
const WAT = `(module
  (import "env" "memory" (memory 1 1 shared))
  (func (export "gemm") (param $p i32)
    (drop (i32.atomic.rmw.add (local.get $p) (i32.const 1)))))`;

// (this project's TypeScript settings carry no WebAssembly types: the few calls used, typed here)
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => { buffer: SharedArrayBuffer };
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let memory: { buffer: SharedArrayBuffer };
let module: object;
let gemm: (job: number) => void;
let pool: GemmPool;
const words = () => new Int32Array(memory.buffer);

beforeAll(async () => {
  const wabt = await initWabt();
  const parsed = wabt.parseWat('counter.wat', WAT, { threads: true });
  const { buffer } = parsed.toBinary({});
  parsed.destroy();
  memory = new wasm.Memory({ initial: 1, maximum: 1, shared: true });
  module = new wasm.Module(buffer);
  gemm = (new wasm.Instance(module, { env: { memory } }).exports as { gemm: (job: number) => void }).gemm;
  pool = new GemmPool(module, memory, 1);
  expect(pool.ready).toBe(true);
});

afterAll(() => pool?.close());

/** Blocks this thread for `ms` (the worker's spin runs out meanwhile and it goes to sleep). */
const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

describe('the intra-op pool', () => {
  it('runs every job exactly once, back to back, whichever thread runs the worker\'s share', () => {
    words().fill(0);
    const calls = 2000;
    let here = 0;
    for (let i = 0; i < calls; i++) pool.run([8], 4, (job) => {
      if (job === 8) here++;
      gemm(job);
    });
    expect(words()[1]).toBe(calls); // the calling thread's own share, address 4
    expect(words()[2]).toBe(calls); // the worker's share, address 8: by the worker or taken over
    expect(pool.runs + here).toBe(calls);
    expect(pool.broken).toBe(false);
  });

  it('runs a sleeping worker\'s job on the calling thread instead of waiting for the worker to wake', () => {
    words().fill(0);
    const before = pool.runs;
    let here = 0;
    const calls = 40;
    for (let i = 0; i < calls; i++) {
      pause(3); // longer than the worker's spin (under a millisecond): it is asleep at the next call
      pool.run([16], 12, (job) => {
        if (job === 16) here++;
        gemm(job);
      });
    }
    expect(words()[3]).toBe(calls);
    expect(words()[4]).toBe(calls);
    // The calling thread's share is one atomic add: it is done long before a sleeping thread wakes.
    expect(here).toBeGreaterThan(calls / 2);
    expect(pool.runs - before + here).toBe(calls);
    // ... and the worker, once awake, finds its job taken and leaves it alone (counted once above).
    pause(5);
    expect(words()[4]).toBe(calls);
  });

  it('gives no job to a worker whose slot is 0, and a share that throws still waits for the workers', () => {
    words().fill(0);
    pool.run([0], 20, gemm);
    expect(words()[5]).toBe(1);
    expect(() => pool.run([24], 20, (job) => {
      if (job === 20) throw new Error('own share failed');
      gemm(job);
    })).toThrow('own share failed');
    // the worker's job ran at most once (by the worker; the calling thread does not run jobs after its own share failed)
    expect(words()[6]).toBeLessThanOrEqual(1);
    pool.run([24], 20, gemm);
    expect(words()[5]).toBe(2);
  });
});
