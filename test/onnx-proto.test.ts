import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, saveModel } from '../src/api/load.js';
import { Tensor } from '../src/core/tensor.js';
import type { Model } from '../src/core/model.js';
import { lowerModule } from '../src/module/lower.js';
import type { ModuleSpec } from '../src/module/spec.js';
import { ROOT, tempDir } from './cli-helpers.js';

/**
 * Every ONNX file modelbridge writes decodes with onnx-proto, the protobufjs build of ONNX's
 * schema that older JavaScript tools read ONNX with, into the same graph and the same weight
 * bytes modelbridge itself reads back. It is a second, independent decoder: a field written under
 * the wrong number or wire type shows here even when modelbridge's own reader agrees with itself.
 */
interface ProtoTensor {
  name: string;
  dims: (number | { toNumber(): number })[];
  dataType: number;
  rawData: Uint8Array;
  floatData: number[];
  externalData: { key: string; value: string }[];
  dataLocation: number;
}
interface ProtoModel {
  irVersion: number | { toNumber(): number };
  opsetImport: { domain: string; version: number | { toNumber(): number } }[];
  graph: {
    node: { opType: string; input: string[]; output: string[]; attribute: { name: string }[] }[];
    initializer: ProtoTensor[];
    input: { name: string }[];
    output: { name: string }[];
  };
}
const onnxProto = createRequire(import.meta.url)('onnx-proto') as { onnx: { ModelProto: { decode(bytes: Uint8Array): ProtoModel } } };

const num = (v: number | { toNumber(): number }): number => (typeof v === 'number' ? v : v.toNumber());

/** The bytes of an initializer as onnx-proto sees them: raw_data, float_data, or the external file. */
function protoBytes(t: ProtoTensor, dir: string): Uint8Array {
  if (t.dataLocation === 1) {
    const entry = Object.fromEntries(t.externalData.map((e) => [e.key, e.value]));
    const data = readFileSync(join(dir, entry['location']!));
    const offset = Number(entry['offset'] ?? 0);
    return data.subarray(offset, offset + Number(entry['length'] ?? data.byteLength - offset));
  }
  if (t.rawData.byteLength > 0) return t.rawData;
  return new Uint8Array(new Float32Array(t.floatData).buffer);
}

function checkDecoded(path: string, opset: number): void {
  const proto = onnxProto.onnx.ModelProto.decode(readFileSync(path));
  const back = loadModel(path);
  const graph = back.graph!;
  expect(num(proto.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx')!.version)).toBe(opset);
  expect(num(proto.irVersion)).toBeGreaterThanOrEqual(3);
  expect(proto.graph.node.map((n) => [n.opType, n.input, n.output])).toEqual(graph.nodes.map((n) => [n.op, [...n.inputs], [...n.outputs]]));
  for (const [i, n] of proto.graph.node.entries()) expect(n.attribute.map((a) => a.name).sort(), n.opType).toEqual(Object.keys(graph.nodes[i]!.attributes).sort());
  expect(proto.graph.output.map((o) => o.name)).toEqual(graph.outputs.map((o) => o.name));
  expect(proto.graph.initializer.map((t) => t.name).sort()).toEqual([...graph.initializers.keys()].sort());
  for (const t of proto.graph.initializer) {
    const mine = graph.initializers.get(t.name)!;
    expect(t.dims.map(num), t.name).toEqual([...mine.shape]);
    expect(Buffer.compare(Buffer.from(protoBytes(t, dirname(path))), Buffer.from(mine.bytes())), t.name).toBe(0);
  }
}

function expectSameWeights(source: Model, path: string): void {
  const back = loadModel(path);
  for (const [name, t] of source.weights) {
    const written = back.weights.get(name) ?? back.graph?.initializers.get(name);
    if (!written) continue; // renamed by a layout change (a TF kernel): compared by verify, not here
    expect(Buffer.compare(Buffer.from(written.bytes()), Buffer.from(t.bytes())), name).toBe(0);
  }
}

const samples = join(ROOT, 'samples', 'or-gate');
const sources: [string, string][] = [
  ['safetensors', 'or-gate.safetensors'],
  ['pytorch', 'or-gate.pt'],
  ['onnx', 'or-gate.onnx'],
  ['graphdef', 'or-gate.pb'],
  ['savedmodel', 'or-gate-savedmodel'],
  ['tfjs', 'or-gate.json'],
];

function cnn(): Model {
  const spec: ModuleSpec = {
    type: 'Sequential',
    modules: [
      { type: 'Conv2d', in_channels: 3, out_channels: 4, kernel_size: [3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1, bias: true, padding_mode: 'zeros' },
      { type: 'BatchNorm2d', num_features: 4, eps: 1e-5, momentum: 0.1, affine: true, track_running_stats: true },
      { type: 'ReLU', inplace: false },
      { type: 'MaxPool2d', kernel_size: 2, stride: 2, padding: 0, dilation: 1, return_indices: false, ceil_mode: false },
      { type: 'Flatten', start_dim: 1, end_dim: -1 },
      { type: 'Linear', in_features: 64, out_features: 5, bias: true },
      { type: 'LayerNorm', normalized_shape: [5], eps: 1e-5, elementwise_affine: true, bias: true },
      { type: 'GELU', approximate: 'none' },
      { type: 'Softmax', dim: 1 },
    ],
  };
  const f = (shape: number[], seed: number): Tensor => Tensor.from('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.7 + seed)));
  const weights = new Map<string, Tensor>([
    ['0.weight', f([4, 3, 3, 3], 1)],
    ['0.bias', f([4], 2)],
    ['1.weight', f([4], 3)],
    ['1.bias', f([4], 4)],
    ['1.running_mean', f([4], 5)],
    ['1.running_var', Tensor.from('float32', [4], [1, 2, 3, 4])],
    ['1.num_batches_tracked', Tensor.from('int64', [], [7n])],
    ['5.weight', f([5, 64], 6)],
    ['5.bias', f([5], 7)],
    ['6.weight', f([5], 8)],
    ['6.bias', f([5], 9)],
  ]);
  const lowered = lowerModule(spec, weights, 'cnn', { inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 3, 8, 8] }], outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 5] }] });
  return { format: 'safetensors', weights, graph: lowered.graph, signatures: [lowered.signature], module: spec, metadata: {} };
}

describe('ONNX files modelbridge writes, decoded by onnx-proto', () => {
  it.each(sources)('the OR gate from %s, at opsets 17, 13 and 9', (_format, file) => {
    const source = loadModel(join(samples, file));
    const dir = tempDir();
    for (const opset of [17, 13, 9]) {
      const out = join(dir, `or-${opset}.onnx`);
      saveModel(source, out, { opset });
      checkDecoded(out, opset);
      expectSameWeights(source, out);
    }
  });

  it('a CNN (Conv, BatchNormalization, MaxPool, Flatten, Gemm, LayerNormalization, Gelu, Softmax), inline and with external data', () => {
    const model = cnn();
    const dir = tempDir();
    for (const [name, options] of [
      ['inline.onnx', { opset: 17 }],
      ['decomposed.onnx', { opset: 11 }],
      ['external.onnx', { opset: 17, externalData: 256 }],
    ] as const) {
      const out = join(dir, name);
      saveModel(model, out, options);
      checkDecoded(out, options.opset);
      expectSameWeights(model, out);
    }
    // The external-data file really holds the weights past the threshold; the small ones stay inline.
    const external = onnxProto.onnx.ModelProto.decode(readFileSync(join(dir, 'external.onnx')));
    const location = Object.fromEntries(external.graph.initializer.map((t) => [t.name, t.dataLocation]));
    expect([location['0.weight'], location['5.weight'], location['0.bias']]).toEqual([1, 1, 0]);
  });
});
