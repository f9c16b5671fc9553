import { UsageError } from '../../core/errors.js';

/**
 * node:worker_threads for the browser bundle. The browser build runs single-threaded: products
 * run on the calling thread (node:os reports one core, so no GEMM pool starts) and CRC-32C checks
 * run inline (background-crc falls back when a worker cannot start). Keras/HDF5 reading, which
 * runs h5wasm on a Node worker thread, is refused in one line.
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
