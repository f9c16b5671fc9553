import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyConversion } from '../src/api/verify.js';
import { compareOutputs } from '../src/api/diff.js';
import { makeNode, type Graph } from '../src/core/graph.js';
import type { Model } from '../src/core/model.js';
import { FileRangeSource, MemorySource, sameBytes, type ByteSource } from '../src/core/source.js';
import { Tensor } from '../src/core/tensor.js';
import { transpose2d } from '../src/core/transpose.js';
import { trainOrGate } from '../src/train/or-gate.js';
import { tempDir } from './cli-helpers.js';

/** A source that yields its bytes in the given chunk sizes, cycling (to cut streams unevenly). */
function cutSource(bytes: Uint8Array, sizes: readonly number[]): ByteSource {
  return {
    byteLength: bytes.byteLength,
    read: () => bytes,
    *chunks() {
      for (let at = 0, i = 0; at < bytes.byteLength; i++) {
        const n = sizes[i % sizes.length]!;
        yield bytes.subarray(at, Math.min(at + n, bytes.byteLength));
        at += n;
      }
    },
  };
}

function randomBytes(n: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(n / 4)).map((_, i) => Math.imul(i + seed, 2654435761) >>> 0);
  return new Uint8Array(words.buffer, 0, n);
}

describe('streamed byte comparison', () => {
  const data = randomBytes((9 << 20) + 13, 1);
  const file = join(tempDir(), 'data.bin');
  writeFileSync(file, data);

  it('equal bytes cut differently on each side (memory, file ranges, odd chunks) compare equal', () => {
    const sources = [new MemorySource(data), new FileRangeSource(file, 0, data.byteLength), cutSource(data, [1, 4096 + 7, 3 << 20]), cutSource(data, [5 << 20, 17])];
    for (const a of sources) for (const b of sources) expect(sameBytes(a, b)).toBe(true);
  });

  it('one changed byte anywhere, or a different length, is a difference', () => {
    for (const at of [0, 1, 4095, 8 << 20, (8 << 20) + 1, data.byteLength - 1]) {
      const changed = data.slice();
      changed[at] = changed[at]! ^ 0x40;
      expect(sameBytes(new FileRangeSource(file, 0, data.byteLength), cutSource(changed, [3 << 20, 999]))).toBe(false);
    }
    expect(sameBytes(new MemorySource(data), new MemorySource(data.subarray(1)))).toBe(false);
    // A stream that ends before its declared length is not equal to one that does not.
    const short: ByteSource = { byteLength: data.byteLength, read: () => data, *chunks() { yield data.subarray(0, 10); } };
    expect(sameBytes(short, new MemorySource(data))).toBe(false);
  });

  it('an early difference closes both streams (file ranges give their buffers back)', () => {
    let closed = 0;
    const tracked = (s: ByteSource): ByteSource => ({
      byteLength: s.byteLength,
      read: () => s.read(),
      *chunks(n) {
        try {
          yield* s.chunks(n);
        } finally {
          closed++;
        }
      },
    });
    const changed = data.slice();
    changed[0] = changed[0]! ^ 1;
    expect(sameBytes(tracked(new FileRangeSource(file, 0, data.byteLength)), tracked(new MemorySource(changed)))).toBe(false);
    expect(closed).toBe(2);
  });
});

/** y = x * w + b and z = x + b as a two-output graph over 2 x 2 weights. */
function twoOutputs(keys: readonly [string, string], outputNames: readonly [string, string] = ['y', 'z'], extra: Record<string, Tensor> = {}): Model {
  const w = Tensor.from('float32', [2, 2], [1, 2, 3, 4]);
  const b = Tensor.from('float32', [2], [0.5, -0.5]);
  const weights = new Map<string, Tensor>([['w', w], ['b', b], ...Object.entries(extra)]);
  const graph: Graph = {
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 2] }],
    outputs: [
      { name: outputNames[0], dtype: 'float32', shape: [1, 2] },
      { name: outputNames[1], dtype: 'float32', shape: [1, 2] },
    ],
    initializers: weights,
    nodes: [makeNode('MatMul', ['x', 'w'], ['xw']), makeNode('Add', ['xw', 'b'], [outputNames[0]]), makeNode('Add', ['x', 'b'], [outputNames[1]])],
    opset: 17,
  };
  return {
    format: 'memory',
    weights,
    graph,
    signatures: [{ name: 'default', inputs: new Map([['x', 'x']]), outputs: new Map([[keys[0], outputNames[0]], [keys[1], outputNames[1]]]) }],
    metadata: {},
  };
}

describe('conversion verification', () => {
  const source = trainOrGate({ seed: 2 }).model;

  it('accepts a faithful copy and says what it compared', () => {
    const report = verifyConversion(source, { ...source, format: 'other' }, []);
    expect(report.weights).toMatchObject({ tensors: 4, identical: 4, bytes: 36, folded: [] });
    expect(report.outputs).toMatchObject({ compared: true, count: 1, maxAbs: 0 });
    expect(report.summary).toBe('4 tensors bit-identical (36 bytes), outputs on a generated input (uniform [0, 1) x [1, 2] float32): max abs error 0');
  });

  it('rejects a changed weight or a lost architecture, and removes the output', () => {
    const file = join(tempDir(), 'out.bin');
    writeFileSync(file, 'x');
    const weights = new Map(source.weights);
    const w = source.weights.get('2.bias')!.toFloat32().slice();
    w[0] = w[0]! + 1e-3;
    weights.set('2.bias', Tensor.fromArray('float32', [1], w));
    expect(() => verifyConversion(source, { ...source, weights }, [file])).toThrow(/tensor 2\.bias is different after writing/);
    expect(existsSync(file)).toBe(false);
    const { graph: _graph, ...bare } = source;
    expect(() => verifyConversion(source, bare, [])).toThrow(/architecture was lost/);
  });

  it('a bare state dict reports that outputs were not compared, and why', () => {
    const { graph: _graph, ...bare } = source;
    const report = verifyConversion(bare, bare, []);
    expect(report.outputs.compared).toBe(false);
    expect(report.summary).toBe('4 tensors bit-identical (36 bytes), outputs not compared: the model is a bare state dict with no architecture');
  });

  it('a model the runtime cannot run: the summary names the op instead of claiming outputs were checked', () => {
    const m = twoOutputs(['y', 'z']);
    const graph = { ...m.graph!, nodes: [makeNode('NoSuchOp', ['x', 'w'], ['xw']), ...m.graph!.nodes.slice(1)] };
    const model = { ...m, graph };
    const report = verifyConversion(model, model, []);
    expect(report.outputs.compared).toBe(false);
    expect(report.summary).toMatch(/^2 tensors bit-identical \(24 bytes\), outputs not compared: the runtime has no kernel for NoSuchOp/);
  });

  it('a transposed weight under another name is matched by layout and counted', () => {
    const m = twoOutputs(['y', 'z']);
    const { graph: _g, ...bare } = m;
    const written = { ...bare, weights: new Map([['w_t', transpose2d(m.weights.get('w')!)], ['b', m.weights.get('b')!]]) };
    const report = verifyConversion(bare, written, []);
    expect(report.weights).toMatchObject({ identical: 2, viaLayout: 1 });
    expect(report.summary).toMatch(/2 tensors bit-identical \(24 bytes\), 1 matched across names or layouts/);
  });

  it('outputs renamed by the writer are paired by position (issue 11: "outputs differ ... max abs error 0")', () => {
    const a = twoOutputs(['first', 'second']);
    const b = twoOutputs(['StatefulPartitionedCall:0', 'StatefulPartitionedCall:1'], ['StatefulPartitionedCall:0', 'StatefulPartitionedCall:1']);
    const diff = compareOutputs(a, b, { atol: 0, rtol: 0 });
    expect(diff.status).toBe('equal');
    expect(diff.outputs.map((o) => [o.name, o.other])).toEqual([
      ['first', 'StatefulPartitionedCall:0'],
      ['second', 'StatefulPartitionedCall:1'],
    ]);
    const report = verifyConversion(a, b, []);
    expect(report.outputs).toMatchObject({ compared: true, count: 2, maxAbs: 0 });
    expect(report.summary).toMatch(/\(2 paired by position: the names differ\)$/);
    // Position follows each graph's own output order, not the order of the signature's keys.
    const swapped = { ...b, signatures: [{ ...b.signatures[0]!, outputs: new Map([...b.signatures[0]!.outputs].reverse()) }] };
    expect(compareOutputs(a, swapped, { atol: 0, rtol: 0 }).status).toBe('equal');
    // Keys that name the other model's graph values pair by that name.
    const byGraphName = twoOutputs(['y', 'z'], ['first', 'second']);
    expect(compareOutputs(a, byGraphName, { atol: 0, rtol: 0 }).outputs.map((o) => o.other)).toEqual(['y', 'z']);
  });

  it('outputs that really differ still fail, named, after positional pairing', () => {
    const a = twoOutputs(['first', 'second']);
    const b = twoOutputs(['p', 'q']);
    const changed = { ...b, graph: { ...b.graph!, nodes: [b.graph!.nodes[0]!, b.graph!.nodes[1]!, makeNode('Sub', ['x', 'b'], ['z'])] } };
    expect(() => verifyConversion(a, changed, [])).toThrow(/outputs differ after writing: 2 output\(s\) .*different \(second ~ q different\)/);
  });

  it('a constant folded into the graph by the writer is no missing weight when the outputs agree; a dropped weight is', () => {
    const axes = Tensor.from('int64', [1], [-1]);
    const source = twoOutputs(['y', 'z'], ['y', 'z'], { axes });
    const written = twoOutputs(['y', 'z']);
    const report = verifyConversion(source, written, []);
    expect(report.weights.folded).toEqual(['axes']);
    expect(report.summary).toMatch(/^2 tensors bit-identical \(24 bytes\), 1 constant folded into the graph, outputs on /);
    // Still named by the written graph: then it is missing, not folded.
    const stillUsed = { ...written, graph: { ...written.graph!, nodes: [...written.graph!.nodes, makeNode('Identity', ['axes'], ['unused'])] } };
    expect(() => verifyConversion(source, stillUsed, [])).toThrow(/tensor axes is missing after writing/);
    // Without a graph to vouch for it, a missing tensor is missing.
    const { graph: _g, ...bare } = written;
    const { graph: _s, ...bareSource } = source;
    expect(() => verifyConversion(bareSource, bare, [])).toThrow(/tensor axes is missing after writing/);
    // A real weight the writer dropped (too large to be a folded constant) fails.
    const big = Tensor.from('float32', [2048], new Float32Array(2048));
    expect(() => verifyConversion(twoOutputs(['y', 'z'], ['y', 'z'], { big }), written, [])).toThrow(/tensor big is missing after writing/);
  });

  it('--quantize: weights within the quantization bound pass; a weight beyond it fails', () => {
    const m = twoOutputs(['y', 'z']);
    const w = m.weights.get('w')!;
    // uint8 over [1, 4]: scale 3/255, so a value off by 0.004 is within, 0.02 is not.
    const near = Tensor.from('float32', [2, 2], [1.004, 2, 3, 4]);
    const ok = { ...m, weights: new Map([['w', near], ['b', m.weights.get('b')!]]) };
    const report = verifyConversion(m, ok, [], { quantize: 'uint8' });
    expect(report.weights.quantized).toBe(2);
    expect(report.weights.quantizationMaxAbs).toBeCloseTo(0.004, 5);
    expect(report.summary).toMatch(/^2 tensors \(24 bytes\): 1 bit-identical, 1 quantized to uint8 within its bound|^2 tensors \(24 bytes\): 2 quantized to uint8 within its bound/);
    const far = { ...m, weights: new Map([['w', Tensor.from('float32', [2, 2], [1.02, 2, 3, 4])], ['b', m.weights.get('b')!]]) };
    expect(() => verifyConversion(m, far, [], { quantize: 'uint8' })).toThrow(/tensor w is different after writing: 1 values beyond the uint8 quantization bound/);
    expect(w.dtype).toBe('float32');
  });

  it('a dtype widened exactly (float16 stored as float32) is accepted and said so', () => {
    const half = Tensor.from('float16', [3], [0.5, -2, 1024]);
    const source: Model = { format: 'memory', weights: new Map([['h', half]]), signatures: [], metadata: {} };
    const written: Model = { ...source, weights: new Map([['h', Tensor.from('float32', [3], [0.5, -2, 1024])]]) };
    const report = verifyConversion(source, written, []);
    expect(report.weights.widened).toEqual(['h (float16 -> float32)']);
    expect(report.summary).toMatch(/^1 tensor \(6 bytes\): 1 stored in a wider dtype with equal values/);
    const rounded: Model = { ...source, weights: new Map([['h', Tensor.from('float32', [3], [0.5, -2, 1024.5])]]) };
    expect(() => verifyConversion(source, rounded, [])).toThrow(/tensor h is retyped after writing/);
  });
});

describe('a written file that does not read back', () => {
  it('is removed, and the conversion fails in one line saying what the reader said', async () => {
    const { convertModel } = await import('../src/api/load.js');
    const { formatByName } = await import('../src/formats/registry.js');
    const { FormatError, UsageError } = await import('../src/core/errors.js');
    const onnx = formatByName('onnx') as { read: (path: string, options: object) => Model };
    const read = onnx.read;
    const dir = tempDir();
    const out = join(dir, 'or.onnx');
    // The reader fails on the file just written (as a writer bug would make it): injected here,
    // since every writer's output reads back today.
    onnx.read = (path) => {
      throw new FormatError(path, 'graph', 'a node the reader knows');
    };
    try {
      expect(() => convertModel(join(process.cwd(), 'samples', 'or-gate', 'or-gate.safetensors'), out, { verify: true })).toThrow(UsageError);
      expect(() => convertModel(join(process.cwd(), 'samples', 'or-gate', 'or-gate.safetensors'), out, { verify: true })).toThrow(/verification failed, output removed: the written onnx does not read back: .*or\.onnx: graph: .*a node the reader knows/);
    } finally {
      onnx.read = read;
    }
    expect(existsSync(out)).toBe(false);
  });
});
