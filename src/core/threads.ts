import { canBlock } from './threads-node.js';

/**
 * Threads sharing memory, the same on both platforms: threads-node.ts starts worker threads, and
 * the browser bundle swaps it for threads-web.ts (Web Workers). The helpers here wait on a shared
 * word however the calling thread may.
 */
export { startThread, THREADS_START_WHILE_BLOCKED, type ThreadHandle } from './threads-node.js';

/**
 * Waits until `words[index]` is no longer `value`, at most `timeoutMs`: Atomics.wait where this
 * thread may block, else (a page's main thread) a spin on Atomics.load, since the runtime's
 * callers are synchronous and the other threads are running meanwhile.
 */
export function waitWhile(words: Int32Array, index: number, value: number, timeoutMs: number): 'ok' | 'not-equal' | 'timed-out' {
  if (canBlock()) return Atomics.wait(words, index, value, timeoutMs);
  if (Atomics.load(words, index) !== value) return 'not-equal';
  const deadline = Date.now() + timeoutMs;
  for (let spins = 0; ; spins++) {
    if (Atomics.load(words, index) !== value) return 'ok';
    // the clock is read once in a thousand turns: a spin turn costs nanoseconds, a Date.now more
    if ((spins & 1023) === 1023 && Date.now() > deadline) return 'timed-out';
  }
}

/** Resolves once `done()` holds (checked every few milliseconds) or `timeoutMs` passes: waiting for threads to start without blocking. */
export async function until(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return true;
}
