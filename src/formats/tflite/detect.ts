/**
 * Recognising a .tflite file by its first bytes. Apart from the reader (file.ts) so detection,
 * which every command that opens a model runs, does not load the FlatBuffer schema.
 */

/** The identifier at bytes 4..8 of every file TFLite's converter writes. */
export const FILE_IDENTIFIER = 'TFL3';

export function hasTfliteIdentifier(head: Uint8Array): boolean {
  return head.byteLength >= 8 && String.fromCharCode(head[4]!, head[5]!, head[6]!, head[7]!) === FILE_IDENTIFIER;
}
