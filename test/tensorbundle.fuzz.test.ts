import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { crc32c, maskCrc32c } from '../src/core/crc32c.js';
import { FormatError } from '../src/core/errors.js';
import { WireReader, WireWriter } from '../src/core/protowire.js';
import { decodeTensorBundle, TableBuilder, type TensorBundle } from '../src/formats/tensorbundle/index.js';
import { FIXTURES } from './cli-helpers.js';

/**
 * Property: whatever the bytes of the index and data files, decodeTensorBundle either returns
 * tensors or throws FormatError: never a RangeError, TypeError or hang. Inputs are the real
 * checkpoints of test/fixtures/upstream (snappy-compressed indexes included), mutated blindly (caught by
 * the block CRCs) and mutated with the block CRC fixed up (so the parsers behind it are reached).
 */

interface Base {
  index: Uint8Array;
  data: Uint8Array;
  /** [offset, size] of every block in the index, for CRC-preserving mutations. */
  blocks: [number, number][];
}

function findIndexes(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const path = join(dir, d.name);
    if (d.isDirectory()) return findIndexes(path);
    return d.name.endsWith('.index') ? [path] : [];
  });
}

function blocksOf(index: Uint8Array): [number, number][] {
  const footer = new WireReader(index, index.length - 48, index.length - 8);
  const meta: [number, number] = [footer.varint(), footer.varint()];
  const idx: [number, number] = [footer.varint(), footer.varint()];
  const blocks = [meta, idx];
  // The index block of these small files holds full keys (restart interval 1): shared is always 0.
  const contents = index.subarray(idx[0], idx[0] + idx[1]);
  const restarts = new DataView(contents.buffer, contents.byteOffset).getUint32(contents.length - 4, true);
  const r = new WireReader(contents, 0, contents.length - 4 * (restarts + 1));
  if (index[idx[0] + idx[1]] === 0) {
    while (!r.done) {
      r.varint();
      const keyLength = r.varint();
      const valueLength = r.varint();
      r.pos += keyLength;
      const h = new WireReader(contents, r.pos, r.pos + valueLength);
      blocks.push([h.varint(), h.varint()]);
      r.pos += valueLength;
    }
  }
  return blocks;
}

const bases: Base[] = findIndexes(FIXTURES).map((path) => {
  const index = new Uint8Array(readFileSync(path));
  const data = new Uint8Array(readFileSync(path.replace(/\.index$/, '.data-00000-of-00001')));
  return { index, data, blocks: blocksOf(index) };
});

/** A hand-built bundle with several small blocks, so block boundaries are fuzzed too. */
bases.push(
  (() => {
    const builder = new TableBuilder({ blockSize: 64, restartInterval: 3 });
    builder.add(new Uint8Array(0), new WireWriter().varint(1, 1).message(3, (v) => v.varint(1, 1)).finish());
    const data = new Uint8Array(64).map((_, i) => i);
    for (let i = 0; i < 12; i++) {
      const entry = new WireWriter()
        .varint(1, 1)
        .message(2, (s) => s.message(2, (d) => d.varint(1, 1)))
        .varint(4, 4 * i)
        .varint(5, 4)
        .fixed32(6, maskCrc32c(crc32c(data.subarray(4 * i, 4 * i + 4))))
        .finish();
      builder.add(new TextEncoder().encode(`var/${String(i).padStart(2, '0')}`), entry);
    }
    const index = builder.finish();
    return { index, data, blocks: blocksOf(index) };
  })(),
);

/** Decodes and checks the property; returns the outcome ("ok" or the error name). */
function check(index: Uint8Array, data: Uint8Array, verify: boolean): string {
  let bundle: TensorBundle;
  try {
    bundle = decodeTensorBundle(index, [data], { verify });
  } catch (err) {
    if (err instanceof FormatError) return 'FormatError';
    throw err;
  }
  for (const t of bundle.tensors.values()) {
    if (t.dtype === 'string') expect(t.strings!.length).toBe(t.size);
    else expect(t.bytes().byteLength).toBe(t.byteLength);
  }
  return 'ok';
}

type Edit = { at: number; value: number };
const edits = fc.array(fc.record({ at: fc.nat(), value: fc.nat(255) }), { minLength: 1, maxLength: 6 });

function applied(bytes: Uint8Array, list: Edit[], from = 0, to = bytes.length): Uint8Array {
  const out = bytes.slice();
  if (to <= from) return out;
  for (const { at, value } of list) out[from + (at % (to - from))] = value;
  return out;
}

describe('TensorBundle fuzz', () => {
  test('the unmodified bases read', () => {
    for (const b of bases) expect(check(b.index, b.data, true)).toBe('ok');
  });

  test('blind mutations of the index and data files', () => {
    fc.assert(
      fc.property(fc.nat(bases.length - 1), edits, fc.boolean(), fc.boolean(), (which, list, inData, verify) => {
        const b = bases[which]!;
        check(inData ? b.index : applied(b.index, list), inData ? applied(b.data, list) : b.data, verify);
      }),
      { numRuns: 3000 },
    );
  });

  test('truncations and extensions', () => {
    fc.assert(
      fc.property(fc.nat(bases.length - 1), fc.nat(), fc.uint8Array({ maxLength: 64 }), (which, cut, tail) => {
        const b = bases[which]!;
        const index = b.index.subarray(0, cut % (b.index.length + 1));
        const grown = new Uint8Array(index.length + tail.length);
        grown.set(index);
        grown.set(tail, index.length);
        check(index, b.data, true);
        check(grown, b.data, true);
        check(b.index, b.data.subarray(0, cut % (b.data.length + 1)), true);
      }),
      { numRuns: 2000 },
    );
  });

  test('mutations inside a block with its CRC fixed (reaching snappy, block and entry parsing)', () => {
    fc.assert(
      fc.property(fc.nat(bases.length - 1), fc.nat(), edits, fc.boolean(), (which, blockIndex, list, verify) => {
        const b = bases[which]!;
        const [offset, size] = b.blocks[blockIndex % b.blocks.length]!;
        const index = applied(b.index, list, offset, offset + size);
        const crc = maskCrc32c(crc32c(index.subarray(offset, offset + size + 1)));
        new DataView(index.buffer).setUint32(offset + size + 1, crc, true);
        check(index, b.data, verify);
      }),
      { numRuns: 5000 },
    );
  });

  test('arbitrary entry values in a well-formed table', () => {
    const header = new WireWriter().varint(1, 1).message(3, (v) => v.varint(1, 1)).finish();
    const field = fc.oneof(
      fc.tuple(fc.constantFrom(1, 3, 4, 5), fc.oneof(fc.integer({ min: -5, max: 30 }), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }))),
      fc.tuple(fc.constant(2), fc.array(fc.oneof(fc.integer({ min: -2, max: 70 }), fc.constant(2 ** 40)), { maxLength: 5 })),
      fc.tuple(fc.constant(6), fc.nat({ max: 0xffffffff })),
      fc.tuple(fc.integer({ min: 7, max: 20 }), fc.uint8Array({ maxLength: 8 })),
    );
    fc.assert(
      fc.property(fc.array(fc.array(field, { maxLength: 7 }), { minLength: 1, maxLength: 5 }), fc.uint8Array({ maxLength: 200 }), (entries, data) => {
        const builder = new TableBuilder();
        builder.add(new Uint8Array(0), header);
        entries.forEach((fields, i) => {
          const w = new WireWriter();
          for (const [n, v] of fields) {
            if (n === 2) w.message(2, (s) => (v as number[]).forEach((d) => s.message(2, (m) => m.varint(1, d))));
            else if (n === 6) w.fixed32(6, v as number);
            else if (v instanceof Uint8Array) w.bytes(n, v);
            else w.varint(n, BigInt.asIntN(64, BigInt(v as number | bigint)));
          }
          builder.add(new TextEncoder().encode(`t${i}`), w.finish());
        });
        check(builder.finish(), data, false);
      }),
      { numRuns: 3000 },
    );
  });
});
