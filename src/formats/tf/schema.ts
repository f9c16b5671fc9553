import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { FormatError } from '../../core/errors.js';
import type { Int64 } from '../../core/int64.js';

/**
 * TensorFlow's protobuf messages, from modelbridge's own schemas in proto/tensorflow/ (TF's field
 * numbers, our text). The schemas are parsed on the first decode or encode, never at import, so
 * the CLI's start-up does not pay for them. Decoded objects keep the proto field names
 * (snake_case); message-typed fields that are absent decode as null, and int64 fields as Long
 * objects (see toInt).
 */

/** The schema files, in dependency order (protobufjs resolves names after all are parsed). */
const FILES = [
  'google_protobuf', 'types', 'tensor_shape', 'resource_handle', 'tensor', 'attr_value', 'node_def', 'versions', 'op_def',
  'function', 'graph', 'saver', 'variable', 'struct', 'trackable_object_graph', 'saved_object_graph', 'meta_graph', 'saved_model',
];

/** proto/tensorflow at the package root, from src/formats/tf/ or from the dist/ bundle. */
function schemaDir(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; ) {
    const candidate = join(dir, 'proto', 'tensorflow');
    if (existsSync(join(candidate, 'saved_model.proto'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`proto/tensorflow not found above ${start}`);
    dir = parent;
  }
}

let root: protobuf.Root | undefined;

/** The parsed schema (parsed on first use). */
export function tfSchema(): protobuf.Root {
  if (!root) {
    const dir = schemaDir();
    const parsed = new protobuf.Root();
    for (const file of FILES) protobuf.parse(readFileSync(join(dir, `${file}.proto`), 'utf8'), parsed, { keepCase: true });
    parsed.resolveAll();
    root = parsed;
  }
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
