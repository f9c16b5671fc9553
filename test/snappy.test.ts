import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { SnappyError, snappyDecompress, snappyMaxExpansion, snappyUncompressedLength } from '../src/core/snappy.js';

/**
 * A small Snappy encoder for tests only: greedy 4-byte matches, and `variant` picks among the
 * encodings the format allows (literal length forms, the three copy kinds) so the decoder sees
 * all of them, including overlapping copies.
 */
function compress(input: Uint8Array, variant = 0): Uint8Array {
  const out: number[] = [];
  let n = input.length;
  do {
    out.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  const literal = (from: number, to: number): void => {
    let at = from;
    while (at < to) {
      const len = Math.min(to - at, variant % 3 === 0 ? 60 : 70000);
      if (len <= 60 && variant % 2 === 0) out.push((len - 1) << 2);
      else {
        const bytes = len - 1 < 0x100 ? 1 : len - 1 < 0x10000 ? 2 : len - 1 < 0x1000000 ? 3 : 4;
        out.push((59 + bytes) << 2);
        for (let k = 0; k < bytes; k++) out.push(((len - 1) >>> (8 * k)) & 0xff);
      }
      for (let i = at; i < at + len; i++) out.push(input[i]!);
      at += len;
    }
  };
  const copy = (offset: number, len: number): void => {
    while (len > 0) {
      const step = Math.min(len, 64);
      if (step >= 4 && step <= 11 && offset < 2048 && variant % 4 !== 3) {
        out.push(((offset >>> 8) << 5) | ((step - 4) << 2) | 1, offset & 0xff);
      } else if (offset < 65536 && variant % 5 !== 4) {
        out.push(((step - 1) << 2) | 2, offset & 0xff, offset >>> 8);
      } else {
        out.push(((step - 1) << 2) | 3, offset & 0xff, (offset >>> 8) & 0xff, (offset >>> 16) & 0xff, offset >>> 24);
      }
      len -= step;
    }
  };
  const table = new Map<number, number>();
  let pending = 0;
  let i = 0;
  while (i + 4 <= input.length) {
    const h = (input[i]! | (input[i + 1]! << 8) | (input[i + 2]! << 16)) ^ (input[i + 3]! << 24);
    const candidate = table.get(h);
    table.set(h, i);
    if (candidate !== undefined && input[candidate] === input[i] && input[candidate + 1] === input[i + 1] && input[candidate + 2] === input[i + 2] && input[candidate + 3] === input[i + 3]) {
      let len = 4;
      while (i + len < input.length && input[candidate + len] === input[i + len]) len++;
      literal(pending, i);
      copy(i - candidate, len);
      i += len;
      pending = i;
    } else i++;
  }
  literal(pending, input.length);
  return Uint8Array.from(out);
}

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('snappy', () => {
  test('decodes hand-made streams of each element kind', () => {
    expect(snappyDecompress(bytes(0x00), 0)).toEqual(new Uint8Array(0));
    // The format description's example: literal "xab", then copy offset 2, length 4.
    expect(snappyDecompress(bytes(0x07, 0x08, 0x78, 0x61, 0x62, 0x01, 0x02), 100)).toEqual(ascii('xababab'));
    // Literal with a 1-byte length after the tag (tag 60 << 2), 100 bytes.
    const hundred = Uint8Array.from({ length: 100 }, (_, i) => i);
    expect(snappyDecompress(bytes(100, 0xf0, 99, ...hundred), 100)).toEqual(hundred);
    // "abcd" then a 2-byte-offset copy (offset 4, length 8) and a 4-byte-offset copy (offset 12, length 2).
    expect(snappyDecompress(bytes(14, 0x0c, 0x61, 0x62, 0x63, 0x64, (7 << 2) | 2, 4, 0, (1 << 2) | 3, 12, 0, 0, 0), 14)).toEqual(
      ascii('abcdabcdabcdab'),
    );
    // Run-length: one literal byte copied 9 times at offset 1.
    expect(snappyDecompress(bytes(10, 0x00, 0x7a, (5 << 2) | 1, 1), 10)).toEqual(ascii('zzzzzzzzzz'));
  });

  test('reads the length header (varint32, at most 5 bytes)', () => {
    expect(snappyUncompressedLength(bytes(0x40))).toEqual({ length: 64, headerBytes: 1 });
    expect(snappyUncompressedLength(bytes(0xfe, 0xff, 0x7f))).toEqual({ length: 2097150, headerBytes: 3 });
    expect(snappyUncompressedLength(bytes(0xff, 0xff, 0xff, 0xff, 0x0f))).toEqual({ length: 0xffffffff, headerBytes: 5 });
    expect(() => snappyUncompressedLength(bytes(0xff, 0xff, 0xff, 0xff, 0x10))).toThrow(SnappyError);
    expect(() => snappyUncompressedLength(bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0x01))).toThrow(SnappyError);
    expect(() => snappyUncompressedLength(bytes(0x80))).toThrow(SnappyError);
    expect(() => snappyUncompressedLength(bytes())).toThrow(SnappyError);
  });

  test.each([
    ['declared length over the limit (before allocating)', bytes(0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x41), 1 << 20, /exceeds the limit/],
    ['a copy before any output', bytes(4, 0x01, 0x01), 100, /outside the 0 bytes/],
    ['copy offset 0', bytes(5, 0x00, 0x61, 0x01, 0x00), 100, /offset 0/],
    ['copy offset past the output', bytes(6, 0x00, 0x61, (1 << 2) | 1, 2), 100, /offset 2 outside/],
    ['literal past the input', bytes(5, 0x10, 0x61), 100, /runs past the input/],
    ['literal past the declared length', bytes(1, 0x04, 0x61, 0x62), 100, /overflows the declared length/],
    ['copy past the declared length', bytes(3, 0x00, 0x61, (0 << 2) | 1, 1), 100, /overflows the declared length/],
    ['truncated literal length', bytes(100, 0xf4, 0x01), 100, /truncated literal length/],
    ['truncated copies', bytes(8, 0x00, 0x61, 0x02, 0x01), 100, /truncated copy/],
    ['output shorter than declared', bytes(3, 0x00, 0x61), 100, /ends after 1 of the declared 3/],
  ])('rejects %s', (_, input, limit, message) => {
    expect(() => snappyDecompress(input, limit)).toThrow(SnappyError);
    expect(() => snappyDecompress(input, limit)).toThrow(message);
  });

  test('round-trips data through every encoding variant', () => {
    const repetitive = fc.array(fc.constantFrom(ascii('abc'), ascii('tensor'), bytes(0), bytes(0xff, 0xfe)), { maxLength: 300 }).map((parts) => {
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 3000 }), repetitive), fc.nat(59), (data, variant) => {
        const packed = compress(data, variant);
        expect(snappyDecompress(packed, data.length)).toEqual(data);
        expect(data.length).toBeLessThanOrEqual(snappyMaxExpansion(packed.length));
      }),
    );
  });

  test('long literals (2- and 3-byte lengths) and far copies (offsets beyond 64 KiB)', () => {
    const noise = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 2654435761) >>> 24);
    const data = new Uint8Array(200_000);
    data.set(noise);
    data.set(noise, 100_000);
    expect(snappyDecompress(compress(data, 1), data.length)).toEqual(data);
    expect(snappyDecompress(compress(data, 4), data.length)).toEqual(data);
  });

  test('snappyMaxExpansion bounds the densest stream (3-byte copies of 64 bytes)', () => {
    const zeros = new Uint8Array(64 * 1000 + 1);
    const packed = compress(zeros, 0);
    expect(snappyDecompress(packed, zeros.length)).toEqual(zeros);
    expect(zeros.length).toBeLessThanOrEqual(snappyMaxExpansion(packed.length));
  });

  test('hostile input: only SnappyError, and never more output than the limit', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(5000), (input, limit) => {
        try {
          expect(snappyDecompress(input, limit).length).toBeLessThanOrEqual(limit);
        } catch (err) {
          expect(err).toBeInstanceOf(SnappyError);
        }
      }),
      { numRuns: 5000 },
    );
  });

  test('mutated valid streams: only SnappyError', () => {
    const base = compress(ascii('the quick brown fox jumps over the lazy dog; the quick brown fox, again and again and again'), 7);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.nat(255)), { minLength: 1, maxLength: 4 }), (edits) => {
        const input = base.slice();
        for (const [at, value] of edits) input[at] = value;
        try {
          snappyDecompress(input, 1 << 16);
        } catch (err) {
          expect(err).toBeInstanceOf(SnappyError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
