import { UsageError } from '../../core/errors.js';

/**
 * node:worker_threads for the browser bundle. The GEMM pool and the background CRC-32C start
 * Web Workers instead (src/core/threads-web.ts replaces threads-node.ts); only Keras/HDF5 reading,
 * which runs h5wasm on a Node worker thread, still imports this, and is refused in one line.
 */
function unavailable(): never {
  throw new UsageError('this needs worker threads, which the browser build does not use yet (Keras and HDF5 files are read in Node only)');
}

export class Worker {
  constructor() {
    unavailable();
  }
}

export class MessageChannel {
  constructor() {
    unavailable();
  }
}

export function receiveMessageOnPort(): never {
  unavailable();
}

export const workerData: unknown = undefined;
export const isMainThread = true;
export type MessagePort = never;
