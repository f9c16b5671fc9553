import type { FormatErrors } from '../../core/errors.js';
import { tfTypeName } from '../tensorbundle/dtypes.js';
import type { AttrValue, TensorProto, TensorShapeProto } from '../tf/messages.js';
import type { Int64 } from '../tf/schema.js';
import { fromBase64, toBase64 } from '../../core/bytes.js';

/**
 * A TF.js modelTopology is a GraphDef in protobuf's JSON mapping (MessageToDict): lowerCamelCase
 * keys, int64 as decimal strings, bytes as base64, enums by name. src/formats/tf works on decoded
 * messages (snake_case, bytes as Uint8Array, enums as numbers), so both directions go through
 * here: JSON -> AttrValue for the reader, plain AttrValue objects -> JSON for the writer.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** DT_* name -> code, for every name tfTypeName knows (the enum has under 40 values). */
const TYPE_CODES: ReadonlyMap<string, number> = new Map(
  Array.from({ length: 40 }, (_, code) => [tfTypeName(code), code] as const).filter(([name]) => name.startsWith('DT_')),
);

export function typeCodeOf(name: string): number | undefined {
  return TYPE_CODES.get(name);
}

export function typeName(code: number): string {
  return tfTypeName(code);
}

// ---------------------------------------------------------------- JSON -> decoded messages

/** Field readers that report a bad value with one FormatError naming where it is. */
export class JsonReader {
  constructor(
    readonly e: FormatErrors,
    readonly where: string,
  ) {}

  at(where: string): JsonReader {
    return new JsonReader(this.e, `${this.where} ${where}`);
  }

  fail(expected: string): never {
    return this.e.fail(this.where, expected);
  }

  /** An int64 in either JSON form (number or decimal string), as a number when safe. */
  int64(v: Json | undefined): Int64 {
    if (v === undefined || v === null) return 0;
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    if (typeof v === 'string' && /^-?\d+$/.test(v)) {
      const n = Number(v);
      if (Number.isSafeInteger(n)) return n;
      const big = BigInt.asUintN(64, BigInt(v));
      return { low: Number(big & 0xffffffffn) | 0, high: Number(big >> 32n) | 0, unsigned: false };
    }
    return this.fail(`an integer, not ${JSON.stringify(v)}`);
  }

  float(v: Json | undefined): number {
    if (v === undefined || v === null) return 0;
    if (typeof v === 'number') return v;
    if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') return Number(v);
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
    return this.fail(`a number, not ${JSON.stringify(v)}`);
  }

  bool(v: Json | undefined): boolean {
    if (v === undefined || v === null) return false;
    if (typeof v === 'boolean') return v;
    return this.fail(`true or false, not ${JSON.stringify(v)}`);
  }

  /** Bytes: base64 text (protobuf JSON), or an array of char codes (TF.js accepts both). */
  bytes(v: Json | undefined): Uint8Array {
    if (v === undefined || v === null) return new Uint8Array(0);
    if (typeof v === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) return fromBase64(v);
    if (Array.isArray(v) && v.every((c) => typeof c === 'number' && Number.isInteger(c) && c >= 0 && c < 256)) return Uint8Array.from(v as number[]);
    return this.fail(`base64 bytes, not ${JSON.stringify(v).slice(0, 40)}`);
  }

  type(v: Json | undefined): number {
    if (v === undefined || v === null) return 0;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
    const code = typeof v === 'string' ? typeCodeOf(v) : undefined;
    if (code === undefined) return this.fail(`a DataType name such as DT_FLOAT, not ${JSON.stringify(v)}`);
    return code;
  }

  list(v: Json | undefined): Json[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) return this.fail('a list');
    return v;
  }

  object(v: Json | undefined): JsonObject {
    if (v === undefined || v === null) return {};
    if (!isObject(v)) return this.fail('an object');
    return v;
  }

  string(v: Json | undefined): string {
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string') return this.fail('a string');
    return v;
  }

  shape(v: Json | undefined): TensorShapeProto {
    const s = this.object(v);
    return {
      dim: this.list(s['dim']).map((d) => {
        const dim = this.object(d);
        return { size: this.int64(dim['size']), name: this.string(dim['name']) };
      }),
      unknown_rank: this.bool(s['unknownRank']),
    };
  }

  /** A TensorProto: the converter leaves only dtype and shape in the JSON (values go to the shards). */
  tensor(v: Json | undefined): TensorProto {
    const t = this.object(v);
    const nums = (key: string) => this.list(t[key]).map((x) => this.float(x));
    return {
      dtype: this.type(t['dtype']),
      tensor_shape: t['tensorShape'] === undefined ? null : this.shape(t['tensorShape']),
      version_number: 0,
      tensor_content: this.bytes(t['tensorContent']),
      half_val: nums('halfVal'),
      float_val: nums('floatVal'),
      double_val: nums('doubleVal'),
      int_val: nums('intVal'),
      string_val: this.list(t['stringVal']).map((x) => this.bytes(x)),
      scomplex_val: nums('scomplexVal'),
      int64_val: this.list(t['int64Val']).map((x) => this.int64(x)),
      bool_val: this.list(t['boolVal']).map((x) => this.bool(x)),
      dcomplex_val: nums('dcomplexVal'),
      uint32_val: nums('uint32Val'),
      uint64_val: this.list(t['uint64Val']).map((x) => this.int64(x)),
      float8_val: new Uint8Array(0),
    };
  }
}

const ONEOF = ['s', 'i', 'f', 'b', 'type', 'shape', 'tensor', 'list', 'func', 'placeholder'] as const;

/** An AttrValue with every field at its default, as protobuf decoding gives. */
export function emptyAttr(): AttrValue {
  return { s: new Uint8Array(0), i: 0, f: 0, b: false, type: 0, shape: null, tensor: null, list: null, func: null, placeholder: '' };
}

/** One attr of a node in JSON form -> AttrValue; exactly one member of the oneof may be set. */
export function attrFromJson(v: Json, r: JsonReader): AttrValue {
  const a = r.object(v);
  const set = ONEOF.filter((k) => a[k] !== undefined && a[k] !== null);
  if (set.length > 1) r.fail(`one value per attr, found ${set.join(' and ')}`);
  const base = emptyAttr();
  const key = set[0];
  switch (key) {
    case undefined:
      return base;
    case 's':
      return { ...base, value: key, s: r.bytes(a.s) };
    case 'i':
      return { ...base, value: key, i: r.int64(a.i) };
    case 'f':
      return { ...base, value: key, f: r.float(a.f) };
    case 'b':
      return { ...base, value: key, b: r.bool(a.b) };
    case 'type':
      return { ...base, value: key, type: r.type(a.type) };
    case 'shape':
      return { ...base, value: key, shape: r.shape(a.shape) };
    case 'tensor':
      return { ...base, value: key, tensor: r.tensor(a.tensor) };
    case 'func':
      return { ...base, value: key, func: { name: r.string(r.object(a.func)['name']), attr: {} } };
    case 'placeholder':
      return { ...base, value: key, placeholder: r.string(a.placeholder) };
    case 'list': {
      const l = r.object(a.list);
      const items = (k: string) => r.list(l[k]);
      return {
        ...base,
        value: key,
        list: {
          s: items('s').map((x) => r.bytes(x)),
          i: items('i').map((x) => r.int64(x)),
          f: items('f').map((x) => r.float(x)),
          b: items('b').map((x) => r.bool(x)),
          type: items('type').map((x) => r.type(x)),
          shape: items('shape').map((x) => r.shape(x)),
          tensor: items('tensor').map((x) => r.tensor(x)),
          func: [],
        },
      };
    }
  }
  return base;
}

// ---------------------------------------------------------------- plain AttrValue objects -> JSON

/** The proto3 JSON of a float: non-finite values are strings. */
function floatJson(f: number): Json {
  return Number.isFinite(f) ? f : String(f);
}

function intJson(i: unknown): string {
  if (typeof i === 'number' || typeof i === 'bigint') return String(i);
  throw new RangeError(`not an int64: ${String(i)}`);
}

function base64(bytes: Uint8Array): string {
  return toBase64(bytes);
}

export function shapeJson(shape: { dim?: readonly { size: unknown }[]; unknown_rank?: boolean } | null | undefined): JsonObject {
  if (!shape) return {};
  if (shape.unknown_rank) return { unknownRank: true };
  const dims = shape.dim ?? [];
  return dims.length ? { dim: dims.map((d) => ({ size: intJson(d.size) })) } : {};
}

/**
 * A writer's attr (as built by tfAttr) in JSON. A tensor attr keeps its dtype and shape only:
 * the converter moves tensor values to the weight shards and so does the writer.
 */
export function attrToJson(a: Record<string, unknown>): JsonObject {
  if ('s' in a) return { s: base64(a['s'] as Uint8Array) };
  if ('i' in a) return { i: intJson(a['i']) };
  if ('f' in a) return { f: floatJson(a['f'] as number) };
  if ('b' in a) return { b: a['b'] as boolean };
  if ('type' in a) return { type: typeName(a['type'] as number) };
  if ('shape' in a) return { shape: shapeJson(a['shape'] as TensorShapeProto) };
  if ('tensor' in a) {
    const t = a['tensor'] as { dtype: number; tensor_shape?: TensorShapeProto };
    return { tensor: { dtype: typeName(t.dtype), tensorShape: shapeJson(t.tensor_shape) } };
  }
  if ('func' in a) return { func: { name: (a['func'] as { name: string }).name } };
  if ('list' in a) {
    const l = a['list'] as Record<string, unknown[] | undefined>;
    const out: JsonObject = {};
    if (l['s']?.length) out['s'] = l['s'].map((x) => base64(x as Uint8Array));
    if (l['i']?.length) out['i'] = l['i'].map(intJson);
    if (l['f']?.length) out['f'] = l['f'].map((x) => floatJson(x as number));
    if (l['b']?.length) out['b'] = l['b'] as boolean[];
    if (l['type']?.length) out['type'] = l['type'].map((x) => typeName(x as number));
    if (l['shape']?.length) out['shape'] = l['shape'].map((x) => shapeJson(x as TensorShapeProto));
    return { list: out };
  }
  throw new RangeError(`unknown attr value ${JSON.stringify(Object.keys(a))}`);
}
