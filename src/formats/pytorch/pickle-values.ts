/**
 * The values the safe unpickler builds. They are plain data: nothing here can run code, and the
 * only "callables" (PyGlobal) are names that passed the allowlist, interpreted by the resolver.
 *
 * Python ints are numbers when they fit in 2^53, else bigints; floats are numbers; str is string;
 * bytes and bytearray are Uint8Array; None is null.
 */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyTuple
  | PyList
  | PyDict
  | PySet
  | PyGlobal
  | PyObject
  | PyHost;

export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

export class PyList {
  constructor(readonly items: PyValue[] = []) {}
}

/** dict, collections.OrderedDict or collections.Counter: insertion-ordered, like Python's. */
export class PyDict {
  private readonly map = new Map<unknown, readonly [PyValue, PyValue]>();
  /** Instance attributes set by BUILD (a state_dict's `_metadata`). */
  attrs: PyValue = null;

  constructor(readonly type: 'dict' | 'collections.OrderedDict' | 'collections.Counter' = 'dict') {}

  get size(): number {
    return this.map.size;
  }

  /** Returns false when the key is unhashable in Python (list, dict, set). */
  set(key: PyValue, value: PyValue): boolean {
    const k = hashKey(key);
    if (k === undefined) return false;
    this.map.set(k, [key, value]);
    return true;
  }

  get(key: PyValue): PyValue | undefined {
    const k = hashKey(key);
    return k === undefined ? undefined : this.map.get(k)?.[1];
  }

  entries(): IterableIterator<readonly [PyValue, PyValue]> {
    return this.map.values();
  }
}

export class PySet {
  constructor(
    readonly items: PyValue[],
    readonly frozen: boolean,
  ) {}
}

/** A module-level name that passed the allowlist: a class or function the resolver understands. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}

  get path(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An instance of an inert class (torch.device, a TorchScript module object): its type and state. */
export class PyObject {
  state: PyValue = null;

  constructor(
    readonly type: PyGlobal,
    readonly args: readonly PyValue[] = [],
  ) {}
}

/** Base of values the resolver builds for its own needs (storages, tensors, dtypes). */
export abstract class PyHost {
  abstract describe(): string;
}

/**
 * Python's dict key identity for the hashable primitives (1, 1.0 and True are one key, as in
 * Python); tuples, bytes and host objects key by identity, which is enough for state dicts.
 */
function hashKey(key: PyValue): unknown {
  if (key === null) return 'n';
  switch (typeof key) {
    case 'string':
      return `s:${key}`;
    case 'boolean':
      return `i:${key ? 1 : 0}`;
    case 'number':
      return Number.isInteger(key) ? `i:${key}` : `f:${key}`;
    case 'bigint':
      return `i:${key}`;
    default:
      if (key instanceof PyList || key instanceof PyDict || (key instanceof PySet && !key.frozen)) return undefined;
      return key;
  }
}

/** A short description of a value's type for error messages. */
export function typeName(value: PyValue | undefined): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'None';
  switch (typeof value) {
    case 'boolean':
      return 'bool';
    case 'number':
      return Number.isInteger(value) ? 'int' : 'float';
    case 'bigint':
      return 'int';
    case 'string':
      return 'str';
  }
  if (value instanceof Uint8Array) return 'bytes';
  if (value instanceof PyTuple) return 'tuple';
  if (value instanceof PyList) return 'list';
  if (value instanceof PyDict) return value.type;
  if (value instanceof PySet) return value.frozen ? 'frozenset' : 'set';
  if (value instanceof PyGlobal) return value.path;
  if (value instanceof PyObject) return `${value.type.path} object`;
  return value.describe();
}

/** An int as a safe JavaScript number, or undefined (floats and huge ints are not). */
export function asInt(value: PyValue | undefined): number | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  return undefined;
}
