import { describe, expect, it } from 'vitest';
import { bfloat16BitsToFloat32, float16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits } from '../src/core/half.js';
import { Tensor } from '../src/core/tensor.js';

describe('float16', () => {
  it('round-trips every float16 bit pattern exactly', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = float16BitsToFloat32(bits);
      const back = float32ToFloat16Bits(value);
      if (Number.isNaN(value)) expect((back & 0x7c00) === 0x7c00 && (back & 0x3ff) !== 0).toBe(true);
      else expect(back).toBe(bits);
    }
  });

  it('rounds to nearest, ties to even', () => {
    // 1 + 2^-11 lies halfway between 1 and the next float16 (1 + 2^-10): ties go to the even, 1.
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00);
    // 1 + 3*2^-11 lies halfway between 1+2^-10 (odd) and 1+2^-9 (even).
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00); // rounds up to infinity
    expect(float32ToFloat16Bits(65519)).toBe(0x7bff);
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal
    expect(float32ToFloat16Bits(3 * 2 ** -26)).toBe(1);
    expect(float32ToFloat16Bits(-0)).toBe(0x8000);
  });
});

describe('bfloat16', () => {
  it('round-trips every non-NaN bfloat16 bit pattern', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = bfloat16BitsToFloat32(bits);
      if (!Number.isNaN(value)) expect(float32ToBfloat16Bits(value)).toBe(bits);
    }
  });

  it('rounds to nearest, ties to even', () => {
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    u[0] = 0x3f808000; // exactly halfway between 0x3f80 and 0x3f81: stays on the even 0x3f80
    expect(float32ToBfloat16Bits(f[0]!)).toBe(0x3f80);
    u[0] = 0x3f818000; // halfway between 0x3f81 (odd) and 0x3f82
    expect(float32ToBfloat16Bits(f[0]!)).toBe(0x3f82);
    u[0] = 0x3f808001;
    expect(float32ToBfloat16Bits(f[0]!)).toBe(0x3f81);
  });
});

describe('Tensor', () => {
  it('keeps little-endian bytes and rejects a byte length that does not fit the shape', () => {
    const t = Tensor.from('int32', [2], [1, 258]);
    expect(Array.from(t.bytes())).toEqual([1, 0, 0, 0, 2, 1, 0, 0]);
    expect(() => Tensor.fromBytes('float32', [3], new Uint8Array(8))).toThrow(/needs 12 bytes/);
  });

  it('gives a view, not a copy, over aligned bytes', () => {
    const buffer = new Uint8Array(16);
    const t = Tensor.fromBytes('float32', [2], buffer.subarray(8));
    const view = t.storage() as Float32Array;
    view[0] = 1.5;
    expect(new Float32Array(buffer.buffer, 8, 1)[0]).toBe(1.5);
  });

  it('copies unaligned bytes and keeps int64 exact', () => {
    const bytes = new Uint8Array(9);
    new DataView(bytes.buffer).setBigInt64(1, 2n ** 62n + 1n, true);
    const t = Tensor.fromBytes('int64', [1], bytes.subarray(1));
    expect((t.storage() as BigInt64Array)[0]).toBe(2n ** 62n + 1n);
  });
});
