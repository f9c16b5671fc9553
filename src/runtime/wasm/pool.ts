import { startThread, THREADS_START_WHILE_BLOCKED, until, waitWhile, type ThreadHandle } from '../../core/threads.js';

/**
 * Worker threads that run the GEMM module's exports (`gemm`, and the row-wise kernels beside it:
 * `maxpool2d`, `gelu`, `softmax`, `layernorm`) on the same shared WebAssembly memory as the main thread. The runtime is synchronous (a kernel returns its result), so the threads
 * coordinate through Atomics on a few control words instead of messages: the main thread writes
 * each worker's job address, marks it open, bumps a generation counter and notifies; a worker
 * claims its open job (compare-and-swap), runs it and marks it done; the main thread runs its own
 * share meanwhile, then claims and runs itself every job no worker has claimed yet, and waits only
 * for jobs a worker is running. No event loop turn is needed on either side.
 *
 * The claim is what keeps a call from waiting on a sleeping worker: a worker whose spin ran out
 * (the main thread paused for a garbage collection, or ran single-threaded ops for a while) sleeps
 * in Atomics.wait, and on this 2-vCPU VM waking it took up to a millisecond and more, 1% of 128^3
 * products waiting that long and the mean wait 80-110 µs against a 60 µs share: two threads ran
 * such a product no faster than one. Now such a call costs what one thread takes.
 *
 * The threads are Node worker threads, or Web Workers in the browser build (src/core/threads.ts
 * hides which). A Web Worker starts only after its creator's thread returns to the event loop,
 * so there the pool is used from the first product after its workers report ready
 * (`ready`, `whenReady()`), and a page's main thread, which may not block, spins on the count.
 */

/** Control words (Int32): generation, a failure flag, then per worker its ready state, job address, job kind and job state. */
const GEN = 0;
const FAILED = 2;
const READY = 8;
const JOB = 72;
const KIND = 136;
const STATE = 200;
const WORDS = 264;
/** A job's state: open (no thread has it yet), claimed by its worker, taken by the main thread, done by its worker, or no job. */
const OPEN = 0;
const CLAIMED = 1;
const TAKEN = 2;
const DONE = 3;
const NONE = 4;

/**
 * What a worker runs on its job address: the export of that name, its arguments read from the
 * memory at the address (i32 words; `gelu`'s 5th to 7th are f32 bits, `layernorm`'s epsilon the
 * f64 at byte 24): gemm and maxpool2d take the descriptor address itself, as do winograd_in,
 * winograd_out and winograd_all.
 */
export const PoolKind = { Gemm: 0, MaxPool2d: 1, Gelu: 2, Softmax: 3, WinogradIn: 4, WinogradOut: 5, WinogradAll: 6, LayerNorm: 7 } as const;
export type PoolKind = (typeof PoolKind)[keyof typeof PoolKind];
/** More workers than this are never started (the control block has room for 64). */
export const MAX_WORKERS = 63;
/**
 * How many times a worker polls for its next job, and the main thread for the workers' shares,
 * before sleeping in Atomics.wait (32768 polls: 0.4 to 0.7 ms, measured): a model's
 * jobs come a few small ops apart, and waking a sleeping thread (a futex wake, an
 * inter-processor interrupt on a VM) costs about as much as a transformer's row-wise job itself.
 * With 2048 polls (20-60 us) a BERT-tiny worker was asleep at most of its jobs, and 2 threads
 * ran slower than 1. onnxruntime's pool spins likewise.
 */
const SPIN = 1 << 15;
/** How long a call waits for a worker to start or to finish its share before giving up on the pool. */
const STALL_MS = 60_000;

/** The threads' script (`data` holds the control words, the thread's index, the module and the memory). */
const workerSource = (): string => `
const ctl = new Int32Array(data.control);
const index = data.index;
let exports;
try {
  exports = new WebAssembly.Instance(data.module, { env: { memory: data.memory } }).exports;
  Atomics.store(ctl, ${READY} + index, 1);
} catch (error) {
  Atomics.store(ctl, ${READY} + index, 2);
}
Atomics.notify(ctl, ${READY} + index);
let seen = 0;
for (;;) {
  for (let spin = 0; spin < ${SPIN} && Atomics.load(ctl, ${GEN}) === seen; spin++);
  Atomics.wait(ctl, ${GEN}, seen);
  seen = Atomics.load(ctl, ${GEN});
  // The job is this worker's only if it is still open: the main thread may have run it already.
  // (Claimed first, read after: the address and kind read are then the open job's.)
  if (Atomics.compareExchange(ctl, ${STATE} + index, ${OPEN}, ${CLAIMED}) === ${OPEN}) {
    const job = Atomics.load(ctl, ${JOB} + index);
    try {
      const kind = Atomics.load(ctl, ${KIND} + index);
      if (kind === ${PoolKind.Gemm}) exports.gemm(job);
      else if (kind === ${PoolKind.MaxPool2d}) exports.maxpool2d(job);
      else if (kind === ${PoolKind.WinogradIn}) exports.winograd_in(job);
      else if (kind === ${PoolKind.WinogradOut}) exports.winograd_out(job);
      else if (kind === ${PoolKind.WinogradAll}) exports.winograd_all(job);
      else {
        // the memory may have grown since the last job: a fresh view of it
        const i32 = new Int32Array(data.memory.buffer, job, 8);
        const f32 = new Float32Array(data.memory.buffer, job, 8);
        if (kind === ${PoolKind.Gelu}) exports.gelu(i32[0], i32[1], i32[2], i32[3], f32[4], f32[5], f32[6], i32[7]);
        else if (kind === ${PoolKind.LayerNorm}) exports.layernorm(i32[0], i32[1], i32[2], i32[3], i32[4], i32[5], new Float64Array(data.memory.buffer, job, 4)[3]);
        else exports.softmax(i32[0], i32[1], i32[2], i32[3], i32[4], i32[5], i32[6]);
      }
    } catch (error) {
      Atomics.store(ctl, ${FAILED}, 1);
    }
    Atomics.store(ctl, ${STATE} + index, ${DONE});
    Atomics.notify(ctl, ${STATE} + index);
  }
}
`;

export class GemmPool {
  private readonly control = new Int32Array(new SharedArrayBuffer(WORDS * 4));
  private readonly workers: ThreadHandle[] = [];
  broken = false;
  /** Calls that ran on the workers too (the browser page reports whether its threads work). */
  runs = 0;

  /**
   * Starts `count` workers; where they start while this thread blocks (Node), blocks until each
   * has instantiated the module (or failed). The compiled module itself is handed over, not its
   * bytes: V8 then shares its machine code (and its optimized tier, once the main thread's calls
   * have earned it) instead of compiling it again in every worker, whose first products would
   * run in the baseline tier.
   */
  constructor(module: object, memory: object, count: number) {
    const source = workerSource();
    // no job yet for any worker (a state word of 0 would read as an open job)
    this.control.fill(NONE, STATE, STATE + MAX_WORKERS + 1);
    for (let index = 0; index < count; index++) {
      const worker = startThread(source, { module, memory, control: this.control.buffer, index }, () => {
        this.broken = true;
        Atomics.store(this.control, FAILED, 1);
      });
      this.workers.push(worker);
    }
    if (THREADS_START_WHILE_BLOCKED) {
      for (let index = 0; index < count; index++) waitWhile(this.control, READY + index, 0, STALL_MS);
    }
    if (!this.ready && THREADS_START_WHILE_BLOCKED) this.broken = true;
    if (this.broken) this.close();
  }

  /** Whether every worker has instantiated the module (a failed one breaks the pool). */
  get ready(): boolean {
    let all = true;
    for (let index = 0; index < this.workers.length; index++) {
      const state = Atomics.load(this.control, READY + index);
      if (state === 2) this.broken = true;
      if (state !== 1) all = false;
    }
    return all && !this.broken;
  }

  /** Resolves with whether the pool runs, once every worker is ready or one failed (or STALL_MS passed). */
  async whenReady(): Promise<boolean> {
    await until(() => this.ready || this.broken, STALL_MS);
    return this.ready;
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Runs `exec(own)` here and the export `kind` names on `jobs[w]` on worker w (0 = no share),
   * and returns once all are done: a job its worker has not claimed by the time `exec(own)`
   * returns is run here too (`exec(jobs[w])`). Throws if a worker failed; the pool is then broken
   * and must not be reused.
   */
  run(jobs: readonly number[], own: number, exec: (job: number) => void, kind: PoolKind = PoolKind.Gemm): void {
    const ctl = this.control;
    const count = this.workers.length;
    for (let w = 0; w < count; w++) {
      const job = jobs[w] ?? 0;
      ctl[JOB + w] = job;
      ctl[KIND + w] = kind;
      Atomics.store(ctl, STATE + w, job === 0 ? NONE : OPEN);
    }
    Atomics.add(ctl, GEN, 1);
    Atomics.notify(ctl, GEN);
    let ownDone = false;
    let onWorkers = false;
    try {
      exec(own);
      ownDone = true;
    } finally {
      // Every job still open is taken here, so no worker starts it, and run here unless this
      // thread's own share failed ...
      let failure: unknown;
      for (let w = 0; w < count; w++) {
        if (Atomics.compareExchange(ctl, STATE + w, OPEN, TAKEN) !== OPEN || !ownDone) continue;
        try {
          exec(ctl[JOB + w]!);
        } catch (error) {
          failure ??= error;
        }
      }
      // ... and the ones a worker claimed are waited for (they write into memory the caller reuses).
      for (let w = 0; w < count; w++) {
        const state = Atomics.load(ctl, STATE + w);
        if (state !== CLAIMED && state !== DONE) continue;
        onWorkers = true;
        for (let spin = 0; spin < SPIN && Atomics.load(ctl, STATE + w) === CLAIMED; spin++);
        while (Atomics.load(ctl, STATE + w) === CLAIMED) {
          if (waitWhile(ctl, STATE + w, CLAIMED, STALL_MS) === 'timed-out' && Atomics.load(ctl, STATE + w) === CLAIMED) {
            this.broken = true;
            throw new Error(`a GEMM worker thread made no progress in ${STALL_MS / 1000} s`);
          }
        }
      }
      if (failure !== undefined) throw failure;
    }
    if (onWorkers) this.runs++;
    if (Atomics.load(ctl, FAILED) !== 0) {
      this.broken = true;
      throw new Error('a GEMM worker thread failed');
    }
  }

  close(): void {
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}
