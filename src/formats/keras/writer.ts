import { writeFileAtomic } from '../../core/atomic.js';
import { UsageError } from '../../core/errors.js';
import { attrFloat, attrInt, type Node } from '../../core/graph.js';
import type { Model } from '../../core/model.js';
import { Tensor } from '../../core/tensor.js';
import { permuted } from '../../core/transpose.js';
import { ZipWriter } from '../pytorch/zip-writer.js';
import { GRU_ORDER, LSTM_ORDER } from '../tf/rnn.js';
import { writeH5, type H5WriteDataset, type H5WriteGroup } from './h5.js';
import { LAYERS } from './layers.js';
import { KERAS_CONFIG_KEY, KERAS_WEIGHTS_KEY, type WeightRecord } from './reader.js';

/**
 * Writes a Keras 3 `.keras` archive that keras.saving.load_model loads: metadata.json,
 * config.json and model.weights.h5 (saving_lib.py's layout), from a model read from a Keras file
 * (.keras, or an .h5 saved by Keras 3), whatever formats it went through on the way as long as
 * its weights kept their names (ONNX, a SavedModel written by modelbridge ...). The reader
 * recorded the config and, per Keras variable, the IR weight holding it and how it was
 * rearranged (a filter transposed to OIHW, an LSTM's gates reordered); the writer undoes that.
 * A model from anywhere else has no Keras layer config to write, and is refused in one line.
 *
 * Deterministic: fixed member order, zip timestamps 0 and no date in metadata.json; the HDF5 file
 * is made by the HDF5 library from the same calls in the same order.
 */

export function writeKerasArchive(model: Model, path: string, kind: 'keras' | 'h5' = 'keras'): string[] {
  const bytes = kind === 'h5' ? legacyH5Bytes(model) : kerasArchiveBytes(model);
  writeFileAtomic(path, (append) => append(bytes));
  return [path];
}

interface Stored {
  readonly groups: readonly string[];
  readonly weights: readonly WeightRecord[];
}

function stored(model: Model): { config: string; layout: Stored } {
  const config = model.metadata[KERAS_CONFIG_KEY];
  const weights = model.metadata[KERAS_WEIGHTS_KEY];
  if (config === undefined || weights === undefined) {
    const lifted = liftDenseChain(model);
    if (lifted) return lifted;
    throw new UsageError(
      `cannot write a Keras file of this ${model.format} model: Keras needs its layers' config, which a model read from a Keras 3 file (.keras, or .h5 saved by Keras 3) carries; other models are written only when they are a chain of dense layers and activations`,
    );
  }
  const layout = JSON.parse(weights) as Stored;
  // The Keras metadata outlived the Keras weight names (the model went through a PyTorch bundle,
  // which names them the torch way): a dense chain can still be written from the graph.
  const missing = layout.weights.some((r) => r.ir !== '' && !model.weights.has(r.ir) && !model.graph?.initializers.has(r.ir));
  if (missing) {
    const lifted = liftDenseChain(model);
    if (lifted) return lifted;
  }
  return { config, layout };
}

const WRITABLE = new Set<string>(['float32', 'float64', 'int32', 'int64', 'uint8', 'int8', 'int16', 'uint16', 'uint32']);

/** The Keras variable a record describes, from the IR weight holding it. */
function kerasValue(model: Model, r: WeightRecord): Tensor {
  if (r.how.startsWith('value:')) return Tensor.from(r.dtype, r.shape, JSON.parse(r.how.slice('value:'.length)) as number[]);
  const ir = model.weights.get(r.ir) ?? model.graph?.initializers.get(r.ir);
  if (!ir) throw new UsageError(`cannot write a Keras file: the model has no weight ${JSON.stringify(r.ir)} (Keras variable ${r.path}); were its weights renamed on the way?`);
  const count = r.shape.reduce((a, b) => a * b, 1);
  if (r.how === 'same') {
    if (ir.size !== count) throw new UsageError(`cannot write ${r.path}: weight ${r.ir} has ${ir.size} values, Keras expects ${count}`);
    return new Tensor(ir.dtype, r.shape, ir.source);
  }
  if (r.how.startsWith('perm:')) {
    const p = r.how.slice(5).split(',').map(Number);
    const inverse = p.map((_, i) => p.indexOf(i));
    const back = permuted(ir, inverse);
    if (back.size !== count) throw new UsageError(`cannot write ${r.path}: weight ${r.ir} has ${back.size} values, Keras expects ${count}`);
    return new Tensor(back.dtype, r.shape, back.source);
  }
  if (r.how.startsWith('rnn:')) return rnnValue(ir, r);
  throw new UsageError(`cannot write ${r.path}: unknown weight layout ${r.how}`);
}

/** Undoes src/formats/tf/rnn.ts's gateMajor and reorderBias: ONNX gate g held Keras gate order[g]. */
function rnnValue(ir: Tensor, r: WeightRecord): Tensor {
  const [, kind, unitsText, part, dirText] = r.how.split(':') as [string, string, string, string, string | undefined];
  const units = Number(unitsText);
  const order = kind === 'LSTM' ? LSTM_ORDER : kind === 'GRU' ? GRU_ORDER : [0];
  const all = ir.toFloat32();
  // A bidirectional node's tensors stack the two directions: this variable is one half.
  const half = all.length / 2;
  const src = dirText === undefined ? all : all.subarray(Number(dirText) * half, (Number(dirText) + 1) * half);
  const gh = order.length * units;
  if (part === 'gates') {
    // IR [1, G·H, rows] from Keras [rows, G·H].
    const rows = r.shape[0]!;
    const out = new Float32Array(rows * gh);
    order.forEach((from, g) => {
      for (let j = 0; j < units; j++) for (let row = 0; row < rows; row++) out[row * gh + from * units + j] = src[(g * units + j) * rows + row]!;
    });
    return Tensor.fromArray('float32', r.shape, out);
  }
  if (part === 'both') return Tensor.fromArray('float32', r.shape, src.slice(0, 2 * gh));
  const out = new Float32Array(gh);
  order.forEach((from, g) => out.set(src.subarray(g * units, (g + 1) * units), from * units));
  return Tensor.fromArray('float32', r.shape, out);
}

/** A nested group tree for writeH5, built from slash paths. */
class TreeBuilder {
  private readonly root: Map<string, TreeBuilder | H5WriteDataset> = new Map();

  group(path: readonly string[]): TreeBuilder {
    let node: TreeBuilder = this;
    for (const part of path) {
      let next = node.root.get(part);
      if (!next) node.root.set(part, (next = new TreeBuilder()));
      if (!(next instanceof TreeBuilder)) throw new UsageError(`cannot write a .keras archive: ${path.join('/')} is both a group and a weight`);
      node = next;
    }
    return node;
  }

  dataset(path: readonly string[], value: H5WriteDataset): void {
    this.group(path.slice(0, -1)).root.set(path[path.length - 1]!, value);
  }

  build(): H5WriteGroup {
    // Keras numbers variables 0, 1, ...: numeric order, then names.
    const keys = [...this.root.keys()].sort((a, b) => (/^\d+$/.test(a) && /^\d+$/.test(b) ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0));
    return { children: keys.map((k) => { const v = this.root.get(k)!; return [k, v instanceof TreeBuilder ? v.build() : v] as const; }) };
  }
}

/** The archive's bytes: metadata.json, config.json and model.weights.h5, as saving_lib writes them. */
export function kerasArchiveBytes(model: Model): Uint8Array {
  const { config, layout } = stored(model);
  const tree = new TreeBuilder();
  for (const g of layout.groups) tree.group(g.split('/'));
  for (const r of layout.weights) {
    const value = kerasValue(model, r);
    if (!WRITABLE.has(value.dtype)) throw new UsageError(`cannot write ${r.path}: ${value.dtype} weights are not supported in .keras files written by modelbridge`);
    tree.dataset(r.path.split('/'), { dtype: value.dtype as H5WriteDataset['dtype'], shape: value.shape, data: value.bytes() });
  }
  const weights = writeH5(tree.build());
  const chunks: Uint8Array[] = [];
  const zip = new ZipWriter((b) => chunks.push(b.slice()), 1);
  const text = (s: string) => new TextEncoder().encode(s);
  // Keras writes metadata.json first; its version is the one whose layout this follows.
  zip.add('metadata.json', text(JSON.stringify({ keras_version: KERAS_VERSION, date_saved: '1980-01-01@00:00:00' })));
  zip.add('config.json', text(withModules(config)));
  zip.add('model.weights.h5', weights);
  zip.finish();
  const total = chunks.reduce((a, c) => a + c.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Keras's version whose file layouts this writer follows (metadata.json, the .h5 attributes). */
const KERAS_VERSION = '3.15.1';

/**
 * The bytes of a legacy Keras HDF5 model file, as Keras 3's legacy_h5_format.save_model_to_hdf5
 * lays it out (keras.saving.load_model and tf.keras read it): root attributes `backend`,
 * `keras_version` and `model_config` (the model's JSON; the legacy loader takes a .keras config
 * as well as its own legacy form), and the group `model_weights` with `layer_names` (the model's
 * layers in order) and one group per layer whose `weight_names` attribute lists its variables in
 * `trainable_weights + non_trainable_weights` order, each a dataset at the path its name gives.
 * Keras loads the weights by that order, layer by layer; the names are kept for readers (ours
 * checks them). A weightless layer's group has no `weight_names` (Keras reads a missing one as
 * empty; h5wasm cannot write the empty float64 array h5py does). No optimizer state: the model is
 * written uncompiled, as load_model(compile=False) would give it.
 */
export function legacyH5Bytes(model: Model): Uint8Array {
  const { config, layout } = stored(model);
  const top = JSON.parse(config) as { class_name?: unknown; config?: { layers?: unknown } };
  const layerList = Array.isArray(top.config?.layers) ? (top.config.layers as unknown[]) : [];
  const layerNames = layerList.flatMap((l) => {
    const o = (typeof l === 'object' && l !== null ? l : {}) as { class_name?: unknown; name?: unknown; config?: { name?: unknown } };
    const name = typeof o.config?.name === 'string' ? o.config.name : typeof o.name === 'string' ? o.name : undefined;
    // A Sequential's model.layers leaves out its InputLayer; a Functional's keeps its inputs.
    return name === undefined || (top.class_name === 'Sequential' && o.class_name === 'InputLayer') ? [] : [name];
  });
  const byLayer = new Map<string, { record: WeightRecord; place: NonNullable<WeightRecord['legacy']> }[]>();
  const seen = new Set<string>();
  for (const r of layout.weights) {
    // A shared layer called twice records its variables twice.
    if (seen.has(r.path)) continue;
    seen.add(r.path);
    const place = r.legacy;
    if (!place) throw new UsageError(`cannot write a Keras .h5 file: the model's Keras metadata does not say where ${r.path} goes in one (it was written by an older modelbridge); write a .keras archive`);
    if (!byLayer.has(place.top)) byLayer.set(place.top, []);
    byLayer.get(place.top)!.push({ record: r, place });
  }
  for (const name of byLayer.keys()) if (!layerNames.includes(name)) layerNames.push(name);
  const rank = (a: NonNullable<WeightRecord['legacy']>, b: NonNullable<WeightRecord['legacy']>): number => {
    if (a.trainable !== b.trainable) return a.trainable ? -1 : 1;
    for (let i = 0; i < Math.min(a.order.length, b.order.length); i++) if (a.order[i] !== b.order[i]) return a.order[i]! - b.order[i]!;
    return a.order.length - b.order.length;
  };
  const groups: [string, H5WriteGroup][] = [...layerNames].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((name) => {
    const entries = (byLayer.get(name) ?? []).sort((a, b) => rank(a.place, b.place));
    if (entries.length === 0) return [name, { children: [] }];
    const tree = new TreeBuilder();
    for (const { record, place } of entries) {
      const value = kerasValue(model, record);
      if (!WRITABLE.has(value.dtype)) throw new UsageError(`cannot write ${place.name}: ${value.dtype} weights are not supported in Keras files written by modelbridge`);
      tree.dataset(place.name.split('/'), { dtype: value.dtype as H5WriteDataset['dtype'], shape: value.shape, data: value.bytes() });
    }
    return [name, { attrs: [['weight_names', entries.map((x) => x.place.name)]], children: tree.build().children }];
  });
  return writeH5({
    attrs: [
      ['backend', 'tensorflow'],
      ['keras_version', KERAS_VERSION],
      ['model_config', config],
    ],
    children: [
      [
        'model_weights',
        {
          attrs: [
            ['layer_names', layerNames],
            ['backend', 'tensorflow'],
            ['keras_version', KERAS_VERSION],
          ],
          children: [...groups, ['top_level_model_weights', { children: [] }]],
        },
      ],
    ],
  });
}

/**
 * A Keras 3 config as an .h5 file stores it, made loadable from an archive: legacy HDF5 saving
 * serializes the layers inside a model without their `module`, which load_model needs to find
 * a class in a .keras file. Keras's own modules are filled in; a config that has them is unchanged.
 */
function withModules(configText: string): string {
  const config = JSON.parse(configText) as unknown;
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach(visit);
      return;
    }
    if (typeof v !== 'object' || v === null) return;
    const o = v as Record<string, unknown>;
    if (typeof o['class_name'] === 'string' && typeof o['config'] === 'object' && o['config'] !== null && o['module'] === undefined && o['class_name'] !== '__keras_tensor__') {
      const c = o['class_name'];
      o['module'] = c === 'Functional' || c === 'Model' ? 'keras.src.models.functional' : c === 'Sequential' ? 'keras' : LAYER_CLASSES.has(c) ? 'keras.layers' : undefined;
      if (o['module'] === undefined) delete o['module'];
      else if (o['registered_name'] === undefined) o['registered_name'] = c === 'Functional' ? 'Functional' : null;
    }
    for (const child of Object.values(o)) visit(child);
  };
  visit(config);
  return JSON.stringify(config);
}

const LAYER_CLASSES = new Set(['InputLayer', ...Object.keys(LAYERS)]);

/** IR activations a Keras Dense layer applies by name. */
const DENSE_ACTIVATIONS: Readonly<Record<string, (n: Node) => string | undefined>> = {
  Relu: () => 'relu',
  Sigmoid: () => 'sigmoid',
  Tanh: () => 'tanh',
  Softplus: () => 'softplus',
  Softsign: () => 'softsign',
  Exp: () => 'exponential',
  HardSwish: () => 'hard_silu',
  Elu: (n) => (attrFloat(n, 'alpha', 1) === 1 ? 'elu' : undefined),
  Softmax: (n) => ([-1, 1].includes(attrInt(n, 'axis', -1)) ? 'softmax' : undefined),
  LogSoftmax: (n) => ([-1, 1].includes(attrInt(n, 'axis', -1)) ? 'log_softmax' : undefined),
};

/**
 * A model from elsewhere that is a chain of fully connected layers (Gemm, or MatMul and Add, each
 * optionally followed by an activation Keras names: the OR gate, any MLP) as a Keras Sequential
 * of Dense layers over a [batch, features] input. The input layer takes the graph input's name
 * and the last Dense the graph output's, so the model keeps its signature. Anything else: undefined.
 */
function liftDenseChain(model: Model): { config: string; layout: Stored } | undefined {
  const g = model.graph;
  if (!g || g.inputs.length !== 1 || g.outputs.length !== 1) return undefined;
  const input = g.inputs[0]!;
  const features = input.shape?.[1];
  if (input.dtype !== 'float32' || input.shape?.length !== 2 || typeof features !== 'number') return undefined;
  const init = (name: string | undefined) => (name ? g.initializers.get(name) : undefined);
  const layers: { units: number; kernel: string; transposed: boolean; bias?: string; activation: string }[] = [];
  let value = input.name;
  let inF = features;
  const nodes = g.nodes.filter((n) => n.op !== 'Identity' && !(n.op === 'Dropout' && !n.outputs[1]));
  const through = (v: string) => {
    // Identity and inference Dropout pass a value on unchanged.
    for (const n of g.nodes) if ((n.op === 'Identity' || n.op === 'Dropout') && n.inputs[0] === v) return n.outputs[0]!;
    return v;
  };
  for (let i = 0; i < nodes.length; ) {
    const n = nodes[i]!;
    let kernel: string | undefined;
    let transposed = false;
    let bias: string | undefined;
    let out: string;
    if (n.op === 'Gemm' && n.inputs[0] === value && attrInt(n, 'transA', 0) === 0 && attrFloat(n, 'alpha', 1) === 1 && attrFloat(n, 'beta', 1) === 1) {
      kernel = n.inputs[1];
      transposed = attrInt(n, 'transB', 0) === 1;
      bias = n.inputs[2] || undefined;
      out = n.outputs[0]!;
      i++;
    } else if (n.op === 'MatMul' && n.inputs[0] === value) {
      kernel = n.inputs[1];
      out = n.outputs[0]!;
      i++;
      const add = nodes[i];
      if (add?.op === 'Add' && add.inputs[0] === out && init(add.inputs[1])) {
        bias = add.inputs[1];
        out = add.outputs[0]!;
        i++;
      }
    } else {
      return undefined;
    }
    const w = init(kernel);
    if (!w || w.shape.length !== 2 || w.dtype !== 'float32') return undefined;
    const [rows, cols] = w.shape as [number, number];
    const units = transposed ? rows : cols;
    if ((transposed ? cols : rows) !== inF) return undefined;
    const b = init(bias);
    if (bias !== undefined && (!b || b.dtype !== 'float32' || b.size !== units || b.shape.length !== 1)) return undefined;
    let activation = 'linear';
    const next = nodes[i];
    const act = next && next.inputs[0] === through(out) ? DENSE_ACTIVATIONS[next.op]?.(next) : undefined;
    if (act) {
      activation = act;
      out = next!.outputs[0]!;
      i++;
    }
    layers.push({ units, kernel: kernel!, transposed, bias, activation });
    value = through(out);
    inF = units;
  }
  if (layers.length === 0 || value !== g.outputs[0]!.name) return undefined;
  const names = layers.map((_, i) => (i === layers.length - 1 ? g.outputs[0]!.name : i === 0 ? 'dense' : `dense_${i}`));
  let width = features;
  const layerConfigs = layers.map((l, i) => {
    const c = {
      module: 'keras.layers',
      class_name: 'Dense',
      config: { name: names[i], trainable: true, dtype: 'float32', units: l.units, activation: l.activation, use_bias: l.bias !== undefined },
      registered_name: null,
      build_config: { input_shape: [null, width] },
    };
    width = l.units;
    return c;
  });
  const config = {
    module: 'keras',
    class_name: 'Sequential',
    config: {
      name: 'sequential',
      trainable: true,
      dtype: 'float32',
      layers: [{ module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, features], dtype: 'float32', sparse: false, name: input.name }, registered_name: null }, ...layerConfigs],
    },
    registered_name: null,
    build_config: { input_shape: [null, features] },
  };
  // A Sequential's `layers` leave out the InputLayer: the Dense layers are layers/dense, layers/dense_1 ...
  const paths = layers.map((_, i) => `layers/dense${i ? `_${i}` : ''}`);
  const weights: WeightRecord[] = layers.flatMap((l, i) => {
    const w = init(l.kernel)!;
    const kernelShape = l.transposed ? [w.shape[1]!, w.shape[0]!] : [...w.shape];
    const legacy = (key: string, at: number) => ({ top: names[i]!, name: `${names[i]}/${key}`, order: [i, at], trainable: true });
    const records: WeightRecord[] = [{ path: `${paths[i]}/vars/0`, shape: kernelShape, dtype: 'float32', ir: l.kernel, how: l.transposed ? 'perm:1,0' : 'same', legacy: legacy('kernel', 0) }];
    if (l.bias) records.push({ path: `${paths[i]}/vars/1`, shape: [l.units], dtype: 'float32', ir: l.bias, how: 'same', legacy: legacy('bias', 1) });
    return records;
  });
  return { config: JSON.stringify(config), layout: { groups: ['vars', ...paths.map((p) => `${p}/vars`)], weights } };
}
