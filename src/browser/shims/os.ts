import { MemoryVolume } from '../../core/vfs-memory.js';
import { mount } from '../../core/vfs.js';

/**
 * node:os for the browser bundle: one core (threads start only when the page asks: startThreads), and a temporary directory
 * on an in-memory volume (validate's round trips write there).
 */
export function availableParallelism(): number {
  return 1;
}

export function cpus(): unknown[] {
  return [{}];
}

let scratch: MemoryVolume | undefined;

export function tmpdir(): string {
  if (!scratch) {
    scratch = new MemoryVolume();
    mount(scratch);
  }
  return scratch.root;
}
