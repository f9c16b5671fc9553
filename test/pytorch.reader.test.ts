import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../src/core/errors.js';
import { FileRangeSource } from '../src/core/source.js';
import type { Tensor } from '../src/core/tensor.js';
import { parsePytorch, readPytorchFile } from '../src/formats/pytorch/reader.js';
import { StorageSlice } from '../src/formats/pytorch/tensors.js';
import { parseZip } from '../src/formats/pytorch/zip.js';
import { tempDir } from './cli-helpers.js';
import { fixture, formatError, local, sha256, zipOf } from './fixtures/pytorch/helpers.js';

/**
 * Every benign .pt in the upstream fixtures, read without unpickling and compared with what real
 * PyTorch 2.13 loads from it: torch-truth.json holds, per tensor, the dtype, shape and SHA-256
 * of the contiguous bytes, written by test/fixtures/pytorch/make_truth.py in the peers' venv.
 * The literal values below were printed by that same torch (torch.load(weights_only=True)).
 */

interface Expected {
  readonly dtype: string;
  readonly shape: number[];
  readonly sha256: string;
}
const truth = JSON.parse(readFileSync(local('torch-truth.json'), 'utf8')) as Record<string, Record<string, Expected>>;
const temp = tempDir('modelbridge-pytorch-');
afterAll(() => rmSync(temp, { recursive: true, force: true }));

const pathOf = (file: string): string => (file.startsWith('local/') ? local(file.slice(6)) : fixture(file));
const values = (t: Tensor | undefined): number[] => t!.toNumbers();

describe('every benign fixture reads as torch.load reads it', () => {
  for (const [file, tensors] of Object.entries(truth)) {
    it(file, () => {
      const read = readPytorchFile(pathOf(file));
      // torch's names are the full nested paths; ours start below the picked entry.
      const prefix = read.info.picked ? `${read.info.picked}.` : '';
      const expected = Object.entries(tensors).filter(([name]) => prefix === '' || name.startsWith(prefix));
      expect([...read.tensors.keys()].sort()).toEqual(expected.map(([name]) => name.slice(prefix.length)).sort());
      for (const [name, want] of expected) {
        const t = read.tensors.get(name.slice(prefix.length))!;
        // torch counts float4_e2m1fn_x2 in bytes (two values each), modelbridge in values.
        const shape = want.dtype === 'float4_e2m1fn_x2' ? [...want.shape.slice(0, -1), want.shape.at(-1)! * 2] : want.shape;
        expect({ name, dtype: t.dtype, shape: [...t.shape], sha256: sha256(t.bytes()) }).toEqual({ name, dtype: want.dtype, shape, sha256: want.sha256 });
      }
    });
  }
});

describe('values, as torch 2.13 printed them', () => {
  const one = (file: string, name = 'tensor') => readPytorchFile(fixture(`burn/pytorch/tests/reader/test_data/${file}`)).tensors.get(name);

  it('reads every classic dtype', () => {
    expect(values(one('float32.pt'))).toEqual([1.0, 2.5, Math.fround(-3.7), 0.0]);
    expect(values(one('float64.pt'))).toEqual([1.1, 2.2, 3.3]);
    expect(values(one('float16.pt'))).toEqual([1.5, -2.25, 3.125]);
    expect(values(one('bfloat16.pt'))).toEqual([1.5, -2.5, 3.5]);
    expect(values(one('int8.pt'))).toEqual([127, -128, 0, 50]);
    expect(values(one('int16.pt'))).toEqual([1000, -2000, 3000]);
    expect(values(one('int32.pt'))).toEqual([10, 20, -30]);
    expect(values(one('int64.pt'))).toEqual([100, -200, 300, 0]);
    expect(values(one('uint8.pt'))).toEqual([0, 128, 255, 42]);
    expect(values(one('bool.pt'))).toEqual([1, 0, 1, 1, 0]);
    expect(values(one('special_values.pt'))).toEqual([NaN, Infinity, -Infinity, 0, 1]);
    const scalar = one('scalar.pt')!;
    expect([scalar.shape, values(scalar)]).toEqual([[], [42]]);
    expect(one('empty.pt')!.shape).toEqual([0]);
  });

  it('applies strides: a Fortran-ordered int64 tensor (candle) reads in logical order', () => {
    const t = readPytorchFile(fixture('candle/candle-core/tests/fortran_tensor_3d.pth')).tensors.get('tensor_fortran')!;
    expect([t.dtype, t.shape]).toEqual(['int64', [2, 3, 4]]);
    expect(values(t)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
  });

  it('reads legacy (pre-1.6) views into one shared storage, zero-copy', () => {
    const read = readPytorchFile(fixture('burn/pytorch/tests/reader/test_data/legacy_uncloned_views.pt'));
    expect(read.info.container).toBe('legacy');
    const [a, b] = [read.tensors.get('tensor1')!, read.tensors.get('tensor2')!];
    expect(values(a)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(values(b)).toEqual([50, 51, 52, 53, 54, 55, 56, 57, 58, 59]);
    expect(a.source).toBeInstanceOf(StorageSlice);
    expect((a.source as StorageSlice).storage).toBe((b.source as StorageSlice).storage);
  });

  it('keeps tied weights tied: one pickled tensor under two names is one Tensor', () => {
    const read = readPytorchFile(local('views.pt'));
    expect(read.tensors.get('tied_a')).toBe(read.tensors.get('tied_b'));
    const [a, b] = [read.tensors.get('view_a')!, read.tensors.get('view_b')!];
    expect((a.source as StorageSlice).storage).toBe((b.source as StorageSlice).storage);
    expect(values(b)).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect(values(read.tensors.get('conj'))).toEqual([1, -2, 3, 4]);
    expect(values(read.tensors.get('neg'))).toEqual([-1, 2, -0]);
    expect(values(read.tensors.get('expanded'))).toEqual([7, 8, 7, 8, 7, 8]);
  });

  it('reads TorchScript archives: module attributes become the state dict (tch-rs)', () => {
    const foo = readPytorchFile(fixture('tch-rs/tests/foo.pt'));
    expect(foo.info.container).toBe('torchscript');
    expect(values(foo.tensors.get('value'))).toEqual([42]);
    expect(readPytorchFile(fixture('tch-rs/tests/foo1.pt')).tensors.size).toBe(0);
    const foo9 = readPytorchFile(fixture('tch-rs/tests/foo9.pt'));
    expect(foo9.info.archive).toBe('model.scr');
    expect(foo9.tensors.get('input_linear.weight')!.shape).toEqual([192, 512]);
  });

  it('reads a bare tensor as "tensor" (picklescan new_pytorch_model.bin)', () => {
    const read = readPytorchFile(fixture('picklescan/real/new_pytorch_model.bin'));
    expect(values(read.tensors.get('tensor'))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 122, 13, 14, 15]);
  });
});

describe('finding the state dict in a checkpoint', () => {
  const reader = (file: string, key?: string) => readPytorchFile(fixture(file), key === undefined ? {} : { key });

  it('picks the model entry of a training checkpoint and says so', () => {
    const read = reader('burn/pytorch/tests/reader/test_data/checkpoint.pt');
    expect(read.info.picked).toBe('model_state_dict');
    expect(read.info.ignored).toEqual(['optimizer_state_dict', 'epoch', 'loss']);
    expect([...read.tensors.keys()]).toEqual(['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']);
  });

  it('picks the only entry holding tensors beside a config', () => {
    expect(reader('burn/pytorch-tests/tests/config/weights_with_config.pt').info.picked).toBe('my_model');
    expect(reader('candle/candle-core/tests/test_with_key.pt').info.picked).toBe('model_state_dict');
  });

  it('flattens nested dicts with dots when no single entry is the state dict', () => {
    const read = reader('burn/pytorch/tests/reader/test_data/nested_dict.pt');
    expect(read.info.picked).toBe('');
    expect([...read.tensors.keys()]).toEqual(['layer1.weight', 'layer1.bias', 'layer2.weight', 'layer2.bias']);
  });

  it('takes an explicit key, a dotted path, and refuses a missing one with the keys it has', () => {
    const all = reader('burn/pytorch/tests/reader/test_data/checkpoint.pt', 'optimizer_state_dict');
    expect([...all.tensors.keys()]).toEqual(['state.0.momentum_buffer']);
    const deep = reader('burn/pytorch/tests/reader/test_data/complex_structure.pt', 'state.encoder');
    expect([...deep.tensors.keys()]).toEqual(['layer_0.weight', 'layer_0.bias', 'layer_1.weight', 'layer_1.bias']);
    expect(() => reader('burn/pytorch/tests/reader/test_data/checkpoint.pt', 'nope')).toThrow(UsageError);
    expect(() => reader('burn/pytorch/tests/reader/test_data/checkpoint.pt', 'nope')).toThrow(/model_state_dict, optimizer_state_dict, epoch, loss/);
  });
});

describe('the container', () => {
  it('records the archive name, version and byte order', () => {
    const info = readPytorchFile(fixture('burn/pytorch/tests/reader/test_data/float32.pt')).info;
    expect(info).toMatchObject({ container: 'zip', archive: 'float32', version: 3, byteorder: 'little' });
  });

  it('leaves large storages in the file when lazy, with the same bytes', () => {
    const file = fixture('burn/examples/import-model-weights/weights/mnist.pt');
    const lazy = readPytorchFile(file, { lazy: true });
    const eager = readPytorchFile(file);
    for (const [name, t] of lazy.tensors) {
      expect((t.source as StorageSlice).storage.source).toBeInstanceOf(FileRangeSource);
      expect(sha256(t.bytes())).toBe(sha256(eager.tensors.get(name)!.bytes()));
    }
  });

  it('reads an archive with bytes prepended (a self-extractor stub, a concatenation)', () => {
    const original = readFileSync(fixture('candle/candle-core/tests/test.pt'));
    const file = join(temp, 'prefixed.pt');
    writeFileSync(file, Buffer.concat([Buffer.alloc(777, 0x41), original]));
    expect(values(readPytorchFile(file).tensors.get('test'))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('converts a big-endian checkpoint (byteorder "big") to little-endian values', () => {
    const little = readPytorchFile(local('dtypes.pt'));
    const bigEndian = swapArchive(new Uint8Array(readFileSync(local('dtypes.pt'))));
    const read = parsePytorch(bigEndian, 'big.pt');
    expect(read.info.byteorder).toBe('big');
    for (const [name, t] of little.tensors) expect(sha256(read.tensors.get(name)!.bytes()), name).toBe(sha256(t.bytes()));
  });

  it('refuses what is not a checkpoint with one clear FormatError', () => {
    expect(formatError(() => readPytorchFile(fixture('burn/pytorch/tests/reader/test_data/broken.pt'))).message).toMatch(/a PyTorch checkpoint: a zip archive/);
    expect(formatError(() => readPytorchFile(fixture('picklescan/negative/bad_pytorch.pt'))).message).toMatch(/a PyTorch checkpoint/);
    expect(formatError(() => parsePytorch(zipOf({ 'weights.json': new Uint8Array(2) }), 'x.zip')).message).toMatch(/archive\/data\.pkl record/);
    expect(formatError(() => readPytorchFile(join(temp, 'missing.pt'))).message).toMatch(/a readable file \(ENOENT\)/);
    expect(formatError(() => readPytorchFile(temp)).message).toMatch(/not a directory/);
    expect(formatError(() => parsePytorch(new TextEncoder().encode('PYTORCH1 and more'), 'old.pt')).message).toMatch(/preview release/);
  });
});

/**
 * dtypes.pt as a big-endian machine would have written it: the pickle is the same, each storage's
 * elements are byte-reversed (complex: each half), and the byteorder record says "big".
 */
function swapArchive(bytes: Uint8Array): Uint8Array {
  const read = parsePytorch(bytes, 'dtypes.pt');
  const zip = parseZip(bytes, 'dtypes.pt');
  const sizes = new Map<string, number>();
  for (const [, t] of read.tensors) {
    const slice = t.source as StorageSlice;
    const unit = t.dtype === 'complex64' ? 4 : t.dtype === 'complex128' ? 8 : t.dtype === 'float4_e2m1fn_x2' ? 1 : t.byteLength / Math.max(t.size, 1);
    sizes.set(slice.storage.key, unit);
  }
  const records: Record<string, Uint8Array> = {};
  for (const entry of zip.entries) {
    const [name, data] = [entry.name, zip.read(entry)];
    const key = /^dtypes\/data\/(\d+)$/.exec(name)?.[1];
    let out = data;
    if (name === 'dtypes/byteorder') out = new TextEncoder().encode('big');
    else if (key !== undefined) {
      out = data.slice();
      const unit = sizes.get(key) ?? 1;
      for (let at = 0; at < out.byteLength; at += unit) out.subarray(at, at + unit).reverse();
    }
    records[name.slice('dtypes/'.length)] = out;
  }
  return zipOf(records, 'dtypes');
}
