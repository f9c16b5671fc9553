import { FormatError } from '../../core/errors.js';
import { claimExpansion } from '../../core/budget.js';
import { PyDict, PyList, PySet, PyTuple, typeName, type PyValue } from './pickle-values.js';
import { decodeEscapedBytes, decodeRawUnicodeEscape, decodeUtf8, parsePythonFloat, parsePythonInt } from './pickle-text.js';

/**
 * A pickle interpreter that never executes anything (protocols 0-5, every opcode of CPython's
 * pickle.py). It is a stack machine over plain data: GLOBAL and STACK_GLOBAL only yield names the
 * resolver allowlists (anything else stops the load with "refused pickle global ..."), and REDUCE,
 * NEWOBJ, INST, OBJ and BUILD are handed to the resolver, which builds data objects for the few
 * callables it knows. Persistent ids go to a callback. Limits on the stack, the MARK depth, the memo
 * and the number of items built keep a hostile stream from exhausting memory; every length is
 * checked against the bytes that remain before anything is sliced.
 */

/** Where an opcode is, for the resolver's errors and its allocation budget. */
export interface Site {
  readonly position: number;
  fail(expected: string): never;
  /** Counts `items` container slots (or bytes / 8) against the allocation budget. */
  charge(items: number): void;
}

export interface PickleResolver {
  /** The class or function a GLOBAL names, or undefined to refuse it. Names arrive in Python 3 spelling. */
  find(module: string, name: string): PyValue | undefined;
  /** REDUCE, INST and OBJ: `callable(*args)`. */
  call(callable: PyValue, args: readonly PyValue[], site: Site): PyValue;
  /** NEWOBJ and NEWOBJ_EX (without keyword arguments): `cls.__new__(cls, *args)`. */
  construct(cls: PyValue, args: readonly PyValue[], site: Site): PyValue;
  /** BUILD: applies `state` to `target`. */
  build(target: PyValue, state: PyValue, site: Site): void;
}

export interface PickleLimits {
  /** Values on the stack, all MARK frames together. */
  readonly maxStack: number;
  /** Nested MARKs. */
  readonly maxDepth: number;
  /** Memo entries. */
  readonly maxMemo: number;
  /** Container items built (copies included), beyond which the stream is refused. */
  readonly maxItems: number;
  /** Bytes of one LONG1/LONG4 integer; decimal digits of INT/LONG are capped as Python caps them. */
  readonly maxIntBytes: number;
}

/** What one container item costs in memory, counting the growth of the arrays that hold it. */
const ITEM_BYTES = 32;

export const DEFAULT_LIMITS: PickleLimits = {
  maxStack: 1 << 20,
  maxDepth: 1 << 12,
  maxMemo: 1 << 22,
  // Raised to 8 items per input byte for large inputs (see unpickle).
  maxItems: 1 << 22,
  maxIntBytes: 1 << 12,
};

export interface UnpickleOptions {
  /** File name for errors. */
  readonly file: string;
  /** What the bytes are, for error positions ("archive/data.pkl" gives "archive/data.pkl byte 12"). */
  readonly where: string;
  readonly resolver: PickleResolver;
  /** PERSID / BINPERSID; without it persistent ids are refused. */
  readonly persistentLoad?: (pid: PyValue, site: Site) => PyValue;
  readonly limits?: Partial<PickleLimits>;
}

export interface Unpickled {
  readonly value: PyValue;
  /** Position just after STOP (the legacy torch format concatenates pickles). */
  readonly end: number;
}

/** The stream ended inside an opcode or before STOP: a reader holding a prefix may read more and retry. */
export class PickleTruncated extends FormatError {}

/**
 * Modules refused whatever a resolver allows: torch's weights_only blocklist (sys, os, posix, nt)
 * plus the other ways to start a process.
 */
const BLOCKED_MODULES = new Set(['sys', 'os', 'posix', 'nt', 'subprocess', 'runpy']);

/** Python 2 names a protocol 0-2 pickle may use, mapped as _compat_pickle / torch._utils do. */
const IMPORT_MAPPING: Readonly<Record<string, string>> = {
  __builtin__: 'builtins',
  copy_reg: 'copyreg',
  Queue: 'queue',
  repr: 'reprlib',
  _abcoll: 'collections.abc',
  UserDict: 'collections',
  UserList: 'collections',
  UserString: 'collections',
  whichdb: 'dbm',
  StringIO: 'io',
  cStringIO: 'io',
};
const NAME_MAPPING: Readonly<Record<string, string>> = {
  '__builtin__.xrange': 'builtins.range',
  '__builtin__.reduce': 'functools.reduce',
  '__builtin__.intern': 'sys.intern',
  '__builtin__.unichr': 'builtins.chr',
  '__builtin__.unicode': 'builtins.str',
  '__builtin__.long': 'builtins.int',
  '__builtin__.basestring': 'builtins.str',
  'itertools.izip': 'builtins.zip',
  'itertools.imap': 'builtins.map',
  'itertools.ifilter': 'builtins.filter',
  'itertools.ifilterfalse': 'itertools.filterfalse',
  'itertools.izip_longest': 'itertools.zip_longest',
  'UserDict.IterableUserDict': 'collections.UserDict',
  'UserList.UserList': 'collections.UserList',
  'UserString.UserString': 'collections.UserString',
  'UserDict.UserDict': 'collections.UserDict',
  'exceptions.StandardError': 'builtins.Exception',
};

function mapName(module: string, name: string): [string, string] {
  const mapped = NAME_MAPPING[`${module}.${name}`];
  if (mapped !== undefined) {
    const dot = mapped.lastIndexOf('.');
    return [mapped.slice(0, dot), mapped.slice(dot + 1)];
  }
  return [IMPORT_MAPPING[module] ?? module, name];
}

export function unpickle(bytes: Uint8Array, options: UnpickleOptions, start = 0): Unpickled {
  const limits: PickleLimits = {
    ...DEFAULT_LIMITS,
    maxItems: Math.max(DEFAULT_LIMITS.maxItems, 8 * (bytes.byteLength - start)),
    ...options.limits,
  };
  const { file, where, resolver } = options;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.byteLength;
  let pos = start;
  let op = start;
  let stack: PyValue[] = [];
  const metastack: PyValue[][] = [];
  let depthItems = 0; // values in the frames below the current one
  const memo = new Map<number, PyValue>();
  let items = 0;

  const fail: (expected: string, at?: number) => never = (expected, at = op) => {
    throw new FormatError(file, `${where} byte ${at}`, expected);
  };
  const site: Site = {
    get position() {
      return op;
    },
    fail: (expected) => fail(expected),
    charge(n: number) {
      items += n;
      if (items > limits.maxItems) fail(`at most ${limits.maxItems} container items in the pickle (a hostile stream can otherwise exhaust memory)`);
      // A one-byte opcode becomes a value slot of 8 bytes and more: charged to the memory budget.
      claimExpansion((_where, expected) => fail(expected), '', 'container items', n * ITEM_BYTES);
    },
  };

  const truncated = (expected: string): never => {
    throw new PickleTruncated(file, `${where} byte ${op}`, expected);
  };
  const need = (n: number): void => {
    if (n > end - pos) truncated(`${n} more bytes for the opcode's argument, but the pickle ends at byte ${end} (truncated?)`);
  };
  const u8 = (): number => {
    need(1);
    return bytes[pos++]!;
  };
  const u16 = (): number => {
    need(2);
    pos += 2;
    return view.getUint16(pos - 2, true);
  };
  const i32 = (): number => {
    need(4);
    pos += 4;
    return view.getInt32(pos - 4, true);
  };
  const u32 = (): number => {
    need(4);
    pos += 4;
    return view.getUint32(pos - 4, true);
  };
  const u64 = (): number => {
    need(8);
    pos += 8;
    const value = view.getBigUint64(pos - 8, true);
    // Any length beyond the input is refused by take(); cap here so the number stays exact.
    return value > BigInt(end) ? end + 1 : Number(value);
  };
  const take = (n: number): Uint8Array => {
    if (n < 0) fail(`a non-negative length, not ${n}`);
    need(n);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const line = (): Uint8Array => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0) truncated('a newline-terminated argument, but the pickle ends first (truncated?)');
    const out = bytes.subarray(pos, nl);
    pos = nl + 1;
    return out;
  };
  const ascii = (b: Uint8Array): string => new TextDecoder('latin1').decode(b);
  const text = (b: Uint8Array): string => {
    const s = decodeUtf8(b);
    if (s === undefined) fail('UTF-8 text');
    return s;
  };

  const push = (value: PyValue): void => {
    if (stack.length + depthItems >= limits.maxStack) fail(`at most ${limits.maxStack} values on the pickle stack`);
    stack.push(value);
  };
  const pop = (): PyValue => {
    if (stack.length === 0) fail('a value on the pickle stack (stack underflow)');
    return stack.pop()!;
  };
  const top = (): PyValue => {
    if (stack.length === 0) fail('a value on the pickle stack (stack underflow)');
    return stack[stack.length - 1]!;
  };
  const popMark = (): PyValue[] => {
    const frame = metastack.pop();
    if (frame === undefined) fail('a MARK before this opcode');
    const frameValues = stack;
    stack = frame;
    depthItems -= frame.length;
    return frameValues;
  };
  const popTuple = (what: string): PyValue[] => {
    const value = pop();
    if (!(value instanceof PyTuple)) fail(`${what} as a tuple, got ${typeName(value)}`);
    return [...value.items];
  };
  const memoGet = (index: number): void => {
    if (!memo.has(index)) fail(`memo entry ${index} to exist`);
    push(memo.get(index)!);
  };
  const memoPut = (index: number): void => {
    if (index < 0) fail('a non-negative memo index');
    if (!memo.has(index) && memo.size >= limits.maxMemo) fail(`at most ${limits.maxMemo} memo entries`);
    memo.set(index, top());
  };
  const global = (module: string, name: string): void => {
    const [m, n] = mapName(module, name);
    const shown = m === module && n === name ? `${m}.${n}` : `${module}.${name} (${m}.${n})`;
    const root = m.split('.')[0]!;
    const found = BLOCKED_MODULES.has(root) ? undefined : resolver.find(m, n);
    if (found === undefined) {
      // torch.save(model) pickles the module classes themselves; a state dict needs none of them.
      const hint = m === '__main__' || m.startsWith('torch.nn.modules') ? ' (the file pickles a whole Python object such as an nn.Module: save its state_dict() instead)' : '';
      fail(`refused pickle global ${shown}: only tensor rebuild functions, OrderedDict, torch dtypes and storage classes are allowed, and nothing in the file is ever run${hint}`);
    }
    push(found);
  };
  const dictOf = (target: PyValue, opcode: string): PyDict => {
    if (!(target instanceof PyDict)) fail(`${opcode} on a dict, OrderedDict or Counter, not ${typeName(target)}`);
    return target;
  };
  const setItem = (dict: PyDict, key: PyValue, value: PyValue): void => {
    if (!dict.set(key, value)) fail(`a hashable dict key, not ${typeName(key)}`);
  };
  const persistent = (pid: PyValue): void => {
    if (!options.persistentLoad) fail('no persistent ids in this pickle');
    push(options.persistentLoad(pid, site));
  };

  for (;;) {
    op = pos;
    if (pos >= end) truncated('a STOP opcode before the end of the pickle (truncated?)');
    const code = bytes[pos++]!;
    switch (code) {
      case 0x28: // MARK
        if (metastack.length >= limits.maxDepth) fail(`at most ${limits.maxDepth} nested MARKs`);
        metastack.push(stack);
        depthItems += stack.length;
        stack = [];
        break;
      case 0x2e: // STOP
        return { value: pop(), end: pos };
      case 0x30: // POP
        if (stack.length > 0) stack.pop();
        else popMark();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x46: {
        // FLOAT
        const value = parsePythonFloat(ascii(line()));
        if (value === undefined) fail('a decimal float');
        push(value);
        break;
      }
      case 0x49: {
        // INT: "00" and "01" are the protocol-0 booleans.
        const raw = ascii(line());
        if (raw === '00' || raw === '01') push(raw === '01');
        else push(parsePythonInt(raw, false) ?? fail('a decimal integer (at most 4300 digits)'));
        break;
      }
      case 0x4c: // LONG
        push(parsePythonInt(ascii(line()), true) ?? fail('a decimal integer (at most 4300 digits)'));
        break;
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: // LONG1
      case 0x8b: {
        // LONG4
        const n = code === 0x8a ? u8() : i32();
        if (n > limits.maxIntBytes) fail(`an integer of at most ${limits.maxIntBytes} bytes, not ${n}`);
        push(decodeLong(take(n)));
        break;
      }
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x47: {
        // BINFLOAT: big-endian IEEE double.
        need(8);
        pos += 8;
        push(view.getFloat64(pos - 8, false));
        break;
      }
      case 0x50: // PERSID
        persistent(ascii(line()));
        break;
      case 0x51: // BINPERSID
        persistent(pop());
        break;
      case 0x52: {
        // REDUCE
        const args = popTuple('REDUCE arguments');
        const callable = pop();
        push(resolver.call(callable, args, site));
        break;
      }
      case 0x53: {
        // STRING: a quoted, backslash-escaped Python 2 str.
        const raw = line();
        const quote = raw[0];
        if (raw.byteLength < 2 || (quote !== 0x22 && quote !== 0x27) || raw[raw.byteLength - 1] !== quote) fail('a quoted STRING argument');
        const decoded = decodeEscapedBytes(raw.subarray(1, raw.byteLength - 1));
        if (!decoded) fail('valid backslash escapes in a STRING argument');
        push(py2String(decoded));
        break;
      }
      case 0x54: // BINSTRING
        push(py2String(take(i32())));
        break;
      case 0x55: // SHORT_BINSTRING
        push(py2String(take(u8())));
        break;
      case 0x56: {
        // UNICODE: raw-unicode-escape text.
        const decoded = decodeRawUnicodeEscape(line());
        if (decoded === undefined) fail('valid \\u escapes in a UNICODE argument');
        push(decoded);
        break;
      }
      case 0x58: // BINUNICODE
        push(text(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(text(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        push(text(take(u64())));
        break;
      case 0x42: // BINBYTES
        push(take(u32()));
        break;
      case 0x43: // SHORT_BINBYTES
        push(take(u8()));
        break;
      case 0x8e: // BINBYTES8
        push(take(u64()));
        break;
      case 0x96: // BYTEARRAY8: mutable, so a copy.
        push(take(u64()).slice());
        break;
      case 0x61: {
        // APPEND
        const value = pop();
        const list = top();
        if (!(list instanceof PyList)) fail(`APPEND to a list, not ${typeName(list)}`);
        site.charge(1);
        list.items.push(value);
        break;
      }
      case 0x65: {
        // APPENDS
        const values = popMark();
        const list = top();
        if (!(list instanceof PyList)) fail(`APPENDS to a list, not ${typeName(list)}`);
        site.charge(values.length);
        for (const v of values) list.items.push(v);
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        resolver.build(top(), state, site);
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = text(line());
        global(module, text(line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL module and name as str');
        global(module, name);
        break;
      }
      case 0x64: {
        // DICT
        const values = popMark();
        if (values.length % 2 !== 0) fail('key-value pairs after the MARK');
        site.charge(values.length / 2);
        const dict = new PyDict();
        for (let i = 0; i < values.length; i += 2) setItem(dict, values[i]!, values[i + 1]!);
        push(dict);
        break;
      }
      case 0x7d: // EMPTY_DICT
        push(new PyDict());
        break;
      case 0x67: {
        // GET
        const index = parsePythonInt(ascii(line()), false);
        if (typeof index !== 'number') fail('a memo index');
        memoGet(index);
        break;
      }
      case 0x68: // BINGET
        memoGet(u8());
        break;
      case 0x6a: // LONG_BINGET
        memoGet(u32());
        break;
      case 0x69: {
        // INST: module and name lines, arguments since the MARK.
        const module = text(line());
        global(module, text(line()));
        const cls = pop();
        const args = popMark();
        push(resolver.call(cls, args, site));
        break;
      }
      case 0x6f: {
        // OBJ: class and arguments since the MARK.
        const values = popMark();
        if (values.length === 0) fail('a class after the MARK');
        const [cls, ...args] = values;
        push(resolver.call(cls!, args, site));
        break;
      }
      case 0x6c: {
        // LIST
        const values = popMark();
        push(new PyList(values));
        break;
      }
      case 0x5d: // EMPTY_LIST
        push(new PyList());
        break;
      case 0x70: {
        // PUT
        const index = parsePythonInt(ascii(line()), false);
        if (typeof index !== 'number') fail('a memo index');
        memoPut(index);
        break;
      }
      case 0x71: // BINPUT
        memoPut(u8());
        break;
      case 0x72: // LONG_BINPUT
        memoPut(u32());
        break;
      case 0x94: // MEMOIZE
        memoPut(memo.size);
        break;
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        site.charge(1);
        setItem(dictOf(top(), 'SETITEM'), key, value);
        break;
      }
      case 0x75: {
        // SETITEMS
        const values = popMark();
        if (values.length % 2 !== 0) fail('key-value pairs after the MARK');
        const dict = dictOf(top(), 'SETITEMS');
        site.charge(values.length / 2);
        for (let i = 0; i < values.length; i += 2) setItem(dict, values[i]!, values[i + 1]!);
        break;
      }
      case 0x74: // TUPLE
        push(new PyTuple(popMark()));
        break;
      case 0x29: // EMPTY_TUPLE
        push(new PyTuple([]));
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const n = code - 0x84;
        if (stack.length < n) fail(`${n} values on the pickle stack for TUPLE${n}`);
        push(new PyTuple(stack.splice(stack.length - n, n)));
        break;
      }
      case 0x80: {
        // PROTO
        const version = u8();
        if (version > 5) fail(`pickle protocol 0 to 5, not ${version}`);
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = popTuple('NEWOBJ arguments');
        push(resolver.construct(pop(), args, site));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = pop();
        const args = popTuple('NEWOBJ_EX arguments');
        if (!(kwargs instanceof PyDict) || kwargs.size > 0) fail('NEWOBJ_EX without keyword arguments');
        push(resolver.construct(pop(), args, site));
        break;
      }
      case 0x82: // EXT1
      case 0x83: // EXT2
      case 0x84: {
        // EXT4: copyreg's extension registry names arbitrary callables.
        const ext = code === 0x82 ? u8() : code === 0x83 ? u16() : i32();
        fail(`refused pickle extension code ${ext}: the copyreg extension registry is never consulted`);
        break;
      }
      case 0x8f: // EMPTY_SET
        push(new PySet([], false));
        break;
      case 0x90: {
        // ADDITEMS
        const values = popMark();
        const set = top();
        if (!(set instanceof PySet) || set.frozen) fail(`ADDITEMS to a set, not ${typeName(set)}`);
        site.charge(values.length);
        for (const v of values) set.items.push(v);
        break;
      }
      case 0x91: // FROZENSET
        push(new PySet(popMark(), true));
        break;
      case 0x95: {
        // FRAME: a hint for buffered readers; the frame must lie within the input.
        const length = u64();
        if (length > end - pos) truncated(`a frame of ${length} bytes within the pickle (truncated?)`);
        break;
      }
      case 0x97: // NEXT_BUFFER
        fail('no out-of-band buffers (NEXT_BUFFER): torch checkpoints never use them');
        break;
      case 0x98: // READONLY_BUFFER
        top();
        break;
      default:
        fail(`a pickle opcode, not 0x${code.toString(16).padStart(2, '0')}`);
    }
  }

  /** Python 2 str: torch.load decodes these as UTF-8; undecodable ones stay bytes. */
  function py2String(b: Uint8Array): PyValue {
    return decodeUtf8(b) ?? b;
  }
}

/** A little-endian two's-complement integer (LONG1 / LONG4), as a number when it fits. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.byteLength === 0) return 0;
  let hex = '';
  for (let i = b.byteLength - 1; i >= 0; i--) hex += b[i]!.toString(16).padStart(2, '0');
  let value = BigInt(`0x${hex}`);
  if (b[b.byteLength - 1]! & 0x80) value -= 1n << BigInt(8 * b.byteLength);
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}
