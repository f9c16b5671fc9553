import { SingleBar, type Options, type Params } from 'cli-progress';
import { setProgressSink, type ProgressSink } from '../core/progress.js';

/** Phases smaller than this finish before a bar would be worth drawing. */
export const PROGRESS_MIN_BYTES = 16 << 20;

const LABELS: Readonly<Record<string, string>> = {
  write: 'writing',
  verify: 'verifying',
  compare: 'comparing',
  finite: 'scanning',
  outputs: 'running the model(s) on a generated input',
  checksums: 'checking checksums',
};

/** Phases with no byte count worth a bar: one line says what is going on. */
const TEXT_PHASES: ReadonlySet<string> = new Set(['outputs', 'checksums']);

function si(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(0)} MB`;
  return `${(bytes / 1e3).toFixed(0)} kB`;
}

/**
 * Progress on stderr while a long command works, when stderr is a terminal and --quiet is not
 * given: per phase a bar with bytes done out of the total, the rate and the time left. The work
 * is synchronous, so cli-progress draws from inside each update (its synchronousUpdate), at most
 * ten times a second. Returns the function that clears it; call it before printing results.
 */
export function showProgress(quiet: boolean): () => void {
  if (quiet || !process.stderr.isTTY) return () => {};
  let bar: SingleBar | undefined;
  let label = '';
  let done = 0;
  let total = 0;
  let started = 0;
  let text: string | undefined;
  const format = (_options: Options, params: Params): string => {
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = rate > 0 ? Math.max(0, (total - done) / rate) : NaN;
    const width = 24;
    const filled = Math.round(params.progress * width);
    const bars = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
    return `${label.padEnd(10)} ${bars} ${String(Math.round(params.progress * 100)).padStart(3)}% ${si(done)} / ${si(total)}  ${si(rate)}/s  ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)} s` : '-'}`;
  };
  const clearText = () => {
    if (text !== undefined) process.stderr.write('\r\x1b[2K');
    text = undefined;
  };
  const stop = () => {
    bar?.stop();
    bar = undefined;
    clearText();
  };
  const sink: ProgressSink = {
    phase(name, bytes) {
      stop();
      label = LABELS[name] ?? name;
      done = 0;
      total = bytes;
      started = Date.now();
      if (bytes < PROGRESS_MIN_BYTES) return;
      if (TEXT_PHASES.has(name)) {
        text = `${label} ...`;
        process.stderr.write(text);
        return;
      }
      bar = new SingleBar({ format, stream: process.stderr, fps: 10, hideCursor: true, clearOnComplete: true, gracefulExit: true });
      bar.start(bytes, 0);
    },
    advance(bytes) {
      if (!bar) return;
      done = Math.min(total, done + bytes);
      bar.update(done);
    },
  };
  setProgressSink(sink);
  return () => {
    stop();
    setProgressSink(undefined);
  };
}
