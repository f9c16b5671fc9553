import type { FormatErrors } from '../../core/errors.js';
import { escapeControl } from '../../core/printable.js';

/**
 * Narrowing of the archive's JSON records (the serialized ExportedProgram and the payload
 * configs). The schema (torch/_export/serde/schema.py) is a tree of dataclasses and tagged unions
 * (`{"as_tensor": {...}}`, exactly one key set); these helpers check each shape where it is used,
 * so a malformed record is one FormatError naming the record and the path inside it.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { readonly [key: string]: Json };

export function parseJson(bytes: Uint8Array, where: string, e: FormatErrors): Json {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return e.fail(where, 'UTF-8 text');
  }
  try {
    // torch writes non-finite floats as the strings "Infinity", "-Infinity", "NaN" (asFloat).
    return JSON.parse(text) as Json;
  } catch (error) {
    return e.fail(where, `JSON (${escapeControl(String((error as Error).message)).slice(0, 120)})`);
  }
}

export function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function asObject(v: Json | undefined, where: string, e: FormatErrors): JsonObject {
  e.check(isObject(v), where, 'a JSON object');
  return v;
}

export function asArray(v: Json | undefined, where: string, e: FormatErrors): readonly Json[] {
  e.check(Array.isArray(v), where, 'a JSON array');
  return v;
}

export function asString(v: Json | undefined, where: string, e: FormatErrors): string {
  e.check(typeof v === 'string', where, 'a string');
  return v;
}

/** Integers beyond 2^53 (torch's INT64_MAX "to the end" in slices) keep their sign and saturate. */
export function asInt(v: Json | undefined, where: string, e: FormatErrors): number {
  e.check(typeof v === 'number' && Number.isInteger(v), where, 'an integer');
  return Math.abs(v) > Number.MAX_SAFE_INTEGER ? Math.sign(v) * Number.MAX_SAFE_INTEGER : v;
}

export function asFloat(v: Json | undefined, where: string, e: FormatErrors): number {
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  if (v === 'NaN') return NaN;
  e.check(typeof v === 'number', where, 'a number');
  return v;
}

export function asBool(v: Json | undefined, where: string, e: FormatErrors): boolean {
  e.check(typeof v === 'boolean', where, 'true or false');
  return v;
}

/** A tagged union: the one key set (torch writes exactly one), and its value. */
export function union(v: Json | undefined, where: string, e: FormatErrors): [string, Json] {
  const o = asObject(v, where, e);
  const keys = Object.keys(o);
  e.check(keys.length === 1, where, `one tagged field of a union, not ${keys.length} (${keys.slice(0, 4).join(', ')})`);
  return [keys[0]!, o[keys[0]!]!];
}
