import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../src/core/errors.js';
import { unpickle } from '../src/formats/pytorch/pickle.js';
import { parsePytorch } from '../src/formats/pytorch/reader.js';
import { torchResolver } from '../src/formats/pytorch/torch-globals.js';
import { parseZip } from '../src/formats/pytorch/zip.js';
import { fixture, local, zipOf } from './fixtures/pytorch/helpers.js';

/**
 * Property: whatever the bytes, the reader returns tensors whose bytes can be read and match their
 * declared length, or throws a FormatError. Anything else (TypeError, RangeError, a hang, a stack
 * overflow) is a bug. Inputs are mutations of real checkpoints: the zip as a whole (where CRCs
 * catch most damage), data.pkl re-zipped with valid CRCs (so the unpickler sees the damage),
 * legacy files (no CRCs at all), and raw opcode soup.
 */

const ZIPS = [
  'burn/pytorch/tests/reader/test_data/float32.pt',
  'burn/pytorch/tests/reader/test_data/checkpoint.pt',
  'burn/pytorch/tests/reader/test_data/parameter.pt',
  'candle/candle-core/tests/fortran_tensor_3d.pth',
  'tch-rs/tests/foo.pt',
  'picklescan/real/new_pytorch_model.bin',
].map((f) => new Uint8Array(readFileSync(fixture(f))));
const LOCAL = ['views.pt', 'dtypes.pt'].map((f) => new Uint8Array(readFileSync(local(f))));
const LEGACY = [
  'burn/pytorch/tests/reader/test_data/simple_legacy.pt',
  'burn/pytorch/tests/reader/test_data/legacy_uncloned_views.pt',
  'burn/pytorch/tests/reader/test_data/legacy_shared_storage.pt',
].map((f) => new Uint8Array(readFileSync(fixture(f))));

function check(bytes: Uint8Array): void {
  try {
    const read = parsePytorch(bytes, 'fuzz.pt');
    for (const t of read.tensors.values()) expect(t.bytes().byteLength).toBe(t.byteLength);
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
  }
}

/** A base file with 1-8 edits: overwrite a byte, insert or delete a run, or truncate. */
const mutated = (bases: Uint8Array[]) =>
  fc
    .tuple(
      fc.integer({ min: 0, max: bases.length - 1 }),
      fc.array(fc.tuple(fc.constantFrom('set', 'insert', 'delete', 'truncate'), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 16 })), { minLength: 1, maxLength: 8 }),
    )
    .map(([i, edits]) => {
      let b = Array.from(bases[i]!);
      for (const [kind, at, value, length] of edits) {
        const pos = at % (b.length + 1);
        if (kind === 'set' && pos < b.length) b[pos] = value;
        else if (kind === 'insert') b.splice(pos, 0, ...Array.from({ length }, (_, k) => (value + k * 37) & 0xff));
        else if (kind === 'delete') b.splice(pos, length);
        else if (kind === 'truncate') b = b.slice(0, pos);
      }
      return Uint8Array.from(b);
    });

/** data.pkl of a real checkpoint, edited, then re-zipped with the original storages and valid CRCs. */
function rezipped(base: Uint8Array) {
  const zip = parseZip(base, 'base.pt');
  const records = zip.entries.map((e) => [e.name, zip.read(e)] as const);
  const pkl = records.find(([n]) => n.endsWith('/data.pkl'))!;
  const folder = pkl[0].slice(0, -'data.pkl'.length);
  return mutated([pkl[1]]).map((pickle) => {
    const out: Record<string, Uint8Array> = {};
    for (const [name, data] of records) out[name.slice(folder.length)] = name === pkl[0] ? pickle : data;
    return zipOf(out, folder.slice(0, -1));
  });
}

describe('fuzzing the reader', () => {
  it('mutated zip checkpoints give tensors or a FormatError', () => {
    fc.assert(fc.property(mutated([...ZIPS, ...LOCAL]), check), { numRuns: 400 });
  });

  it('mutated data.pkl inside valid zips gives tensors or a FormatError', () => {
    for (const base of [...ZIPS.slice(0, 4), ...LOCAL]) fc.assert(fc.property(rezipped(base), check), { numRuns: 150 });
  });

  it('mutated legacy checkpoints give tensors or a FormatError', () => {
    fc.assert(fc.property(mutated(LEGACY), check), { numRuns: 400 });
  });

  it('random opcode soup gives a value or a FormatError', () => {
    const opcodes = Array.from('()0123FIJKLMNPQRSTUVXabcdeghijlopqrstu}]', (c) => c.charCodeAt(0)).concat(Array.from({ length: 25 }, (_, i) => 0x80 + i));
    const soup = fc.array(fc.oneof(fc.constantFrom(...opcodes), fc.integer({ min: 0, max: 255 })), { maxLength: 200 }).map((a) => Uint8Array.from(a));
    fc.assert(
      fc.property(soup, (bytes) => {
        try {
          unpickle(bytes, { file: 'soup.pkl', where: 'soup', resolver: torchResolver({ torchScript: true }), persistentLoad: () => null });
        } catch (error) {
          if (!(error instanceof FormatError)) throw error;
        }
      }),
      { numRuns: 2000 },
    );
  });
});
