import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TFLITE_SCHEMA_SHA256 } from '../src/formats/tflite/schema/index.js';
import { ROOT } from './cli-helpers.js';

const SCHEMA = join(ROOT, 'proto', 'tflite', 'tflite.fbs');
const GENERATED = join(ROOT, 'src', 'formats', 'tflite', 'schema');
const FLATC = spawnSync('flatc', ['--version'], { encoding: 'utf8' });
const PINNED = /FLATC_VERSION="([^"]+)"/.exec(readFileSync(join(ROOT, 'scripts', 'gen-tflite.sh'), 'utf8'))![1]!;
const hasPinnedFlatc = FLATC.status === 0 && FLATC.stdout.trim() === `flatc version ${PINNED}`;

/** The committed TypeScript under src/formats/tflite/schema/ is what gen-tflite.sh makes of proto/tflite/tflite.fbs. */
describe('TFLite schema code', () => {
  it('records the sha256 of the schema it was generated from', () => {
    expect(createHash('sha256').update(readFileSync(SCHEMA)).digest('hex')).toBe(TFLITE_SCHEMA_SHA256);
  });

  it.skipIf(!hasPinnedFlatc)(`is what flatc ${PINNED} generates today (else run scripts/gen-tflite.sh)`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'gen-tflite-'));
    try {
      const r = spawnSync('bash', [join(ROOT, 'scripts', 'gen-tflite.sh'), dir], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const files = readdirSync(GENERATED).sort();
      expect(readdirSync(dir).sort()).toEqual(files);
      for (const f of files) expect(readFileSync(join(dir, f), 'utf8'), f).toBe(readFileSync(join(GENERATED, f), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
