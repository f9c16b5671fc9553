import fc from 'fast-check';
import protobuf from 'protobufjs';
import { describe, expect, test } from 'vitest';
import { encodeVarint, WireError, WireReader, WireType, WireWriter } from '../src/core/protowire.js';

/**
 * src/core/protowire.ts (the protobuf wire reader/writer the TensorBundle code is built on),
 * checked against protobufjs as an independent implementation: the same field sequence must give
 * the same bytes, and our reader must read back every value.
 */

type Op =
  | { kind: 'int64'; field: number; value: bigint }
  | { kind: 'uint64'; field: number; value: bigint }
  | { kind: 'sint64'; field: number; value: bigint }
  | { kind: 'int32'; field: number; value: number }
  | { kind: 'sint32'; field: number; value: number }
  | { kind: 'bool'; field: number; value: boolean }
  | { kind: 'fixed32'; field: number; value: number }
  | { kind: 'fixed64'; field: number; value: bigint }
  | { kind: 'double'; field: number; value: number }
  | { kind: 'float'; field: number; value: number }
  | { kind: 'string'; field: number; value: string }
  | { kind: 'bytes'; field: number; value: Uint8Array };

const field = fc.integer({ min: 1, max: 0x1fffffff });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('int64' as const), field, value: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) }),
  fc.record({ kind: fc.constant('uint64' as const), field, value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
  fc.record({ kind: fc.constant('sint64' as const), field, value: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) }),
  fc.record({ kind: fc.constant('int32' as const), field, value: fc.integer() }),
  fc.record({ kind: fc.constant('sint32' as const), field, value: fc.integer() }),
  fc.record({ kind: fc.constant('bool' as const), field, value: fc.boolean() }),
  fc.record({ kind: fc.constant('fixed32' as const), field, value: fc.nat({ max: 0xffffffff }) }),
  fc.record({ kind: fc.constant('fixed64' as const), field, value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
  fc.record({ kind: fc.constant('double' as const), field, value: fc.double({ noNaN: true }) }),
  fc.record({ kind: fc.constant('float' as const), field, value: fc.float({ noNaN: true }) }),
  fc.record({ kind: fc.constant('string' as const), field, value: fc.string({ unit: 'grapheme' }) }),
  fc.record({ kind: fc.constant('bytes' as const), field, value: fc.uint8Array({ maxLength: 300 }) }),
);

const WIRE: Record<Op['kind'], number> = {
  int64: 0, uint64: 0, sint64: 0, int32: 0, sint32: 0, bool: 0, fixed32: 5, fixed64: 1, double: 1, float: 5, string: 2, bytes: 2,
};

function writeOurs(ops: readonly Op[]): Uint8Array {
  const w = new WireWriter();
  for (const o of ops) {
    switch (o.kind) {
      case 'int64':
      case 'uint64':
      case 'int32':
        w.varint(o.field, o.value);
        break;
      case 'sint64':
      case 'sint32':
        w.sint(o.field, o.value);
        break;
      case 'bool':
        w.bool(o.field, o.value);
        break;
      case 'fixed32':
        w.fixed32(o.field, o.value);
        break;
      case 'fixed64':
        w.fixed64(o.field, o.value);
        break;
      case 'double':
        w.double(o.field, o.value);
        break;
      case 'float':
        w.float(o.field, o.value);
        break;
      case 'string':
        w.string(o.field, o.value);
        break;
      case 'bytes':
        w.bytes(o.field, o.value);
        break;
    }
  }
  return w.finish();
}

function writeProtobufjs(ops: readonly Op[]): Uint8Array {
  const w = protobuf.Writer.create();
  for (const o of ops) {
    w.uint32(((o.field << 3) | WIRE[o.kind]) >>> 0);
    if (o.kind === 'int64') w.int64(o.value.toString());
    else if (o.kind === 'uint64') w.uint64(o.value.toString());
    else if (o.kind === 'sint64') w.sint64(o.value.toString());
    else if (o.kind === 'int32') w.int32(o.value);
    else if (o.kind === 'sint32') w.sint32(o.value);
    else if (o.kind === 'bool') w.bool(o.value);
    else if (o.kind === 'fixed32') w.fixed32(o.value);
    else if (o.kind === 'fixed64') w.fixed64(o.value.toString());
    else if (o.kind === 'double') w.double(o.value);
    else if (o.kind === 'float') w.float(o.value);
    else if (o.kind === 'string') w.string(o.value);
    else w.bytes(o.value);
  }
  const out = w.finish();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

function readBack(bytes: Uint8Array, ops: readonly Op[]): void {
  const r = new WireReader(bytes);
  for (const o of ops) {
    expect(r.key()).toEqual([o.field, WIRE[o.kind]]);
    if (o.kind === 'int64') expect(r.int64()).toBe(o.value);
    else if (o.kind === 'uint64') expect(r.uint64()).toBe(o.value);
    else if (o.kind === 'sint64') expect(r.sint64()).toBe(o.value);
    else if (o.kind === 'int32') expect(r.int32()).toBe(o.value);
    else if (o.kind === 'sint32') expect(r.sint32()).toBe(o.value);
    else if (o.kind === 'bool') expect(r.bool()).toBe(o.value);
    else if (o.kind === 'fixed32') expect(r.fixed32()).toBe(o.value);
    else if (o.kind === 'fixed64') expect(r.fixed64()).toBe(o.value);
    else if (o.kind === 'double') expect(r.double()).toBe(o.value);
    else if (o.kind === 'float') expect(r.float()).toBe(o.value);
    else if (o.kind === 'string') expect(r.string()).toBe(o.value);
    else expect(r.bytes()).toEqual(o.value);
  }
  expect(r.key()).toBeUndefined();
}

describe('protowire', () => {
  test('writes the same bytes as protobufjs and reads every value back', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 12 }), (ops) => {
        const ours = writeOurs(ops);
        expect(ours).toEqual(writeProtobufjs(ops));
        readBack(ours, ops);
      }),
      { numRuns: 2000 },
    );
  });

  test('varint edge cases', () => {
    expect(encodeVarint(0)).toEqual(Uint8Array.of(0));
    expect(encodeVarint(300)).toEqual(Uint8Array.of(0xac, 0x02));
    expect(encodeVarint(2 ** 53 - 1)).toEqual(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f));
    // A negative int32/int64 is the 10-byte varint of its 64-bit two's complement.
    expect(encodeVarint(-1)).toEqual(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01));
    expect(new WireReader(encodeVarint(-1)).int64()).toBe(-1n);
    expect(new WireReader(encodeVarint(-1)).int32()).toBe(-1);
    expect(new WireReader(encodeVarint(2 ** 53 - 1)).varint()).toBe(2 ** 53 - 1);
    expect(() => new WireReader(encodeVarint(2n ** 53n)).varint()).toThrow(/exceeds 2\^53/);
    expect(() => new WireReader(encodeVarint(2n ** 32n)).varint32()).toThrow(/exceeds 32 bits/);
    expect(() => new WireReader(encodeVarint(2n ** 60n)).int64Number()).toThrow(/safe integer/);
    expect(() => new WireWriter().writeVarint(0.5)).toThrow(RangeError);
  });

  test.each([
    ['a truncated varint', [0x08, 0x80], /truncated varint/],
    ['an 11-byte varint', [0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], /exceeds 64 bits/],
    ['a tenth varint byte above 1', [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], /exceeds 64 bits/],
    ['field number 0', [0x00, 0x01], /field number 0/],
    ['wire type 7', [0x0f], /unknown wire type 7/],
    ['a length past the end', [0x0a, 0x05, 0x61], /runs past the end/],
    ['a truncated fixed32', [0x0d, 0x01, 0x02], /run past the end/],
    ['a truncated fixed64', [0x09, 0x01], /run past the end/],
    ['an unclosed group', [0x0b, 0x08, 0x01], /group not closed/],
    ['a stray end-group', [0x0c], /cannot skip wire type 4/],
    ['invalid UTF-8 in a string', [0x0a, 0x01, 0xff], /not valid UTF-8/],
  ])('reports %s as WireError with an offset', (_, input, message) => {
    const skipAll = (): void => {
      const r = new WireReader(Uint8Array.from(input));
      for (let k = r.key(); k; k = r.key()) {
        if (k[1] === WireType.LEN && input.length === 3 && input[2] === 0xff) r.string();
        else r.skip(k[1]);
      }
    };
    expect(skipAll).toThrow(WireError);
    expect(skipAll).toThrow(message);
  });

  test('skips unknown fields of every wire type, groups included', () => {
    const w = new WireWriter().varint(1, 5).fixed64(2, 7n).bytes(3, Uint8Array.of(1, 2)).fixed32(4, 9);
    // A group (field 5) holding a varint and a nested group, then the field we want.
    w.key(5, WireType.SGROUP).varint(1, 1).key(6, WireType.SGROUP).key(6, WireType.EGROUP).key(5, WireType.EGROUP);
    w.varint(9, 42);
    const r = new WireReader(w.finish());
    let found: number | undefined;
    for (let k = r.key(); k; k = r.key()) {
      if (k[0] === 9) found = r.varint();
      else r.skip(k[1]);
    }
    expect(found).toBe(42);
  });

  test('reads repeated scalars packed and unpacked', () => {
    const packed = new WireWriter().packedVarints(3, [1, 300, -1]).finish();
    const unpacked = new WireWriter().varint(3, 1).varint(3, 300).varint(3, -1).finish();
    for (const bytes of [packed, unpacked]) {
      const r = new WireReader(bytes);
      const values: number[] = [];
      for (let k = r.key(); k; k = r.key()) values.push(...r.repeated(k[1], WireType.VARINT, (s) => s.int32()));
      expect(values).toEqual([1, 300, -1]);
    }
  });

  test('embedded messages are read within their bounds', () => {
    const bytes = new WireWriter()
      .message(1, (m) => m.varint(1, 7).string(2, 'x'))
      .varint(2, 8)
      .finish();
    const r = new WireReader(bytes);
    expect(r.key()).toEqual([1, WireType.LEN]);
    const sub = r.message();
    expect(sub.key()).toEqual([1, 0]);
    expect(sub.varint()).toBe(7);
    expect(sub.key()).toEqual([2, 2]);
    expect(sub.string()).toBe('x');
    expect(sub.key()).toBeUndefined();
    expect(r.key()).toEqual([2, 0]);
    expect(r.varint()).toBe(8);
  });

  test('random bytes: the reader only ever throws WireError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (input) => {
        const r = new WireReader(input);
        try {
          for (let k = r.key(); k; k = r.key()) r.skip(k[1]);
        } catch (err) {
          expect(err).toBeInstanceOf(WireError);
        }
        expect(r.pos).toBeLessThanOrEqual(input.length);
      }),
      { numRuns: 5000 },
    );
  });
});
