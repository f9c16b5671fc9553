import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { crc32c, maskCrc32c } from '../src/core/crc32c.js';
import { FormatError, UsageError } from '../src/core/errors.js';
import { WireReader, WireWriter } from '../src/core/protowire.js';
import { snappyDecompress } from '../src/core/snappy.js';
import { FileRangeSource, MemorySource, type ByteSource } from '../src/core/source.js';
import { Tensor } from '../src/core/tensor.js';
import {
  decodeTensorBundle,
  readTable,
  readTensorBundle,
  TableBuilder,
  writeTensorBundle,
  type TensorBundle,
} from '../src/formats/tensorbundle/index.js';
import { FIXTURES } from './cli-helpers.js';

/**
 * TensorBundle (TensorFlow checkpoint) reading and writing against the real checkpoints in
 * test/fixtures/upstream: every one reads, the values agree with SAVEDMODEL_INSPECTION.txt, and writing
 * the tensors back reproduces the files byte for byte (the snappy-compressed indexes up to the
 * compression of their data block, which this writer never applies).
 */

const tmp = mkdtempSync(join(tmpdir(), 'tensorbundle-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function findIndexes(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const path = join(dir, d.name);
    if (d.isDirectory()) return findIndexes(path);
    return d.name.endsWith('.index') ? [path] : [];
  });
}

const PREFIXES = findIndexes(FIXTURES)
  .map((p) => p.slice(0, -'.index'.length))
  .sort();
const short = (prefix: string): string => relative(FIXTURES, prefix);
const bytesOf = (path: string): Uint8Array => new Uint8Array(readFileSync(path));
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The blocks of a table file: compression type and (decompressed) contents, and the index keys. */
function tableLayout(bytes: Uint8Array): { types: number[]; data: Uint8Array[]; metaindex: Uint8Array; indexKeys: string[] } {
  const footer = new WireReader(bytes, bytes.length - 48, bytes.length - 8);
  const meta = { offset: footer.varint(), size: footer.varint() };
  const index = { offset: footer.varint(), size: footer.varint() };
  const types: number[] = [];
  const block = (h: { offset: number; size: number }): Uint8Array => {
    const raw = bytes.subarray(h.offset, h.offset + h.size);
    types.push(bytes[h.offset + h.size]!);
    return bytes[h.offset + h.size] === 1 ? snappyDecompress(raw, 1 << 24) : raw;
  };
  const entries = (b: Uint8Array): { key: string; value: Uint8Array }[] => {
    const restarts = new DataView(b.buffer, b.byteOffset).getUint32(b.length - 4, true);
    const r = new WireReader(b, 0, b.length - 4 * (restarts + 1));
    const out: { key: string; value: Uint8Array }[] = [];
    let key = '';
    while (!r.done) {
      const [shared, nonShared, valueLength] = [r.varint(), r.varint(), r.varint()];
      key = key.slice(0, shared) + String.fromCharCode(...b.subarray(r.pos, r.pos + nonShared));
      r.pos += nonShared;
      out.push({ key, value: b.subarray(r.pos, r.pos + valueLength) });
      r.pos += valueLength;
    }
    return out;
  };
  const indexEntries = entries(block(index));
  const metaindex = block(meta);
  const data = indexEntries.map((e) => {
    const h = new WireReader(e.value);
    return block({ offset: h.varint(), size: h.varint() });
  });
  return { types, data, metaindex, indexKeys: indexEntries.map((e) => e.key) };
}

/** SAVEDMODEL_INSPECTION.txt's decoded variables: per model dir, each entry with its first values. */
interface Inspected {
  dtype: string;
  shape: number[];
  offset: number;
  size: number;
  values: (number | null)[] | undefined;
}

function readInspection(): Map<string, Map<string, Inspected>> {
  const models = new Map<string, Map<string, Inspected>>();
  let current: Map<string, Inspected> | undefined;
  for (const line of readFileSync(join(FIXTURES, 'SAVEDMODEL_INSPECTION.txt'), 'utf8').split('\n')) {
    const model = /^## \.\/(.+)$/.exec(line);
    if (model) models.set(model[1]!, (current = new Map()));
    const v = /^ {2}var (\S+) (\S+) \[([\d, ]*)\] off (\d+) size (\d+)(?: (\[.*\]))?$/.exec(line);
    if (v && current) {
      current.set(v[1]!, {
        dtype: v[2]!,
        shape: v[3] ? v[3].split(', ').map(Number) : [],
        offset: Number(v[4]),
        size: Number(v[5]),
        values: v[6] ? (JSON.parse(v[6].replace(/'\.\.\.'/g, 'null')) as (number | null)[]) : undefined,
      });
    }
  }
  return models;
}

describe('TensorBundle: the checkpoints in the upstream fixtures', () => {
  test('there are checkpoints to test, snappy-compressed ones among them', () => {
    expect(PREFIXES.length).toBeGreaterThanOrEqual(28);
    const compressed = PREFIXES.filter((p) => tableLayout(bytesOf(`${p}.index`)).types.includes(1)).map(short);
    expect(compressed.map((p) => p.split('/')[2])).toEqual([
      'saved_model_half_plus_two_cpu',
      'saved_model_half_plus_two_cpu_with_empty_saved_model_config',
      'saved_model_half_plus_two_cpu_with_saved_model_config',
      'saved_model_half_plus_two_gpu_trt',
      'saved_model_half_plus_two_mlmd',
      'saved_model_half_plus_two_tf2_cpu',
    ]);
  });

  test.each(PREFIXES.map((p) => [short(p), p]))('%s reads', (_, prefix) => {
    const bundle = readTensorBundle(prefix);
    expect(bundle.header).toEqual({ numShards: 1, endianness: 0, version: { producer: 1, minConsumer: 0, badConsumers: [] } });
    expect(bundle.tensors.size).toBe(bundle.entries.size);
    expect(bundle.tensors.size).toBeGreaterThan(0);
  });

  test('entries and values agree with SAVEDMODEL_INSPECTION.txt for every SavedModel', () => {
    const inspection = readInspection();
    let models = 0;
    for (const [dir, vars] of inspection) {
      if (vars.size === 0) continue;
      models++;
      const bundle = readTensorBundle(join(FIXTURES, dir, 'variables', 'variables'));
      expect([...bundle.entries.keys()].sort(), dir).toEqual([...vars.keys()].sort());
      for (const [name, want] of vars) {
        const tensor = bundle.tensors.get(name)!;
        const entry = bundle.entries.get(name)!;
        const where = `${dir} ${name}`;
        expect(tensor.dtype, where).toBe(want.dtype);
        expect([...tensor.shape], where).toEqual(want.shape);
        expect([entry.offset, entry.size], where).toEqual([want.offset, want.size]);
        if (want.values) {
          const got = tensor.toNumbers().slice(0, want.values.length);
          want.values.forEach((v, i) => v !== null && expect(got[i], `${where}[${i}]`).toBe(v));
        }
      }
    }
    expect(models).toBe(26);
  });

  test('known values: half_plus_two, int64 and string entries', () => {
    const serving = join(FIXTURES, 'tf-serving', 'testdata');
    const hpt = readTensorBundle(join(serving, 'saved_model_half_plus_two_cpu', '00000123', 'variables', 'variables'));
    expect(Object.fromEntries([...hpt.tensors].map(([k, t]) => [k, t.toNumbers()]))).toEqual({ a: [0.5], a2: [0.5], b: [2], c: [3], c2: [3] });
    expect(hpt.tensors.get('a')!.shape).toEqual([]);

    const int64 = readTensorBundle(join(FIXTURES, 'tfjs', 'tfjs-node', 'test_objects', 'saved_model', 'int64_multiply', 'variables', 'variables'));
    expect(int64.tensors.get('v1/.ATTRIBUTES/VARIABLE_VALUE')!.storage()).toEqual(BigInt64Array.of(3n));
    expect(int64.tensors.get('v2/.ATTRIBUTES/VARIABLE_VALUE')!.storage()).toEqual(BigInt64Array.of(2n));
    // The object graph is a serialized TrackableObjectGraph proto held in a scalar string tensor.
    const graph = int64.tensors.get('_CHECKPOINTABLE_OBJECT_GRAPH')!;
    expect(graph.dtype).toBe('string');
    expect(graph.strings![0]!.byteLength).toBe(164 - 2 - 4);
    expect(new WireReader(graph.strings![0]!).key()).toEqual([1, 2]);
  });
});

describe('TensorBundle: byte-identical rewrite of real TensorFlow checkpoints', () => {
  // For each fixture: read it, write its tensors (in the data order the reader returns) and compare.
  const rewrite = (prefix: string): { index: Uint8Array; data: Uint8Array } => {
    const out = join(mkdtempSync(join(tmp, 'rewrite-')), 'model');
    const [indexFile, dataFile] = writeTensorBundle(out, readTensorBundle(prefix).tensors);
    return { index: bytesOf(indexFile!), data: bytesOf(dataFile!) };
  };
  const plain = PREFIXES.filter((p) => !tableLayout(bytesOf(`${p}.index`)).types.includes(1));
  const compressed = PREFIXES.filter((p) => !plain.includes(p));

  test.each(plain.map((p) => [short(p), p]))('%s: .index and .data equal the originals', (_, prefix) => {
    const ours = rewrite(prefix);
    expect(Buffer.from(ours.data).equals(bytesOf(`${prefix}.data-00000-of-00001`))).toBe(true);
    expect(Buffer.from(ours.index).equals(bytesOf(`${prefix}.index`))).toBe(true);
  });

  test.each(compressed.map((p) => [short(p), p]))('%s: .data equal; .index equal but for the snappy data block', (_, prefix) => {
    const ours = rewrite(prefix);
    expect(Buffer.from(ours.data).equals(bytesOf(`${prefix}.data-00000-of-00001`))).toBe(true);
    const theirs = tableLayout(bytesOf(`${prefix}.index`));
    const mine = tableLayout(ours.index);
    // Same blocks with the same contents once decompressed, same metaindex and index keys: the
    // only difference is that TensorFlow's writer stored the data block compressed.
    expect(theirs.types).toEqual([0, 0, 1]);
    expect(mine.types).toEqual([0, 0, 0]);
    expect(mine.data).toEqual(theirs.data);
    expect(mine.metaindex).toEqual(theirs.metaindex);
    expect(mine.indexKeys).toEqual(theirs.indexKeys);
  });
});

describe('TensorBundle: tables', () => {
  const entries = (n: number, valueSize: number): [Uint8Array, Uint8Array][] =>
    Array.from({ length: n }, (_, i) => [text(`key/${String(i).padStart(5, '0')}`), new Uint8Array(valueSize).fill(i & 0xff)]);

  test('many blocks and restart points read back in order', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.uint8Array({ maxLength: 12 }), { maxLength: 80, comparator: (a, b) => Buffer.compare(a, b) === 0 }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 20 }),
        (keys, blockSize, restartInterval) => {
          const sorted = [...keys].sort((a, b) => Buffer.compare(a, b));
          const builder = new TableBuilder({ blockSize, restartInterval });
          sorted.forEach((k, i) => builder.add(k, text(`v${i}`)));
          const table = readTable(builder.finish(), 'test.index');
          expect(table.map((e) => e.key)).toEqual(sorted);
          expect(table.map((e) => new TextDecoder().decode(e.value))).toEqual(sorted.map((_, i) => `v${i}`));
        },
      ),
      { numRuns: 300 },
    );
  });

  test('index keys are shortened separators, and the last one a short successor', () => {
    const builder = new TableBuilder({ blockSize: 1 });
    for (const key of [text('the quick brown fox'), text('the who'), Uint8Array.of(0x7a, 0x7a, 0xff), Uint8Array.of(0xff, 0xff)]) builder.add(key, text('v'));
    const layout = tableLayout(builder.finish());
    expect(layout.data.length).toBe(4);
    // Between "the quick brown fox" and "the who": "the r". Between "the who" and "zz\xff": "u".
    // Between "zz\xff" and "\xff\xff": "{". After "\xff\xff" (all 0xff): itself.
    expect(layout.indexKeys).toEqual(['the r', 'u', '{', '\xff\xff']);
  });

  test('an entry of two blocks or more starts a block of its own (TensorFlow addition)', () => {
    const builder = new TableBuilder({ blockSize: 100 });
    builder.add(text('a'), text('small'));
    builder.add(text('b'), new Uint8Array(200));
    builder.add(text('c'), text('small'));
    const layout = tableLayout(builder.finish());
    expect(layout.data.length).toBe(3);
  });

  test('keys must increase', () => {
    const builder = new TableBuilder();
    builder.add(text('b'), text(''));
    expect(() => builder.add(text('a'), text(''))).toThrow(RangeError);
    expect(() => builder.add(text('b'), text(''))).toThrow(RangeError);
  });

  const table = (): Uint8Array => {
    const builder = new TableBuilder({ blockSize: 200 });
    for (const [k, v] of entries(20, 30)) builder.add(k, v);
    return builder.finish();
  };

  test('a corrupt data block names the block and its checksum', () => {
    const bytes = table();
    bytes[3]! ^= 1;
    expect(() => readTable(bytes, 'x.index')).toThrow(FormatError);
    expect(() => readTable(bytes, 'x.index')).toThrow(/x\.index: data block 0 at byte 0: block checksum 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}/);
  });

  test('a corrupt index block, footer or trailer is a FormatError', () => {
    const base = table();
    const layoutEnd = base.length - 48;
    const cases: [string, (b: Uint8Array) => Uint8Array, RegExp][] = [
      ['index block byte', (b) => ((b[layoutEnd - 10]! ^= 0x40), b), /index block: block checksum/],
      ['magic', (b) => ((b[b.length - 1]! ^= 1), b), /magic number/],
      ['truncation', (b) => b.subarray(0, 40), /at least 48 bytes/],
      ['block type', (b) => corruptType(b), /compression type 0 \(none\) or 1 \(snappy\), got 2/],
    ];
    for (const [name, mutate, message] of cases) {
      expect(() => readTable(mutate(base.slice()), 'x.index'), name).toThrow(message);
    }
  });

  /** Sets the first data block's type byte to 2 and fixes its CRC, so the type check is what fails. */
  function corruptType(b: Uint8Array): Uint8Array {
    const layout = new WireReader(b, b.length - 48, b.length - 8);
    layout.varint();
    layout.varint();
    const index = { offset: layout.varint(), size: layout.varint() };
    const ir = new WireReader(b, index.offset, index.offset + index.size);
    ir.varint();
    const nonShared = ir.varint();
    ir.varint();
    ir.pos += nonShared;
    const handle = { offset: ir.varint(), size: ir.varint() };
    const typeAt = handle.offset + handle.size;
    b[typeAt] = 2;
    new DataView(b.buffer).setUint32(typeAt + 1, maskCrc32c(crc32c(b.subarray(handle.offset, typeAt + 1))), true);
    return b;
  }
});

describe('TensorBundle: writing', () => {
  const sample = (): Map<string, Tensor> =>
    new Map([
      ['w', Tensor.from('float32', [2, 3], [1, 2, 3, 4, 5, 6])],
      ['b', Tensor.from('float16', [3], [0.5, -1, 65504])],
      ['step', Tensor.from('int64', [], [2n ** 62n + 1n])],
      ['mask', Tensor.from('bool', [4], [1, 0, 0, 1])],
      ['names', Tensor.fromStrings([2], [text('alpha'), text('')])],
      ['empty', Tensor.from('float32', [0, 4], [])],
      ['é/unicode', Tensor.from('uint8', [1], [7])],
    ]);

  const prefix = (name: string): string => join(mkdtempSync(join(tmp, 'write-')), name, 'model');

  function expectSame(a: TensorBundle['tensors'], b: ReadonlyMap<string, Tensor>): void {
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    for (const [name, t] of b) {
      const got = a.get(name)!;
      expect([got.dtype, [...got.shape]], name).toEqual([t.dtype, [...t.shape]]);
      if (t.dtype === 'string') expect(got.strings, name).toEqual(t.strings);
      else expect(got.bytes(), name).toEqual(t.bytes());
    }
  }

  test('round-trips every supported kind of tensor, keeping the insertion order in the data file', () => {
    const p = prefix('roundtrip');
    const files = writeTensorBundle(p, sample());
    expect(files).toEqual([`${p}.index`, `${p}.data-00000-of-00001`]);
    const bundle = readTensorBundle(p);
    expectSame(bundle.tensors, sample());
    expect([...bundle.tensors.keys()]).toEqual([...sample().keys()]);
    // The index is sorted by the UTF-8 bytes of the names.
    expect([...bundle.entries.keys()]).toEqual(['b', 'empty', 'mask', 'names', 'step', 'w', 'é/unicode']);
  });

  test("order: 'key' lays the data out in index order; alignment pads each tensor", () => {
    const p = prefix('aligned');
    writeTensorBundle(p, sample(), { order: 'key', alignment: 64 });
    const bundle = readTensorBundle(p);
    expect([...bundle.tensors.keys()]).toEqual([...bundle.entries.keys()]);
    for (const e of bundle.entries.values()) expect(e.offset % 64).toBe(0);
    expect(readFileSync(`${p}.data-00000-of-00001`).length % 64).toBe(0);
    expectSame(bundle.tensors, sample());
  });

  test('lazy reading leaves bytes in the file; verify: false skips the checksums', () => {
    const p = prefix('lazy');
    writeTensorBundle(p, sample());
    const lazy = readTensorBundle(p, { lazy: true });
    expectSame(lazy.tensors, sample());
    expect(readTensorBundle(p, { lazy: true, verify: false }).tensors.get('w')!.source).toBeInstanceOf(FileRangeSource);
    const data = `${p}.data-00000-of-00001`;
    const bytes = bytesOf(data);
    bytes[0]! ^= 0xff;
    writeFileSync(data, bytes);
    expect(() => readTensorBundle(p)).toThrow(FormatError);
    expect(readTensorBundle(p, { verify: false }).tensors.get('w')!.bytes()[0]).toBe(bytes[0]);
  });

  test('a corrupt data file names the tensor', () => {
    const p = prefix('corrupt');
    writeTensorBundle(p, sample());
    const data = `${p}.data-00000-of-00001`;
    const entry = readTensorBundle(p).entries.get('step')!;
    const bytes = bytesOf(data);
    bytes[entry.offset + 3]! ^= 1;
    writeFileSync(data, bytes);
    const message = new RegExp(`model\\.data-00000-of-00001: tensor "step" at byte ${entry.offset}: data matching its checksum 0x[0-9a-f]{8}, computed`);
    expect(() => readTensorBundle(p)).toThrow(message);
    // Left in the file, a tensor is checked when it is read: whole, or streamed to its end.
    const lazy = readTensorBundle(p, { lazy: true }).tensors;
    expect(() => lazy.get('step')!.bytes()).toThrow(message);
    expect(() => [...readTensorBundle(p, { lazy: true }).tensors.get('step')!.source.chunks(1)]).toThrow(message);
    expect(() => lazy.get('w')!.bytes()).not.toThrow();
  });

  test('a corrupt string tensor is caught by the lengths checksum', () => {
    const p = prefix('strings');
    writeTensorBundle(p, new Map([['s', Tensor.fromStrings([2], [text('ab'), text('cde')])]]));
    const data = `${p}.data-00000-of-00001`;
    const bytes = bytesOf(data);
    // Lengths 2 and 3 become 3 and 2: the total still fits, only the checksums can tell.
    bytes[0] = 3;
    bytes[1] = 2;
    writeFileSync(data, bytes);
    expect(() => readTensorBundle(p)).toThrow(/tensor "s" at byte 0: string lengths matching their checksum/);
  });

  test('a large tensor streams from a lazy source into a new bundle', () => {
    const p = prefix('large-src');
    const big = new Float32Array(3 << 20).map((_, i) => i % 1000);
    writeTensorBundle(p, new Map([['big', Tensor.fromArray('float32', [3, 1 << 20], big)]]));
    const lazy = readTensorBundle(p, { lazy: true });
    const q = prefix('large-dst');
    writeTensorBundle(q, lazy.tensors);
    // Buffer.equals: a deep toEqual over 12 MB would take minutes.
    expect(readFileSync(`${q}.data-00000-of-00001`).equals(readFileSync(`${p}.data-00000-of-00001`))).toBe(true);
    expect(readFileSync(`${q}.index`).equals(readFileSync(`${p}.index`))).toBe(true);
  });

  test('bad requests are UsageErrors and leave nothing behind', () => {
    const p = prefix('usage');
    expect(() => writeTensorBundle(p, new Map([['', Tensor.from('float32', [], [1])]]))).toThrow(UsageError);
    expect(() => writeTensorBundle(p, new Map([['\ud800', Tensor.from('float32', [], [1])]]))).toThrow(UsageError);
    expect(() => writeTensorBundle(p, new Map([['x', Tensor.fromBytes('float4_e2m1fn_x2', [2], Uint8Array.of(0x21))]]))).toThrow(/cannot hold float4_e2m1fn_x2/);
    expect(() => writeTensorBundle(p, sample(), { alignment: 0 })).toThrow(UsageError);
    expect(existsSync(`${p}.index`) || existsSync(`${p}.data-00000-of-00001`)).toBe(false);
  });

  test('a source failing mid-write leaves neither file (atomic writes)', () => {
    const p = prefix('failing');
    const failing: ByteSource = {
      byteLength: 8,
      read: () => new Uint8Array(8),
      *chunks() {
        yield new Uint8Array(4);
        throw new Error('disk on fire');
      },
    };
    expect(() => writeTensorBundle(p, new Map([['x', new Tensor('float32', [2], failing)]]))).toThrow('disk on fire');
    expect(readdirSync(join(p, '..'))).toEqual([]);
  });
});

describe('TensorBundle: what the reader refuses', () => {
  const header = new WireWriter().varint(1, 1).message(3, (v) => v.varint(1, 1)).finish();
  const entry = (build: (w: WireWriter) => void): Uint8Array => {
    const w = new WireWriter();
    build(w);
    return w.finish();
  };
  const bundle = (entries: [string, Uint8Array][], headerBytes = header, data = new Uint8Array(16)): TensorBundle => {
    const builder = new TableBuilder();
    builder.add(new Uint8Array(0), headerBytes);
    for (const [k, v] of entries) builder.add(text(k), v);
    return decodeTensorBundle(builder.finish(), [data], { prefix: 'ckpt' });
  };
  const f32 = (size: number, extra: (w: WireWriter) => void = () => {}) =>
    entry((w) => {
      w.varint(1, 1).message(2, (s) => s.message(2, (d) => d.varint(1, size / 4)));
      w.varint(5, size).fixed32(6, maskCrc32c(crc32c(new Uint8Array(size))));
      extra(w);
    });

  test('a well-formed hand-made bundle reads', () => {
    expect(bundle([['x', f32(8)]]).tensors.get('x')!.toNumbers()).toEqual([0, 0]);
  });

  test.each([
    ['partitioned variables', [['x', f32(8, (w) => w.message(7, () => {}))]], /partitioned\/sliced variables are not supported/],
    ['DT_VARIANT', [['x', entry((w) => w.varint(1, 21))]], /a supported dtype, got DT_VARIANT/],
    ['DT_RESOURCE', [['x', entry((w) => w.varint(1, 20))]], /got DT_RESOURCE/],
    ['a size that does not match the shape', [['x', f32(8, (w) => w.varint(5, 12))]], /size 8 for float32 \[2\], got 12/],
    ['negative dimensions', [['x', entry((w) => w.varint(1, 1).message(2, (s) => s.message(2, (d) => d.varint(1, -1))))]], /dimension sizes >= 0/],
    ['bytes past the data file', [['x', f32(8, (w) => w.varint(4, 12))]], /ckpt\.data-00000-of-00001: tensor "x" at byte 12: 8 bytes inside the 16-byte data file/],
    ['a shard beyond num_shards', [['x', f32(8, (w) => w.varint(3, 1))]], /shard_id below num_shards 1, got 1/],
    ['a wrong checksum', [['x', f32(8, (w) => w.fixed32(6, 1234))]], /tensor "x" at byte 0: data matching its checksum/],
    ['a malformed entry proto', [['x', Uint8Array.of(0x0a, 0x05)]], /tensor "x": a valid protobuf message/],
  ] as [string, [string, Uint8Array][], RegExp][])('%s', (_, entries, message) => {
    expect(() => bundle(entries)).toThrow(FormatError);
    expect(() => bundle(entries)).toThrow(message);
  });

  test('a key that is not UTF-8', () => {
    const builder = new TableBuilder();
    builder.add(new Uint8Array(0), header);
    builder.add(Uint8Array.of(0x61, 0xff), f32(8));
    expect(() => decodeTensorBundle(builder.finish(), [new Uint8Array(16)])).toThrow(/entry "a\\xff": a tensor name in UTF-8/);
  });

  test.each([
    ['big-endian data', new WireWriter().varint(1, 1).varint(2, 1).message(3, (v) => v.varint(1, 1)).finish(), /big-endian checkpoints are not supported/],
    ['a newer format', new WireWriter().varint(1, 1).message(3, (v) => v.varint(1, 2).varint(2, 2)).finish(), /readable by format version 1 \(it needs 2\)/],
    ['a bad consumer', new WireWriter().varint(1, 1).message(3, (v) => v.varint(1, 1).packedVarints(3, [1])).finish(), /bad consumer/],
    ['no shards', new WireWriter().message(3, (v) => v.varint(1, 1)).finish(), /at least 1 data file/],
  ])('a header with %s', (_, headerBytes, message) => {
    expect(() => bundle([], headerBytes)).toThrow(message);
  });

  test('no header entry', () => {
    const builder = new TableBuilder();
    builder.add(text('x'), f32(8));
    expect(() => decodeTensorBundle(builder.finish(), [new Uint8Array(16)])).toThrow(/the bundle header \(an entry with the empty key\)/);
  });

  test('missing files are FormatErrors naming the file', () => {
    expect(() => readTensorBundle(join(tmp, 'nowhere', 'model'))).toThrow(/nowhere\/model\.index: file: a readable file \(ENOENT\)/);
    const p = join(mkdtempSync(join(tmp, 'nodata-')), 'model');
    writeTensorBundle(p, new Map([['x', Tensor.from('float32', [], [1])]]));
    rmSync(`${p}.data-00000-of-00001`);
    expect(() => readTensorBundle(p)).toThrow(/model\.data-00000-of-00001: file: a readable file \(ENOENT\)/);
  });

  test('a memory source keeps tensors as views into the data file bytes', () => {
    const t = bundle([['x', f32(8)]]).tensors.get('x')!;
    expect(t.source).toBeInstanceOf(MemorySource);
  });
});
