import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DTYPES, byteLengthOf, type DType } from '../src/core/dtypes.js';
import { UsageError } from '../src/core/errors.js';
import { elementCount } from '../src/core/shape.js';
import { Tensor } from '../src/core/tensor.js';
import { parsePytorch, readPytorchFile } from '../src/formats/pytorch/reader.js';
import { archiveNameFor, serializePytorch, writePytorchFile } from '../src/formats/pytorch/writer.js';
import { parseZip } from '../src/formats/pytorch/zip.js';
import { tempDir } from './cli-helpers.js';
import { fixture, local, python, runPython, sha256 } from './fixtures/pytorch/helpers.js';

/**
 * The writer: every dtype PyTorch has round-trips bit for bit, tied tensors stay tied, the layout
 * is torch.save's own (byte for byte apart from half of .data/serialization_id), and real
 * PyTorch 2.13 loads the files with torch.load(weights_only=True), mmap included.
 */

const temp = tempDir('modelbridge-pytorch-write-');
afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** Every dtype torch can hold: all of ours but the 6-bit floats and strings. */
const TORCH_DTYPES = (Object.keys(DTYPES) as DType[]).filter((d) => d !== 'string' && !d.startsWith('float6'));

/** Deterministic pseudo-random bytes of the right length for a dtype and shape. */
function tensorOf(dtype: DType, shape: number[], seed: number): Tensor {
  const length = byteLengthOf(dtype, elementCount(shape)!)!;
  const bytes = new Uint8Array(length);
  let x = seed * 2654435761;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  if (dtype === 'bool') for (let i = 0; i < length; i++) bytes[i]! &= 1;
  return Tensor.fromBytes(dtype, shape, bytes);
}

function allDtypes(): Map<string, Tensor> {
  const tensors = new Map<string, Tensor>();
  TORCH_DTYPES.forEach((dtype, i) => {
    tensors.set(`${dtype}.matrix`, tensorOf(dtype, [3, 4], i));
    tensors.set(`${dtype}.scalar`, tensorOf(dtype, dtype === 'float4_e2m1fn_x2' ? [2] : [], i + 100));
    tensors.set(`${dtype}.empty`, tensorOf(dtype, [2, 0, 4], i));
  });
  tensors.set('five.dims', tensorOf('float32', [2, 1, 3, 1, 2], 7));
  tensors.set('wide', tensorOf('int8', [70_000], 8));
  return tensors;
}

function expectSame(a: ReadonlyMap<string, Tensor>, b: ReadonlyMap<string, Tensor>): void {
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [name, t] of a) {
    const u = b.get(name)!;
    expect({ name, dtype: u.dtype, shape: [...u.shape], sha: sha256(u.bytes()) }).toEqual({ name, dtype: t.dtype, shape: [...t.shape], sha: sha256(t.bytes()) });
  }
}

describe('round trips', () => {
  it('keeps every dtype, shape and byte', () => {
    const tensors = allDtypes();
    const read = parsePytorch(serializePytorch(tensors), 'all.pt');
    expectSame(tensors, read.tensors);
    expect(read.metadata).toEqual({});
  });

  it('writes more than one SETITEMS batch (1000 entries each)', () => {
    const tensors = new Map(Array.from({ length: 2501 }, (_, i) => [`t${i}`, tensorOf('float16', [2], i)] as const));
    expectSame(tensors, parsePytorch(serializePytorch(tensors), 'many.pt').tensors);
  });

  it('is deterministic', () => {
    const tensors = allDtypes();
    expect(sha256(serializePytorch(tensors, { a: 'b' }))).toBe(sha256(serializePytorch(tensors, { a: 'b' })));
  });

  it('carries metadata in modelbridge/metadata.json, and writes no such record without metadata', () => {
    const tensors = new Map([['w', tensorOf('float32', [2], 1)]]);
    const meta = { 'modelbridge.module': '{"type":"Linear"}', zeta: 'last', alpha: 'first' };
    const bytes = serializePytorch(tensors, meta);
    expect(parsePytorch(bytes, 'meta.pt').metadata).toEqual(meta);
    const names = parseZip(bytes, 'meta.pt').entries.map((e) => e.name);
    expect(names).toEqual([
      'archive/data.pkl',
      'archive/.format_version',
      'archive/.storage_alignment',
      'archive/byteorder',
      'archive/data/0',
      'archive/modelbridge/metadata.json',
      'archive/version',
      'archive/.data/serialization_id',
    ]);
    expect(parseZip(serializePytorch(tensors), 'plain.pt').entries.map((e) => e.name)).not.toContain('archive/modelbridge/metadata.json');
  });

  it('aligns every record to 64 bytes', () => {
    const bytes = serializePytorch(allDtypes(), { x: 'y' });
    const zip = parseZip(bytes, 'aligned.pt');
    for (const entry of zip.entries) expect(zip.dataOffset(entry) % 64, entry.name).toBe(0);
  });

  it('writes a tensor stored under two names once, and reads it back as one tensor', () => {
    const shared = tensorOf('bfloat16', [4, 4], 3);
    const bytes = serializePytorch(new Map([['encoder.embed', shared], ['decoder.embed', shared]]));
    expect(parseZip(bytes, 'tied.pt').entries.filter((e) => e.name.includes('/data/'))).toHaveLength(1);
    const read = parsePytorch(bytes, 'tied.pt');
    expect(read.tensors.get('encoder.embed')).toBe(read.tensors.get('decoder.embed'));
  });

  it('keeps storages shared by views read from a checkpoint shared', () => {
    const read = readPytorchFile(local('views.pt'));
    const bytes = serializePytorch(read.tensors);
    const again = parsePytorch(bytes, 'views.pt');
    expectSame(read.tensors, again.tensors);
    expect(again.tensors.get('tied_a')).toBe(again.tensors.get('tied_b'));
    const storage = (name: string) => (again.tensors.get(name)!.source as unknown as { storage: unknown }).storage;
    expect(storage('view_a')).toBe(storage('view_b'));
  });

  it('streams tensors that live in a file (lazy reads) into the new file', () => {
    const source = readPytorchFile(fixture('burn/examples/import-model-weights/weights/mnist.pt'), { lazy: true });
    const file = join(temp, 'mnist.pt');
    writePytorchFile(file, source.tensors);
    expectSame(source.tensors, readPytorchFile(file).tensors);
  });

  it('refuses dtypes PyTorch cannot hold with a UsageError, before writing anything', () => {
    const file = join(temp, 'refused.pt');
    expect(() => writePytorchFile(file, new Map([['s', Tensor.fromStrings([1], [new Uint8Array(1)])]]))).toThrow(UsageError);
    expect(() => serializePytorch(new Map([['f6', Tensor.fromBytes('float6_e2m3fn', [4], new Uint8Array(3))]]))).toThrow(/PyTorch has no dtype float6_e2m3fn/);
    expect(() => serializePytorch(new Map([['f4', Tensor.fromBytes('float4_e2m1fn_x2', [2, 3], new Uint8Array(3))]]))).toThrow(/even last dimension/);
    expect(() => readFileSync(file)).toThrow();
  });

  it('names the archive folder as torch.save does', () => {
    expect(archiveNameFor('/models/resnet.v2.pt')).toBe('resnet.v2');
    expect(archiveNameFor('weights')).toBe('weights');
    expect(archiveNameFor('/tmp/.pt')).toBe('archive');
    expect(archiveNameFor('/tmp/modèle.pt')).toBe('archive');
    const file = join(temp, 'named.pth');
    writePytorchFile(file, new Map([['w', tensorOf('int32', [1], 1)]]));
    expect(readPytorchFile(file).info.archive).toBe('named');
  });
});

describe.skipIf(!python)('real PyTorch reads what modelbridge writes', () => {
  it('torch.load(weights_only=True) returns identical tensors, tied ones sharing storage, also with mmap', () => {
    const dir = join(temp, 'peer');
    mkdirSync(dir, { recursive: true });
    const tensors = allDtypes();
    const tied = tensorOf('float32', [5], 42);
    tensors.set('tied.first', tied);
    tensors.set('tied.second', tied);
    const views = readPytorchFile(local('views.pt')).tensors;
    tensors.set('view_a', views.get('view_a')!);
    tensors.set('view_b', views.get('view_b')!);
    const file = join(dir, 'ours.pt');
    writePytorchFile(file, tensors, { 'modelbridge.note': 'ignored by torch' });
    const out = runPython(
      `
import hashlib, json, os, sys, torch
os.environ['TORCH_SERIALIZATION_DEBUG'] = '1'  # torch re-derives every storage offset and asserts it
from torch.utils.serialization import config
config.load.calculate_storage_offsets = True
def describe(sd):
    out = {}
    for k, t in sd.items():
        raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b''
        out[k] = [str(t.dtype).removeprefix('torch.'), list(t.shape), hashlib.sha256(raw).hexdigest()]
    return out
sd = torch.load(sys.argv[1], weights_only=True)
mm = torch.load(sys.argv[1], weights_only=True, mmap=True)
ptr = lambda k: sd[k].untyped_storage().data_ptr()
print(json.dumps({
  'type': type(sd).__name__,
  'tensors': describe(sd), 'mmap': describe(mm),
  'tied': ptr('tied.first') == ptr('tied.second'),
  'views': ptr('view_a') == ptr('view_b'),
  'offsets': [sd['view_a'].storage_offset(), sd['view_b'].storage_offset()],
}))`,
      [file],
    );
    const torch = JSON.parse(out) as {
      type: string;
      tensors: Record<string, [string, number[], string]>;
      mmap: Record<string, [string, number[], string]>;
      tied: boolean;
      views: boolean;
      offsets: number[];
    };
    expect(torch.type).toBe('OrderedDict');
    expect(torch.tied).toBe(true);
    expect(torch.views).toBe(true);
    expect(torch.offsets).toEqual([0, 2]);
    expect(torch.mmap).toEqual(torch.tensors);
    for (const [name, t] of tensors) {
      // torch counts float4_e2m1fn_x2 in bytes (two values each).
      const shape = t.dtype === 'float4_e2m1fn_x2' ? [...t.shape.slice(0, -1), t.shape.at(-1)! / 2] : [...t.shape];
      expect(torch.tensors[name], name).toEqual([t.dtype, shape, sha256(t.bytes())]);
    }
  });

  it('lays the archive out exactly as torch.save (apart from the name half of .data/serialization_id)', () => {
    const dir = join(temp, 'same');
    mkdirSync(join(dir, 'ours'), { recursive: true });
    runPython(
      `
import sys, torch
from collections import OrderedDict
torch.manual_seed(1)
tied = torch.randn(3, 3)
sd = OrderedDict()
sd['fc.weight'] = tied
sd['fc.bias'] = torch.randn(3).to(torch.bfloat16)
sd['head.weight'] = tied
sd['steps'] = torch.tensor(7)
sd['codes'] = torch.arange(6).to(torch.uint16).reshape(2, 3)
sd['f8'] = torch.randn(2, 2).to(torch.float8_e5m2)
sd['empty'] = torch.zeros(0, 5)
sd['big'] = torch.arange(70000, dtype=torch.int32)
sd['nested.deeply.five'] = torch.ones(1, 2, 1, 2, 1, dtype=torch.float64)
torch.save(sd, sys.argv[1] + '/model.pt')`,
      [dir],
    );
    const theirs = join(dir, 'model.pt');
    const ours = join(dir, 'ours', 'model.pt');
    writePytorchFile(ours, readPytorchFile(theirs).tensors);
    const [a, b] = [readFileSync(theirs), readFileSync(ours)];
    expect(b.byteLength).toBe(a.byteLength);
    const za = parseZip(a, theirs);
    const zb = parseZip(b, ours);
    expect(zb.entries.map((e) => [e.name, e.size, e.headerOffset, zb.dataOffset(e)])).toEqual(za.entries.map((e) => [e.name, e.size, e.headerOffset, za.dataOffset(e)]));
    for (const [i, entry] of za.entries.entries()) {
      const [x, y] = [Buffer.from(za.read(entry)), Buffer.from(zb.read(zb.entries[i]!))];
      if (entry.name.endsWith('.data/serialization_id')) expect(y.subarray(20).toString()).toBe(x.subarray(20).toString());
      else expect(y.equals(x), entry.name).toBe(true);
    }
    // Outside the serialization id record (and its two CRC copies) the files are identical.
    const id = za.entries.find((e) => e.name.endsWith('serialization_id'))!;
    let differing = 0;
    for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) differing++;
    expect(differing).toBeLessThanOrEqual(20 + 4 + 4);
    expect(a.subarray(0, za.dataOffset(id)).equals(b.subarray(0, za.dataOffset(id)))).toBe(true);
  });
});
