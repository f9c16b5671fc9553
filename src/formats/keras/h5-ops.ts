import type { H5Group, H5WriteGroup } from './h5-types.js';

/**
 * Reading and writing HDF5 files with a loaded h5wasm module: the same code on Node's worker
 * thread (h5-node.ts runs this function's source text there, so it refers to nothing outside
 * itself) and on the browser build's calling thread (h5-web.ts). The module is typed loosely on
 * purpose: h5wasm's classes are used as they are, inside these two calls only.
 */
export interface H5Ops {
  /** The file's tree, and the buffers holding its datasets' bytes (to move rather than copy). Throws `LIMIT <path> <bytes>` past `limit` dataset bytes. */
  read(bytes: Uint8Array, limit: number): { root: H5Group; buffers: ArrayBuffer[] };
  write(root: H5WriteGroup): Uint8Array;
}

export function h5Ops(module: unknown): H5Ops {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- h5wasm's own API, used only in here
  const h5 = module as any;
  const DTYPES: Record<string, string> = { float32: '<f', float64: '<d', int32: '<i', int64: '<q', uint8: '|B', int8: '|b', int16: '<h', uint16: '<H', uint32: '<I' };
  const ARRAYS: Record<string, { new (buffer: ArrayBuffer, offset: number, length: number): ArrayBufferView; BYTES_PER_ELEMENT: number }> = {
    float32: Float32Array,
    float64: Float64Array,
    int32: Int32Array,
    int64: BigInt64Array,
    uint8: Uint8Array,
    int8: Int8Array,
    int16: Int16Array,
    uint16: Uint16Array,
    uint32: Uint32Array,
  };
  const plain = (v: unknown): unknown => {
    if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : String(v);
    if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<unknown>, plain);
    if (Array.isArray(v)) return v.map(plain);
    if (v === undefined) return null;
    if (typeof v === 'object' && v !== null) return String(v);
    return v;
  };
  const attrsOf = (obj: { attrs?: object; get_attribute(name: string, json: boolean): unknown }): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const name of obj.attrs ? Object.keys(obj.attrs) : []) {
      try {
        out[name] = plain(obj.get_attribute(name, true));
      } catch {
        out[name] = null;
      }
    }
    return out;
  };
  // h5wasm metadata: type 0 integer, 1 float, 8 enum (h5py's bool); size in bytes.
  const typeOf = (meta: { type: number; size: number; signed: boolean }): string => {
    if (meta.type === 1 && [2, 4, 8].includes(meta.size)) return 'f' + meta.size;
    if (meta.type === 0 && [1, 2, 4, 8].includes(meta.size)) return (meta.signed ? 'i' : 'u') + meta.size;
    if (meta.type === 8 && meta.size === 1) return 'b1';
    return 'other';
  };
  const ELEMENTS: Record<string, { from(values: unknown[]): ArrayBufferView }> = {
    f4: Float32Array,
    f8: Float64Array,
    i1: Int8Array,
    i2: Int16Array,
    i4: Int32Array,
    i8: BigInt64Array,
    u1: Uint8Array,
    u2: Uint16Array,
    u4: Uint32Array,
    u8: BigUint64Array,
    b1: Uint8Array,
  } as unknown as Record<string, { from(values: unknown[]): ArrayBufferView }>;
  const walk = (group: any, limit: number, total: { bytes: number }, out: any, buffers: ArrayBuffer[]): void => {
    for (const name of group.keys()) {
      const obj = group.get(name);
      if (obj instanceof h5.Group) {
        const child = { kind: 'group', attrs: attrsOf(obj), children: {} };
        out.children[name] = child;
        walk(obj, limit, total, child, buffers);
      } else if (obj instanceof h5.Dataset) {
        const meta = obj.metadata;
        const dtype = typeOf(meta);
        const shape = ((obj.shape ?? []) as unknown[]).map(Number);
        const count = shape.reduce((a, b) => a * b, 1);
        const entry: any = { kind: 'dataset', dtype, shape, attrs: attrsOf(obj) };
        if (dtype !== 'other') {
          total.bytes += count * meta.size;
          if (total.bytes > limit) throw new Error('LIMIT ' + (group.path === '/' ? '' : group.path) + '/' + name + ' ' + total.bytes);
          const value = obj.value;
          // A scalar dataset (Normalization's count) comes back as a plain number or bigint.
          const A = ELEMENTS[dtype];
          const big = dtype === 'i8' || dtype === 'u8';
          const view: ArrayBufferView = ArrayBuffer.isView(value)
            ? value
            : A && (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
              ? A.from([big ? BigInt(value) : Number(value)])
              : new Uint8Array(0);
          entry.data = new Uint8Array((view.buffer as ArrayBuffer).slice(view.byteOffset, view.byteOffset + view.byteLength));
          buffers.push(entry.data.buffer);
        }
        out.children[name] = entry;
      }
    }
  };
  const build = (group: any, spec: H5WriteGroup): void => {
    for (const [name, value] of spec.attrs ?? []) group.create_attribute(name, value);
    for (const [name, child] of spec.children) {
      if ('children' in child) build(group.create_group(name), child);
      else {
        const A = ARRAYS[child.dtype]!;
        const copy = child.data.slice();
        const data = new A(copy.buffer, 0, copy.byteLength / A.BYTES_PER_ELEMENT);
        group.create_dataset({ name, data, shape: child.shape, dtype: DTYPES[child.dtype] });
      }
    }
  };
  let serial = 0;
  // Each call uses a file of its own in h5wasm's in-memory file system, removed after.
  const withPath = <T>(run: (path: string) => T): T => {
    const path = '/modelbridge-' + serial++ + '.h5';
    try {
      return run(path);
    } finally {
      try {
        h5.FS.unlink(path);
      } catch {
        // never written
      }
    }
  };
  return {
    read: (bytes, limit) =>
      withPath((path) => {
        h5.FS.writeFile(path, bytes);
        const file = new h5.File(path, 'r');
        try {
          const root = { kind: 'group', attrs: attrsOf(file), children: {} };
          const buffers: ArrayBuffer[] = [];
          walk(file, limit, { bytes: 0 }, root, buffers);
          return { root: root as unknown as H5Group, buffers };
        } finally {
          file.close();
        }
      }),
    write: (root) =>
      withPath((path) => {
        // HDF5 stamps each object with the time it was made (H5Pset_obj_track_times, which
        // h5wasm does not expose); its clock is the WebAssembly runtime's Date.now, held at 0 here
        // so the same model always gives the same bytes.
        const now = Date.now;
        Date.now = () => 0;
        const file = new h5.File(path, 'w');
        try {
          build(file, root);
        } finally {
          file.close();
          Date.now = now;
        }
        return h5.FS.readFile(path) as Uint8Array;
      }),
  };
}
