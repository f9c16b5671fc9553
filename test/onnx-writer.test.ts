import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { orBatch } from '../src/api/demo.js';
import { convertModel, loadModel, saveModel } from '../src/api/load.js';
import { Runner } from '../src/api/run.js';
import { FormatError, UsageError } from '../src/core/errors.js';
import { attr, makeNode, type Attribute, type Graph, type Node } from '../src/core/graph.js';
import type { Model } from '../src/core/model.js';
import { defaultSignature } from '../src/core/model.js';
import type { ByteSource } from '../src/core/source.js';
import { Tensor } from '../src/core/tensor.js';
import {
  convertOpset,
  irVersionFor,
  onnxFormat,
  onnxSchema,
  readOnnxModel,
  readOnnxTensor,
  serializeOnnxModel,
  writeOnnxModel,
} from '../src/formats/onnx/index.js';
import { detectFormat, formatByName, FORMATS } from '../src/formats/registry.js';
import { Session } from '../src/runtime/executor.js';
import { isSupported } from '../src/runtime/ops.js';
import { isComputable } from '../src/runtime/value.js';
import { trainOrGate } from '../src/train/or-gate.js';
import { FIXTURES, tempDir } from './cli-helpers.js';

const ONNX_FIXTURES = join(FIXTURES, 'onnx');
const NODE_TESTS = join(ONNX_FIXTURES, 'node');
const dir = tempDir('mb-onnx-writer-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const trained = trainOrGate({ seed: 0 });

/** A graph model from nodes, inputs and initializers (the IR directly). */
function graphModel(graph: Omit<Graph, 'opset'> & { opset?: number }, metadata: Record<string, string> = {}): Model {
  const g: Graph = { opset: 17, ...graph };
  return { format: 'test', weights: g.initializers, graph: g, signatures: [defaultSignature(g)], metadata };
}

function run(graph: Graph, feeds: Record<string, Tensor>): Record<string, Tensor> {
  return new Session(graph).run(feeds);
}

function maxDiff(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  const x = a.toFloat32();
  const y = b.toFloat32();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

/** A comparable form of a graph: every field the IR holds, tensors as hex bytes. */
function normalize(g: Graph, sortAttributes = false): unknown {
  const t = (x: Tensor) => ({ dtype: x.dtype, shape: x.shape, bytes: x.dtype === 'string' ? x.strings!.map((s) => Buffer.from(s).toString('hex')) : Buffer.from(x.bytes()).toString('hex') });
  return {
    opset: g.opset,
    name: g.name,
    inputs: g.inputs,
    outputs: g.outputs,
    initializers: [...g.initializers].map(([k, v]) => [k, t(v)]),
    nodes: g.nodes.map((n) => {
      const entries = Object.entries(n.attributes);
      if (sortAttributes) entries.sort((a, b) => a[0].localeCompare(b[0]));
      const value = (a: Attribute): unknown =>
        a.type === 'tensor' ? t(a.value) : a.type === 'graph' ? normalize(a.value, sortAttributes) : a.type === 'graphs' ? a.value.map((sub) => normalize(sub, sortAttributes)) : a.value;
      return { ...n, attributes: entries.map(([k, a]) => [k, a.type, value(a)]) };
    }),
  };
}

function fixtureModels(): { name: string; file: string }[] {
  const out: { name: string; file: string }[] = [];
  for (const sub of ['node', 'pytorch-converted', 'pytorch-operator', 'simple']) {
    const base = join(ONNX_FIXTURES, sub);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base).sort()) {
      const file = join(base, name, 'model.onnx');
      if (existsSync(file)) out.push({ name: `${sub}/${name}`, file });
    }
  }
  return out;
}

describe('ONNX writer: the OR gate', () => {
  it('writes a ModelProto at opset 17 / IR 8 that reads back with the same weights, module, signature and predictions', () => {
    const file = join(dir, 'or.onnx');
    const result = writeOnnxModel(trained.model, file);
    expect(result).toMatchObject({ files: [file], opset: 17, irVersion: 8, externalBytes: 0 });
    const model = loadModel(file);
    expect(model.format).toBe('onnx');
    expect(model.module).toEqual(trained.model.module);
    expect([...model.weights.keys()]).toEqual([...trained.model.weights.keys()]);
    for (const [name, t] of trained.model.weights) expect(Buffer.from(model.weights.get(name)!.bytes())).toEqual(Buffer.from(t.bytes()));
    expect([...model.signatures[0]!.inputs]).toEqual([['x', 'x']]);
    expect(model.metadata['onnx.producer_name']).toBe('modelbridge');
    expect(model.metadata['onnx.ir_version']).toBe('8');
    expect(model.metadata['modelbridge.module']).toBeUndefined(); // it came back as model.module
    const y = new Runner(model).run({ x: orBatch() })['y']!;
    expect(Array.from(y.toFloat32())).toEqual(Array.from(new Runner(trained.model).run({ x: orBatch() })['y']!.toFloat32()));
  });

  it('is deterministic, starts like an ONNX file and is detected as one', () => {
    const a = serializeOnnxModel(trained.model);
    const b = serializeOnnxModel(trainOrGate({ seed: 0 }).model);
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
    expect([a[0], a[1], a[2]]).toEqual([0x08, 0x08, 0x12]); // ir_version 8, then producer_name
    const file = join(dir, 'detect.bin');
    writeFileSync(file, a);
    expect(detectFormat(file).name).toBe('onnx');
    expect(formatByName('onnx')).toBe(onnxFormat);
    expect(FORMATS.map((f) => f.name)).toContain('onnx');
  });

  it('writes the fields ONNX expects: graph name, producer, opset_import, typed value infos, symbolic and unknown dims', () => {
    const x = { name: 'x', dtype: 'float32' as const, shape: ['batch', null, 3] };
    const model = graphModel(
      { inputs: [x], outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', null, 3] }], initializers: new Map(), nodes: [makeNode('Relu', ['x'], ['y'])] },
      { note: 'kept', 'onnx.doc_string': 'a doc', 'onnx.model_version': '7', 'onnx.domain': 'org.example', 'onnx.producer_name': 'someone else' },
    );
    const bytes = serializeOnnxModel(model);
    const proto = onnxSchema().lookupType('onnx.ModelProto').toObject(onnxSchema().lookupType('onnx.ModelProto').decode(bytes), { longs: Number }) as Record<string, any>;
    expect(proto.producer_name).toBe('modelbridge');
    expect(proto.doc_string).toBe('a doc');
    expect(proto.domain).toBe('org.example');
    expect(proto.model_version).toBe(7);
    expect(proto.opset_import).toEqual([{ domain: '', version: 17 }]);
    expect(proto.metadata_props).toEqual([{ key: 'note', value: 'kept' }]);
    expect(proto.graph.name).toBe('modelbridge');
    expect(proto.graph.input[0].type.tensor_type.shape.dim).toEqual([{ dim_param: 'batch' }, {}, { dim_value: 3 }]);
    const back = readOnnxModel(bytes, 'mem.onnx');
    expect(back.graph!.inputs[0]).toEqual(x);
    expect(back.metadata['note']).toBe('kept');
  });

  it('writes every attribute kind with its AttributeProto type and reads it back the same', () => {
    const attributes = {
      f: attr.float(0.25),
      i: attr.int(-3),
      s: attr.string('héllo'),
      fs: attr.floats([1.5, -2]),
      is: attr.ints([1, -1, 2 ** 40]),
      ss: attr.strings(['a', '']),
      empty: attr.ints([]),
      t: attr.tensor(Tensor.from('int64', [2], [5n, -6n])),
    };
    const node: Node = { name: 'n', op: 'Custom', domain: 'org.example', inputs: ['x', ''], outputs: ['y'], attributes };
    const model = graphModel({ inputs: [{ name: 'x', dtype: 'float32', shape: [1] }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], initializers: new Map(), nodes: [node] });
    const back = readOnnxModel(serializeOnnxModel(model), 'mem.onnx');
    expect(normalize(back.graph!)).toEqual(normalize(model.graph!));
    expect(back.metadata['onnx.opset_import']).toBe('ai.onnx=17;org.example=1');
  });
});

describe('ONNX writer: output shapes without a second copy of the weights', () => {
  /** A weight that counts how often its bytes are read whole or streamed. */
  function counted(tensor: Tensor): { tensor: Tensor; reads: () => number } {
    let reads = 0;
    const inner = tensor.source;
    const source: ByteSource = {
      byteLength: inner.byteLength,
      read: () => {
        reads++;
        return inner.read();
      },
      *chunks(size: number) {
        reads++;
        yield* inner.chunks(size);
      },
    };
    return { tensor: new Tensor(tensor.dtype, tensor.shape, source), reads: () => reads };
  }
  const linear = (outputShape: null) => {
    const w = counted(Tensor.from('float32', [3, 2], [1, 2, 3, 4, 5, 6]));
    const model = graphModel({
      inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 2] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: outputShape }],
      initializers: new Map([['w', w.tensor]]),
      nodes: [makeNode('Gemm', ['x', 'w'], ['y'], { transB: attr.int(1) })],
    });
    return { model, reads: w.reads };
  };

  it('static inference gives ["batch", 3]: the weight is read once, by the write itself, not by a run of the graph', () => {
    const { model, reads } = linear(null);
    const back = readOnnxModel(serializeOnnxModel(model), 'mem.onnx');
    expect(back.graph!.outputs[0]!.shape).toEqual(['batch', 3]);
    expect(reads()).toBe(1);
  });

  it('where inference leaves a dim of 1 the graph is run to settle it, and the output still gets its shape', () => {
    const w = counted(Tensor.from('float32', [1, 2], [1, 2]));
    const model = graphModel({
      inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 2] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: null }],
      initializers: new Map([['w', w.tensor]]),
      nodes: [makeNode('Gemm', ['x', 'w'], ['y'], { transB: attr.int(1) })],
    });
    const back = readOnnxModel(serializeOnnxModel(model), 'mem.onnx');
    expect(back.graph!.outputs[0]!.shape).toEqual([null, 1]);
    expect(w.reads()).toBeGreaterThan(1);
  });
});

describe('ONNX writer: round trips of ONNX files', () => {
  const fixtures = fixtureModels();

  it.skipIf(fixtures.length === 0)('read -> write -> read gives the same graph for every readable fixture, and writing again gives the same bytes', () => {
    let compared = 0;
    for (const { name, file } of fixtures) {
      let model: Model;
      try {
        model = readOnnxModel(readFileSync(file), file);
      } catch {
        continue; // unreadable kinds are the reader's business (see onnx-conformance.test.ts)
      }
      const bytes = serializeOnnxModel(model, { opset: model.graph!.opset });
      const again = readOnnxModel(bytes, file);
      expect(normalize(again.graph!), name).toEqual(normalize(model.graph!));
      expect(Buffer.compare(Buffer.from(serializeOnnxModel(again, { opset: again.graph!.opset })), Buffer.from(bytes)), name).toBe(0);
      compared++;
    }
    expect(compared).toBeGreaterThan(1400);
  });

  it.skipIf(fixtures.length === 0)('every fixture written at opset 17 either runs with its expected outputs or is refused with a reason', () => {
    const refusals = new Map<string, number>();
    let ran = 0;
    for (const { name, file } of fixtures) {
      let model: Model;
      try {
        model = readOnnxModel(readFileSync(file), file);
      } catch {
        continue;
      }
      const g = model.graph!;
      let converted: Graph;
      try {
        converted = readOnnxModel(serializeOnnxModel(model, { opset: 17 }), file).graph!;
      } catch (e) {
        expect(e, name).toBeInstanceOf(UsageError);
        expect((e as Error).message, name).toMatch(/^cannot write node .* at ONNX opset 17 \(the graph is at opset \d+\): /);
        const reason = (e as Error).message.replace(/^.*?: /, '').replace(/\d+/g, 'N');
        refusals.set(reason, (refusals.get(reason) ?? 0) + 1);
        continue;
      }
      expect(converted.opset).toBe(17);
      const at = join(file, '..', 'test_data_set_0');
      if (!existsSync(at) || g.nodes.some((n) => !isSupported(n.op, g.opset, n.domain) || !isSupported(n.op, 17, n.domain))) continue;
      if (![...g.inputs, ...g.outputs].every((v) => isComputable(v.dtype)) || name.includes('training_dropout')) continue;
      const feeds: Record<string, Tensor> = {};
      g.inputs.forEach((input, i) => {
        const f = join(at, `input_${i}.pb`);
        if (existsSync(f)) feeds[input.name] = readOnnxTensor(readFileSync(f), f);
      });
      const outputs = run(converted, feeds);
      g.outputs.forEach((o, i) => {
        const f = join(at, `output_${i}.pb`);
        const expected = readOnnxTensor(readFileSync(f), f);
        const actual = outputs[o.name]!;
        expect(actual.shape, `${name} ${o.name}`).toEqual(expected.shape);
        if (['float32', 'float64', 'float16', 'bfloat16'].includes(actual.dtype)) {
          const [x, y] = [actual.toFloat32(), expected.toFloat32()];
          for (let k = 0; k < x.length; k++) {
            const ok = x[k] === y[k] || (Number.isNaN(x[k]) && Number.isNaN(y[k])) || Math.abs(x[k]! - y[k]!) <= 1e-6 + 1e-3 * Math.abs(y[k]!);
            expect(ok, `${name} ${o.name}[${k}]: ${x[k]} vs ${y[k]}`).toBe(true);
          }
        } else {
          expect(Buffer.from(actual.bytes()), `${name} ${o.name}`).toEqual(Buffer.from(expected.bytes()));
        }
      });
      ran++;
    }
    console.log(`written at opset 17 and run: ${ran}; refused: ${[...refusals].sort((a, b) => b[1] - a[1]).map(([r, n]) => `${n}x ${r}`).join('; ')}`);
    expect(ran).toBeGreaterThan(1000);
  });
});

describe('ONNX writer: opset conversion', () => {
  const x4 = { name: 'x', dtype: 'float32' as const, shape: [2, 3, 4] };
  const input = Tensor.from('float32', [2, 3, 4], Array.from({ length: 24 }, (_, i) => Math.sin(i) * 3));

  it('Softmax: the last axis converts both ways; another axis converts up exactly and is refused down', () => {
    const last = graphModel({ inputs: [x4], outputs: [{ name: 'y', dtype: 'float32', shape: null }], initializers: new Map(), nodes: [makeNode('Softmax', ['x'], ['y'], { axis: attr.int(-1) })] });
    const down = convertOpset(last.graph!, 11);
    expect(down.nodes.map((n) => [n.op, n.attributes['axis']])).toEqual([['Softmax', attr.int(2)]]);
    expect(maxDiff(run(down, { x: input })['y']!, run(last.graph!, { x: input })['y']!)).toBe(0);

    const middle = graphModel({ inputs: [x4], outputs: [{ name: 'y', dtype: 'float32', shape: null }], initializers: new Map(), nodes: [makeNode('Softmax', ['x'], ['y'], { axis: attr.int(1) })] });
    expect(() => convertOpset(middle.graph!, 12)).toThrow(/cannot write node y \(Softmax\) at ONNX opset 12 .*Softmax over axis 1 of a rank-3 input has no equivalent before opset 13/);

    // Opset 11's Softmax at axis 1 over a 3-D input flattens axes 1 and 2: up-conversion keeps that meaning.
    const old = { ...middle.graph!, opset: 11 };
    const up = convertOpset(old, 17);
    expect(up.nodes.map((n) => n.op)).toEqual(['Flatten', 'Softmax', 'Shape', 'Reshape']);
    expect(maxDiff(run(up, { x: input })['y']!, run(old, { x: input })['y']!)).toBeLessThan(1e-7);
  });

  it('Gelu below opset 20 becomes Erf/Mul/Add (and the tanh form Tanh/Mul/Add) with the same outputs', () => {
    for (const approximate of ['none', 'tanh']) {
      const g = graphModel({ inputs: [x4], outputs: [{ name: 'y', dtype: 'float32', shape: null }], initializers: new Map(), nodes: [makeNode('Gelu', ['x'], ['y'], { approximate: attr.string(approximate) })], opset: 20 }).graph!;
      const down = convertOpset(g, 17);
      expect(down.nodes.map((n) => n.op)).toContain(approximate === 'none' ? 'Erf' : 'Tanh');
      expect(down.nodes.some((n) => n.op === 'Gelu')).toBe(false);
      expect(maxDiff(run(down, { x: input })['y']!, run(g, { x: input })['y']!)).toBeLessThan(1e-6);
    }
  });

  it('LayerNormalization below 17 is decomposed (with its Mean and InvStdDev outputs); an axis of unknown range is refused', () => {
    const scale = Tensor.from('float32', [3, 4], Array.from({ length: 12 }, (_, i) => 1 + i / 10));
    const bias = Tensor.from('float32', [3, 4], Array.from({ length: 12 }, (_, i) => i / 7));
    const g: Graph = {
      opset: 17,
      inputs: [x4],
      outputs: ['y', 'mean', 'inv'].map((name) => ({ name, dtype: 'float32' as const, shape: null })),
      initializers: new Map([['scale', scale], ['bias', bias]]),
      nodes: [makeNode('LayerNormalization', ['x', 'scale', 'bias'], ['y', 'mean', 'inv'], { axis: attr.int(-2), epsilon: attr.float(1e-3) })],
    };
    const down = convertOpset(g, 16);
    expect(down.nodes.some((n) => n.op === 'LayerNormalization')).toBe(false);
    const [a, b] = [run(down, { x: input }), run(g, { x: input })];
    for (const k of ['y', 'mean', 'inv']) expect(maxDiff(a[k]!, b[k]!), k).toBeLessThan(1e-5);
    const unknownRank = { ...g, inputs: [{ ...x4, shape: null }], nodes: [makeNode('LayerNormalization', ['x', 'scale', 'bias'], ['y'], { axis: attr.int(1) })] };
    expect(() => convertOpset(unknownRank, 16)).toThrow(/axis 1 needs the input rank/);
  });

  it('moves axes, split, pads, min/max between attributes and inputs, and keeps the outputs', () => {
    const cases: { op: string; old: number; attrs: Record<string, ReturnType<typeof attr.int>>; outputs?: string[] }[] = [
      { op: 'Unsqueeze', old: 11, attrs: { axes: attr.ints([0, 3]) } },
      { op: 'ReduceSum', old: 11, attrs: { axes: attr.ints([1]), keepdims: attr.int(0) } },
      { op: 'ReduceMean', old: 17, attrs: { axes: attr.ints([-1]) } },
      { op: 'Clip', old: 10, attrs: { min: attr.float(-0.5), max: attr.float(0.75) } },
      { op: 'Pad', old: 10, attrs: { pads: attr.ints([0, 1, 0, 0, 2, 1]), value: attr.float(9) } },
      { op: 'Split', old: 12, attrs: { axis: attr.int(2), split: attr.ints([1, 3]) }, outputs: ['y', 'z'] },
      { op: 'Split', old: 12, attrs: { axis: attr.int(2) }, outputs: ['y', 'z'] },
    ];
    for (const c of cases) {
      const outputs = c.outputs ?? ['y'];
      const old: Graph = { opset: c.old, inputs: [x4], outputs: outputs.map((name) => ({ name, dtype: 'float32' as const, shape: null })), initializers: new Map(), nodes: [makeNode(c.op, ['x'], outputs, c.attrs)] };
      const up = convertOpset(old, 18);
      expect(up.nodes[0]!.inputs.length > 1 || 'num_outputs' in up.nodes[0]!.attributes, c.op).toBe(true);
      const back = convertOpset(up, c.old);
      expect(normalize(back, true), c.op).toEqual(normalize(old, true));
      const [a, b] = [run(old, { x: input }), run(up, { x: input })];
      for (const o of outputs) expect(maxDiff(a[o]!, b[o]!), `${c.op} ${o}`).toBe(0);
    }
  });

  it('refuses what the target opset cannot say, naming the node, the op and why', () => {
    const computedAxes: Graph = {
      opset: 18,
      inputs: [x4, { name: 'axes', dtype: 'int64', shape: [1] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: null }],
      initializers: new Map(),
      nodes: [makeNode('ReduceMean', ['x', 'axes'], ['y'])],
    };
    expect(() => convertOpset(computedAxes, 17)).toThrow(/node y \(ReduceMean\) .* its axes input must be a constant integer tensor/);
    const newOp: Graph = { ...computedAxes, inputs: [x4], nodes: [makeNode('BitwiseNot', ['x'], ['y'])] };
    expect(() => convertOpset(newOp, 17)).toThrow(/BitwiseNot exists from opset 18/);
    const bf16: Graph = { ...computedAxes, inputs: [{ ...x4, dtype: 'bfloat16' }], nodes: [makeNode('Relu', ['x'], ['y'])] };
    expect(() => convertOpset(bf16, 13, )).not.toThrow();
    expect(() => convertOpset({ ...bf16, opset: 14 }, 12)).toThrow(/Relu does not take bfloat16 inputs at opset 12 \(it exists from opset 13\)/);
    expect(() => convertOpset(computedAxes, 3)).toThrow(/choose an opset from 7 to \d+/);
    expect(() => serializeOnnxModel(graphModel({ ...computedAxes }), { opset: 99 })).toThrow(UsageError);
  });

  it('maps opsets to IR versions as ONNX releases did', () => {
    expect([irVersionFor(7), irVersionFor(11), irVersionFor(13), irVersionFor(17), irVersionFor(19), irVersionFor(21)]).toEqual([4, 6, 7, 8, 9, 10]);
    expect(irVersionFor(17, ['float8_e4m3fn'])).toBe(9);
    const model = graphModel({ inputs: [x4], outputs: [{ name: 'y', dtype: 'float32', shape: null }], initializers: new Map(), nodes: [makeNode('Gelu', ['x'], ['y'])], opset: 20 });
    expect(readOnnxModel(serializeOnnxModel(model, { opset: 20 }), 'm.onnx').metadata['onnx.ir_version']).toBe('9');
    const at13 = readOnnxModel(serializeOnnxModel(model, { opset: 13 }), 'm.onnx');
    expect([at13.graph!.opset, at13.metadata['onnx.ir_version']]).toEqual([13, '7']);
  });
});

describe('ONNX writer: external data', () => {
  const big = Tensor.from('float32', [64, 70], Array.from({ length: 64 * 70 }, (_, i) => i * 0.5));
  const small = Tensor.from('float32', [4], [1, 2, 3, 4]);
  const model = graphModel({
    inputs: [{ name: 'x', dtype: 'float32', shape: [null, 64] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [null, 4] }],
    initializers: new Map([['w', big], ['w2', Tensor.from('float32', [70, 4], Array.from({ length: 280 }, (_, i) => (i % 9) - 4))], ['b', small]]),
    nodes: [makeNode('MatMul', ['x', 'w'], ['h']), makeNode('MatMul', ['h', 'w2'], ['h2']), makeNode('Add', ['h2', 'b'], ['y'])],
  });

  it('moves tensors at or above the threshold to <model>.data, aligned, and reads them back from beside the model', () => {
    const sub = join(dir, 'ext');
    mkdirSync(sub, { recursive: true });
    const file = join(sub, 'm.onnx');
    const result = writeOnnxModel(model, file, { externalData: 1000 });
    expect(result.files).toEqual([file, `${file}.data`]);
    expect(readdirSync(sub).sort()).toEqual(['m.onnx', 'm.onnx.data']); // no temporary files left
    const proto = onnxSchema().lookupType('onnx.ModelProto').decode(readFileSync(file)) as unknown as { graph: { initializer: { name: string; data_location: number; external_data: { key: string; value: string }[] }[] } };
    const entries = proto.graph.initializer.map((t) => [t.name, t.data_location, Object.fromEntries(t.external_data.map((e) => [e.key, e.value]))]);
    expect(entries).toEqual([
      ['w', 1, { location: 'm.onnx.data', offset: '0', length: String(big.byteLength) }],
      ['w2', 1, { location: 'm.onnx.data', offset: String(Math.ceil(big.byteLength / 64) * 64), length: '1120' }],
      ['b', 0, {}],
    ]);
    const back = loadModel(file);
    expect(Buffer.from(back.weights.get('w')!.bytes())).toEqual(Buffer.from(big.bytes()));
    const x = Tensor.from('float32', [2, 64], Array.from({ length: 128 }, (_, i) => i / 100));
    expect(maxDiff(new Runner(back).run({ x })['y']!, new Runner(model).run({ x })['y']!)).toBe(0);
    // true means ONNX's default threshold, 1024 bytes: the 16-byte bias stays inline.
    writeOnnxModel(model, join(sub, 'd.onnx'), { externalData: true });
    expect(statSync(join(sub, 'd.onnx')).size).toBeLessThan(1000);
  });

  it('keeps everything inline unless asked, refuses external data without a path, and passes 2 GB only with external data', () => {
    const file = join(dir, 'inline.onnx');
    expect(writeOnnxModel(model, file).files).toEqual([file]);
    expect(() => serializeOnnxModel(model, { externalData: true })).toThrow(/external data needs a file/);
    // A 2 GiB tensor that is never read: the writer decides from sizes alone.
    const huge: ByteSource = { byteLength: 2 ** 31, read: () => { throw new Error('read'); }, *chunks() { throw new Error('read'); } };
    const giant = graphModel({ ...model.graph!, initializers: new Map([['w', new Tensor('float32', [2 ** 29], huge)]]) });
    expect(() => serializeOnnxModel(giant)).toThrow(/over protobuf's 2 GB limit/);
    expect(() => writeOnnxModel(giant, join(dir, 'giant.onnx'), { externalData: false })).toThrow(/over protobuf's 2 GB limit: allow external data/);
    expect(existsSync(join(dir, 'giant.onnx'))).toBe(false);
  });

  it('leaves nothing behind when writing fails halfway', () => {
    const failing: ByteSource = { byteLength: 4096, read: () => new Uint8Array(4096), *chunks() { yield new Uint8Array(100); throw new Error('disk gone'); } };
    const bad = graphModel({ ...model.graph!, initializers: new Map([['w', new Tensor('float32', [1024], failing)]]) });
    const sub = join(dir, 'failing');
    mkdirSync(sub, { recursive: true });
    expect(() => writeOnnxModel(bad, join(sub, 'f.onnx'), { externalData: 1 })).toThrow(/disk gone/);
    expect(readdirSync(sub)).toEqual([]);
  });
});

describe('ONNX: malformed files give one clear line', () => {
  const good = serializeOnnxModel(trained.model);

  function oneLine(f: () => unknown, pattern: RegExp): void {
    let error: unknown;
    try {
      f();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(pattern);
    expect((error as Error).message).not.toContain('\n');
  }

  it('a truncated protobuf', () => {
    const file = join(dir, 'truncated.onnx');
    writeFileSync(file, good.subarray(0, good.byteLength - 40));
    oneLine(() => loadModel(file), /truncated\.onnx: ModelProto protobuf: a well-formed protobuf message/);
    expect(() => loadModel(file)).toThrow(FormatError);
  });

  it('an initializer shorter than its shape', () => {
    const w = Tensor.from('float32', [2, 2], [1, 2, 3, 4]);
    const bytes = serializeOnnxModel(graphModel({ inputs: [{ name: 'x', dtype: 'float32', shape: [2] }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], initializers: new Map([['w', w]]), nodes: [makeNode('MatMul', ['x', 'w'], ['y'])] }));
    // Patch dims [2, 2] of initializer w into [2, 3] (dims are the first fields of its TensorProto).
    const at = Buffer.from(bytes).indexOf(Buffer.from([0x08, 0x02, 0x08, 0x02, 0x10, 0x01]));
    const patched = Uint8Array.from(bytes);
    patched[at + 3] = 3;
    oneLine(() => readOnnxModel(patched, 'short.onnx'), /short\.onnx: initializer w: 24 bytes of raw_data for float32 \[2, 3\], got 16/);
  });

  it('external data outside its file, and outside the model folder (by .. or by a symbolic link)', () => {
    const sub = join(dir, 'escape');
    mkdirSync(join(sub, 'model'), { recursive: true });
    const w = Tensor.from('float32', [300], Array.from({ length: 300 }, (_, i) => i));
    const m = graphModel({ inputs: [{ name: 'x', dtype: 'float32', shape: [300] }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], initializers: new Map([['w', w]]), nodes: [makeNode('Add', ['x', 'w'], ['y'])] });
    const file = join(sub, 'model', 'm.onnx');
    writeOnnxModel(m, file, { externalData: true });
    writeFileSync(`${file}.data`, readFileSync(`${file}.data`).subarray(0, 1000));
    oneLine(() => loadModel(file), /initializer w: bytes \[0, 1200\) inside .*m\.onnx\.data \(1000 bytes\)/);
    // A location that climbs out of the folder.
    const text = Buffer.from(readFileSync(file));
    const climbing = Buffer.from(text.toString('latin1').replace('m.onnx.data', '../x.onnx.d'), 'latin1');
    writeFileSync(file, climbing);
    oneLine(() => loadModel(file), /an external data location inside the model's directory, got "\.\.\/x\.onnx\.d"/);
    // A symbolic link inside the folder that leads out of it.
    writeFileSync(join(sub, 'outside.bin'), new Uint8Array(1200));
    writeFileSync(file, text);
    rmSync(`${file}.data`);
    symlinkSync(resolve(sub, 'outside.bin'), `${file}.data`);
    oneLine(() => loadModel(file), /an external data file inside the model's directory, but "m\.onnx\.data" leads to .*outside\.bin/);
  });

  it('an unknown op: the file reads, and the runtime names the op when asked to run it', () => {
    const m = graphModel({ inputs: [{ name: 'x', dtype: 'float32', shape: [1] }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], initializers: new Map(), nodes: [{ ...makeNode('FancyOp', ['x'], ['y']), domain: 'com.example' }] });
    const file = join(dir, 'unknown-op.onnx');
    writeOnnxModel(m, file);
    const back = loadModel(file);
    expect(back.graph!.nodes[0]!.op).toBe('FancyOp');
    oneLine(() => new Runner(back), /FancyOp/);
  });

  it('a module spec in metadata_props that the initializers do not match', () => {
    const m: Model = { ...trained.model, weights: new Map([...trained.model.weights].slice(1)) };
    const bytes = serializeOnnxModel({ ...m, graph: { ...m.graph!, initializers: new Map([...m.graph!.initializers].slice(1)) } });
    oneLine(() => readOnnxModel(bytes, 'lying.onnx'), /lying\.onnx: initializer 0\.weight: a \[2, 2\] tensor, as the module spec in metadata_props says/);
  });
});

describe('ONNX through convertModel', () => {
  it('safetensors -> onnx -> .pt -> onnx -> safetensors keeps the weights bit for bit and the predictions', () => {
    const start = join(dir, 'chain.safetensors');
    saveModel(trained.model, start);
    const reference = new Runner(trained.model).run({ x: orBatch() })['y']!;
    let current = start;
    for (const next of ['chain.onnx', 'chain.pt', 'chain2.onnx', 'chain2.safetensors']) {
      const out = join(dir, next);
      convertModel(current, out);
      const model = loadModel(out);
      expect(model.module, next).toEqual(trained.model.module);
      for (const [name, t] of trained.model.weights) expect(Buffer.from(model.weights.get(name)!.bytes()), `${next} ${name}`).toEqual(Buffer.from(t.bytes()));
      expect(maxDiff(new Runner(model).run({ x: orBatch() })['y']!, reference), next).toBe(0);
      current = out;
    }
  });

  it('an ONNX graph with no module spec converts to safetensors and back with the same outputs', () => {
    const file = join(NODE_TESTS, 'test_softmax_axis_1', 'model.onnx');
    if (!existsSync(file)) return;
    const st = join(dir, 'softmax.safetensors');
    convertModel(file, st);
    const back = join(dir, 'softmax.onnx');
    convertModel(st, back);
    const x = readOnnxTensor(readFileSync(join(file, '..', 'test_data_set_0', 'input_0.pb')), 'input_0.pb');
    const expected = readOnnxTensor(readFileSync(join(file, '..', 'test_data_set_0', 'output_0.pb')), 'output_0.pb');
    for (const f of [st, back]) {
      const model = loadModel(f);
      expect(maxDiff(Object.values(new Runner(model).run({ x }))[0]!, expected), f).toBeLessThan(1e-6);
    }
  });

  it('the handler writes at the opset and with the external data the write options ask for', () => {
    const file = join(dir, 'handler.onnx');
    onnxFormat.write(trained.model, file, { opset: 13, externalData: 1 } as never);
    expect(existsSync(`${file}.data`)).toBe(true);
    expect(loadModel(file).graph!.opset).toBe(13);
  });
});
