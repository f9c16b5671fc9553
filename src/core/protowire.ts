/**
 * The protobuf wire format, without schemas: a reader that walks fields (varints, zigzag, fixed
 * 32/64-bit, length-delimited, skipping what the caller does not know) and a writer that emits
 * fields exactly in the order it is given them, so output is deterministic and can match another
 * implementation byte for byte. The reader never reads outside its range: malformed input raises
 * WireError (with the byte offset) for the caller to turn into a FormatError naming the file.
 * Also used for the bare varints of LevelDB tables and TensorFlow data files.
 */
export class WireError extends Error {
  override readonly name = 'WireError';

  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} (at byte ${offset})`);
  }
}

export const WireType = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const TWO_32 = 2 ** 32;

export class WireReader {
  /** Absolute position in `data`. */
  pos: number;
  // The last varint read, as two unsigned 32-bit halves (avoids a BigInt per varint).
  private lo = 0;
  private hi = 0;

  constructor(
    readonly data: Uint8Array,
    start = 0,
    readonly end = data.byteLength,
  ) {
    if (start < 0 || end > data.byteLength || start > end) throw new RangeError(`bad range [${start}, ${end})`);
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /**
   * The next field's key as [field number, wire type], or undefined at the end of the range.
   * Field number 0 and wire types 6 and 7 do not exist and are rejected.
   */
  key(): [field: number, wireType: number] | undefined {
    if (this.pos >= this.end) return undefined;
    const at = this.pos;
    this.readVarint();
    if (this.hi !== 0) throw new WireError('field key exceeds 32 bits', at);
    const field = this.lo >>> 3;
    const wireType = this.lo & 7;
    if (field === 0) throw new WireError('field number 0', at);
    if (wireType > 5) throw new WireError(`unknown wire type ${wireType}`, at);
    return [field, wireType];
  }

  /** An unsigned varint as a number; throws when it exceeds 2^53 - 1. */
  varint(): number {
    const at = this.pos;
    this.readVarint();
    if (this.hi > 0x1fffff) throw new WireError('varint exceeds 2^53', at);
    return this.hi * TWO_32 + this.lo;
  }

  /** A varint that must fit 32 bits unsigned (LevelDB's varint32). */
  varint32(): number {
    const at = this.pos;
    this.readVarint();
    if (this.hi !== 0) throw new WireError('varint exceeds 32 bits', at);
    return this.lo;
  }

  uint64(): bigint {
    this.readVarint();
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  int64(): bigint {
    return BigInt.asIntN(64, this.uint64());
  }

  /** An int64 field as a number; throws when it is outside the safe integer range. */
  int64Number(): number {
    const at = this.pos;
    const v = this.int64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new WireError(`int64 ${v} outside the safe integer range`, at);
    }
    return Number(v);
  }

  /** int32 as protobuf decodes it: the low 32 bits of the varint, signed. */
  int32(): number {
    this.readVarint();
    return this.lo | 0;
  }

  uint32(): number {
    this.readVarint();
    return this.lo;
  }

  sint32(): number {
    const v = this.uint32();
    return (v >>> 1) ^ -(v & 1);
  }

  sint64(): bigint {
    const v = this.uint64();
    return (v >> 1n) ^ -(v & 1n);
  }

  bool(): boolean {
    this.readVarint();
    return this.lo !== 0 || this.hi !== 0;
  }

  fixed32(): number {
    const at = this.need(4);
    const b = this.data;
    return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
  }

  sfixed32(): number {
    return this.fixed32() | 0;
  }

  fixed64(): bigint {
    const lo = this.fixed32();
    const hi = this.fixed32();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  sfixed64(): bigint {
    return BigInt.asIntN(64, this.fixed64());
  }

  float(): number {
    const at = this.need(4);
    return new DataView(this.data.buffer, this.data.byteOffset + at, 4).getFloat32(0, true);
  }

  double(): number {
    const at = this.need(8);
    return new DataView(this.data.buffer, this.data.byteOffset + at, 8).getFloat64(0, true);
  }

  /** A length-delimited field's bytes (a view into the input, not a copy). */
  bytes(): Uint8Array {
    const at = this.pos;
    const length = this.varint();
    if (length > this.end - this.pos) throw new WireError(`length ${length} runs past the end`, at);
    const start = this.pos;
    this.pos += length;
    return this.data.subarray(start, this.pos);
  }

  /** A length-delimited field as UTF-8 text; invalid UTF-8 is an error, as in proto3. */
  string(): string {
    const at = this.pos;
    const raw = this.bytes();
    try {
      return utf8.decode(raw);
    } catch {
      throw new WireError('string is not valid UTF-8', at);
    }
  }

  /** A length-delimited field as a reader over just its bytes (an embedded message). */
  message(): WireReader {
    const at = this.pos;
    const length = this.varint();
    if (length > this.end - this.pos) throw new WireError(`length ${length} runs past the end`, at);
    const sub = new WireReader(this.data, this.pos, this.pos + length);
    this.pos += length;
    return sub;
  }

  /**
   * A repeated scalar in either form: packed (one LEN field holding back-to-back elements) or
   * unpacked (this one element); `read` decodes one element from the reader it is given.
   */
  repeated<T>(wireType: number, elementWireType: number, read: (r: WireReader) => T): T[] {
    if (wireType === WireType.LEN && elementWireType !== WireType.LEN) {
      const sub = this.message();
      const out: T[] = [];
      while (!sub.done) out.push(read(sub));
      return out;
    }
    if (wireType !== elementWireType) throw new WireError(`wire type ${wireType} where ${elementWireType} was expected`, this.pos);
    return [read(this)];
  }

  /** Skips a field's value of the given wire type (groups included, to any depth). */
  skip(wireType: number): void {
    const at = this.pos;
    switch (wireType) {
      case WireType.VARINT:
        this.readVarint();
        return;
      case WireType.I64:
        this.need(8);
        return;
      case WireType.LEN:
        this.bytes();
        return;
      case WireType.I32:
        this.need(4);
        return;
      case WireType.SGROUP: {
        // Iterative so a deep nest of groups cannot overflow the stack.
        let depth = 1;
        while (depth > 0) {
          const k = this.key();
          if (!k) throw new WireError('group not closed', at);
          if (k[1] === WireType.SGROUP) depth++;
          else if (k[1] === WireType.EGROUP) depth--;
          else this.skip(k[1]);
        }
        return;
      }
      default:
        throw new WireError(`cannot skip wire type ${wireType}`, at);
    }
  }

  /** Advances past `n` bytes, returning where they start. */
  private need(n: number): number {
    if (n > this.end - this.pos) throw new WireError(`${n} bytes run past the end`, this.pos);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  private readVarint(): void {
    const b = this.data;
    const start = this.pos;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      const p = start + i;
      if (p >= this.end) throw new WireError('truncated varint', start);
      const byte = b[p]!;
      const bits = byte & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= bits << 28;
        hi = bits >>> 4;
      } else {
        // The tenth byte may only carry bit 63.
        if (i === 9 && byte > 1) throw new WireError('varint exceeds 64 bits', start);
        hi |= bits << (7 * i - 32);
      }
      if (byte < 0x80) {
        this.pos = p + 1;
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return;
      }
    }
    // Unreachable: a tenth byte is either the last or rejected above.
    throw new WireError('varint longer than 10 bytes', start);
  }
}

/**
 * Builds protobuf (or bare varint) bytes. Field methods write a key and a value and never skip
 * defaults: proto3's "omit zero" rule is the caller's decision, so output follows the calls.
 */
export class WireWriter {
  private buf = new Uint8Array(64);
  private len = 0;

  get length(): number {
    return this.len;
  }

  /** A varint field: uint32/uint64/int32/int64/enum; negatives take 10 bytes, as protobuf writes them. */
  varint(field: number, value: number | bigint): this {
    return this.key(field, WireType.VARINT).writeVarint(value);
  }

  sint(field: number, value: number | bigint): this {
    if (typeof value === 'number') checkInteger(value);
    const v = BigInt.asIntN(64, BigInt(value));
    return this.key(field, WireType.VARINT).writeVarint(BigInt.asUintN(64, (v << 1n) ^ (v >> 63n)));
  }

  bool(field: number, value: boolean): this {
    return this.key(field, WireType.VARINT).writeVarint(value ? 1 : 0);
  }

  fixed32(field: number, value: number): this {
    return this.key(field, WireType.I32).writeFixed32(value);
  }

  fixed64(field: number, value: bigint): this {
    const v = BigInt.asUintN(64, value);
    return this.key(field, WireType.I64)
      .writeFixed32(Number(v & 0xffffffffn))
      .writeFixed32(Number(v >> 32n));
  }

  float(field: number, value: number): this {
    this.key(field, WireType.I32);
    new DataView(this.reserve(4).buffer).setFloat32(this.len, value, true);
    this.len += 4;
    return this;
  }

  double(field: number, value: number): this {
    this.key(field, WireType.I64);
    new DataView(this.reserve(8).buffer).setFloat64(this.len, value, true);
    this.len += 8;
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    return this.key(field, WireType.LEN).writeVarint(value.byteLength).writeBytes(value);
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** An embedded message, built by `build` on a fresh writer. */
  message(field: number, build: (w: WireWriter) => void): this {
    const sub = new WireWriter();
    build(sub);
    return this.bytes(field, sub.finish());
  }

  /** Packed repeated varints (proto3's default form for repeated integers). */
  packedVarints(field: number, values: readonly (number | bigint)[]): this {
    const sub = new WireWriter();
    for (const v of values) sub.writeVarint(v);
    return this.bytes(field, sub.finish());
  }

  key(field: number, wireType: number): this {
    if (!Number.isInteger(field) || field < 1 || field > 0x1fffffff) throw new RangeError(`bad field number ${field}`);
    return this.writeVarint(field * 8 + wireType);
  }

  /** A bare varint (no key). Numbers must be safe integers; negatives are written as 64-bit two's complement. */
  writeVarint(value: number | bigint): this {
    if (typeof value === 'number') {
      checkInteger(value);
      if (value >= 0 && value < 0x80000000) {
        const out = this.reserve(5);
        let v = value;
        while (v >= 0x80) {
          out[this.len++] = (v & 0x7f) | 0x80;
          v >>>= 7;
        }
        out[this.len++] = v;
        return this;
      }
      value = BigInt(value);
    }
    let v = BigInt.asUintN(64, value);
    const out = this.reserve(10);
    while (v >= 0x80n) {
      out[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    out[this.len++] = Number(v);
    return this;
  }

  writeFixed32(value: number): this {
    const out = this.reserve(4);
    const v = value >>> 0;
    out[this.len++] = v & 0xff;
    out[this.len++] = (v >>> 8) & 0xff;
    out[this.len++] = (v >>> 16) & 0xff;
    out[this.len++] = v >>> 24;
    return this;
  }

  writeBytes(bytes: Uint8Array): this {
    this.reserve(bytes.byteLength).set(bytes, this.len);
    this.len += bytes.byteLength;
    return this;
  }

  /** The bytes written so far (a copy; the writer can continue). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  /** Makes room for `n` more bytes and returns the buffer to write them into at `length`. */
  private reserve(n: number): Uint8Array {
    if (this.len + n > this.buf.byteLength) {
      const grown = new Uint8Array(Math.max(this.buf.byteLength * 2, this.len + n));
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    return this.buf;
  }
}

function checkInteger(value: number): void {
  if (!Number.isSafeInteger(value)) throw new RangeError(`${value} is not a safe integer`);
}

/** The bytes of one bare varint. */
export function encodeVarint(value: number | bigint): Uint8Array {
  return new WireWriter().writeVarint(value).finish();
}
