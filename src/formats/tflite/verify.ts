import type { FormatErrors } from '../../core/errors.js';

/**
 * Bounds checking of a TFLite FlatBuffer before the generated accessors read it.
 *
 * Hand-written because the `flatbuffers` npm runtime has no verifier (the C++ library's
 * flatbuffers::Verifier has no JavaScript counterpart): its accessors read past the end of the
 * bytes as zeros and follow any offset, so a truncated or hostile file would give garbage sizes
 * and loops instead of an error. This walks every table, vector and string modelbridge reads,
 * described by the field lists below (slot order as in proto/tflite/tflite.fbs), and fails with
 * one line naming where the file breaks. Offsets in a FlatBuffer only point forward (uoffset_t is
 * unsigned), so the walk ends; a count of visited tables bounds its work anyway.
 */

/** A field of a table, by slot: a scalar of n bytes, a string, a vector, a table or a union. */
type FieldSpec =
  | { readonly kind: 'scalar'; readonly size: 1 | 2 | 4 | 8 }
  | { readonly kind: 'string' }
  | { readonly kind: 'vector'; readonly elem: 1 | 2 | 4 | 8 }
  | { readonly kind: 'table'; readonly table: string }
  | { readonly kind: 'tables'; readonly table: string }
  /** The value slot of a union; its type is the u8 in the slot before it. */
  | { readonly kind: 'union'; readonly members: Readonly<Record<number, string>> };

const s1: FieldSpec = { kind: 'scalar', size: 1 };
const s4: FieldSpec = { kind: 'scalar', size: 4 };
const s8: FieldSpec = { kind: 'scalar', size: 8 };
const str: FieldSpec = { kind: 'string' };
const v1: FieldSpec = { kind: 'vector', elem: 1 };
const v4: FieldSpec = { kind: 'vector', elem: 4 };
const v8: FieldSpec = { kind: 'vector', elem: 8 };
const table = (t: string): FieldSpec => ({ kind: 'table', table: t });
const tables = (t: string): FieldSpec => ({ kind: 'tables', table: t });

/** BuiltinOptions members modelbridge reads, by union number, with their scalar-only layouts below. */
export const OPTION_TABLES: Readonly<Record<number, string>> = {
  1: 'Conv2DOptions', 2: 'DepthwiseConv2DOptions', 5: 'Pool2DOptions', 8: 'FullyConnectedOptions', 9: 'SoftmaxOptions',
  10: 'ConcatenationOptions', 11: 'AddOptions', 17: 'ReshapeOptions', 21: 'MulOptions', 22: 'PadOptions', 23: 'GatherOptions',
  26: 'TransposeOptions', 27: 'ReducerOptions', 28: 'SubOptions', 29: 'DivOptions', 30: 'SqueezeOptions', 32: 'StridedSliceOptions',
  35: 'SplitOptions', 36: 'LogSoftmaxOptions', 37: 'CastOptions', 38: 'DequantizeOptions', 39: 'MaximumMinimumOptions', 48: 'SliceOptions',
  52: 'ExpandDimsOptions', 59: 'PackOptions', 75: 'LeakyReluOptions', 89: 'QuantizeOptions', 91: 'HardSwishOptions', 101: 'BatchMatMulOptions',
  116: 'GeluOptions',
};

const TABLES: Readonly<Record<string, readonly FieldSpec[]>> = {
  Model: [s4, tables('OperatorCode'), tables('SubGraph'), str, tables('Buffer'), v4, tables('Metadata'), tables('SignatureDef')],
  OperatorCode: [s1, str, s4, s4],
  SubGraph: [tables('Tensor'), v4, v4, tables('Operator'), str],
  Tensor: [v4, s1, s4, str, table('QuantizationParameters'), s1, table('SparsityParameters'), v4, s1],
  QuantizationParameters: [v4, v4, v4, v8, s1, { kind: 'union', members: {} }, s4],
  SparsityParameters: [],
  Operator: [s4, v4, v4, s1, { kind: 'union', members: OPTION_TABLES }, v1, s1, v1, v4, s8, s8],
  Buffer: [v1, s8, s8],
  Metadata: [str, s4],
  TensorMap: [str, s4],
  SignatureDef: [tables('TensorMap'), tables('TensorMap'), str, str, s4],
  Conv2DOptions: [s1, s4, s4, s1, s4, s4, s1],
  DepthwiseConv2DOptions: [s1, s4, s4, s4, s1, s4, s4],
  Pool2DOptions: [s1, s4, s4, s4, s4, s1],
  FullyConnectedOptions: [s1, s1, s1, s1, s1],
  SoftmaxOptions: [s4],
  ConcatenationOptions: [s4, s1],
  AddOptions: [s1, s1],
  ReshapeOptions: [v4],
  MulOptions: [s1],
  PadOptions: [],
  GatherOptions: [s4, s4],
  TransposeOptions: [],
  ReducerOptions: [s1],
  SubOptions: [s1, s1],
  DivOptions: [s1],
  SqueezeOptions: [v4],
  StridedSliceOptions: [s4, s4, s4, s4, s4, s1],
  SplitOptions: [s4],
  LogSoftmaxOptions: [],
  CastOptions: [s1, s1],
  DequantizeOptions: [],
  MaximumMinimumOptions: [],
  SliceOptions: [],
  ExpandDimsOptions: [],
  PackOptions: [s4, s4],
  LeakyReluOptions: [s4],
  QuantizeOptions: [],
  HardSwishOptions: [],
  BatchMatMulOptions: [s1, s1, s1],
  GeluOptions: [s1],
};

/** Tables visited at most (a 1 GB model has a few hundred thousand); past this the file is refused. */
const MAX_TABLES = 50_000_000;

/**
 * Thrown when the bytes given are a prefix of a longer file and the FlatBuffer reaches past them:
 * the caller reads more of the file and verifies again (models past 2 GB keep their weights after
 * the FlatBuffer, so only its prefix need be read).
 */
export class NeedMoreBytes extends Error {}

/** Verifies the Model FlatBuffer in `bytes`, the first bytes of a file of `fileSize` bytes. */
export function verifyModel(bytes: Uint8Array, e: FormatErrors, fileSize = bytes.byteLength): void {
  new Verifier(bytes, e, fileSize).root();
}

class Verifier {
  private readonly view: DataView;
  private visited = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly e: FormatErrors,
    private readonly fileSize: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  root(): void {
    this.need(0, 8, 'the FlatBuffer header', 'a root offset and the TFL3 identifier (the file is shorter than 8 bytes)');
    this.table(this.view.getUint32(0, true), 'Model', 'Model');
  }

  private need(at: number, length: number, where: string, expected?: string): void {
    if (at >= 0 && length >= 0 && at + length > this.bytes.byteLength && at + length <= this.fileSize) throw new NeedMoreBytes();
    if (at < 0 || length < 0 || at + length > this.bytes.byteLength) {
      this.e.fail(`${where} at byte ${at}`, expected ?? `${length} bytes within the file's ${this.bytes.byteLength} (truncated or corrupt FlatBuffer)`);
    }
  }

  private table(pos: number, type: string, where: string): void {
    if (++this.visited > MAX_TABLES) this.e.fail(where, `at most ${MAX_TABLES} tables`);
    this.need(pos, 4, `${where} (${type} table)`);
    if (pos % 4 !== 0) this.e.fail(`${where} (${type} table) at byte ${pos}`, 'a 4-byte aligned table');
    const vtable = pos - this.view.getInt32(pos, true);
    this.need(vtable, 4, `${where} (${type} vtable)`);
    if (vtable % 2 !== 0) this.e.fail(`${where} (${type} vtable) at byte ${vtable}`, 'a 2-byte aligned vtable');
    const vsize = this.view.getUint16(vtable, true);
    const osize = this.view.getUint16(vtable + 2, true);
    if (vsize < 4 || vsize % 2 !== 0) this.e.fail(`${where} (${type} vtable) at byte ${vtable}`, `a vtable size of 4 or more, even, not ${vsize}`);
    this.need(vtable, vsize, `${where} (${type} vtable)`);
    this.need(pos, osize, `${where} (${type} table)`);
    const fields = TABLES[type]!;
    const slots = (vsize - 4) / 2;
    const offsetOf = (k: number): number => (k < slots ? this.view.getUint16(vtable + 4 + 2 * k, true) : 0);
    for (let k = 0; k < fields.length; k++) {
      const f = fields[k]!;
      const off = offsetOf(k);
      if (off === 0) continue;
      const at = pos + off;
      const size = f.kind === 'scalar' ? f.size : 4;
      if (off + size > osize) this.e.fail(`${where} (${type} field ${k}) at byte ${at}`, `a field inside its table's ${osize} bytes`);
      if (f.kind === 'scalar') continue;
      const target = at + this.view.getUint32(at, true);
      switch (f.kind) {
        case 'string':
          this.vector(target, 1, `${where} (${type} field ${k} string)`);
          break;
        case 'vector':
          this.vector(target, f.elem, `${where} (${type} field ${k})`);
          break;
        case 'table':
          this.table(target, f.table, `${where}.${lower(f.table)}`);
          break;
        case 'tables': {
          const n = this.vector(target, 4, `${where} (${type} field ${k})`);
          for (let i = 0; i < n; i++) {
            const slot = target + 4 + 4 * i;
            this.table(slot + this.view.getUint32(slot, true), f.table, `${where}.${lower(f.table)}[${i}]`);
          }
          break;
        }
        case 'union': {
          const typeOff = offsetOf(k - 1);
          const member = typeOff ? this.bytes[pos + typeOff]! : 0;
          const name = f.members[member];
          // An options table modelbridge does not read is left unvisited: it reads as none.
          if (name) this.table(target, name, `${where}.options`);
          break;
        }
      }
    }
  }

  /** Checks a vector's length prefix and elements lie within the file; returns its length. */
  private vector(pos: number, elem: number, where: string): number {
    this.need(pos, 4, where);
    // Vectors are aligned to their elements (the length prefix to 4): the generated *Array()
    // accessors make typed-array views that throw on a misaligned offset.
    if (pos % 4 !== 0 || (pos + 4) % elem !== 0) this.e.fail(`${where} at byte ${pos}`, `a vector aligned to ${Math.max(elem, 4)} bytes`);
    const n = this.view.getUint32(pos, true);
    this.need(pos + 4, n * elem, where, `a vector of ${n} elements of ${elem} bytes within the file's ${this.bytes.byteLength} bytes (truncated or corrupt FlatBuffer)`);
    return n;
  }
}

const lower = (type: string): string => type.charAt(0).toLowerCase() + type.slice(1);
