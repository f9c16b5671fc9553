import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { loadModel } from '../src/api/load.js';
import { runModel } from '../src/api/run.js';
import { FormatError } from '../src/core/errors.js';
import type { Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { detectFormat } from '../src/formats/registry.js';
import { parseTflite, readTflite, tfliteToModel } from '../src/formats/tflite/index.js';
import { Model as FbModel } from '../src/formats/tflite/schema/index.js';
import { tfliteBytes } from '../src/formats/tflite/writer.js';
import { lowerModule, expectedParams } from '../src/module/lower.js';
import type { ModuleSpec } from '../src/module/spec.js';
import { Session } from '../src/runtime/executor.js';
import { seededRandom } from '../src/train/random.js';
import { ByteBuffer } from 'flatbuffers';
import { cli, ROOT, tempDir } from './cli-helpers.js';

const SAMPLE = join(ROOT, 'samples', 'or-gate', 'or-gate.tflite');

/** A small CNN as a module spec with seeded random weights: Conv/BN/ReLU/pool, depthwise conv, Linear. */
function cnn(): Model {
  const spec: ModuleSpec = {
    type: 'Sequential',
    modules: [
      { type: 'Conv2d', in_channels: 3, out_channels: 6, kernel_size: 3, padding: 1 },
      { type: 'BatchNorm2d', num_features: 6 },
      { type: 'ReLU' },
      { type: 'MaxPool2d', kernel_size: 2 },
      { type: 'Conv2d', in_channels: 6, out_channels: 12, kernel_size: 3, stride: 2, groups: 6 },
      { type: 'Hardswish' },
      { type: 'AvgPool2d', kernel_size: 1 },
      { type: 'Flatten' },
      { type: 'Linear', in_features: 12 * 2 * 2, out_features: 5 },
      { type: 'Softmax', dim: 1 },
    ],
  } as unknown as ModuleSpec;
  const random = seededRandom(7);
  const weights = new Map<string, Tensor>();
  for (const p of expectedParams(spec)) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    if (p.integer) weights.set(p.key, Tensor.from('int64', p.shape, new Array<number>(n).fill(0)));
    else if (p.key.endsWith('running_var')) weights.set(p.key, Tensor.from('float32', p.shape, Array.from({ length: n }, () => 0.5 + random())));
    else weights.set(p.key, Tensor.from('float32', p.shape, Array.from({ length: n }, () => random() - 0.5)));
  }
  const lowered = lowerModule(spec, weights, 'cnn', { inputs: [{ name: 'x', dtype: 'float32', shape: [null, 3, 10, 10] }], outputs: [{ name: 'y', dtype: 'float32', shape: [null, 5] }] } as never);
  return { format: 'memory', weights, graph: lowered.graph, signatures: [lowered.signature], metadata: {} };
}

function input(shape: number[], seed: number): Tensor {
  const random = seededRandom(seed);
  return Tensor.from('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1));
}

function maxDiff(a: Tensor, b: Tensor): number {
  const x = a.toFloat32();
  const y = b.toFloat32();
  expect(a.shape).toEqual(b.shape);
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
}

/** A field's byte position in a table (vtable slot k), for corrupting one value of a real file. */
function fieldAt(bytes: Uint8Array, table: { bb_pos: number }, slot: number): number {
  const bb = new ByteBuffer(bytes);
  const vtable = table.bb_pos - bb.readInt32(table.bb_pos);
  const off = bb.readUint16(vtable + 4 + 2 * slot);
  expect(off).toBeGreaterThan(0);
  return table.bb_pos + off;
}

function expectFormatError(path: string, pattern: RegExp): void {
  let error: unknown;
  try {
    readTflite(path);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(FormatError);
  expect((error as Error).message).toMatch(pattern);
  expect((error as Error).message).not.toContain('\n');
}

describe('tflite format', () => {
  it('detects the OR gate sample by its TFL3 identifier and runs it to the trained predictions', () => {
    expect(detectFormat(SAMPLE).name).toBe('tflite');
    const model = loadModel(SAMPLE);
    expect(model.format).toBe('tflite');
    expect([...model.signatures[0]!.inputs.keys()]).toEqual(['x']);
    const x = Tensor.from('float32', [4, 2], [0, 0, 0, 1, 1, 0, 1, 1]);
    const y = runModel(model, { x })['y']!;
    expect(y.shape).toEqual([4, 1]);
    const [f, t1, t2, t3] = y.toNumbers();
    expect(f!).toBeLessThan(0.05);
    for (const v of [t1!, t2!, t3!]) expect(v).toBeGreaterThan(0.95);
    // The model's metadata travels as TFLite Metadata entries of UTF-8 text.
    expect(model.metadata['modelbridge.producer']).toBe('modelbridge train-or --seed 0');
  });

  it('describes a converter-made int8 file for inspect: signature, ops by count, quantized tensors', async () => {
    const { describeTflite } = await import('../src/formats/tflite/describe.js');
    const tables = describeTflite(join(ROOT, 'test', 'fixtures', 'tflite', 'mobilenet_block_int8.tflite'));
    expect(tables[0]!.title).toBe('signature serving_default (subgraph 0)');
    expect(tables[0]!.rows.map((r) => r.slice(0, 4))).toEqual([
      ['input', 'x', 'FLOAT32', '[1, 12, 12, 4]'],
      ['output', 'y', 'FLOAT32', '[1, 3]'],
    ]);
    const sub = tables[1]!.rows[0]!;
    expect(sub[4]).toMatch(/DEPTHWISE_CONV_2D x1.*HARD_SWISH x1.*QUANTIZE x1/);
    expect(sub[5]).toMatch(/^\d+ \(\d+ per channel\)$/);
  });

  it('refuses an IR op TFLite has no builtin for, naming the op and the node, before running the graph', () => {
    const model = cnn();
    const graph = { ...model.graph!, nodes: [...model.graph!.nodes, { name: 'odd', op: 'Einsum', domain: '', inputs: ['y', 'y'], outputs: ['z'], attributes: { equation: { type: 'string' as const, value: 'ij,ij->ij' } } }], outputs: [{ name: 'z', dtype: 'float32' as const, shape: null }] };
    const spy = vi.spyOn(Session.prototype, 'run');
    try {
      expect(() => tfliteBytes({ ...model, graph, signatures: [] })).toThrow(/node odd: TFLite export has no mapping for Einsum/);
      // (a probe run is a whole forward pass: ViT-B/16 took 21 s and 1 GB to report an Erf)
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });

  it('writes the erf GELU of ONNX graphs as one GELU in either grouping (torch.onnx.export writes (x * (1 + erf(x / sqrt 2))) * 0.5)', () => {
    // Constants as Constant nodes, as the TorchScript exporter writes them; a Linear before, so x is computed.
    const c = (name: string, v: number) => ({ name, op: 'Constant', domain: '', inputs: [], outputs: [name], attributes: { value: { type: 'tensor' as const, value: Tensor.from('float32', [], [v]) } } });
    const n = (op: string, inputs: string[], out: string) => ({ name: out, op, domain: '', inputs, outputs: [out], attributes: {} });
    const w = Tensor.from('float32', [4, 6], Array.from({ length: 24 }, (_, i) => Math.sin(i) * 0.7));
    const groupings = {
      torch: [c('sqrt2', Math.SQRT2), n('Div', ['h', 'sqrt2'], 'd'), n('Erf', ['d'], 'e'), c('one', 1), n('Add', ['e', 'one'], 'a'), n('Mul', ['h', 'a'], 'm'), c('half', 0.5), n('Mul', ['m', 'half'], 'y')],
      halfFirst: [c('rsqrt2', Math.SQRT1_2), n('Mul', ['h', 'rsqrt2'], 'd'), n('Erf', ['d'], 'e'), c('one', 1), n('Add', ['one', 'e'], 'a'), c('half', 0.5), n('Mul', ['half', 'h'], 'm'), n('Mul', ['m', 'a'], 'y')],
      // 0.5 * (1 + erf) first, then x: the same three factors
      erfFirst: [c('sqrt2', Math.SQRT2), n('Div', ['h', 'sqrt2'], 'd'), n('Erf', ['d'], 'e'), c('one', 1), n('Add', ['e', 'one'], 'a'), c('half', 0.5), n('Mul', ['a', 'half'], 'm'), n('Mul', ['h', 'm'], 'y')],
    };
    const x = input([3, 4], 7);
    for (const [name, nodes] of Object.entries(groupings)) {
      const graph = { inputs: [{ name: 'x', dtype: 'float32' as const, shape: [3, 4] }], outputs: [{ name: 'y', dtype: 'float32' as const, shape: [3, 6] }], initializers: new Map([['w', w]]), nodes: [n('MatMul', ['x', 'w'], 'h'), ...nodes], opset: 17 };
      const model: Model = { format: 'onnx', weights: new Map([['w', w]]), graph, signatures: [{ name: 'serving_default', inputs: new Map([['x', 'x']]), outputs: new Map([['y', 'y']]) }], metadata: {} };
      const file = parseTflite(`${name}.tflite`, tfliteBytes(model));
      const ops = file.subgraphs[0]!.operators.map((o) => o.code);
      // GELU 150; no MUL 18, DIV 42 or ADD 0 left of the decomposition
      expect(ops, name).toContain(150);
      expect(ops.filter((o) => [0, 18, 42].includes(o)), name).toEqual([]);
      const want = runModel(model, { x })['y']!;
      expect(maxDiff(runModel(tfliteToModel(file), { x })['y']!, want), name).toBeLessThan(1e-6);
    }
  });

  it('learns sizes from runs that keep only the constant values: twice with an open batch, once with every size fixed', () => {
    const model = cnn();
    const g = model.graph!;
    const activations = g.nodes.filter((n) => ['Conv', 'Relu', 'MaxPool'].includes(n.op)).flatMap((n) => n.outputs);
    expect(activations.length).toBeGreaterThan(2);
    const fixed = { ...g, inputs: g.inputs.map((i) => ({ ...i, shape: [2, 3, 10, 10] })) };
    for (const [graph, runs] of [[g, 2], [fixed, 1]] as const) {
      const spy = vi.spyOn(Session.prototype, 'run');
      const bytes = tfliteBytes({ ...model, graph });
      expect(spy.mock.calls.length).toBe(runs);
      for (const r of spy.mock.results) {
        const kept = Object.keys(r.value as object);
        expect(kept).toContain('y');
        // the activations are let go as they are read, not held to the end of the run
        expect(kept.filter((k) => activations.includes(k))).toEqual([]);
      }
      spy.mockRestore();
      const x = input([2, 3, 10, 10], 3);
      expect(maxDiff(runModel(tfliteToModel(parseTflite('cnn.tflite', bytes)), { x })['y']!, runModel(model, { x })['y']!)).toBeLessThan(1e-5);
    }
  });

  it('writes a CNN (conv, batch norm, depthwise conv, pools, linear) that reads back to the same outputs', () => {
    const model = cnn();
    const bytes = tfliteBytes(model);
    expect(String.fromCharCode(...bytes.subarray(4, 8))).toBe('TFL3');
    // Deterministic: the same model gives the same bytes.
    expect(Buffer.compare(Buffer.from(tfliteBytes(model)), Buffer.from(bytes))).toBe(0);
    const file = parseTflite('cnn.tflite', bytes);
    const ops = new Set(file.subgraphs[0]!.operators.map((o) => o.code));
    // CONV_2D 3, DEPTHWISE_CONV_2D 4, MAX_POOL_2D 17, AVERAGE_POOL_2D 1, FULLY_CONNECTED 9, HARD_SWISH 117
    for (const code of [3, 4, 17, 1, 9, 117]) expect(ops.has(code), `op ${code}`).toBe(true);
    // Five NHWC ops would take ten TRANSPOSEs; the pairs between conv+BN+ReLU (BN folded, ReLU
    // fused), max pool, depthwise conv, Hardswish (elementwise, moved inside) and the average pool
    // cancel, leaving the model's way in and the one before Flatten.
    const transposes = file.subgraphs[0]!.operators.filter((o) => o.code === 39).length;
    expect(transposes).toBe(2);
    expect(ops.has(19), 'RELU fused into CONV_2D').toBe(false);
    const back = tfliteToModel(file);
    for (const batch of [1, 3]) {
      const x = input([batch, 3, 10, 10], batch);
      const want = runModel(model, { x })['y']!;
      const got = runModel(back, { x })['y']!;
      expect(maxDiff(got, want)).toBeLessThan(1e-5);
    }
  });

  it('stores buffers after the FlatBuffer (the layout of models past 2 GB) and reads them from there', () => {
    const model = cnn();
    const dir = tempDir();
    const path = join(dir, 'offset.tflite');
    writeFileSync(path, tfliteBytes(model, { offsetBuffers: true }));
    const inline = tfliteBytes(model);
    const file = parseTflite(path, new Uint8Array(readFileSync(path)));
    expect(file.buffers.some((b) => b.kind === 'file')).toBe(true);
    expect(file.buffers.some((b) => b.kind === 'inline')).toBe(false);
    const x = input([2, 3, 10, 10], 5);
    expect(maxDiff(runModel(readTflite(path), { x })['y']!, runModel(tfliteToModel(parseTflite('inline', inline)), { x })['y']!)).toBe(0);
  });

  describe('bad files: one line each', () => {
    const dir = tempDir();
    const sample = new Uint8Array(readFileSync(SAMPLE));
    const model = () => FbModel.getRootAsModel(new ByteBuffer(sample));
    const corrupt = (name: string, change: (bytes: Uint8Array, view: DataView) => void): string => {
      const bytes = sample.slice();
      change(bytes, new DataView(bytes.buffer));
      const path = join(dir, name);
      writeFileSync(path, bytes);
      return path;
    };

    it('a truncated FlatBuffer', () => {
      for (const keep of [6, 40, Math.floor(sample.byteLength / 2), sample.byteLength - 3]) {
        const path = join(dir, `truncated-${keep}.tflite`);
        writeFileSync(path, sample.subarray(0, keep));
        expectFormatError(path, /truncated|shorter than 8 bytes|within the file/);
      }
    });

    it('a tensor whose buffer index is out of range', () => {
      const g = model().subgraphs(0)!;
      const constant = [...Array(g.tensorsLength()).keys()].find((i) => g.tensors(i)!.buffer() > 0)!;
      const path = corrupt('buffer-index.tflite', (_b, view) => view.setUint32(fieldAt(sample, g.tensors(constant)!, 2), 999, true));
      expectFormatError(path, /buffer index below the \d+ buffers, not 999/);
    });

    it('a tensor whose buffer is shorter than its shape', () => {
      const g = model().subgraphs(0)!;
      const constant = [...Array(g.tensorsLength()).keys()].find((i) => g.tensors(i)!.buffer() > 0)!;
      const t = g.tensors(constant)!;
      // The shape vector's first size, made 1000 times larger.
      const bb = new ByteBuffer(sample);
      const shapeField = fieldAt(sample, t, 0);
      const vector = shapeField + bb.readUint32(shapeField) + 4;
      const path = corrupt('short-buffer.tflite', (_b, view) => view.setInt32(vector, t.shape(0)! * 1000, true));
      expectFormatError(path, /buffers\[\d+\] is shorter than its shape/);
    });

    it('an unknown builtin operator code, and a known one without a mapping', () => {
      const code = model().operatorCodes(0)!;
      const unknown = corrupt('unknown-op.tflite', (_b, view) => view.setInt32(fieldAt(sample, code, 3), 250, true));
      expectFormatError(unknown, /a known builtin operator code \(0\.\.161\), not 250/);
      const svdf = corrupt('svdf.tflite', (_b, view) => view.setInt32(fieldAt(sample, code, 3), 27, true));
      expectFormatError(svdf, /SVDF has no mapping yet/);
    });

    it('the CLI prints the one line and exits 2', () => {
      const path = join(dir, 'cli-truncated.tflite');
      writeFileSync(path, sample.subarray(0, 100));
      const r = cli(['inspect', path]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain('cli-truncated.tflite');
    });
  });
});

describe('tflite --quantize', () => {
  function mlp(): Model {
    const spec = { type: 'Sequential', modules: [{ type: 'Linear', in_features: 64, out_features: 32 }, { type: 'ReLU' }, { type: 'Linear', in_features: 32, out_features: 4 }] } as unknown as ModuleSpec;
    const random = seededRandom(11);
    const weights = new Map<string, Tensor>();
    for (const p of expectedParams(spec)) weights.set(p.key, Tensor.from('float32', p.shape, Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => random() - 0.5)));
    const lowered = lowerModule(spec, weights, 'mlp', { inputs: [{ name: 'x', dtype: 'float32', shape: [null, 64] }], outputs: [{ name: 'y', dtype: 'float32', shape: [null, 4] }] } as never);
    return { format: 'memory', weights, graph: lowered.graph, signatures: [lowered.signature], metadata: {} };
  }

  it('dynamic-int8: weights of 1024+ elements as symmetric int8 per output channel, the rest float32', () => {
    const model = mlp();
    const file = parseTflite('q.tflite', tfliteBytes(model, { quantize: 'dynamic-int8' }));
    const g = file.subgraphs[0]!;
    const fc = g.operators.filter((o) => o.code === 9).map((o) => g.tensors[o.inputs[1]!]!);
    expect(fc.map((t) => t.type)).toEqual([9, 0]); // INT8 [32, 64]; FLOAT32 [4, 32] (128 elements)
    const q = fc[0]!.quantization!;
    expect(q.axis).toBe(0);
    expect(q.zeroPoint.every((z) => z === 0)).toBe(true);
    // scale = max|w| / 127 per output row, and the stored values reach +-127 in every row.
    const w = model.weights.get('0.weight')!.toFloat32();
    const b = file.buffers[fc[0]!.buffer]!;
    const stored = new Int8Array(b.kind === 'inline' ? b.data.slice().buffer : new ArrayBuffer(0));
    for (let r = 0; r < 32; r++) {
      const row = w.subarray(r * 64, r * 64 + 64);
      expect(q.scale[r]).toBe(Math.fround(Math.max(...row.map(Math.abs)) / 127));
      expect(Math.max(...stored.subarray(r * 64, r * 64 + 64).map(Math.abs))).toBe(127);
    }
    const x = input([2, 64], 3);
    expect(maxDiff(runModel(tfliteToModel(file), { x })['y']!, runModel(model, { x })['y']!)).toBeLessThan(0.02);
  });

  it('float16: every float32 weight as float16 behind a DEQUANTIZE', () => {
    const model = mlp();
    const file = parseTflite('h.tflite', tfliteBytes(model, { quantize: 'float16' }));
    const g = file.subgraphs[0]!;
    const dq = g.operators.filter((o) => o.code === 6);
    expect(dq.length).toBe(4);
    for (const o of dq) expect(g.tensors[o.inputs[0]!]!.type).toBe(1);
    const x = input([2, 64], 4);
    expect(maxDiff(runModel(tfliteToModel(file), { x })['y']!, runModel(model, { x })['y']!)).toBeLessThan(1e-2);
  });

  it('refuses the TF.js-only quantizations', () => {
    const r = cli(['convert', join(ROOT, 'samples', 'or-gate', 'or-gate.onnx'), join(tempDir(), 'q.tflite'), '--quantize', 'uint8']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--quantize uint8 applies to tfjs output only; TFLite takes float16 or dynamic-int8/);
  });
});

describe('tflite export table', () => {
  it('declares the builtins of every entry, for the coverage table', async () => {
    const { TFLITE_EXPORT, TFLITE_EXPORT_BUILTINS } = await import('../src/formats/tflite/export-ops.js');
    expect(Object.keys(TFLITE_EXPORT_BUILTINS).sort()).toEqual(Object.keys(TFLITE_EXPORT).sort());
  });
});
