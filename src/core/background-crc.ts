import { startThread, THREADS_START_WHILE_BLOCKED, until, waitWhile } from './threads.js';
import { Crc32c, crc32cBackend, CRC32C_TABLES, crc32cWith } from './crc32c.js';

/**
 * CRC-32C on a second thread. Verifying a TensorFlow checkpoint means a CRC-32C of every tensor
 * byte, which JavaScript computes at 1-2 GB/s: as slow as the rest of a conversion (read,
 * transpose, write) put together. A stream hands its chunks to a worker thread, which checksums
 * them while the stream goes on; the result is waited for at the end of the stream.
 *
 * The chunks are copied into a ring of shared slots (a copy costs a small fraction of a
 * checksum); the two threads coordinate through Atomics on shared control words, so the
 * synchronous readers and writers of this project need no event loop to use it. The worker runs
 * the same crc32cWith as this thread, from its source text.
 *
 * The worker is a Node worker thread, or a Web Worker in the browser build (src/core/threads.ts).
 * A Web Worker starts only once the page returns to its event loop, so there a stream uses the
 * worker only once it reports ready (`startBackgroundCrc()` starts it ahead; until then checksums
 * run inline), and a page's main thread, which may not block, spins on the worker's count.
 */

const SLOTS = 4;
const SLOT_BYTES = 4 << 20;
/** Below this a stream is checksummed inline: a handover costs more than it saves. */
export const BACKGROUND_CRC_MIN_BYTES = 8 << 20;
/** Control words (Int32): chunks handed over, chunks done, the running CRC, the worker's state (0 starting, 1 ready, 2 failed), then per slot its length and whether it starts a stream. */
const HEAD = 0;
const TAIL = 1;
const CRC = 2;
const STATE = 3;
const LENGTHS = 4;
const FIRSTS = LENGTHS + SLOTS;
const WORDS = FIRSTS + SLOTS;
const READY = 1;
const FAILED = 2;
/** How long the stream waits for the worker's next chunk before it gives up (a stuck or dead worker). */
const STALL_MS = 60_000;

/** The worker's script (`data` holds the control words, the ring and the CRC tables). */
const workerSource = (): string => `
const crc32cWith = (${crc32cWith.toString()});
const ctl = new Int32Array(data.control);
const ring = new Uint8Array(data.data);
const tables = new Uint32Array(data.tables);
let tail = 0;
let crc = 0;
Atomics.store(ctl, ${STATE}, ${READY});
try {
  for (;;) {
    Atomics.wait(ctl, ${HEAD}, tail);
    const head = Atomics.load(ctl, ${HEAD});
    while (tail !== head) {
      const slot = tail % ${SLOTS};
      if (ctl[${FIRSTS} + slot] === 1) crc = 0;
      crc = crc32cWith(tables, true, ring.subarray(slot * ${SLOT_BYTES}, slot * ${SLOT_BYTES} + ctl[${LENGTHS} + slot]), crc);
      tail++;
      Atomics.store(ctl, ${CRC}, crc | 0);
      Atomics.store(ctl, ${TAIL}, tail);
      Atomics.notify(ctl, ${TAIL});
    }
  }
} catch (error) {
  Atomics.store(ctl, ${STATE}, ${FAILED});
  Atomics.notify(ctl, ${TAIL});
}
`;

/** A worker with its ring; leased to one stream at a time. */
class CrcWorker {
  readonly control = new Int32Array(new SharedArrayBuffer(WORDS * 4));
  readonly data = new Uint8Array(new SharedArrayBuffer(SLOTS * SLOT_BYTES));
  /** Chunks handed over so far (the worker's HEAD). */
  head = 0;

  constructor() {
    const tables = new Uint32Array(new SharedArrayBuffer(CRC32C_TABLES.byteLength));
    tables.set(CRC32C_TABLES);
    startThread(workerSource(), { control: this.control.buffer, data: this.data.buffer, tables: tables.buffer }, () => Atomics.store(this.control, STATE, FAILED));
  }

  /** Whether the worker has started (in Node it may be handed chunks before: it takes them when it starts). */
  get ready(): boolean {
    return Atomics.load(this.control, STATE) === READY;
  }

  /** Blocks until the worker has done all but `ahead` of the chunks handed over. */
  waitUntil(ahead: number): void {
    let since = Date.now();
    for (;;) {
      if (Atomics.load(this.control, STATE) === FAILED) throw new Error('the CRC-32C worker thread failed');
      const tail = Atomics.load(this.control, TAIL);
      if (this.head - tail <= ahead) return;
      // In slices, so that a failure is seen where this thread spins rather than sleeps (a page's main thread).
      if (waitWhile(this.control, TAIL, tail, 250) === 'timed-out' && Atomics.load(this.control, TAIL) === tail) {
        if (Date.now() - since > STALL_MS) throw new Error(`the CRC-32C worker thread made no progress in ${STALL_MS / 1000} s`);
      } else since = Date.now();
    }
  }
}

let idle: CrcWorker | undefined;
let unavailable = false;
/** Streams checksummed on the worker (the browser tests check that the Web Worker took part). */
let backgroundStreams = 0;

function spawn(): CrcWorker | undefined {
  try {
    return new CrcWorker();
  } catch {
    unavailable = true; // no worker threads or shared memory here: checksums stay inline
    return undefined;
  }
}

function leaseWorker(): CrcWorker | undefined {
  if (unavailable) return undefined;
  if (!idle) idle = spawn();
  const found = idle;
  if (!found) return undefined;
  if (Atomics.load(found.control, STATE) === FAILED) {
    // a worker that failed before any work (a page whose policy forbids blob: workers) will again
    idle = undefined;
    unavailable = true;
    return undefined;
  }
  // A Web Worker still starting cannot take chunks while this thread waits: inline this time.
  if (!THREADS_START_WHILE_BLOCKED && !found.ready) return undefined;
  idle = undefined;
  backgroundStreams++;
  return found;
}

/**
 * Starts the checksum worker ahead of the first large stream and resolves with whether it runs.
 * The browser build must (its Web Worker starts only between the page's tasks); Node need not.
 */
export async function startBackgroundCrc(): Promise<boolean> {
  if (unavailable) return false;
  const worker = (idle ??= spawn());
  if (!worker) return false;
  await until(() => Atomics.load(worker.control, STATE) !== 0, STALL_MS);
  return worker.ready;
}

/** Streams checksummed on the worker so far. */
export function backgroundCrcStreams(): number {
  return backgroundStreams;
}

/** A CRC-32C over a stream of chunks: `result()` ends the stream; `cancel()` abandons it. */
export interface StreamChecksum {
  update(bytes: Uint8Array): void;
  result(): number;
  cancel(): void;
}

/**
 * The checksum for a stream of `byteLength` bytes: on a worker thread for a large stream where
 * worker threads run, else inline.
 */
export function streamChecksum(byteLength: number): StreamChecksum {
  // Native CRC-32C runs faster than the copy into a worker's ring: it stays inline.
  const worker = byteLength >= BACKGROUND_CRC_MIN_BYTES && crc32cBackend() === 'js' ? leaseWorker() : undefined;
  if (worker) return new BackgroundCrc32c(worker);
  const inline = new Crc32c();
  return {
    update: (bytes) => void inline.update(bytes),
    result: () => inline.value,
    cancel: () => {},
  };
}

/**
 * Passes `chunks` through while checksumming them (on a worker thread for a large stream);
 * `done` gets the CRC once the last chunk has been taken, before the stream ends.
 */
export function* checksummed(chunks: Iterable<Uint8Array>, byteLength: number, done: (crc: number) => void): Iterable<Uint8Array> {
  const crc = streamChecksum(byteLength);
  let complete = false;
  try {
    for (const chunk of chunks) {
      crc.update(chunk);
      yield chunk;
    }
    complete = true;
  } finally {
    if (!complete) crc.cancel();
  }
  done(crc.result());
}

/** An incremental CRC-32C computed on a leased worker, which goes back to the pool at the end. */
export class BackgroundCrc32c implements StreamChecksum {
  private first = true;
  private done = false;

  constructor(private readonly worker: CrcWorker) {}

  update(bytes: Uint8Array): void {
    if (this.done) throw new Error('BackgroundCrc32c.update after the stream ended');
    const w = this.worker;
    for (let at = 0; at < bytes.byteLength; at += SLOT_BYTES) {
      const piece = bytes.subarray(at, Math.min(at + SLOT_BYTES, bytes.byteLength));
      w.waitUntil(SLOTS - 1);
      const slot = w.head % SLOTS;
      w.data.set(piece, slot * SLOT_BYTES);
      w.control[LENGTHS + slot] = piece.byteLength;
      w.control[FIRSTS + slot] = this.first ? 1 : 0;
      this.first = false;
      w.head++;
      Atomics.store(w.control, HEAD, w.head);
      Atomics.notify(w.control, HEAD);
    }
  }

  /** The CRC of everything handed over, once the worker is done with it. */
  result(): number {
    if (this.done) throw new Error('BackgroundCrc32c.result called twice');
    this.done = true;
    const w = this.worker;
    w.waitUntil(0);
    const crc = this.first ? 0 : Atomics.load(w.control, CRC) >>> 0;
    idle = w;
    return crc;
  }

  /** Gives the worker back without a result (a stream abandoned part way). */
  cancel(): void {
    if (this.done) return;
    this.done = true;
    try {
      this.worker.waitUntil(0);
      idle = this.worker;
    } catch {
      // a failed worker is not reused
    }
  }
}
