import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { readNpz } from '../src/api/npz.js';
import { Tensor } from '../src/core/tensor.js';
import { readNpy, writeNpy } from '../src/formats/npy/npy.js';
import { ROOT, tempDir } from './cli-helpers.js';

/**
 * The command line's Unix conventions, run through the built CLI: `-` for standard input and
 * output, special files never replaced, --version from the package, format names in any case and
 * by their usual aliases, options refused where they mean nothing, `run` reading and writing
 * NumPy files, and `inspect` listing tensors.
 */
const BIN = join(ROOT, 'bin', 'modelbridge.cjs');
const SAMPLES = join(ROOT, 'samples', 'or-gate');
const ONNX = join(SAMPLES, 'or-gate.onnx');
const ST = join(SAMPLES, 'or-gate.safetensors');

interface Run {
  readonly code: number;
  readonly stdout: Buffer;
  readonly out: string;
  readonly err: string;
}

function mb(args: readonly string[], options: { input?: Uint8Array; cwd?: string } = {}): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ROOT, input: options.input ?? new Uint8Array(0), env: { ...process.env, MODELBRIDGE_DEBUG: '' }, maxBuffer: 1 << 26 });
  return { code: r.status ?? -1, stdout: r.stdout, out: r.stdout.toString('utf8'), err: r.stderr.toString('utf8') };
}

/** A usage error: exit 1, one line on stderr matching `pattern`, nothing on stdout, no stack. */
function expectUsage(r: Run, pattern: RegExp): void {
  expect(r.err.trim().split('\n'), r.err).toHaveLength(1);
  expect(r.err).toMatch(pattern);
  expect(r.err).not.toMatch(/\n\s+at /);
  expect(r.code, r.err).toBe(1);
  expect(r.out).toBe('');
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

describe('--version', () => {
  it('prints the package version, whatever project it runs in', () => {
    const elsewhere = tempDir();
    writeFileSync(join(elsewhere, 'package.json'), JSON.stringify({ name: 'someone-else', version: '9.9.9' }));
    expect(mb(['--version']).out.trim()).toBe(pkg.version);
    expect(mb(['--version'], { cwd: elsewhere }).out.trim()).toBe(pkg.version);
  });
});

describe('- for standard input and output', () => {
  it('inspect - reads the model from standard input', () => {
    const piped = mb(['inspect', '-', '--json'], { input: readFileSync(ONNX) });
    expect(piped.code, piped.err).toBe(0);
    const direct = mb(['inspect', ONNX, '--json']);
    const a = JSON.parse(piped.out) as Record<string, unknown>;
    const b = JSON.parse(direct.out) as Record<string, unknown>;
    expect(a['path']).toBe('-');
    expect({ ...a, path: '' }).toEqual({ ...b, path: '' });
  });

  it('convert IN - --to FORMAT writes the model to standard output and the summary to stderr', () => {
    const dir = tempDir();
    const piped = mb(['convert', ONNX, '-', '--to', 'safetensors']);
    expect(piped.code, piped.err).toBe(0);
    expect(piped.err).toMatch(/^wrote - \(standard output\).*\nverified: /);
    mb(['convert', ONNX, join(dir, 'file.safetensors')]);
    expect(Buffer.compare(piped.stdout, readFileSync(join(dir, 'file.safetensors')))).toBe(0);
  });

  it('convert - - pipes a model through, and run - runs one from standard input', () => {
    const pt = mb(['convert', '-', '-', '--to', 'pt'], { input: readFileSync(ST) });
    expect(pt.code, pt.err).toBe(0);
    expect(pt.stdout.subarray(0, 2).toString('latin1')).toBe('PK'); // a torch.save zip
    const run = mb(['run', '-', '--input', '[[1,1]]', '--json'], { input: pt.stdout });
    expect(run.code, run.err).toBe(0);
    const direct = mb(['run', ST, '--input', '[[1,1]]', '--json']);
    expect(run.out).toBe(direct.out);
  });

  it('refuses what cannot travel through a pipe, in one line', () => {
    expectUsage(mb(['convert', ONNX, '-']), /give its format with --to/);
    expectUsage(mb(['convert', ONNX, '-', '--to', 'tfjs']), /tfjs model is a directory/);
    expectUsage(mb(['convert', ONNX, '-', '--to', 'savedmodel']), /savedmodel model is a directory/);
    expectUsage(mb(['convert', ST, '-', '--to', 'safetensors', '--shard-size', '100']), /--shard-size writes several files/);
    expectUsage(mb(['convert', ONNX, '-', '--to', 'onnx', '--external-data', 'true']), /--external-data writes a second file/);
    expectUsage(mb(['inspect', '-']), /standard input was empty/);
  });
});

describe('special files as outputs', () => {
  it('a FIFO behind a symbolic link is refused and stays what it was', () => {
    const dir = tempDir();
    const fifo = join(dir, 'fifo');
    if (spawnSync('mkfifo', [fifo]).status !== 0) return; // no mkfifo here: nothing to check
    symlinkSync(fifo, join(dir, 'link.safetensors'));
    for (const target of [fifo, join(dir, 'link.safetensors')]) {
      const r = mb(['convert', ONNX, target, '--to', 'safetensors', '--force']);
      expectUsage(r, /a FIFO, not a regular file .*use - for standard output/);
    }
    expect(statSync(fifo).isFIFO()).toBe(true);
    expect(lstatSync(join(dir, 'link.safetensors')).isSymbolicLink()).toBe(true);
  });

  it('/dev/stdout is never replaced by a regular file', () => {
    if (!existsSync('/dev/stdout')) return;
    const before = lstatSync('/dev/stdout');
    const r = mb(['convert', ONNX, '/dev/stdout', '--to', 'safetensors', '--force']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/not a regular file .*use - for standard output/);
    const after = lstatSync('/dev/stdout');
    expect(after.isSymbolicLink()).toBe(before.isSymbolicLink());
    expect(after.isFile()).toBe(false);
  });
});

describe('format names', () => {
  it.each([
    ['ONNX', 'onnx'],
    ['Safetensors', 'safetensors'],
    ['st', 'safetensors'],
    ['PT', 'pytorch'],
    ['torch', 'pytorch'],
    ['pth', 'pytorch'],
    ['TF', 'savedmodel'],
    ['saved_model', 'savedmodel'],
    ['pb', 'graphdef'],
    ['TensorFlowJS', 'tfjs'],
    ['tf.js', 'tfjs'],
  ])('%s means %s', (alias, format) => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const r = mb(['convert', ST, out, '--to', alias]);
    expect(r.code, r.err).toBe(0);
    expect(mb(['inspect', out, '--json', '--from', alias.toLowerCase() === 'pb' ? 'PB' : alias]).out).toContain(`"format": "${format}"`);
  });

  it('a near miss gets a "did you mean", anything else the list', () => {
    expectUsage(mb(['convert', ST, join(tempDir(), 'x'), '--to', 'onxx']), /unknown format "onxx" \(did you mean onnx\? supported: safetensors, .*pytorch/);
    expectUsage(mb(['inspect', ONNX, '--from', 'saftensors']), /did you mean safetensors\?/);
    expectUsage(mb(['inspect', ONNX, '--from', 'coreml']), /unknown format "coreml" \(supported: /);
  });
});

describe('options that do not apply to the chosen format', () => {
  it('are usage errors naming the formats they apply to', () => {
    const dir = tempDir();
    expectUsage(mb(['convert', ONNX, join(dir, 'a.pt'), '--quantize', 'uint8']), /--quantize applies to tfjs and tflite output only, not to pytorch/);
    expectUsage(mb(['convert', ONNX, join(dir, 'a.safetensors'), '--opset', '13']), /--opset applies to onnx output only, not to safetensors/);
    expectUsage(mb(['convert', ST, join(dir, 'a.onnx'), '--shard-size', '1000']), /--shard-size applies to safetensors and tfjs output only, not to onnx/);
    expectUsage(mb(['convert', ST, join(dir, 'a.onnx'), '--external-data', 'true', '--to', 'graphdef']), /--external-data applies to onnx output only, not to graphdef/);
    expectUsage(mb(['inspect', ONNX, '--key', 'model_state_dict']), /--key applies to pytorch input only, not to onnx/);
    expect(existsSync(join(dir, 'a.pt')) || existsSync(join(dir, 'a.safetensors')) || existsSync(join(dir, 'a.onnx'))).toBe(false);
    // Where they apply, they work.
    expect(mb(['convert', ST, join(dir, 'b.onnx'), '--opset', '13']).code).toBe(0);
    expect(mb(['inspect', join(SAMPLES, 'or-gate.pt'), '--key', 'state_dict']).err).not.toMatch(/applies to/);
  });
});

describe('run --input and --output', () => {
  const x = Tensor.from('float32', [2, 2], [1, 1, 0, 1]);
  const expected = () => JSON.parse(mb(['run', ST, '--input', '[[1,1],[0,1]]', '--json']).out) as { outputs: { y: { data: number[] } } };

  it('takes .npy, .npz (by name, or a lone arr_0) and JSON files', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'x.npy'), writeNpy(x));
    writeFileSync(join(dir, 'named.npz'), zipSync({ 'x.npy': writeNpy(x) }));
    writeFileSync(join(dir, 'lone.npz'), zipSync({ 'arr_0.npy': writeNpy(x) }));
    writeFileSync(join(dir, 'x.json'), JSON.stringify({ x: [[1, 1], [0, 1]] }));
    const want = expected();
    for (const arg of ['@x.npy', 'x=@x.npy', '@named.npz', 'x=@named.npz', '@lone.npz', '@x.json']) {
      const r = mb(['run', ST, '--input', arg, '--json'], { cwd: dir });
      expect(r.code, `${arg}: ${r.err}`).toBe(0);
      expect(JSON.parse(r.out), arg).toEqual(want);
    }
  });

  it('an unknown input name is an error naming the model inputs', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'z.npz'), zipSync({ 'z.npy': writeNpy(x), 'x.npy': writeNpy(x) }));
    writeFileSync(join(dir, 'ab.npz'), zipSync({ 'a.npy': writeNpy(x), 'b.npy': writeNpy(x) }));
    expectUsage(mb(['run', ST, '--input', 'z=[[1,1]]']), /the model has no input "z" \(inputs: x\)/);
    expectUsage(mb(['run', ST, '--input', '@z.npz'], { cwd: dir }), /the model has no input "z" \(inputs: x\)/);
    expectUsage(mb(['run', ST, '--input', 'x=@ab.npz'], { cwd: dir }), /ab\.npz holds a, b, no x/);
    // NAME=@file picks the array of that name from a file holding several.
    expect(mb(['run', ST, '--input', 'x=@z.npz'], { cwd: dir }).code).toBe(0);
  });

  it('--output writes the outputs to an .npz by name or an .npy, which read back equal', () => {
    const dir = tempDir();
    const want = expected().outputs.y.data;
    const npz = mb(['run', ST, '--input', '[[1,1],[0,1]]', '--output', 'out.npz'], { cwd: dir });
    expect(npz.code, npz.err).toBe(0);
    const set = readNpz(readFileSync(join(dir, 'out.npz')), 'out.npz');
    expect([...set.keys()]).toEqual(['y']);
    expect(set.get('y')!.toNumbers()).toEqual(want);
    const npy = mb(['run', ST, '--input', '[[1,1],[0,1]]', '--output', 'out.npy'], { cwd: dir });
    expect(npy.code, npy.err).toBe(0);
    const y = readNpy(readFileSync(join(dir, 'out.npy')), 'out.npy');
    expect([...y.shape]).toEqual([2, 1]);
    expect(y.toNumbers()).toEqual(want);
    // An existing output is kept unless --force; other extensions are refused.
    expectUsage(mb(['run', ST, '--input', '[[1,1]]', '--output', 'out.npy'], { cwd: dir }), /already exists/);
    expect(mb(['run', ST, '--input', '[[1,1]]', '--output', 'out.npy', '--force'], { cwd: dir }).code).toBe(0);
    expect(readNpy(readFileSync(join(dir, 'out.npy')), 'out.npy').shape).toEqual([1, 1]);
    expectUsage(mb(['run', ST, '--input', '[[1,1]]', '--output', 'out.csv'], { cwd: dir }), /give a \.npy or an \.npz/);
  });
});

describe('inspect --tensors and the JSON report', () => {
  it('lists each tensor with dtype, shape and bytes', () => {
    const r = mb(['inspect', ST, '--tensors']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/tensors\n\s+name\s+dtype\s+shape\s+bytes\n/);
    expect(r.out).toMatch(/0\.weight\s+float32\s+\[2, 2\]\s+16\n/);
    expect(r.out).toMatch(/2\.bias\s+float32\s+\[1\]\s+4\n/);
    expect(mb(['inspect', ST]).out).not.toMatch(/0\.weight\s+float32/);
  });

  it('--json has them, summing to the parameters, and docs/inspect-report.md documents every field', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'm'));
    copyFileSync(join(SAMPLES, 'or-gate.pt'), join(dir, 'm', 'or.pt'));
    const doc = readFileSync(join(ROOT, 'docs', 'inspect-report.md'), 'utf8');
    for (const model of [ST, join(dir, 'm', 'or.pt'), join(SAMPLES, 'or-gate-savedmodel'), join(SAMPLES, 'or-gate.json')]) {
      const report = JSON.parse(mb(['inspect', model, '--json']).out) as Record<string, unknown> & {
        tensors: { name: string; dtype: string; shape: number[]; bytes: number }[];
        parameters: { tensors: number; bytes: number };
      };
      expect(report.tensors.length, model).toBe(report.parameters.tensors);
      expect(report.tensors.reduce((n, t) => n + t.bytes, 0), model).toBe(report.parameters.bytes);
      for (const t of report.tensors) expect(Object.keys(t)).toEqual(['name', 'dtype', 'shape', 'bytes']);
      for (const key of Object.keys(report)) expect(doc, `docs/inspect-report.md documents "${key}"`).toContain(`"${key}"`);
    }
  });
});
