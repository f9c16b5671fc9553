import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertModel } from '../src/api/load.js';
import { Runner } from '../src/api/run.js';
import { FormatError } from '../src/core/errors.js';
import type { Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { readGraphDef } from '../src/formats/graphdef/index.js';
import { readGraphModel } from '../src/formats/tfjs/index.js';
import { converterPeers, makeRnnSavedModels, tensorflowjsConvert, type ConverterCase } from './fixtures/tfjs/converter.js';
import { maxAbsDiff } from './fixtures/tfjs/models.js';
import { loadInTfjs, predictInTfjs } from './fixtures/tfjs/peer.js';

/**
 * Keras LSTM/GRU in TF.js graph models: tensorflowjs_converter lowers the SavedModel's While into
 * a TF1 loop frame (Enter/Merge/Switch/LoopCond/NextIteration/Exit, body inlined), which
 * modelbridge folds back into a While and lifts, like the SavedModel's, to one ONNX LSTM/GRU.
 * Real Keras 3 (TensorFlow 2.21) builds and runs the models (random weights and biases);
 * tensorflowjs_converter 4.22 converts them; modelbridge must predict Keras's outputs within 1e-5,
 * and the file modelbridge writes back runs in TF.js with Keras's outputs (TF.js cannot run the
 * converter's own file). TensorFlow's frozen GraphDef of the same signature holds the same frame
 * and reads the same way. A hand-made counted loop, which TF.js does run, checks the refusals.
 */
const LOOP_OPS = ['Enter', 'Merge', 'Switch', 'LoopCond', 'NextIteration', 'Exit'];
const peers = converterPeers();
const tmp = mkdtempSync(join(tmpdir(), 'modelbridge-tfjs-loops-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODELS = {
  lstm: 'LSTM',
  lstm_sequences: 'LSTM',
  gru: 'GRU',
  gru_reset_before: 'GRU',
} as const;

function runtime(model: Model, c: ConverterCase): Tensor {
  const runner = new Runner(model);
  const out = runner.run({ [runner.inputNames[0]!]: Tensor.from('float32', c.input.shape, c.input.values) });
  return Object.values(out)[0]!;
}

const opsOf = (dir: string): string[] => (JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { modelTopology: { node: { op: string }[] } }).modelTopology.node.map((n) => n.op);

describe.skipIf(!peers)('Keras LSTM/GRU graph models from tensorflowjs_converter (TF1 loop frames)', () => {
  let cases: Record<string, ConverterCase> = {};
  beforeAll(() => {
    cases = makeRnnSavedModels(peers!.tf, tmp);
    tensorflowjsConvert(
      peers!.converter,
      Object.keys(cases).map((name) => ['--input_format=tf_saved_model', join(tmp, name, 'saved_model'), join(tmp, name, 'converted')]),
    );
  }, 240_000);

  it('Keras made every model', () => {
    expect(Object.keys(cases).sort()).toEqual(Object.keys(MODELS).sort());
  });

  for (const [name, kind] of Object.entries(MODELS)) {
    it(`${name}: the converter's loop frame becomes one ${kind} node and predicts Keras's outputs within 1e-5`, async () => {
      const c = cases[name]!;
      const dir = join(tmp, name, 'converted');
      // The converter's file really holds a TF1 loop frame (what this reader has to fold).
      const ops = opsOf(dir);
      for (const op of LOOP_OPS) expect([op, ops.includes(op)]).toEqual([op, true]);
      const model = readGraphModel(dir);
      const irOps = model.graph!.nodes.map((n) => n.op);
      expect(irOps.filter((op) => op === kind)).toHaveLength(1);
      expect(irOps.filter((op) => ['LSTM', 'GRU', 'Loop'].includes(op) && op !== kind)).toEqual([]);
      const y = runtime(model, c);
      expect(y.shape).toEqual(c.output.shape);
      expect(maxAbsDiff(y.toFloat32(), c.output.values)).toBeLessThanOrEqual(1e-5);
      // TF.js 4.22 itself cannot run the converter's frame (its executor finds no path from the
      // input to the output, tensorflow/tfjs#4579); it runs modelbridge's rewrite (next test). When
      // this starts to pass, compare TF.js's outputs here instead.
      const loaded = await loadInTfjs(join(dir, 'model.json'));
      const x = tf.tensor(c.input.values, c.input.shape, 'float32');
      await expect(loaded.executeAsync(x)).rejects.toThrow(/Cannot compute the outputs \[Identity\]/);
      x.dispose();
    });

    // Not lstm_sequences: frozen without Grappler, its Dense over the sequence (Tensordot) computes
    // a Transpose perm at run time, which the TF importer needs constant (unrelated to the loop).
    if (name !== 'lstm_sequences') it(`${name}: the frozen GraphDef (TensorFlow's own lowering, the same frame) reads as one ${kind} node within 1e-5`, () => {
      const c = cases[name]!;
      const model = readGraphDef(join(tmp, name, 'frozen.pb'), { inputs: [c.frozen!.input], outputs: [c.frozen!.output] });
      expect(model.graph!.nodes.filter((n) => n.op === kind)).toHaveLength(1);
      expect(maxAbsDiff(runtime(model, c).toFloat32(), c.output.values)).toBeLessThanOrEqual(1e-5);
    });

    it(`${name}: converted to TF.js by modelbridge (verified), the written file runs in TF.js as Keras does`, async () => {
      const c = cases[name]!;
      const out = join(tmp, name, 'rewritten');
      convertModel(join(tmp, name, 'converted'), out, { to: 'tfjs', verify: true });
      expect(opsOf(out).filter((op) => LOOP_OPS.includes(op))).toEqual([]);
      const loaded = await loadInTfjs(join(out, 'model.json'));
      const tfjs = await predictInTfjs(loaded, c.input.shape, c.input.values);
      expect(maxAbsDiff(tfjs.values, c.output.values)).toBeLessThanOrEqual(1e-5);
    });
  }
});

/** A hand-made graph model: nodes as TF.js writes them, int32/float32 scalar Consts in one shard. */
function graphModel(name: string, nodes: object[], consts: Readonly<Record<string, readonly ['int32' | 'float32', number]>>): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const entries = Object.entries(consts);
  const bytes = Buffer.alloc(entries.length * 4);
  entries.forEach(([, [dtype, v]], i) => (dtype === 'int32' ? bytes.writeInt32LE(v, i * 4) : bytes.writeFloatLE(v, i * 4)));
  writeFileSync(join(dir, 'w.bin'), bytes);
  const constNodes = entries.map(([n, [dtype]]) => ({ name: n, op: 'Const', attr: { dtype: { type: dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT' }, value: { tensor: { dtype: dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT', tensorShape: {} } } } }));
  const json = {
    format: 'graph-model',
    generatedBy: 'test',
    convertedBy: 'test',
    modelTopology: { node: [...constNodes, ...nodes], versions: {} },
    weightsManifest: [{ paths: ['w.bin'], weights: entries.map(([n, [dtype]]) => ({ name: n, shape: [], dtype })) }],
  };
  writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
  return dir;
}

const frame = Buffer.from('counter').toString('base64');
const T = (t: string) => ({ T: { type: t } });
const enter = (name: string, input: string, t: string) => ({ name, op: 'Enter', input: [input], attr: { ...T(t), frame_name: { s: frame }, is_constant: { b: false }, parallel_iterations: { i: '10' } } });

/** x doubled three times by a counted loop: a well-formed frame that is no recurrent cell. */
const COUNTER = [
  { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [{ size: '2' }] } } } },
  enter('loop/enter_i', 'zero', 'DT_INT32'),
  enter('loop/enter_acc', 'x', 'DT_FLOAT'),
  { name: 'loop/merge_i', op: 'Merge', input: ['loop/enter_i', 'loop/next_i'], attr: { ...T('DT_INT32'), N: { i: '2' } } },
  { name: 'loop/merge_acc', op: 'Merge', input: ['loop/enter_acc', 'loop/next_acc'], attr: { ...T('DT_FLOAT'), N: { i: '2' } } },
  { name: 'loop/cond/Less', op: 'Less', input: ['loop/merge_i', 'three'], attr: T('DT_INT32') },
  { name: 'loop/LoopCond', op: 'LoopCond', input: ['loop/cond/Less'] },
  { name: 'loop/switch_i', op: 'Switch', input: ['loop/merge_i', 'loop/LoopCond'], attr: T('DT_INT32') },
  { name: 'loop/switch_acc', op: 'Switch', input: ['loop/merge_acc', 'loop/LoopCond'], attr: T('DT_FLOAT') },
  { name: 'loop/body/add', op: 'AddV2', input: ['loop/switch_i:1', 'one'], attr: T('DT_INT32') },
  { name: 'loop/body/mul', op: 'Mul', input: ['loop/switch_acc:1', 'two'], attr: T('DT_FLOAT') },
  { name: 'loop/next_i', op: 'NextIteration', input: ['loop/body/add'], attr: T('DT_INT32') },
  { name: 'loop/next_acc', op: 'NextIteration', input: ['loop/body/mul'], attr: T('DT_FLOAT') },
  { name: 'loop/exit_acc', op: 'Exit', input: ['loop/switch_acc'], attr: T('DT_FLOAT') },
  { name: 'y', op: 'Identity', input: ['loop/exit_acc'], attr: T('DT_FLOAT') },
];
const CONSTS = { zero: ['int32', 0], one: ['int32', 1], three: ['int32', 3], two: ['float32', 2] } as const;

function refusal(dir: string): string {
  try {
    readGraphModel(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(FormatError);
    return (err as Error).message;
  }
  throw new Error('the model was read');
}

describe('TF1 loop frames that are not a Keras LSTM/GRU', () => {
  it('a well-formed counted loop becomes a While, refused in one line naming it', async () => {
    // TF.js runs the frame: x doubled three times (so the hand-made frame is a real loop).
    const loaded = await loadInTfjs(join(graphModel('counter', COUNTER, CONSTS), 'model.json'));
    const x = tf.tensor([1, -3], [2], 'float32');
    const out = (await loaded.executeAsync(x)) as tf.Tensor;
    expect(Array.from(await out.data())).toEqual([8, -24]);
    tf.dispose([x, out]);

    const message = refusal(join(tmp, 'counter'));
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toMatch(/model\.json: node counter \(While\): .*only Keras LSTM and GRU loops are imported/);
  });

  it('a frame without its NextIteration back edge stays a cycle, refused in one line naming a node', () => {
    // The Merge reads the body's Mul straight back: no NextIteration, so no loop frame to rebuild.
    const nodes = COUNTER.map((n) => (n.name === 'loop/merge_acc' ? { ...n, input: ['loop/enter_acc', 'loop/body/mul'] } : n)).filter((n) => n.name !== 'loop/next_acc');
    const message = refusal(graphModel('cycle', nodes, CONSTS));
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toMatch(/model\.json: node loop\/\S+: an acyclic graph \(it loops through loop\/\S+; control-flow loops are not supported\)/);
  });
});
