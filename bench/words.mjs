/**
 * Touches every byte: the sum mod 2^32 of the bytes as little-endian 32-bit words (4 accumulators
 * so V8 keeps up with the page cache). Order-independent, so a converted model's weights give the
 * source's sum whatever order the writer put them in. Chunks must start on a 4-byte boundary.
 */
export function sumWords(bytes) {
  if (bytes.byteOffset % 4) bytes = bytes.slice();
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
  let a = 0, b = 0, c = 0, d = 0;
  const n = words.length & ~3;
  for (let i = 0; i < n; i += 4) {
    a = (a + words[i]) | 0;
    b = (b + words[i + 1]) | 0;
    c = (c + words[i + 2]) | 0;
    d = (d + words[i + 3]) | 0;
  }
  let x = (a + b + c + d) | 0;
  for (let i = n; i < words.length; i++) x = (x + words[i]) | 0;
  for (let i = words.length * 4; i < bytes.byteLength; i++) x = (x + (bytes[i] << ((i & 3) * 8))) | 0;
  return x;
}

// Warm-up: many calls on a small buffer, so V8 optimizes sumWords through its normal entry before
// the first multi-MB chunk (left to itself, it sometimes stays in on-stack-replaced code that runs
// the same loop 2.5x slower, which made single runs of either read mode bimodal).
{
  const small = new Uint8Array(4096);
  for (let i = 0; i < 20000; i++) sumWords(small);
}
