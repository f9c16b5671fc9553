import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { byteLengthOf } from '../src/core/dtypes.js';
import { FormatError } from '../src/core/errors.js';
import { elementCount } from '../src/core/shape.js';
import { parseSafetensors, readSafetensorsFile, SAFETENSORS_DTYPES, serializeSafetensors, type SafetensorsFile } from '../src/formats/safetensors/index.js';
import { build, errorName, headerText, REAL_FILES, VECTORS } from './safetensors.helpers.js';

/**
 * Property: whatever the bytes, parseSafetensors either returns tensors whose byte length matches
 * their shape and dtype, or throws a FormatError carrying a reference error name. Anything else
 * (RangeError, TypeError, a hang) is a bug. Inputs are mutations of real files and test vectors.
 */

const ERROR_NAMES = [
  'HeaderTooSmall',
  'HeaderTooLarge',
  'InvalidHeaderLength',
  'InvalidHeader',
  'InvalidHeaderDeserialization',
  'InvalidOffset',
  'ValidationOverflow',
  'MisalignedSlice',
  'TensorInvalidInfo',
  'MetadataIncompleteBuffer',
];

const bases: Uint8Array[] = [
  ...readdirSync(VECTORS)
    .filter((f) => f.endsWith('.safetensors'))
    .map((f) => new Uint8Array(readFileSync(join(VECTORS, f)))),
  ...Object.values(REAL_FILES).map((p) => new Uint8Array(readFileSync(p))),
];

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** Parses and checks the property; returns the outcome ("ok" or the error name). */
function check(bytes: Uint8Array): string {
  let parsed: SafetensorsFile;
  try {
    parsed = parseSafetensors(bytes, 'fuzz.safetensors');
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
    const name = errorName(error);
    expect(ERROR_NAMES).toContain(name);
    return name!;
  }
  for (const tensor of parsed.tensors.values()) {
    const count = elementCount(tensor.shape);
    expect(count).toBeDefined();
    const view = tensor.bytes();
    expect(view.byteLength).toBe(byteLengthOf(tensor.dtype, count!));
    // A view into the input, inside its data section.
    expect(view.buffer).toBe(bytes.buffer);
    expect(view.byteOffset).toBeGreaterThanOrEqual(bytes.byteOffset + parsed.dataOffset);
    expect(view.byteOffset + view.byteLength).toBeLessThanOrEqual(bytes.byteOffset + bytes.byteLength);
  }
  return 'ok';
}

describe('byte-level mutations', () => {
  const base = fc.constantFrom(...bases);

  test('random byte flips', () => {
    const flips = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(base, flips, (b, edits) => {
        const bytes = Uint8Array.from(b);
        if (bytes.byteLength > 0) for (const [at, value] of edits) bytes[at % bytes.byteLength] = value;
        check(bytes);
      }),
      { numRuns: 800 },
    );
  });

  test('flips concentrated in the header', () => {
    fc.assert(
      fc.property(base, fc.nat(), fc.constantFrom(0x22, 0x2c, 0x3a, 0x5b, 0x5d, 0x7b, 0x7d, 0x30, 0x39, 0x2d, 0x2e, 0x65, 0x5c, 0x20, 0xff), (b, at, value) => {
        const bytes = Uint8Array.from(b);
        if (bytes.byteLength > 8) bytes[8 + (at % Math.min(bytes.byteLength - 8, 2000))] = value;
        check(bytes);
      }),
      { numRuns: 800 },
    );
  });

  test('truncations and insertions', () => {
    fc.assert(
      fc.property(base, fc.nat(), fc.uint8Array({ minLength: 0, maxLength: 16 }), fc.boolean(), (b, at, insert, truncate) => {
        const cut = at % (b.byteLength + 1);
        const bytes = truncate ? b.slice(0, cut) : concat(b.subarray(0, cut), insert, b.subarray(cut));
        check(bytes);
      }),
      { numRuns: 800 },
    );
  });

  test('header length rewrites', () => {
    const length = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 200n }), fc.constantFrom(100_000_000n, 100_000_001n, 2n ** 63n, 2n ** 64n - 1n));
    fc.assert(
      fc.property(base, length, fc.integer({ min: -9, max: 9 }), fc.boolean(), (b, n, delta, relative) => {
        if (b.byteLength < 8) return;
        const bytes = Uint8Array.from(b);
        const view = new DataView(bytes.buffer);
        const value = relative ? view.getBigUint64(0, true) + BigInt(delta) : n;
        view.setBigUint64(0, BigInt.asUintN(64, value), true);
        check(bytes);
      }),
      { numRuns: 600 },
    );
  });
});

describe('JSON-level mutations', () => {
  /**
   * A header as editable text: `name` is the key's JSON text (quotes included, so mutations can
   * write escapes), `value` is either fields (key -> JSON text) or raw JSON text.
   */
  type Entry = { name: string; value: [string, string][] | string };
  interface Doc {
    entries: Entry[];
    data: Uint8Array;
  }

  function toDoc(bytes: Uint8Array): Doc | undefined {
    if (bytes.byteLength < 8) return undefined;
    try {
      const parsed = parseSafetensors(bytes, 'base');
      const header = JSON.parse(headerText(bytes)) as Record<string, unknown>;
      const entries = Object.entries(header).map(([name, value]): Entry => {
        if (name === '__metadata__') return { name: JSON.stringify(name), value: JSON.stringify(value) };
        return { name: JSON.stringify(name), value: Object.entries(value as object).map(([k, v]) => [k, JSON.stringify(v)]) };
      });
      return { entries, data: bytes.subarray(parsed.dataOffset) };
    } catch {
      return undefined;
    }
  }

  const docs = bases.map(toDoc).filter((d): d is Doc => d !== undefined);

  const integerText = fc.oneof(
    { arbitrary: fc.nat({ max: 40 }).map(String), weight: 4 },
    fc.bigInt({ min: 0n, max: 2n ** 64n + 16n }).map(String),
    fc.constantFrom('-1', '-0', '1.0', '1e0', '01', '9007199254740993', '18446744073709551615', '18446744073709551616', '4294967296', '"1"', 'null', '[]'),
  );
  const dtypeText = fc.oneof(fc.constantFrom(...SAFETENSORS_DTYPES), fc.constantFrom('f32', 'F8', 'X', '', 'F32 ', 'I32\\u0000')).map((s) => `"${s}"`);
  const junkValue = fc.constantFrom('null', '[]', '"x"', '1', '{}', '{"dtype":"F32"}', '{"a":"b"}', '{"a":1}', '{"a":"b","a":"c"}', '{"__proto__":"x"}', 'true');

  type Mutation = (doc: Doc) => void;
  const at = <T>(list: T[], i: number): T | undefined => (list.length === 0 ? undefined : list[i % list.length]);
  const fieldsOf = (doc: Doc, i: number) => {
    const entry = at(doc.entries, i);
    return entry && Array.isArray(entry.value) ? entry.value : undefined;
  };
  const setField = (doc: Doc, i: number, key: string, text: string) => {
    const fields = fieldsOf(doc, i);
    const field = fields?.find(([k]) => k === key);
    if (field) field[1] = text;
  };

  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.tuple(fc.nat(), dtypeText).map(([i, text]): Mutation => (doc) => setField(doc, i, 'dtype', text)),
    fc.tuple(fc.nat(), fc.array(integerText, { maxLength: 4 })).map(([i, dims]): Mutation => (doc) => setField(doc, i, 'shape', `[${dims.join(',')}]`)),
    fc.tuple(fc.nat(), fc.array(integerText, { minLength: 1, maxLength: 3 })).map(([i, offs]): Mutation => (doc) => setField(doc, i, 'data_offsets', `[${offs.join(',')}]`)),
    fc.tuple(fc.nat(), fc.nat({ max: 64 }), fc.integer({ min: -8, max: 8 })).map(([i, begin, len]): Mutation => (doc) => setField(doc, i, 'data_offsets', `[${begin},${begin + len}]`)),
    fc.tuple(fc.nat(), fc.constantFrom('extra', 'dtype', 'shape', 'data_offsets', 'offsets'), junkValue).map(([i, key, text]): Mutation => (doc) => fieldsOf(doc, i)?.push([key, text])),
    fc.tuple(fc.nat(), fc.nat()).map(([i, j]): Mutation => (doc) => {
      const fields = fieldsOf(doc, i);
      if (fields && fields.length > 0) fields.splice(j % fields.length, 1);
    }),
    fc.nat().map((i): Mutation => (doc) => {
      const entry = at(doc.entries, i);
      if (entry) doc.entries.push(structuredClone(entry));
    }),
    fc.tuple(fc.nat(), fc.nat(), fc.boolean(), fc.constantFrom('"__metadata__"', '""', '"x"', '"\\u00e9"', '"\\ud800"', '"a\\"', "'x'")).map(
      ([i, j, copy, fresh]): Mutation =>
        (doc) => {
          // Reuse another tensor's name (a duplicate) or write a new, possibly invalid, key.
          const entry = at(doc.entries, i);
          if (entry) entry.name = copy ? (at(doc.entries, j)?.name ?? fresh) : fresh;
        },
    ),
    fc.tuple(fc.nat(), junkValue).map(([i, text]): Mutation => (doc) => {
      const entry = at(doc.entries, i);
      if (entry) entry.value = text;
    }),
    junkValue.map((text): Mutation => (doc) => doc.entries.unshift({ name: '"__metadata__"', value: text })),
    fc.tuple(fc.nat(), fc.nat()).map(([i, j]): Mutation => (doc) => {
      // Swap two tensors' offsets: shapes no longer match, or the order changes.
      const a = fieldsOf(doc, i)?.find(([k]) => k === 'data_offsets');
      const b = fieldsOf(doc, j)?.find(([k]) => k === 'data_offsets');
      if (a && b) [a[1], b[1]] = [b[1], a[1]];
    }),
    fc.tuple(fc.nat(), fc.constantFrom('F4', 'F6_E2M3', 'F6_E3M2'), fc.nat({ max: 9 })).map(([i, code, n]): Mutation => (doc) => {
      // Sub-byte dtypes: odd totals must be MisalignedSlice, whole bytes may pass.
      setField(doc, i, 'dtype', `"${code}"`);
      setField(doc, i, 'shape', `[${n}]`);
    }),
    fc.nat().map((i): Mutation => (doc) => {
      doc.entries = doc.entries.filter((_, k) => k !== i % Math.max(1, doc.entries.length));
    }),
  );

  function render(doc: Doc): string {
    const entries = doc.entries.map(({ name, value }) => {
      const text = Array.isArray(value) ? `{${value.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}` : value;
      return `${name}:${text}`;
    });
    return `{${entries.join(',')}}`;
  }

  /** Data matching the largest END the header declares (when readable), so deep checks run too. */
  function fittingData(text: string, data: Uint8Array): Uint8Array {
    let end = 0;
    for (const m of text.matchAll(/"data_offsets":\[(\d{1,7}),(\d{1,7})\]/g)) end = Math.max(end, Number(m[2]));
    return end <= data.byteLength ? data.subarray(0, end) : concat(data, new Uint8Array(end - data.byteLength));
  }

  const dataChoice = fc.constantFrom('same', 'fit', 'short', 'long');
  // Mostly JSON whitespace (accepted), sometimes characters serde_json refuses around the object.
  const padding = fc.tuple(
    fc.oneof({ arbitrary: fc.constantFrom('', ' ', '\n\t', '\r'), weight: 5 }, fc.constantFrom('\f', '\ufeff')),
    fc.oneof({ arbitrary: fc.constantFrom('', '   ', '\n'), weight: 5 }, fc.constantFrom('x', '}', '\0')),
  );

  test('mutated headers: a FormatError or consistent tensors, and accepted files round-trip', () => {
    const outcomes = new Map<string, number>();
    fc.assert(
      fc.property(fc.constantFrom(...docs), fc.array(mutation, { minLength: 1, maxLength: 4 }), dataChoice, padding, (base, mutations, choice, [before, after]) => {
        const doc: Doc = { entries: structuredClone(base.entries), data: base.data };
        for (const mutate of mutations) mutate(doc);
        const text = before + render(doc) + after;
        const data = choice === 'same' ? doc.data : choice === 'fit' ? fittingData(text, doc.data) : choice === 'short' ? doc.data.subarray(0, Math.max(0, doc.data.byteLength - 1)) : concat(doc.data, Uint8Array.of(0));
        const bytes = build(text, data);
        const result = check(bytes);
        outcomes.set(result, (outcomes.get(result) ?? 0) + 1);
        if (result !== 'ok') return;
        // Whatever we accept, we can write back out, and reading that gives the same tensors.
        const parsed = parseSafetensors(bytes, 'fuzz');
        const again = parseSafetensors(serializeSafetensors(parsed.tensors, parsed.metadata), 'again');
        expect(again.metadata).toEqual(parsed.metadata);
        for (const [name, tensor] of parsed.tensors) {
          const back = again.tensors.get(name)!;
          expect([back.dtype, back.shape]).toEqual([tensor.dtype, tensor.shape]);
          expect(Buffer.compare(back.bytes(), tensor.bytes())).toBe(0);
        }
      }),
      { numRuns: 4000 },
    );
    // The mutations must reach the deep checks and the success path, not only fail to parse.
    expect(outcomes.get('ok')).toBeGreaterThan(100);
    for (const name of ['InvalidOffset', 'TensorInvalidInfo', 'MisalignedSlice', 'MetadataIncompleteBuffer']) expect(outcomes.get(name)).toBeGreaterThan(5);
  });
});

describe('the file reader agrees with the in-memory parser', () => {
  const dir = mkdtempSync(join(tmpdir(), 'modelbridge-fuzz-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('same outcome and bytes, eager and lazy', () => {
    const path = join(dir, 'case.safetensors');
    const outcome = (read: () => SafetensorsFile): SafetensorsFile | string => {
      try {
        return read();
      } catch (error) {
        if (!(error instanceof FormatError)) throw error;
        return error.message;
      }
    };
    fc.assert(
      fc.property(fc.constantFrom(...bases.filter((b) => b.byteLength < 100_000)), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.nat(), (b, edits, cut) => {
        const bytes = Uint8Array.from(b.subarray(0, b.byteLength - (cut % 3 === 0 ? cut % 5 : 0)));
        if (bytes.byteLength > 0) for (const [at, value] of edits) bytes[at % bytes.byteLength] = value;
        writeFileSync(path, bytes);
        const memory = outcome(() => parseSafetensors(bytes, path));
        for (const lazy of [false, true]) {
          const file = outcome(() => readSafetensorsFile(path, { lazy }));
          if (typeof memory === 'string' || typeof file === 'string') {
            expect(file).toEqual(memory);
            continue;
          }
          expect([...file.tensors.keys()]).toEqual([...memory.tensors.keys()]);
          for (const [name, tensor] of file.tensors) expect(Buffer.compare(tensor.bytes(), memory.tensors.get(name)!.bytes())).toBe(0);
        }
      }),
      { numRuns: 200 },
    );
  });
});
