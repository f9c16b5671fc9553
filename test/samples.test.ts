import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../src/api/demo.js';
import { ROOT, tempDir } from './cli-helpers.js';

/** Every file under `dir`, as paths relative to it (a SavedModel is a directory of files). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

/** samples/or-gate/ is what `npm run samples` (the demo, seed 0) writes; regenerating must change no byte. */
describe('samples/or-gate', () => {
  it('is fresh: regenerating it gives the same files, byte for byte', () => {
    const samples = join(ROOT, 'samples', 'or-gate');
    const out = tempDir();
    const { rows } = runDemo(out, 0);
    const written = filesUnder(out);
    expect(written.length).toBeGreaterThanOrEqual(rows.length);
    expect(filesUnder(samples)).toEqual(written);
    for (const name of written) {
      const fresh = readFileSync(join(out, name));
      const stored = readFileSync(join(samples, name));
      expect(Buffer.compare(fresh, stored), `${name} differs: run npm run samples`).toBe(0);
    }
  });
});
