import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fuzz, inputId } from './fuzz/engine.js';
import { accepted, TARGETS } from './fuzz/targets.js';
import { ROOT } from './cli-helpers.js';

/**
 * Coverage-guided fuzzing of every reader (test/fuzz/engine.ts), seeded from real files. In the
 * suite each target runs FUZZ_SECONDS (default 5); `npm run fuzz` runs longer and keeps what it
 * finds: inputs that reached new code go to test/fuzz/corpus/<target>/ (the next run's seeds), and
 * crashes to test/fuzz/crashers/<target>/, which this file replays as regression tests forever.
 * A reader must return, or refuse with a FormatError or UsageError; anything else is a bug.
 */
const SECONDS = Number(process.env['FUZZ_SECONDS'] ?? 5);
const SAVE = process.env['FUZZ_SAVE'] === '1';
const DIR = join(ROOT, 'test', 'fuzz');
// Hostile mutations of length fields must hit the memory budget, not the test worker's heap.
process.env['MODELBRIDGE_MAX_MEMORY'] = '64M';

function kept(kind: 'corpus' | 'crashers', target: string): Uint8Array[] {
  const dir = join(DIR, kind, target);
  return existsSync(dir) ? readdirSync(dir).sort().map((f) => new Uint8Array(readFileSync(join(dir, f)))) : [];
}

function keep(kind: 'corpus' | 'crashers', target: string, inputs: readonly Uint8Array[]): void {
  const dir = join(DIR, kind, target);
  mkdirSync(dir, { recursive: true });
  for (const input of inputs) writeFileSync(join(dir, inputId(input)), input);
}

describe('fuzzing: every reader refuses mutated real files cleanly', () => {
  for (const target of TARGETS) {
    it(`${target.name}: the kept crashers and corpus replay cleanly`, () => {
      for (const input of [...kept('crashers', target.name), ...kept('corpus', target.name)]) {
        let error: unknown;
        try {
          target.run(input);
        } catch (e) {
          error = e;
        }
        if (error !== undefined) expect(accepted(error), `${target.name} input ${inputId(input)}: ${String(error)}`).toBeDefined();
      }
    });

    it(`${target.name}: ${SECONDS} s of coverage-guided mutations find no crash and reach new code`, () => {
      // The suite mutates the real files alone (the kept corpus is replayed above, and it may
      // already cover what a few seconds could reach); `npm run fuzz` grows the corpus further.
      const seeds = SAVE ? [...target.seeds(), ...kept('corpus', target.name)] : target.seeds();
      expect(seeds.length, 'real seed files').toBeGreaterThan(0);
      const result = fuzz(seeds, (input) => target.run(input), { seconds: SECONDS, maxLength: 256 * 1024, seed: 0x5eed + target.name.length, accept: accepted });
      if (SAVE) {
        keep('corpus', target.name, result.corpus.filter((c) => c.byteLength <= 16 * 1024).slice(-200));
        keep('crashers', target.name, result.crashes.map((c) => c.input));
      }
      const summary = `${result.executions} runs, ${result.seedBlocks} -> ${result.blocks} blocks, corpus ${result.corpus.length}, outcomes ${JSON.stringify(Object.fromEntries(result.outcomes))}`;
      console.log(`fuzz ${target.name}: ${summary}`);
      expect(result.crashes.map((c) => `${inputId(c.input)}: ${c.error}`), summary).toEqual([]);
      // Coverage guidance works: mutations reached code the seeds alone did not.
      expect(result.blocks, summary).toBeGreaterThan(result.seedBlocks);
    });
  }
});
