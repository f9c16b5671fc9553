import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sweepLeftovers, tempPath } from '../src/core/atomic.js';
import { ROOT, tempDir } from './cli-helpers.js';

/**
 * Crash consistency: conversions into every output format are killed with SIGKILL at spread-out
 * moments. Whatever the moment, the target is complete (it validates) or absent, or still the old
 * version when it replaced one; and the next run into the same directory leaves no temporary.
 */
const BIN = join(ROOT, 'bin', 'modelbridge.cjs');
const WIDTH = 1024;
const LAYERS = 6; // 6 x 4 MiB of weights: long enough to be killed in the middle of writing

function cliSync(args: readonly string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, MODELBRIDGE_DEBUG: '' } });
  return { code: r.status ?? -1, stderr: r.stderr };
}

/** An MLP bundle of LAYERS Linear(WIDTH, WIDTH) + ReLU with its module spec. */
function mlp(dir: string): string {
  const names: string[] = [];
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (let l = 0; l < LAYERS; l++) {
    for (const [suffix, shape] of [['weight', [WIDTH, WIDTH]], ['bias', [WIDTH]]] as const) {
      const bytes = shape.reduce((a, b) => a * b, 1) * 4;
      header[`${2 * l}.${suffix}`] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
      names.push(`${2 * l}.${suffix}`);
      offset += bytes;
    }
  }
  const json = Buffer.from(JSON.stringify(header));
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(json.length));
  const data = Buffer.alloc(offset);
  for (let i = 0; i < offset / 4; i++) data.writeFloatLE(((i * 2654435761) % 1000) / 1e5 - 0.005, i * 4);
  const weights = join(dir, 'weights.safetensors');
  writeFileSync(weights, Buffer.concat([size, json, data]));
  const modules = Array.from({ length: LAYERS }, () => [{ type: 'Linear', in_features: WIDTH, out_features: WIDTH }, { type: 'ReLU' }]).flat();
  const spec = join(dir, 'spec.json');
  writeFileSync(spec, JSON.stringify({ type: 'Sequential', modules }));
  const model = join(dir, 'mlp.safetensors');
  expect(cliSync(['convert', weights, model, '--module', spec]).code).toBe(0);
  return model;
}

/** Runs convert and kills it with SIGKILL after `ms`; resolves when it is gone. */
function killedAfter(args: readonly string[], ms: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

const leftovers = (dir: string) => readdirSync(dir, { recursive: true }).map(String).filter((e) => e.includes('modelbridge-tmp'));

const TARGETS: [string, string, string[]][] = [
  ['savedmodel', 'out-savedmodel', []],
  ['tfjs', 'web', ['--to', 'tfjs']],
  ['onnx (external data)', 'out.onnx', ['--external-data', '0']],
  ['safetensors (sharded)', 'shards', ['--shard-size', '4000000', '--to', 'safetensors']],
  ['pytorch', 'out.pt', []],
];

describe('crash safety: a killed conversion leaves the target complete, absent or old, and no temporary after the next run', () => {
  const base = tempDir();
  const model = mlp(base);

  for (const [name, target, extra] of TARGETS) {
    it(`${name}`, async () => {
      const dir = join(base, name.replace(/\W+/g, '-'));
      const out = join(dir, target);
      // Fresh target: absent or complete.
      for (const ms of [150, 500, 900]) {
        await killedAfter(['convert', model, out, '--force', '--no-verify', ...extra], ms);
        if (existsSync(out)) expect(cliSync(['validate', out]).code, `killed after ${ms} ms`).toBe(0);
      }
      // Replacing a complete one: the old or the new, never a mix.
      expect(cliSync(['convert', model, out, '--force', '--no-verify', ...extra]).code).toBe(0);
      for (const ms of [150, 500, 900]) {
        await killedAfter(['convert', model, out, '--force', '--no-verify', ...extra], ms);
        expect(existsSync(out), `killed after ${ms} ms while replacing`).toBe(true);
        expect(cliSync(['validate', out]).code, `killed after ${ms} ms while replacing`).toBe(0);
      }
      // The next run sweeps what the killed ones left.
      expect(cliSync(['convert', model, out, '--force', '--no-verify', ...extra]).code).toBe(0);
      expect(leftovers(dir), JSON.stringify(leftovers(dir))).toEqual([]);
      expect(cliSync(['validate', out]).code).toBe(0);
    });
  }

  // Interrupted from a terminal or by a supervisor: the temporaries go at once, not on the next run.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
    it(`${signal} in the middle of writing removes the temporaries without another run`, async () => {
      const dir = join(base, `signal-${signal}`);
      const out = join(dir, 'out-savedmodel');
      expect(cliSync(['convert', model, join(dir, 'first.onnx'), '--no-verify']).code).toBe(0);
      const child = spawn(process.execPath, [BIN, 'convert', model, out, '--no-verify'], { stdio: 'ignore' });
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      // Wait until the conversion has a temporary on disk, then interrupt it.
      const deadline = Date.now() + 30_000;
      while (leftovers(dir).length === 0 && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const sawTemporary = leftovers(dir).length > 0;
      child.kill(signal);
      await exited;
      for (let i = 0; i < 100 && leftovers(dir).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(sawTemporary, 'the conversion ended before it could be interrupted').toBe(true);
      expect(leftovers(dir), JSON.stringify(leftovers(dir))).toEqual([]);
      expect(existsSync(out)).toBe(false);
    });
  }

  it('--force onto a symbolic link writes the file it points to and keeps its mode; special files are refused', () => {
    const dir = tempDir();
    const real = join(dir, 'real.onnx');
    copyFileSync(join(ROOT, 'samples', 'or-gate', 'or-gate.onnx'), real);
    chmodSync(real, 0o640);
    const link = join(dir, 'link.onnx');
    symlinkSync(real, link);
    const before = readFileSync(real);
    expect(cliSync(['convert', join(ROOT, 'samples', 'or-gate', 'or-gate.pt'), link, '--force', '--opset', '13']).code).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(real).equals(before)).toBe(false);
    expect(statSync(real).mode & 0o777).toBe(0o640);
    expect(cliSync(['validate', link]).code).toBe(0);

    const dev = cliSync(['convert', join(ROOT, 'samples', 'or-gate', 'or-gate.onnx'), '/dev/null', '--to', 'onnx', '--force']);
    expect(dev.code).toBe(1);
    expect(dev.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(dev.stderr).toMatch(/\/dev\/null is a character device, not a regular file or directory/);
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
  });

  it('sweeps only temporaries of processes that are gone', () => {
    const dir = tempDir();
    const mine = tempPath(join(dir, 'model.onnx'));
    writeFileSync(mine, 'in progress');
    const dead = join(dir, '.model.onnx.modelbridge-tmp-999999999-abc');
    writeFileSync(dead, 'killed');
    writeFileSync(join(dir, '.user-file.tmp'), 'not ours');
    expect(sweepLeftovers(dir)).toEqual(['.model.onnx.modelbridge-tmp-999999999-abc']);
    expect(readdirSync(dir).sort()).toEqual([mine.split('/').pop(), '.user-file.tmp'].sort());
  });
});
