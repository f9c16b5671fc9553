// npm run coverage: writes docs/coverage.md from src/op-coverage (the op table joined from the runtime,
// ONNX schema, TF import/export and TF.js tables) and, when docs/zoo-matrix.json exists (written by
// `npm run zoo`), the zoo matrix. test/coverage.test.ts fails when the committed file is stale.
// `--check` only compares, exiting 1 when the file differs.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'docs', 'coverage.md');
const ZOO = join(ROOT, 'docs', 'zoo-matrix.json');

const scratch = mkdtempSync(join(tmpdir(), 'modelbridge-coverage-'));
try {
  const bundle = join(scratch, 'coverage.mjs');
  await build({ entryPoints: [join(ROOT, 'src', 'op-coverage', 'index.ts')], bundle: true, platform: 'node', format: 'esm', outfile: bundle, logLevel: 'error' });
  const coverage = await import(pathToFileURL(bundle).href);
  let zoo;
  try {
    zoo = existsSync(ZOO) ? coverage.parseZooMatrix(readFileSync(ZOO, 'utf8'), 'docs/zoo-matrix.json') : undefined;
  } catch (e) {
    console.error(`coverage: ${e.message}`);
    process.exit(2);
  }
  const rows = coverage.coverageTable();
  const missing = coverage.unexplained(rows);
  if (missing.length) console.error(`coverage: ${missing.length} ops have neither a mapping nor a reason (src/coverage/reasons.ts): ${missing.join('; ')}`);
  const text = coverage.renderCoverage(rows, zoo);
  if (process.argv.includes('--check')) {
    const current = existsSync(OUT) ? readFileSync(OUT, 'utf8') : '';
    if (current !== text) {
      console.error('coverage: docs/coverage.md is stale; run npm run coverage');
      process.exit(1);
    }
    console.log('coverage: docs/coverage.md is current');
  } else {
    writeFileSync(OUT, text);
    console.log(`coverage: wrote docs/coverage.md (${rows.length} ops${zoo ? `, ${zoo.cells.length} zoo cells` : ''})`);
  }
  if (missing.length) process.exit(1);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
