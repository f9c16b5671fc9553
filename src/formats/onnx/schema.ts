import protobuf from 'protobufjs';
import { FormatError } from '../../core/errors.js';
import { ONNX_SCHEMA } from './schema-json.js';

/**
 * The ONNX protobuf messages, decoded with protobufjs from proto/onnx.proto (compiled into
 * schema-json.ts by scripts/build-proto.mjs). The schema is built once, on the first decode, so
 * importing this module costs nothing. The interfaces below
 * describe the decoded objects as this project reads them (proto field names kept as written:
 * snake_case). int64 fields decode to Long objects (protobufjs' representation, exact to 64 bits);
 * see src/core/int64.ts for conversions.
 */

/** A 64-bit integer as protobufjs decodes it (a Long), or a number where the writer gave one. */
import type { Int64 } from '../../core/int64.js';

export type { Int64 };

export interface StringStringEntryProto {
  readonly key: string;
  readonly value: string;
}

export interface OperatorSetIdProto {
  readonly domain: string;
  readonly version: Int64;
}

export interface TensorProto {
  readonly dims: readonly Int64[];
  readonly data_type: number;
  readonly segment: { readonly begin: Int64; readonly end: Int64 } | null;
  readonly float_data: readonly number[];
  readonly int32_data: readonly number[];
  readonly string_data: readonly Uint8Array[];
  readonly int64_data: readonly Int64[];
  readonly name: string;
  readonly doc_string: string;
  readonly raw_data: Uint8Array;
  readonly external_data: readonly StringStringEntryProto[];
  readonly data_location: number;
  readonly double_data: readonly number[];
  readonly uint64_data: readonly Int64[];
  readonly metadata_props: readonly StringStringEntryProto[];
}

export interface SparseTensorProto {
  readonly values: TensorProto | null;
  readonly indices: TensorProto | null;
  readonly dims: readonly Int64[];
}

export interface DimensionProto {
  readonly dim_value: Int64;
  readonly dim_param: string;
  /** Which member of the oneof is set, if any. */
  readonly value?: 'dim_value' | 'dim_param';
  readonly denotation: string;
}

export interface TensorShapeProto {
  readonly dim: readonly DimensionProto[];
}

export interface TypeProto {
  readonly tensor_type: { readonly elem_type: number; readonly shape: TensorShapeProto | null } | null;
  readonly sequence_type: { readonly elem_type: TypeProto | null } | null;
  readonly map_type: { readonly key_type: number; readonly value_type: TypeProto | null } | null;
  readonly optional_type: { readonly elem_type: TypeProto | null } | null;
  readonly sparse_tensor_type: { readonly elem_type: number; readonly shape: TensorShapeProto | null } | null;
  readonly opaque_type: { readonly domain: string; readonly name: string } | null;
  readonly value?: 'tensor_type' | 'sequence_type' | 'map_type' | 'optional_type' | 'sparse_tensor_type' | 'opaque_type';
  readonly denotation: string;
}

export interface ValueInfoProto {
  readonly name: string;
  readonly type: TypeProto | null;
  readonly doc_string: string;
  readonly metadata_props: readonly StringStringEntryProto[];
}

/** AttributeProto.AttributeType numbers. */
export const ATTRIBUTE_TYPE = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSOR: 11,
  SPARSE_TENSORS: 12,
  TYPE_PROTO: 13,
  TYPE_PROTOS: 14,
} as const;

export interface AttributeProto {
  readonly name: string;
  readonly ref_attr_name: string;
  readonly doc_string: string;
  readonly type: number;
  readonly f: number;
  readonly i: Int64;
  readonly s: Uint8Array;
  readonly t: TensorProto | null;
  readonly g: GraphProto | null;
  readonly sparse_tensor: SparseTensorProto | null;
  readonly tp: TypeProto | null;
  readonly floats: readonly number[];
  readonly ints: readonly Int64[];
  readonly strings: readonly Uint8Array[];
  readonly tensors: readonly TensorProto[];
  readonly graphs: readonly GraphProto[];
  readonly sparse_tensors: readonly SparseTensorProto[];
  readonly type_protos: readonly TypeProto[];
}

export interface NodeProto {
  readonly input: readonly string[];
  readonly output: readonly string[];
  readonly name: string;
  readonly op_type: string;
  readonly domain: string;
  readonly overload: string;
  readonly attribute: readonly AttributeProto[];
  readonly doc_string: string;
  readonly metadata_props: readonly StringStringEntryProto[];
}

export interface GraphProto {
  readonly node: readonly NodeProto[];
  readonly name: string;
  readonly initializer: readonly TensorProto[];
  readonly sparse_initializer: readonly SparseTensorProto[];
  readonly doc_string: string;
  readonly input: readonly ValueInfoProto[];
  readonly output: readonly ValueInfoProto[];
  readonly value_info: readonly ValueInfoProto[];
  readonly metadata_props: readonly StringStringEntryProto[];
}

export interface FunctionProto {
  readonly name: string;
  readonly domain: string;
  readonly overload: string;
  readonly input: readonly string[];
  readonly output: readonly string[];
  readonly attribute: readonly string[];
  readonly attribute_proto: readonly AttributeProto[];
  readonly node: readonly NodeProto[];
  readonly opset_import: readonly OperatorSetIdProto[];
  readonly value_info: readonly ValueInfoProto[];
  readonly doc_string: string;
}

export interface ModelProto {
  readonly ir_version: Int64;
  readonly opset_import: readonly OperatorSetIdProto[];
  readonly producer_name: string;
  readonly producer_version: string;
  readonly domain: string;
  readonly model_version: Int64;
  readonly doc_string: string;
  readonly graph: GraphProto | null;
  readonly metadata_props: readonly StringStringEntryProto[];
  readonly functions: readonly FunctionProto[];
}

/** True when a proto2 optional field was present on the wire (protobufjs sets decoded fields as own properties). */
export function hasField(message: object, field: string): boolean {
  return Object.prototype.hasOwnProperty.call(message, field);
}

let root: protobuf.Root | undefined;

/** The schema (proto/onnx.proto compiled by scripts/build-proto.mjs; built on first use). */
export function onnxSchema(): protobuf.Root {
  root ??= protobuf.Root.fromJSON(ONNX_SCHEMA);
  return root;
}

function decode<T>(typeName: string, bytes: Uint8Array, file: string): T {
  const type = onnxSchema().lookupType(typeName);
  try {
    return type.decode(bytes) as unknown as T;
  } catch (e) {
    // Truncated input, bad wire types, runaway nesting: all one kind of problem, a malformed file.
    const reason = e instanceof Error ? e.message : String(e);
    throw new FormatError(file, `${typeName.replace('onnx.', '')} protobuf`, `a well-formed protobuf message (${reason})`);
  }
}

export function decodeModelProto(bytes: Uint8Array, file: string): ModelProto {
  return decode<ModelProto>('onnx.ModelProto', bytes, file);
}

export function decodeTensorProto(bytes: Uint8Array, file: string): TensorProto {
  return decode<TensorProto>('onnx.TensorProto', bytes, file);
}
