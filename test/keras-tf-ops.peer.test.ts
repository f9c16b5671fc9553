import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { convertModel, loadModel } from '../src/api/load.js';
import { Runner } from '../src/api/run.js';
import { Tensor } from '../src/core/tensor.js';
import { tempDir } from './cli-helpers.js';
import { feedsJson, fromJson, relDiff, sampleInput, tfBatch, toJson, type JsonTensor } from './fixtures/tf/peer.js';
import { loadInTfjs, tf } from './fixtures/tfjs/peer.js';
import { peerPython } from './peers.js';

/**
 * Real Keras 3 exports (`model.export`) that issue 11 found unreadable or unwritable: MobileNetV2
 * and EfficientNetB0 (`weights=None`, their Pad / ZeroPadding2D and depthwise convolutions) and an
 * Embedding(mask_zero) + GlobalAveragePooling1D text model (Less, SelectV2, GatherV2, NotEqual).
 * modelbridge must read each with Keras's outputs, and the SavedModel, GraphDef and TF.js graph
 * model it writes must run in TensorFlow and TF.js with those outputs (1e-4 relative).
 */
const python = peerPython();

const MAKE = `
import json, os, sys
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'
import numpy as np, keras
out, = sys.argv[1:]
req = json.load(sys.stdin)
keras.utils.set_random_seed(0)
def text(mask):
    inp = keras.Input((12,), dtype='int32', name='tokens')
    x = keras.layers.Embedding(50, 8, mask_zero=mask)(inp)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inp, keras.layers.Dense(3, activation='softmax')(x))
models = {
    'mobilenetv2': lambda: keras.applications.MobileNetV2(weights=None, input_shape=(64, 64, 3), alpha=0.35, classes=5),
    'efficientnetb0': lambda: keras.applications.EfficientNetB0(weights=None, input_shape=(32, 32, 3), classes=5),
    'embedding_mask': lambda: text(True),
}
result = {}
for name, make in models.items():
    m = make()
    m.export(os.path.join(out, name), verbose=False)
    t = req[name]
    x = np.array(t['values'], dtype=t['dtype']).reshape(t['shape'])
    y = np.asarray(m(x, training=False))
    result[name] = {'dtype': str(y.dtype), 'shape': list(y.shape), 'values': y.reshape(-1).tolist()}
json.dump(result, sys.stdout)
`;

const tokens = Tensor.from('int32', [2, 12], [3, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 9, 49, 2, 2, 8, 1, 0, 0, 0, 0, 0]);
const INPUTS: Record<string, Tensor> = {
  mobilenetv2: sampleInput('float32', [1, 64, 64, 3], 2),
  efficientnetb0: sampleInput('float32', [1, 32, 32, 3], 3),
  embedding_mask: tokens,
};

interface Made {
  readonly dir: string;
  readonly keras: Record<string, Tensor>;
}

function makeKerasModels(): Made {
  const dir = tempDir('mb-keras-tf-ops-');
  const r = spawnSync(python!, ['-c', MAKE, dir], {
    encoding: 'utf8',
    input: JSON.stringify(Object.fromEntries(Object.entries(INPUTS).map(([k, t]) => [k, toJson(t)]))),
    timeout: 400_000,
    maxBuffer: 1 << 28,
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3', PYTHONDONTWRITEBYTECODE: '1' },
  });
  if (r.status !== 0) throw new Error(`keras export exited with ${r.status}: ${r.stderr.slice(-3000)}`);
  const out = JSON.parse(r.stdout) as Record<string, JsonTensor>;
  return { dir, keras: Object.fromEntries(Object.entries(out).map(([k, j]) => [k, fromJson(j)])) };
}

/** The only output of a run (every model here has one). */
function only(outputs: Record<string, Tensor>): Tensor {
  const values = Object.values(outputs);
  expect(values).toHaveLength(1);
  return values[0]!;
}

describe.skipIf(!python)('Keras 3 exports through modelbridge into TensorFlow and TF.js', () => {
  let made: Made;
  const tfResults = new Map<string, unknown[]>();

  beforeAll(() => {
    made = makeKerasModels();
    const requests: { cmd: string; args: string[]; input: unknown }[] = [];
    const owners: string[] = [];
    for (const [name, x] of Object.entries(INPUTS)) {
      const src = join(made.dir, name);
      for (const to of ['savedmodel', 'graphdef', 'tfjs'] as const) {
        convertModel(src, join(made.dir, `${name}.${to}${to === 'graphdef' ? '.pb' : to === 'tfjs' ? '/' : ''}`), { to, verify: true });
      }
      const sm = new Runner(loadModel(join(made.dir, `${name}.savedmodel`)));
      requests.push({ cmd: 'run-savedmodel', args: [join(made.dir, `${name}.savedmodel`), 'serving_default'], input: feedsJson({ [sm.inputNames[0]!]: x }) });
      const gd = loadModel(join(made.dir, `${name}.graphdef.pb`)).graph!;
      const feeds = feedsJson({ [`${gd.inputs.find((i) => !gd.initializers.has(i.name))!.name}:0`]: x });
      requests.push({ cmd: 'run-graphdef', args: [join(made.dir, `${name}.graphdef.pb`)], input: { inputs: feeds, outputs: gd.outputs.map((o) => (o.name.includes(':') ? o.name : `${o.name}:0`)) } });
      owners.push(name, name);
    }
    tfBatch(requests).forEach((a, i) => tfResults.set(owners[i]!, [...(tfResults.get(owners[i]!) ?? []), a]));
  }, 900_000);

  for (const name of Object.keys(INPUTS)) {
    it(`${name}: modelbridge reads Keras's SavedModel with its outputs; TF serves, TF1 runs and TF.js runs what it writes`, async () => {
      const expected = made.keras[name]!;
      const x = INPUTS[name]!;
      const runner = new Runner(loadModel(join(made.dir, name)));
      expect(relDiff(only(runner.run({ [runner.inputNames[0]!]: x })), expected)).toBeLessThanOrEqual(1e-4);

      const [served, session] = tfResults.get(name)!;
      if (served instanceof Error) throw served;
      if (session instanceof Error) throw session;
      const first = (r: unknown) => {
        const values = Object.values(r as Record<string, JsonTensor>);
        expect(values).toHaveLength(1);
        return fromJson(values[0]!);
      };
      expect(relDiff(first(served), expected), 'TF serves the SavedModel').toBeLessThanOrEqual(1e-4);
      expect(relDiff(first(session), expected), 'TF1 runs the GraphDef').toBeLessThanOrEqual(1e-4);

      const model = await loadInTfjs(join(made.dir, `${name}.tfjs`, 'model.json'));
      const input = tf.tensor(x.toNumbers(), [...x.shape], x.dtype === 'int32' ? 'int32' : 'float32');
      const y = model.execute(input) as tf.Tensor;
      const actual = Tensor.from('float32', y.shape, Array.from((await y.data()) as ArrayLike<number>, Number));
      expect(relDiff(actual, expected)).toBeLessThanOrEqual(1e-4);
      input.dispose();
      y.dispose();
    });
  }
});
