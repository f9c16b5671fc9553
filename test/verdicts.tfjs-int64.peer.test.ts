import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel, saveModel } from '../src/api/load.js';
import { Runner } from '../src/api/run.js';
import { UsageError } from '../src/core/errors.js';
import { cli } from './cli-helpers.js';
import { loadInTfjs, tf } from './fixtures/tfjs/peer.js';
import { fromJson, ok, peerBatch, relDiff, type JsonTensor } from './fixtures/verdicts/peer.js';
import { peerPython } from './peers.js';

/**
 * Issue 11: writing TF.js refused int64 inputs ("input_ids is int64"), so no model taking token
 * ids (a BERT from ONNX) could become a TF.js model. tensorflowjs_converter stores int64 as int32
 * and TF.js reads an int64 placeholder as int32; modelbridge now does the same, checking that
 * stored values fit. The model: torch.nn.Embedding + Linear exported by torch.onnx.export
 * (dynamo=False), int64 input_ids, run by TF.js's loadGraphModel with int32 ids.
 */

const python = peerPython();

interface IdsCase {
  readonly input_ids: JsonTensor;
  readonly values: Record<string, JsonTensor>;
}

interface ModelJson {
  signature: { inputs: Record<string, { dtype: string }> };
  modelTopology: { node: { name: string; op: string; attr?: Record<string, { type?: string }> }[] };
  weightsManifest: { weights: { name: string; dtype: string }[] }[];
}

describe.skipIf(!python)('TF.js from a model with int64 input ids', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mb-verdicts-int64-'));
  let embedding: IdsCase;
  let overflow: IdsCase;

  beforeAll(() => {
    const made = peerBatch([
      { cmd: 'torch-ids', args: [join(dir, 'embedding.onnx'), 'embedding'] },
      { cmd: 'torch-ids', args: [join(dir, 'overflow.onnx'), 'overflow'] },
    ]);
    embedding = ok(made[0]);
    overflow = ok(made[1]);
    saveModel(loadModel(join(dir, 'embedding.onnx')), join(dir, 'embedding-tfjs'), { format: 'tfjs' });
  }, 300_000);

  it('the exported model takes int64 input_ids', () => {
    const model = loadModel(join(dir, 'embedding.onnx'));
    expect(model.graph!.inputs.map((i) => [i.name, i.dtype])).toEqual([['input_ids', 'int64']]);
    expect(model.graph!.nodes.map((n) => n.op)).toContain('Gather');
  });

  it('model.json declares int32 ids in its signature and stores no int64 weight', () => {
    const json = JSON.parse(readFileSync(join(dir, 'embedding-tfjs', 'model.json'), 'utf8')) as ModelJson;
    expect(json.signature.inputs['input_ids']!.dtype).toBe('DT_INT32');
    const dtypes = json.weightsManifest.flatMap((g) => g.weights.map((w) => w.dtype));
    expect(dtypes.length).toBeGreaterThan(0);
    expect(dtypes.every((d) => d === 'float32' || d === 'int32')).toBe(true);
  });

  it('loadGraphModel runs it on int32 ids to torch\'s outputs', async () => {
    const model = await loadInTfjs(join(dir, 'embedding-tfjs', 'model.json'));
    const ids = embedding.input_ids;
    const x = tf.tensor(ids.values.map(Number), ids.shape, 'int32');
    const y = model.execute({ input_ids: x }, 'logits:0') as tf.Tensor;
    const got = fromJson({ dtype: 'float32', shape: y.shape, values: Array.from(await y.data()) });
    expect(relDiff(got, fromJson(embedding.values['logits']!))).toBeLessThan(1e-5);
    x.dispose();
    y.dispose();
  });

  it('modelbridge reads the TF.js model back with the int64 input and runs it to torch\'s outputs', () => {
    const back = loadModel(join(dir, 'embedding-tfjs'));
    expect(back.graph!.inputs.map((i) => i.dtype)).toEqual(['int64']);
    const out = new Runner(back).run({ input_ids: fromJson(embedding.input_ids) });
    expect(relDiff(out['logits']!, fromJson(embedding.values['logits']!))).toBeLessThan(1e-5);
  });

  it('convert --to tfjs verifies it (exit 0)', () => {
    const r = cli(['convert', join(dir, 'embedding.onnx'), join(dir, 'cli-tfjs'), '--to', 'tfjs']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/verified/);
  });

  it('an int64 constant beyond int32 is refused in one line naming the tensor', () => {
    const model = loadModel(join(dir, 'overflow.onnx'));
    const write = () => saveModel(model, join(dir, 'overflow-tfjs'), { format: 'tfjs', force: true });
    expect(write).toThrow(UsageError);
    expect(write).toThrow(/^tensor \S+ \(int64\) holds 3000000000, beyond the int32 TF\.js stores int64 as$/);
    expect(overflow.values['scaled']!.dtype).toBe('int64');
  });
});
