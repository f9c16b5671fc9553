import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTensorFile } from '../src/api/checks/inputs.js';
import { saveModel } from '../src/api/load.js';
import { crc32, readNpz } from '../src/api/npz.js';
import { validateModel } from '../src/api/validate.js';
import { FormatError } from '../src/core/errors.js';
import { attr, makeNode, type Graph } from '../src/core/graph.js';
import { defaultSignature, type Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { writeNpy } from '../src/formats/npy/npy.js';
import { trainOrGate } from '../src/train/or-gate.js';
import { cli, FIXTURES, ROOT, tempDir } from './cli-helpers.js';
import { peerMakeZoo, peerPython, readZooCase } from './peers.js';

const python = peerPython();

/** A zip archive with each member stored or deflated (a minimal writer for the tests). */
function makeZip(members: ReadonlyArray<{ name: string; data: Uint8Array; deflate?: boolean }>): Uint8Array {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const name = Buffer.from(m.name, 'utf8');
    const body = m.deflate ? deflateRawSync(m.data) : Buffer.from(m.data);
    const crc = crc32(m.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(m.deflate ? 8 : 0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(m.data.byteLength, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, body);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(m.deflate ? 8 : 0, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(m.data.byteLength, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

describe('npz reading', () => {
  const x = Tensor.from('float32', [2, 2], [0, 1, 1, 1]);
  const ids = Tensor.from('int64', [3], [1, 2, 3]);

  it('reads stored and deflated members by name, checking CRC-32', () => {
    const zip = makeZip([
      { name: 'x.npy', data: writeNpy(x) },
      { name: 'ids.npy', data: writeNpy(ids), deflate: true },
    ]);
    const arrays = readNpz(zip, 'in.npz');
    expect([...arrays.keys()]).toEqual(['x', 'ids']);
    expect(Array.from(arrays.get('x')!.toFloat32())).toEqual([0, 1, 1, 1]);
    expect(arrays.get('ids')!.toNumbers()).toEqual([1, 2, 3]);
    expect(arrays.get('ids')!.dtype).toBe('int64');
  });

  it('rejects a corrupt member, a truncated archive and a non-zip with a FormatError', () => {
    const zip = makeZip([{ name: 'x.npy', data: writeNpy(x) }]);
    const corrupt = Uint8Array.from(zip);
    corrupt[30 + 5 + 130] = corrupt[30 + 5 + 130]! ^ 0xff; // a data byte of the stored member
    expect(() => readNpz(corrupt, 'bad.npz')).toThrow(/CRC-32/);
    expect(() => readNpz(zip.subarray(0, zip.length - 30), 'cut.npz')).toThrow(FormatError);
    expect(() => readNpz(new TextEncoder().encode('not a zip at all, just some text'), 'text.npz')).toThrow(/end-of-central-directory/);
  });

  it('reads JSON input files in every documented form', () => {
    const dir = tempDir();
    const write = (name: string, value: unknown) => {
      writeFileSync(join(dir, name), JSON.stringify(value));
      return readTensorFile(join(dir, name));
    };
    expect(write('named.json', { x: [[1, 2]] }).get('x')).toEqual({ json: [[1, 2]] });
    const explicit = write('explicit.json', { outputs: { y: { dtype: 'float32', shape: [1, 2], data: [[3, 4]] } } }).get('y') as Tensor;
    expect(explicit.shape).toEqual([1, 2]);
    expect(Array.from(explicit.toFloat32())).toEqual([3, 4]);
    expect([...write('bare.json', [[0, 1]]).keys()]).toEqual(['']);
    writeFileSync(join(dir, 'broken.json'), '{"x": [1, 2');
    expect(() => readTensorFile(join(dir, 'broken.json'))).toThrow(FormatError);
  });

  it.skipIf(!python)("reads numpy's own savez and savez_compressed files (ZIP64 local headers)", () => {
    const dir = tempDir();
    const script = `import numpy as np
np.savez(${JSON.stringify(join(dir, 'plain.npz'))}, x=np.array([[0, 1], [1, 1]], dtype=np.float32), n=np.arange(5, dtype=np.int64))
np.savez_compressed(${JSON.stringify(join(dir, 'packed.npz'))}, x=np.linspace(0, 1, 1000, dtype=np.float64).reshape(10, 100))`;
    const r = spawnSync(python!, ['-c', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const plain = readNpz(readFileSync(join(dir, 'plain.npz')), 'plain.npz');
    expect(Array.from(plain.get('x')!.toFloat32())).toEqual([0, 1, 1, 1]);
    expect(plain.get('n')!.toNumbers()).toEqual([0, 1, 2, 3, 4]);
    const packed = readNpz(readFileSync(join(dir, 'packed.npz')), 'packed.npz').get('x')!;
    expect(packed.shape).toEqual([10, 100]);
    expect(packed.toNumbers()[999]).toBe(1);
  });
});


interface Check {
  name: string;
  status: string;
  message: string;
  [k: string]: unknown;
}
interface Report {
  status: string;
  strict: boolean;
  models: { path: string; format: string | null; status: string; checks: Check[] }[];
}

function validate(args: readonly string[]): { code: number; report: Report; stderr: string } {
  const r = cli(['validate', ...args, '--json']);
  let report: Report;
  try {
    report = JSON.parse(r.stdout) as Report;
  } catch {
    throw new Error(`validate ${args.join(' ')} printed no JSON (exit ${r.code}): ${r.stdout}${r.stderr}`);
  }
  return { code: r.code, report, stderr: r.stderr };
}

const check = (report: Report, name: string, model = 0): Check => {
  const c = report.models[model]!.checks.find((x) => x.name === name);
  if (!c) throw new Error(`no check ${name} in ${JSON.stringify(report.models[model])}`);
  return c;
};

const statuses = (report: Report, model = 0) => Object.fromEntries(report.models[model]!.checks.map((c) => [c.name, c.status]));

/** The data section's first byte and the tensor stored there, from a safetensors file's header. */
function firstTensor(bytes: Uint8Array): { dataStart: number; name: string } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { data_offsets: [number, number] }>;
  const name = Object.keys(header).find((k) => k !== '__metadata__' && header[k]!.data_offsets[0] === 0)!;
  return { dataStart: 8 + n, name };
}

const MULTI_LAYER = join(FIXTURES, 'burn', 'safetensors-tests', 'tests', 'multi_layer', 'multi_layer.safetensors');
const MNIST = join(FIXTURES, 'burn', 'examples', 'import-model-weights', 'weights', 'mnist.safetensors');
const SAMPLE = join(ROOT, 'samples', 'or-gate', 'or-gate.safetensors');

/** A runnable model whose graph is given directly (stored in the general Graph form). */
function graphModel(graph: Graph): Model {
  return { format: 'safetensors', weights: graph.initializers, graph, signatures: [defaultSignature(graph)], metadata: {} };
}

const f32 = (shape: number[], fill = 0.5) => Tensor.from('float32', shape, new Array<number>(shape.reduce((p, d) => p * d, 1)).fill(fill));

describe('modelbridge validate', () => {
  let dir = '';
  let or = '';
  let orBytes: Buffer;
  beforeAll(() => {
    dir = tempDir('modelbridge-validate-');
    or = join(dir, 'or.safetensors');
    saveModel(trainOrGate({ seed: 0 }).model, or);
    orBytes = readFileSync(or);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('passes a good bundle: every check in order, the documented JSON report, exit 0', () => {
    const { code, report } = validate([SAMPLE]);
    expect(code).toBe(0);
    expect(report.status).toBe('pass');
    expect(report.strict).toBe(false);
    const m = report.models[0]!;
    expect(m).toMatchObject({ path: SAMPLE, format: 'safetensors', status: 'pass' });
    expect(m.checks.map((c) => c.name)).toEqual(['parse', 'checksums', 'architecture', 'ops', 'shapes', 'signatures', 'finite', 'runs']);
    expect(statuses(report)).toEqual({ parse: 'pass', checksums: 'skip', architecture: 'pass', ops: 'pass', shapes: 'pass', signatures: 'pass', finite: 'pass', runs: 'pass' });
    for (const c of m.checks) expect(typeof c.message).toBe('string');
    expect(check(report, 'ops')['ops']).toEqual(['Gemm', 'Sigmoid']);
    expect(check(report, 'shapes')['outputs']).toEqual([{ name: 'y', dtype: 'float32', shape: [null, 1] }]);
    expect(check(report, 'runs')['outputs']).toEqual([{ name: 'y', dtype: 'float32', shape: [1, 1] }]);
    expect(check(report, 'runs').message).toMatch(/uniform \[0, 1\) x \[1, 2\] float32/);
  });

  it('prints a compact table per model and a summary line', () => {
    const r = cli(['validate', SAMPLE, MNIST]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^PASS {2}.*or-gate\.safetensors \(safetensors\)/m);
    expect(r.stdout).toMatch(/^ {2}check\s+status\s+message/m);
    expect(r.stdout).toMatch(/^ {2}runs\s+pass\s+ran on/m);
    expect(r.stdout).toMatch(/^WARN {2}.*mnist\.safetensors/m);
    expect(r.stdout).toMatch(/2 models: 1 pass, 1 warn/);
  });

  it('warns on bare state dicts (exit 0) and fails them under --strict (exit 1)', () => {
    const { code, report } = validate([MULTI_LAYER, MNIST]);
    expect(code).toBe(0);
    expect(report.status).toBe('warn');
    for (const i of [0, 1]) {
      expect(statuses(report, i)).toMatchObject({ parse: 'pass', architecture: 'warn', ops: 'skip', shapes: 'skip', signatures: 'skip', finite: 'pass', runs: 'skip' });
    }
    const strict = validate([MULTI_LAYER, '--strict']);
    expect(strict.code).toBe(1);
    expect(check(strict.report, 'architecture')).toMatchObject({ status: 'fail', strict: true });
  });

  it('truncated file: parse fails with the reader message, everything else is skipped, exit 2', () => {
    const path = join(dir, 'truncated.safetensors');
    writeFileSync(path, orBytes.subarray(0, orBytes.length - 3));
    const { code, report } = validate([path]);
    expect(code).toBe(2);
    expect(report.models[0]!.status).toBe('unreadable');
    expect(check(report, 'parse')).toMatchObject({ status: 'fail', file: path });
    expect(check(report, 'parse').message).toMatch(/truncated\.safetensors: .*MetadataIncompleteBuffer/);
    expect(check(report, 'runs').status).toBe('skip');
  });

  it('a header pointing outside the file is unreadable (exit 2), both its length and its data offsets', () => {
    const longHeader = join(dir, 'header-length.safetensors');
    writeFileSync(longHeader, Buffer.concat([Buffer.from([0xff, 0xff, 0, 0, 0, 0, 0, 0]), orBytes.subarray(8)]));
    const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [64], data_offsets: [0, 256] } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const offsets = join(dir, 'offsets.safetensors');
    writeFileSync(offsets, Buffer.concat([len, header, Buffer.alloc(16)]));
    const { code, report } = validate([longHeader, offsets]);
    expect(code).toBe(2);
    expect(check(report, 'parse', 0).message).toMatch(/InvalidHeaderLength/);
    expect(check(report, 'parse', 1).message).toMatch(/MetadataIncompleteBuffer|InvalidOffset/);
  });

  it('a flipped byte in tensor data still parses (safetensors has no checksum): diff names the tensor', () => {
    const path = join(dir, 'flipped.safetensors');
    const bytes = Buffer.from(orBytes);
    const { dataStart, name } = firstTensor(bytes);
    bytes[dataStart + 3] = bytes[dataStart + 3]! ^ 0x01; // an exponent bit of the first float: x4 or /4
    writeFileSync(path, bytes);
    const { code, report } = validate([path]);
    expect(code).toBe(0);
    expect(check(report, 'parse').status).toBe('pass');
    expect(check(report, 'checksums').status).toBe('skip');
    const diff = cli(['diff', or, path]);
    expect(diff.code).toBe(1);
    expect(diff.stdout).toMatch(new RegExp(`^ {2}${name.replace('.', '\\.')}\\s+different`, 'm'));
  });

  it('NaN weights warn (exit 0) and fail under --strict (exit 1), naming the tensor', () => {
    const path = join(dir, 'nan.safetensors');
    const bytes = Buffer.from(orBytes);
    const { dataStart, name } = firstTensor(bytes);
    bytes.writeUInt32LE(0x7fc00000, dataStart + 4); // the second value
    writeFileSync(path, bytes);
    const { code, report } = validate([path]);
    expect(code).toBe(0);
    const finite = check(report, 'finite');
    expect(finite.status).toBe('warn');
    expect(finite['tensors']).toEqual([{ name, dtype: 'float32', nan: 1, inf: 0, first: 1 }]);
    expect(finite.message).toContain(name);
    const strict = validate([path, '--strict']);
    expect(strict.code).toBe(1);
    expect(check(strict.report, 'finite')).toMatchObject({ status: 'fail', strict: true });
  });

  it('a sharded bundle validates; with a shard deleted it is unreadable and the shard is named', () => {
    const shards = join(dir, 'shards');
    expect(cli(['convert', or, shards, '--shard-size', '16']).code).toBe(0);
    expect(validate([shards]).code).toBe(0);
    const shard = readdirSync(shards).filter((f) => /^model-\d+-of-\d+\.safetensors$/.test(f)).sort()[1]!;
    unlinkSync(join(shards, shard));
    const { code, report } = validate([shards]);
    expect(code).toBe(2);
    expect(check(report, 'parse').message).toContain(shard);
  });

  it('not-a-model and missing files are unreadable with format null; one bad file makes the whole run exit 2', () => {
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'hello, I am a text file\n');
    const { code, report } = validate([SAMPLE, text, join(dir, 'missing.safetensors')]);
    expect(code).toBe(2);
    expect(report.status).toBe('unreadable');
    expect(report.models.map((m) => [m.status, m.format])).toEqual([
      ['pass', 'safetensors'],
      ['unreadable', null],
      ['unreadable', null],
    ]);
    expect(check(report, 'parse', 1).message).toMatch(/notes\.txt: first bytes/);
    expect(check(report, 'parse', 2).message).toMatch(/missing\.safetensors: .*existing file/);
  });

  it('unsupported ops fail with their nodes listed, exit 1', () => {
    const path = join(dir, 'fancy.safetensors');
    const graph: Graph = {
      inputs: [{ name: 'x', dtype: 'float32', shape: [null, 2] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [null, 2] }],
      initializers: new Map(),
      nodes: [makeNode('Relu', ['x'], ['h']), makeNode('FancyActivation', ['h'], ['y'], {}, 'fancy_node')],
      opset: 17,
    };
    saveModel(graphModel(graph), path);
    const { code, report } = validate([path]);
    expect(code).toBe(1);
    const ops = check(report, 'ops');
    expect(ops.status).toBe('fail');
    expect(ops['unsupported']).toEqual([{ op: 'FancyActivation', nodes: ['fancy_node'] }]);
    expect(ops.message).toMatch(/FancyActivation \(node fancy_node\)/);
    expect(check(report, 'runs').status).toBe('fail');
    // No shape rule for the unknown op: shapes claims nothing about its output.
    expect(check(report, 'shapes')).toMatchObject({ status: 'pass', unknownOps: ['FancyActivation'] });
  });

  it('shape check: a Gemm weight that does not fit its input, and a graph output nothing produces', () => {
    const path = join(dir, 'misfit.safetensors');
    const weights = new Map([
      ['w', f32([3, 4])],
      ['b', f32([3])],
    ]);
    const graph: Graph = {
      inputs: [{ name: 'x', dtype: 'float32', shape: [null, 2] }],
      outputs: [
        { name: 'y', dtype: 'float32', shape: [null, 3] },
        { name: 'z', dtype: 'float32', shape: null },
      ],
      initializers: weights,
      nodes: [makeNode('Gemm', ['x', 'w', 'b'], ['y'], { transB: attr.int(1) }, 'fc')],
      opset: 17,
    };
    saveModel(graphModel(graph), path);
    const { code, report } = validate([path]);
    expect(code).toBe(1);
    const shapes = check(report, 'shapes');
    expect(shapes.status).toBe('fail');
    expect(shapes['problems']).toEqual([
      { node: 'fc', op: 'Gemm', problem: expect.stringMatching(/x \[\?, 2\] times w \[3, 4\] \(transposed\): inner dimensions 2 and 4 differ/) },
      { node: '', op: '', problem: 'graph output z is produced by no node, input or initializer' },
    ]);
    expect(check(report, 'signatures')).toMatchObject({ status: 'fail' });
    expect(check(report, 'signatures').message).toMatch(/output z maps to z, which nothing produces/);
  });

  it('golden: --inputs and --expect (JSON, run --json output, npz) pass within tolerance and fail beyond it', () => {
    const inputs = join(dir, 'inputs.json');
    writeFileSync(inputs, JSON.stringify({ x: [[0, 0], [0, 1], [1, 0], [1, 1]] }));
    const ran = cli(['run', or, '--input', 'x=[[0,0],[0,1],[1,0],[1,1]]', '--json']);
    expect(ran.code).toBe(0);
    const expected = join(dir, 'expected.json');
    writeFileSync(expected, ran.stdout);
    const good = validate([or, '--inputs', inputs, '--expect', expected]);
    expect(good.code).toBe(0);
    expect(check(good.report, 'golden')).toMatchObject({ status: 'pass', outputs: [{ name: 'y', shape: [4, 1], maxAbs: 0, beyond: 0, count: 4 }] });
    expect(check(good.report, 'runs').message).toMatch(/--inputs x \[4, 2\] float32/);

    const y = (JSON.parse(ran.stdout) as { outputs: { y: { data: number[] } } }).outputs.y.data;
    const wrong = join(dir, 'wrong.json');
    writeFileSync(wrong, JSON.stringify({ y: [[y[0]], [y[1]], [y[2]], [y[3]! - 0.01]] }));
    const bad = validate([or, '--inputs', inputs, '--expect', wrong]);
    expect(bad.code).toBe(1);
    expect(check(bad.report, 'golden').message).toMatch(/output y: 1 of 4 values beyond tolerance, max abs error 0\.01 .*index 3/);
    // A looser tolerance accepts it.
    expect(validate([or, '--inputs', inputs, '--expect', wrong, '--atol', '0.02']).code).toBe(0);

    // The same case as .npz files, one stored and one deflated.
    const npzIn = join(dir, 'x.npz');
    writeFileSync(npzIn, makeZip([{ name: 'x.npy', data: writeNpy(Tensor.from('float32', [4, 2], [0, 0, 0, 1, 1, 0, 1, 1])) }]));
    const npzOut = join(dir, 'y.npz');
    writeFileSync(npzOut, makeZip([{ name: 'y.npy', data: writeNpy(Tensor.from('float32', [4, 1], y)), deflate: true }]));
    expect(validate([or, '--inputs', npzIn, '--expect', npzOut, '--atol', '0', '--rtol', '0']).code).toBe(0);
  });

  it('--roundtrip safetensors: weights bit-identical and outputs equal; an unknown format is a usage error', () => {
    const { code, report } = validate([or, '--roundtrip', 'safetensors']);
    expect(code).toBe(0);
    expect(check(report, 'roundtrip:safetensors')).toMatchObject({ status: 'pass', format: 'safetensors', weights: { identical: 4 } });
    expect(check(report, 'roundtrip:safetensors').message).toMatch(/4 tensors bit-identical; 1 output\(s\) on uniform \[0, 1\) x \[1, 2\] float32: equal/);
    const bare = validate([MULTI_LAYER, '--roundtrip', 'safetensors,safetensors']);
    expect(bare.report.models[0]!.checks.filter((c) => c.name === 'roundtrip:safetensors').map((c) => c.status)).toEqual(['pass', 'pass']);
    const r = cli(['validate', or, '--roundtrip', 'nosuchformat']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/unknown format "nosuchformat"/);
    expect(r.stdout).toBe('');
  });

  it('usage errors: --expect without --inputs, an unreadable --inputs file', () => {
    const r = cli(['validate', or, '--expect', join(dir, 'nothing.json')]);
    expect(r.code).toBe(1);
    const expected = join(dir, 'exp.json');
    writeFileSync(expected, '{"y": [[1]]}');
    const s = cli(['validate', or, '--expect', expected]);
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/--expect needs --inputs/);
    expect(cli(['validate', or, '--inputs', join(dir, 'nothing.json')]).stderr).toMatch(/cannot read .*nothing\.json/);
  });

  it('PyTorch checkpoints: zip CRCs verified; a flipped data byte fails, hostile pickles are unreadable naming the global', () => {
    const pt = join(ROOT, 'samples', 'or-gate', 'or-gate.pt');
    const good = validate([pt]);
    expect(good.code).toBe(0);
    expect(statuses(good.report)['checksums']).toBe('pass');
    // Flip a byte inside the first weight record: the record's CRC-32 no longer matches.
    const bytes = Buffer.from(readFileSync(pt));
    const dataStart = bytes.indexOf(Buffer.from(new Float32Array(trainOrGate({ seed: 0 }).model.weights.get('0.weight')!.toFloat32()).buffer));
    expect(dataStart).toBeGreaterThan(0);
    bytes[dataStart] = bytes[dataStart]! ^ 0x01;
    const flipped = join(dir, 'flipped.pt');
    writeFileSync(flipped, bytes);
    const bad = validate([flipped]);
    expect(bad.code).toBeGreaterThan(0);
    expect(JSON.stringify(bad.report)).toMatch(/CRC/i);
    for (const hostile of ['malicious1.zip', 'pytorch_magic_bypass.pt'].map((f) => join(FIXTURES, 'picklescan', 'negative', f))) {
      const r = validate([hostile, '--from', 'pytorch']);
      expect(r.code, hostile).toBe(2);
      expect(check(r.report, 'parse').message, hostile).toMatch(/refused pickle global (builtins|__builtin__)\.eval/);
    }
  });

  it('has --help with examples', () => {
    for (const command of ['validate', 'diff']) {
      const r = cli([command, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Examples:/);
    }
  });

  it('works as a library: validateModel over a Model from any registered format', () => {
    const report = validateModel(or, { roundtrip: ['safetensors'] });
    expect(report.status).toBe('pass');
    expect(report.checks.at(-1)!.name).toBe('roundtrip:safetensors');
    expect(existsSync(or)).toBe(true);
  });
});

describe.skipIf(!python)('modelbridge validate: bundles written by Python', () => {
  let dir = '';
  beforeAll(() => {
    dir = tempDir('modelbridge-validate-zoo-');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("passes every zoo bundle, and PyTorch's outputs are its golden outputs", () => {
    const zoo = peerMakeZoo(dir);
    expect(zoo.length).toBeGreaterThan(3);
    for (const entry of zoo) {
      const c = readZooCase(entry);
      const inputs = join(dir, `${entry.name}.inputs.json`);
      const expected = join(dir, `${entry.name}.expected.json`);
      writeFileSync(inputs, JSON.stringify({ x: c.input }));
      writeFileSync(expected, JSON.stringify({ y: c.output }));
      const { code, report } = validate([entry.bundle, '--inputs', inputs, '--expect', expected, '--strict']);
      expect(code, `${entry.name}: ${JSON.stringify(report.models[0]!.checks.filter((x) => x.status !== 'pass' && x.status !== 'skip'))}`).toBe(0);
      expect(check(report, 'golden').status).toBe('pass');
      expect(check(report, 'shapes').status).toBe('pass');
    }
  });
});
