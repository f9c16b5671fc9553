/**
 * Hugging Face's sharded-checkpoint naming (huggingface_hub constants and splitter): one file
 * `model.safetensors`, or `model-00001-of-00003.safetensors`... plus an index
 * `model.safetensors.index.json` mapping every tensor name to its shard.
 */
export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export function shardFileName(index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `model-${pad(index + 1)}-of-${pad(count)}.safetensors`;
}

/**
 * Why a shard name from an index is unsafe, or undefined when it is a plain file name. Shards
 * must sit beside their index: a separator or '..' could point the reader anywhere on disk.
 */
export function unsafeShardName(name: string): string | undefined {
  if (name === '' || name === '.' || name === '..') return 'a file name, not empty, "." or ".."';
  if (/[/\\]/.test(name)) return 'a plain file name without / or \\';
  if (name.includes('\0')) return 'a file name without NUL characters';
  if (/^[a-zA-Z]:/.test(name)) return 'a plain file name without a drive letter';
  return undefined;
}

/**
 * Compares strings in UTF-8 byte order (= code point order), the order Rust and Python sort in.
 * Plain UTF-16 order differs: it puts astral characters (surrogate pairs) before U+E000-U+FFFF.
 */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xAstral = x >= 0xd800 && x <= 0xdfff;
    const yAstral = y >= 0xd800 && y <= 0xdfff;
    if (xAstral !== yAstral) return xAstral ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}
