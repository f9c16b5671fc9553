/**
 * The model runs waiting to happen. Runs are synchronous CPU work, so they are taken in slices of
 * at most SLICE_MS per event-loop turn (setImmediate): between slices the server keeps accepting
 * and parsing requests, and the queue is where they wait. It is bounded: a request that finds it full is
 * refused at once with UNAVAILABLE (503) rather than waiting behind work it cannot outlast, and a
 * request whose deadline passes while it waits is answered DEADLINE_EXCEEDED (504) and never run.
 */
import { ServeError } from './status.js';

/** How long one event-loop turn may spend running queued jobs. */
const SLICE_MS = 2;

interface Job {
  readonly run: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly timer: NodeJS.Timeout;
  done: boolean;
}

export class RunQueue {
  private readonly jobs: Job[] = [];
  private head = 0;
  private scheduled = false;

  constructor(private readonly capacity: number) {}

  get length(): number {
    return this.jobs.length - this.head;
  }

  /** Runs `run` when its turn comes; rejects with 503 when the queue is full, 504 after `timeoutMs`. */
  submit<T>(run: () => T, timeoutMs: number): Promise<T> {
    if (this.length >= this.capacity) {
      return Promise.reject(new ServeError('UNAVAILABLE', `The run queue is full (${this.capacity} requests waiting, --max-queue); try again later`));
    }
    return new Promise<T>((resolve, reject) => {
      const job: Job = {
        run,
        resolve: resolve as (value: unknown) => void,
        reject,
        done: false,
        timer: setTimeout(() => {
          if (job.done) return;
          job.done = true;
          reject(new ServeError('DEADLINE_EXCEEDED', `Deadline exceeded: the request took more than ${timeoutMs} ms (--timeout-ms)`));
        }, timeoutMs),
      };
      this.jobs.push(job);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.step());
  }

  private step(): void {
    this.scheduled = false;
    // Runs jobs for up to SLICE_MS, then yields to the event loop: requests that arrived together
    // are answered in one turn, and a long queue still lets the server read new requests (and
    // answer 503 when it is full) every few milliseconds.
    const until = performance.now() + SLICE_MS;
    do {
      // Jobs whose deadline passed while waiting are dropped without running.
      while (this.head < this.jobs.length && this.jobs[this.head]!.done) this.head++;
      const job = this.jobs[this.head];
      if (!job) break;
      this.head++;
      try {
        const value = job.run();
        if (!job.done) job.resolve(value);
      } catch (error) {
        if (!job.done) job.reject(error);
      }
      job.done = true;
      clearTimeout(job.timer);
    } while (performance.now() < until);
    if (this.head > 1024 && this.head * 2 > this.jobs.length) {
      this.jobs.splice(0, this.head);
      this.head = 0;
    }
    if (this.length > 0) this.schedule();
  }
}
