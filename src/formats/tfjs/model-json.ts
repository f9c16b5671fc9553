import type { FormatErrors } from '../../core/errors.js';
import { parseTensorName, type TfRef } from '../tf/flatten.js';
import type { ArgDef, FunctionDef, NodeDef, TensorShapeProto } from '../tf/messages.js';
import { attrFromJson, isObject, JsonReader, type Json, type JsonObject } from './attrs.js';
import { printable } from './printable.js';
import { parseManifest, type WeightGroup } from './weights.js';

/**
 * model.json of a TF.js graph model (tfjs-core io/types.ts ModelJSON): the GraphDef as protobuf
 * JSON in modelTopology, the weightsManifest, an optional signature (a SignatureDef as JSON) and
 * free-form userDefinedMetadata. TF.js itself takes userDefinedMetadata.signature over signature
 * (converter 1.x put it there), so the reader does too.
 */
export interface GraphModelJson {
  readonly nodes: NodeDef[];
  /** modelTopology.library's functions (While loops' cond and body), their Consts still without values. */
  readonly functions: FunctionDef[];
  readonly manifest: WeightGroup[];
  readonly signature?: SignatureJson;
  /** userDefinedMetadata without its signature. */
  readonly metadata: JsonObject;
}

export interface TensorInfoJson {
  readonly key: string;
  readonly ref: TfRef;
  readonly dtype?: number;
  readonly shape?: TensorShapeProto;
}

export interface SignatureJson {
  readonly inputs: TensorInfoJson[];
  readonly outputs: TensorInfoJson[];
}

export function parseGraphModelJson(text: string, e: FormatErrors): GraphModelJson {
  let value: Json;
  try {
    value = JSON.parse(text) as Json;
  } catch {
    return e.fail('model.json', 'valid JSON');
  }
  if (!isObject(value)) return e.fail('model.json', 'a JSON object');
  const format = value['format'];
  e.check(format === undefined || format === 'graph-model', 'format', `"graph-model", not ${JSON.stringify(format)}${format === 'layers-model' ? ' (Keras layers models are not supported)' : ''}`);
  const topology = value['modelTopology'];
  if (!isObject(topology)) return e.fail('modelTopology', 'a GraphDef object');
  const list = topology['node'] ?? [];
  if (!Array.isArray(list)) return e.fail('modelTopology.node', 'a list of nodes');
  const nodes = list.map((n, i) => nodeFromJson(n, i, e));
  const manifest = parseManifest(value['weightsManifest'], e);
  const udm = value['userDefinedMetadata'];
  e.check(udm === undefined || udm === null || isObject(udm), 'userDefinedMetadata', 'an object');
  const { signature: legacy, ...metadata } = (udm ?? {}) as JsonObject;
  const sig = legacy ?? value['signature'];
  // Library functions: a converted graph's calls are inlined, but While loops keep their cond and
  // body there (the TF import recognises Keras's and modelbridge's own, and refuses others).
  const functions = functionsFromJson(topology['library'], e);
  return { nodes, functions, manifest, metadata, ...(sig === undefined || sig === null ? {} : { signature: signatureFromJson(sig, e) }) };
}

function functionsFromJson(library: Json | undefined, e: FormatErrors): FunctionDef[] {
  if (library === undefined || library === null) return [];
  if (!isObject(library)) return e.fail('modelTopology.library', 'an object');
  const list = library['function'] ?? [];
  if (!Array.isArray(list)) return e.fail('modelTopology.library.function', 'a list of functions');
  return list.map((f, i) => {
    const where = `modelTopology.library.function[${i}]`;
    const r = new JsonReader(e, where);
    const fn = r.object(f);
    const sig = r.at(`${where}.signature`).object(fn['signature']);
    const name = r.at(`${where}.signature.name`).string(sig['name']);
    const args = (key: 'inputArg' | 'outputArg'): ArgDef[] =>
      r.at(`function ${name} ${key}`).list(sig[key] ?? []).map((a) => {
        const ar = r.at(`function ${name} ${key}`);
        const o = ar.object(a);
        return { name: ar.string(o['name']), type: ar.type(o['type']), type_attr: '', number_attr: '', type_list_attr: '' };
      });
    const body = r.at(`function ${name} nodeDef`).list(fn['nodeDef'] ?? []);
    const ret = r.at(`function ${name} ret`).object(fn['ret'] ?? {});
    return {
      signature: { name, input_arg: args('inputArg'), output_arg: args('outputArg'), attr: [] },
      attr: {},
      node_def: body.map((n, k) => nodeFromJson(n, k, e, `function ${name} nodeDef`)),
      ret: Object.fromEntries(Object.entries(ret).map(([k, v]) => [k, r.at(`function ${name} ret ${k}`).string(v)])),
    };
  });
}

function nodeFromJson(v: Json, index: number, e: FormatErrors, list = 'modelTopology.node'): NodeDef {
  const at = `${list}[${index}]`;
  if (!isObject(v)) return e.fail(at, 'a node object');
  const { name, op, input, device, attr } = v;
  e.check(typeof name === 'string' && name !== '' && printable(name), at, `a non-empty name without control characters, not ${JSON.stringify(name)}`);
  const where = `node ${name}`;
  e.check(typeof op === 'string' && op !== '' && printable(op), where, `an op name, not ${JSON.stringify(op)}`);
  e.check(input === undefined || (Array.isArray(input) && input.every((i) => typeof i === 'string' && i !== '' && printable(i))), `${where} input`, 'a list of tensor names');
  e.check(device === undefined || typeof device === 'string', `${where} device`, 'a string');
  e.check(attr === undefined || (isObject(attr) && Object.keys(attr).every(printable)), `${where} attr`, 'an object keyed by attribute names');
  const attrs = Object.fromEntries(Object.entries(attr ?? {}).map(([k, a]) => [k, attrFromJson(a, new JsonReader(e, `${where} attr ${k}`))]));
  return { name, op, input: (input ?? []) as string[], device: device ?? '', attr: attrs };
}

function signatureFromJson(v: Json, e: FormatErrors): SignatureJson {
  if (!isObject(v)) return e.fail('signature', 'an object with inputs and outputs');
  const side = (key: 'inputs' | 'outputs'): TensorInfoJson[] => {
    const entries = v[key] ?? {};
    if (!isObject(entries)) return e.fail(`signature ${key}`, 'an object of tensor infos');
    return Object.entries(entries).map(([k, info]) => {
      e.check(printable(k), `signature ${key}`, `keys without control characters, not ${JSON.stringify(k)}`);
      const where = `signature ${key} ${k}`;
      if (!isObject(info)) return e.fail(where, 'a tensor info object');
      const name = info['name'];
      const ref = typeof name === 'string' ? parseTensorName(name) : undefined;
      e.check(ref !== undefined && ref.node !== '', where, 'a tensor name such as "x:0"');
      const r = new JsonReader(e, where);
      return {
        key: k,
        ref,
        ...(info['dtype'] === undefined ? {} : { dtype: r.type(info['dtype']) }),
        ...(info['tensorShape'] === undefined ? {} : { shape: r.shape(info['tensorShape']) }),
      };
    });
  };
  return { inputs: side('inputs'), outputs: side('outputs') };
}
