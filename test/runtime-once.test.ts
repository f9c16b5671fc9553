import { describe, expect, it } from 'vitest';
import type { Attribute, Graph, Node } from '../src/core/graph.js';
import type { ByteSource } from '../src/core/source.js';
import { Tensor } from '../src/core/tensor.js';
import { Session } from '../src/runtime/executor.js';
import { expectClose, random, rng } from './runtime-helpers.js';

/**
 * A session that runs once (a conversion's output check) uses its constant weights in place: a
 * weight larger than the 8 MiB block streams through WebAssembly memory a block at a time (rows
 * of a transposed B as whole output columns; rows of a plain B as partial sums carried from block
 * to block, the bias with the first, the clamp with the last). The result must be the
 * definition's, and the packed path's up to float32 summation order.
 */

const node = (op: string, inputs: string[], outputs: string[], attributes: Record<string, Attribute> = {}): Node => ({ name: outputs[0]!, op, domain: '', inputs, outputs, attributes });

function graph(nodes: Node[], input: readonly number[], initializers: Record<string, Tensor>): Graph {
  return {
    inputs: [{ name: 'x', dtype: 'float32', shape: input }],
    outputs: [{ name: 'y', dtype: 'float32', shape: null }],
    initializers: new Map(Object.entries(initializers)),
    nodes,
    opset: 17,
  } as unknown as Graph;
}

/** y = x · (B or Bᵀ) + bias, optionally Relu, in float64. */
function reference(x: Float32Array, b: Float32Array, bias: Float32Array, m: number, k: number, n: number, transposed: boolean, relu: boolean): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = bias[j]!;
      for (let p = 0; p < k; p++) s += x[i * k + p]! * (transposed ? b[j * k + p]! : b[p * n + j]!);
      out[i * n + j] = relu ? Math.max(0, s) : s;
    }
  }
  return out;
}


describe('a session that runs once streams large weights', () => {
  // k * n * 4 bytes = 9.2 MB: two blocks either way.
  const k = 1536;
  const n = 1500;
  const next = rng(7);
  const w = random(k * n, next);
  const bias = random(n, next);

  for (const m of [1, 3]) {
    const x = Tensor.from('float32', [m, k], random(m * k, next));
    it(`Gemm transB=1 with a bias, ${m} row(s)`, () => {
      const g = graph([node('Gemm', ['x', 'w', 'b'], ['y'], { transB: { type: 'int', value: 1 } })], [m, k], { w: Tensor.from('float32', [n, k], w), b: Tensor.from('float32', [n], bias) });
      const once = new Session(g, { once: true, threads: 1 }).run({ x }).y!.toFloat32();
      expectClose(once, reference(x.toFloat32(), w, bias, m, k, n, true, false), 1e-5);
      expectClose(once, new Session(g, { threads: 1 }).run({ x }).y!.toFloat32(), 1e-5);
    });
    it(`MatMul + Add + Relu (one fused product: bias with the first block, clamp with the last), ${m} row(s)`, () => {
      const g = graph(
        [node('MatMul', ['x', 'w'], ['p']), node('Add', ['p', 'b'], ['q']), node('Relu', ['q'], ['y'])],
        [m, k],
        { w: Tensor.from('float32', [k, n], w), b: Tensor.from('float32', [n], bias) },
      );
      const once = new Session(g, { once: true, threads: 2 }).run({ x }).y!.toFloat32();
      const expected = reference(x.toFloat32(), w, bias, m, k, n, false, true);
      expectClose(once, expected, 1e-5);
      expect(once.some((v) => v === 0) && once.some((v) => v > 0)).toBe(true);
      expectClose(once, new Session(g, { threads: 2 }).run({ x }).y!.toFloat32(), 1e-5);
    });
  }

  it('gives the same result on every run of the same session', () => {
    const x = Tensor.from('float32', [1, k], random(k, next));
    const g = graph([node('MatMul', ['x', 'w'], ['y'])], [1, k], { w: Tensor.from('float32', [k, n], w) });
    const s = new Session(g, { once: true });
    expect(s.run({ x }).y!.toFloat32()).toEqual(s.run({ x }).y!.toFloat32());
  });
});

/** Bytes that come fresh on every read, as a file's do; counts the reads. */
class FileLike implements ByteSource {
  reads = 0;
  constructor(private readonly bytes: Uint8Array) {}
  get byteLength(): number {
    return this.bytes.byteLength;
  }
  read(): Uint8Array {
    this.reads++;
    return this.bytes.slice();
  }
  *chunks(size: number): Iterable<Uint8Array> {
    this.reads++;
    for (let at = 0; at < this.bytes.byteLength; at += size) yield this.bytes.slice(at, Math.min(at + size, this.bytes.byteLength));
  }
}

describe('a session that runs once reads each large weight when a step needs it', () => {
  // 512 x 640 float32 = 1.25 MiB: each weight is past the 1 MiB bar, so it is read in lazily.
  const d = 512;
  const e = 640;
  const next = rng(11);
  const fileWeight = (rows: number, cols: number) => {
    const values = random(rows * cols, next);
    const source = new FileLike(new Uint8Array(values.buffer.slice(0)));
    return { values, source, tensor: new Tensor('float32', [rows, cols], source) };
  };

  it('a chain of layers, a weight read twice and one viewed by an output: the numbers of the session that holds them all', () => {
    // y = ((x · w0ᵀ) · w1ᵀ) · w0ᵀ, with w0 [e, d] and w1 [d, e] so w0 is read by the first and last
    // products; z = Reshape(w1) outlives w1's last reader: its buffer must not be reused.
    const w0 = fileWeight(e, d);
    const w1 = fileWeight(d, e);
    const x = Tensor.from('float32', [2, d], random(2 * d, next));
    const g: Graph = {
      inputs: [{ name: 'x', dtype: 'float32', shape: [2, d] }],
      outputs: [
        { name: 'y', dtype: 'float32', shape: null },
        { name: 'z', dtype: 'float32', shape: null },
      ],
      initializers: new Map<string, Tensor>([
        ['w0', w0.tensor],
        ['w1', w1.tensor],
        ['shape', Tensor.from('int64', [1], [BigInt(d * e)])],
      ]),
      nodes: [
        node('Gemm', ['x', 'w0'], ['h0'], { transB: { type: 'int', value: 1 } }),
        node('Gemm', ['h0', 'w1'], ['h1'], { transB: { type: 'int', value: 1 } }),
        node('Reshape', ['w1', 'shape'], ['z']),
        node('Gemm', ['h1', 'w0'], ['y'], { transB: { type: 'int', value: 1 } }),
      ],
      opset: 17,
    } as unknown as Graph;
    const once = new Session(g, { once: true, threads: 1 });
    // Nothing is read when the session is made...
    expect([w0.source.reads, w1.source.reads]).toEqual([0, 0]);
    const first = once.run({ x });
    // ... and each weight once per run, though w0 has two readers.
    expect([w0.source.reads, w1.source.reads]).toEqual([1, 1]);
    const second = once.run({ x });
    expect([w0.source.reads, w1.source.reads]).toEqual([2, 2]);
    const held = new Session(g, { threads: 1 }).run({ x });
    for (const out of [first, second]) {
      expectClose(out.y!.toFloat32(), Float64Array.from(held.y!.toFloat32()), 1e-6);
      // Compared as bytes: a failing toEqual over 300k floats would take minutes to print.
      expect(Buffer.compare(out.z!.bytes(), new Uint8Array(w1.values.buffer))).toBe(0);
    }
  });
});
