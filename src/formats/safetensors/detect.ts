import { MAX_HEADER_SIZE } from './header.js';

/**
 * Recognises a safetensors file from its first bytes: a u64 little-endian header length that
 * is plausible (at most the reference limit and within the file), then the header's JSON object
 * opening with '{' after optional JSON whitespace. A cheap sniff only: the reader validates fully.
 */
export function looksLikeSafetensors(head: Uint8Array, fileSize: number): boolean {
  if (head.byteLength < 9) return false;
  const n = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE) || 8 + Number(n) > fileSize) return false;
  const end = Math.min(head.byteLength, 8 + Number(n));
  for (let i = 8; i < end; i++) {
    const c = head[i]!;
    if (c === 0x7b) return true;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  }
  return false;
}
