import { encodeUtf8 } from './pickle-text.js';
import type { TorchDtype } from './torch-types.js';

/**
 * Writes data.pkl for a state dict the way torch.save does (pickle protocol 2, CPython's pickler
 * with torch's persistent_id), down to the memo numbering: an OrderedDict built by REDUCE and
 * filled with SETITEMS in batches of 1000, each value a _rebuild_tensor_v2 call (or
 * _rebuild_tensor_v3 with UntypedStorage for dtypes without a legacy storage class) whose first
 * argument is the persistent id ("storage", <class>, key, "cpu", numel).
 *
 * CPython memoizes by object identity; torch's 'storage' and 'cpu' literals and its storage keys
 * are shared objects, so they are written once and fetched from the memo after; names and tuples
 * are new objects every time.
 */

export interface PickledStorage {
  readonly key: string;
  /** Legacy class (FloatStorage), or undefined for torch.storage.UntypedStorage. */
  readonly storageClass?: string;
  /** Elements of the storage class (bytes for UntypedStorage). */
  readonly numel: number;
}

export interface PickledTensor {
  readonly storage: PickledStorage;
  readonly dtype: TorchDtype;
  readonly offset: number;
  readonly size: readonly number[];
  readonly stride: readonly number[];
}

const BATCH = 1000;

export function pickleStateDict(entries: readonly (readonly [string, PickledTensor])[]): Uint8Array {
  const p = new Writer();
  p.bytes(0x80, 2); // PROTO 2
  p.global('collections', 'OrderedDict');
  p.bytes(0x29, 0x52); // EMPTY_TUPLE, REDUCE
  p.put();
  for (let start = 0; start < entries.length; start += BATCH) {
    const batch = entries.slice(start, start + BATCH);
    if (batch.length > 1) p.bytes(0x28); // MARK
    for (const [name, tensor] of batch) {
      p.string(name);
      p.tensor(tensor);
    }
    p.bytes(batch.length > 1 ? 0x75 : 0x73); // SETITEMS or SETITEM
  }
  p.bytes(0x2e); // STOP
  return p.result();
}

class Writer {
  private buffer = new Uint8Array(1 << 12);
  private length = 0;
  private readonly memo = new Map<unknown, number>();
  private next = 0;

  bytes(...values: number[]): void {
    this.append(values);
  }

  append(values: ArrayLike<number>): void {
    if (this.length + values.length > this.buffer.byteLength) {
      const grown = new Uint8Array(Math.max(this.buffer.byteLength * 2, this.length + values.length));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(values, this.length);
    this.length += values.length;
  }

  /** BINPUT / LONG_BINPUT of the value just written; returns its memo index. */
  put(key?: unknown): number {
    const index = this.next++;
    if (key !== undefined) this.memo.set(key, index);
    if (index < 256) this.bytes(0x71, index);
    else this.bytes(0x72, ...le32(index));
    return index;
  }

  /** BINGET / LONG_BINGET when `key` was memoized; returns false otherwise. */
  get(key: unknown): boolean {
    const index = this.memo.get(key);
    if (index === undefined) return false;
    if (index < 256) this.bytes(0x68, index);
    else this.bytes(0x6a, ...le32(index));
    return true;
  }

  global(module: string, name: string): void {
    const key = `global:${module}.${name}`;
    if (this.get(key)) return;
    this.bytes(0x63);
    this.append(encodeUtf8(`${module}\n${name}\n`));
    this.put(key);
  }

  /** A str: BINUNICODE, memoized under `shared` when it is one of torch's shared string objects. */
  string(text: string, shared?: string): void {
    if (shared !== undefined && this.get(shared)) return;
    const utf8 = encodeUtf8(text);
    this.bytes(0x58, ...le32(utf8.byteLength));
    this.append(utf8);
    this.put(shared);
  }

  /** save_long for protocol 2. */
  int(n: number): void {
    if (n >= 0 && n <= 0xff) this.bytes(0x4b, n);
    else if (n >= 0 && n <= 0xffff) this.bytes(0x4d, n & 0xff, n >> 8);
    else if (n >= -0x80000000 && n <= 0x7fffffff) this.bytes(0x4a, ...le32(n));
    else {
      // LONG1: minimal little-endian two's complement.
      const out: number[] = [];
      let v = BigInt(n);
      for (;;) {
        const byte = Number(v & 0xffn);
        out.push(byte);
        v >>= 8n;
        if ((v === 0n && (byte & 0x80) === 0) || (v === -1n && (byte & 0x80) !== 0)) break;
      }
      this.bytes(0x8a, out.length, ...out);
    }
  }

  /** A tuple of ints: EMPTY_TUPLE, TUPLE1-3 or MARK ... TUPLE; non-empty tuples are memoized. */
  intTuple(values: readonly number[]): void {
    if (values.length === 0) {
      this.bytes(0x29);
      return;
    }
    if (values.length > 3) this.bytes(0x28);
    for (const v of values) this.int(v);
    this.bytes(values.length > 3 ? 0x74 : 0x84 + values.length);
    this.put();
  }

  tensor(t: PickledTensor): void {
    if (this.get(t)) return;
    const v3 = t.storage.storageClass === undefined;
    this.global('torch._utils', v3 ? '_rebuild_tensor_v3' : '_rebuild_tensor_v2');
    this.bytes(0x28); // MARK: the argument tuple
    // The persistent id tuple, then BINPERSID.
    this.bytes(0x28);
    this.string('storage', 'str:storage');
    if (v3) this.global('torch.storage', 'UntypedStorage');
    else this.global('torch', t.storage.storageClass!);
    this.string(t.storage.key, `key:${t.storage.key}`);
    this.string('cpu', 'str:cpu');
    this.int(t.storage.numel);
    this.bytes(0x74);
    this.put();
    this.bytes(0x51);
    this.int(t.offset);
    this.intTuple(t.size);
    this.intTuple(t.stride);
    this.bytes(0x89); // requires_grad False
    // backward_hooks: an empty OrderedDict, a new object each time.
    this.global('collections', 'OrderedDict');
    this.bytes(0x29, 0x52);
    this.put();
    if (v3) this.global('torch', t.dtype.name);
    this.bytes(0x74);
    this.put();
    this.bytes(0x52); // REDUCE
    this.put(t);
  }

  result(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

function le32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}
