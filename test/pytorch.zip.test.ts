import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ByteSource } from '../src/core/source.js';
import { Tensor } from '../src/core/tensor.js';
import { crc32 } from '../src/formats/pytorch/crc32.js';
import { parsePytorch, readPytorchFile } from '../src/formats/pytorch/reader.js';
import { writePytorchFile } from '../src/formats/pytorch/writer.js';
import { openZip, parseZip } from '../src/formats/pytorch/zip.js';
import { ZipWriter } from '../src/formats/pytorch/zip-writer.js';
import { tempDir } from './cli-helpers.js';
import { fixture, formatError, python, runPython, u64, zipOf } from './fixtures/pytorch/helpers.js';

/** The ZIP layer: torch's archives round-trip byte for byte; ZIP64, prefixes, CRCs and damage. */

const temp = tempDir('modelbridge-pytorch-zip-');
afterAll(() => rmSync(temp, { recursive: true, force: true }));

const torchZips = readFileSync(fixture('PYTORCH_INDEX.tsv'), 'utf8')
  .split('\n')
  .filter((line) => line.includes('\ttorch.save zip'))
  .map((line) => line.split('\t')[0]!.slice(2));

function rewrite(bytes: Uint8Array): Uint8Array {
  const zip = parseZip(bytes, 'in.pt');
  const parts: Uint8Array[] = [];
  const writer = new ZipWriter((b) => parts.push(b.slice()));
  for (const entry of zip.entries) writer.add(entry.name, zip.read(entry, { verify: true }));
  writer.finish();
  return Buffer.concat(parts);
}

describe('the writer reproduces PyTorch archives', () => {
  it(`rewrites all ${torchZips.length} torch.save fixtures byte for byte (layout, padding, descriptors, end records)`, () => {
    expect(torchZips.length).toBeGreaterThan(50);
    for (const path of torchZips) {
      const original = new Uint8Array(readFileSync(fixture(path)));
      expect(Buffer.from(rewrite(original)).equals(Buffer.from(original)), path).toBe(true);
    }
  });

  it('writes an empty entry without a data descriptor, as miniz does', () => {
    const bytes = zipOf({ empty: new Uint8Array(0), full: new Uint8Array(3) });
    const zip = parseZip(bytes, 'x.zip');
    expect(zip.entries.map((e) => [e.name, e.flags, e.size])).toEqual([
      ['archive/empty', 0x800, 0],
      ['archive/full', 0x808, 3],
    ]);
  });
});

describe('the reader', () => {
  it('reads the central directory from the end and finds data through local headers', () => {
    const zip = openZip(fixture('burn/examples/import-model-weights/weights/mnist.pt'), { lazy: true });
    expect(zip.entries).toHaveLength(24);
    const pkl = zip.find('mnist/data.pkl')!;
    expect(zip.dataOffset(pkl)).toBe(64);
  });

  it('accounts for bytes before the archive', () => {
    const original = new Uint8Array(readFileSync(fixture('candle/candle-core/tests/test.pt')));
    const prefixed = Buffer.concat([Buffer.alloc(1000, 7), original]);
    const zip = parseZip(prefixed, 'prefixed.pt');
    expect(zip.prefix).toBe(1000);
    const plain = parseZip(original, 'test.pt');
    for (const [i, entry] of zip.entries.entries()) expect(Buffer.from(zip.read(entry, { verify: true })).equals(Buffer.from(plain.read(plain.entries[i]!)))).toBe(true);
  });

  it('reads ZIP64 directories: saturated fields, the extended-information extra field, EOCD64 and its locator', () => {
    const data = new TextEncoder().encode('zip64 payload');
    const name = new TextEncoder().encode('archive/data.bin');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(name.byteLength, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt32LE(crc32(data), 16);
    central.writeUInt32LE(0xffffffff, 20);
    central.writeUInt32LE(0xffffffff, 24);
    central.writeUInt16LE(name.byteLength, 28);
    central.writeUInt16LE(28, 30);
    central.writeUInt32LE(0xffffffff, 42);
    const extra = Buffer.from([0x01, 0x00, 24, 0x00, ...u64(BigInt(data.byteLength)), ...u64(BigInt(data.byteLength)), ...u64(0n)]);
    const body = Buffer.concat([local, name, data]);
    const cd = Buffer.concat([central, name, extra]);
    const eocd64 = Buffer.alloc(56);
    eocd64.writeUInt32LE(0x06064b50, 0);
    eocd64.writeBigUInt64LE(44n, 4);
    eocd64.writeBigUInt64LE(1n, 24);
    eocd64.writeBigUInt64LE(1n, 32);
    eocd64.writeBigUInt64LE(BigInt(cd.byteLength), 40);
    eocd64.writeBigUInt64LE(BigInt(body.byteLength), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(body.byteLength + cd.byteLength), 8);
    locator.writeUInt32LE(1, 16);
    const eocd = Buffer.alloc(22);
    eocd.writeUInt32LE(0x06054b50, 0);
    eocd.writeUInt16LE(0xffff, 8);
    eocd.writeUInt16LE(0xffff, 10);
    eocd.writeUInt32LE(0xffffffff, 12);
    eocd.writeUInt32LE(0xffffffff, 16);
    const zip = parseZip(Buffer.concat([body, cd, eocd64, locator, eocd]), 'zip64.zip');
    expect(zip.entries.map((e) => [e.name, e.size, e.headerOffset])).toEqual([['archive/data.bin', data.byteLength, 0]]);
    expect(new TextDecoder().decode(zip.read(zip.entries[0]!, { verify: true }))).toBe('zip64 payload');
  });

  it('checks CRC-32s when asked, and skips the check when the archive recorded none', () => {
    const file = fixture('burn/pytorch/tests/reader/test_data/float32.pt');
    const bytes = new Uint8Array(readFileSync(file));
    const zip = parseZip(bytes, file);
    const at = zip.dataOffset(zip.find('float32/data/0')!);
    const damaged = bytes.slice();
    damaged[at]! ^= 0x01;
    expect(formatError(() => parsePytorch(damaged, 'damaged.pt')).message).toMatch(/float32\/data\/0.*CRC-32 0x[0-9a-f]{8} as recorded, computed/);
    expect(parsePytorch(damaged, 'damaged.pt', { verifyCrc: false }).tensors.get('tensor')!.toNumbers()[0]).not.toBe(1);
  });

  it('refuses damaged directories with FormatErrors', () => {
    const bytes = new Uint8Array(readFileSync(fixture('candle/candle-core/tests/test.pt')));
    expect(formatError(() => parseZip(bytes.subarray(0, bytes.byteLength - 30), 'cut.pt')).message).toMatch(/end-of-central-directory/);
    const dup = zipOf({ a: new Uint8Array(1) });
    const twice = parseZip(dup, 'x');
    expect(twice.entries).toHaveLength(1);
    const duplicated = Buffer.from(zipOf({ 'data.pkl': new Uint8Array(1), 'data.pkM': new Uint8Array(1) }));
    duplicated.set(Buffer.from('archive/data.pkl'), duplicated.lastIndexOf(Buffer.from('archive/data.pkM')));
    expect(formatError(() => parseZip(duplicated, 'dup.zip')).message).toMatch(/each name once/);
  });
});

/** Zeros with a recognisable head and tail, streamed without ever existing in memory. */
class Pattern implements ByteSource {
  constructor(readonly byteLength: number) {}
  read(): Uint8Array {
    throw new Error('too large to read at once');
  }
  *chunks(chunkSize: number): Iterable<Uint8Array> {
    const chunk = new Uint8Array(chunkSize);
    for (let at = 0; at < this.byteLength; at += chunkSize) {
      const n = Math.min(chunkSize, this.byteLength - at);
      chunk.fill(0);
      if (at === 0) chunk.set([1, 2, 3]);
      if (at + n === this.byteLength) chunk.set([9, 8, 7], n - 3);
      yield chunk.subarray(0, n);
    }
  }
}

// Writes a 4 GiB storage; opt in with MODELBRIDGE_LARGE_TESTS=1 (about a minute, 4.3 GB of disk).
describe.skipIf(!process.env.MODELBRIDGE_LARGE_TESTS || !python)('ZIP64 archives beyond 4 GiB', () => {
  it('writes entries larger than and beyond 0xFFFFFFFF that torch.load reads (mmap too)', () => {
    const file = join(temp, 'huge.pt');
    const big = new Tensor('uint8', [2 ** 32 + 64], new Pattern(2 ** 32 + 64));
    writePytorchFile(file, new Map([['big', big], ['after', Tensor.from('float32', [2], [1.5, -2])]]));
    expect(statSync(file).size).toBeGreaterThan(2 ** 32);
    const read = readPytorchFile(file);
    expect(read.tensors.get('after')!.toNumbers()).toEqual([1.5, -2]);
    const out = runPython(
      `
import json, sys, torch
sd = torch.load(sys.argv[1], weights_only=True, mmap=True)
b = sd['big']
print(json.dumps([b.numel(), b[:3].tolist(), b[-3:].tolist(), sd['after'].tolist()]))`,
      [file],
    );
    expect(JSON.parse(out)).toEqual([2 ** 32 + 64, [1, 2, 3], [9, 8, 7], [1.5, -2]]);
  }, 600_000);
});
