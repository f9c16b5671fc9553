import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Runner } from '../src/api/run.js';
import { orBatch } from '../src/api/demo.js';
import { FormatError, UsageError } from '../src/core/errors.js';
import { attr, makeNode } from '../src/core/graph.js';
import type { Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { probe } from '../src/formats/registry.js';
import { dequantizeFloat32, quantize, readGraphModel, tfjsFormat, writeGraphModel } from '../src/formats/tfjs/index.js';
import { bundleFromModel } from '../src/module/bundle.js';
import { trainOrGate } from '../src/train/or-gate.js';
import { CNN, CNN_SIGNATURE, maxAbsDiff, MLP, MLP_SIGNATURE, seededModel, seededValues } from './fixtures/tfjs/models.js';
import { FIXTURES } from './fixtures/tfjs/peer.js';

/**
 * The TF.js graph-model format without a TF.js peer: the fixtures from tfjs's own tests read and
 * run with their documented outputs, written models read back to the same model, and every kind
 * of broken file fails with one FormatError naming what is wrong. test/tfjs.peer.test.ts proves
 * the written files in TF.js itself.
 */
const tmp = mkdtempSync(join(tmpdir(), 'modelbridge-tfjs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let counter = 0;
const fresh = (name: string) => join(tmp, `${counter++}-${name}`);

function run(model: Model, input: Tensor): Float32Array {
  const runner = new Runner(model);
  const out = runner.run({ [runner.inputNames[0]!]: input });
  return Object.values(out)[0]!.toFloat32();
}

function expectFormatError(f: () => unknown, text: RegExp): FormatError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
    expect((e as Error).message).toMatch(text);
    return e as FormatError;
  }
  throw new Error('expected a FormatError');
}

describe('reading the tfjs fixtures', () => {
  it('runs load_predict_data/graph_model (converter 1.7.4, signature in userDefinedMetadata) as tfjs does', () => {
    const expected = [0.7567615509, -0.183493793, 0.7567615509, -0.183493793];
    for (const file of [FIXTURES.matmul, FIXTURES.matmulNew]) {
      const model = readGraphModel(file);
      expect([...model.signatures[0]!.inputs.keys()]).toEqual(['Placeholder:0']);
      expect(model.graph!.inputs[0]!.shape).toEqual([2, 2]);
      const y = run(model, Tensor.from('float32', [2, 2], [1, 1, 1, 1]));
      expect(maxAbsDiff(y, expected)).toBeLessThan(1e-9);
    }
  });

  it('runs custom_module/dense_model (a _FusedMatMul with BiasAdd): [[20]] -> 38.17822265625', () => {
    const model = readGraphModel(FIXTURES.dense);
    expect([...model.signatures[0]!.outputs.keys()]).toEqual(['Identity:0']);
    expect(Array.from(run(model, Tensor.from('float32', [1, 1], [20])))).toEqual([38.17822265625]);
  });

  it('runs the react-native graph model (TF 1.15, no signature, control inputs) as MatMul + BiasAdd', () => {
    const model = readGraphModel(FIXTURES.reactNative);
    expect([...model.signatures[0]!.inputs.keys()]).toEqual(['dense_dense2_input']);
    expect([...model.signatures[0]!.outputs.keys()]).toEqual(['Identity']);
    const w = model.weights.get('StatefulPartitionedCall/sequential/dense_Dense2/MatMul/ReadVariableOp')!.toFloat32();
    const b = model.weights.get('StatefulPartitionedCall/sequential/dense_Dense2/BiasAdd/ReadVariableOp')!.toFloat32();
    const x = seededValues(10);
    const expected = x.reduce((sum, v, i) => sum + v * w[i]!, 0) + b[0]!;
    expect(run(model, Tensor.from('float32', [1, 10], x))[0]).toBeCloseTo(expected, 5);
  });
});

describe('writing and reading back', () => {
  it('writes the OR gate as the converter lays it out and reads back the same model', () => {
    const trained = trainOrGate({ seed: 0 });
    const dir = fresh('or');
    const files = writeGraphModel(trained.model, dir);
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual(['model.json', 'group1-shard1of1.bin']);
    const json = JSON.parse(readFileSync(files[0]!, 'utf8'));
    expect(Object.keys(json)).toEqual(['format', 'generatedBy', 'convertedBy', 'signature', 'modelTopology', 'userDefinedMetadata', 'weightsManifest']);
    expect(json.format).toBe('graph-model');
    expect(json.signature.inputs.x).toEqual({ name: 'x:0', dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '-1' }, { size: '2' }] } });
    const ops = json.modelTopology.node.map((n: { op: string }) => n.op);
    expect(ops).toEqual(['Placeholder', 'Const', 'MatMul', 'Const', 'BiasAdd', 'Sigmoid', 'Const', 'MatMul', 'Const', 'BiasAdd', 'Sigmoid']);
    const matmul = json.modelTopology.node[2];
    expect(matmul.attr).toEqual({ T: { type: 'DT_FLOAT' }, transpose_a: { b: false }, transpose_b: { b: true } });
    expect(json.modelTopology.node[1].attr.value).toEqual({ tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '2' }, { size: '2' }] } } });

    const back = readGraphModel(dir);
    expect(back.module).toEqual(trained.model.module);
    expect([...back.weights.keys()]).toEqual([...trained.model.weights.keys()]);
    for (const [name, t] of trained.model.weights) expect(Buffer.from(back.weights.get(name)!.bytes())).toEqual(Buffer.from(t.bytes()));
    expect(back.metadata).toEqual(trained.model.metadata);
    expect(Array.from(run(back, orBatch()))).toEqual(Array.from(run(trained.model, orBatch())));
  });

  it('reads back the MLP and the CNN with their state dicts (OIHW filters, int64 counters) and outputs', () => {
    for (const [spec, signature, shape] of [
      [MLP, MLP_SIGNATURE, [3, 6]],
      [CNN, CNN_SIGNATURE, [2, 3, 12, 12]],
    ] as const) {
      const model = seededModel(spec, signature);
      const dir = fresh('model');
      writeGraphModel(model, dir);
      const back = readGraphModel(dir);
      expect(back.module).toEqual(spec);
      for (const [name, t] of model.weights) {
        const b = back.weights.get(name)!;
        expect([b.dtype, b.shape]).toEqual([t.dtype, t.shape]);
        expect(Buffer.from(b.bytes())).toEqual(Buffer.from(t.bytes()));
      }
      const x = Tensor.from('float32', shape, seededValues(shape.reduce((a, b) => a * b, 1)));
      expect(maxAbsDiff(run(back, x), run(model, x))).toBeLessThan(1e-6);
      // Exported to a torch format, the restored module needs no graph form.
      expect(JSON.parse(bundleFromModel(back).metadata['modelbridge.module']!).type).toBe('Sequential');
    }
  });

  it('transposes activations to NHWC once on the way in and once before Flatten', () => {
    const dir = fresh('cnn');
    writeGraphModel(seededModel(CNN, CNN_SIGNATURE), dir);
    const nodes = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')).modelTopology.node as { op: string; attr?: Record<string, unknown> }[];
    expect(nodes.filter((n) => n.op === 'Transpose')).toHaveLength(2);
    const ops = new Set(nodes.map((n) => n.op));
    for (const op of ['Conv2D', 'DepthwiseConv2dNative', 'FusedBatchNormV3', 'MaxPool', 'AvgPool', 'Reshape', 'Softmax', 'LeakyRelu']) expect(ops).toContain(op);
    // torch's padding (0, 1) is TF's EXPLICIT padding in NHWC order: [N, N, H, H, W, W, C, C].
    const paddings = nodes.filter((n) => n.op === 'Conv2D').map((n) => JSON.stringify(n.attr!['explicit_paddings']));
    expect(paddings).toContain(JSON.stringify({ list: { i: ['0', '0', '0', '0', '1', '1', '0', '0'] } }));
    expect(paddings).toContain(JSON.stringify({ list: { i: ['0', '0', '1', '1', '1', '1', '0', '0'] } }));
  });

  it('writes the same bytes for the same model, and shards by shardBytes', () => {
    const model = seededModel(CNN, CNN_SIGNATURE);
    const [a, b, c] = [fresh('a'), fresh('b'), fresh('c')];
    writeGraphModel(model, a);
    writeGraphModel(model, b);
    for (const f of readdirSync(a)) expect(readFileSync(join(b, f))).toEqual(readFileSync(join(a, f)));
    const files = writeGraphModel(model, c, { shardBytes: 1000 });
    const total = readdirSync(a).filter((f) => f.endsWith('.bin')).reduce((n, f) => n + readFileSync(join(a, f)).byteLength, 0);
    const count = Math.ceil(total / 1000);
    expect(files.slice(1).map((f) => f.slice(c.length + 1))).toEqual(Array.from({ length: count }, (_, i) => `group1-shard${i + 1}of${count}.bin`));
    expect(files.slice(1, -1).every((f) => readFileSync(f).byteLength === 1000)).toBe(true);
    const x = Tensor.from('float32', [1, 3, 12, 12], seededValues(432));
    expect(Array.from(run(readGraphModel(c), x))).toEqual(Array.from(run(readGraphModel(a), x)));
  });

  it('names shards after a model.json written under another name, so models can share a directory', () => {
    const dir = fresh('shared');
    mkdirSync(dir);
    const or = trainOrGate({ seed: 0 }).model;
    const files = tfjsFormat.write(or, join(dir, 'or-gate.json'), {});
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual(['or-gate.json', 'or-gate.group1-shard1of1.bin']);
    tfjsFormat.write(seededModel(MLP, MLP_SIGNATURE), join(dir, 'model.json'), {});
    expect(readdirSync(dir).sort()).toEqual(['group1-shard1of1.bin', 'model.json', 'or-gate.group1-shard1of1.bin', 'or-gate.json']);
    expect(Array.from(run(tfjsFormat.read(join(dir, 'or-gate.json'), {}), orBatch()))).toEqual(Array.from(run(or, orBatch())));
  });

  it('detects a model.json, or a directory holding one, and nothing else', () => {
    const dir = fresh('detect');
    writeGraphModel(trainOrGate().model, dir);
    expect(tfjsFormat.detect(probe(dir))).toBe(true);
    expect(tfjsFormat.detect(probe(join(dir, 'model.json')))).toBe(true);
    expect(tfjsFormat.detect(probe(FIXTURES.reactNative))).toBe(true);
    expect(tfjsFormat.detect(probe(join(dir, 'group1-shard1of1.bin')))).toBe(false);
    const other = join(dir, 'other.json');
    writeFileSync(other, JSON.stringify({ weight_map: {}, metadata: {} }));
    expect(tfjsFormat.detect(probe(other))).toBe(false);
  });
});

describe('quantization', () => {
  it('matches tensorflowjs quantization.py (its docstring example: [0, -0.1, 1.2] -> uint8 [20, 0, 255])', () => {
    const q = quantize(Float32Array.from([0, -0.1, 1.2]), 'uint8');
    expect(Array.from(q.bytes)).toEqual([20, 0, 255]);
    expect(q.quantization.min).toBeCloseTo(-0.10196078817, 10);
    expect(q.quantization.scale).toBeCloseTo(0.00509803940852, 12);
    // Zero stays exact after the nudge, and a constant tensor is stored as zeros with scale 1.
    expect(dequantizeFloat32(q.bytes, q.quantization, 3)[0]).toBe(0);
    expect(quantize(Float32Array.from([2, 2]), 'uint16')).toEqual({ bytes: new Uint8Array(4), quantization: { dtype: 'uint16', min: 2, scale: 1 } });
    // Ties round to even as NumPy does: 0.5 steps of a [0, 255] range.
    const ties = quantize(Float32Array.from([0, 0.5, 1.5, 2.5, 255]), 'uint8');
    expect(Array.from(ties.bytes)).toEqual([0, 0, 2, 2, 255]);
  });

  it('stores quantized weights that read back within the quantization bound', () => {
    const model = seededModel(CNN, CNN_SIGNATURE);
    for (const q of ['uint8', 'uint16', 'float16'] as const) {
      const dir = fresh(q);
      writeGraphModel(model, dir, { quantize: q } as never);
      const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
      const spec = json.weightsManifest[0].weights.find((w: { name: string }) => w.name === '0.weight');
      expect(spec.quantization.dtype).toBe(q);
      expect(spec.quantization.original_dtype).toBe('float32');
      const back = readGraphModel(dir);
      for (const [name, t] of model.weights) {
        if (t.dtype !== 'float32') continue;
        const s = json.weightsManifest[0].weights.find((w: { name: string }) => w.name === name).quantization;
        const bound = q === 'float16' ? 2 ** -11 : s.scale / 2 + 1e-7;
        const a = t.toFloat32();
        const b = back.weights.get(name)!.toFloat32();
        for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(bound * Math.max(1, Math.abs(a[i]!)));
      }
    }
  });

  it('keeps float16 weights bit for bit (float16-quantized float32 in the file, float16 again on reading)', () => {
    const w = Tensor.from('float16', [2, 3], [0.1, -2.5, 65504, 1e-7, -0, 3.14159]);
    const graph = { inputs: [{ name: 'x', dtype: 'float32' as const, shape: [null, 3] }], outputs: [{ name: 'y', dtype: 'float32' as const, shape: null }], initializers: new Map(), nodes: [makeNode('Relu', ['x'], ['y'])], opset: 17 };
    const model: Model = { format: 'memory', weights: new Map([['half', w], ['steps', Tensor.from('int64', [2], [3n, -4n])]]), graph, signatures: [{ name: 'default', inputs: new Map([['x', 'x']]), outputs: new Map([['y', 'y']]) }], metadata: {} };
    const dir = fresh('half');
    writeGraphModel(model, dir);
    const back = readGraphModel(dir);
    expect(back.weights.get('half')!.dtype).toBe('float16');
    expect(Buffer.from(back.weights.get('half')!.bytes())).toEqual(Buffer.from(w.bytes()));
    expect(back.weights.get('steps')!.toNumbers()).toEqual([3, -4]);
    expect(back.weights.get('steps')!.dtype).toBe('int64');
  });
});

describe('what cannot be written', () => {
  const base = (node: ReturnType<typeof makeNode>, extra: Map<string, Tensor> = new Map()): Model => ({
    format: 'memory',
    weights: extra,
    graph: { inputs: [{ name: 'x', dtype: 'float32', shape: [null, 4] }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], initializers: extra, nodes: [node], opset: 17 },
    signatures: [{ name: 'default', inputs: new Map([['x', 'x']]), outputs: new Map([['y', 'y']]) }],
    metadata: {},
  });

  it('refuses an IR op TF.js has no equivalent for, naming the op and the node', () => {
    const model = base(makeNode('Det', ['x'], ['y'], {}, 'determinant'));
    expect(() => writeGraphModel(model, fresh('det'))).toThrow(UsageError);
    expect(() => writeGraphModel(model, fresh('det'))).toThrow(/Det.*determinant/);
  });

  it('refuses a TF op TF.js cannot run (Softsign), naming the TF node and the IR node it came from', () => {
    const model = base(makeNode('Softsign', ['x'], ['y'], {}, 'squash'));
    expect(() => writeGraphModel(model, fresh('softsign'))).toThrow(UsageError);
    expect(() => writeGraphModel(model, fresh('softsign'))).toThrow('TF.js cannot run op Softsign (TF node y, written for IR node squash (Softsign))');
  });

  it('refuses a convolution of a 2-D input and bare state dicts with a UsageError', () => {
    const w = Tensor.from('float32', [4, 2, 1, 1], new Array(8).fill(1));
    const conv = base(makeNode('Conv', ['x', 'w'], ['y'], { group: attr.int(2) }, 'grouped'), new Map([['w', w]]));
    expect(() => writeGraphModel(conv, fresh('group'))).toThrow(/node grouped \(Conv\).*a 4-D input/);
    expect(() => writeGraphModel({ ...conv, graph: undefined }, fresh('bare'))).toThrow(UsageError);
  });
});

describe('broken files fail with one FormatError naming the problem', () => {
  /** A copy of the dense_model fixture, with model.json edited by `edit`. */
  function broken(edit: (json: Record<string, any>) => void, shard?: (bytes: Buffer) => Buffer | undefined): string {
    const dir = fresh('broken');
    mkdirSync(dir);
    const json = JSON.parse(readFileSync(join(FIXTURES.dense, 'model.json'), 'utf8'));
    edit(json);
    writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
    const bytes = shard ? shard(readFileSync(join(FIXTURES.dense, 'group1-shard1of1.bin'))) : readFileSync(join(FIXTURES.dense, 'group1-shard1of1.bin'));
    if (bytes) writeFileSync(join(dir, 'group1-shard1of1.bin'), bytes);
    return dir;
  }

  it('names a missing shard', () => {
    expectFormatError(() => readGraphModel(broken(() => {}, () => undefined)), /shard group1-shard1of1\.bin.*missing/);
  });

  it('names a shard shorter than the manifest says', () => {
    expectFormatError(() => readGraphModel(broken(() => {}, (b) => b.subarray(0, 6))), /shard group1-shard1of1\.bin: 8 bytes .*found 6/);
  });

  it('names shards longer than the manifest says (they would shift every weight after the extra bytes)', () => {
    expectFormatError(() => readGraphModel(broken(() => {}, (b) => Buffer.concat([b, Buffer.from([0, 0])]))), /shard group1-shard1of1\.bin: 8 bytes .*found 10 \(the shards are longer/);
  });

  it('refuses names with control characters, which would break the one-line message', () => {
    expectFormatError(() => readGraphModel(broken((j) => (j.modelTopology.node[4].name = 'Iden\ntity'))), /a non-empty name without control characters, not "Iden\\ntity"/);
    expectFormatError(() => readGraphModel(broken((j) => (j.weightsManifest[0].weights[0].name = 'w\u0007'))), /without control characters/);
    expectFormatError(() => readGraphModel(broken((j) => (j.weightsManifest[0].paths = ['group1\n.bin']))), /shard names without control characters/);
  });

  it('names an unknown dtype and an unknown quantization', () => {
    expectFormatError(() => readGraphModel(broken((j) => (j.weightsManifest[0].weights[0].dtype = 'float64'))), /dtype: one of .*not "float64"/);
    expectFormatError(() => readGraphModel(broken((j) => (j.weightsManifest[0].weights[0].quantization = { dtype: 'int4' }))), /quantization dtype/);
  });

  it('names an op it cannot map, with its node', () => {
    const e = expectFormatError(() => readGraphModel(broken((j) => (j.modelTopology.node[4].op = 'Cumprod'))), /Cumprod \(node Identity\)/);
    expect(e.file).toMatch(/model\.json$/);
  });

  it('names a Const with no weight, a shard path outside the directory, and a layers model', () => {
    expectFormatError(() => readGraphModel(broken((j) => (j.weightsManifest[0].weights[0].name = 'renamed'))), /node StatefulPartitionedCall.*MatMul\/ReadVariableOp: a Const whose value/);
    expectFormatError(() => readGraphModel(broken((j) => (j.weightsManifest[0].paths = ['../elsewhere.bin']))), /inside the model's directory/);
    expectFormatError(() => readGraphModel(broken((j) => (j.format = 'layers-model'))), /layers models are not supported/);
  });

  it('rejects JSON that is not a graph model', () => {
    const dir = fresh('json');
    mkdirSync(dir);
    for (const text of ['{', '[]', '{"modelTopology": 3, "weightsManifest": []}', '{"modelTopology": {"node": [{"op": "Relu"}]}, "weightsManifest": []}']) {
      writeFileSync(join(dir, 'model.json'), text);
      expectFormatError(() => readGraphModel(dir), /./);
    }
    copyFileSync(join(FIXTURES.dense, 'model.json'), join(dir, 'model.json'));
    expectFormatError(() => readGraphModel(dir), /missing/);
  });
});
