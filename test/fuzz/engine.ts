import { createHash } from 'node:crypto';
import { Session } from 'node:inspector';

/**
 * A small coverage-guided fuzzer over the readers, in process. Coverage comes from V8 itself
 * (the inspector's precise block coverage, the data `node --experimental-test-coverage` and c8
 * use): an input that reaches a block of src/ no earlier input reached joins the corpus and is
 * mutated further. Jazzer.js would be the library for this, but its 4.x prebuilt addon needs glibc
 * 2.38 (this project's Debian 12 machines have 2.36) and 2.x downloads its addon from outside the
 * npm registry at install time, which these machines cannot reach; V8's own coverage needs no
 * native code.
 */

export interface Outcome {
  /** 'ok', or the error class a reader may throw for a bad file. */
  readonly kind: string;
}

export interface FuzzResult {
  readonly executions: number;
  readonly corpus: Uint8Array[];
  /** Inputs that ended in anything but an accepted outcome, with the error. */
  readonly crashes: { readonly input: Uint8Array; readonly error: string }[];
  /** Blocks of src/ covered by the end of the run, and by the seeds alone. */
  readonly blocks: number;
  readonly seedBlocks: number;
  readonly outcomes: ReadonlyMap<string, number>;
}

export interface FuzzOptions {
  readonly seconds: number;
  /** Inputs are cut to this size after mutation. */
  readonly maxLength: number;
  /** Deterministic runs: the PRNG seed. */
  readonly seed: number;
  /** The error classes that are a clean refusal; anything else is a crash. */
  readonly accept: (error: unknown) => string | undefined;
}

/** xorshift32: reproducible mutations for a given seed. */
class Random {
  constructor(private state: number) {
    if (this.state === 0) this.state = 0x9e3779b9;
  }
  next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }
  below(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
}

const INTERESTING_32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];
// Tokens of the text parts of formats: JSON headers (safetensors, TF.js) and .npy's Python dict.
const TOKENS = ['-1', '0', '4294967296', '9007199254740993', '1e308', 'null', '[]', '{}', '"', '\\u0000', 'NaN', '[1,2,3]', '99999999999999999999', "'<f8'", "'>i4'", "'|b1'", "'<c8'", "'<U3'", 'True', '(0,)', '(2, 3)', "'float16'", '"F16"', '"BF16"', '"I64"'];

function mutate(input: Uint8Array, corpus: readonly Uint8Array[], rng: Random, maxLength: number): Uint8Array {
  let out = Uint8Array.from(input);
  const rounds = 1 + rng.below(4);
  for (let r = 0; r < rounds; r++) {
    const n = out.byteLength;
    const at = rng.below(Math.max(n, 1));
    switch (rng.below(9)) {
      case 0: // flip a bit
        if (n) out[at] = out[at]! ^ (1 << rng.below(8));
        break;
      case 1: // a random byte
        if (n) out[at] = rng.below(256);
        break;
      case 2: {
        // an interesting 32-bit value, little-endian
        const v = INTERESTING_32[rng.below(INTERESTING_32.length)]!;
        for (let k = 0; k < 4 && at + k < n; k++) out[at + k] = (v >>> (8 * k)) & 0xff;
        break;
      }
      case 3: {
        // delete a range
        const len = 1 + rng.below(Math.min(64, Math.max(n - at, 1)));
        out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + len)]);
        break;
      }
      case 4: {
        // duplicate a range
        const len = 1 + rng.below(Math.min(64, Math.max(n - at, 1)));
        const piece = out.subarray(at, at + len);
        out = Uint8Array.from([...out.subarray(0, at), ...piece, ...out.subarray(at)]);
        break;
      }
      case 5: // truncate
        out = out.subarray(0, at);
        break;
      case 6: {
        // a token, for the JSON and text parts of formats
        const token = new TextEncoder().encode(TOKENS[rng.below(TOKENS.length)]!);
        out = Uint8Array.from([...out.subarray(0, at), ...token, ...out.subarray(at + rng.below(4))]);
        break;
      }
      case 7: {
        // splice with another corpus entry
        const other = corpus[rng.below(corpus.length)]!;
        const from = rng.below(Math.max(other.byteLength, 1));
        out = Uint8Array.from([...out.subarray(0, at), ...other.subarray(from, from + 1 + rng.below(256))]);
        break;
      }
      default: {
        // bump a digit run in text (lengths and offsets in JSON headers)
        const text = out;
        let i = at;
        while (i < n && !(text[i]! >= 0x30 && text[i]! <= 0x39)) i++;
        if (i < n) text[i] = 0x30 + rng.below(10);
        break;
      }
    }
  }
  return out.byteLength > maxLength ? out.subarray(0, maxLength) : out;
}

/** V8 block coverage of the files under src/, as a set of "url:offset" keys of executed blocks. */
class Coverage {
  private readonly session = new Session();
  readonly seen = new Set<string>();

  constructor() {
    this.session.connect();
    this.post('Profiler.enable');
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  private post(method: string, params?: object): unknown {
    let result: unknown;
    let failure: Error | null = null;
    // Same-thread sessions answer synchronously.
    this.session.post(method, params ?? {}, (err: Error | null, res: unknown) => {
      failure = err;
      result = res;
    });
    if (failure) throw failure;
    return result;
  }

  /** Takes (and resets) the counts since the last call; returns how many blocks are new. */
  take(): number {
    const taken = this.post('Profiler.takePreciseCoverage') as { result: { url: string; functions: { ranges: { startOffset: number; count: number }[] }[] }[] };
    let fresh = 0;
    for (const script of taken.result) {
      if (!script.url.includes('/src/')) continue;
      for (const fn of script.functions) {
        for (const range of fn.ranges) {
          if (range.count === 0) continue;
          const key = `${script.url}:${range.startOffset}`;
          if (!this.seen.has(key)) {
            this.seen.add(key);
            fresh++;
          }
        }
      }
    }
    return fresh;
  }

  close(): void {
    this.post('Profiler.stopPreciseCoverage');
    this.session.disconnect();
  }
}

export function inputId(input: Uint8Array): string {
  return createHash('sha1').update(input).digest('hex').slice(0, 16);
}

/** Runs `target` on mutations of `seeds` for `options.seconds`, guided by coverage. */
export function fuzz(seeds: readonly Uint8Array[], target: (input: Uint8Array) => void, options: FuzzOptions): FuzzResult {
  const rng = new Random(options.seed);
  const coverage = new Coverage();
  const corpus: Uint8Array[] = [];
  const crashes: { input: Uint8Array; error: string }[] = [];
  const outcomes = new Map<string, number>();
  const crashed = new Set<string>();
  let executions = 0;
  let seedBlocks = 0;

  const execute = (input: Uint8Array): boolean => {
    executions++;
    let kind = 'ok';
    try {
      target(input);
    } catch (error) {
      const accepted = options.accept(error);
      if (accepted === undefined) {
        const id = inputId(input);
        if (!crashed.has(id)) {
          crashed.add(id);
          crashes.push({ input, error: error instanceof Error ? `${error.name}: ${error.message}`.split('\n')[0]! : String(error) });
        }
        kind = 'crash';
      } else kind = accepted;
    }
    outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1);
    return coverage.take() > 0;
  };

  try {
    coverage.take();
    for (const seed of seeds) if (execute(seed) || corpus.length === 0) corpus.push(seed);
    seedBlocks = coverage.seen.size;
    const end = Date.now() + options.seconds * 1000;
    while (Date.now() < end && corpus.length > 0) {
      const parent = corpus[rng.below(corpus.length)]!;
      const child = mutate(parent, corpus, rng, options.maxLength);
      if (execute(child)) corpus.push(child);
    }
  } finally {
    coverage.close();
  }
  return { executions, corpus, crashes, blocks: coverage.seen.size, seedBlocks, outcomes };
}
