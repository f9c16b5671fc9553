import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { dtypeBits, type DType } from '../src/core/dtypes.js';
import { FormatError, UsageError } from '../src/core/errors.js';
import { FileRangeSource, MemorySource, type ByteSource } from '../src/core/source.js';
import { Tensor } from '../src/core/tensor.js';
import {
  fromDType,
  looksLikeSafetensors,
  parseSafetensors,
  readSafetensorsFile,
  SAFETENSORS_DTYPES,
  serializeSafetensors,
  toDType,
  writeSafetensorsFile,
} from '../src/formats/safetensors/index.js';
import { build, errorName, headerText, REAL_FILES, VECTORS, vectors } from './safetensors.helpers.js';

const temp = mkdtempSync(join(tmpdir(), 'modelbridge-safetensors-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** Runs `fn` and returns the FormatError it throws (failing if it throws anything else or nothing). */
function formatError(fn: () => unknown): FormatError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(FormatError);
    return error as FormatError;
  }
  throw new Error('expected a FormatError');
}

/** Byte equality regardless of Buffer vs Uint8Array (vitest's deep equality tells them apart). */
const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

const parseError = (bytes: Uint8Array) => errorName(formatError(() => parseSafetensors(bytes, 'test.safetensors')));

describe('reference test vectors', () => {
  for (const vector of vectors()) {
    test(`${vector.file}: ${vector.expected}`, () => {
      const bytes = readFileSync(join(VECTORS, vector.file));
      const path = join(VECTORS, vector.file);
      if (vector.expected.startsWith('ok')) {
        const parsed = parseSafetensors(bytes, vector.file);
        for (const tensor of parsed.tensors.values()) expect(tensor.bytes().byteLength).toBe(tensor.byteLength);
        // The file reader, eager or lazy, accepts the same files and finds the same bytes.
        for (const lazy of [false, true]) {
          const read = readSafetensorsFile(path, { lazy });
          expect([...read.tensors.keys()]).toEqual([...parsed.tensors.keys()]);
          for (const [name, tensor] of read.tensors) expect(same(tensor.bytes(), parsed.tensors.get(name)!.bytes())).toBe(true);
        }
      } else {
        const name = vector.expected.replace(/^error:/, '');
        expect(parseError(bytes)).toBe(name);
        expect(errorName(formatError(() => readSafetensorsFile(path)))).toBe(name);
      }
    });
  }

  test('test_deserialization: values and metadata', () => {
    const parsed = parseSafetensors(readFileSync(join(VECTORS, 'test_deserialization.safetensors')), 'v');
    const tensor = parsed.tensors.get('test')!;
    expect(tensor.dtype).toBe('int32');
    expect(tensor.shape).toEqual([2, 2]);
    expect(tensor.toNumbers()).toEqual([0, 0, 0, 0]);
    expect(parsed.metadata).toBeUndefined();
    expect(parsed.dataOffset).toBe(68);
  });

  test('test_serialization_fp4: F4 reads as float4_e2m1fn_x2, two values per byte', () => {
    const parsed = parseSafetensors(readFileSync(join(VECTORS, 'test_serialization_fp4_expected_serialize_out_0.safetensors')), 'v');
    const tensor = parsed.tensors.get('attn.0')!;
    expect(tensor.dtype).toBe('float4_e2m1fn_x2');
    expect(tensor.shape).toEqual([1, 2]);
    expect(tensor.byteLength).toBe(1);
  });
});

describe('files written by Python safetensors', () => {
  // Expected values printed by safetensors 0.8.0 + torch 2.13 in .peers/venv:
  // load_file(path)[name].flatten()[i] (float32 values printed as exact doubles).
  test('burn multi_layer.safetensors', () => {
    const { tensors, metadata } = readSafetensorsFile(REAL_FILES.multiLayer);
    expect(metadata).toBeUndefined();
    expect([...tensors.keys()]).toEqual([
      'norm1.num_batches_tracked',
      'conv1.bias',
      'conv1.weight',
      'fc1.bias',
      'fc1.weight',
      'norm1.bias',
      'norm1.running_mean',
      'norm1.running_var',
      'norm1.weight',
    ]);
    const batches = tensors.get('norm1.num_batches_tracked')!;
    expect([batches.dtype, batches.shape]).toEqual(['int64', []]);
    expect(batches.toNumbers()).toEqual([1]);
    const bias = tensors.get('conv1.bias')!;
    expect([bias.dtype, bias.shape]).toEqual(['float32', [4]]);
    expect(Array.from(bias.toFloat32())).toEqual([0.13191646337509155, 0.03988170251250267, 0.061896324157714844, 0.14375224709510803]);
    expect(tensors.get('conv1.weight')!.shape).toEqual([4, 3, 3, 3]);
    const fc1 = tensors.get('fc1.weight')!;
    expect(fc1.shape).toEqual([16, 256]);
    expect(fc1.toFloat32()[0]).toBe(0.05926341563463211);
    expect(fc1.toFloat32()[16 * 256 - 1]).toBe(-0.03956901282072067);
    expect(Array.from(tensors.get('norm1.weight')!.toFloat32())).toEqual([1, 1, 1, 1]);
  });

  test('burn mnist.safetensors', () => {
    const { tensors } = readSafetensorsFile(REAL_FILES.mnist);
    expect(tensors.size).toBe(20);
    expect(tensors.get('norm1.num_batches_tracked')!.toNumbers()).toEqual([7504]);
    const fc1 = tensors.get('fc1.weight')!;
    expect([fc1.dtype, fc1.shape]).toEqual(['float32', [32, 11616]]);
    expect(fc1.toFloat32()[0]).toBe(-0.0002291733107995242);
    expect(fc1.toFloat32()[32 * 11616 - 1]).toBe(-0.0007706402102485299);
    expect(tensors.get('fc2.bias')!.toFloat32()[0]).toBe(0.08848035335540771);
    expect(tensors.get('norm2.running_var')!.toFloat32()[0]).toBe(54.63916778564453);
    expect(tensors.get('conv1.weight')!.shape).toEqual([8, 1, 3, 3]);
  });

  test('candle jfk-codes.safetensors and voices.safetensors', () => {
    const codes = readSafetensorsFile(REAL_FILES.jfkCodes).tensors.get('codes')!;
    expect([codes.dtype, codes.shape]).toEqual(['int64', [1, 2, 828]]);
    const values = codes.toNumbers();
    expect(values.slice(0, 3)).toEqual([865, 62, 408]);
    expect(values.at(-1)).toBe(889);
    expect(values.reduce((a, b) => a + b, 0)).toBe(960640);

    const voices = readSafetensorsFile(REAL_FILES.voices).tensors;
    expect([voices.get('tokens')!.dtype, voices.get('tokens')!.shape]).toEqual(['int64', [1, 982, 33]]);
    expect(voices.get('tokens')!.toNumbers().reduce((a, b) => a + b, 0)).toBe(25768678);
    expect([voices.get('mask')!.dtype, voices.get('mask')!.shape]).toEqual(['uint8', [1, 982, 33]]);
    expect(voices.get('mask')!.toNumbers().reduce((a, b) => a + b, 0)).toBe(24294);
  });

  test('all_dtypes.safetensors: every dtype torch can save', () => {
    // Written by safetensors.torch.save(..., metadata={"format": "pt"}); the bytes below are
    // what torch reports for the same tensors (tensor.view(torch.uint8)).
    const { tensors, metadata } = readSafetensorsFile(REAL_FILES.allDtypes);
    expect(metadata).toEqual({ format: 'pt' });
    const values = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5];
    for (const name of ['f64', 'f32', 'f16', 'bf16']) expect(Array.from(tensors.get(name)!.toFloat32())).toEqual(values);
    expect(tensors.get('i64')!.toNumbers()).toEqual([-2, -1, 0, 0, 1, 2]);
    expect(tensors.get('u64')!.toNumbers()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(Array.from(tensors.get('c64')!.toFloat32())).toEqual(values.flatMap((v) => [v, 0]));
    const raw = (name: string) => Array.from(tensors.get(name)!.bytes());
    expect(raw('f8e4m3')).toEqual([194, 188, 176, 48, 60, 66]);
    expect(raw('f8e5m2')).toEqual([193, 190, 184, 56, 62, 65]);
    expect(raw('f8e4m3fnuz')).toEqual([202, 196, 184, 56, 68, 74]);
    expect(raw('f8e5m2fnuz')).toEqual([197, 194, 188, 60, 66, 69]);
    expect(raw('f8e8m0')).toEqual([127, 128, 129, 126, 130, 131]);
    expect(raw('f4')).toEqual([33, 67, 101]);
    expect(raw('bool')).toEqual([1, 1, 1, 1, 1, 1]);
    const dtypes = Object.fromEntries([...tensors].map(([name, t]) => [name, t.dtype]));
    expect(dtypes).toMatchObject({
      f8e4m3: 'float8_e4m3fn',
      f8e5m2: 'float8_e5m2',
      f8e4m3fnuz: 'float8_e4m3fnuz',
      f8e5m2fnuz: 'float8_e5m2fnuz',
      f8e8m0: 'float8_e8m0fnu',
      f4: 'float4_e2m1fn_x2',
      c64: 'complex64',
      bool: 'bool',
      u16: 'uint16',
      u32: 'uint32',
    });
    // torch's float4_e2m1fn_x2 shape [1, 3] counts byte pairs; the header (and we) count fp4 values.
    expect(tensors.get('f4')!.shape).toEqual([1, 6]);
  });

  test('escapes.safetensors: names and metadata with quotes, controls and non-ASCII', () => {
    const { tensors, metadata } = readSafetensorsFile(REAL_FILES.escapes);
    expect(metadata).toEqual({ note: 'quote " backslash \\ newline \n tab \t ctrl \u0002 é 😀 \u2028' });
    for (const name of ['é', 'a"b', 'back\\slash', 'tab\there', 'ctrl\u0001\u001f', 'emoji😀', '😀', 'del\u007f', 'ls\u2028', '\uffff', '']) {
      expect(tensors.has(name)).toBe(true);
    }
    expect(tensors.get('scalar_i8')!.toNumbers()).toEqual([-3]);
  });
});

describe('writer reproduces the reference serializer byte for byte', () => {
  const expectedOutputs = vectors().filter((v) => v.kind.startsWith('expected output'));
  test.each(expectedOutputs.map((v) => v.file))('%s', (file) => {
    const bytes = readFileSync(join(VECTORS, file));
    const parsed = parseSafetensors(bytes, file);
    expect(Buffer.from(serializeSafetensors(parsed.tensors, parsed.metadata)).equals(bytes)).toBe(true);
  });

  test('the Rust tests, built from values rather than from the files', () => {
    const data = Tensor.from('float32', [1, 2, 3], [0, 1, 2, 3, 4, 5]);
    const out = serializeSafetensors(new Map([['attn.0', data]]));
    expect(Buffer.from(out).equals(readFileSync(join(VECTORS, 'test_serialization_expected_serialize_out_0.safetensors')))).toBe(true);
    const empty = serializeSafetensors(new Map(), { framework: 'pt' });
    expect(Buffer.from(empty).equals(readFileSync(join(VECTORS, 'test_empty_expected_serialize_out_1.safetensors')))).toBe(true);
    expect(Array.from(serializeSafetensors(new Map()))).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
  });

  test.each(Object.entries(REAL_FILES))('%s, written by Python', (_name, path) => {
    const bytes = readFileSync(path);
    const parsed = readSafetensorsFile(path);
    expect(Buffer.from(serializeSafetensors(parsed.tensors, parsed.metadata)).equals(bytes)).toBe(true);
    // The streaming writer produces the same bytes, from lazily read tensors too.
    const out = join(temp, 'rewrite.safetensors');
    writeSafetensorsFile(out, readSafetensorsFile(path, { lazy: true }).tensors, parsed.metadata);
    expect(readFileSync(out).equals(bytes)).toBe(true);
  });

  test('several metadata keys are written sorted (the reference order is a hash order)', () => {
    const out = serializeSafetensors(new Map(), { b: '2', a: '1', é: '3', '😀': '4', '\uffff': '5' });
    expect(headerText(out).trimEnd()).toBe('{"__metadata__":{"a":"1","b":"2","é":"3","\uffff":"5","😀":"4"}}');
  });

  test('undefined metadata is omitted, {} is written as the reference writes Some(empty)', () => {
    expect(headerText(serializeSafetensors(new Map())).trimEnd()).toBe('{}');
    expect(headerText(serializeSafetensors(new Map(), {})).trimEnd()).toBe('{"__metadata__":{}}');
  });
});

describe('dtypes', () => {
  test('the enum order matches the reference (Python wrote all_dtypes in descending order)', () => {
    expect(SAFETENSORS_DTYPES).toEqual([
      'BOOL', 'F4', 'F6_E2M3', 'F6_E3M2', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F8_E4M3FNUZ', 'F8_E5M2FNUZ',
      'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'C64', 'F64', 'I64', 'U64',
    ]);
    const order = [...headerText(readFileSync(REAL_FILES.allDtypes)).matchAll(/"dtype":"(\w+)"/g)].map((m) => m[1]);
    const ranks = order.map((code) => SAFETENSORS_DTYPES.indexOf(code as never));
    expect(ranks).toEqual([...ranks].sort((a, b) => b - a));
  });

  test('every safetensors dtype round-trips, aligned to its element size', () => {
    const tensors = new Map<string, Tensor>();
    for (const code of SAFETENSORS_DTYPES) {
      const dtype = toDType(code);
      expect(fromDType(dtype)).toBe(code);
      // 12 elements fill whole bytes for 4-, 6- and 8-bit types alike.
      const byteLength = (12 * dtypeBits(dtype)) / 8;
      const bytes = Uint8Array.from({ length: byteLength }, (_, i) => (i * 37 + code.length) & 0xff);
      tensors.set(`t.${code}`, Tensor.fromBytes(dtype, [3, 4], bytes));
    }
    tensors.set('scalar', Tensor.from('float64', [], [Math.PI]));
    tensors.set('empty', Tensor.fromBytes('int64', [0, 5], new Uint8Array(0)));
    const out = serializeSafetensors(tensors, { format: 'pt' });
    const parsed = parseSafetensors(out, 'roundtrip');
    expect(parsed.metadata).toEqual({ format: 'pt' });
    expect(new Set(parsed.tensors.keys())).toEqual(new Set(tensors.keys()));
    for (const [name, tensor] of tensors) {
      const back = parsed.tensors.get(name)!;
      expect([back.dtype, back.shape]).toEqual([tensor.dtype, tensor.shape]);
      expect(same(back.bytes(), tensor.bytes())).toBe(true);
      const elementBytes = Math.max(1, dtypeBits(tensor.dtype) / 8);
      expect(back.bytes().byteOffset % elementBytes).toBe(0);
    }
    expect(headerText(out)).toContain('"t.F6_E2M3":{"dtype":"F6_E2M3","shape":[3,4],"data_offsets"');
  });

  test('dtypes safetensors cannot store are a UsageError', () => {
    const complex128 = Tensor.fromBytes('complex128', [1], new Uint8Array(16));
    expect(() => serializeSafetensors(new Map([['z', complex128]]))).toThrow(UsageError);
    expect(() => serializeSafetensors(new Map([['s', Tensor.fromStrings([1], [new Uint8Array([104])])]]))).toThrow(/cannot store dtype string/);
    expect(() => writeSafetensorsFile(join(temp, 'never.safetensors'), new Map([['z', complex128]]))).toThrow(UsageError);
    expect(readdirSync(temp).filter((f) => f.includes('never'))).toEqual([]);
  });

  test('names and metadata that UTF-8 cannot carry are a UsageError', () => {
    const t = Tensor.from('float32', [1], [1]);
    expect(() => serializeSafetensors(new Map([['bad\ud800', t]]))).toThrow(UsageError);
    expect(() => serializeSafetensors(new Map(), { k: 'lone \udc00' })).toThrow(UsageError);
    expect(() => serializeSafetensors(new Map(), { k: 1 as unknown as string })).toThrow(UsageError);
    expect(() => serializeSafetensors(new Map([['neg', Tensor.fromBytes('uint8', [-1, 0], new Uint8Array(0))]]))).toThrow(/non-negative integers/);
  });
});

describe('header validation', () => {
  const u8 = (begin: number, end: number, shape = `[${end - begin}]`) => `{"dtype":"U8","shape":${shape},"data_offsets":[${begin},${end}]}`;

  test('overlapping tensors are an InvalidOffset (the reference test_json_attack)', () => {
    // Many tensors aliasing one byte range: accepting them would let a small file expand in memory.
    const entries = Array.from({ length: 10 }, (_, i) => `"weight_${i}":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}`);
    expect(parseError(build(`{${entries.join(',')}}`, new Uint8Array(16)))).toBe('InvalidOffset');
  });

  test('gaps, end before begin and a first tensor not at 0 are an InvalidOffset', () => {
    expect(parseError(build(`{"a":${u8(0, 1)},"b":${u8(2, 3)}}`, new Uint8Array(3)))).toBe('InvalidOffset');
    expect(parseError(build(`{"a":${u8(1, 2)}}`, new Uint8Array(2)))).toBe('InvalidOffset');
    expect(parseError(build(`{"a":${u8(0, 0, '[0]')},"b":${u8(1, 0, '[0]')}}`, new Uint8Array(1)))).toBe('InvalidOffset');
    const error = formatError(() => parseSafetensors(build(`{"a":${u8(0, 1)},"b":${u8(2, 3)}}`, new Uint8Array(3)), 'f'));
    expect(error.where).toBe('tensor "b"');
  });

  test('header order does not matter, data order does', () => {
    const parsed = parseSafetensors(build(`{"b":${u8(2, 3)},"a":${u8(0, 2)},"z":${u8(0, 0, '[0]')}}`, Uint8Array.of(1, 2, 3)), 'f');
    expect([...parsed.tensors.keys()]).toEqual(['z', 'a', 'b']);
    expect(Array.from(parsed.tensors.get('b')!.bytes())).toEqual([3]);
  });

  test('duplicate names and keys are rejected, though the reference keeps the last', () => {
    expect(parseError(build(`{"a":${u8(0, 1)},"a":${u8(0, 1)}}`, new Uint8Array(1)))).toBe('InvalidHeaderDeserialization');
    expect(parseError(build('{"__metadata__":{"k":"v","k":"w"}}'))).toBe('InvalidHeaderDeserialization');
    expect(parseError(build('{"__metadata__":{},"__metadata__":{}}'))).toBe('InvalidHeaderDeserialization');
    expect(parseError(build('{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)))).toBe('InvalidHeaderDeserialization');
    const error = formatError(() => parseSafetensors(build(`{"a":${u8(0, 1)},"a":${u8(0, 1)}}`, new Uint8Array(1)), 'f'));
    expect(error.where).toBe('header byte 61');
    expect(error.expected).toMatch(/tensor name "a" only once/);
  });

  test.each([
    ['a tensor entry with an extra property', '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}'],
    ['a missing field', '{"a":{"dtype":"U8","shape":[1]}}'],
    ['a null entry', '{"a":null}'],
    ['an array header', '[]'],
    ['a string shape', '{"a":{"dtype":"F32","shape":"x","data_offsets":[0,1]}}'],
    ['a negative dim', '{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}'],
    ['a fractional dim', '{"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}'],
    ['an exponent dim', '{"a":{"dtype":"U8","shape":[1e0],"data_offsets":[0,1]}}'],
    ['a dim beyond 2^64', '{"a":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,1]}}'],
    ['a leading zero', '{"a":{"dtype":"U8","shape":[01],"data_offsets":[0,1]}}'],
    ['three offsets', '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}}'],
    ['an unknown dtype', '{"a":{"dtype":"u8","shape":[1],"data_offsets":[0,1]}}'],
    ['a non-string metadata value', '{"__metadata__":{"k":1}}'],
    ['metadata as an array', '{"__metadata__":[]}'],
    ['a lone surrogate escape', '{"a\\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'],
    ['a raw control character', '{"a\nb":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'],
    ['a bad escape', '{"a\\x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'],
    ['a byte order mark', '\ufeff{}'],
    ['a form feed', '\f{}'],
    ['trailing characters', '{} x'],
    ['NUL padding', '{}\0\0'],
    ['a trailing comma', '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},}'],
    ['an empty header', ''],
  ])('%s is InvalidHeaderDeserialization', (_what, header) => {
    expect(parseError(build(header, new Uint8Array(1)))).toBe('InvalidHeaderDeserialization');
  });

  test('accepted: JSON whitespace on both sides, null metadata, escaped and empty names', () => {
    expect(parseSafetensors(build(' \t\r\n{"__metadata__":null} \n'), 'f').metadata).toBeUndefined();
    const parsed = parseSafetensors(build('{"\\u00e9\\ud83d\\ude00":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}', new Uint8Array(1)), 'f');
    expect([...parsed.tensors.keys()].sort()).toEqual(['', 'é😀']);
  });

  test('a metadata key named __proto__ stays an ordinary entry', () => {
    const { metadata } = parseSafetensors(build('{"__metadata__":{"__proto__":"x","a":"b"}}'), 'f');
    expect(Object.keys(metadata!)).toEqual(['__proto__', 'a']);
    expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype);
    expect(headerText(serializeSafetensors(new Map(), metadata)).trimEnd()).toBe('{"__metadata__":{"__proto__":"x","a":"b"}}');
  });

  test('sub-byte totals must fill whole bytes (MisalignedSlice)', () => {
    expect(parseError(build('{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}}', new Uint8Array(1)))).toBe('MisalignedSlice');
    expect(parseError(build('{"a":{"dtype":"F6_E3M2","shape":[3],"data_offsets":[0,2]}}', new Uint8Array(2)))).toBe('MisalignedSlice');
    const f6 = parseSafetensors(build('{"a":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[0,3]}}', new Uint8Array(3)), 'f');
    expect(f6.tensors.get('a')!.dtype).toBe('float6_e2m3fn');
  });

  test('sizes: overflow, wrong byte count, and the JavaScript 2^53 limit', () => {
    expect(parseError(build('{"a":{"dtype":"U64","shape":[4611686018427387904],"data_offsets":[0,1]}}', new Uint8Array(1)))).toBe('ValidationOverflow');
    // The reference overflows on the partial product even when a later dim is 0.
    expect(parseError(build('{"a":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}'))).toBe('ValidationOverflow');
    expect(parseError(build('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,1]}}', new Uint8Array(1)))).toBe('TensorInvalidInfo');
    // Accepted by the reference (0 elements) but beyond JavaScript's exact integers: refused.
    expect(parseError(build('{"a":{"dtype":"U8","shape":[1152921504606846976,0],"data_offsets":[0,0]}}'))).toBe('ValidationOverflow');
    expect(parseSafetensors(build('{"a":{"dtype":"U8","shape":[9007199254740991,0],"data_offsets":[0,0]}}'), 'f').tensors.get('a')!.shape).toEqual([
      9007199254740991, 0,
    ]);
  });

  test('the data must end exactly at the end of the file (MetadataIncompleteBuffer)', () => {
    expect(parseError(build(`{"a":${u8(0, 1)}}`, new Uint8Array(2)))).toBe('MetadataIncompleteBuffer');
    expect(parseError(build(`{"a":${u8(0, 2)}}`, new Uint8Array(1)))).toBe('MetadataIncompleteBuffer');
    expect(parseError(build('{}', new Uint8Array(1)))).toBe('MetadataIncompleteBuffer');
  });

  test('header length rules', () => {
    expect(parseError(new Uint8Array(7))).toBe('HeaderTooSmall');
    expect(parseError(build('{}', new Uint8Array(0), 100_000_001n))).toBe('HeaderTooLarge');
    expect(parseError(build('{}', new Uint8Array(0), 2n ** 64n - 1n))).toBe('HeaderTooLarge');
    expect(parseError(build('{}', new Uint8Array(0), 3n))).toBe('InvalidHeaderLength');
    // A length that cuts the JSON short leaves the rest as data: the header itself is then invalid.
    expect(parseError(build('{}', new Uint8Array(0), 1n))).toBe('InvalidHeaderDeserialization');
  });

  test('views are zero-copy into the given bytes', () => {
    const bytes = readFileSync(REAL_FILES.multiLayer);
    const tensor = parseSafetensors(bytes, 'f').tensors.get('fc1.weight')!;
    expect(tensor.source).toBeInstanceOf(MemorySource);
    expect(tensor.bytes().buffer).toBe(bytes.buffer);
  });
});

describe('reading files', () => {
  test('lazy reading gives the same bytes as reading in memory', () => {
    for (const path of [REAL_FILES.mnist, REAL_FILES.allDtypes, REAL_FILES.voices]) {
      const eager = readSafetensorsFile(path);
      const lazy = readSafetensorsFile(path, { lazy: true });
      expect(lazy.metadata).toEqual(eager.metadata);
      expect(lazy.dataOffset).toBe(eager.dataOffset);
      expect([...lazy.tensors.keys()]).toEqual([...eager.tensors.keys()]);
      for (const [name, tensor] of lazy.tensors) {
        expect(tensor.source).toBeInstanceOf(FileRangeSource);
        expect(eager.tensors.get(name)!.source).toBeInstanceOf(MemorySource);
        expect(same(tensor.bytes(), eager.tensors.get(name)!.bytes())).toBe(true);
        // Small chunks too: the streaming path the writer uses. A file source reuses its chunk
        // buffer, so each chunk is copied as it arrives.
        const chunks = Array.from(tensor.source.chunks(1000), (c) => Uint8Array.from(c));
        expect(same(Buffer.concat(chunks), eager.tensors.get(name)!.bytes())).toBe(true);
      }
    }
  });

  test('a missing file, a directory and a file shorter than its header are FormatErrors', () => {
    expect(formatError(() => readSafetensorsFile(join(temp, 'missing.safetensors'))).expected).toMatch(/ENOENT/);
    formatError(() => readSafetensorsFile(temp));
    const short = join(temp, 'short.safetensors');
    writeFileSync(short, readFileSync(REAL_FILES.multiLayer).subarray(0, 100));
    expect(errorName(formatError(() => readSafetensorsFile(short)))).toBe('InvalidHeaderLength');
  });
});

describe('writing files', () => {
  /** A byte source that yields `good` bytes and then throws, as a failing disk or network would. */
  function failingSource(byteLength: number, good: number): ByteSource {
    return {
      byteLength,
      read: () => {
        throw new Error('read failed');
      },
      *chunks() {
        yield new Uint8Array(good);
        throw new Error('source failed mid-stream');
      },
    };
  }

  test('a failure mid-stream leaves neither the file nor a temporary file', () => {
    const dir = mkdtempSync(join(temp, 'fail-'));
    const tensors = new Map([
      ['a', Tensor.from('float32', [4], [1, 2, 3, 4])],
      ['b', new Tensor('uint8', [1024], failingSource(1024, 100))],
    ]);
    expect(() => writeSafetensorsFile(join(dir, 'model.safetensors'), tensors)).toThrow(/mid-stream/);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('a source that yields fewer bytes than declared fails instead of writing a corrupt file', () => {
    const dir = mkdtempSync(join(temp, 'short-'));
    const liar: ByteSource = { byteLength: 8, read: () => new Uint8Array(8), chunks: () => [new Uint8Array(4)] };
    expect(() => writeSafetensorsFile(join(dir, 'x.safetensors'), new Map([['a', new Tensor('uint8', [8], liar)]]))).toThrow(/gave 4 bytes/);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('tensor bytes are streamed: a 96 MiB tensor is written without a 96 MiB buffer', () => {
    const dir = mkdtempSync(join(temp, 'big-'));
    const size = 96 * 1024 * 1024;
    const block = new Uint8Array(1024 * 1024).fill(7);
    let largestChunk = 0;
    const big: ByteSource = {
      byteLength: size,
      read: () => {
        throw new Error('the writer must not read the whole tensor at once');
      },
      *chunks(chunkSize: number) {
        largestChunk = Math.max(largestChunk, chunkSize);
        for (let at = 0; at < size; at += block.byteLength) yield block;
      },
    };
    const path = join(dir, 'big.safetensors');
    const before = process.memoryUsage().arrayBuffers;
    writeSafetensorsFile(path, new Map([['big', new Tensor('uint8', [size], big)]]), { k: 'v' });
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * 1024 * 1024);
    expect(largestChunk).toBeLessThanOrEqual(8 * 1024 * 1024);
    // Large files are read lazily by default, and re-written by streaming from the file.
    const read = readSafetensorsFile(path);
    expect(read.tensors.get('big')!.source).toBeInstanceOf(FileRangeSource);
    expect(read.metadata).toEqual({ k: 'v' });
    const copy = join(dir, 'copy.safetensors');
    writeSafetensorsFile(copy, read.tensors, read.metadata);
    expect(readSafetensorsFile(copy, { lazy: true }).tensors.get('big')!.byteLength).toBe(size);
    rmSync(dir, { recursive: true });
  });
});

describe('detection', () => {
  test('recognises safetensors from the first bytes', () => {
    for (const path of Object.values(REAL_FILES)) {
      const bytes = readFileSync(path);
      expect(looksLikeSafetensors(bytes.subarray(0, 64), bytes.byteLength)).toBe(true);
    }
    const leading = readFileSync(join(VECTORS, 'test_whitespace_leading_padded_header.safetensors'));
    expect(looksLikeSafetensors(leading, leading.byteLength)).toBe(true);
  });

  test('rejects other files', () => {
    const bytes = readFileSync(REAL_FILES.multiLayer);
    expect(looksLikeSafetensors(bytes.subarray(0, 64), 100)).toBe(false); // header beyond the file
    expect(looksLikeSafetensors(new Uint8Array(0), 0)).toBe(false);
    expect(looksLikeSafetensors(bytes.subarray(0, 8), bytes.byteLength)).toBe(false);
    expect(looksLikeSafetensors(Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0x76, 0), 1000)).toBe(false); // .npy
    expect(looksLikeSafetensors(build('[]'), 10)).toBe(false);
    expect(looksLikeSafetensors(build('{}', new Uint8Array(0), 100_000_001n), 200_000_000)).toBe(false);
  });
});

test('dtype names map both ways for every dtype safetensors has', () => {
  const ours: DType[] = SAFETENSORS_DTYPES.map(toDType);
  expect(new Set(ours).size).toBe(SAFETENSORS_DTYPES.length);
  expect(fromDType('complex128')).toBeUndefined();
  expect(fromDType('string')).toBeUndefined();
});
