import { readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { convertModel, loadModel, saveModel } from '../src/api/load.js';
import { FormatError, UsageError } from '../src/core/errors.js';
import { WireType, WireWriter } from '../src/core/protowire.js';
import type { Model } from '../src/core/model.js';
import { FileRangeSource, MemorySource } from '../src/core/source.js';
import { Tensor } from '../src/core/tensor.js';
import { modelFromBundle } from '../src/module/bundle.js';
import { decodeModelProto, ONNX_LAZY_THRESHOLD, onnxSchema, readOnnxFile } from '../src/formats/onnx/index.js';
import { FIXTURES, tempDir } from './cli-helpers.js';

const ONNX_FIXTURES = join(FIXTURES, 'onnx');
const dir = tempDir('mb-onnx-lazy-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every lazy read in these tests: any file size, and every raw_data of 1 byte or more left in the file. */
const ALL_LAZY = { lazyThreshold: 0, lazyRawBytes: 1 } as const;
const EAGER = { lazyThreshold: Number.POSITIVE_INFINITY } as const;

/** A comparable form of anything a reader returns: tensors as dtype, shape and hex bytes; Maps as entry lists. */
function comparable(value: unknown): unknown {
  if (value instanceof Tensor) {
    const bytes = value.dtype === 'string' ? value.strings!.map((s) => Buffer.from(s).toString('hex')) : Buffer.from(value.bytes()).toString('hex');
    return { tensor: value.dtype, shape: value.shape, bytes };
  }
  if (value instanceof Map) return { map: [...value].map(([k, v]) => [k, comparable(v)]) };
  if (value instanceof Uint8Array) return { bytes: Buffer.from(value).toString('hex') };
  if (Array.isArray(value)) return value.map(comparable);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, comparable(v)]));
  return value;
}

type Outcome = { model: unknown } | { error: string; message: string };

function outcome(read: () => Model): Outcome {
  try {
    return { model: comparable(read()) };
  } catch (e) {
    if (e instanceof FormatError || e instanceof UsageError) return { error: e.name, message: e.message };
    throw e;
  }
}

function onnxFiles(root: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) out.push(...onnxFiles(path));
    else if (entry.name.endsWith('.onnx')) out.push(path);
  }
  return out.sort();
}

/** Serializes a plain object as the named ONNX message with the project's own schema. */
function encode(type: string, message: object): Uint8Array {
  const t = onnxSchema().lookupType(`onnx.${type}`);
  return t.encode(t.fromObject(message)).finish();
}

const FLOAT = 1;
const floats = (n: number, seed = 1) => new Uint8Array(Float32Array.from({ length: n }, (_, i) => Math.sin(i * seed)).buffer);
const tensorType = (dims: object[]) => ({ tensor_type: { elem_type: FLOAT, shape: { dim: dims } } });

/** A model with every kind of initializer storage, metadata and a node attribute tensor. */
function handModel(side = 32): Uint8Array {
  return encode('ModelProto', {
    ir_version: 8,
    producer_name: 'hand',
    opset_import: [{ domain: '', version: 13 }],
    metadata_props: [{ key: 'k', value: 'v' }],
    graph: {
      name: 'g',
      node: [
        { input: ['x', 'w'], output: ['h'], op_type: 'MatMul' },
        { input: [], output: ['c'], op_type: 'Constant', attribute: [{ name: 'value', type: 4, t: { dims: [2], data_type: FLOAT, raw_data: floats(2) } }] },
        { input: ['h', 'b'], output: ['y'], op_type: 'Add' },
      ],
      initializer: [
        { name: 'w', dims: [side, side], data_type: FLOAT, raw_data: floats(side * side) },
        { name: 'b', dims: [side], data_type: FLOAT, float_data: [...new Float32Array(floats(side).buffer)] },
        { name: 'i', dims: [3], data_type: 7, int64_data: [1, -2, 3] },
        { name: 'e', dims: [0], data_type: FLOAT, raw_data: new Uint8Array(0) },
      ],
      sparse_initializer: [{ values: { name: 's', dims: [2], data_type: FLOAT, raw_data: floats(2, 3) }, indices: { dims: [2], data_type: 7, int64_data: [0, 3] }, dims: [4] }],
      input: [{ name: 'x', type: tensorType([{ dim_param: 'n' }, { dim_value: side }]) }],
      output: [{ name: 'y', type: tensorType([{ dim_param: 'n' }, { dim_value: side }]) }],
    },
  });
}

describe('ONNX lazy reader: the same Model as a whole-file read', () => {
  const files = onnxFiles(ONNX_FIXTURES);

  it('for every ONNX fixture, with every raw_data left in the file', () => {
    expect(files.length).toBeGreaterThan(1000);
    let ranges = 0;
    for (const file of files) {
      const eager = outcome(() => readOnnxFile(file, EAGER));
      expect(outcome(() => readOnnxFile(file, ALL_LAZY)), file).toEqual(eager);
      if ('model' in eager) {
        for (const t of readOnnxFile(file, ALL_LAZY).weights.values()) if (t.source instanceof FileRangeSource) ranges++;
      }
    }
    // The fixtures' initializers are mostly raw_data: they must be read through file ranges.
    expect(ranges).toBeGreaterThan(500);
  });

  it('leaves raw_data of lazyRawBytes or more in the file (FileRangeSource), smaller ones in memory', () => {
    const LEFT = 64;
    let left = 0;
    let kept = 0;
    for (const file of files) {
      let model: Model;
      try {
        model = readOnnxFile(file, { lazyThreshold: 0, lazyRawBytes: LEFT });
      } catch {
        continue;
      }
      const graph = decodeModelProto(readFileSync(file), file).graph!;
      for (const t of graph.initializer) {
        const raw = Object.prototype.hasOwnProperty.call(t, 'raw_data') && t.data_location !== 1 ? t.raw_data.byteLength : 0;
        const tensor = model.graph!.initializers.get(t.name);
        if (!tensor || tensor.dtype === 'string' || raw === 0) continue;
        expect(tensor.source, `${file} ${t.name}`).toBeInstanceOf(raw >= LEFT ? FileRangeSource : MemorySource);
        if (raw >= LEFT) left++;
        else kept++;
      }
    }
    expect(left).toBeGreaterThan(100);
    expect(kept).toBeGreaterThan(100);
  });

  it('reads the hand-built model (typed fields, sparse, attributes, metadata) the same way', () => {
    const path = join(dir, 'hand.onnx');
    writeFileSync(path, handModel());
    const lazy = readOnnxFile(path, ALL_LAZY);
    expect(comparable(lazy)).toEqual(comparable(readOnnxFile(path, EAGER)));
    expect(lazy.weights.get('w')!.source).toBeInstanceOf(FileRangeSource);
    expect(lazy.weights.get('b')!.source).toBeInstanceOf(MemorySource);
    // By default only raw_data of 4 KiB or more stays in the file: w has 4096 bytes, the sparse values 8.
    const byDefault = readOnnxFile(path, { lazyThreshold: 0 });
    expect(byDefault.weights.get('w')!.source).toBeInstanceOf(FileRangeSource);
    expect(byDefault.weights.get('s')!.source).toBeInstanceOf(MemorySource);
    expect(comparable(byDefault)).toEqual(comparable(lazy));
    expect(lazy.metadata['k']).toBe('v');
  });
});

describe('ONNX lazy reader: protobuf corners decode as protobufjs decodes the whole file', () => {
  /** A TensorProto's bytes; `raws` are its raw_data fields in order (protobufjs keeps the last). */
  function tensor(name: string, raws: Uint8Array[], extra: (w: WireWriter) => void = () => {}): Uint8Array {
    const w = new WireWriter().packedVarints(1, [raws.at(-1)!.byteLength / 4]).varint(2, FLOAT);
    extra(w);
    for (const raw of raws) w.bytes(9, raw);
    return w.string(8, name).finish();
  }
  const group = (w: WireWriter, field: number) => w.key(field, WireType.SGROUP).varint(1, 5).key(2, WireType.SGROUP).bytes(3, floats(2)).key(2, WireType.EGROUP).key(field, WireType.EGROUP);

  it('repeated graph fields merge, the last raw_data wins, mistyped and unknown fields and groups are skipped', () => {
    const big = floats(64);
    const model = new WireWriter()
      .varint(1, 8)
      .message(8, (w) => w.string(1, '').varint(2, 13))
      .varint(7, 1) // field 7 as a varint: not the graph, an unknown field to protobufjs
      .message(7, (g) => {
        g.string(2, 'first');
        g.bytes(5, tensor('a', [big, floats(3)])); // a big raw_data replaced by a small one
        g.bytes(5, tensor('b', [floats(3), big], (w) => group(w, 40))); // a small one replaced by a big one, a group inside
        g.varint(5, 3); // initializer as a varint: skipped
      })
      .fixed32(99, 7)
      .message(7, (g) => {
        g.bytes(5, tensor('c', [big, big.subarray(0, 128)]));
        g.bytes(5, tensor('d', [big]));
        group(g, 41);
        g.key(9, WireType.VARINT).writeVarint(0);
      });
    group(model, 50);
    model.message(14, (w) => w.string(1, 'k').string(2, 'v'));
    const path = join(dir, 'corners.onnx');
    writeFileSync(path, model.finish());
    const eager = readOnnxFile(path, EAGER);
    expect([...eager.weights.keys()]).toEqual(['a', 'b', 'c', 'd']);
    for (const options of [ALL_LAZY, { lazyThreshold: 0, lazyRawBytes: 200 }]) {
      const lazy = readOnnxFile(path, options);
      expect(comparable(lazy)).toEqual(comparable(eager));
      const sources = [...lazy.weights.values()].map((t) => t.source.constructor.name);
      expect(sources).toEqual(options === ALL_LAZY ? ['FileRangeSource', 'FileRangeSource', 'FileRangeSource', 'FileRangeSource'] : ['MemorySource', 'FileRangeSource', 'MemorySource', 'FileRangeSource']);
    }
  });

  it('refuses what protobufjs refuses: field number 0, end-group without a start, wire types 6 and 7', () => {
    const path = join(dir, 'keys.onnx');
    const base = encode('ModelProto', { ir_version: 8, opset_import: [{ domain: '', version: 13 }], graph: { name: 'g' } });
    for (const key of [[0x00, 0x01], [0x0c], [0x0e], [0x0f], [0xff, 0xff, 0xff, 0xff, 0x7f, 0x01]]) {
      writeFileSync(path, Buffer.concat([base, Buffer.from(key)]));
      expect(() => readOnnxFile(path, EAGER), `eager, key ${key}`).toThrow(FormatError);
      expect(() => readOnnxFile(path, ALL_LAZY), `lazy, key ${key}`).toThrow(FormatError);
    }
  });
});

describe('ONNX lazy reader: bad files', () => {
  it('gives one FormatError naming the file and where for a truncated file', () => {
    const good = handModel();
    const path = join(dir, 'cut.onnx');
    // Inside the big raw_data, inside the graph's headers, and in the middle of a field key.
    for (const cut of [1, 7, 40, good.length >> 1, good.length - 3]) {
      writeFileSync(path, good.subarray(0, cut));
      expect(() => readOnnxFile(path, EAGER), `eager, cut at ${cut}`).toThrow(FormatError);
      expect(() => readOnnxFile(path, ALL_LAZY), `lazy, cut at ${cut}`).toThrow(FormatError);
    }
    writeFileSync(path, good);
    const payload = Buffer.from(good).indexOf(Buffer.from(floats(1024)));
    truncateSync(path, payload + 100);
    expect(() => readOnnxFile(path, ALL_LAZY)).toThrow(/cut\.onnx: ModelProto field 7 at byte \d+: \d+ bytes inside the file, which ends at byte \d+ \(it is truncated/);
  });

  it('gives a FormatError for a raw_data length that runs past its TensorProto', () => {
    const bytes = Buffer.from(handModel());
    const payload = bytes.indexOf(Buffer.from(floats(1024)));
    // raw_data's key and its length 4096 (0x80 0x20) just before the payload: make it 4224, past
    // the end of the tensor (raw_data is its last field) but not of the file.
    expect([...bytes.subarray(payload - 3, payload)]).toEqual([0x4a, 0x80, 0x20]);
    bytes[payload - 1] = 0x21;
    const path = join(dir, 'long.onnx');
    writeFileSync(path, bytes);
    expect(() => readOnnxFile(path, EAGER)).toThrow(FormatError);
    expect(() => readOnnxFile(path, ALL_LAZY)).toThrow(/long\.onnx: graph initializer 0 field 9 at byte \d+: 4224 bytes inside its message, which ends at byte \d+/);
  });

  it('checks a raw_data left in the file against dtype and shape, as for one in memory', () => {
    const bytes = encode('ModelProto', {
      ir_version: 8,
      opset_import: [{ domain: '', version: 13 }],
      graph: { name: 'g', initializer: [{ name: 'fc1.weight', dims: [2, 3], data_type: FLOAT, raw_data: floats(5) }] },
    });
    const path = join(dir, 'short.onnx');
    writeFileSync(path, bytes);
    const message = /short\.onnx: initializer fc1\.weight: 24 bytes of raw_data for float32 \[2, 3\], got 20/;
    expect(() => readOnnxFile(path, EAGER)).toThrow(message);
    expect(() => readOnnxFile(path, ALL_LAZY)).toThrow(message);
  });

  it('garbled bytes: the same outcome as a whole-file read, and only FormatError or UsageError', () => {
    // Small weights, so that most edits land in the headers the skeleton walks. A Uint8Array copy:
    // protobufjs gives a Buffer, whose slice() is a view that the edits would corrupt for good.
    const good = Uint8Array.from(handModel(3));
    const path = join(dir, 'fuzz.onnx');
    const seen = { model: 0, error: 0 };
    fc.assert(
      // Half the cases keep every byte: edits alone leave many files readable, which must then agree.
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.option(fc.nat(good.length), { freq: 1 }), (edits, cut) => {
        const bytes = good.slice(0, Math.max(1, cut ?? good.length));
        for (const [at, value] of edits) if (at < bytes.length) bytes[at] = value;
        writeFileSync(path, bytes);
        const eager = outcome(() => readOnnxFile(path, EAGER));
        const lazy = outcome(() => readOnnxFile(path, ALL_LAZY));
        // Protobuf errors may word the place differently; the kind of outcome and any model must match.
        if ('model' in eager) expect(lazy).toEqual(eager);
        else expect('error' in lazy && lazy.error).toBe(eager.error);
        seen['model' in eager ? 'model' : 'error']++;
      }),
      { numRuns: 3000, seed: 11 },
    );
    expect(seen.model).toBeGreaterThan(300);
    expect(seen.error).toBeGreaterThan(300);
  });
});

describe('ONNX lazy reader: a model above the 64 MiB threshold', () => {
  it('reads a 4200x4200 Linear written by the ONNX writer lazily and converts it to safetensors bit for bit', () => {
    const n = 4200;
    const words = new Uint32Array(n * n);
    for (let i = 0; i < words.length; i++) words[i] = (Math.imul(i, 2654435761) >>> 9) | 0x3c000000; // varied finite floats
    const weight = Tensor.fromBytes('float32', [n, n], new Uint8Array(words.buffer));
    const bias = Tensor.fromBytes('float32', [n], floats(n));
    const spec = { type: 'Sequential', modules: [{ type: 'Linear', in_features: n, out_features: n, bias: true }] };
    const model = modelFromBundle({ tensors: new Map([['0.weight', weight], ['0.bias', bias]]), metadata: {} }, 'test', 'memory', spec);
    const onnx = join(dir, 'linear.onnx');
    saveModel(model, onnx);
    expect(statSync(onnx).size).toBeGreaterThan(ONNX_LAZY_THRESHOLD);

    const read = loadModel(onnx);
    expect(read.module).toEqual(spec);
    expect(read.weights.get('0.weight')!.source).toBeInstanceOf(FileRangeSource);
    expect(read.weights.get('0.bias')!.source).toBeInstanceOf(FileRangeSource);

    const out = join(dir, 'linear.safetensors');
    convertModel(onnx, out, { verify: true });
    const back = loadModel(out);
    expect(Buffer.compare(back.weights.get('0.weight')!.bytes(), weight.bytes())).toBe(0);
    expect(Buffer.compare(back.weights.get('0.bias')!.bytes(), bias.bytes())).toBe(0);
    expect(back.module).toEqual(spec);
  });
});
