/**
 * Reuse of float32 activation arrays between the steps and runs of a Session.
 *
 * A fresh typed array of a few MB costs more than the kernel that fills it: the engine maps
 * new zero pages and the first write to each faults (measured on Node 20: allocating and
 * filling 2 MB, 1.4 ms; refilling a kept array, 0.18 ms), and the collector later unmaps them.
 * A model's activations repeat the same few sizes run after run, so a Session keeps the arrays
 * it has dropped and hands them out again, zeroed, as kernels ask for new ones.
 *
 * Only arrays this arena handed out come back, and only when no live value still reads their
 * buffer (Reshape and Identity return their input's array; Slice may return a view of it): the
 * executor checks before giving one back. Inputs, initializers and outputs are never recycled.
 */
/**
 * Arrays below this many elements (16 KiB) are not pooled: the engine allocates small typed
 * arrays cheaply, and the bookkeeping would cost the OR gate's microseconds more than it saves.
 */
const MIN_POOLED = 4096;

/**
 * Makes a Float32Array that lives in the WebAssembly kernels' memory (wasm/gemm.ts registers
 * it; null when that memory cannot hold one more): a kernel of the module writes its result
 * there and the next one reads it there, with no copy in or out between them.
 */
export type ResidentAllocator = (count: number) => Float32Array | null;

let residentAllocator: ResidentAllocator | null = null;

export function setResidentAllocator(allocate: ResidentAllocator): void {
  residentAllocator = allocate;
}



export class Arena {
  /** Free arrays by length; resident ones (in the module's memory) under minus their length. */
  private readonly free = new Map<number, Float32Array[]>();
  private readonly mine = new WeakSet<Float32Array>();
  private readonly resident = new WeakSet<Float32Array>();
  /**
   * Resident arrays handed out and not given back yet. The arena holds them until the run ends
   * (reclaim): a resident array's block returns to the module's heap when the array is
   * collected, while a view of it (a Slice's result) only holds the shared buffer, so the array
   * must outlive every view; after a run none is left (its outputs leave as copies).
   */
  private readonly lent = new Set<Float32Array>();
  private held = 0;

  /** At most this many bytes wait for reuse; beyond, dropped arrays are left to the collector. */
  constructor(private readonly limit = 512 * 2 ** 20) {}

  /**
   * A Float32Array of `count` elements, reused when one of that size is free: zeroed, or with
   * whatever it held when `zeroed` is false (for a kernel that writes every element).
   */
  take(count: number, zeroed = true): Float32Array {
    if (count < MIN_POOLED) return new Float32Array(count);
    const list = this.free.get(count);
    const reused = list?.pop();
    if (reused) {
      this.held -= count * 4;
      if (zeroed) reused.fill(0);
      return reused;
    }
    const fresh = new Float32Array(count);
    this.mine.add(fresh);
    return fresh;
  }

  /**
   * A Float32Array of `count` elements in the WebAssembly module's memory, its contents
   * whatever they were (for a kernel of the module that writes every element), reused when one
   * of that size is free; null when none can be made there.
   */
  takeResident(count: number): Float32Array | null {
    const reused = this.free.get(-count)?.pop();
    if (reused) {
      this.held -= count * 4;
      this.lent.add(reused);
      return reused;
    }
    const fresh = residentAllocator?.(count) ?? null;
    if (fresh) {
      this.mine.add(fresh);
      this.resident.add(fresh);
      this.lent.add(fresh);
    }
    return fresh;
  }

  /** At the end of a run: every resident array still out comes back (nothing reads them any more). */
  reclaim(): void {
    for (const data of this.lent) this.give(data);
    this.lent.clear();
  }

  /** True for an array this arena handed out (whole, not a view of one). */
  owns(data: unknown): data is Float32Array {
    return data instanceof Float32Array && (data.length >= MIN_POOLED || this.resident.has(data)) && this.mine.has(data);
  }

  /** Takes back an array nothing reads any more. */
  give(data: Float32Array): void {
    this.lent.delete(data);
    if (this.held + data.byteLength > this.limit) return;
    const key = this.resident.has(data) ? -data.length : data.length;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    list.push(data);
    this.held += data.byteLength;
  }
}

let active: Arena | null = null;

/** The arena of the Session running now, if any (kernels allocate their float32 results from it). */
export function activeArena(): Arena | null {
  return active;
}

/** Makes `arena` the active one and returns the previous (restore it when the run ends). */
export function setActiveArena(arena: Arena | null): Arena | null {
  const previous = active;
  active = arena;
  return previous;
}
