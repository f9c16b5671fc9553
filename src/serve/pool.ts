/**
 * `serve --workers N`: model runs on N worker threads, so a server uses more than one core for
 * inference. Each worker holds its own copy of every loaded version (read from the same folder;
 * a Model's weights cannot be shared between isolates without copying them anyway) and runs one
 * request at a time; the main thread keeps HTTP, JSON and the version bookkeeping. The queue in
 * front of the workers has the same bound and deadline as the single-thread RunQueue: 503 when
 * full, 504 when a request's deadline passes (a run already on a worker finishes there and its
 * answer is dropped).
 *
 * The workers run the bundle this code is part of (dist/cli.cjs): each requires it and calls its
 * serveWorker() (src/cli/main.ts), the loop in worker.ts.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { DType } from '../core/dtypes.js';
import { UsageError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { ServeError } from './status.js';

/** A tensor as it crosses threads: its bytes are transferred, not copied. */
export interface WireTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly bytes?: Uint8Array;
  readonly strings?: readonly Uint8Array[];
}

export type WorkerRequest =
  | { readonly type: 'load'; readonly id: number; readonly key: string; readonly path: string }
  | { readonly type: 'unload'; readonly key: string }
  | { readonly type: 'run'; readonly id: number; readonly key: string; readonly signature: string; readonly inputs: ReadonlyArray<readonly [string, WireTensor]> };

export type WorkerReply =
  | { readonly id: number; readonly outputs?: ReadonlyArray<readonly [string, WireTensor]>; readonly loaded?: true }
  | { readonly id: number; readonly error: { readonly kind: 'usage' | 'internal'; readonly message: string } };

/** The tensor's bytes in a buffer of its own, ready to transfer. */
export function toWire(t: Tensor): { wire: WireTensor; transfer: ArrayBuffer[] } {
  if (t.dtype === 'string') return { wire: { dtype: t.dtype, shape: t.shape, strings: t.strings! }, transfer: [] };
  const bytes = t.bytes().slice();
  return { wire: { dtype: t.dtype, shape: t.shape, bytes }, transfer: [bytes.buffer as ArrayBuffer] };
}

export function fromWire(w: WireTensor): Tensor {
  return w.dtype === 'string' ? Tensor.fromStrings(w.shape, w.strings!) : Tensor.fromBytes(w.dtype, w.shape, w.bytes!);
}

interface Pending {
  readonly resolve: (reply: WorkerReply) => void;
  readonly reject: (error: unknown) => void;
}

interface Job {
  readonly request: Extract<WorkerRequest, { type: 'run' }>;
  readonly transfer: ArrayBuffer[];
  readonly resolve: (outputs: Record<string, Tensor>) => void;
  readonly reject: (error: unknown) => void;
  readonly timer: NodeJS.Timeout;
  done: boolean;
}

interface Slot {
  readonly worker: Worker;
  busy: boolean;
  /** Requests posted to this worker and not yet answered. */
  readonly calls: Set<number>;
}

/** The worker script: the bundle this module was built into. */
function workerScript(): string {
  const self = fileURLToPath(import.meta.url);
  if (!/\.c?js$/.test(self) || !existsSync(self)) throw new UsageError('--workers needs the built modelbridge (npm run build): the worker threads run its bundle');
  return self;
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly jobs: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(
    size: number,
    private readonly capacity: number,
  ) {
    const script = workerScript();
    for (let i = 0; i < size; i++) {
      const worker = new Worker(`require(${JSON.stringify(script)}).serveWorker();`, { eval: true });
      const slot: Slot = { worker, busy: false, calls: new Set() };
      worker.on('message', (reply: WorkerReply) => {
        slot.calls.delete(reply.id);
        this.settle(reply);
      });
      // A worker that dies (out of memory, a crash in a native module) fails its requests and
      // leaves the pool; the others carry on. With none left, runs fail at once.
      worker.on('error', (error) => this.lost(slot, error));
      worker.on('exit', (code) => this.lost(slot, new Error(`a worker thread stopped (exit code ${code})`)));
      this.slots.push(slot);
    }
  }

  get size(): number {
    return this.slots.length;
  }

  private settle(reply: WorkerReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    p.resolve(reply);
  }

  private lost(slot: Slot, error: unknown): void {
    const k = this.slots.indexOf(slot);
    if (k < 0) return;
    this.slots.splice(k, 1);
    for (const id of slot.calls) {
      this.pending.get(id)?.reject(error);
      this.pending.delete(id);
    }
    slot.calls.clear();
    if (this.slots.length === 0 && !this.closed) {
      for (const job of this.jobs.splice(0)) {
        clearTimeout(job.timer);
        if (!job.done) job.reject(new ServeError('INTERNAL', 'no worker threads left to run the model'));
        job.done = true;
      }
    }
  }

  private call(slot: Slot, request: WorkerRequest & { id: number }, transfer: ArrayBuffer[] = []): Promise<WorkerReply> {
    return new Promise((resolve, reject) => {
      this.pending.set(request.id, { resolve, reject });
      slot.calls.add(request.id);
      slot.worker.postMessage(request, transfer);
    });
  }

  /** Loads a version in every worker; rejects (FAILED_PRECONDITION) when any of them cannot. */
  async load(key: string, path: string): Promise<void> {
    const replies = await Promise.all(this.slots.map((slot) => this.call(slot, { type: 'load', id: this.nextId++, key, path })));
    const failed = replies.find((r) => 'error' in r);
    if (failed && 'error' in failed) {
      this.unload(key);
      throw new ServeError('FAILED_PRECONDITION', `a worker could not load ${path}: ${failed.error.message}`);
    }
  }

  unload(key: string): void {
    for (const slot of this.slots) slot.worker.postMessage({ type: 'unload', key } satisfies WorkerRequest);
  }

  /** Runs a loaded version's signature on the next free worker. */
  run(key: string, signature: string, inputs: Readonly<Record<string, Tensor>>, timeoutMs: number): Promise<Record<string, Tensor>> {
    if (this.closed) return Promise.reject(new ServeError('UNAVAILABLE', 'The server is shutting down'));
    if (this.slots.length === 0) return Promise.reject(new ServeError('INTERNAL', 'no worker threads left to run the model'));
    const waiting = this.jobs.filter((j) => !j.done).length;
    if (waiting >= this.capacity) return Promise.reject(new ServeError('UNAVAILABLE', `The run queue is full (${this.capacity} requests waiting, --max-queue); try again later`));
    const transfer: ArrayBuffer[] = [];
    const wire = Object.entries(inputs).map(([name, t]) => {
      const w = toWire(t);
      transfer.push(...w.transfer);
      return [name, w.wire] as const;
    });
    return new Promise((resolve, reject) => {
      const job: Job = {
        request: { type: 'run', id: 0, key, signature, inputs: wire },
        transfer,
        resolve,
        reject,
        done: false,
        timer: setTimeout(() => {
          if (job.done) return;
          job.done = true;
          reject(new ServeError('DEADLINE_EXCEEDED', `Deadline exceeded: the request took more than ${timeoutMs} ms (--timeout-ms)`));
        }, timeoutMs),
      };
      this.jobs.push(job);
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.busy) continue;
      let job: Job | undefined;
      while ((job = this.jobs.shift()) && job.done);
      if (!job) return;
      slot.busy = true;
      const started = job;
      this.call(slot, { ...started.request, id: this.nextId++ }, started.transfer).then(
        (reply) => {
          slot.busy = false;
          this.finish(started, reply);
          this.dispatch();
        },
        (error: unknown) => {
          slot.busy = false;
          if (!started.done) started.reject(error);
          started.done = true;
          this.dispatch();
        },
      );
    }
  }

  private finish(job: Job, reply: WorkerReply): void {
    clearTimeout(job.timer);
    if (job.done) return;
    job.done = true;
    if ('error' in reply) {
      const { kind, message } = reply.error;
      job.reject(kind === 'usage' ? new UsageError(message) : new Error(message));
      return;
    }
    job.resolve(Object.fromEntries((reply.outputs ?? []).map(([name, w]) => [name, fromWire(w)])));
  }

  async close(): Promise<void> {
    this.closed = true;
    const slots = [...this.slots];
    this.slots.length = 0;
    // Requests still running finish first: the server waits for its requests before this.
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
