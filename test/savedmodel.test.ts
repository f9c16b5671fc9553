import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareWeights } from '../src/api/diff.js';
import { convertModel, loadModel } from '../src/api/load.js';
import { Runner } from '../src/api/run.js';
import { FormatError } from '../src/core/errors.js';
import type { Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { readGraphDef, writeGraphDef } from '../src/formats/graphdef/index.js';
import { decodeSavedModel, readSavedModel, savedmodelFormat, writeSavedModel } from '../src/formats/savedmodel/index.js';
import { readTensorBundle, writeTensorBundle } from '../src/formats/tensorbundle/index.js';
import { trainOrGate } from '../src/train/or-gate.js';
import { FIXTURES } from './cli-helpers.js';
import { cnnModel, mlpModel } from './fixtures/tf/models.js';
import { fromJson, maxDiff, relDiff, sampleInput, type JsonTensor } from './fixtures/tf/peer.js';

/**
 * SavedModels without TensorFlow: the real SavedModels of test/fixtures/upstream read and run to the
 * outputs their generators define (test/fixtures/PROVENANCE.md), unsupported signatures refused
 * by op and node, bad files refused in one line, and what the writer makes read back bit for bit
 * and converted to and from safetensors, ONNX and frozen GraphDefs. TensorFlow itself checks the
 * same files in savedmodel.peer.test.ts.
 */

const fx = (p: string) => join(FIXTURES, p);
const KERAS_CNN = join(__dirname, 'fixtures', 'tf', 'keras_cnn');
const tmp = () => mkdtempSync(join(tmpdir(), 'mb-savedmodel-'));
const f32 = (shape: number[], values: number[]) => Tensor.from('float32', shape, values);

function run(model: Model, inputs: Record<string, Tensor>): Record<string, Tensor> {
  return new Runner(model).run(inputs);
}

/** The half_plus_two family: y = 0.5x + 2 (serving_default), y3 = 0.5x2 + 3 (regress_x2_to_y3). */
const HALF_PLUS_TWO = [
  'tf-serving/testdata/saved_model_half_plus_two_cpu/00000123',
  'tf-serving/testdata/saved_model_half_plus_two_2_versions/00000123',
  'tf-serving/testdata/saved_model_half_plus_two_2_versions/00000124',
  'tf-serving/testdata/saved_model_half_plus_two_gpu/00000123',
  'tf-serving/testdata/saved_model_half_plus_two_gpu_trt/00000123',
  'tf-serving/testdata/saved_model_half_plus_two_mlmd/00000123',
  'tf-serving/testdata/saved_model_half_plus_two_cpu_with_saved_model_config/00000123',
  'tf-serving/testdata/saved_model_half_plus_two_cpu_with_empty_saved_model_config/00000123',
  'tf-serving/testdata/saved_model_half_plus_two_tf2_cpu/00000123',
  'tf-java/saved_model',
];

describe('SavedModel reader: upstream fixtures with the outputs their generators define', () => {
  it('half_plus_two (TF 1.1 to 2.14, ref and resource variables, snappy indexes, TF2 object graph): y = 0.5x + 2, y3 = 0.5x2 + 3', () => {
    const x = [-3, 0, 1.5, 7];
    for (const dir of HALF_PLUS_TWO) {
      // TF2's half_plus_two takes x of shape [1]; the TF1 exports take [-1, 1].
      const tf2 = dir.includes('tf2_cpu');
      const batch = tf2 ? [f32([1], [x[2]!])] : [f32([4, 1], x)];
      const served = readSavedModel(fx(dir));
      expect([...served.signatures[0]!.inputs.keys()], dir).toEqual(['x']);
      for (const input of batch) {
        const y = run(served, { x: input })['y']!;
        expect(y.toNumbers(), dir).toEqual(input.toNumbers().map((v) => 0.5 * v + 2));
        const y3 = run(readSavedModel(fx(dir), { signature: 'regress_x2_to_y3' }), { inputs: input })['outputs']!;
        expect(y3.toNumbers(), dir).toEqual(input.toNumbers().map((v) => 0.5 * v + 3));
      }
    }
  });

  it('half_plus_two_mkl: a Conv2D over zeros leaves y3 = 0.5x2 + 3, broadcast to [1, 10, 10, 1]', () => {
    const dir = fx('tf-serving/testdata/saved_model_half_plus_two_mkl/00000123');
    expect(run(readSavedModel(dir), { x: f32([2, 1], [4, -2]) })['y']!.toNumbers()).toEqual([4, 1]);
    const y3 = run(readSavedModel(dir, { signature: 'regress_x2_to_y3' }), { inputs: f32([1, 1], [4]) })['outputs']!;
    expect(y3.shape).toEqual([1, 10, 10, 1]);
    expect(new Set(y3.toNumbers())).toEqual(new Set([5]));
  });

  it('half_plus_three (TF 1.0): y = 0.5x + 3', () => {
    const y = run(readSavedModel(fx('tf-serving/testdata/saved_model_half_plus_three/00000123')), { x: f32([3], [0, 2, -4]) })['y']!;
    expect(y.toNumbers()).toEqual([3, 4, 1]);
  });

  it('tf-java saved_model_using_python (TF 2.4): add, the constant signatures and get_variable = 2', () => {
    const dir = fx('tf-java/saved_model_using_python/model');
    const sig = (signature: string, inputs: Record<string, Tensor>) => run(readSavedModel(dir, { signature }), inputs)['output_0']!;
    expect(sig('add', { a: f32([], [10]), b: f32([], [15.5]) }).toNumbers()).toEqual([25.5]);
    expect(sig('get_const_scalar', { input: f32([], [1.25]) }).toNumbers()).toEqual([1.25]);
    const vector = sig('get_const_vector', { input: f32([], [2]) });
    expect([vector.shape, vector.toNumbers()]).toEqual([[3], [2, 2, 2]]);
    const matrix = sig('get_const_matrix', { input: f32([], [-1]) });
    expect([matrix.shape, matrix.toNumbers()]).toEqual([[2, 3], [-1, -1, -1, -1, -1, -1]]);
    expect(sig('get_variable', { dummy: f32([], [0]) }).toNumbers()).toEqual([2]);
  });

  it('tf-rust regression_savedmodel (TF 2.5 tf.Module): signatures w and b return the stored variables', () => {
    const dir = fx('tf-rust/examples/regression_savedmodel');
    expect(run(readSavedModel(dir, { signature: 'w' }), {})['output']!.toFloat32()).toEqual(Float32Array.from([0.20429754]));
    expect(run(readSavedModel(dir, { signature: 'b' }), {})['output']!.toNumbers()).toEqual([0]);
  });

  it('tf-rust regression-model (TF 1.2, tags [train, serve]): y_hat = -0.85786223 x', () => {
    const model = readSavedModel(fx('tf-rust/test_resources/regression-model'), { tags: ['train', 'serve'], signature: 'tensorflow/serving/regress' });
    const yHat = run(model, { x: f32([3], [1, 2, -1]), y: f32([3], [0, 0, 0]) })['out']!;
    expect(Array.from(yHat.toFloat32())).toEqual(Array.from(Float32Array.from([1, 2, -1].map((v) => v * -0.8578622341156006))));
  });

  it('tf2onnx regression (TF 1.11): pred = X * 0.21396178 + 1.0495254, the weights as stored in the frozen graph', () => {
    const model = readSavedModel(fx('tf2onnx/models/regression/saved_model'));
    const pred = run(model, { X: f32([3], [0, 1, -2]) })['pred']!.toNumbers();
    [0, 1, -2].forEach((x, i) => expect(pred[i]).toBeCloseTo(x * 0.21396178 + 1.0495254, 6));
    const frozen = readGraphDef(fx('tf2onnx/models/regression/graphdef/frozen.pb'));
    expect(compareWeights(frozen.weights, model.weights, { atol: 0, rtol: 0 }).counts.identical).toBe(2);
  });

  it('tf2onnx saved_model_with_redundant_inputs: z = x + a constant, y unused', () => {
    const model = readSavedModel(fx('tf2onnx/models/saved_model_with_redundant_inputs'));
    const a = sampleInput('float32', [1, 10], 1);
    const z1 = run(model, { x: a, y: sampleInput('float32', [1, 10], 2) })['z']!.toNumbers();
    const z2 = run(model, { x: f32([1, 10], new Array(10).fill(0)), y: a })['z']!.toNumbers();
    // z - x does not depend on x or y.
    a.toNumbers().forEach((v, i) => expect(z1[i]! - v).toBeCloseTo(z2[i]!, 6));
  });

  it('tfjs-node test models (TF 2.0 to 2.3): the results tfjs-node asserts', () => {
    const dir = (name: string) => fx(`tfjs/tfjs-node/test_objects/saved_model/${name}`);
    const out = (name: string, inputs: Record<string, Tensor>, signature?: string) => run(readSavedModel(dir(name), { signature }), inputs);
    // The signatures take scalars; tfjs-node feeds 1, 2 and 3 in turn.
    for (const v of [1, 2, 3]) {
      expect(out('times_three_float', { x: f32([], [v]) })['output_0']!.toNumbers()).toEqual([3 * v]);
      const twice = out('times_two_int', { x: Tensor.from('int32', [], [v]) })['output_0']!;
      expect([twice.dtype, twice.toNumbers()]).toEqual(['int32', [2 * v]]);
    }
    expect(out('module_with_multiple_signatures', { x: f32([], [5]) })['output_0']!.toNumbers()).toEqual([15]);
    expect(out('module_with_multiple_signatures', { x: f32([], [5]) }, 'timestwo')['output_0']!.toNumbers()).toEqual([10]);
    const single = out('model_single_input_multi_output', { x: Tensor.from('int32', [], [7]) });
    expect([single['output_0']!.toNumbers(), single['output_1']!.toNumbers()]).toEqual([[14], [7]]);
    const multi = out('model_multi_output', { x: Tensor.from('int32', [], [7]), y: Tensor.from('int32', [], [-3]) });
    expect([multi['output_0']!.toNumbers(), multi['output_1']!.toNumbers()]).toEqual([[14], [-3]]);
    const u8 = out('uint8_multiply', { x: Tensor.from('uint8', [1], [3]) })['output_0']!;
    expect([u8.dtype, u8.toNumbers()]).toEqual(['int32', [18]]);
    const i64 = out('int64_multiply', { x: Tensor.from('int64', [2], [3n, 4n]) })['output_0']!;
    expect([i64.dtype, i64.toNumbers()]).toEqual(['int64', [18, 24]]);
  });

  it('test/fixtures/tf/keras_cnn (Keras 3: Conv2D, BatchNorm, DepthwiseConv2D, pools, Dense) gives the output TensorFlow computed', () => {
    const { input, output } = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'tf', 'keras_cnn.json'), 'utf8')) as { input: JsonTensor; output: JsonTensor };
    const model = readSavedModel(KERAS_CNN);
    const y = run(model, { inputs: fromJson(input) })['output_0']!;
    expect(relDiff(y, fromJson(output))).toBeLessThanOrEqual(1e-6);
    // The filters were transposed HWIO -> OIHW once, as weights; the graph has no Transpose of a weight.
    expect(model.weights.get('_layers/1/_kernel')!.shape).toEqual([4, 3, 3, 3]);
    expect(model.weights.get('_layers/3/kernel')!.shape).toEqual([8, 1, 3, 3]);
  });

  it('TF2 Keras models of tf-rust read their variables from the checkpoint by object path', () => {
    const single = readSavedModel(fx('tf-rust/examples/keras_single_input_saved_model'));
    expect([...single.weights.keys()].sort()).toEqual(['layer_with_weights-0/bias', 'layer_with_weights-0/kernel', 'layer_with_weights-1/bias', 'layer_with_weights-1/kernel', 'layer_with_weights-2/bias', 'layer_with_weights-2/kernel']);
    const bundle = readTensorBundle(fx('tf-rust/examples/keras_single_input_saved_model/variables/variables')).tensors;
    for (const [name, t] of single.weights) expect(Buffer.from(t.bytes()).equals(Buffer.from(bundle.get(`${name}/.ATTRIBUTES/VARIABLE_VALUE`)!.bytes())), name).toBe(true);
    const multi = readSavedModel(fx('tf-rust/examples/keras_multiple_inputs_saved_model'));
    expect([...multi.signatures[0]!.inputs.keys()]).toEqual(['test_in1', 'test_in2']);
    const y = run(multi, { test_in1: sampleInput('float32', [3, 5], 1), test_in2: sampleInput('float32', [3, 5], 2) })['test_out']!;
    expect(y.shape).toEqual([3, 1]);
    for (const v of y.toNumbers()) expect(v > 0 && v < 1).toBe(true);
  });
});

describe('SavedModel reader: what it cannot read, it names', () => {
  /** The one-line FormatError reading `dir` with `options` raises. */
  function failure(dir: string, options: Parameters<typeof readSavedModel>[1] = {}): FormatError {
    try {
      readSavedModel(dir, options);
    } catch (err) {
      expect(err).toBeInstanceOf(FormatError);
      expect((err as Error).message).not.toMatch(/\n/);
      return err as FormatError;
    }
    throw new Error(`${dir} was read`);
  }

  it('signatures that parse tf.Example protos: "unsupported: ParseExample" with the node using it', () => {
    for (const dir of HALF_PLUS_TWO) {
      const err = failure(fx(dir), { signature: 'regress_x_to_y' });
      expect(err.message, dir).toMatch(/unsupported: ParseExample(V2)? \(node (__inference_regress_xy_\d+\/)?ParseExample\/ParseExample(V2)?\)/);
      expect(err.message.startsWith(join(fx(dir), 'saved_model.pb'))).toBe(true);
    }
  });

  it('the stateful counter signatures: AssignAdd and Assign, by node', () => {
    const dir = fx('tf-serving/testdata/saved_model_counter/00000123');
    expect(failure(dir, { signature: 'incr_counter' }).message).toMatch(/unsupported: AssignAdd \(node incr_counter_op\/AssignAdd\)/);
    expect(failure(dir, { signature: 'reset_counter' }).message).toMatch(/unsupported: Assign \(node reset_counter_op\/Assign\)/);
    // get_counter only reads the variable: 0 as saved.
    expect(run(readSavedModel(dir, { signature: 'get_counter' }), {})['output']!.toNumbers()).toEqual([0]);
  });

  it('a missing signature lists the ones there are; a missing tag set lists the tag sets', () => {
    const dir = fx('tfjs/tfjs-node/test_objects/saved_model/module_with_multiple_signatures');
    expect(failure(dir, { signature: 'nope' }).message).toMatch(/a signature "nope" \(have: serving_default, timestwo/);
    expect(failure(dir, { tags: ['train'] }).message).toMatch(/one tagged \["train"\] \(have: \["serve"\]\)/);
  });

  it('a legacy Saver export without saved_model.pb, and a missing directory', () => {
    expect(failure(fx('tf-serving/testdata/bad_half_plus_two/00000123')).message).toMatch(/saved_model\.pb: file: a readable saved_model\.pb/);
    expect(failure(join(tmp(), 'nothing')).message).toMatch(/a readable saved_model\.pb/);
  });

  /** A copy of half_plus_two_cpu (snappy index) to damage. */
  function damaged(edit: (dir: string) => void): string {
    const dir = join(tmp(), 'model');
    cpSync(fx('tf-serving/testdata/saved_model_half_plus_two_cpu/00000123'), dir, { recursive: true });
    edit(dir);
    return dir;
  }
  const index = (dir: string) => join(dir, 'variables', 'variables.index');
  const data = (dir: string) => join(dir, 'variables', 'variables.data-00000-of-00001');

  it('bad checkpoints: truncated index, wrong magic, crc mismatch, missing shard, each one line naming the file', () => {
    const cases: [string, (dir: string) => void, RegExp, (dir: string) => string][] = [
      ['truncated index', (d) => truncateSync(index(d), 30), /file: a table of at least 48 bytes/, index],
      ['wrong magic', (d) => flip(index(d), -1), /the table magic number/, index],
      ['block crc', (d) => flip(index(d), 3), /block checksum 0x[0-9a-f]+, computed/, index],
      ['tensor crc', (d) => flip(data(d), 9), /tensor "b" at byte 8: data matching its checksum 0x[0-9a-f]+, computed/, data],
      ['missing shard', (d) => rmSync(data(d)), /variables\.data-00000-of-00001: file: a readable file \(ENOENT\)/, data],
      ['truncated data', (d) => truncateSync(data(d), 10), /4 bytes inside the 10-byte data file/, data],
    ];
    for (const [what, edit, message, file] of cases) {
      const dir = damaged(edit);
      const err = failure(dir);
      expect(err.message, what).toMatch(message);
      expect(err.file, what).toBe(file(dir));
    }
  });

  it('a graph whose variable the checkpoint lacks: names the variable and the key', () => {
    // The TF1 graph restores "b"; a checkpoint written without it.
    const dir = damaged((d) => {
      const kept = readTensorBundle(join(d, 'variables', 'variables')).tensors;
      rmSync(join(d, 'variables'), { recursive: true });
      writeTensorBundle(join(d, 'variables', 'variables'), new Map([...kept].filter(([k]) => k !== 'b')));
    });
    expect(failure(dir).message).toMatch(/saved_model\.pb: variable b: a value in the checkpoint under "b"/);
    // TF2: the object graph's key for the captured variable.
    const tf2 = join(tmp(), 'tf2');
    cpSync(fx('tfjs/tfjs-node/test_objects/saved_model/times_three_float'), tf2, { recursive: true });
    const kept = readTensorBundle(join(tf2, 'variables', 'variables')).tensors;
    rmSync(join(tf2, 'variables'), { recursive: true });
    writeTensorBundle(join(tf2, 'variables', 'variables'), new Map([...kept].filter(([k]) => !k.startsWith('v/'))));
    expect(failure(tf2).message).toMatch(/variable \S+: a value in the checkpoint under "v\/\.ATTRIBUTES\/VARIABLE_VALUE"/);
  });
});

/** The __metadata__ of a safetensors file, read from its JSON header. */
function safetensorsMetadata(file: string): Record<string, string> {
  const bytes = readFileSync(file);
  const length = Number(bytes.readBigUInt64LE(0));
  return (JSON.parse(bytes.subarray(8, 8 + length).toString('utf8')) as { __metadata__: Record<string, string> }).__metadata__;
}

function flip(file: string, at: number): void {
  const bytes = readFileSync(file);
  const i = at < 0 ? bytes.length + at : at;
  bytes[i] = bytes[i]! ^ 0x40;
  writeFileSync(file, bytes);
}

describe('SavedModel writer', () => {
  const models: [string, () => Model, number[]][] = [
    ['OR gate', () => trainOrGate({ seed: 0 }).model, [4, 2]],
    ['MLP', mlpModel, [3, 4]],
    ['CNN', cnnModel, [2, 2, 8, 8]],
  ];

  it('writes variables into the TensorBundle (not the graph) and reads back to the same weights and outputs', () => {
    for (const [what, make, shape] of models) {
      const model = make();
      const dir = join(tmp(), 'sm');
      const files = writeSavedModel(model, dir);
      expect(files.map((f) => f.slice(dir.length + 1)).sort(), what).toEqual(['saved_model.pb', 'variables/variables.data-00000-of-00001', 'variables/variables.index']);
      // Every float weight is a checkpoint tensor under its own name, held by a VarHandleOp.
      const ckpt = readTensorBundle(join(dir, 'variables', 'variables')).tensors;
      expect([...ckpt.keys()].sort(), what).toEqual([...model.weights.keys()].sort());
      const graph = decodeSavedModel(readFileSync(join(dir, 'saved_model.pb')), dir).meta_graphs[0]!.graph_def!;
      for (const name of model.weights.keys()) expect(graph.node.find((n) => n.name === name)?.op, `${what} ${name}`).toBe('VarHandleOp');
      const floatConsts = graph.node.filter((n) => n.op === 'Const' && n.attr['dtype']?.type === 1 && (n.attr['value']?.tensor?.tensor_content.byteLength ?? 0) > 0);
      expect(floatConsts.map((n) => n.name), what).toEqual([]);
      const back = readSavedModel(dir);
      const weights = compareWeights(model.weights, back.weights, { atol: 0, rtol: 0 });
      expect(weights.counts.identical, what).toBe(model.weights.size);
      const x = sampleInput('float32', shape, 5);
      expect(maxDiff(run(back, { x })['y']!, run(model, { x })['y']!), what).toBeLessThanOrEqual(1e-6);
    }
  });

  it('writes the same bytes every time', () => {
    for (const [what, make] of models) {
      const [a, b] = [join(tmp(), 'a'), join(tmp(), 'b')];
      writeSavedModel(make(), a);
      writeSavedModel(make(), b);
      for (const file of ['saved_model.pb', 'variables/variables.index', 'variables/variables.data-00000-of-00001']) {
        expect(Buffer.from(readFileSync(join(a, file))).equals(readFileSync(join(b, file))), `${what} ${file}`).toBe(true);
      }
    }
  });

  it('writing over an older export removes its stale shards and fingerprint', () => {
    const dir = join(tmp(), 'sm');
    writeSavedModel(mlpModel(), dir);
    writeFileSync(join(dir, 'variables', 'variables.data-00000-of-00002'), 'stale');
    writeFileSync(join(dir, 'fingerprint.pb'), 'stale');
    writeSavedModel(mlpModel(), dir);
    expect(readdirSync(dir).sort()).toEqual(['saved_model.pb', 'variables']);
    expect(readdirSync(join(dir, 'variables')).sort()).toEqual(['variables.data-00000-of-00001', 'variables.index']);
  });

  it('is detected as a directory and as its saved_model.pb', () => {
    const dir = join(tmp(), 'sm');
    writeSavedModel(mlpModel(), dir);
    expect(loadModel(dir).format).toBe('savedmodel');
    expect(loadModel(join(dir, 'saved_model.pb')).format).toBe('savedmodel');
    expect(savedmodelFormat.extensions).toEqual([]);
  });
});

describe('conversions', () => {
  it('SavedModel (Keras Dense stack) -> safetensors: a Linear Sequential with the kernels transposed, bit for bit', () => {
    const source = fx('tf-rust/examples/keras_single_input_saved_model');
    const out = join(tmp(), 'keras.safetensors');
    convertModel(source, out, { verify: true });
    const bundle = loadModel(out);
    expect(bundle.module).toEqual({
      type: 'Sequential',
      modules: [
        { type: 'Linear', in_features: 5, out_features: 5, bias: true }, { type: 'ReLU' },
        { type: 'Linear', in_features: 5, out_features: 5, bias: true }, { type: 'ReLU' },
        { type: 'Linear', in_features: 5, out_features: 1, bias: true }, { type: 'Sigmoid' },
      ],
    });
    const original = readSavedModel(source);
    const diff = compareWeights(original.weights, bundle.weights, { atol: 0, rtol: 0 });
    expect(diff.counts.identical).toBe(6);
    const kernels = diff.tensors.filter((t) => t.name.endsWith('kernel'));
    expect(kernels.map((t) => [t.name, t.other, t.via])).toEqual([
      ['layer_with_weights-0/kernel', '0.weight', 'transposed'],
      ['layer_with_weights-1/kernel', '2.weight', 'transposed'],
      ['layer_with_weights-2/kernel', '4.weight', 'transposed'],
    ]);
    const x = sampleInput('float32', [4, 5], 3);
    expect(maxDiff(run(bundle, { test_in_input: x })['test_out']!, run(original, { test_in_input: x })['test_out']!)).toBeLessThanOrEqual(1e-6);
    // And back: safetensors -> SavedModel keeps every weight bit for bit.
    const back = join(tmp(), 'back');
    convertModel(out, back, { to: 'savedmodel', verify: true });
    expect(compareWeights(original.weights, readSavedModel(back).weights, { atol: 0, rtol: 0 }).counts.identical).toBe(6);
  });

  it('safetensors CNN -> SavedModel (HWIO filters, NHWC ops) -> safetensors: the same module spec and OIHW weights', () => {
    const model = cnnModel();
    const dir = join(tmp(), 'cnn');
    writeSavedModel(model, dir);
    const hwio = readTensorBundle(join(dir, 'variables', 'variables')).tensors;
    // TensorFlow keeps filters [H, W, in, out]; the checkpoint holds them so.
    expect(hwio.get('0.weight')!.shape).toEqual([3, 3, 2, 4]);
    expect(hwio.get('4.weight')!.shape).toEqual([2, 2, 4, 3]);
    const out = join(tmp(), 'cnn.safetensors');
    convertModel(dir, out, { verify: true });
    const back = loadModel(out);
    // The same layers (with every constructor argument spelled out).
    const layers = back.module!.modules!;
    expect(layers.map((m) => m.type)).toEqual(model.module!.modules!.map((m) => m.type));
    expect(layers[0]).toMatchObject({ in_channels: 2, out_channels: 4, kernel_size: [3, 3], padding: [1, 1], stride: [1, 1], groups: 1, bias: true });
    expect(layers[4]).toMatchObject({ in_channels: 4, out_channels: 3, kernel_size: [2, 2], padding: [0, 0], stride: [2, 2] });
    expect(layers[7]).toMatchObject({ in_features: 3, out_features: 5, bias: true });
    const diff = compareWeights(model.weights, back.weights, { atol: 0, rtol: 0 });
    expect(diff.counts.identical).toBe(model.weights.size);
    expect(diff.tensors.every((t) => t.other === t.name)).toBe(true);
    const x = sampleInput('float32', [2, 2, 8, 8], 4);
    expect(maxDiff(run(back, { x })['y']!, run(model, { x })['y']!)).toBeLessThanOrEqual(1e-6);
  });

  it('a SavedModel that is no stack of modules (the Keras CNN: NHWC Flatten, unfused BatchNorm) is stored in the Graph form', () => {
    const out = join(tmp(), 'keras_cnn.safetensors');
    convertModel(KERAS_CNN, out, { verify: true });
    const bundle = loadModel(out);
    expect(JSON.parse(safetensorsMetadata(out)['modelbridge.module']!).type).toBe('Graph');
    const original = readSavedModel(KERAS_CNN);
    expect(compareWeights(original.weights, bundle.weights, { atol: 0, rtol: 0 }).counts.identical).toBe(original.weights.size);
    // The Graph form keys its signature by the graph's value names.
    const x = sampleInput('float32', [2, 9, 9, 3], 2);
    const [input] = [...bundle.signatures[0]!.inputs.keys()];
    expect(maxDiff(Object.values(run(bundle, { [input!]: x }))[0]!, run(original, { inputs: x })['output_0']!)).toBeLessThanOrEqual(1e-6);
  });

  it('SavedModel <-> frozen GraphDef: weights become Consts and variables again, outputs unchanged', () => {
    const original = readSavedModel(KERAS_CNN);
    const pb = join(tmp(), 'cnn.pb');
    writeGraphDef(original, pb);
    const frozen = readGraphDef(pb);
    expect(compareWeights(original.weights, frozen.weights, { atol: 0, rtol: 0 }).counts.identical).toBe(original.weights.size);
    const dir = join(tmp(), 'from-pb');
    convertModel(pb, dir, { to: 'savedmodel', verify: true });
    const again = readSavedModel(dir);
    expect(compareWeights(original.weights, again.weights, { atol: 0, rtol: 0 }).counts.identical).toBe(original.weights.size);
    const x = sampleInput('float32', [1, 9, 9, 3], 6);
    const y = run(original, { inputs: x })['output_0']!;
    expect(maxDiff(Object.values(run(frozen, { [[...frozen.signatures[0]!.inputs.keys()][0]!]: x }))[0]!, y)).toBeLessThanOrEqual(1e-6);
    expect(maxDiff(Object.values(run(again, { [[...again.signatures[0]!.inputs.keys()][0]!]: x }))[0]!, y)).toBeLessThanOrEqual(1e-6);
    // The tf2onnx MLP, frozen by TF 1.x, as a SavedModel and back.
    const fc = fx('tf2onnx/models/fc-layers/frozen.pb');
    const sm = join(tmp(), 'fc');
    convertModel(fc, sm, { to: 'savedmodel', verify: true });
    const pb2 = join(tmp(), 'fc.pb');
    convertModel(sm, pb2, { verify: true, to: 'graphdef' });
    expect(compareWeights(readGraphDef(fc).weights, readGraphDef(pb2).weights, { atol: 0, rtol: 0 }).counts.identical).toBe(6);
  });
});
