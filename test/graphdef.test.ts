import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/api/load.js';
import { Runner } from '../src/api/run.js';
import { FormatError } from '../src/core/errors.js';
import { Tensor } from '../src/core/tensor.js';
import { frozenGraph, GRAPH_PRODUCER, graphdefFormat, graphDefBytes, looksLikeGraphDef, readGraphDef, writeGraphDef } from '../src/formats/graphdef/index.js';
import { encodeMessage } from '../src/formats/tf/schema.js';
import { probe } from '../src/formats/registry.js';
import { maxDiff, relDiff, sampleInput, tfRunGraphDef } from './fixtures/tf/peer.js';
import { peerPython, ROOT } from './peers.js';
import { FIXTURES } from './cli-helpers.js';

const fixture = (p: string) => join(FIXTURES, p);
const tmp = () => mkdtempSync(join(tmpdir(), 'mb-graphdef-'));

describe('frozen GraphDef reader', () => {
  it('reads tf-rust addition.pb: z = x + y on int32 scalars', () => {
    const model = readGraphDef(fixture('tf-rust/examples/addition/model.pb'));
    expect([...model.signatures[0]!.inputs.keys()]).toEqual(['x', 'y']);
    const out = new Runner(model).run({ x: Tensor.from('int32', [], [3]), y: Tensor.from('int32', [], [4]) });
    expect(out['z']!.dtype).toBe('int32');
    expect(out['z']!.toNumbers()).toEqual([7]);
  });

  it('reads the producer-9 multiplication.pb: c = a * b', () => {
    const model = readGraphDef(fixture('tf-rust/tensorflow-sys/examples/assets/multiplication.pb'));
    const out = new Runner(model).run({ a: Tensor.from('float32', [], [2.5]), b: Tensor.from('float32', [], [4]) });
    expect(out['c']!.toNumbers()).toEqual([10]);
  });

  it('reads tf2onnx regression: pred = X * 0.21396178 + 1.0495254 from Const weights', () => {
    const model = readGraphDef(fixture('tf2onnx/models/regression/graphdef/frozen.pb'));
    expect([...model.weights.keys()].sort()).toEqual(['W', 'b']);
    const out = new Runner(model).run({ X: Tensor.from('float32', [3], [0, 1, -2]) });
    const pred = out['pred']!.toNumbers();
    [0, 1, -2].forEach((x, i) => expect(pred[i]).toBeCloseTo(x * 0.21396178 + 1.0495254, 6));
  });

  it('reads the tf2onnx fc-layers MLP as a chain of Dense layers', () => {
    const model = readGraphDef(fixture('tf2onnx/models/fc-layers/frozen.pb'));
    expect(model.graph!.nodes.map((n) => n.op)).toEqual(['MatMul', 'Add', 'Relu', 'MatMul', 'Add', 'Relu', 'MatMul', 'Add']);
    expect(model.graph!.inputs).toEqual([{ name: 'X', dtype: 'float32', shape: [null, 784] }]);
    const out = new Runner(model).run({ X: sampleInput('float32', [2, 784]) });
    expect(out['output']!.shape).toEqual([2, 10]);
  });

  it('names the ops of an RNN graph it cannot map (RandomUniform dropout)', () => {
    expect(() => readGraphDef(fixture('tf2onnx/models/lstm/frozen.pb'))).toThrow(/unsupported: .*RandomUniform \(node /);
  });

  it('asks for a frozen graph when the graph holds variables', () => {
    const read = () => readGraphDef(fixture('tf-rust/examples/regression/model.pb'), { inputs: ['x'], outputs: ['add'] });
    expect(read).toThrow(FormatError);
    expect(read).toThrow(/a frozen graph: variables must be constants/);
  });

  it('reports a file that is no GraphDef as a FormatError', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'bad.pb'), Uint8Array.from([0x0a, 0x05, 0x0a, 0x01]));
    expect(() => readGraphDef(join(dir, 'bad.pb'))).toThrow(FormatError);
    expect(() => readGraphDef(join(dir, 'missing.pb'))).toThrow(FormatError);
  });
});

describe('frozen GraphDef writer', () => {
  it('writes the same bytes every time, and reads back to the same outputs', () => {
    const model = readGraphDef(fixture('tf2onnx/models/fc-layers/frozen.pb'));
    const first = graphDefBytes(model);
    expect(Buffer.from(graphDefBytes(model)).equals(Buffer.from(first))).toBe(true);
    const file = join(tmp(), 'fc.pb');
    expect(writeGraphDef(model, file)).toEqual([file]);
    const back = readGraphDef(file);
    const x = sampleInput('float32', [3, 784]);
    expect(maxDiff(new Runner(back).run({ X: x })['output']!, new Runner(model).run({ X: x })['output']!)).toBe(0);
    // Weights survive bit for bit.
    for (const [name, t] of model.weights) expect(Buffer.from(back.weights.get(name)!.bytes()).equals(Buffer.from(t.bytes()))).toBe(true);
  });

  it('streams the weights into exactly the bytes protobufjs encodes for the whole message', () => {
    const models = [
      readGraphDef(fixture('tf2onnx/models/fc-layers/frozen.pb')),
      readGraphDef(fixture('tf2onnx/models/ae0/frozen.pb')),
      loadModel(join(ROOT, 'samples', 'or-gate', 'or-gate.safetensors')),
    ];
    for (const model of models) {
      const whole = encodeMessage('GraphDef', { node: frozenGraph(model).nodes, versions: { producer: GRAPH_PRODUCER } });
      const streamed = graphDefBytes(model);
      expect(Buffer.compare(streamed, whole)).toBe(0);
      const file = join(tmp(), 'streamed.pb');
      writeGraphDef(model, file);
      expect(Buffer.compare(readFileSync(file), whole)).toBe(0);
    }
  });
});

describe('graphdef format handler', () => {
  it('detects GraphDef files by their first bytes and nothing else', () => {
    expect(graphdefFormat.detect(probe(fixture('tf2onnx/models/fc-layers/frozen.pb')))).toBe(true);
    expect(graphdefFormat.detect(probe(fixture('tf-rust/examples/addition/model.pb')))).toBe(true);
    expect(graphdefFormat.detect(probe(fixture('tf-rust/examples/regression/model.pb')))).toBe(true);
    expect(graphdefFormat.detect(probe(fixture('tf-serving/testdata/saved_model_half_plus_two_cpu/00000123/saved_model.pb')))).toBe(false);
    expect(graphdefFormat.detect(probe(fixture('onnx/light/light_bvlc_alexnet.onnx')))).toBe(false);
    expect(graphdefFormat.detect(probe(fixture('tf-serving/testdata/saved_model_half_plus_two_cpu/00000123')))).toBe(false);
    expect(looksLikeGraphDef(new Uint8Array(readFileSync(join(__dirname, 'fixtures/safetensors/zeros.safetensors')).subarray(0, 64)))).toBe(false);
    expect(graphdefFormat.extensions).toEqual(['.pb']);
  });
});

const python = peerPython();

describe.skipIf(!python)('frozen GraphDefs against TensorFlow', () => {
  it('reads fc-layers and ae0 to the outputs TensorFlow computes', () => {
    for (const [file, out] of [['tf2onnx/models/fc-layers/frozen.pb', 'output'], ['tf2onnx/models/ae0/frozen.pb', 'output']] as const) {
      const model = readGraphDef(fixture(file));
      const x = sampleInput('float32', [2, 784]);
      const expected = tfRunGraphDef(fixture(file), { X: x }, [out])[out]!;
      expect(relDiff(new Runner(model).run({ X: x })[out]!, expected), file).toBeLessThanOrEqual(1e-5);
    }
  });

  it('writes a GraphDef TensorFlow imports and runs to the same outputs', () => {
    const model = readGraphDef(fixture('tf2onnx/models/fc-layers/frozen.pb'));
    const file = join(tmp(), 'written.pb');
    writeGraphDef(model, file);
    const x = sampleInput('float32', [2, 784], 3);
    const expected = tfRunGraphDef(file, { X: x }, ['output'])['output']!;
    expect(relDiff(new Runner(model).run({ X: x })['output']!, expected)).toBeLessThanOrEqual(1e-5);
  });
});
