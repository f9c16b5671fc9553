import { readSync } from '../../core/vfs.js';
import { FormatError } from '../../core/errors.js';
import { WireType, WireWriter } from '../../core/protowire.js';

/**
 * The "skeleton" of a large .onnx file: the ModelProto read with positional reads, every byte of
 * it except the raw_data payloads of the graph's initializers, which stay in the file as ranges.
 * A 1 GiB model with inline weights thus costs a few reads of its headers, not 1 GiB of memory.
 *
 * The skeleton is re-encoded (the graph and initializer lengths shrink) and then decoded by the
 * same protobufjs schema as a whole file is, so everything the reader checks stays one code path.
 * It must mean to protobufjs exactly what the file means: fields are copied in their order and
 * as written, only ModelProto.graph (7), GraphProto.initializer (5) and TensorProto.raw_data (9)
 * are rewritten, and only when length-delimited (protobufjs skips a field of the wrong wire type
 * as unknown, and so does the copy). A raw_data left in the file is kept as an empty raw_data
 * field so that presence and "the last one wins" decode as before. The walk mirrors protobufjs'
 * bounds: no field may run past its message or the file; those, and keys protobufjs refuses,
 * are a FormatError here as they are in a whole-file decode. Anything the walk accepts more
 * leniently (over-long varints, deep groups) is copied as is, and protobufjs judges it.
 */

/** A byte range of the model file. */
export interface FileRange {
  readonly offset: number;
  readonly length: number;
}

export interface Skeleton {
  /** The ModelProto without the payloads left in the file. */
  readonly bytes: Uint8Array;
  /**
   * One entry per TensorProto of GraphProto.initializer, in the order protobufjs lists them (the
   * file's order; repeated graph fields merge, so their initializers concatenate): where that
   * tensor's raw_data lies when it was left in the file, else undefined.
   */
  readonly initializerData: readonly (FileRange | undefined)[];
}

const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_RAW_DATA = 9;
/** Reads go through one window this large: headers between two big payloads take one read. */
const WINDOW = 1 << 20;

/**
 * Reads the skeleton of the ModelProto in `fd` (`size` bytes). raw_data payloads of `minLeft`
 * bytes or more (at least 1) are left in the file; smaller ones are read with the headers, since a
 * file range costs an open and a read each time it is used.
 */
export function readSkeleton(fd: number, size: number, file: string, minLeft: number): Skeleton {
  const walker = new Walker(new FileWindow(fd, size, file), file, Math.max(1, minLeft));
  const bytes = walker.model();
  return { bytes, initializerData: walker.initializerData };
}

type Visit = (field: number, valueStart: number, valueEnd: number) => boolean;

class Walker {
  readonly initializerData: (FileRange | undefined)[] = [];

  constructor(
    private readonly window: FileWindow,
    private readonly file: string,
    private readonly minLeft: number,
  ) {}

  model(): Uint8Array {
    const out = new WireWriter();
    this.walk(0, this.window.size, 'ModelProto', out, (field, start, end) => {
      if (field !== MODEL_GRAPH) return false;
      out.bytes(MODEL_GRAPH, this.graph(start, end));
      return true;
    });
    return out.finish();
  }

  private graph(start: number, end: number): Uint8Array {
    const out = new WireWriter();
    this.walk(start, end, 'ModelProto graph', out, (field, s, e) => {
      if (field !== GRAPH_INITIALIZER) return false;
      out.bytes(GRAPH_INITIALIZER, this.tensor(s, e));
      return true;
    });
    return out.finish();
  }

  private tensor(start: number, end: number): Uint8Array {
    const index = this.initializerData.length;
    this.initializerData.push(undefined);
    const out = new WireWriter();
    this.walk(start, end, `graph initializer ${index}`, out, (field, s, e) => {
      if (field !== TENSOR_RAW_DATA) return false;
      // protobufjs keeps the last raw_data of a message, so the record follows the last one too.
      if (e - s < this.minLeft) {
        this.initializerData[index] = undefined;
        return false;
      }
      this.initializerData[index] = { offset: s, length: e - s };
      out.key(TENSOR_RAW_DATA, WireType.LEN).writeVarint(0);
      return true;
    });
    return out.finish();
  }

  /**
   * Walks the fields in [start, end): `visit` may rewrite a length-delimited field into `out`
   * (returning true); every other field is copied as written, key included.
   */
  private walk(start: number, end: number, where: string, out: WireWriter, visit: Visit): void {
    let pos = start;
    while (pos < end) {
      const keyStart = pos;
      const [tag, afterTag] = this.tag(pos, end, `${where} at byte ${pos}`);
      const wireType = tag & 7;
      const here = `${where} field ${tag >>> 3} at byte ${keyStart}`;
      let valueStart = afterTag;
      let valueEnd: number;
      switch (wireType) {
        case WireType.VARINT:
          valueEnd = this.varintEnd(afterTag, end, here);
          break;
        case WireType.I64:
          valueEnd = this.fits(afterTag, 8, end, here);
          break;
        case WireType.I32:
          valueEnd = this.fits(afterTag, 4, end, here);
          break;
        case WireType.LEN: {
          const [length, after] = this.size(afterTag, end, here);
          valueStart = after;
          valueEnd = this.fits(after, length, end, here);
          break;
        }
        case WireType.SGROUP:
          valueEnd = this.groupEnd(afterTag, end, tag >>> 3, here);
          break;
        default:
          return this.fail(here, `a field key with wire type 0, 1, 2, 3 or 5, got ${wireType}`);
      }
      if (wireType !== WireType.LEN || !visit(tag >>> 3, valueStart, valueEnd)) {
        out.writeBytes(this.window.bytes(keyStart, valueEnd - keyStart));
      }
      pos = valueEnd;
    }
  }

  /** A field key as protobufjs reads one: at most 5 bytes, 32 bits, field number above 0. */
  private tag(pos: number, end: number, where: string): [tag: number, next: number] {
    let value = 0;
    for (let i = 0; i < 5; i++) {
      if (pos + i >= end) return this.fail(where, end === this.window.size ? 'a complete field key (the file ends inside it)' : 'a complete field key before the end of its message');
      const byte = this.window.byte(pos + i);
      if (i === 4 && byte > 0x0f) break;
      value += (byte & 0x7f) * 2 ** (7 * i);
      if (byte < 0x80) {
        if (value >>> 3 === 0) return this.fail(where, 'a field number above 0');
        return [value, pos + i + 1];
      }
    }
    return this.fail(where, 'a field key of at most 32 bits');
  }

  /** A length prefix as protobufjs reads one: at most 5 bytes, below 2^31. */
  private size(pos: number, end: number, where: string): [length: number, next: number] {
    let value = 0;
    for (let i = 0; i < 5; i++) {
      if (pos + i >= end) return this.fail(where, end === this.window.size ? 'a complete length (the file ends inside it)' : 'a complete length before the end of its message');
      const byte = this.window.byte(pos + i);
      if (i === 4 && byte > 7) break;
      value += (byte & 0x7f) * 2 ** (7 * i);
      if (byte < 0x80) return [value, pos + i + 1];
    }
    return this.fail(where, 'a length below 2 GiB (protobuf messages are smaller)');
  }

  /** The end of a varint value; its length is protobufjs' to judge, for the field it belongs to. */
  private varintEnd(pos: number, end: number, where: string): number {
    for (let p = pos; p < end; p++) if (this.window.byte(p) < 0x80) return p + 1;
    return this.fail(where, end === this.window.size ? 'a complete varint (the file ends inside it)' : 'a complete varint before the end of its message');
  }

  /** The end of a group whose start key (field `field`) ends at `pos`, groups nested to any depth. */
  private groupEnd(pos: number, end: number, field: number, where: string): number {
    const open = [field];
    let p = pos;
    while (open.length > 0) {
      const [tag, next] = this.tag(p, end, `${where} (in the group, at byte ${p})`);
      const wireType = tag & 7;
      if (wireType === WireType.VARINT) p = this.varintEnd(next, end, where);
      else if (wireType === WireType.I64) p = this.fits(next, 8, end, where);
      else if (wireType === WireType.I32) p = this.fits(next, 4, end, where);
      else if (wireType === WireType.LEN) {
        const [length, after] = this.size(next, end, where);
        p = this.fits(after, length, end, where);
      } else if (wireType === WireType.SGROUP) {
        open.push(tag >>> 3);
        p = next;
      } else if (wireType === WireType.EGROUP && open.at(-1) === tag >>> 3) {
        open.pop();
        p = next;
      } else {
        return this.fail(`${where} (in the group, at byte ${p})`, wireType === WireType.EGROUP ? `the end of group ${open.at(-1)}, got the end of group ${tag >>> 3}` : `a field key with a valid wire type, got ${wireType}`);
      }
    }
    return p;
  }

  /** The end of `length` bytes at `pos`, which must lie inside the message and the file. */
  private fits(pos: number, length: number, end: number, where: string): number {
    const stop = pos + length;
    if (stop > this.window.size) {
      this.fail(where, `${length} bytes inside the file, which ends at byte ${this.window.size} (it is truncated, or a length is corrupt)`);
    }
    if (stop > end) this.fail(where, `${length} bytes inside its message, which ends at byte ${end}`);
    return stop;
  }

  /** `where` names the message, the field and the byte offset. */
  private fail(where: string, expected: string): never {
    throw new FormatError(this.file, where, expected);
  }
}

/** Positional reads of a file through one reusable window. */
class FileWindow {
  private readonly buffer: Uint8Array;
  private start = 0;
  private end = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
    private readonly file: string,
  ) {
    this.buffer = new Uint8Array(Math.max(1, Math.min(WINDOW, size)));
  }

  /** The byte at `pos` (< size). */
  byte(pos: number): number {
    if (pos < this.start || pos >= this.end) this.fill(pos);
    return this.buffer[pos - this.start]!;
  }

  /** Bytes [pos, pos + length): a view into the window, valid until the next read, or a new array when larger. */
  bytes(pos: number, length: number): Uint8Array {
    if (length > this.buffer.byteLength) {
      const out = new Uint8Array(length);
      this.readInto(out, length, pos);
      return out;
    }
    if (pos < this.start || pos + length > this.end) this.fill(pos);
    return this.buffer.subarray(pos - this.start, pos - this.start + length);
  }

  private fill(pos: number): void {
    const length = Math.min(this.buffer.byteLength, this.size - pos);
    // An empty window first, so a failed read never leaves stale bytes looking valid.
    this.start = this.end = 0;
    this.readInto(this.buffer, length, pos);
    this.start = pos;
    this.end = pos + length;
  }

  private readInto(target: Uint8Array, length: number, position: number): void {
    let done = 0;
    while (done < length) {
      let got: number;
      try {
        got = readSync(this.fd, target, done, length - done, position + done);
      } catch (error) {
        throw new FormatError(this.file, `byte ${position + done}`, `a readable file (${(error as Error).message})`);
      }
      if (got <= 0) throw new FormatError(this.file, `byte ${position + done}`, `${this.size} bytes, as when it was opened (the file shrank while being read)`);
      done += got;
    }
  }
}
