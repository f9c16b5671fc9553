import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Runner } from '../src/api/run.js';
import { FormatError, UsageError } from '../src/core/errors.js';
import { Tensor } from '../src/core/tensor.js';
import { modelFromBundle } from '../src/module/bundle.js';
import { parseSafetensors } from '../src/formats/safetensors/reader.js';
import { serializeSafetensors } from '../src/formats/safetensors/writer.js';
import { ROOT } from './cli-helpers.js';

/**
 * Fuzzes the whole read path of a modelbridge bundle, beyond the safetensors container: the module
 * spec and signature in the metadata are mutated as JSON, and the file as bytes. Reading may only
 * fail with FormatError; building and running a model that did read may only fail with UsageError.
 */
const SAMPLE = readFileSync(join(ROOT, 'samples', 'or-gate', 'or-gate.safetensors'));
const original = parseSafetensors(SAMPLE, 'sample');
const spec = JSON.parse(original.metadata!['modelbridge.module']!) as unknown;
const signature = JSON.parse(original.metadata!['modelbridge.signature']!) as unknown;

const jsonValue = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 2, 3, 1e9, 0.5, NaN, '', 'Linear', 'Conv2d', 'Sequential', 'Graph', 'same', [], {}, [2, 2], [-1, 2]),
  fc.jsonValue({ maxDepth: 3 }),
);

/** Replaces the value at a random path inside `value` with `replacement`. */
function mutateAt(value: unknown, choices: number[], replacement: unknown): unknown {
  if (choices.length === 0 || value === null || typeof value !== 'object') return replacement;
  const [pick, ...rest] = choices as [number, ...number[]];
  if (Array.isArray(value)) {
    if (value.length === 0) return replacement;
    const copy = [...value];
    copy[pick % copy.length] = mutateAt(copy[pick % copy.length], rest, replacement);
    return copy;
  }
  const keys = Object.keys(value);
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const key = pick % (keys.length + 1) === keys.length ? `extra${pick}` : keys[pick % (keys.length + 1)]!;
  copy[key] = mutateAt(copy[key], rest, replacement);
  return copy;
}

function exercise(tensors: ReadonlyMap<string, Tensor>, metadata: Record<string, string>): void {
  let model;
  try {
    model = modelFromBundle({ tensors, metadata }, 'safetensors', 'fuzz.safetensors');
  } catch (e) {
    if (e instanceof FormatError) return;
    throw e;
  }
  if (!model.graph) return;
  try {
    const runner = new Runner(model);
    runner.run({ [runner.inputNames[0]!]: Tensor.from('float32', [4, 2], [0, 0, 0, 1, 1, 0, 1, 1]) });
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
  }
}

describe('bundle fuzzing: only typed errors escape', () => {
  it('mutated module specs and signatures', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(fc.nat(50), { maxLength: 5 }), jsonValue, (inSpec, path, replacement) => {
        const metadata = { ...original.metadata! };
        if (inSpec) metadata['modelbridge.module'] = JSON.stringify(mutateAt(spec, path, replacement));
        else metadata['modelbridge.signature'] = JSON.stringify(mutateAt(signature, path, replacement));
        exercise(original.tensors, metadata);
      }),
      { numRuns: 3000, seed: 20261125 },
    );
  });

  it('mutated bytes of the whole file', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(SAMPLE.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (flips) => {
        const bytes = Uint8Array.from(SAMPLE);
        for (const [at, value] of flips) bytes[at] = value;
        let file;
        try {
          file = parseSafetensors(bytes, 'fuzz.safetensors');
        } catch (e) {
          if (e instanceof FormatError) return;
          throw e;
        }
        exercise(file.tensors, file.metadata ?? {});
      }),
      { numRuns: 3000, seed: 7 },
    );
  });

  it('the unmutated sample reads, runs, and re-serializes to the same bytes', () => {
    expect(() => exercise(original.tensors, original.metadata!)).not.toThrow();
    expect(Buffer.compare(serializeSafetensors(original.tensors, original.metadata), SAMPLE)).toBe(0);
  });
});
