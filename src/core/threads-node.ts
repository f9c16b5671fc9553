import { Worker } from 'node:worker_threads';

/**
 * Starting a thread that shares memory with this one, in Node: a worker thread (node:worker_threads).
 * The browser bundle swaps this file for threads-web.ts (Web Workers; scripts/browser-build.mjs),
 * so the code that uses threads (the GEMM pool, the background CRC-32C) is the same on both.
 */

/** A started thread. */
export interface ThreadHandle {
  terminate(): void;
}

/**
 * Whether a thread started here runs before this thread next returns to its event loop. True in
 * Node (a worker thread starts on its own), so callers may block in Atomics.wait until it is ready.
 */
export const THREADS_START_WHILE_BLOCKED = true;

/**
 * Starts a thread running `body`: the source of a script in which `data` is the object given
 * here (structured-cloned: SharedArrayBuffers, a WebAssembly.Module and a shared Memory are
 * shared, not copied). The thread never keeps the process alive; `onError` hears of its failure.
 */
export function startThread(body: string, data: Readonly<Record<string, unknown>>, onError: () => void): ThreadHandle {
  const worker = new Worker(`const data = require('node:worker_threads').workerData;\n${body}`, { eval: true, workerData: data });
  // An idle thread blocks in Atomics.wait; it must never keep the process alive.
  worker.unref();
  worker.on('error', onError);
  return { terminate: () => void worker.terminate() };
}

/** Whether this thread may block in Atomics.wait (always, in Node). */
export function canBlock(): boolean {
  return true;
}
