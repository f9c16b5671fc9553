import { describe, expect, it } from 'vitest';

// The worker thread is the JavaScript fallback's helper (native CRC-32C stays inline): this file
// forces the fallback before the modules load, so the worker path is tested wherever it runs.
process.env['MODELBRIDGE_CRC32C'] = 'js';
const { BACKGROUND_CRC_MIN_BYTES, BackgroundCrc32c, checksummed, streamChecksum } = await import('../src/core/background-crc.js');
const { crc32c, crc32cBackend } = await import('../src/core/crc32c.js');

/** Bytes that differ everywhere, so a slot handed over twice or skipped changes the CRC. */
function bytes(n: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(n / 4)).map((_, i) => Math.imul(i + seed, 2654435761) >>> 0);
  return new Uint8Array(words.buffer, 0, n);
}

/** Chunks of varied sizes, none a multiple of the worker's 4 MiB slots. */
function* cut(data: Uint8Array, sizes: readonly number[]): Iterable<Uint8Array> {
  for (let at = 0, i = 0; at < data.byteLength; at += sizes[i % sizes.length]!, i++) yield data.subarray(at, at + sizes[i % sizes.length]!);
}

describe('CRC-32C on a worker thread', () => {
  it('runs with the JavaScript CRC-32C (MODELBRIDGE_CRC32C=js)', () => {
    expect(crc32cBackend()).toBe('js');
  });

  const big = bytes(BACKGROUND_CRC_MIN_BYTES * 3 + 12345, 1);

  it('runs on the worker for a large stream and gives the CRC of the whole', () => {
    const crc = streamChecksum(big.byteLength);
    expect(crc).toBeInstanceOf(BackgroundCrc32c);
    for (const chunk of cut(big, [5_000_001, 1, 9_999_999, 77])) crc.update(chunk);
    expect(crc.result()).toBe(crc32c(big));
  });

  it('checksums small streams inline, with the same result', () => {
    const small = bytes(1000, 2);
    const crc = streamChecksum(small.byteLength);
    expect(crc).not.toBeInstanceOf(BackgroundCrc32c);
    for (const chunk of cut(small, [7, 300])) crc.update(chunk);
    expect(crc.result()).toBe(crc32c(small));
  });

  it('keeps two streams at once apart (two workers), and reuses a worker for the next stream', () => {
    const other = bytes(big.byteLength - 999, 3);
    const a = streamChecksum(big.byteLength);
    const b = streamChecksum(other.byteLength);
    expect(a).toBeInstanceOf(BackgroundCrc32c);
    expect(b).toBeInstanceOf(BackgroundCrc32c);
    const ia = cut(big, [3 << 20])[Symbol.iterator]();
    const ib = cut(other, [5 << 20])[Symbol.iterator]();
    for (let x = ia.next(), y = ib.next(); !x.done || !y.done; x = ia.next(), y = ib.next()) {
      if (!x.done) a.update(x.value);
      if (!y.done) b.update(y.value);
    }
    expect(b.result()).toBe(crc32c(other));
    expect(a.result()).toBe(crc32c(big));
    // The next stream starts from zero on a worker that has checksummed another.
    const again = streamChecksum(other.byteLength);
    again.update(other);
    expect(again.result()).toBe(crc32c(other));
  });

  it('an abandoned stream gives its worker back clean; an empty stream is 0', () => {
    const abandoned = streamChecksum(big.byteLength);
    abandoned.update(big.subarray(0, 10 << 20));
    abandoned.cancel();
    const next = streamChecksum(big.byteLength);
    next.update(big);
    expect(next.result()).toBe(crc32c(big));
    const empty = streamChecksum(BACKGROUND_CRC_MIN_BYTES);
    expect(empty.result()).toBe(0);
  });

  it('checksummed() passes the chunks through unchanged and reports the CRC at the end', () => {
    let reported: number | undefined;
    const seen: Uint8Array[] = [];
    for (const chunk of checksummed(cut(big, [6 << 20]), big.byteLength, (crc) => (reported = crc))) {
      expect(reported).toBeUndefined();
      seen.push(chunk);
    }
    expect(reported).toBe(crc32c(big));
    expect(Buffer.concat(seen).equals(Buffer.from(big))).toBe(true);
    // A consumer that stops early gets no CRC, and the worker is free for the next stream.
    reported = undefined;
    for (const _ of checksummed(cut(big, [6 << 20]), big.byteLength, (crc) => (reported = crc))) break;
    expect(reported).toBeUndefined();
    const next = streamChecksum(big.byteLength);
    next.update(big);
    expect(next.result()).toBe(crc32c(big));
  });
});
