import { closeSync, openSync, readFileSync, readSync } from '../../core/vfs.js';
import { claimExpansion, memoryBudget } from '../../core/budget.js';
import type { DType } from '../../core/dtypes.js';
import { formatErrors, type FormatErrors } from '../../core/errors.js';
import { DEFAULT_OPSET, makeNode, type Attribute, type Graph, type Node, type ValueInfo } from '../../core/graph.js';
import type { Model } from '../../core/model.js';
import { escapeControl } from '../../core/printable.js';
import { formatShape } from '../../core/shape.js';
import { Tensor } from '../../core/tensor.js';
import { openZip } from '../pytorch/zip.js';
import { simplify } from '../tf/simplify.js';
import type { Config, KValue, LayerContext } from './context.js';
import { H5ReadError, readH5, type H5Dataset, type H5Group, type H5Value } from './h5.js';
import { LAYERS, type VarGroup } from './layers.js';

/**
 * Reads Keras models: the Keras 3 `.keras` archive (a zip of config.json, metadata.json and
 * model.weights.h5) and the legacy HDF5 file of tf.keras / Keras 2 (`model_config` attribute,
 * weights under model_weights/<layer>/ named by each group's `weight_names`). Both become one IR
 * graph over Keras's layout: config.json's Sequential or Functional graph (shared layers, several
 * inputs and outputs, nested models) is walked call by call, each layer through its LAYERS entry.
 *
 * Where the weights are (keras/src/saving/saving_lib.py): `_save_state` walks the model, a
 * Sequential's or Functional's `layers` list first, naming each layer by its class in snake case
 * made unique in that list (`dense`, `dense_1`), and each object's own variables go under
 * `<path>/vars/<i>` in the order its save_own_variables lists them (trainable, then the rest);
 * sublayers held in attributes follow under their attribute name (an LSTM's `cell`).
 * legacy_h5_format.py stores, per top-level layer, the names and values of `layer.weights`.
 *
 * Weights keep their Keras names, `<layer>/<variable>` (a nested model's layers as
 * `<model>/<layer>/<variable>`), as TensorFlow names a Keras layer's variables.
 */

import { HDF5_SIGNATURE, ZIP_SIGNATURE } from './signatures.js';

export { HDF5_SIGNATURE, ZIP_SIGNATURE };

/** config.json and metadata.json are small; a bigger one is no Keras archive. */
const MAX_JSON_BYTES = 64 << 20;

/** Metadata keys the reader records, so the .keras writer can rebuild the archive. */
export const KERAS_CONFIG_KEY = 'keras.config';
export const KERAS_WEIGHTS_KEY = 'keras.weights';

/** How a Keras variable became an IR initializer, so the writer can undo it. */
export interface WeightRecord {
  /** The variable's path in a Keras 3 model.weights.h5 (layers/dense/vars/0). */
  readonly path: string;
  /** Keras's shape of the variable. */
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** The IR initializer holding it ('' for a value kept in `how`). */
  readonly ir: string;
  /** 'same' (same bytes, maybe reshaped), 'perm:a,b,c' (the IR tensor is the Keras one, reshaped, permuted), 'rnn:<LSTM|GRU>:<units>:<gates|bias|both>' (gates reordered), 'value:[...]' (kept literally). */
  readonly how: string;
  /** Where a legacy .h5 file (model_weights/<top>/<name>) keeps it; see legacyOf. */
  readonly legacy?: LegacyPlace;
}

/**
 * A variable's place in a legacy HDF5 file (legacy_h5_format.py): the group of its top-level
 * layer, its name (`<layer path>/<variable>`, as Keras names variables; loading matches by order,
 * not name), and its rank in that layer's `trainable_weights + non_trainable_weights`: trainable
 * ones first, each part in layer order (`order`: the layer's index at each nesting level, then the
 * variable's own index).
 */
export interface LegacyPlace {
  readonly top: string;
  readonly name: string;
  readonly order: readonly number[];
  readonly trainable: boolean;
}

/** Variables Keras creates non-trainable (BatchNormalization's statistics, Normalization's adapted state). */
const NON_TRAINABLE = new Set(['moving_mean', 'moving_variance', 'mean', 'variance', 'count']);

interface Weights {
  /** The tensor stored for a layer's layout key, and where it came from. */
  get(key: string): { tensor: Tensor; where: string; path: string } | undefined;
}

interface Source {
  readonly file: string;
  readonly e: FormatErrors;
  /** Finds a layer's weights: its Keras 3 h5 path and its path of layer names. */
  weightsOf(h5Path: string, names: readonly string[], groups: readonly VarGroup[], className: string): Weights;
  readonly format: 'keras' | 'h5';
  readonly config: unknown;
  readonly keras3: boolean;
}

export function readKeras(path: string): Model {
  const e: FormatErrors = formatErrors(path);
  const head = new Uint8Array(8);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 8, 0);
  } finally {
    closeSync(fd);
  }
  const isZip = ZIP_SIGNATURE.every((b, i) => head[i] === b);
  const source = isZip ? kerasArchive(path, e) : legacyH5(path, e);
  return buildModel(source);
}

function parseJson(text: string, e: FormatErrors, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    return e.fail(where, `JSON (${escapeControl(err instanceof Error ? err.message : String(err))})`);
  }
}

function readTree(bytes: Uint8Array, e: FormatErrors, where: string): H5Group {
  // Weights the file holds are the model's own size; only what a compressed dataset expands to counts.
  try {
    return readH5(bytes, bytes.byteLength + memoryBudget());
  } catch (err) {
    if (err instanceof H5ReadError) {
      if (err.limit) claimExpansion((w, x) => e.fail(w, x), `${where} dataset ${err.limit.path}`, 'decompressed datasets', err.limit.bytes - bytes.byteLength);
      return e.fail(where, `an HDF5 file that HDF5 can read (${escapeControl(err.message.split('\n')[0]!.slice(0, 200))})`);
    }
    throw err;
  }
}

function kerasArchive(path: string, e: FormatErrors): Source {
  const zip = openZip(path);
  const entry = (name: string) => {
    const found = zip.find(name);
    e.check(found !== undefined, `zip entry ${name}`, `a Keras archive member ${name} (entries: ${zip.entries.slice(0, 8).map((x) => escapeControl(x.name)).join(', ')})`);
    return found;
  };
  const text = (name: string) => new TextDecoder().decode(zip.read(entry(name), { verify: true, maxSize: MAX_JSON_BYTES }));
  const config = parseJson(text('config.json'), e, 'config.json');
  if (zip.find('metadata.json')) parseJson(text('metadata.json'), e, 'metadata.json');
  const weightsEntry = zip.find('model.weights.h5');
  if (!weightsEntry && zip.find('model.weights.npz')) e.fail('zip entry model.weights.npz', 'model.weights.h5 (the .npz weights store is not supported)');
  const root = weightsEntry ? readTree(zip.read(weightsEntry, { verify: true }), e, 'model.weights.h5') : ({ kind: 'group', attrs: {}, children: {} } as H5Group);
  return {
    file: path,
    e,
    format: 'keras',
    config,
    keras3: true,
    weightsOf(h5Path, _names, groups, className) {
      const map = new Map<string, { tensor: Tensor; where: string; path: string }>();
      for (const g of groups) {
        const at = `${h5Path}${g.sub ? `/${g.sub}` : ''}/vars`;
        if (g.names.length === 0) continue;
        const vars = lookup(root, at);
        e.check(vars?.kind === 'group', `model.weights.h5 ${at}`, `a group with the ${g.names.length} weights of ${className} layer ${escapeControl(_names.join('/'))} (${g.names.join(', ')})`);
        g.names.forEach((name, i) => {
          const ds = vars.children[String(i)];
          const where = `model.weights.h5 ${at}/${i}`;
          e.check(ds?.kind === 'dataset', where, `a dataset holding ${className} layer ${escapeControl(_names.join('/'))}'s ${name} (missing)`);
          map.set(g.sub ? `${g.sub}/${name}` : name, { tensor: tensorOf(ds, e, where), where, path: `${at}/${i}` });
        });
        const extra = Object.keys(vars.children).filter((k) => !/^\d+$/.test(k) || Number(k) >= g.names.length);
        e.check(extra.length === 0, `model.weights.h5 ${at}`, `the ${g.names.length} weights of ${className} (${g.names.join(', ')}), not also ${extra.join(', ')}`);
      }
      return { get: (key) => map.get(key) };
    },
  };
}

function legacyH5(path: string, e: FormatErrors): Source {
  const bytes = new Uint8Array(readFileSync(path));
  const root = readTree(bytes, e, 'HDF5');
  const configText = root.attrs['model_config'];
  e.check(typeof configText === 'string', 'attribute model_config', 'a Keras model saved whole (model.save), whose root carries the model_config attribute (a weights-only file has none)');
  const config = parseJson(configText, e, 'attribute model_config');
  const weightsRoot = root.children['model_weights'];
  e.check(weightsRoot?.kind === 'group', 'group model_weights', 'the weights group of a Keras HDF5 model');
  const keras3 = typeof root.attrs['keras_version'] === 'string' && root.attrs['keras_version'].startsWith('3.');
  return {
    file: path,
    e,
    format: 'h5',
    config,
    keras3,
    weightsOf(_h5Path, names, groups, className) {
      const map = new Map<string, { tensor: Tensor; where: string; path: string }>();
      const keys = groups.flatMap((g) => g.names.map((n) => (g.sub ? `${g.sub}/${n}` : n)));
      const paths = groups.flatMap((g) => g.names.map((_, i) => `${_h5Path}${g.sub ? `/${g.sub}` : ''}/vars/${i}`));
      if (keys.length === 0) return { get: () => undefined };
      const top = weightsRoot.children[names[0]!];
      const where = `group model_weights/${escapeControl(names[0]!)}`;
      e.check(top?.kind === 'group', where, `the weights of ${className} layer ${escapeControl(names.join('/'))}`);
      const listed = stringList(top.attrs['weight_names']);
      e.check(listed !== undefined, `${where} attribute weight_names`, 'a list of weight names');
      // A top-level layer owns its group's weights, in the order of layer.weights. A nested
      // model's group holds all its layers' weights, each named by a path through the layer's
      // name (Keras prefixes the name scopes the variables were built in: `cnn/conv1/kernel`).
      const own = names[names.length - 1]!;
      const mine = names.length === 1 ? listed : listed.filter((n) => n.split('/').slice(0, -1).includes(own));
      e.check(mine.length === keys.length, where, `${keys.length} weights for ${className} layer ${escapeControl(names.join('/'))} (${keys.join(', ')}), found ${mine.length}${mine.length ? ` (${mine.map(escapeControl).join(', ')})` : ''}`);
      mine.forEach((name, i) => {
        const key = keys[i]!;
        const short = name.replace(/:\d+$/, '').split('/').pop()!;
        const want = key.split('/').pop()!;
        e.check(short === want || (want === 'kernel' && short === 'depthwise_kernel'), `${where} weight ${escapeControl(name)}`, `${className}'s weight ${want} at position ${i + 1}`);
        const at = `${where}/${escapeControl(name)}`;
        const ds = lookup(top, name);
        e.check(ds?.kind === 'dataset', `dataset ${at}`, `the dataset weight_names lists (missing)`);
        map.set(key, { tensor: tensorOf(ds, e, `dataset ${at}`), where: `dataset ${at}`, path: paths[i]! });
      });
      return { get: (key) => map.get(key) };
    },
  };
}

function lookup(group: H5Group, path: string): H5Group | H5Dataset | undefined {
  let node: H5Group | H5Dataset | undefined = group;
  for (const part of path.split('/').filter((p) => p !== '')) {
    if (node?.kind !== 'group') return undefined;
    node = Object.prototype.hasOwnProperty.call(node.children, part) ? node.children[part] : undefined;
  }
  return node;
}

function stringList(v: H5Value | undefined): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  return undefined;
}

const H5_DTYPES: Readonly<Record<string, DType>> = { f2: 'float16', f4: 'float32', f8: 'float64', i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64', u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64', b1: 'bool' };

function tensorOf(ds: H5Dataset, e: FormatErrors, where: string): Tensor {
  const dtype = H5_DTYPES[ds.dtype];
  e.check(dtype !== undefined && ds.data !== undefined, where, `a numeric dataset, not HDF5 type ${ds.dtype}`);
  try {
    return Tensor.fromBytes(dtype, ds.shape, ds.data);
  } catch (err) {
    return e.fail(where, `${formatShape(ds.shape)} ${dtype} data (${err instanceof Error ? err.message : String(err)})`);
  }
}

// ---------------------------------------------------------------------------------------------
// The graph

/** One call of a layer: its input tensors, as (layer, node index, tensor index), and the call's other arguments. */
interface Call {
  readonly inputs: readonly (readonly [string, number, number])[];
  readonly kwargs: Config;
}

interface LayerEntry {
  readonly className: string;
  readonly name: string;
  readonly config: Config;
  readonly calls: readonly Call[];
}

const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const MODEL_CLASSES = new Set(['Sequential', 'Functional', 'Model']);

/** The keras.ops a Keras 3 Functional config holds for the masks it computed (see functional()). */
const MASK_OPS = new Set(['NotEqual', 'Equal', 'Any', 'All', 'LogicalOr', 'LogicalAnd', 'LogicalNot', 'ExpandDims', 'Squeeze', 'Cast']);

/** The keras tensors in a Keras 3 call's args (nested lists included), in order. */
function kerasTensors(v: unknown, out: (readonly [string, number, number])[]): void {
  if (Array.isArray(v)) for (const x of v) kerasTensors(x, out);
  else if (obj(v)) {
    if (v['class_name'] === '__keras_tensor__' && obj(v['config'])) {
      const h = v['config']['keras_history'];
      if (Array.isArray(h) && typeof h[0] === 'string' && typeof h[1] === 'number' && typeof h[2] === 'number') out.push([h[0], h[1], h[2]]);
    }
  }
}

function parseCalls(v: unknown, e: FormatErrors, where: string): Call[] {
  if (v === undefined || v === null) return [];
  e.check(Array.isArray(v), where, 'inbound_nodes as a list');
  return v.map((node, i) => {
    if (obj(node)) {
      // Keras 3: {"args": [...], "kwargs": {...}}
      const inputs: (readonly [string, number, number])[] = [];
      kerasTensors(node['args'], inputs);
      const kwargs = obj(node['kwargs']) ? node['kwargs'] : {};
      return { inputs, kwargs };
    }
    // Keras 2: [[layer, node, tensor, kwargs], ...]
    e.check(Array.isArray(node), `${where}[${i}]`, 'a call: {args, kwargs} or a list of [layer, node, tensor, kwargs]');
    const inputs = node.map((ref: unknown, j: number) => {
      e.check(Array.isArray(ref) && typeof ref[0] === 'string' && typeof ref[1] === 'number' && typeof ref[2] === 'number', `${where}[${i}][${j}]`, 'an input [layer name, node index, tensor index, kwargs]');
      return [ref[0] as string, ref[1] as number, ref[2] as number] as const;
    });
    const first = node[0] as unknown[] | undefined;
    return { inputs, kwargs: first && obj(first[3]) ? first[3] : {} };
  });
}

/** The first layer's inbound_nodes with a call in it: an object per call in Keras 3, a list in tf.keras 2. */
function rawCalls(config: Config): unknown {
  const layers = config['layers'];
  if (!Array.isArray(layers)) return undefined;
  for (const l of layers) {
    const nodes = obj(l) ? l['inbound_nodes'] : undefined;
    if (Array.isArray(nodes) && nodes.length > 0) return nodes[0];
  }
  return undefined;
}

function parseLayer(v: unknown, e: FormatErrors, where: string): LayerEntry {
  e.check(obj(v) && typeof v['class_name'] === 'string' && obj(v['config']), where, 'a layer {class_name, config}');
  const config = v['config'];
  const name = typeof v['name'] === 'string' ? v['name'] : typeof config['name'] === 'string' ? config['name'] : '';
  e.check(name !== '', where, 'a layer name');
  return { className: v['class_name'], name, config, calls: parseCalls(v['inbound_nodes'], e, `${where} inbound_nodes`) };
}

/** A Keras 2 module path or a Keras 3 registered name may prefix a class name (keras.layers>Dense). */
function plainClass(name: string): string {
  return name.includes('>') ? name.slice(name.lastIndexOf('>') + 1) : name;
}

function snake(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

/** Each layer's h5 path in a model's `layers` list: snake-case class names made unique (dense, dense_1). */
function layerPaths(prefix: string, layers: readonly LayerEntry[]): Map<LayerEntry, string> {
  const used = new Map<string, number>();
  const out = new Map<LayerEntry, string>();
  for (const layer of layers) {
    const base = snake(layer.className === 'Model' ? 'Functional' : layer.className);
    const n = used.get(base);
    const name = n === undefined ? base : `${base}_${n}`;
    used.set(base, (n ?? 0) + 1);
    out.set(layer, `${prefix}${prefix ? '/' : ''}layers/${name}`);
  }
  return out;
}

const DTYPE_NAMES: Readonly<Record<string, DType>> = { float32: 'float32', float64: 'float64', float16: 'float16', int32: 'int32', int64: 'int64', uint8: 'uint8', bool: 'bool', int8: 'int8', int16: 'int16' };

function dtypeOfConfig(v: unknown, e: FormatErrors, where: string): DType {
  let name = v;
  if (obj(v) && obj(v['config'])) name = v['config']['name'];
  if (name === undefined || name === null) return 'float32';
  const d = typeof name === 'string' ? DTYPE_NAMES[name] : undefined;
  e.check(d !== undefined, where, `a dtype float32, float64, float16, int32, int64, uint8, int8, int16 or bool, not ${JSON.stringify(name)}`);
  return d;
}

function inputShape(config: Config, e: FormatErrors, where: string): (number | null)[] {
  const s = config['batch_shape'] ?? config['batch_input_shape'] ?? (Array.isArray(config['shape']) ? [null, ...(config['shape'] as unknown[])] : undefined);
  e.check(Array.isArray(s) && s.every((d) => d === null || (typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)), where, 'an input shape (batch_shape) of sizes and nulls');
  return s as (number | null)[];
}

class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly initializers = new Map<string, Tensor>();
  readonly inputs: ValueInfo[] = [];
  readonly records: WeightRecord[] = [];
  /** Every object's `vars` group path in a Keras 3 weights file, weightless layers' included. */
  readonly varGroups = new Set<string>(['vars']);
  private readonly taken = new Set<string>();
  /**
   * Values whose Keras mask a layer took away: MultiHeadAttention's call clears the masks of its
   * query, value and key tensors (backend.set_keras_mask(query, None)), so the layers that run
   * after it on the same tensors see none; Keras's predict runs that way, and so does this.
   */
  readonly unmasked = new Set<string>();
  /** Per layer (its name path joined by NUL): its index at each nesting level, and whether it or a model holding it is frozen. */
  private readonly positions = new Map<string, { order: readonly number[]; frozen: boolean }>();

  constructor(readonly source: Source) {}

  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.taken.has(name); i++) name = `${base}_${i}`;
    this.taken.add(name);
    return name;
  }

  /** Builds a Sequential or Functional model config on the given input values (undefined: its own Input layers). */
  model(className: string, config: Config, h5Prefix: string, names: readonly string[], given: readonly KValue[] | undefined, where: string): KValue[] {
    const e: FormatErrors = this.source.e;
    const rawLayers = config['layers'];
    e.check(Array.isArray(rawLayers), `${where} layers`, 'a list of layers');
    const layers = rawLayers.map((l, i) => parseLayer(l, e, `${where} layers[${i}]`));
    const parent = this.positions.get(names.join('\u0000')) ?? { order: [], frozen: config['trainable'] === false };
    layers.forEach((l, i) => this.positions.set([...names, l.name].join('\u0000'), { order: [...parent.order, i], frozen: parent.frozen || l.config['trainable'] === false }));
    if (h5Prefix) this.varGroups.add(`${h5Prefix}/vars`);
    if (className === 'Sequential') return this.sequential(config, layers, h5Prefix, names, given, where);
    return this.functional(config, layers, h5Prefix, names, given, where);
  }

  private sequential(config: Config, layers: LayerEntry[], h5Prefix: string, names: readonly string[], given: readonly KValue[] | undefined, where: string): KValue[] {
    const e: FormatErrors = this.source.e;
    const inputLayer = layers[0]?.className === 'InputLayer' ? layers[0] : undefined;
    const body = inputLayer ? layers.slice(1) : layers;
    const paths = layerPaths(h5Prefix, body);
    let x: KValue;
    if (given) {
      e.check(given.length === 1, where, `one input for a Sequential model, not ${given.length}`);
      x = given[0]!;
    } else {
      const shapeConfig = inputLayer?.config ?? (obj(body[0]?.config) && (body[0]!.config['batch_input_shape'] || body[0]!.config['batch_shape']) ? body[0]!.config : undefined);
      const build = config['build_input_shape'];
      const shape = shapeConfig ? inputShape(shapeConfig, e, `${where} input`) : Array.isArray(build) ? (build as (number | null)[]) : e.fail(`${where}`, 'an input shape (an InputLayer, batch_input_shape or build_input_shape): the model was never built');
      const name = this.fresh(inputLayer?.name ?? 'input');
      const dtype = dtypeOfConfig(shapeConfig?.['dtype'], e, `${where} input dtype`);
      this.inputs.push({ name, dtype, shape });
      x = { name, shape, dtype };
    }
    for (const layer of body) {
      const out = this.layer(layer, [x], {}, paths.get(layer)!, [...names, layer.name], 0);
      e.check(out.length >= 1, `${where} layer ${escapeControl(layer.name)}`, 'an output');
      x = out[0]!;
    }
    return [x];
  }

  private functional(config: Config, layers: LayerEntry[], h5Prefix: string, names: readonly string[], given: readonly KValue[] | undefined, where: string): KValue[] {
    const e: FormatErrors = this.source.e;
    const byName = new Map<string, LayerEntry>();
    for (const l of layers) {
      e.check(!byName.has(l.name), `${where} layer ${escapeControl(l.name)}`, 'each layer name once');
      byName.set(l.name, l);
    }
    const paths = layerPaths(h5Prefix, layers);
    const refs = (key: string): (readonly [string, number, number])[] => {
      let v = config[key];
      // A single [name, node, tensor] triple, or a list of them.
      if (Array.isArray(v) && typeof v[0] === 'string') v = [v];
      e.check(Array.isArray(v) && v.every((r) => Array.isArray(r) && typeof r[0] === 'string'), `${where} ${key}`, 'a list of [layer name, node index, tensor index]');
      return (v as unknown[][]).map((r) => [r[0] as string, Number(r[1] ?? 0), Number(r[2] ?? 0)] as const);
    };
    const inputRefs = refs('input_layers');
    const outputRefs = refs('output_layers');
    const values = new Map<string, KValue[]>();
    // tf.keras 2 numbers a nested model's calls from 1 when the model starts with an InputLayer
    // (its node 0 is its own input node, left out of the config: _should_skip_first_node).
    const legacy = Array.isArray(rawCalls(config));
    const skipsFirst = (name: string) => {
      const l = byName.get(name);
      if (!legacy || !l || !MODEL_CLASSES.has(plainClass(l.className))) return false;
      const inner = l.config['layers'];
      const first = Array.isArray(inner) ? (inner[0] as unknown) : undefined;
      return obj(first) && first['class_name'] === 'InputLayer';
    };
    const key = (layer: string, node: number) => `${layer}\u0000${skipsFirst(layer) ? node - 1 : node}`;
    inputRefs.forEach(([name], i) => {
      const layer = byName.get(name);
      e.check(layer?.className === 'InputLayer', `${where} input_layers[${i}]`, `an InputLayer, not ${escapeControl(name)}`);
      if (given) {
        e.check(given.length === inputRefs.length, where, `${inputRefs.length} inputs, not ${given.length}`);
        values.set(key(name, 0), [given[i]!]);
      } else {
        const shape = inputShape(layer.config, e, `${where} layer ${escapeControl(name)}`);
        const dtype = dtypeOfConfig(layer.config['dtype'], e, `${where} layer ${escapeControl(name)} dtype`);
        const value = this.fresh(name);
        this.inputs.push({ name: value, dtype, shape });
        values.set(key(name, 0), [{ name: value, shape, dtype }]);
      }
    });
    // Keras 3 records how it computed the masks it passed as `mask` arguments: ops such as
    // NotEqual, Any and LogicalOr become operation nodes of the graph. Masks are followed here
    // from the layers that make them (Embedding, Masking) as Keras's compute_mask does, so those
    // ops are left out when nothing but masks uses them.
    const usedAsArgs = new Set(outputRefs.map(([l]) => l));
    for (const l of layers) if (!MASK_OPS.has(plainClass(l.className))) for (const c of l.calls) for (const [name] of c.inputs) usedAsArgs.add(name);
    const maskOnly = (l: LayerEntry) => MASK_OPS.has(plainClass(l.className)) && !usedAsArgs.has(l.name);
    // Calls run once their inputs exist; config order is usually already topological.
    const pending: { layer: LayerEntry; index: number; call: Call }[] = layers.filter((l) => l.className !== 'InputLayer' && !maskOnly(l)).flatMap((layer) => layer.calls.map((call, index) => ({ layer, index, call })));
    let progress = true;
    while (pending.length && progress) {
      progress = false;
      for (let i = 0; i < pending.length; i++) {
        const { layer, index, call } = pending[i]!;
        if (!call.inputs.every(([l, n]) => values.has(key(l, n)))) continue;
        const inputs = call.inputs.map(([l, n, t]) => {
          const v = values.get(key(l, n))![t];
          e.check(v !== undefined, `${where} layer ${escapeControl(layer.name)}`, `an input ${escapeControl(l)} tensor ${t} the layer produces`);
          return v.mask && this.unmasked.has(v.name) ? { name: v.name, shape: v.shape, dtype: v.dtype } : v;
        });
        values.set(`${layer.name}\u0000${index}`, this.layer(layer, inputs, call.kwargs, paths.get(layer)!, [...names, layer.name], index));
        pending.splice(i--, 1);
        progress = true;
      }
    }
    if (pending.length) {
      const p = pending[0]!;
      e.fail(`${where} layer ${escapeControl(p.layer.name)}`, `inputs computed by the model's layers (waits for ${p.call.inputs.map(([l, n]) => `${escapeControl(l)}[${n}]`).join(', ')}: a cycle or a missing layer)`);
    }
    return outputRefs.map(([l, n, t], i) => {
      const v = values.get(key(l, n))?.[t];
      e.check(v !== undefined, `${where} output_layers[${i}]`, `a tensor the model computes, not ${escapeControl(l)}[${n}][${t}]`);
      return v;
    });
  }

  private layer(entry: LayerEntry, inputs: readonly KValue[], kwargs: Config, h5Path: string, names: readonly string[], callIndex: number): KValue[] {
    const e: FormatErrors = this.source.e;
    const className = plainClass(entry.className);
    const label = names.map(escapeControl).join('/');
    const where = `layer ${label} (${escapeControl(className)})`;
    if (MODEL_CLASSES.has(className)) return this.model(className === 'Sequential' ? 'Sequential' : 'Functional', entry.config, h5Path, names, inputs, where);
    const def = Object.prototype.hasOwnProperty.call(LAYERS, className) ? LAYERS[className]! : undefined;
    if (!def) {
      const custom = entry.className.includes('>') || !/^[A-Z][A-Za-z0-9]*$/.test(className);
      e.fail(where, `a built-in Keras layer modelbridge supports; ${custom ? 'custom' : 'unsupported'} class ${escapeControl(entry.className)}${custom ? ' (custom layers have no config modelbridge can run)' : ''}`);
    }
    let groups: readonly VarGroup[];
    try {
      groups = def.vars?.(entry.config) ?? [];
    } catch (err) {
      if (err instanceof RangeError) e.fail(where, err.message);
      throw err;
    }
    const weights = this.source.weightsOf(h5Path, names, groups, className);
    this.varGroups.add(`${h5Path}/vars`);
    for (const g of groups) if (g.sub) this.varGroups.add(`${h5Path}/${g.sub}/vars`);
    const keys = groups.flatMap((g) => g.names.map((n) => (g.sub ? `${g.sub}/${n}` : n)));
    const position = this.positions.get(names.join('\u0000')) ?? { order: [], frozen: false };
    const record = (key: string, ir: string, how: string) => {
      const w = weights.get(key)!;
      const legacy: LegacyPlace = {
        top: names[0]!,
        name: `${names.join('/')}/${key}`,
        order: [...position.order, keys.indexOf(key)],
        trainable: !position.frozen && !NON_TRAINABLE.has(key.split('/').pop()!),
      };
      this.records.push({ path: w.path, shape: w.tensor.shape, dtype: w.tensor.dtype, ir, how, legacy });
    };
    const known = new Set(keys);
    const base = names.join('/');
    const first = this.nodes.length;
    const b = this;
    const ctx: LayerContext = {
      className,
      layerName: base,
      config: entry.config,
      hasWeight: (k) => known.has(k) && weights.get(k) !== undefined,
      weight(k, shape) {
        const w = known.has(k) ? weights.get(k) : undefined;
        if (!w) return e.fail(where, `its weight ${k}`);
        if (shape && (w.tensor.shape.length !== shape.length || shape.some((s, i) => s !== null && s !== w.tensor.shape[i]))) {
          e.fail(w.where, `${className} layer ${label}'s ${k} of shape ${formatShape(shape.map((s) => s ?? -1))}, not ${formatShape(w.tensor.shape)}`);
        }
        return w.tensor;
      },
      init(baseName, tensor, from) {
        const name = `${base}/${baseName}`;
        if (b.initializers.get(name) === tensor) return name;
        const fresh = b.initializers.has(name) ? b.fresh(name) : name;
        b.taken.add(fresh);
        b.initializers.set(fresh, tensor);
        const key = from?.key ?? (known.has(baseName) && weights.get(baseName)?.tensor === tensor ? baseName : undefined);
        if (key !== undefined && weights.get(key)) record(key, fresh, from?.how ?? 'same');
        return fresh;
      },
      alias(ir, k, how) {
        if (known.has(k) && weights.get(k)) record(k, ir, how);
      },
      keep(k) {
        const w = known.has(k) ? weights.get(k) : undefined;
        if (w && w.tensor.size <= 16) record(k, '', `value:${JSON.stringify(w.tensor.toNumbers())}`);
      },
      ints: (values) => {
        const name = b.fresh(`${base}/const`);
        b.initializers.set(name, Tensor.from('int64', [values.length], values.map((v) => BigInt(v))));
        return name;
      },
      floats: (values) => {
        const name = b.fresh(`${base}/const`);
        b.initializers.set(name, typeof values === 'number' ? Tensor.from('float32', [], [values]) : Tensor.from('float32', [values.length], values));
        return name;
      },
      op(op, ins, shape, attributes: Record<string, Attribute> = {}, dtype) {
        const out = b.fresh(`${base}/${op}`);
        b.nodes.push(makeNode(op, ins, [out], attributes, out));
        return { name: out, shape, dtype: dtype ?? inputs[0]?.dtype ?? 'float32' };
      },
      multi(op, ins, count, attributes: Record<string, Attribute> = {}) {
        const outs = Array.from({ length: count }, (_, i) => b.fresh(`${base}/${op}${i ? `:${i}` : ''}`));
        b.nodes.push(makeNode(op, ins, outs, attributes, outs[0]));
        return outs;
      },
      fail: (expected) => e.fail(where, expected),
    };
    // A `mask` argument in the config is the mask Keras computed and passed (see functional()); it must be one followed here.
    if (kwargs['mask'] !== undefined && kwargs['mask'] !== null && !inputs.some((i) => i.mask)) e.fail(where, 'no explicit mask argument: masks are followed from the layers that make them (Embedding with mask_zero, Masking), and this input has none');
    if (def.masking === 'refuse' && inputs.some((i) => i.mask)) e.fail(where, `an input without a Keras mask (a masked input to ${escapeControl(className)} is not supported)`);
    let outs: KValue[];
    try {
      outs = def.build(ctx, inputs, kwargs);
    } catch (err) {
      if (err instanceof RangeError) e.fail(where, err.message);
      throw err;
    }
    if (className === 'MultiHeadAttention') for (const i of inputs) this.unmasked.add(i.name);
    // Keras's __call__: a layer that supports masking passes its first input's mask on; one that
    // does not drops it (layers that read or make masks set their outputs' themselves).
    const mask = inputs[0]?.mask;
    if (def.masking === 'pass' && mask) outs = outs.map((v) => (v.mask ? v : { ...v, mask }));
    else if (def.masking === undefined || def.masking === 'refuse') outs = outs.map((v) => (v.mask ? { name: v.name, shape: v.shape, dtype: v.dtype } : v));
    // Name each output after its layer (the second call of a shared layer gets a suffix).
    const made = new Set(this.nodes.slice(first).flatMap((n) => n.outputs));
    return outs.map((v, k) => {
      if (!made.has(v.name)) return v;
      const want = this.fresh(`${base}${callIndex ? `_${callIndex}` : ''}${k ? `:${k}` : ''}`);
      for (let i = first; i < this.nodes.length; i++) {
        const n = this.nodes[i]!;
        if (n.outputs.includes(v.name) || n.inputs.includes(v.name)) this.nodes[i] = { ...n, name: n.name === v.name ? want : n.name, inputs: n.inputs.map((x) => (x === v.name ? want : x)), outputs: n.outputs.map((x) => (x === v.name ? want : x)) };
      }
      made.delete(v.name);
      return { ...v, name: want };
    });
  }
}

/** The names of a model's outputs as Keras reports them: each output layer's name. */
function outputNames(config: Config, className: string): (string | undefined)[] {
  if (className === 'Sequential') {
    const layers = config['layers'];
    const last = Array.isArray(layers) ? (layers[layers.length - 1] as unknown) : undefined;
    return [obj(last) && obj(last['config']) && typeof last['config']['name'] === 'string' ? last['config']['name'] : undefined];
  }
  let refs = config['output_layers'];
  if (Array.isArray(refs) && typeof refs[0] === 'string') refs = [refs];
  return Array.isArray(refs) ? refs.map((r) => (Array.isArray(r) && typeof r[0] === 'string' ? r[0] : undefined)) : [];
}

function buildModel(source: Source): Model {
  const e: FormatErrors = source.e;
  const top = source.config;
  e.check(obj(top) && typeof top['class_name'] === 'string' && obj(top['config']), 'config', 'a Keras model config {class_name, config}');
  const className = plainClass(top['class_name']);
  e.check(MODEL_CLASSES.has(className), 'config class_name', `Sequential or Functional (a model built from layers), not ${escapeControl(top['class_name'])}${className === 'Model' ? '' : ' (subclassed models keep their computation in Python code)'}`);
  const b = new GraphBuilder(source);
  const outputs = b.model(className === 'Sequential' ? 'Sequential' : 'Functional', top['config'], '', [], undefined, 'config');
  // Graph outputs take the names Keras gives them: the output layers' (a nested model's own name).
  const wanted = outputNames(top['config'], className);
  const rename = new Map<string, string>();
  const taken = new Set([...b.inputs.map((i) => i.name), ...b.initializers.keys(), ...b.nodes.flatMap((n) => n.outputs)]);
  const outInfos: ValueInfo[] = [];
  outputs.forEach((v, i) => {
    let name = rename.get(v.name) ?? v.name;
    const want = wanted[i];
    const computed = b.nodes.some((n) => n.outputs.includes(v.name));
    if (want !== undefined && want !== name && computed && !rename.has(v.name) && !taken.has(want)) {
      rename.set(v.name, want);
      taken.add(want);
      name = want;
    }
    if (!outInfos.some((o) => o.name === name)) outInfos.push({ name, dtype: v.dtype, shape: v.shape });
  });
  const r = (x: string) => rename.get(x) ?? x;
  const nodes = rename.size ? b.nodes.map((n) => ({ ...n, name: r(n.name), inputs: n.inputs.map(r), outputs: n.outputs.map(r) })) : b.nodes;
  const graph: Graph = { inputs: b.inputs, outputs: outInfos, initializers: b.initializers, nodes, opset: DEFAULT_OPSET };
  const simplified = simplify(graph, new Map()).graph;
  const weights = new Map(simplified.initializers);
  const inputs = new Map(simplified.inputs.map((i) => [i.name, i.name]));
  const outs = new Map(simplified.outputs.map((o) => [o.name, o.name]));
  return {
    format: source.format,
    weights,
    graph: simplified,
    signatures: [{ name: 'serving_default', inputs, outputs: outs }],
    metadata: {
      producer: source.format === 'keras' ? 'Keras 3 (.keras)' : 'Keras (HDF5)',
      // What the .keras writer needs to rebuild the archive: the architecture as Keras wrote it
      // (Keras 3 configs only), where each weight goes, and which object groups exist.
      ...(source.keras3 ? { [KERAS_CONFIG_KEY]: JSON.stringify(top), [KERAS_WEIGHTS_KEY]: JSON.stringify({ groups: [...b.varGroups].sort(), weights: b.records }) } : {}),
    },
  };
}

