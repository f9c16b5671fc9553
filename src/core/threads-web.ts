import type { ThreadHandle } from './threads-node.js';

/**
 * Starting a thread that shares memory with this one, in the browser build (it replaces
 * threads-node.ts there; scripts/browser-build.mjs): a Web Worker whose script is a Blob URL of
 * the source text, so bundlers (esbuild, Vite, webpack) need no worker configuration and no file
 * is fetched. Shared memory needs a cross-origin isolated page (COOP `same-origin`, COEP
 * `require-corp`); elsewhere `startThread` throws and the callers stay on one thread.
 */
export type { ThreadHandle } from './threads-node.js';

/**
 * A Web Worker starts only once the thread that made it returns to its event loop (Chromium
 * sets it up through tasks on its creator's thread), so nobody may block waiting for a new one:
 * callers check that it is ready instead, and use it from then on.
 */
export const THREADS_START_WHILE_BLOCKED = false;

interface WorkerLike {
  postMessage(message: unknown): void;
  terminate(): void;
  onerror: ((event: unknown) => void) | null;
}
interface WebGlobals {
  Worker?: new (url: string, options?: { name?: string }) => WorkerLike;
  Blob?: new (parts: string[], options: { type: string }) => object;
  URL: { createObjectURL?(blob: object): string };
  crossOriginIsolated?: boolean;
}

/** One Blob URL per distinct script, kept for the page's life (two scripts at most: the GEMM pool's and the CRC-32C worker's). */
const urls = new Map<string, string>();

export function startThread(body: string, data: Readonly<Record<string, unknown>>, onError: () => void): ThreadHandle {
  const g = globalThis as unknown as WebGlobals;
  if (!g.Worker || !g.Blob || !g.URL.createObjectURL) throw new Error('no Web Workers here');
  if (g.crossOriginIsolated !== true) throw new Error('not cross-origin isolated: no shared memory for Web Workers');
  let url = urls.get(body);
  if (!url) {
    // The data arrives as the first message; the script then runs with it, and never listens again.
    const script = `self.onmessage = (event) => {\nself.onmessage = null;\nconst data = event.data;\n${body}\n};`;
    url = g.URL.createObjectURL(new g.Blob([script], { type: 'text/javascript' }));
    urls.set(body, url);
  }
  const worker = new g.Worker(url, { name: 'modelbridge' });
  worker.onerror = () => onError();
  worker.postMessage(data);
  return { terminate: () => worker.terminate() };
}

let blocking: boolean | undefined;

/** Whether this thread may block in Atomics.wait: not on a page's main thread, where it throws. */
export function canBlock(): boolean {
  if (blocking === undefined) {
    try {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
      blocking = true;
    } catch {
      blocking = false;
    }
  }
  return blocking;
}
