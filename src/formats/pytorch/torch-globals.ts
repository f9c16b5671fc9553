import type { PickleResolver, Site } from './pickle.js';
import { asInt, PyDict, PyGlobal, PyList, PyObject, PySet, PyTuple, typeName, type PyValue } from './pickle-values.js';
import { DtypeValue, STORAGE_CLASSES, StorageClassValue, StorageRef, TensorRef, TORCH_DTYPES } from './torch-types.js';

/**
 * The allowlist: the globals torch's weights_only unpickler accepts (torch/_weights_only_unpickler.py
 * _get_allowed_globals, PyTorch 2.13) and what calling each of them means here. Calls build data
 * (dicts, tensor descriptions); nothing is imported or executed. Tensor kinds that cannot become a
 * plain dense tensor (sparse, quantized, nested, meta, wrapper subclasses) are refused when called.
 */

const REBUILDS = new Set([
  '_rebuild_tensor',
  '_rebuild_tensor_v2',
  '_rebuild_tensor_v3',
  '_rebuild_parameter',
  '_rebuild_parameter_with_state',
]);
const UNSUPPORTED_REBUILDS = new Set([
  '_rebuild_qtensor',
  '_rebuild_sparse_tensor',
  '_rebuild_meta_tensor_no_storage',
  '_rebuild_nested_tensor',
  '_rebuild_wrapper_subclass',
  '_rebuild_device_tensor_from_numpy',
  '_rebuild_device_tensor_from_cpu_tensor',
]);
const PLAIN = new Set([
  'collections.OrderedDict',
  'collections.Counter',
  'builtins.set',
  'builtins.frozenset',
  'builtins.bytearray',
  'builtins.complex',
  '_codecs.encode',
  'torch.Size',
  'torch.Tensor',
  'torch.device',
  'torch.nn.parameter.Parameter',
  'torch.serialization._get_layout',
  'torch._tensor._rebuild_from_type_v2',
  'torch.storage.TypedStorage',
  'torch.per_tensor_affine',
  'torch.per_tensor_symmetric',
  'torch.per_channel_affine',
  'torch.per_channel_symmetric',
  'torch.per_channel_affine_float_qparams',
]);
const TENSOR_CLASS = /^torch\.(cuda\.)?(sparse\.)?(BFloat16|Bool|Byte|Char|Double|Float|Half|Int|Long|Short)Tensor$/;
/** TorchScript's pure helpers (torch/jit/_pickle.py): each returns its first argument. */
const SCRIPT_HELPERS = new Set(['restore_type_tag', 'build_intlist', 'build_floatlist', 'build_doublelist', 'build_boollist', 'build_tensorlist']);

export interface TorchResolverOptions {
  /**
   * TorchScript archives pickle module objects as instances of `__torch__.*` classes. They are
   * inert here (an attribute dict), so reading their weights is safe; torch.load refuses them.
   */
  readonly torchScript?: boolean;
}

export function torchResolver(options: TorchResolverOptions = {}): PickleResolver {
  return {
    find(module, name) {
      const path = `${module}.${name}`;
      if (module === 'torch' && TORCH_DTYPES.has(name)) return new DtypeValue(TORCH_DTYPES.get(name)!);
      if ((module === 'torch' || module === 'torch.cuda') && STORAGE_CLASSES.has(name)) {
        return new StorageClassValue(name, TORCH_DTYPES.get(STORAGE_CLASSES.get(name)!));
      }
      if (path === 'torch.storage.UntypedStorage') return new StorageClassValue('UntypedStorage', undefined);
      if (PLAIN.has(path) || TENSOR_CLASS.test(path)) return new PyGlobal(module, name);
      if (module === 'torch._utils' && (REBUILDS.has(name) || UNSUPPORTED_REBUILDS.has(name))) return new PyGlobal(module, name);
      if (options.torchScript && (module === '__torch__' || module.startsWith('__torch__.'))) return new PyGlobal(module, name);
      if (options.torchScript && module === 'torch.jit._pickle' && SCRIPT_HELPERS.has(name)) return new PyGlobal(module, name);
      return undefined;
    },
    call: (callable, args, site) => call(callable, args, site),
    construct(cls: PyValue, args: readonly PyValue[], site: Site): PyValue {
      if (!(cls instanceof PyGlobal)) site.fail(`NEWOBJ on a class, not ${typeName(cls)}`);
      switch (cls.path) {
        case 'torch.nn.parameter.Parameter': {
          const data = args[0];
          if (!(data instanceof TensorRef)) site.fail(`a tensor for torch.nn.Parameter, got ${typeName(data)}`);
          return data.asParameter(args.length > 1 ? args[1] === true : true);
        }
        case 'collections.OrderedDict':
        case 'collections.Counter':
          return new PyDict(cls.path);
        case 'builtins.set':
          return new PySet([], false);
        case 'builtins.frozenset':
        case 'torch.Size':
        case 'torch.device':
        case 'builtins.complex':
          return call(cls, args, site);
      }
      if (cls.module === '__torch__' || cls.module.startsWith('__torch__.')) return new PyObject(cls, args);
      return site.fail(`refused to create a ${cls.path} object: only Parameter, containers and TorchScript module objects can be created`);
    },
    build(target: PyValue, state: PyValue, site: Site): void {
      if (target instanceof PyDict || target instanceof PyObject) {
        // OrderedDict's instance dict (a state_dict's _metadata), or a module object's attributes.
        if (target instanceof PyDict) target.attrs = state;
        else target.state = state;
        return;
      }
      // A Parameter or Tensor carrying Python attributes: they do not affect the weights.
      if (target instanceof TensorRef && (state === null || state instanceof PyDict)) return;
      site.fail(`BUILD only on dicts, tensors and TorchScript objects, not on ${typeName(target)}`);
    },
  };
}

function call(callable: PyValue, args: readonly PyValue[], site: Site): PyValue {
  if (!(callable instanceof PyGlobal)) return site.fail(`REDUCE on an allowlisted function, not ${typeName(callable)}`);
  const arg = (i: number): PyValue | undefined => args[i];
  switch (callable.path) {
    case 'collections.OrderedDict':
    case 'collections.Counter':
      return dictFrom(new PyDict(callable.path), arg(0), site);
    case 'builtins.set':
    case 'builtins.frozenset': {
      const items = sequence(arg(0) ?? new PyTuple([]), site, 'set items');
      site.charge(items.length);
      return new PySet([...items], callable.name === 'frozenset');
    }
    case 'builtins.bytearray': {
      const a = arg(0);
      if (a === undefined) return new Uint8Array(0);
      const bytes = a instanceof Uint8Array ? a : typeof a === 'string' ? encode(a, arg(1) ?? 'utf-8', site) : site.fail(`bytes for bytearray(), got ${typeName(a)}`);
      site.charge(bytes.byteLength / 8);
      return bytes.slice();
    }
    case '_codecs.encode': {
      const text = arg(0);
      if (typeof text !== 'string') return site.fail(`a str for _codecs.encode, got ${typeName(text)}`);
      return encode(text, arg(1) ?? 'utf-8', site);
    }
    case 'builtins.complex':
    case 'torch.device':
    case 'torch.serialization._get_layout':
      return new PyObject(callable, args);
    case 'torch.Size': {
      const items = sequence(arg(0) ?? new PyTuple([]), site, 'torch.Size items');
      site.charge(items.length);
      return new PyTuple([...items]);
    }
    case 'torch._tensor._rebuild_from_type_v2': {
      // (func, new_type, args, state): a tensor subclass or a tensor with Python attributes.
      const inner = arg(2);
      if (!(inner instanceof PyTuple)) return site.fail(`an argument tuple for _rebuild_from_type_v2, got ${typeName(inner)}`);
      const result = call(arg(0) ?? null, inner.items, site);
      const type = arg(1);
      if (!(type instanceof PyGlobal) || (type.path !== 'torch.Tensor' && type.path !== 'torch.nn.parameter.Parameter')) {
        return site.fail(`a torch.Tensor or Parameter from _rebuild_from_type_v2, not the subclass ${typeName(type ?? null)}`);
      }
      return result instanceof TensorRef && type.name === 'Parameter' ? result.asParameter(result.requiresGrad) : result;
    }
  }
  if (callable.module === 'torch._utils' && REBUILDS.has(callable.name)) return rebuild(callable.name, args, site);
  if (callable.module === 'torch._utils') {
    return site.fail(`a dense tensor; ${callable.path} builds a sparse, quantized, nested, meta or subclass tensor, which cannot be converted`);
  }
  if (callable.module === 'torch.jit._pickle') return arg(0) ?? null;
  return site.fail(`a call modelbridge understands; calling ${callable.path} is not supported`);
}

function rebuild(name: string, args: readonly PyValue[], site: Site): TensorRef {
  if (name === '_rebuild_parameter' || name === '_rebuild_parameter_with_state') {
    const data = args[0];
    if (!(data instanceof TensorRef)) return site.fail(`a tensor for ${name}, got ${typeName(data)}`);
    return data.asParameter(args[1] === true);
  }
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef)) return site.fail(`a storage (persistent id) as ${name}'s first argument, got ${typeName(storage)}`);
  let dtype = storage.dtype;
  let metadata: PyValue | undefined;
  if (name === '_rebuild_tensor_v3') {
    const d = args[6];
    if (!(d instanceof DtypeValue)) return site.fail(`a torch dtype as _rebuild_tensor_v3's 7th argument, got ${typeName(d)}`);
    dtype = d.dtype;
    metadata = args[7];
  } else if (name === '_rebuild_tensor_v2') {
    metadata = args[6];
  }
  const start = asInt(offset ?? null);
  if (start === undefined || start < 0) return site.fail(`a non-negative storage offset, got ${typeName(offset)}`);
  const dims = intList(size, site, 'size');
  const strides = intList(stride, site, 'stride');
  if (strides.length !== dims.length) site.fail(`as many strides as dimensions (${dims.length}), got ${strides.length}`);
  const flags = tensorFlags(metadata, site);
  const requiresGrad = name === '_rebuild_tensor' ? false : args[4] === true;
  return new TensorRef(storage, dtype, start, dims, strides, requiresGrad, false, flags);
}

/** The optional tensor metadata dict: torch records the lazy conjugate and negative bits there. */
function tensorFlags(metadata: PyValue | undefined, site: Site): { conj: boolean; neg: boolean } {
  if (metadata === undefined || metadata === null) return { conj: false, neg: false };
  if (!(metadata instanceof PyDict)) return site.fail(`a dict of tensor flags, got ${typeName(metadata)}`);
  const flags = { conj: false, neg: false };
  for (const [key, value] of metadata.entries()) {
    if (key === 'conj') flags.conj = value === true;
    else if (key === 'neg') flags.neg = value === true;
    else if (value !== false && value !== null) site.fail(`tensor flags conj/neg only, not ${String(key)}`);
  }
  return flags;
}

const MAX_RANK = 64;

function intList(value: PyValue | undefined, site: Site, what: string): number[] {
  const items = sequence(value ?? null, site, `a tensor ${what}`);
  if (items.length > MAX_RANK) site.fail(`a tensor ${what} of at most ${MAX_RANK} dimensions`);
  return items.map((v) => {
    const n = asInt(v);
    if (n === undefined || n < 0) site.fail(`non-negative integers in a tensor ${what}, got ${typeName(v)}`);
    return n;
  });
}

function sequence(value: PyValue, site: Site, what: string): readonly PyValue[] {
  if (value instanceof PyTuple || value instanceof PyList || value instanceof PySet) return value.items;
  return site.fail(`${what} as a tuple or list, got ${typeName(value)}`);
}

function dictFrom(dict: PyDict, source: PyValue | undefined, site: Site): PyDict {
  if (source === undefined) return dict;
  const pairs: (readonly [PyValue, PyValue])[] = [];
  if (source instanceof PyDict) pairs.push(...source.entries());
  else {
    for (const pair of sequence(source, site, 'dict items')) {
      if (!(pair instanceof PyTuple || pair instanceof PyList) || pair.items.length !== 2) site.fail(`(key, value) pairs, got ${typeName(pair)}`);
      pairs.push([pair.items[0]!, pair.items[1]!]);
    }
  }
  site.charge(pairs.length);
  for (const [k, v] of pairs) if (!dict.set(k, v)) site.fail(`a hashable dict key, not ${typeName(k)}`);
  return dict;
}

function encode(text: string, encoding: PyValue, site: Site): Uint8Array {
  if (typeof encoding !== 'string') return site.fail(`an encoding name, got ${typeName(encoding)}`);
  site.charge(text.length / 8);
  const e = encoding.toLowerCase().replaceAll('_', '-');
  if (e === 'latin1' || e === 'latin-1' || e === 'iso-8859-1' || e === 'ascii') {
    const out = new Uint8Array(text.length);
    const limit = e === 'ascii' ? 0x80 : 0x100;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c >= limit) site.fail(`${encoding} text for _codecs.encode`);
      out[i] = c;
    }
    return out;
  }
  if (e === 'utf-8' || e === 'utf8') return new TextEncoder().encode(text);
  return site.fail(`a latin-1, ASCII or UTF-8 encoding, not ${encoding}`);
}

export interface StoragePid {
  readonly key: string;
  readonly storageClass: StorageClassValue;
  readonly numel: number;
  readonly location: string;
  /** Legacy format: (view key, offset, size) in elements of the root storage, or undefined. */
  readonly view?: { readonly key: string; readonly offset: number; readonly size: number };
}

/**
 * A persistent id naming a storage: ("storage", storage class, key, location, numel) in the zip
 * format; the legacy format adds view metadata. Anything else is refused, as torch refuses it.
 */
export function parseStoragePid(pid: PyValue, site: Site, legacy: boolean): StoragePid {
  const arity = legacy ? 6 : 5;
  if (!(pid instanceof PyTuple) || pid.items.length !== arity) return site.fail(`a persistent id ("storage", class, key, location, numel${legacy ? ', view' : ''}), got ${typeName(pid)}`);
  const [tag, cls, key, location, numel, view] = pid.items;
  if (asText(tag) !== 'storage') return site.fail(`a "storage" persistent id, not ${typeName(tag ?? null)} ${String(asText(tag))}`);
  if (!(cls instanceof StorageClassValue)) return site.fail(`a storage class in the persistent id, got ${typeName(cls)}`);
  const k = asText(key);
  if (k === undefined) return site.fail(`a storage key (str), got ${typeName(key)}`);
  const n = asInt(numel ?? null);
  if (n === undefined || n < 0) return site.fail(`a non-negative element count, got ${typeName(numel)}`);
  const result = { key: k, storageClass: cls, numel: n, location: asText(location) ?? '' };
  if (!legacy || view === null) return result;
  if (!(view instanceof PyTuple) || view.items.length !== 3) return site.fail(`view metadata (key, offset, size) or None, got ${typeName(view)}`);
  const [vk, vo, vs] = view.items;
  const viewKey = asText(vk);
  const offset = asInt(vo ?? null);
  const size = asInt(vs ?? null);
  if (viewKey === undefined || offset === undefined || size === undefined || offset < 0 || size < 0) return site.fail('view metadata (str key, non-negative offset, non-negative size)');
  return { ...result, view: { key: viewKey, offset, size } };
}

/** str, or ASCII bytes as Python 2 pickles hold them (torch's _maybe_decode_ascii). */
function asText(value: PyValue | undefined): string | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array && value.every((b) => b < 0x80)) return new TextDecoder('latin1').decode(value);
  return undefined;
}
