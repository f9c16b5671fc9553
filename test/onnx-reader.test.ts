import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { FormatError, UsageError } from '../src/core/errors.js';
import { FileRangeSource } from '../src/core/source.js';
import { looksLikeOnnx, onnxFormat, onnxSchema, readOnnxModel, readOnnxTensor } from '../src/formats/onnx/index.js';
import { FIXTURES } from './cli-helpers.js';

const NODE_TESTS = join(FIXTURES, 'onnx', 'node');
const dir = mkdtempSync(join(tmpdir(), 'mb-onnx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Serializes a plain object as the named ONNX message with the project's own schema. */
function encode(type: string, message: object): Uint8Array {
  const t = onnxSchema().lookupType(`onnx.${type}`);
  return t.encode(t.fromObject(message)).finish();
}

const FLOAT = 1;
const le = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);
const tensorType = (elem: number, dims: object[]) => ({ tensor_type: { elem_type: elem, shape: { dim: dims } } });

/** A model with one Gemm node; `extra` is merged into the graph. */
function model(graph: object, opsets: object[] = [{ domain: '', version: 13 }]): Uint8Array {
  return encode('ModelProto', { ir_version: 8, producer_name: 'hand', opset_import: opsets, graph: { name: 'g', ...graph } });
}

describe('ONNX reader: hand-built models', () => {
  it('reads initializers from raw_data and the typed fields, exactly', () => {
    const bytes = model({
      initializer: [
        { name: 'raw', dims: [2, 2], data_type: FLOAT, raw_data: le([1, 2, 3, 4]) },
        { name: 'floats', dims: [2], data_type: FLOAT, float_data: [0.5, -1] },
        { name: 'halves', dims: [2], data_type: 10, int32_data: [0x3c00, 0xc000] }, // float16 1, -2
        { name: 'flags', dims: [3], data_type: 9, int32_data: [1, 0, 5] },
        { name: 'bytes', dims: [2], data_type: 3, int32_data: [-128, 127] },
        { name: 'longs', dims: [2], data_type: 7, int64_data: ['9007199254740993', '-5'] },
        { name: 'ulongs', dims: [1], data_type: 13, uint64_data: ['18446744073709551615'] },
        { name: 'doubles', dims: [1], data_type: 11, double_data: [0.1] },
        { name: 'empty', dims: [0, 3], data_type: FLOAT },
      ],
      output: [{ name: 'raw', type: tensorType(FLOAT, [{ dim_value: 2 }, { dim_value: 2 }]) }],
    });
    const m = readOnnxModel(bytes, 'hand.onnx');
    const w = m.weights;
    expect(w.get('raw')!.toNumbers()).toEqual([1, 2, 3, 4]);
    // raw_data stays a view into the file's bytes.
    expect(w.get('raw')!.bytes().buffer).toBe(bytes.buffer);
    expect(w.get('floats')!.toNumbers()).toEqual([0.5, -1]);
    expect(w.get('halves')!.dtype).toBe('float16');
    expect(w.get('halves')!.toNumbers()).toEqual([1, -2]);
    expect(w.get('flags')!.toNumbers()).toEqual([1, 0, 1]);
    expect(w.get('bytes')!.toNumbers()).toEqual([-128, 127]);
    expect(Array.from(w.get('longs')!.storage() as BigInt64Array)).toEqual([9007199254740993n, -5n]);
    expect(Array.from(w.get('ulongs')!.storage() as BigUint64Array)).toEqual([2n ** 64n - 1n]);
    expect(w.get('doubles')!.toNumbers()).toEqual([0.1]);
    expect(w.get('empty')!.shape).toEqual([0, 3]);
  });

  it('builds the graph: inputs without initializers, symbolic dims, attributes, opset of the default domain', () => {
    const bytes = model(
      {
        node: [
          {
            input: ['x', 'w', ''],
            output: ['y'],
            op_type: 'Gemm',
            domain: 'ai.onnx',
            attribute: [
              { name: 'alpha', type: 1, f: 0.5 },
              { name: 'transB', type: 2, i: 1 },
            ],
          },
          {
            // Gemm has no attributes of these types, and the reader refuses attributes an op's schema lacks.
            input: ['y'],
            output: ['z'],
            op_type: 'Custom',
            domain: 'com.example',
            attribute: [
              { name: 'mode', type: 3, s: new TextEncoder().encode('ünï') },
              { name: 'ks', type: 7, ints: [1, -2] },
              { name: 'fs', type: 6, floats: [0.25] },
              { name: 'ss', type: 8, strings: [new TextEncoder().encode('a')] },
              { name: 't', type: 4, t: { dims: [1], data_type: 7, int64_data: [42] } },
            ],
          },
        ],
        initializer: [{ name: 'w', dims: [1, 2], data_type: FLOAT, float_data: [1, 2] }],
        input: [
          { name: 'x', type: tensorType(FLOAT, [{ dim_param: 'batch' }, { dim_value: 2 }]) },
          { name: 'w', type: tensorType(FLOAT, [{ dim_value: 1 }, { dim_value: 2 }]) },
        ],
        output: [{ name: 'y', type: tensorType(FLOAT, [{}, { dim_value: 1 }]) }],
      },
      [
        { domain: 'ai.onnx.ml', version: 3 },
        { domain: 'ai.onnx', version: 11 },
      ],
    );
    const m = readOnnxModel(bytes, 'hand.onnx');
    const g = m.graph!;
    expect(g.opset).toBe(11);
    expect(g.inputs).toEqual([{ name: 'x', dtype: 'float32', shape: ['batch', 2] }]);
    expect(g.outputs).toEqual([{ name: 'y', dtype: 'float32', shape: [null, 1] }]);
    const node = g.nodes[0]!;
    expect(node).toMatchObject({ name: 'y', op: 'Gemm', domain: '', inputs: ['x', 'w', ''], outputs: ['y'] });
    expect(node.attributes['alpha']).toEqual({ type: 'float', value: 0.5 });
    expect(node.attributes['transB']).toEqual({ type: 'int', value: 1 });
    const a = g.nodes[1]!.attributes;
    expect(a['mode']).toEqual({ type: 'string', value: 'ünï' });
    expect(a['ks']).toEqual({ type: 'ints', value: [1, -2] });
    expect(a['fs']).toEqual({ type: 'floats', value: [0.25] });
    expect(a['ss']).toEqual({ type: 'strings', value: ['a'] });
    expect(a['t']?.type === 'tensor' && Array.from(a['t'].value.storage() as BigInt64Array)).toEqual([42n]);
    expect(m.signatures[0]!.inputs).toEqual(new Map([['x', 'x']]));
    expect(m.metadata).toMatchObject({ 'onnx.producer_name': 'hand', 'onnx.ir_version': '8' });
  });

  it('densifies sparse initializers', () => {
    const bytes = model({
      sparse_initializer: [
        {
          values: { name: 's', dims: [2], data_type: FLOAT, float_data: [5, 7] },
          indices: { dims: [2, 2], data_type: 7, int64_data: [0, 1, 1, 2] },
          dims: [2, 3],
        },
      ],
    });
    expect(readOnnxModel(bytes, 'sparse.onnx').weights.get('s')!.toNumbers()).toEqual([0, 5, 0, 0, 0, 7]);
  });

  it('reads external data beside the model, and refuses locations outside its directory', () => {
    writeFileSync(join(dir, 'weights.bin'), new Uint8Array([0, 0, 0, 0, ...le([3, 4])]));
    const external = (location: string, extra: object[] = []) =>
      model({ initializer: [{ name: 'e', dims: [2], data_type: FLOAT, data_location: 1, external_data: [{ key: 'location', value: location }, { key: 'offset', value: '4' }, ...extra] }] });
    const path = join(dir, 'model.onnx');
    const t = readOnnxModel(external('weights.bin'), path).weights.get('e')!;
    expect(t.source).toBeInstanceOf(FileRangeSource);
    expect(t.toNumbers()).toEqual([3, 4]);
    expect(() => readOnnxModel(external('../weights.bin'), path)).toThrow(/initializer e: an external data location inside the model's directory/);
    expect(() => readOnnxModel(external('weights.bin', [{ key: 'length', value: '4' }]), path)).toThrow(/initializer e: 8 bytes of external data/);
    expect(() => readOnnxModel(external('weights.bin'), path, { baseDir: null })).toThrow(FormatError);
  });
});

describe('ONNX reader: bad files', () => {
  it('names an initializer whose data is shorter than its shape', () => {
    const raw = model({ initializer: [{ name: 'fc1.weight', dims: [2, 3], data_type: FLOAT, raw_data: le([1, 2, 3, 4, 5]) }] });
    expect(() => readOnnxModel(raw, 'short.onnx')).toThrow(FormatError);
    expect(() => readOnnxModel(raw, 'short.onnx')).toThrow(/short\.onnx: initializer fc1\.weight: 24 bytes of raw_data for float32 \[2, 3\], got 20/);
    const typed = model({ initializer: [{ name: 'b', dims: [4], data_type: FLOAT, float_data: [1, 2] }] });
    expect(() => readOnnxModel(typed, 'short.onnx')).toThrow(/initializer b: 4 values in float_data for float32 \[4\], got 2/);
    const none = model({ initializer: [{ name: 'c', dims: [1], data_type: 7 }] });
    expect(() => readOnnxModel(none, 'short.onnx')).toThrow(/initializer c: 1 values in int64_data/);
  });

  it('turns truncated or corrupt protobuf into FormatError', () => {
    const good = model({ initializer: [{ name: 'w', dims: [4], data_type: FLOAT, raw_data: le([1, 2, 3, 4]) }] });
    for (const cut of [1, 7, good.length - 3]) {
      expect(() => readOnnxModel(good.subarray(0, cut), 'cut.onnx'), `cut at ${cut}`).toThrow(FormatError);
    }
    expect(() => readOnnxModel(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 'junk.onnx')).toThrow(/junk\.onnx: ModelProto protobuf: a well-formed protobuf message/);
    expect(() => readOnnxTensor(new Uint8Array([0x0a, 0x05, 0x01]), 'cut.pb')).toThrow(FormatError);
  });

  it('refuses a missing graph, unknown data types and negative dims', () => {
    expect(() => readOnnxModel(encode('ModelProto', { ir_version: 8 }), 'm.onnx')).toThrow(/a graph/);
    const int4 = model({ initializer: [{ name: 'q', dims: [2], data_type: 22, raw_data: new Uint8Array([0x21]) }] });
    expect(() => readOnnxModel(int4, 'm.onnx')).toThrow(/initializer q: a data type modelbridge supports \(got INT4\)/);
    const negative = model({ initializer: [{ name: 'n', dims: [-1], data_type: FLOAT }] });
    expect(() => readOnnxModel(negative, 'm.onnx')).toThrow(/initializer n: a non-negative size/);
  });

  it('reads graph attributes (control flow) as nested graphs, and reports type-proto attributes as unsupported content', () => {
    const withIf = model({ node: [{ input: ['c'], output: ['y'], op_type: 'If', name: 'branch', attribute: [{ name: 'then_branch', type: 5, g: { name: 'then', output: [{ name: 'outer' }] } }] }] });
    const then = readOnnxModel(withIf, 'if.onnx').graph!.nodes[0]!.attributes['then_branch']!;
    expect(then.type).toBe('graph');
    // A nested graph may leave its outputs' types to the node holding it.
    if (then.type === 'graph') expect([then.value.name, then.value.outputs.map((o) => [o.name, o.untyped])]).toEqual(['then', [['outer', true]]]);
    const withType = model({ node: [{ input: ['c'], output: ['y'], op_type: 'X', domain: 'com.example', name: 'typed', attribute: [{ name: 'tp', type: 13, tp: {} }] }] });
    expect(() => readOnnxModel(withType, 'tp.onnx')).toThrow(UsageError);
    expect(() => readOnnxModel(withType, 'tp.onnx')).toThrow(/attribute tp of node typed: TYPE_PROTO attributes are not supported/);
  });
});

describe('ONNX reader: fuzzed bytes', () => {
  it('only ever throws FormatError or UsageError', () => {
    const good = model({
      node: [{ input: ['x', 'w'], output: ['y'], op_type: 'MatMul', attribute: [{ name: 'k', type: 7, ints: [1, 2] }] }],
      initializer: [{ name: 'w', dims: [2, 2], data_type: FLOAT, raw_data: le([1, 2, 3, 4]) }, { name: 'i', dims: [2], data_type: 7, int64_data: [1, 2] }],
      input: [{ name: 'x', type: tensorType(FLOAT, [{ dim_param: 'n' }, { dim_value: 2 }]) }],
      output: [{ name: 'y', type: tensorType(FLOAT, [{ dim_param: 'n' }, { dim_value: 2 }]) }],
    });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.nat(good.length), (edits, cut) => {
        // A copy: `good` may be a Buffer, whose slice() is a view the edits would pile up in.
        const bytes = new Uint8Array(good.subarray(0, Math.max(1, cut)));
        for (const [at, value] of edits) if (at < bytes.length) bytes[at] = value;
        try {
          readOnnxModel(bytes, 'fuzz.onnx', { baseDir: null });
        } catch (e) {
          if (!(e instanceof FormatError || e instanceof UsageError)) throw e;
        }
      }),
      { numRuns: 2000, seed: 7 },
    );
  });
});

describe('ONNX reader: conformance fixtures', () => {
  it('reads test_gemm_all_attributes and its test data', () => {
    const at = join(NODE_TESTS, 'test_gemm_all_attributes');
    const m = readOnnxModel(readFileSync(join(at, 'model.onnx')), join(at, 'model.onnx'));
    const g = m.graph!;
    expect(g.opset).toBe(13);
    expect(g.inputs.map((i) => [i.name, i.shape])).toEqual([
      ['a', [4, 3]],
      ['b', [5, 4]],
      ['c', [1, 5]],
    ]);
    expect(g.nodes[0]!.attributes).toEqual({
      alpha: { type: 'float', value: Math.fround(0.25) },
      beta: { type: 'float', value: Math.fround(0.35) },
      transA: { type: 'int', value: 1 },
      transB: { type: 'int', value: 1 },
    });
    const file = join(at, 'model.onnx');
    expect(looksLikeOnnx(readFileSync(file).subarray(0, 64))).toBe(true);
    expect(onnxFormat.read(file, {}).graph!.nodes.map((n) => n.op)).toEqual(['Gemm']);
    const a = readOnnxTensor(readFileSync(join(at, 'test_data_set_0', 'input_0.pb')), 'input_0.pb');
    expect(a.dtype).toBe('float32');
    expect(a.shape).toEqual([4, 3]);
  });
});
