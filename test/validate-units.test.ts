import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { alignedChunks, compareTensors, scanNonFinite } from '../src/api/checks/elements.js';
import { inferShapes } from '../src/api/checks/shapes.js';
import { checkChecksums } from '../src/api/checks/structure.js';
import type { FormatHandler } from '../src/formats/format.js';
import { attr, makeNode, type Graph } from '../src/core/graph.js';
import { FileRangeSource, MemorySource, type ByteSource } from '../src/core/source.js';
import { Tensor } from '../src/core/tensor.js';
import { tempDir } from './cli-helpers.js';

/** A source that hands out bytes in odd-sized, misaligned chunks, as a short read could. */
class RaggedSource implements ByteSource {
  constructor(readonly bytes: Uint8Array) {}
  get byteLength() {
    return this.bytes.byteLength;
  }
  read() {
    return this.bytes;
  }
  *chunks(): Iterable<Uint8Array> {
    let at = 0;
    let step = 1;
    while (at < this.bytes.byteLength) {
      // A fresh, misaligned copy each time: offset 1 in its buffer.
      const n = Math.min(step, this.bytes.byteLength - at);
      const buffer = new Uint8Array(n + 1);
      buffer.set(this.bytes.subarray(at, at + n), 1);
      yield buffer.subarray(1);
      at += n;
      step = (step % 7) + 2;
    }
  }
}

describe('element streaming', () => {
  it('yields whole aligned elements whatever the chunking', () => {
    const values = Array.from({ length: 37 }, (_, i) => i * 1.5 - 7);
    const t = Tensor.from('float64', [37], values);
    const ragged = new Tensor('float64', [37], new RaggedSource(t.bytes()));
    const seen: number[] = [];
    for (const chunk of alignedChunks(ragged, 16)) {
      expect(chunk.byteOffset % 8).toBe(0);
      expect(chunk.byteLength % 8).toBe(0);
      seen.push(...new Float64Array(chunk.buffer, chunk.byteOffset, chunk.byteLength / 8));
    }
    expect(seen).toEqual(values);
  });

  it('counts NaN and infinity by bit pattern in every float type, streaming from a file', () => {
    const dir = tempDir();
    const data = [1, NaN, -Infinity, 2, NaN];
    for (const dtype of ['float32', 'float64', 'float16', 'bfloat16'] as const) {
      const t = Tensor.from(dtype, [5], data);
      const file = join(dir, `${dtype}.bin`);
      writeFileSync(join(dir, `${dtype}.bin`), Buffer.concat([Buffer.from([1, 2, 3]), t.bytes()]));
      const lazy = new Tensor(dtype, [5], new FileRangeSource(file, 3, t.byteLength));
      expect(scanNonFinite(lazy, 4), dtype).toEqual({ nan: 2, inf: 1, first: 1 });
      expect(scanNonFinite(new Tensor(dtype, [5], new RaggedSource(t.bytes())), 6)).toEqual({ nan: 2, inf: 1, first: 1 });
    }
    expect(scanNonFinite(Tensor.fromBytes('float8_e4m3fn', [3], Uint8Array.from([0x00, 0x7f, 0x38])))).toEqual({ nan: 1, inf: 0, first: 1 });
    expect(scanNonFinite(Tensor.fromBytes('float8_e5m2', [3], Uint8Array.from([0x7c, 0x7d, 0x3c])))).toEqual({ nan: 1, inf: 1, first: 0 });
    expect(scanNonFinite(Tensor.from('int32', [2], [1, 2]))).toEqual({ nan: 0, inf: 0, first: -1 });
  });

  it('compares across dtypes and chunkings with abs/rel statistics', () => {
    const a = Tensor.from('float32', [4], [1, 2, 3, 4]);
    const b = Tensor.from('float32', [4], [1, 2, 3.5, 4]);
    const s = compareTensors(new Tensor('float32', [4], new RaggedSource(b.bytes())), a, { atol: 0, rtol: 0 });
    expect(s).toMatchObject({ identical: false, maxAbs: 0.5, beyond: 1, firstBeyond: 2, count: 4 });
    expect(s.maxRel).toBeCloseTo(0.5 / 3);
    expect(compareTensors(a, new Tensor('float32', [4], new MemorySource(a.bytes())), { atol: 0, rtol: 0 }).identical).toBe(true);
    const half = Tensor.from('float16', [4], [1, 2, 3, 4]);
    expect(compareTensors(half, a, { atol: 0, rtol: 0 })).toMatchObject({ identical: false, maxAbs: 0, beyond: 0 });
    const nan = Tensor.from('float32', [2], [NaN, 1]);
    expect(compareTensors(nan, Tensor.from('float32', [2], [NaN, 1]), { atol: 0, rtol: 0 }).beyond).toBe(0);
    expect(compareTensors(nan, Tensor.from('float32', [2], [0, 1]), { atol: 1, rtol: 0 })).toMatchObject({ beyond: 1, maxAbs: Infinity });
  });
});

describe('shape inference', () => {
  const f32 = (shape: number[]) => Tensor.from('float32', shape, new Array<number>(shape.reduce((p, d) => p * d, 1)).fill(0.5));
  const graph = (nodes: Graph['nodes'], initializers: Record<string, Tensor>, input: (number | null)[], outputs: Graph['outputs']): Graph => ({
    inputs: [{ name: 'x', dtype: 'float32', shape: input }],
    outputs,
    initializers: new Map(Object.entries(initializers)),
    nodes,
    opset: 17,
  });

  it('follows a CNN through Conv, pooling, Flatten and Gemm', () => {
    const g = graph(
      [
        makeNode('Conv', ['x', 'w', 'b'], ['c'], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) }),
        makeNode('MaxPool', ['c'], ['p'], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) }),
        makeNode('Flatten', ['p'], ['f'], { axis: attr.int(1) }),
        makeNode('Gemm', ['f', 'fw', 'fb'], ['y'], { transB: attr.int(1) }),
      ],
      { w: f32([4, 1, 3, 3]), b: f32([4]), fw: f32([5, 64]), fb: f32([5]) },
      [null, 1, 8, 8],
      [{ name: 'y', dtype: 'float32', shape: [null, 5] }],
    );
    const r = inferShapes(g);
    expect(r.problems).toEqual([]);
    expect(r.values.get('p')!.shape).toEqual([null, 4, 4, 4]);
    expect(r.values.get('y')!.shape).toEqual([null, 5]);
  });

  it('names the node whose weights do not fit', () => {
    const g = graph(
      [makeNode('Conv', ['x', 'w'], ['c'], { group: attr.int(1) }), makeNode('Gemm', ['x2', 'fw'], ['y'])],
      { w: f32([4, 3, 3, 3]), fw: f32([7, 5]), x2: f32([2, 6]) },
      [1, 1, 8, 8],
      [{ name: 'y', dtype: 'float32', shape: null }],
    );
    const problems = inferShapes(g).problems;
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatchObject({ node: 'c', op: 'Conv' });
    expect(problems[0]!.problem).toMatch(/1 channels.*takes 3/);
    expect(problems[1]).toMatchObject({ node: 'y', op: 'Gemm' });
    expect(problems[1]!.problem).toMatch(/inner dimensions 6 and 7/);
  });

  it('pools with ceil_mode as PyTorch does: no window starts in the end padding', () => {
    const g = graph(
      [makeNode('MaxPool', ['x'], ['y'], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]), ceil_mode: attr.int(1) })],
      {},
      [1, 1, 3, 5],
      [{ name: 'y', dtype: 'float32', shape: null }],
    );
    // torch.nn.MaxPool2d(2, 2, padding=1, ceil_mode=True) maps 3x5 to 2x3.
    expect(inferShapes(g).values.get('y')!.shape).toEqual([1, 1, 2, 3]);
  });

  it("follows a Reshape target computed in the graph, as torch.onnx.export writes multi-head attention's", () => {
    // x [2, 197, 768] -> [batch, tokens, 12, 768 / 12] with the sizes read by Shape and Gather,
    // the head size by a Div, the pieces Unsqueezed and Concatenated; then a Slice of the shape
    const i64 = (values: number[], shape = [values.length]) => Tensor.from('int64', shape, values);
    const c = (name: string, t: Tensor) => makeNode('Constant', [], [name], { value: { type: 'tensor', value: t } });
    const g = graph(
      [
        makeNode('Shape', ['x'], ['s']),
        c('zero', i64([0], [])), c('one', i64([1], [])), c('two', i64([2], [])), c('heads', i64([12], [])), c('axes', i64([0])),
        makeNode('Gather', ['s', 'zero'], ['b']),
        makeNode('Gather', ['s', 'one'], ['t']),
        makeNode('Gather', ['s', 'two'], ['e']),
        makeNode('Div', ['e', 'heads'], ['d']),
        makeNode('Unsqueeze', ['b', 'axes'], ['ub']), makeNode('Unsqueeze', ['t', 'axes'], ['ut']), makeNode('Unsqueeze', ['heads', 'axes'], ['uh']), makeNode('Unsqueeze', ['d', 'axes'], ['ud']),
        makeNode('Concat', ['ub', 'ut', 'uh', 'ud'], ['target'], { axis: attr.int(0) }),
        makeNode('Reshape', ['x', 'target'], ['y']),
        c('start', i64([2])), c('end', i64([4])),
        makeNode('Slice', ['target', 'start', 'end'], ['middle']),
        makeNode('ConstantOfShape', ['middle'], ['filled']),
        makeNode('Expand', ['filled', 'target'], ['wide']),
      ],
      {},
      [2, 197, 768],
      [{ name: 'y', dtype: 'float32', shape: null }],
    );
    const r = inferShapes(g);
    expect(r.problems).toEqual([]);
    expect(r.unruled).toEqual([]);
    expect(r.values.get('target')!.value).toEqual([2, 197, 12, 64]);
    expect(r.values.get('y')!.shape).toEqual([2, 197, 12, 64]);
    expect(r.values.get('middle')!.value).toEqual([12, 64]);
    expect(r.values.get('filled')!.shape).toEqual([12, 64]);
    expect(r.values.get('wide')!.shape).toEqual([2, 197, 12, 64]);
    // With the batch unknown the ranks still follow, the batch stays unknown, and no 1 is guessed for it.
    const open = inferShapes({ ...g, inputs: [{ name: 'x', dtype: 'float32', shape: [null, 197, 768] }] });
    expect(open.values.get('target')!.value).toBeUndefined();
    expect(open.values.get('y')!.shape).toEqual([null, null, null, null]);
    expect(open.values.get('wide')!.shape).toEqual([null, null, null, null]);
  });

  it('broadcasts an unknown dim as unknown, not as 1', () => {
    const g = graph([makeNode('Add', ['x', 'b'], ['y']), makeNode('MatMul', ['x', 'x'], ['m'])], { b: f32([1, 1]) }, [4, null, null], [{ name: 'y', dtype: 'float32', shape: null }]);
    expect(inferShapes(g).values.get('y')!.shape).toEqual([4, null, null]);
  });

  it('reports a node that reads a value nothing provides', () => {
    const g = graph([makeNode('Relu', ['nowhere'], ['y'])], {}, [1], [{ name: 'y', dtype: 'float32', shape: null }]);
    expect(inferShapes(g).problems[0]!.problem).toMatch(/reads nowhere, which no node/);
  });
});

describe('checksums: the optional FormatHandler.validate hook', () => {
  const base: FormatHandler = {
    name: 'fake',
    title: 'a format for tests',
    extensions: ['.fake'],
    detect: () => false,
    read: () => {
      throw new Error('not used');
    },
    write: () => [],
  };

  it('skips formats without the hook and passes through what the hook returns', () => {
    expect(checkChecksums('m.fake', base)).toEqual([{ name: 'checksums', status: 'skip', message: 'the fake format has no checksums to verify' }]);
    const withHook = Object.assign({}, base, {
      validate: (path: string) => [
        { name: 'checksums', status: 'pass', message: `${path}: 3 crc32c values match`, checked: 3 },
        { name: 'zip-crc', status: 'fail', message: 'member data/0 CRC mismatch' },
        { status: 'warn', message: 'no name given' },
      ],
    });
    expect(checkChecksums('m.fake', withHook)).toEqual([
      { name: 'checksums', status: 'pass', message: 'm.fake: 3 crc32c values match', checked: 3 },
      { name: 'zip-crc', status: 'fail', message: 'member data/0 CRC mismatch' },
      { name: 'checksums', status: 'warn', message: 'no name given' },
    ]);
  });

  it('reports a hook that throws or returns malformed results as a failure', () => {
    const throwing = Object.assign({}, base, {
      validate: () => {
        throw new Error('index file missing');
      },
    });
    expect(checkChecksums('m.fake', throwing)).toEqual([{ name: 'checksums', status: 'fail', message: 'fake integrity check: index file missing' }]);
    const malformed = Object.assign({}, base, { validate: () => [{ status: 'great' }] });
    expect(checkChecksums('m.fake', malformed)[0]).toMatchObject({ name: 'checksums', status: 'fail' });
  });
});
