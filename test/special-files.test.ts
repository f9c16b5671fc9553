import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './cli-helpers.js';

/**
 * Only regular files inside the model: a FIFO as the model or as a file the model names would
 * block for ever, and a shard or data file that is a link to somewhere else would be read
 * silently. Each case must end within bounded time in one line and exit 2.
 */
const BIN = join(ROOT, 'bin', 'modelbridge.cjs');
const SAMPLES = join(ROOT, 'samples', 'or-gate');

function run(args: readonly string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, MODELBRIDGE_DEBUG: '', ...env } });
  expect(r.error, 'the command must end by itself, not hang').toBeUndefined();
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function fifo(path: string): void {
  const r = spawnSync('mkfifo', [path]);
  expect(r.status).toBe(0);
}

function oneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trimEnd().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

/** A sharded safetensors bundle of the OR gate (index + shards) in `dir`. */
function sharded(dir: string): string {
  const r = run(['convert', join(SAMPLES, 'or-gate.safetensors'), dir, '--shard-size', '32', '--force']);
  expect(r.code, r.stderr).toBe(0);
  return dir;
}

describe('only regular files inside the model are read', () => {
  it('refuses a FIFO given as the model, detected or with --from, without blocking', () => {
    const dir = tempDir();
    const pipe = join(dir, 'model.safetensors');
    fifo(pipe);
    const detected = run(['inspect', pipe]);
    expect(detected.code).toBe(2);
    oneLine(detected.stderr, /model\.safetensors: path: a model file or directory, not a FIFO$/);
    const forced = run(['run', pipe, '--from', 'safetensors', '--input', '[[1,1]]']);
    expect(forced.code).toBe(2);
    oneLine(forced.stderr, /not a FIFO$/);
    const device = run(['inspect', '/dev/zero', '--from', 'pytorch']);
    expect(device.code).toBe(2);
    oneLine(device.stderr, /not a character device$/);
  });

  it('refuses a safetensors shard that is a FIFO or a link out of the model directory; the opt-out reads it', () => {
    const base = tempDir();
    const dir = sharded(join(base, 'shards'));
    const shards = run(['inspect', dir, '--json']);
    expect(shards.code, shards.stderr).toBe(0);
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    const first = Object.values(index.weight_map).sort()[0]!;

    // The shard moved out, a link left in its place.
    const outside = join(base, 'elsewhere.safetensors');
    copyFileSync(join(dir, first), outside);
    rmSync(join(dir, first));
    symlinkSync(outside, join(dir, first));
    const linked = run(['inspect', dir]);
    expect(linked.code).toBe(2);
    oneLine(linked.stderr, /a file inside the model's directory .* leads to .*elsewhere\.safetensors/);
    expect(run(['inspect', dir], { MODELBRIDGE_ALLOW_OUTSIDE: '1' }).code).toBe(0);

    rmSync(join(dir, first));
    fifo(join(dir, first));
    const piped = run(['inspect', dir]);
    expect(piped.code).toBe(2);
    oneLine(piped.stderr, /a regular file at .*, not a FIFO$/);
  });

  it('refuses a TF.js shard that links out of the model directory', () => {
    const base = tempDir();
    const dir = join(base, 'web');
    mkdirSync(dir);
    copyFileSync(join(SAMPLES, 'or-gate.json'), join(dir, 'or-gate.json'));
    const outside = join(base, 'shard.bin');
    copyFileSync(join(SAMPLES, 'or-gate.group1-shard1of1.bin'), outside);
    symlinkSync(outside, join(dir, 'or-gate.group1-shard1of1.bin'));
    const linked = run(['inspect', join(dir, 'or-gate.json')]);
    expect(linked.code).toBe(2);
    oneLine(linked.stderr, /shard .*leads outside it/);
    expect(run(['inspect', join(dir, 'or-gate.json')], { MODELBRIDGE_ALLOW_OUTSIDE: '1' }).code).toBe(0);
  });

  it('refuses a SavedModel whose checkpoint data file is a FIFO', () => {
    const dir = join(tempDir(), 'sm');
    cpSync(join(SAMPLES, 'or-gate-savedmodel'), dir, { recursive: true });
    const data = join(dir, 'variables', 'variables.data-00000-of-00001');
    rmSync(data);
    fifo(data);
    const r = run(['run', dir, '--input', '[[1,1]]']);
    expect(r.code).toBe(2);
    oneLine(r.stderr, /variables\.data-00000-of-00001: file: a regular file$/);
  });

  it('refuses ONNX external data that is a FIFO', () => {
    const dir = tempDir();
    const model = join(dir, 'm.onnx');
    const r0 = run(['convert', join(SAMPLES, 'or-gate.onnx'), model, '--external-data', '0', '--force']);
    expect(r0.code, r0.stderr).toBe(0);
    const data = readdirSync(dir).find((f) => f !== 'm.onnx')!;
    expect(data).toBeDefined();
    rmSync(join(dir, data));
    fifo(join(dir, data));
    const r = run(['inspect', model]);
    expect(r.code).toBe(2);
    oneLine(r.stderr, /to be a regular file$/);
  });
});
