import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { FormatError, UsageError } from '../src/core/errors.js';
import type { ByteSource } from '../src/core/source.js';
import { Tensor } from '../src/core/tensor.js';
import {
  INDEX_FILE,
  readSafetensorsFile,
  readSafetensorsIndex,
  SINGLE_FILE,
  writeSafetensorsSharded,
} from '../src/formats/safetensors/index.js';
import { REAL_FILES } from './safetensors.helpers.js';

const temp = mkdtempSync(join(tmpdir(), 'modelbridge-shards-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));
const fresh = (name: string) => mkdtempSync(join(temp, `${name}-`));

/** Four f32 tensors of 16, 64, 16 and 256 bytes, and an int64 scalar. */
function model(): Map<string, Tensor> {
  const f32 = (n: number, start: number) => Tensor.from('float32', [n], Array.from({ length: n }, (_, i) => start + i));
  return new Map([
    ['layer.0.bias', f32(4, 0)],
    ['layer.0.weight', f32(16, 10)],
    ['layer.1.bias', f32(4, 30)],
    ['layer.1.weight', f32(64, 40)],
    ['steps', Tensor.from('int64', [], [7n])],
  ]);
}

const META = { format: 'pt', 'modelbridge.note': 'sharded' };

function expectSameTensors(actual: ReadonlyMap<string, Tensor>, expected: ReadonlyMap<string, Tensor>): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [name, tensor] of expected) {
    const back = actual.get(name)!;
    expect([back.dtype, back.shape]).toEqual([tensor.dtype, tensor.shape]);
    expect(Buffer.compare(back.bytes(), tensor.bytes())).toBe(0);
  }
}

describe('writeSafetensorsSharded', () => {
  test('splits greedily in map order, a too-large tensor alone, and writes the index', () => {
    const dir = fresh('split');
    const files = writeSafetensorsSharded(dir, model(), META, 100);
    // huggingface_hub's order: 16+64+16 = 96 accumulate; 256 > 100 becomes a shard of its own at
    // once (so it comes first); 96+8 would pass 100, so the 96 are closed and steps starts anew.
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual([
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      INDEX_FILE,
    ]);
    const shard = (i: number) => [...readSafetensorsFile(files[i]!).tensors.keys()].sort();
    expect(shard(0)).toEqual(['layer.1.weight']);
    expect(shard(1)).toEqual(['layer.0.bias', 'layer.0.weight', 'layer.1.bias']);
    expect(shard(2)).toEqual(['steps']);
    expect(readSafetensorsFile(files[1]!).metadata).toEqual(META);

    const index = JSON.parse(readFileSync(join(dir, INDEX_FILE), 'utf8'));
    expect(index.metadata).toEqual({ ...META, total_size: 16 + 64 + 16 + 256 + 8 });
    expect(Object.keys(index.weight_map)).toEqual(['layer.0.bias', 'layer.0.weight', 'layer.1.bias', 'layer.1.weight', 'steps']);
    expect(index.weight_map['steps']).toBe('model-00003-of-00003.safetensors');
    expect(readFileSync(join(dir, INDEX_FILE), 'utf8')).toMatch(/^\{\n {2}"metadata": \{\n {4}"format": "pt",\n/);
  });

  test('round trip through the index', () => {
    const dir = fresh('roundtrip');
    writeSafetensorsSharded(dir, model(), META, 100);
    const read = readSafetensorsIndex(join(dir, INDEX_FILE));
    expect(read.metadata).toEqual(META);
    expectSameTensors(read.tensors, model());
  });

  test('deterministic: the same input gives the same bytes', () => {
    const a = fresh('det-a');
    const b = fresh('det-b');
    writeSafetensorsSharded(a, model(), META, 100);
    writeSafetensorsSharded(b, model(), META, 100);
    expect(readdirSync(a).sort()).toEqual(readdirSync(b).sort());
    for (const file of readdirSync(a)) expect(readFileSync(join(a, file)).equals(readFileSync(join(b, file)))).toBe(true);
  });

  test('a single shard is a plain model.safetensors without an index', () => {
    const dir = fresh('single');
    expect(writeSafetensorsSharded(dir, model(), META, 5e9)).toEqual([join(dir, SINGLE_FILE)]);
    expect(readdirSync(dir)).toEqual([SINGLE_FILE]);
    expectSameTensors(readSafetensorsFile(join(dir, SINGLE_FILE)).tensors, model());
  });

  test('a real model sharded and read back', () => {
    const dir = fresh('mnist');
    const mnist = readSafetensorsFile(REAL_FILES.mnist);
    const files = writeSafetensorsSharded(dir, mnist.tensors, undefined, 400_000);
    expect(files.length).toBeGreaterThan(2);
    const read = readSafetensorsIndex(join(dir, INDEX_FILE));
    expect(read.metadata).toBeUndefined();
    expectSameTensors(read.tensors, mnist.tensors);
  });

  test('bad shard sizes and unstorable dtypes fail before anything is written', () => {
    const dir = fresh('bad');
    expect(() => writeSafetensorsSharded(dir, model(), META, 0)).toThrow(UsageError);
    expect(() => writeSafetensorsSharded(dir, model(), META, Number.NaN)).toThrow(UsageError);
    const withComplex = new Map([...model(), ['z', Tensor.fromBytes('complex128', [1], new Uint8Array(16))]]);
    expect(() => writeSafetensorsSharded(dir, withComplex, META, 100)).toThrow(UsageError);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('a failure in a later shard removes the shards already written', () => {
    const dir = fresh('fail');
    const failing: ByteSource = {
      byteLength: 8,
      read: () => new Uint8Array(8),
      *chunks() {
        throw new Error('disk on fire');
      },
    };
    const tensors = new Map([...model(), ['z.last', new Tensor('uint8', [8], failing)]]);
    expect(() => writeSafetensorsSharded(dir, tensors, META, 100)).toThrow(/disk on fire/);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('readSafetensorsIndex validation', () => {
  /** A valid 3-shard checkpoint whose index the test then edits. */
  function checkpoint(): { dir: string; index: { metadata: object; weight_map: Record<string, string> }; save: () => string } {
    const dir = fresh('index');
    writeSafetensorsSharded(dir, model(), META, 100);
    const path = join(dir, INDEX_FILE);
    const index = JSON.parse(readFileSync(path, 'utf8'));
    return { dir, index, save: () => (writeFileSync(path, JSON.stringify(index)), path) };
  }

  function indexError(path: string): FormatError {
    try {
      readSafetensorsIndex(path);
    } catch (error) {
      expect(error).toBeInstanceOf(FormatError);
      return error as FormatError;
    }
    throw new Error('expected a FormatError');
  }

  test('a missing shard file', () => {
    const c = checkpoint();
    rmSync(join(c.dir, 'model-00002-of-00003.safetensors'));
    expect(indexError(c.save()).where).toBe('weight_map shard "model-00002-of-00003.safetensors"');
  });

  test('a listed tensor missing from its shard', () => {
    const c = checkpoint();
    c.index.weight_map['ghost'] = 'model-00001-of-00003.safetensors';
    expect(indexError(c.save()).where).toBe('weight_map "ghost"');
  });

  test('a shard tensor missing from the weight_map', () => {
    const c = checkpoint();
    delete c.index.weight_map['layer.0.bias'];
    const error = indexError(c.save());
    expect(error.where).toBe('tensor "layer.0.bias" in shard "model-00002-of-00003.safetensors"');
    expect(error.expected).toMatch(/to be in weight_map/);
  });

  test('a tensor listed under the wrong shard, or present in two shards', () => {
    const c = checkpoint();
    c.index.weight_map['layer.0.bias'] = 'model-00001-of-00003.safetensors';
    const wrong = indexError(c.save());
    expect(wrong.where).toBe('tensor "layer.0.bias" in shard "model-00002-of-00003.safetensors"');
    expect(wrong.expected).toMatch(/weight_map names "model-00001-of-00003.safetensors"/);

    const d = checkpoint();
    // Copy shard 3 over shard 1 so that steps exists in two shards.
    writeFileSync(join(d.dir, 'model-00001-of-00003.safetensors'), readFileSync(join(d.dir, 'model-00003-of-00003.safetensors')));
    const error = indexError(d.save());
    expect(error.where).toBe('tensor "steps" in shard "model-00001-of-00003.safetensors"');
    expect(error.expected).toMatch(/one shard only/);
  });

  test.each([
    ['../model-00001-of-00003.safetensors'],
    ['sub/model.safetensors'],
    ['..\\evil.safetensors'],
    ['/etc/passwd'],
    ['..'],
    [''],
  ])('shard name %j is refused as a path', (shard) => {
    const c = checkpoint();
    c.index.weight_map['steps'] = shard;
    expect(indexError(c.save()).expected).toMatch(/plain file name|not empty/);
  });

  test('malformed index files', () => {
    const dir = fresh('malformed');
    const path = join(dir, INDEX_FILE);
    for (const text of ['not json', '[]', '{"weight_map": []}', '{"weight_map": {"a": 1}}', '{"metadata": 3, "weight_map": {}}', '\xff']) {
      writeFileSync(path, text);
      indexError(path);
    }
    expect(indexError(join(dir, 'absent.json')).expected).toMatch(/ENOENT/);
  });
});
