import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * A full garbage collection, now. Conversions of multi-GB models drop buffers of hundreds of MB
 * between phases (a transposed tensor, the source's weights after its run); V8 collects them when
 * its heuristics say so, which may be after the next phase has read as much in again, and the
 * process's peak memory is then both. The phases that hand such buffers back call this first.
 * (V8's gc function, exposed for this process by its flag; the browser build has a no-op, see
 * gc-web.ts.)
 */
let gc: (() => void) | null | undefined;

export function collectGarbage(): void {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
    } catch {
      gc = null;
    }
  }
  gc?.();
}
