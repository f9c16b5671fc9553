import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../src/core/errors.js';
import { unpickle, type UnpickleOptions } from '../src/formats/pytorch/pickle.js';
import { PyDict, PyObject, PyTuple, type PyValue } from '../src/formats/pytorch/pickle-values.js';
import { parseStoragePid, torchResolver } from '../src/formats/pytorch/torch-globals.js';
import { StorageRef, TensorRef, TORCH_DTYPES } from '../src/formats/pytorch/torch-types.js';
import { bytes, describe as describeValue, formatError, local, u32, u64 } from './fixtures/pytorch/helpers.js';

/**
 * The safe unpickler against CPython's own pickles (pickles.json: one object at protocols 0-5,
 * made by make_pickles.py with the peers' Python 3.11) and against hand-assembled opcode streams
 * for the opcodes CPython's pickler does not emit for plain data.
 */

const options = (extra: Partial<UnpickleOptions> = {}): UnpickleOptions => ({ file: 'test.pkl', where: 'data.pkl', resolver: torchResolver(), ...extra });
const load = (b: Uint8Array, extra: Partial<UnpickleOptions> = {}): PyValue => unpickle(b, options(extra)).value;

const corpus = JSON.parse(readFileSync(local('pickles.json'), 'utf8')) as { value: unknown; pickles: Record<string, string> };

describe('CPython pickles, protocols 0 to 5', () => {
  for (const [protocol, hex] of Object.entries(corpus.pickles)) {
    it(`rebuilds the sample object from protocol ${protocol}`, () => {
      const value = load(Uint8Array.from(Buffer.from(hex, 'hex')));
      expect(describeValue(value)).toEqual(corpus.value);
    });
  }

  it('keeps shared references shared (the memo)', () => {
    const value = load(Uint8Array.from(Buffer.from(corpus.pickles['2']!, 'hex'))) as PyDict;
    const shared = value.get('shared') as unknown as { items: PyValue[] };
    expect(shared.items[0]).toBe(shared.items[1]);
  });
});

describe('opcodes CPython does not emit for plain data', () => {
  it('reads protocol 0/1 byte strings (STRING, BINSTRING, SHORT_BINSTRING) as torch.load does (UTF-8)', () => {
    expect(load(bytes("S'a\\'b\\x41\\n\\101'\n."))).toBe("a'bA\nA");
    expect(load(bytes('T', u32(3), 'abc.'))).toBe('abc');
    expect(load(bytes('U', 2, 'hi.'))).toBe('hi');
    // Not UTF-8: kept as bytes rather than guessed.
    expect(load(bytes('U', 1, 0xff, '.'))).toEqual(Uint8Array.of(0xff));
    expect(() => load(bytes('Sabc\n.'))).toThrow(/quoted STRING/);
  });

  it('reads the 8-byte-length and long forms (BINUNICODE8, BINBYTES8, BINBYTES, LONG4)', () => {
    expect(load(bytes(0x8d, u64(2n), 'ok.'))).toBe('ok');
    expect(load(bytes(0x8e, u64(1n), 'z.'))).toEqual(Uint8Array.of(0x7a));
    expect(load(bytes('B', u32(2), 'zz.'))).toEqual(Uint8Array.of(0x7a, 0x7a));
    expect(load(bytes(0x8b, u32(2), 0x00, 0x80, '.'))).toBe(-32768);
    expect(load(bytes(0x8a, 0, '.'))).toBe(0);
  });

  it('reads lone surrogates as Python does (surrogatepass)', () => {
    expect(load(bytes('X', u32(3), 0xed, 0xa0, 0x80, '.'))).toBe('\ud800');
    expect(() => load(bytes('X', u32(2), 0xc3, 0x28, '.'))).toThrow(FormatError);
  });

  it('handles stack and memo opcodes (POP, POP_MARK, DUP, PUT/GET, LONG_BINPUT/LONG_BINGET, MEMOIZE)', () => {
    expect(load(bytes('K', 1, 'K', 2, '0.'))).toBe(1);
    expect(load(bytes('K', 1, '(K', 2, 'K', 3, '1.'))).toBe(1);
    expect(describeValue(load(bytes('K', 5, '2', 0x86, '.')))).toEqual({ tuple: [5, 5] });
    expect(load(bytes('K', 9, 'p7\n0g7\n.'))).toBe(9);
    expect(load(bytes('K', 9, 'r', u32(70000), '0j', u32(70000), '.'))).toBe(9);
    expect(load(bytes(0x80, 4, 'K', 4, 0x94, '0h', 0, '.'))).toBe(4);
    // POP with an empty frame pops the MARK, as CPython does.
    expect(load(bytes('K', 1, '(0.'))).toBe(1);
  });

  it('builds protocol 0 containers (LIST, DICT, TUPLE, INST on an allowlisted class)', () => {
    expect(describeValue(load(bytes('(I1\nI2\nl.')))).toEqual([1, 2]);
    expect(describeValue(load(bytes("(V\\u00e9\nI01\nd.")))).toEqual({ dict: [['é', true]] });
    expect(describeValue(load(bytes('(L12345678901234567890L\nF-0.5\nt.')))).toEqual({ tuple: [{ int: '12345678901234567890' }, -0.5] });
    const od = load(bytes('(icollections\nOrderedDict\n.'));
    expect(od).toBeInstanceOf(PyDict);
    expect((od as PyDict).type).toBe('collections.OrderedDict');
  });

  it('calls allowlisted classes through OBJ, NEWOBJ and NEWOBJ_EX', () => {
    const global = bytes('ccollections\nOrderedDict\n');
    expect(load(bytes('(', global, 'o.'))).toBeInstanceOf(PyDict);
    expect(load(bytes(global, ')', 0x81, '.'))).toBeInstanceOf(PyDict);
    expect(load(bytes(global, ')}', 0x92, '.'))).toBeInstanceOf(PyDict);
    expect(() => load(bytes(global, ')}K', 1, 'K', 2, 's', 0x92, '.'))).toThrow(/without keyword arguments/);
  });

  it('applies BUILD to an OrderedDict (a state_dict with _metadata)', () => {
    const od = load(bytes('ccollections\nOrderedDict\n)R}X', u32(9), '_metadataK', 1, 'sb.')) as PyDict;
    expect(describeValue(od.attrs)).toEqual({ dict: [['_metadata', 1]] });
  });

  it('builds torch.device, torch.Size, complex and layouts as inert data', () => {
    const device = load(bytes('ctorch\ndevice\nX', u32(4), 'cuda', 'K', 0, 0x86, 'R.'));
    expect(device).toBeInstanceOf(PyObject);
    expect(describeValue(device)).toEqual({ object: 'torch.device', args: ['cuda', 0] });
    expect(describeValue(load(bytes('ctorch\nSize\nK', 2, 'K', 3, 0x86, 0x85, 'R.')))).toEqual({ tuple: [2, 3] });
  });

  it('reads a typed storage persistent id and rebuilds a strided tensor description', () => {
    const pid = bytes('(X', u32(7), 'storage', 'ctorch\nFloatStorage\n', 'X', u32(1), '0', 'X', u32(3), 'cpu', 'K', 6, 't');
    const stream = bytes('ctorch._utils\n_rebuild_tensor_v2\n(', pid, 'QK', 1, 'K', 2, 'K', 2, 0x86, 'K', 1, 'K', 2, 0x86, 0x88, ')t', 'R.');
    const refs: StorageRef[] = [];
    const t = load(stream, {
      persistentLoad: (p, site) => {
        const parsed = parseStoragePid(p, site, false);
        const ref = new StorageRef(parsed.key, parsed.storageClass.dtype!, parsed.numel * 4);
        refs.push(ref);
        return ref;
      },
    }) as TensorRef;
    expect(t).toBeInstanceOf(TensorRef);
    expect(t.storage).toBe(refs[0]);
    expect(refs[0]!.nbytes).toBe(24);
    expect([t.offset, t.size, t.stride, t.requiresGrad, t.dtype.name]).toEqual([1, [2, 2], [1, 2], true, 'float32']);
  });

  it('refuses persistent ids without a callback, and non-storage ids', () => {
    expect(() => load(bytes('P0\n.'))).toThrow(/no persistent ids/);
    const site = { position: 0, fail: (m: string): never => { throw new Error(m); }, charge: () => undefined };
    expect(() => parseStoragePid(new PyTuple(['module', null, null, null, null]), site, false)).toThrow(/"storage" persistent id/);
  });
});

describe('refusals and limits', () => {
  it('refuses unknown opcodes, extension codes and out-of-band buffers', () => {
    expect(formatError(() => load(bytes(0xff))).message).toMatch(/data\.pkl byte 0: a pickle opcode, not 0xff/);
    expect(() => load(bytes(0x82, 1, '.'))).toThrow(/extension code 1/);
    expect(() => load(bytes(0x80, 5, 0x97, '.'))).toThrow(/NEXT_BUFFER/);
    expect(() => load(bytes(0x80, 6, 'N.'))).toThrow(/protocol 0 to 5/);
  });

  it('reports truncated streams and stack underflow as FormatErrors at the opcode', () => {
    expect(formatError(() => load(bytes('X', u32(10), 'ab'))).message).toMatch(/byte 0: 10 more bytes .* \(truncated\?\)/);
    expect(formatError(() => load(bytes('K', 1))).message).toMatch(/STOP opcode/);
    expect(formatError(() => load(bytes('.'))).message).toMatch(/stack underflow/);
    expect(formatError(() => load(bytes('K', 1, 't.'))).message).toMatch(/a MARK before/);
    expect(formatError(() => load(bytes('h', 3, '.'))).message).toMatch(/memo entry 3/);
    expect(formatError(() => load(bytes(0x8d, u64(1n << 62n), '.'))).message).toMatch(/truncated/);
  });

  it('caps nesting, stack size, integer size and items built', () => {
    expect(() => load(new Uint8Array(100_000).fill(0x28))).toThrow(/nested MARKs/);
    expect(() => load(new Uint8Array(2_000_000).fill(0x4e))).toThrow(/values on the pickle stack/);
    expect(() => load(bytes(0x8b, u32(1 << 20), new Uint8Array(1 << 20), '.'))).toThrow(/integer of at most/);
    expect(() => load(bytes('I', '9'.repeat(5000), '\n.'))).toThrow(/4300 digits/);
    // "Billion laughs": a 100k-item list copied into a new set again and again.
    const list = bytes(']q', 0, '(', new Uint8Array(100_000).fill(0x4e), 'e');
    const copy = bytes('cbuiltins\nset\nh', 0, 0x85, 'R0');
    const stream = Buffer.concat([list, ...Array.from({ length: 2000 }, () => copy), bytes('N.')]);
    expect(() => load(stream)).toThrow(/container items/);
  });

  it('keeps lists that contain themselves finite (no recursion anywhere)', () => {
    const value = load(bytes(']q', 0, 'h', 0, 'a.'));
    expect((value as unknown as { items: PyValue[] }).items[0]).toBe(value);
  });

  it('refuses BUILD on anything but dicts, tensors and TorchScript objects', () => {
    expect(() => load(bytes('K', 1, '}b.'))).toThrow(/BUILD only on/);
  });

  it('returns the position after STOP, for concatenated pickles', () => {
    const two = bytes(0x80, 2, 'K', 1, '.', 0x80, 2, 'K', 2, '.');
    const first = unpickle(two, options());
    expect(first).toEqual({ value: 1, end: 5 });
    expect(unpickle(two, options(), first.end).value).toBe(2);
  });

  it('knows every dtype torch allowlists and builds tensors only for the ones modelbridge holds', () => {
    expect(TORCH_DTYPES.get('float8_e4m3fn')?.dtype).toBe('float8_e4m3fn');
    expect(TORCH_DTYPES.get('qint8')?.dtype).toBeUndefined();
    expect(load(bytes('ctorch\nbfloat16\n.'))).toMatchObject({ dtype: { name: 'bfloat16', size: 2 } });
  });
});
