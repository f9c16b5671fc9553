/**
 * Byte helpers that use Node's Buffer where it exists (memcmp, native base64) and plain
 * JavaScript elsewhere (the browser bundle has no Buffer). Only the few operations the readers
 * and writers need; not a Buffer polyfill.
 */
type NodeBuffer = typeof Buffer;
const NodeBufferClass: NodeBuffer | undefined = (globalThis as { Buffer?: NodeBuffer }).Buffer;

/** Base64 (standard or URL-safe alphabet, padding optional) to bytes. */
export function fromBase64(text: string): Uint8Array {
  if (NodeBufferClass) return Uint8Array.from(NodeBufferClass.from(text, 'base64'));
  let s = text.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  s += '='.repeat((4 - (s.length % 4)) % 4);
  const binary = atob(s);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Bytes to standard base64 with padding. */
export function toBase64(bytes: Uint8Array): string {
  if (NodeBufferClass) return NodeBufferClass.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  let binary = '';
  // In slices: String.fromCharCode takes its arguments on the stack.
  for (let at = 0; at < bytes.byteLength; at += 0x8000) binary += String.fromCharCode(...bytes.subarray(at, at + 0x8000));
  return btoa(binary);
}

/** Whether the first `length` bytes of a and b are equal (memcmp through Buffer in Node). */
export function bytesEqual(a: Uint8Array, b: Uint8Array, length = Math.max(a.byteLength, b.byteLength)): boolean {
  if (a.byteLength < length || b.byteLength < length) return false;
  if (NodeBufferClass) return NodeBufferClass.from(a.buffer, a.byteOffset, length).equals(NodeBufferClass.from(b.buffer, b.byteOffset, length));
  // Word at a time where both are aligned, then bytes.
  let i = 0;
  if (a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0) {
    const words = length >>> 2;
    const wa = new Uint32Array(a.buffer, a.byteOffset, words);
    const wb = new Uint32Array(b.buffer, b.byteOffset, words);
    for (let w = 0; w < words; w++) if (wa[w] !== wb[w]) return false;
    i = words << 2;
  }
  for (; i < length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The parts joined in one new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** The bytes as a Buffer where there is one (protobufjs then decodes as it does for readFileSync's Buffer), else as they are. */
export function asDecoderInput(bytes: Uint8Array): Uint8Array {
  return NodeBufferClass ? NodeBufferClass.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
}
