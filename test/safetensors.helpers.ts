import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURES } from './cli-helpers.js';

/** Shared fixture paths and byte helpers for the safetensors tests. */

export const fixture = (relative: string): string => join(FIXTURES, relative);
export const localFixture = (name: string): string => fileURLToPath(new URL(`./fixtures/safetensors/${name}`, import.meta.url));
export const VECTORS = fixture('safetensors/vectors');

export interface Vector {
  file: string;
  rust_test: string;
  kind: string;
  expected: string;
  size: number;
}

export const vectors = (): Vector[] => JSON.parse(readFileSync(`${VECTORS}/INDEX.json`, 'utf8')) as Vector[];

/** Real files written by Python's safetensors (and the Rust tests' expected serializer outputs). */
export const REAL_FILES = {
  multiLayer: fixture('burn/safetensors-tests/tests/multi_layer/multi_layer.safetensors'),
  mnist: fixture('burn/examples/import-model-weights/weights/mnist.safetensors'),
  jfkCodes: fixture('candle/candle-examples/jfk-codes.safetensors'),
  voices: fixture('candle/candle-examples/voices.safetensors'),
  // Written for these tests by safetensors 0.8.0 / torch 2.13 (see the test that uses each).
  allDtypes: localFixture('all_dtypes.safetensors'),
  escapes: localFixture('escapes.safetensors'),
  zeros: localFixture('zeros.safetensors'),
};

/** A safetensors file from header text and data bytes, with the length N set to the header's size. */
export function build(header: string, data: Uint8Array = new Uint8Array(0), length?: bigint): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

/** The header text of a safetensors file (assumes a valid length). */
export function headerText(bytes: Uint8Array): string {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return new TextDecoder().decode(bytes.subarray(8, 8 + n));
}

/** The reference error name a FormatError message ends with, e.g. "InvalidOffset". */
export function errorName(error: unknown): string | undefined {
  return /\((\w+)\)$/.exec((error as Error).message)?.[1];
}
