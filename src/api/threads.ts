import { backgroundCrcStreams, startBackgroundCrc } from '../core/background-crc.js';
import { startIntraOpThreads, threadPoolStats } from '../runtime/wasm/gemm.js';

/**
 * Starts the threads a page may use: `count - 1` workers that share products with the calling
 * thread, and (when `count` > 1) the worker that checksums large TensorFlow checkpoints while
 * they are read or written. Resolves with the threads products will use: `count`, or 1 where no
 * worker can run (a page that is not cross-origin isolated has no shared memory). In the browser
 * build the workers are Web Workers, which start only between the page's tasks: a page calls this
 * once (say at load) and runs models after it resolves. In Node the threads start on first need.
 */
export async function startThreads(count: number): Promise<number> {
  const [threads] = await Promise.all([startIntraOpThreads(count), count > 1 ? startBackgroundCrc() : Promise.resolve(false)]);
  return threads;
}

/** What the threads have done: the product pool's workers and calls shared with them, and the checksum streams run on the CRC-32C worker. */
export function threadStats(): { workers: number; runs: number; crcStreams: number } {
  return { ...threadPoolStats(), crcStreams: backgroundCrcStreams() };
}
