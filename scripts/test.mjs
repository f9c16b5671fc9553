// The test command: makes the peers environment (Python frameworks the cross-checks need),
// type-checks, runs the whole vitest suite, and ends with one line "N passed, N failed".
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const ci = process.env.CI === 'true';
const run = (cmd, args, extra = {}) => spawnSync(cmd, args, { stdio: 'inherit', ...extra }).status ?? 1;

let failedSteps = 0;

// 1. Peers. In CI a missing peer must fail the run; elsewhere the peer tests say why they skip.
if (run('bash', ['scripts/peers-env.sh']) !== 0) {
  if (ci) failedSteps++;
  console.warn('warning: the peers environment could not be made; tests that need Python peers will skip (they fail under CI=true)');
}

// 1b. The browser the web page's tests run in (Debian's chromium), under the same rule.
if (run('bash', ['scripts/browser-env.sh']) !== 0) {
  if (ci) failedSteps++;
  console.warn('warning: no Chromium; the web page tests will skip (they fail under CI=true)');
}

// 2. Types: strict TypeScript over src, test and bench.
// The web page too, against the DOM's types (web/tsconfig.json).
if (run('npx', ['tsc', '--noEmit', '-p', '.']) !== 0 || run('npx', ['tsc', '--noEmit', '-p', 'web']) !== 0) {
  console.error('typecheck failed');
  failedSteps++;
}

// 3. The suite, with a JSON report to count from (vitest's own summary is for people).
const report = '.vitest-report.json';
rmSync(report, { force: true });
run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)]);

let passed = 0;
let failed = failedSteps;
let skipped = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed += r.numPassedTests ?? 0;
  failed += r.numFailedTests ?? 0;
  // A test file that fails to load has no test results of its own: count it once.
  failed += (r.testResults ?? []).filter((f) => f.status === 'failed' && (f.assertionResults ?? []).length === 0).length;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  if ((r.numTotalTests ?? 0) === 0) failed++;
} else {
  failed++;
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 ? 0 : 1);
