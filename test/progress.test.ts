import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { saveModel } from '../src/api/load.js';
import { Tensor } from '../src/core/tensor.js';
import { PROGRESS_MIN_BYTES } from '../src/cli/progress.js';
import { cli, ROOT, tempDir } from './cli-helpers.js';

/**
 * Progress on a terminal: the CLI runs under a pseudo-terminal made by util-linux's `script`
 * (stderr is then a TTY, as for a user), and the bar's text must show; piped, or with --quiet,
 * stderr stays empty.
 */

const SCRIPT = '/usr/bin/script';
const dir = tempDir('modelbridge-progress-');
const model = join(dir, 'big.safetensors');

/** A bundle above the size where the bar appears: 2 float32 tensors, seeded values. */
function makeModel(): void {
  const n = (PROGRESS_MIN_BYTES * 2) / 4 / 2;
  const weights = new Map<string, Tensor>();
  for (let t = 0; t < 2; t++) {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = Math.sin(i + t);
    weights.set(`w${t}`, Tensor.fromArray('float32', [n], v));
  }
  saveModel({ format: 'memory', weights, signatures: [], metadata: {} }, model);
}

/** Runs the CLI under a pseudo-terminal; returns what the terminal showed (stdout and stderr mixed). */
function underTerminal(args: readonly string[]): { code: number; shown: string } {
  const log = join(dir, `tty-${Math.random().toString(36).slice(2)}.log`);
  const command = [process.execPath, join(ROOT, 'bin', 'modelbridge.cjs'), ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync(SCRIPT, ['-qec', command, log], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, MODELBRIDGE_DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status ?? -1, shown: existsSync(log) ? readFileSync(log, 'utf8') : r.stdout };
}

describe.skipIf(!existsSync(SCRIPT))('progress on a terminal', () => {
  makeModel();

  it('convert shows a bar per phase with bytes, rate and ETA on a terminal', () => {
    const r = underTerminal(['convert', model, join(dir, 'out1.safetensors')]);
    expect(r.code).toBe(0);
    expect(r.shown).toMatch(/writing\s+[█░]+\s+\d+% [\d.]+ [kMG]B \/ 34 MB\s+[\d.]+ [kMG]B\/s\s+ETA/);
    expect(r.shown).toMatch(/verifying\s+[█░]+/);
    expect(r.shown).toMatch(/verified: 2 tensors bit-identical \(33\.6 MB\)/);
  });

  it('nothing extra when stderr is no terminal, or with --quiet', () => {
    const piped = cli(['convert', model, join(dir, 'out2.safetensors')]);
    expect(piped.code).toBe(0);
    expect(piped.stderr).toBe('');
    expect(piped.stdout).toMatch(/^wrote .*\nverified: 2 tensors bit-identical/);
    const quiet = underTerminal(['convert', model, join(dir, 'out3.safetensors'), '--quiet']);
    expect(quiet.code).toBe(0);
    expect(quiet.shown).not.toMatch(/writing|verifying|█|░/);
    expect(quiet.shown).toMatch(/verified: 2 tensors bit-identical/);
  });

  it('diff and validate --roundtrip show progress on a terminal too', () => {
    const d = underTerminal(['diff', model, join(dir, 'out1.safetensors')]);
    expect(d.code).toBe(0);
    expect(d.shown).toMatch(/comparing\s+[█░]+/);
    const v = underTerminal(['validate', model, '--roundtrip', 'safetensors']);
    expect(v.shown).toMatch(/comparing\s+[█░]+/);
    expect(cli(['diff', model, join(dir, 'out1.safetensors')]).stderr).toBe('');
  });
});
