import protobuf from 'protobufjs';
import { FormatError } from '../../core/errors.js';
import type { Int64 } from '../../core/int64.js';
import { TF_SCHEMA } from './schema-json.js';

/**
 * TensorFlow's protobuf messages, from modelbridge's own schemas in proto/tensorflow/ (TF's field
 * numbers, our text), compiled by scripts/build-proto.mjs into schema-json.ts. The schema is built
 * on the first decode or encode, never at import, so the CLI's start-up does not pay for it. Decoded objects keep the proto field names
 * (snake_case); message-typed fields that are absent decode as null, and int64 fields as Long
 * objects (see toInt).
 */

let root: protobuf.Root | undefined;

/** The schema (built from its descriptor on first use). */
export function tfSchema(): protobuf.Root {
  root ??= protobuf.Root.fromJSON(TF_SCHEMA);
  return root;
}

/** Decodes one message; anything malformed is a FormatError naming the file and the message. */
export function decodeMessage<T>(typeName: string, bytes: Uint8Array, file: string, where = typeName): T {
  const type = tfSchema().lookupType(`tensorflow.${typeName}`);
  try {
    return type.decode(bytes) as unknown as T;
  } catch (e) {
    // Truncation, bad wire types, runaway nesting: one kind of problem, a malformed file.
    const reason = e instanceof Error ? e.message : String(e);
    throw new FormatError(file, where, `a well-formed ${typeName} protobuf message (${reason})`);
  }
}

/**
 * Encodes a plain object as a message. Fields are written in field-number order, map entries in
 * the object's key order (writers insert them sorted), so equal input gives equal bytes.
 */
export function encodeMessage(typeName: string, message: object): Uint8Array {
  const type = tfSchema().lookupType(`tensorflow.${typeName}`);
  const problem = type.verify(message);
  if (problem) throw new Error(`internal error: ${typeName} to encode is malformed: ${problem}`);
  return type.encode(message).finish();
}

export type { Int64 };

/** True when a field was present on the wire (protobufjs sets decoded fields as own properties). */
export function hasField(message: object, field: string): boolean {
  return Object.prototype.hasOwnProperty.call(message, field);
}
