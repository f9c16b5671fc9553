import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { FileRangeSource } from '../src/core/source.js';
import { Tensor } from '../src/core/tensor.js';
import { FormatError } from '../src/core/errors.js';
import { readTensorBundle, writeTensorBundle } from '../src/formats/tensorbundle/index.js';
import { peerPython } from './peers.js';

/**
 * TensorBundle against real TensorFlow (the peers' virtualenv): we read checkpoints TensorFlow
 * writes now and rewrite them byte for byte, and TensorFlow's own checkpoint reader (which checks
 * every CRC) reads the checkpoints we write with the exact bytes we put in.
 */

const python = peerPython();
const tmp = mkdtempSync(join(tmpdir(), 'tensorbundle-tf-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs a Python script with TensorFlow quiet; returns its stdout parsed as JSON. */
function runPython(script: string, args: string[]): unknown {
  const file = join(tmp, `script-${Math.random().toString(36).slice(2)}.py`);
  writeFileSync(file, script);
  const r = spawnSync(python!, [file, ...args], {
    encoding: 'utf8',
    timeout: 300_000,
    maxBuffer: 1 << 28,
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3', PYTHONDONTWRITEBYTECODE: '1', CUDA_VISIBLE_DEVICES: '' },
  });
  if (r.status !== 0) throw new Error(`python exited with ${r.status}: ${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** What a tensor holds, comparable across languages: dtype, shape, hex bytes (sha256 when large) or hex strings. */
interface Described {
  dtype: string;
  shape: number[];
  bytes?: string;
  strings?: string[];
}

const PY_DESCRIBE = `
import hashlib, json, sys
import numpy as np
def describe(dtype, value):
    a = np.asarray(value)
    if dtype == 'string':
        return {'dtype': dtype, 'shape': list(a.shape), 'strings': [bytes(s).hex() for s in a.reshape(-1)]}
    raw = np.ascontiguousarray(a).tobytes()
    return {'dtype': dtype, 'shape': list(a.shape), 'bytes': raw.hex() if len(raw) <= 4096 else 'sha256:' + hashlib.sha256(raw).hexdigest()}
`;

function describe_(t: Tensor): Described {
  if (t.dtype === 'string') return { dtype: 'string', shape: [...t.shape], strings: t.strings!.map((s) => Buffer.from(s).toString('hex')) };
  const raw = t.bytes();
  const bytes = raw.byteLength <= 4096 ? Buffer.from(raw).toString('hex') : `sha256:${createHash('sha256').update(raw).digest('hex')}`;
  return { dtype: t.dtype, shape: [...t.shape], bytes };
}

const PY_WRITE = `${PY_DESCRIBE}
import os
import tensorflow as tf
prefix = sys.argv[1]
rng = np.random.default_rng(0)
names, tensors = [], []
def add(name, value, dtype=None):
    names.append(name)
    tensors.append(tf.constant(value, dtype=dtype))
add('f32', rng.standard_normal((3, 4)).astype(np.float32))
add('f16', np.array([1.5, -2, 65504, 6e-8, -0.0], np.float16))
add('bf16', [1.0, -3.5, 1e30, 3.14159], tf.bfloat16)
add('f64', np.array([np.pi, -np.e, 1e-300], np.float64))
add('i64', np.array([-(2**63), 2**63 - 1, 0, -1], np.int64))
add('i32', np.array([[1, -2], [3, 4]], np.int32))
add('i16', np.array([-300, 300], np.int16))
add('i8', np.array([-128, 127], np.int8))
add('u8', np.array([0, 255], np.uint8))
add('u16', np.array([65535], np.uint16))
add('u32', np.array([4294967295], np.uint32))
add('u64', np.array([2**64 - 1], np.uint64))
add('bool', np.array([True, False, True]))
add('c64', np.array([1 + 2j, -3.5j], np.complex64))
add('c128', np.array([3 - 4j], np.complex128))
add('str', np.array([b'', b'hello', b'\\x00\\xff' * 100, 'é'.encode()], object))
add('str_scalar', b'just one')
add('str_long', np.array([b'x' * 300000], object))
add('empty_f32', np.zeros((0, 3), np.float32))
add('empty_str', tf.zeros((0,), tf.string))
add('scalar', np.float32(7))
add('big', rng.standard_normal((4096, 4096)).astype(np.float32))
# Enough long names for an index of several 256 KiB blocks, and one name over two blocks long.
for i in range(5000):
    add(f'layer_{i:05d}/with/a/rather/long/name/to/fill/the/index/blocks/kernel', np.array([i], np.int32))
add('zz_' + 'x' * 530000, np.array([1], np.int8))
# Not in key order: TensorFlow lays the data out in this (Add) order.
order = list(range(len(names)))
rng.shuffle(order)
tf.raw_ops.SaveV2(prefix=prefix, tensor_names=[names[i] for i in order], shape_and_slices=[''] * len(names), tensors=[tensors[i] for i in order])
ckpt = tf.train.Checkpoint(v=tf.Variable([1.0, 2.0]), step=tf.Variable(7, dtype=tf.int64))
ckpt.write(prefix + '_object')
out = {}
for p in [prefix, prefix + '_object']:
    r = tf.train.load_checkpoint(p)
    for name, dtype in r.get_variable_to_dtype_map().items():
        out[p + '|' + name] = describe(dtype.name, r.get_tensor(name))
print(json.dumps(out))
`;

const PY_READ = `${PY_DESCRIBE}
import tensorflow as tf
out = {}
for prefix in sys.argv[1:]:
    r = tf.train.load_checkpoint(prefix)
    for name, dtype in r.get_variable_to_dtype_map().items():
        out[prefix + '|' + name] = describe(dtype.name, r.get_tensor(name))
print(json.dumps(out))
`;

describe.skipIf(!python)('TensorBundle with TensorFlow', () => {
  test('we read what TensorFlow writes now, and rewrite it byte for byte', () => {
    const prefix = join(tmp, 'tf', 'model');
    const expected = runPython(PY_WRITE, [prefix]) as Record<string, Described>;
    let checked = 0;
    for (const p of [prefix, `${prefix}_object`]) {
      const bundle = readTensorBundle(p);
      for (const [name, tensor] of bundle.tensors) {
        expect(describe_(tensor), name.slice(0, 80)).toEqual(expected[`${p}|${name}`]);
        checked++;
      }
      // The 64 MiB data file is read lazily, a range of the file per tensor.
      if (p === prefix) expect(readTensorBundle(p, { verify: false }).tensors.get('big')!.source).toBeInstanceOf(FileRangeSource);
      const out = join(tmp, 'rewrite', p === prefix ? 'model' : 'object', 'ckpt');
      const [index, data] = writeTensorBundle(out, bundle.tensors);
      expect(readFileSync(index!).equals(readFileSync(`${p}.index`)), `${p}.index`).toBe(true);
      expect(readFileSync(data!).equals(readFileSync(`${p}.data-00000-of-00001`)), `${p}.data`).toBe(true);
    }
    expect(checked).toBe(Object.keys(expected).length);
  });

  test('TensorFlow reads what we write, with the values we wrote', () => {
    const text = (s: string): Uint8Array => new TextEncoder().encode(s);
    const big = new Float32Array(1 << 20).map((_, i) => Math.sin(i));
    const tensors = new Map<string, Tensor>([
      ['dense/kernel', Tensor.from('float32', [2, 3], [0.5, -1.25, 3, 1e-30, -0, 65504])],
      ['dense/bias', Tensor.from('float64', [3], [Math.PI, -Math.E, 1e300])],
      ['half', Tensor.from('float16', [4], [0.5, -2, 65504, 6e-8])],
      ['brain', Tensor.from('bfloat16', [2], [1.5, -1e30])],
      ['step', Tensor.from('int64', [], [-(2n ** 63n)])],
      ['counts', Tensor.from('uint64', [2], [2n ** 64n - 1n, 0n])],
      ['ints', Tensor.from('int32', [2, 2], [1, -2, 3, -4])],
      ['small', Tensor.from('int8', [2], [-128, 127])],
      ['shorts', Tensor.from('int16', [1], [-300])],
      ['bytes', Tensor.from('uint8', [3], [0, 128, 255])],
      ['u16', Tensor.from('uint16', [1], [65535])],
      ['u32', Tensor.from('uint32', [1], [4294967295])],
      ['flags', Tensor.from('bool', [3], [1, 0, 1])],
      ['z64', Tensor.fromArray('complex64', [2], Float32Array.of(1, 2, -3, 0.5))],
      ['z128', Tensor.fromArray('complex128', [1], Float64Array.of(3, -4))],
      ['vocab', Tensor.fromStrings([2, 2], [text('alpha'), text(''), text('é'), new Uint8Array(1000).fill(7)])],
      ['name', Tensor.fromStrings([], [text('scalar string')])],
      ['none', Tensor.fromStrings([0], [])],
      ['empty', Tensor.from('float32', [0, 5], [])],
      ['big', Tensor.fromArray('float32', [1024, 1024], big)],
      ['ünïcode/name', Tensor.from('float32', [1], [42])],
    ]);
    const plain = join(tmp, 'ours', 'plain');
    const aligned = join(tmp, 'ours', 'aligned');
    writeTensorBundle(plain, tensors);
    writeTensorBundle(aligned, tensors, { alignment: 64, order: 'key' });
    const got = runPython(PY_READ, [plain, aligned]) as Record<string, Described>;
    for (const p of [plain, aligned]) {
      for (const [name, tensor] of tensors) expect(got[`${p}|${name}`], name).toEqual(describe_(tensor));
    }
    expect(Object.keys(got).length).toBe(2 * tensors.size);
  });

  test('a partitioned variable (sliced entries) is a clear FormatError', () => {
    const prefix = join(tmp, 'sliced', 'model');
    const script = `
import sys, tensorflow as tf
tf.raw_ops.SaveV2(prefix=sys.argv[1], tensor_names=['part', 'part', 'whole'], shape_and_slices=['4 0,2', '4 2,2', ''],
                  tensors=[tf.constant([1.0, 2.0]), tf.constant([3.0, 4.0]), tf.constant(5.0)])
print(tf.train.load_checkpoint(sys.argv[1]).get_tensor('part').tolist())
`;
    expect(runPython(script, [prefix])).toEqual([1, 2, 3, 4]);
    expect(() => readTensorBundle(prefix)).toThrow(FormatError);
    expect(() => readTensorBundle(prefix)).toThrow(/model\.index: entry "\\x00part.*a slice of a partitioned variable; those are not supported/);
  });

  test('a checkpoint merged from two bundles (two data files) reads', () => {
    const dir = join(tmp, 'merged');
    const script = `${PY_DESCRIBE}
import tensorflow as tf
d = sys.argv[1]
tf.raw_ops.SaveV2(prefix=d + '/p1', tensor_names=['x', 'y'], shape_and_slices=['', ''], tensors=[tf.constant([1.0, 2.0]), tf.constant(3, tf.int64)])
tf.raw_ops.SaveV2(prefix=d + '/p2', tensor_names=['z', 'w'], shape_and_slices=['', ''], tensors=[tf.constant([b'q']), tf.constant([True])])
tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=[d + '/p1', d + '/p2'], destination_prefix=d + '/model')
r = tf.train.load_checkpoint(d + '/model')
print(json.dumps({name: describe(dtype.name, r.get_tensor(name)) for name, dtype in r.get_variable_to_dtype_map().items()}))
`;
    const expected = runPython(script, [dir]) as Record<string, Described>;
    const bundle = readTensorBundle(join(dir, 'model'));
    expect(bundle.header.numShards).toBe(2);
    expect(Object.fromEntries([...bundle.entries].map(([k, e]) => [k, e.shardId]))).toEqual({ w: 1, x: 0, y: 0, z: 1 });
    expect(Object.fromEntries([...bundle.tensors].map(([k, t]) => [k, describe_(t)]))).toEqual(expected);
  });
});
