import type { Int64 } from './schema.js';

/**
 * The decoded TensorFlow messages as modelbridge reads them (the fields it uses). Map fields
 * decode to plain objects; absent message fields to null.
 */

export interface TensorShapeProto {
  readonly dim: readonly { readonly size: Int64; readonly name: string }[];
  readonly unknown_rank: boolean;
}

export interface TensorProto {
  readonly dtype: number;
  readonly tensor_shape: TensorShapeProto | null;
  readonly version_number: number;
  readonly tensor_content: Uint8Array;
  readonly half_val: readonly number[];
  readonly float_val: readonly number[];
  readonly double_val: readonly number[];
  readonly int_val: readonly number[];
  readonly string_val: readonly Uint8Array[];
  readonly scomplex_val: readonly number[];
  readonly int64_val: readonly Int64[];
  readonly bool_val: readonly boolean[];
  readonly dcomplex_val: readonly number[];
  readonly uint32_val: readonly number[];
  readonly uint64_val: readonly Int64[];
  readonly float8_val: Uint8Array;
}

export interface NameAttrList {
  readonly name: string;
  readonly attr: Readonly<Record<string, AttrValue>>;
}

export interface AttrValue {
  readonly s: Uint8Array;
  readonly i: Int64;
  readonly f: number;
  readonly b: boolean;
  readonly type: number;
  readonly shape: TensorShapeProto | null;
  readonly tensor: TensorProto | null;
  readonly list: {
    readonly s: readonly Uint8Array[];
    readonly i: readonly Int64[];
    readonly f: readonly number[];
    readonly b: readonly boolean[];
    readonly type: readonly number[];
    readonly shape: readonly TensorShapeProto[];
    readonly tensor: readonly TensorProto[];
    readonly func: readonly NameAttrList[];
  } | null;
  readonly func: NameAttrList | null;
  readonly placeholder: string;
  /** Which member of the oneof is set. */
  readonly value?: 's' | 'i' | 'f' | 'b' | 'type' | 'shape' | 'tensor' | 'list' | 'func' | 'placeholder';
}

export interface NodeDef {
  readonly name: string;
  readonly op: string;
  readonly input: readonly string[];
  readonly device: string;
  readonly attr: Readonly<Record<string, AttrValue>>;
}

export interface ArgDef {
  readonly name: string;
  readonly type: number;
  readonly type_attr: string;
  readonly number_attr: string;
  readonly type_list_attr: string;
}

export interface OpDef {
  readonly name: string;
  readonly input_arg: readonly ArgDef[];
  readonly output_arg: readonly ArgDef[];
  readonly attr: readonly { readonly name: string; readonly type: string; readonly default_value: AttrValue | null }[];
}

export interface FunctionDef {
  readonly signature: OpDef | null;
  readonly attr: Readonly<Record<string, AttrValue>>;
  readonly node_def: readonly NodeDef[];
  readonly ret: Readonly<Record<string, string>>;
}

export interface GraphDef {
  readonly node: readonly NodeDef[];
  readonly versions: { readonly producer: number; readonly min_consumer: number } | null;
  readonly library: { readonly function: readonly FunctionDef[] } | null;
}

export interface TensorInfo {
  readonly name: string;
  readonly encoding?: 'name' | 'coo_sparse' | 'composite_tensor';
  readonly dtype: number;
  readonly tensor_shape: TensorShapeProto | null;
}

export interface SignatureDef {
  readonly inputs: Readonly<Record<string, TensorInfo>>;
  readonly outputs: Readonly<Record<string, TensorInfo>>;
  readonly method_name: string;
}

export interface SaverDef {
  readonly filename_tensor_name: string;
  readonly save_tensor_name: string;
  readonly restore_op_name: string;
  readonly version: number;
}

export interface ObjectReference {
  readonly node_id: number;
  readonly local_name: string;
}

export interface SavedObject {
  readonly children: readonly ObjectReference[];
  readonly kind?: string;
  readonly variable: { readonly name: string; readonly dtype: number } | null;
}

export interface SavedObjectGraph {
  readonly nodes: readonly SavedObject[];
  readonly concrete_functions: Readonly<Record<string, { readonly bound_inputs: readonly number[] }>>;
}

export interface TrackableObjectGraph {
  readonly nodes: readonly {
    readonly children: readonly ObjectReference[];
    readonly attributes: readonly { readonly name: string; readonly full_name: string; readonly checkpoint_key: string }[];
  }[];
}

export interface MetaGraphDef {
  readonly meta_info_def: {
    readonly tags: readonly string[];
    readonly tensorflow_version: string;
    readonly stripped_default_attrs: boolean;
    readonly stripped_op_list: { readonly op: readonly OpDef[] } | null;
  } | null;
  readonly graph_def: GraphDef | null;
  readonly saver_def: SaverDef | null;
  readonly collection_def: Readonly<Record<string, { readonly node_list?: { readonly value: readonly string[] } | null }>>;
  readonly signature_def: Readonly<Record<string, SignatureDef>>;
  readonly object_graph_def: SavedObjectGraph | null;
}

export interface SavedModel {
  readonly saved_model_schema_version: Int64;
  readonly meta_graphs: readonly MetaGraphDef[];
}
