/**
 * Progress of long synchronous work (a conversion reading, writing and verifying gigabytes).
 * The library only reports: a phase with its total bytes, then bytes done. Whoever wants to show
 * it (the CLI on a terminal) installs a sink; without one every call is a no-op costing a branch.
 * Everything here runs on the one thread that does the work, so a sink must draw synchronously:
 * the event loop is not free to run timers until the work is done.
 */
export interface ProgressSink {
  /** A new phase (`write`, `verify`, `outputs`) and the bytes of the model it works through. */
  phase(name: string, totalBytes: number): void;
  advance(bytes: number): void;
}

let sink: ProgressSink | undefined;
/** While above 0, source reads are not counted: the reader reports its own unit of work. */
let muted = 0;

export function setProgressSink(next: ProgressSink | undefined): void {
  sink = next;
}

export function progressPhase(name: string, totalBytes: number): void {
  sink?.phase(name, totalBytes);
}

/** Bytes done in the current phase. */
export function progressAdvance(bytes: number): void {
  if (sink) sink.advance(bytes);
}

/** Bytes read from a model file or memory (counted unless a caller muted source reads). */
export function progressRead(bytes: number): void {
  if (sink && muted === 0) sink.advance(bytes);
}

/** Runs `f` with source reads uncounted (a comparison counts compared bytes, not both reads). */
export function withReadsMuted<T>(f: () => T): T {
  muted++;
  try {
    return f();
  } finally {
    muted--;
  }
}
