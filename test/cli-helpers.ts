import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/**
 * The one root of the upstream fixtures: byte-for-byte copies of other projects' test files
 * (test/fixtures/PROVENANCE.md names each project, commit and licence).
 */
export const FIXTURES = join(ROOT, 'test', 'fixtures', 'upstream');
const BIN = join(ROOT, 'bin', 'modelbridge.cjs');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built CLI (dist/, made by the build in globalSetup) as a user would. */
export function cli(args: readonly string[], cwd = ROOT): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, MODELBRIDGE_DEBUG: '' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function tempDir(prefix = 'modelbridge-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
