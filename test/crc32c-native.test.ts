import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it, vi } from 'vitest';
import { crc32c, crc32cBackend, crc32cPortable } from '../src/core/crc32c.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** TensorFlow's crc32c_test.cc vectors (RFC 3720 B.4) and the standard check value. */
const VECTORS: Array<[Uint8Array, number]> = [
  [text('123456789'), 0xe3069283],
  [new Uint8Array(0), 0],
  [new Uint8Array(32), 0x8a9136aa],
  [new Uint8Array(32).fill(0xff), 0x62a8ab43],
  [Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
  [Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
  [
    Uint8Array.from([
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00,
      0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ]),
    0xd9963a56,
  ],
];

function installed(): boolean {
  try {
    createRequire(import.meta.url).resolve('@node-rs/crc32');
    return true;
  } catch {
    return false;
  }
}

describe('CRC-32C backends', () => {
  it('uses @node-rs/crc32 when it is installed (an optional dependency), else JavaScript', () => {
    if (!installed()) console.warn('@node-rs/crc32 is not installed: only the JavaScript CRC-32C is tested');
    expect(crc32cBackend()).toBe(installed() ? 'native' : 'js');
  });

  it('both give TensorFlow\'s known vectors', () => {
    for (const [bytes, crc] of VECTORS) {
      expect(crc32c(bytes)).toBe(crc);
      expect(crc32cPortable(bytes)).toBe(crc);
    }
  });

  it('native and JavaScript agree on random data at every alignment, length and continuation', () => {
    const data = new Uint8Array(randomBytes(1 << 20));
    for (const [start, end] of [[0, 0], [1, 2], [3, 70], [5, 4099], [7, 65543], [0, data.length], [13, data.length - 11]] as const) {
      const view = data.subarray(start, end);
      expect(crc32c(view)).toBe(crc32cPortable(view));
      const mid = start + ((end - start) >> 1);
      expect(crc32c(data.subarray(mid, end), crc32c(data.subarray(start, mid)))).toBe(crc32cPortable(view));
    }
  });

  it('MODELBRIDGE_CRC32C=js forces the fallback, which gives the same answers', async () => {
    vi.stubEnv('MODELBRIDGE_CRC32C', 'js');
    vi.resetModules();
    try {
      const fallback = await import('../src/core/crc32c.js');
      expect(fallback.crc32cBackend()).toBe('js');
      for (const [bytes, crc] of VECTORS) expect(fallback.crc32c(bytes)).toBe(crc);
      const data = new Uint8Array(randomBytes(3 << 20));
      expect(fallback.crc32c(data.subarray(3))).toBe(crc32c(data.subarray(3)));
    } finally {
      vi.unstubAllEnvs();
      vi.resetModules();
    }
  });
});

describe('zip CRC-32 backends', () => {
  it('node:zlib crc32 (where Node has it) and the JavaScript fallback agree, continued or not', async () => {
    const { crc32Update, crc32UpdatePortable } = await import('../src/formats/pytorch/crc32.js');
    expect(crc32UpdatePortable(0, text('123456789'))).toBe(0xcbf43926);
    expect(crc32Update(0, text('123456789'))).toBe(0xcbf43926);
    const data = new Uint8Array(randomBytes(1 << 20));
    for (const [start, end] of [[0, 0], [1, 3], [3, 4099], [0, data.length], [7, data.length - 5]] as const) {
      const view = data.subarray(start, end);
      const mid = start + ((end - start) >> 1);
      expect(crc32Update(0, view)).toBe(crc32UpdatePortable(0, view));
      expect(crc32Update(crc32Update(0, data.subarray(start, mid)), data.subarray(mid, end))).toBe(crc32UpdatePortable(0, view));
    }
  });
});
