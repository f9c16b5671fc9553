import { existsSync, readdirSync, readFileSync, writeFileSync, copyFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, FIXTURES, tempDir } from './cli-helpers.js';

/** One clear line on stderr, no stack trace. */
function expectOneLineError(r: { code: number; stderr: string }, code: number, pattern: RegExp): void {
  expect(r.code).toBe(code);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('modelbridge CLI', () => {
  it('train-or prints the loss and 4 predictions, and is deterministic', () => {
    const a = cli(['train-or', '--seed', '3', '--json']);
    const b = cli(['train-or', '--seed', '3', '--json']);
    expect(a.code).toBe(0);
    const parsed = JSON.parse(a.stdout) as { loss: number; predictions: number[] };
    expect(parsed.predictions).toHaveLength(4);
    expect(parsed.predictions[3]).toBeGreaterThan(0.8);
    expect(a.stdout).toBe(b.stdout);
  });

  it('demo writes every format and every row predicts what was trained', () => {
    const out = tempDir();
    const r = cli(['demo', '--out', out, '--json']);
    expect(r.code).toBe(0);
    const demo = JSON.parse(r.stdout) as { predictions: number[]; rows: { format: string; file: string; predictions: number[]; maxDiff: number }[] };
    expect(demo.rows.map((row) => row.format)).toContain('safetensors');
    for (const row of demo.rows) {
      expect(existsSync(row.file)).toBe(true);
      expect(row.maxDiff).toBeLessThan(1e-6);
      expect(row.predictions[3]).toBeGreaterThan(0.8);
    }
    const table = cli(['demo', '--out', out]);
    expect(table.stdout).toMatch(/format\s+file\s+bytes/);
  });

  it('run takes JSON and .npy inputs and prints JSON outputs', () => {
    const dir = tempDir();
    expect(cli(['train-or', '--out', join(dir, 'or.safetensors')]).code).toBe(0);
    const r = cli(['run', join(dir, 'or.safetensors'), '--input', 'x=[[0,0],[1,1]]', '--json']);
    expect(r.code).toBe(0);
    const y = (JSON.parse(r.stdout) as { outputs: Record<string, { dtype: string; shape: number[]; data: number[] }> }).outputs['y']!;
    expect(y.dtype).toBe('float32');
    expect(y.shape).toEqual([2, 1]);
    expect(y.data[0]).toBeLessThan(0.2);
    expect(y.data[1]).toBeGreaterThan(0.8);
    // The same batch from a .npy file (version 1.0, <f4, shape (2, 2)) gives the same answer.
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
    const padded = header + ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
    const npy = Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]), Buffer.from(new Uint16Array([padded.length]).buffer), Buffer.from(padded, 'latin1'), Buffer.from(new Float32Array([0, 0, 1, 1]).buffer)]);
    writeFileSync(join(dir, 'x.npy'), npy);
    const fromNpy = cli(['run', join(dir, 'or.safetensors'), '--input', `@${join(dir, 'x.npy')}`, '--json']);
    expect(fromNpy.stdout).toBe(r.stdout);
  });

  it('inspect reports format, signature, ops and parameters from the header', () => {
    const dir = tempDir();
    cli(['train-or', '--out', join(dir, 'or.safetensors')]);
    const r = cli(['inspect', join(dir, 'or.safetensors'), '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { format: string; ops: string[]; parameters: { elements: number }; signatures: { inputs: { name: string; shape: unknown[] }[] }[] };
    expect(report.format).toBe('safetensors');
    expect(report.ops).toEqual(['Gemm', 'Sigmoid']);
    expect(report.parameters.elements).toBe(9);
    expect(report.signatures[0]!.inputs[0]).toMatchObject({ name: 'x', shape: [null, 2] });
    expect(cli(['inspect', join(dir, 'or.safetensors')]).stdout).toMatch(/signature default/);
  });

  it('inspect MODEL --json without yargs (the start-up shortcut) answers as yargs does', () => {
    // --tensors (which --json implies) and another argument order take the yargs path.
    for (const model of ['samples/or-gate/or-gate.safetensors', 'samples/or-gate/or-gate.onnx', 'samples/or-gate/or-gate-savedmodel', 'missing.safetensors', 'package.json']) {
      const fast = cli(['inspect', model, '--json']);
      const parsed = cli(['inspect', '--json', model, '--tensors']);
      expect(fast).toEqual(parsed);
      expect(cli(['inspect', '--json', model])).toEqual(parsed);
    }
    // What yargs reads otherwise: a last positional `help` asks for the command's help.
    expect(cli(['inspect', 'help', '--json'])).toEqual(cli(['inspect', '--help']));
    expect(cli(['inspect', '0x10', '--json'])).toEqual(cli(['inspect', '--json', '0x10']));
  });

  it('converts a bare state dict with --module and refuses to overwrite without --force', () => {
    const dir = tempDir();
    cli(['train-or', '--out', join(dir, 'or.safetensors')]);
    // A bare copy: same tensors, no architecture, written by a plain safetensors writer.
    const bare = join(FIXTURES, 'burn', 'safetensors-tests', 'tests', 'multi_layer', 'multi_layer.safetensors');
    expect(cli(['inspect', bare]).stdout).toMatch(/bare state dict/);
    const spec = join(dir, 'spec.json');
    writeFileSync(spec, JSON.stringify({ type: 'Sequential', modules: [{ type: 'Linear', in_features: 2, out_features: 2 }, { type: 'Sigmoid' }, { type: 'Linear', in_features: 2, out_features: 1 }, { type: 'Sigmoid' }] }));
    const out = join(dir, 'again.safetensors');
    expect(cli(['convert', join(dir, 'or.safetensors'), out, '--module', spec]).code).toBe(0);
    expectOneLineError(cli(['convert', join(dir, 'or.safetensors'), out]), 1, /already exists.*--force/);
    expect(cli(['convert', join(dir, 'or.safetensors'), out, '--force']).code).toBe(0);
    const wrongSpec = join(dir, 'wrong.json');
    writeFileSync(wrongSpec, JSON.stringify({ type: 'Sequential', modules: [{ type: 'Linear', in_features: 3, out_features: 2 }] }));
    expectOneLineError(cli(['convert', join(dir, 'or.safetensors'), join(dir, 'x.safetensors'), '--module', wrongSpec]), 2, /tensor 0\.weight.*shape \[2, 3\]/);
    expect(existsSync(join(dir, 'x.safetensors'))).toBe(false);
  });

  it('bad input gives one clear line and a non-zero exit, and leaves no output and an unchanged input', () => {
    const dir = tempDir();
    cli(['train-or', '--out', join(dir, 'or.safetensors')]);
    const good = readFileSync(join(dir, 'or.safetensors'));
    const cases: [string, Uint8Array, RegExp][] = [
      ['truncated.safetensors', good.subarray(0, good.length - 3), /truncated\.safetensors: .*/],
      ['header-beyond.safetensors', Buffer.concat([Buffer.from([0xff, 0xff, 0, 0, 0, 0, 0, 0]), good.subarray(8)]), /header-beyond\.safetensors: /],
      ['not-a-model.safetensors', Buffer.from('hello, I am a text file\n'), /not-a-model\.safetensors: /],
      ['empty.safetensors', new Uint8Array(0), /empty\.safetensors: /],
    ];
    for (const [name, bytes, pattern] of cases) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      const before = statSync(path).mtimeMs;
      const out = join(dir, `out-${name}`);
      expectOneLineError(cli(['convert', path, out]), 2, pattern);
      expect(existsSync(out)).toBe(false);
      expect(Buffer.compare(readFileSync(path), Buffer.from(bytes))).toBe(0);
      expect(statSync(path).mtimeMs).toBe(before);
    }
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expectOneLineError(cli(['inspect', join(dir, 'missing.safetensors')]), 2, /missing\.safetensors: .*existing file/);
    expectOneLineError(cli(['convert', join(dir, 'or.safetensors'), join(dir, 'x.unknown')]), 1, /output format/);
    expectOneLineError(cli(['run', join(dir, 'or.safetensors'), '--input', 'x=[[1,2,3]]']), 1, /input x must have shape \[\?, 2\]/);
    expectOneLineError(cli(['frobnicate']), 1, /Unknown argument|unknown command/i);
    copyFileSync(join(dir, 'or.safetensors'), join(dir, 'same.safetensors'));
    expectOneLineError(cli(['convert', join(dir, 'same.safetensors'), join(dir, 'same.safetensors'), '--force']), 1, /is the input file/);
  });

  it('writes a sharded bundle and reads it back from the directory or the index, runnable', () => {
    const dir = tempDir();
    cli(['train-or', '--out', join(dir, 'or.safetensors')]);
    const shards = join(dir, 'shards');
    const r = cli(['convert', join(dir, 'or.safetensors'), shards, '--shard-size', '16']);
    expect(r.code).toBe(0);
    const files = readdirSync(shards).sort();
    expect(files).toContain('model.safetensors.index.json');
    expect(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).toBeGreaterThan(1);
    const direct = cli(['run', join(dir, 'or.safetensors'), '--input', '[[1,1]]', '--json']).stdout;
    expect(cli(['run', shards, '--input', '[[1,1]]', '--json']).stdout).toBe(direct);
    expect(cli(['run', join(shards, 'model.safetensors.index.json'), '--input', '[[1,1]]', '--json']).stdout).toBe(direct);
  });

  it('every command has --help with examples', () => {
    for (const command of ['convert', 'inspect', 'run', 'demo', 'train-or']) {
      const r = cli([command, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Examples:/);
    }
  });
});
