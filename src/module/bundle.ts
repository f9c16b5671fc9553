import { FormatError } from '../core/errors.js';
import { defaultSignature, type Model, type Signature } from '../core/model.js';
import type { Tensor } from '../core/tensor.js';
import * as graphSpec from './graph-spec.js'; // lazy in the CLI bundle
import * as lift from './lift.js'; // lazy in the CLI bundle
import * as lower from './lower.js'; // lazy in the CLI bundle
import { MODULE_KEY, SIGNATURE_KEY, type ModuleSpec, type SignatureSpec } from './spec.js';

/**
 * A bundle is a state dict plus string metadata: what safetensors stores, and what a .pt stores
 * beside its pickle. These two functions turn one into a runnable Model and back, so every
 * weights-only format shares one meaning of the module spec.
 */
export interface Bundle {
  readonly tensors: ReadonlyMap<string, Tensor>;
  readonly metadata: Readonly<Record<string, string>>;
}

function parseJSON(text: string, file: string, key: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new FormatError(file, `metadata ${key}`, 'valid JSON');
  }
}

function asSpec(value: unknown, file: string, where: string): ModuleSpec {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || typeof (value as ModuleSpec).type !== 'string') {
    throw new FormatError(file, where, 'a module spec: an object with a string "type"');
  }
  return value as ModuleSpec;
}

function asSignature(value: unknown, file: string): SignatureSpec {
  const ok = (list: unknown) =>
    Array.isArray(list) &&
    list.every((io) => typeof io?.name === 'string' && typeof io.dtype === 'string' && Array.isArray(io.shape) && io.shape.every((d: unknown) => d === null || Number.isSafeInteger(d)));
  const v = value as SignatureSpec | null;
  if (!v || !ok(v.inputs) || !ok(v.outputs)) throw new FormatError(file, `metadata ${SIGNATURE_KEY}`, '{"inputs": [{name, dtype, shape}], "outputs": [...]}');
  return v;
}

/** Parses a module spec given as JSON text (the CLI's --module file). */
export function parseModuleSpec(text: string, file: string): ModuleSpec {
  return asSpec(parseJSON(text, file, 'module spec'), file, 'module spec');
}

/**
 * The Model a bundle describes. `moduleOverride` (from --module) replaces the stored spec; with
 * neither, the model is a bare state dict: convertible, but not runnable.
 */
export function modelFromBundle(bundle: Bundle, format: string, file: string, moduleOverride?: ModuleSpec): Model {
  const { [MODULE_KEY]: moduleText, [SIGNATURE_KEY]: signatureText, ...rest } = bundle.metadata;
  const spec = moduleOverride ?? (moduleText === undefined ? undefined : asSpec(parseJSON(moduleText, file, MODULE_KEY), file, `metadata ${MODULE_KEY}`));
  const base = { format, metadata: rest };
  if (!spec) return { ...base, weights: bundle.tensors, signatures: [] };
  if (spec.type === 'Graph') {
    const graph = graphSpec.specToGraph(spec, bundle.tensors, file);
    return { ...base, weights: graph.initializers, graph, signatures: [defaultSignature(graph)] };
  }
  const signature = signatureText === undefined ? undefined : asSignature(parseJSON(signatureText, file, SIGNATURE_KEY), file);
  const lowered = lower.lowerModule(spec, bundle.tensors, file, signature);
  return { ...base, weights: bundle.tensors, graph: lowered.graph, module: spec, signatures: [lowered.signature] };
}

function signatureSpecOf(model: Model, signature: Signature): SignatureSpec {
  const graph = model.graph!;
  const describe = (names: ReadonlyMap<string, string>, infos: typeof graph.inputs) =>
    [...names].map(([key, value]) => {
      const info = infos.find((i) => i.name === value);
      return { name: key, dtype: info?.dtype ?? 'float32', shape: (info?.shape ?? []).map((d) => (typeof d === 'number' ? d : -1)) };
    });
  return { inputs: describe(signature.inputs, graph.inputs), outputs: describe(signature.outputs, graph.outputs) };
}

/** The bundle that stores a model: its state dict with the module spec, or the general Graph form. */
export function bundleFromModel(model: Model): Bundle {
  const metadata: Record<string, string> = { ...model.metadata };
  if (model.module && model.graph) {
    metadata[MODULE_KEY] = JSON.stringify(model.module);
    const signature = model.signatures[0];
    if (signature) metadata[SIGNATURE_KEY] = JSON.stringify(signatureSpecOf(model, signature));
    return { tensors: model.weights, metadata };
  }
  if (model.graph) {
    const lifted = liftChecked(model);
    if (lifted) return lifted;
    const { spec, tensors } = graphSpec.graphToSpec(model.graph);
    metadata[MODULE_KEY] = JSON.stringify(spec);
    return { tensors, metadata };
  }
  return { tensors: model.weights, metadata };
}

/**
 * A graph that is a plain chain of layers is stored as the torch.nn Sequential it computes, so
 * PyTorch can load it. The lifted spec is lowered again as a check; if that fails for any reason
 * the model is stored in the general Graph form instead.
 */
function liftChecked(model: Model): Bundle | undefined {
  const signature = model.signatures[0];
  if (!model.graph || !signature) return undefined;
  const lifted = lift.liftModule(model.graph, signature);
  if (!lifted) return undefined;
  const metadata: Record<string, string> = { ...model.metadata, [MODULE_KEY]: JSON.stringify(lifted.module) };
  const io = signatureSpecOf(model, signature);
  metadata[SIGNATURE_KEY] = JSON.stringify(io);
  try {
    lower.lowerModule(lifted.module, lifted.weights, 'lifted module', io);
  } catch {
    return undefined;
  }
  // lift invents BatchNorm's step counter (the graph never reads it); the model's own value under
  // that name, when it carries one (read back from a SavedModel or TF.js model), is the real one.
  const tensors = new Map([...lifted.weights].map(([name, t]) => {
    const own = name.endsWith('num_batches_tracked') ? model.weights.get(name) : undefined;
    return [name, own && own.dtype === t.dtype && own.shape.length === t.shape.length ? own : t] as const;
  }));
  return { tensors, metadata };
}
