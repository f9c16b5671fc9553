/**
 * Whether the session running now runs once (a conversion's output check, `diff`, a single
 * `modelbridge run`): its constant weights are then used in place. Packing a weight for the
 * WebAssembly GEMM pays back over many calls; for one call it costs a second copy of every
 * weight, in WebAssembly memory, which never shrinks, so a 1 GiB model verified after its
 * conversion would peak at three times its size. Set by the executor around a run.
 */
let once = false;

/** Sets the flag for the run about to start; returns the previous value to restore. */
export function setRunsOnce(value: boolean): boolean {
  const previous = once;
  once = value;
  return previous;
}

export function runsOnce(): boolean {
  return once;
}
