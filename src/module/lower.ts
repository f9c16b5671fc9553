import { isDType, type DType } from '../core/dtypes.js';
import { FormatError } from '../core/errors.js';
import { DEFAULT_OPSET, makeNode, type Attribute, type Graph, type Node, type ValueInfo } from '../core/graph.js';
import type { Signature } from '../core/model.js';
import { formatShape, sameShape } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { Fields, SpecFieldError } from './fields.js';
import { CONTAINERS, LAYERS, type Lowered, type LowerContext, type ParamSpec } from './layers.js';
import type { IOSpec, ModuleSpec, SignatureSpec } from './spec.js';

export interface LoweredModel {
  readonly graph: Graph;
  readonly signature: Signature;
}

/** A module stack's state-dict entries, by full name, in module order. */
export function expectedParams(spec: ModuleSpec, prefix = ''): Array<ParamSpec & { key: string; path: string }> {
  const out: Array<ParamSpec & { key: string; path: string }> = [];
  walk(spec, prefix, (leaf, path) => {
    for (const p of LAYERS[leaf.type]!.params(new Fields(leaf, path))) out.push({ ...p, key: path ? `${path}.${p.name}` : p.name, path });
  });
  return out;
}

function childName(child: ModuleSpec | null, index: number): string {
  return typeof child?.name === 'string' && child.name !== '' ? child.name : String(index);
}

/** Nesting deeper than this is no real model, and would only exhaust the stack. */
const MAX_DEPTH = 64;

/**
 * Visits the leaf modules of a spec in execution order with their state-dict path. ModuleList and
 * ModuleDict hold modules without running them (torch gives them no forward): they are walked for
 * the state dict's layout, and refused when `running` (lowering into a graph).
 */
function walk(spec: ModuleSpec, path: string, visit: (leaf: ModuleSpec, path: string) => void, depth = 0, running = false): void {
  if (depth > MAX_DEPTH) throw new SpecFieldError(path, `modules nest deeper than ${MAX_DEPTH} levels`);
  if (spec === null || typeof spec !== 'object' || typeof spec.type !== 'string') {
    throw new SpecFieldError(path, 'each module must be an object with a string "type"');
  }
  if ((CONTAINERS as readonly string[]).includes(spec.type)) {
    if (running && spec.type !== 'Sequential') {
      throw new SpecFieldError(path, `${spec.type} has no forward of its own (torch cannot run it in a Sequential either): this spec describes weights, not a computation`);
    }
    if (!Array.isArray(spec.modules)) throw new SpecFieldError(path, `${spec.type} needs a "modules" list`);
    const seen = new Set<string>();
    spec.modules.forEach((child, i) => {
      const name = childName(child, i);
      if (seen.has(name) || name.includes('.')) throw new SpecFieldError(path, `child name ${JSON.stringify(name)} is repeated or contains a dot`);
      if (spec.type === 'ModuleList' && name !== String(i)) throw new SpecFieldError(path, `ModuleList child ${i} is named ${JSON.stringify(name)}; its children are its indices`);
      seen.add(name);
      walk(child, path ? `${path}.${name}` : name, visit, depth + 1, running);
    });
    return;
  }
  if (!Object.prototype.hasOwnProperty.call(LAYERS, spec.type)) {
    throw new SpecFieldError(path, `unknown module type ${JSON.stringify(spec.type)} (supported: ${CONTAINERS.join(', ')}, ${Object.keys(LAYERS).join(', ')}, Graph)`);
  }
  visit(spec, path);
}

/** The graph input a spec implies when no signature is stored: the first layer's input features. */
function inferInputs(spec: ModuleSpec, dtype: DType): IOSpec[] {
  let first: ModuleSpec | undefined;
  walk(spec, '', (leaf) => {
    first ??= leaf;
  });
  if (first?.type === 'Linear') return [{ name: 'x', dtype, shape: [-1, Number(first['in_features'])] }];
  if (first?.type === 'Conv2d' || first?.type === 'ConvTranspose2d') return [{ name: 'x', dtype, shape: [-1, Number(first['in_channels']), -1, -1] }];
  if (first?.type === 'Conv1d') return [{ name: 'x', dtype, shape: [-1, Number(first['in_channels']), -1] }];
  // Token ids: [batch, sequence] of int64, as torch's Embedding takes them.
  if (first?.type === 'Embedding') return [{ name: 'x', dtype: 'int64', shape: [-1, -1] }];
  if (first?.type === 'LSTM' || first?.type === 'GRU') return [{ name: 'x', dtype, shape: [-1, -1, Number(first['input_size'])] }];
  throw new SpecFieldError('', 'the input shape cannot be inferred from the first module: give a signature');
}

function toValueInfo(io: IOSpec, where: string): ValueInfo {
  if (!isDType(io.dtype)) throw new SpecFieldError(where, `unknown dtype ${JSON.stringify(io.dtype)}`);
  return { name: io.name, dtype: io.dtype, shape: io.shape.map((d) => (d === null || d < 0 ? null : d)) };
}

/**
 * Lowers a torch.nn-shaped module spec plus its state dict into an ONNX-semantics graph. The
 * graph's initializers are the state dict's own tensors (no copies). Every expected entry must be
 * present with its exact shape and no unexpected entry may remain, as load_state_dict(strict=True)
 * demands. `file` names the source in errors.
 */
export function lowerModule(
  spec: ModuleSpec,
  weights: ReadonlyMap<string, Tensor>,
  file: string,
  signatureSpec?: SignatureSpec,
): LoweredModel {
  try {
    return lowerChecked(spec, weights, file, signatureSpec);
  } catch (e) {
    if (e instanceof SpecFieldError) throw new FormatError(file, `module spec${e.path ? ` at ${e.path}` : ''}`, e.message);
    throw e;
  }
}

function lowerChecked(spec: ModuleSpec, weights: ReadonlyMap<string, Tensor>, file: string, signatureSpec?: SignatureSpec): LoweredModel {
  const expected = expectedParams(spec);
  const used = new Set<string>();
  for (const p of expected) {
    const t = weights.get(p.key);
    if (!t) throw new FormatError(file, `tensor ${p.key}`, `missing: the module spec needs it with shape ${formatShape(p.shape)}`);
    if (!sameShape(t.shape, p.shape)) throw new FormatError(file, `tensor ${p.key}`, `shape ${formatShape(p.shape)} for the module spec, found ${formatShape(t.shape)}`);
    used.add(p.key);
  }
  const extra = [...weights.keys()].filter((k) => !used.has(k));
  if (extra.length) throw new FormatError(file, `tensor ${extra[0]}`, `not used by the module spec (${extra.length} unexpected tensor(s))`);

  const floatDType = expected.find((p) => !p.integer && weights.get(p.key))?.key;
  const dtype: DType = floatDType ? weights.get(floatDType)!.dtype : 'float32';
  // torch.nn.LSTM and GRU as the whole model return (output, h_n[, c_n]): the graph has those outputs too.
  const states = spec.type === 'LSTM' ? ['h_n', 'c_n'] : spec.type === 'GRU' ? ['h_n'] : [];
  const io = signatureSpec ?? { inputs: inferInputs(spec, dtype), outputs: [{ name: 'y', dtype, shape: [] }, ...states.map((name) => ({ name, dtype, shape: [] }))] };
  if (io.inputs.length !== 1 || (io.outputs.length !== 1 && io.outputs.length !== 1 + states.length)) {
    throw new SpecFieldError('', `a module stack has exactly one input and one output${states.length ? ` (${spec.type}: one, or ${1 + states.length} with its states)` : ''}`);
  }
  const input = toValueInfo(io.inputs[0]!, 'signature input');

  const nodes: Node[] = [];
  const initializers = new Map<string, Tensor>(weights);
  let opset = DEFAULT_OPSET;
  let counter = 0;
  let current = '';

  const ctx: LowerContext = {
    node(op: string, inputs: readonly string[], attributes: Record<string, Attribute> = {}): string {
      const name = `/${current}/${op}_${counter++}`;
      nodes.push(makeNode(op, inputs, [`${name}:0`], attributes, name));
      return `${name}:0`;
    },
    nodeOutputs(op: string, inputs: readonly string[], attributes: Record<string, Attribute>, count: number): string[] {
      const name = `/${current}/${op}_${counter++}`;
      const outputs = Array.from({ length: count }, (_, k) => `${name}:${k}`);
      nodes.push(makeNode(op, inputs, outputs, attributes, name));
      return outputs;
    },
    param(name: string): string {
      return current ? `${current}.${name}` : name;
    },
    constant(name, shape, values, constDType = 'float32'): string {
      const key = `/${current}/${name}_${counter++}`;
      initializers.set(key, Tensor.from(constDType, shape, constDType === 'int64' ? values.map(BigInt) : values));
      return key;
    },
    requireOpset(min: number): void {
      opset = Math.max(opset, min);
    },
  };

  let x: Lowered = { value: input.name, rank: input.shape?.length };
  walk(
    spec,
    '',
    (leaf, path) => {
      current = path;
      x = LAYERS[leaf.type]!.lower(new Fields(leaf, path), ctx, x);
    },
    0,
    true,
  );

  // Name the outputs' nodes after the signature outputs rather than adding Identities.
  if (!nodes.some((n) => n.outputs.includes(x.value))) throw new SpecFieldError('', 'the module stack computes nothing');
  const values = [x.value, ...(io.outputs.length > 1 ? (x.states ?? []).map((st) => st.value) : [])];
  if (values.length !== io.outputs.length) throw new SpecFieldError('', `the module computes ${values.length} outputs, the signature names ${io.outputs.length}`);
  const outs = io.outputs.map((o, k) => toValueInfo(o, k === 0 ? 'signature output' : `signature output ${k}`));
  // Each output value takes its signature name wherever it is computed or read.
  const renamed = new Map(values.map((v, k) => [v, outs[k]!.name]));
  const rename = (v: string) => renamed.get(v) ?? v;
  const named = nodes.map((n) => ({ ...n, inputs: n.inputs.map(rename), outputs: n.outputs.map(rename) }));
  const graph: Graph = {
    inputs: [input],
    outputs: outs.map((o, k) => ({ ...o, shape: io.outputs[k]!.shape.length ? o.shape : null })),
    initializers,
    nodes: named,
    opset,
  };
  return {
    graph,
    signature: { name: 'default', inputs: new Map([[input.name, input.name]]), outputs: new Map(outs.map((o) => [o.name, o.name])) },
  };
}
