import { attrFloat, attrInt, attrInts, attrString, type Graph, type Node } from '../core/graph.js';
import type { Signature } from '../core/model.js';
import { Tensor } from '../core/tensor.js';
import { transpose2d } from '../core/transpose.js';
import type { ModuleSpec } from './spec.js';

/**
 * Lifting, the inverse of lowering: recognises a graph that is a plain chain of layers (each node
 * feeding only the next) and rebuilds the torch.nn Sequential it computes, with its state dict
 * under torch's names and layouts. A graph that is anything else returns undefined, and is then
 * stored in the general Graph form instead.
 */
export interface Lifted {
  readonly module: ModuleSpec;
  readonly weights: Map<string, Tensor>;
}

interface Layer {
  readonly spec: ModuleSpec;
  /** Parameters by torch name (weight, bias, running_mean ...). */
  readonly params: ReadonlyArray<[string, Tensor]>;
  /** Nodes this layer consumed from the chain. */
  readonly consumed: number;
}

type Matcher = (chain: readonly Node[], at: number, init: (name: string | undefined) => Tensor | undefined) => Layer | undefined;

const ACTIVATIONS: Readonly<Record<string, (n: Node) => ModuleSpec | undefined>> = {
  Relu: () => ({ type: 'ReLU' }),
  Sigmoid: () => ({ type: 'Sigmoid' }),
  Tanh: () => ({ type: 'Tanh' }),
  Identity: () => ({ type: 'Identity' }),
  Dropout: (n) => (n.outputs.length > 1 && n.outputs[1] ? undefined : { type: 'Dropout' }),
  LeakyRelu: (n) => ({ type: 'LeakyReLU', negative_slope: attrFloat(n, 'alpha', 0.01) }),
  Softmax: (n) => ({ type: 'Softmax', dim: attrInt(n, 'axis', -1) }),
  LogSoftmax: (n) => ({ type: 'LogSoftmax', dim: attrInt(n, 'axis', -1) }),
  Gelu: (n) => ({ type: 'GELU', approximate: attrString(n, 'approximate', 'none') }),
};

const linearFromGemm: Matcher = (chain, at, init) => {
  const n = chain[at]!;
  if (n.op !== 'Gemm' || attrInt(n, 'transA', 0) !== 0 || attrFloat(n, 'alpha', 1) !== 1 || attrFloat(n, 'beta', 1) !== 1) return undefined;
  const w = init(n.inputs[1]);
  const b = n.inputs[2] ? init(n.inputs[2]) : undefined;
  if (!w || w.shape.length !== 2 || (n.inputs[2] && (!b || b.shape.length !== 1))) return undefined;
  const weight = attrInt(n, 'transB', 0) ? w : transpose2d(w);
  const [outF, inF] = weight.shape as [number, number];
  if (b && b.shape[0] !== outF) return undefined;
  return linear(inF, outF, weight, b, 1);
};

const linearFromMatMul: Matcher = (chain, at, init) => {
  const n = chain[at]!;
  const add = chain[at + 1];
  const w = n.op === 'MatMul' ? init(n.inputs[1]) : undefined;
  if (!w || w.shape.length !== 2) return undefined;
  const [inF, outF] = w.shape as [number, number];
  const b = add?.op === 'Add' && add.inputs[0] === n.outputs[0] ? init(add.inputs[1]) : undefined;
  const hasBias = b !== undefined && b.shape.length === 1 && b.shape[0] === outF;
  return linear(inF, outF, transpose2d(w), hasBias ? b : undefined, hasBias ? 2 : 1);
};

function linear(inF: number, outF: number, weight: Tensor, bias: Tensor | undefined, consumed: number): Layer {
  return {
    spec: { type: 'Linear', in_features: inF, out_features: outF, bias: bias !== undefined },
    params: bias ? [['weight', weight], ['bias', bias]] : [['weight', weight]],
    consumed,
  };
}

/** ONNX pads [begin..., end...] as torch's symmetric padding, or undefined when asymmetric. */
function symmetricPads(n: Node): [number, number] | undefined {
  if (attrString(n, 'auto_pad', 'NOTSET') !== 'NOTSET') return undefined;
  const p = attrInts(n, 'pads') ?? [0, 0, 0, 0];
  return p.length === 4 && p[0] === p[2] && p[1] === p[3] ? [p[0]!, p[1]!] : undefined;
}

const conv2d: Matcher = (chain, at, init) => {
  const n = chain[at]!;
  const w = n.op === 'Conv' ? init(n.inputs[1]) : undefined;
  const b = n.inputs[2] ? init(n.inputs[2]) : undefined;
  const pads = symmetricPads(n);
  if (!w || w.shape.length !== 4 || !pads || (n.inputs[2] && !b)) return undefined;
  const [outC, inPerGroup, kh, kw] = w.shape as [number, number, number, number];
  const groups = attrInt(n, 'group', 1);
  const spec: ModuleSpec = {
    type: 'Conv2d',
    in_channels: inPerGroup * groups,
    out_channels: outC,
    kernel_size: [kh, kw],
    stride: [...(attrInts(n, 'strides') ?? [1, 1])],
    padding: pads,
    dilation: [...(attrInts(n, 'dilations') ?? [1, 1])],
    groups,
    bias: b !== undefined,
  };
  return { spec, params: b ? [['weight', w], ['bias', b]] : [['weight', w]], consumed: 1 };
};

const pool2d: Matcher = (chain, at) => {
  const n = chain[at]!;
  if ((n.op !== 'MaxPool' && n.op !== 'AveragePool') || (n.outputs.length > 1 && n.outputs[1])) return undefined;
  const kernel = attrInts(n, 'kernel_shape');
  const pads = symmetricPads(n);
  if (!kernel || kernel.length !== 2 || !pads) return undefined;
  const common = { kernel_size: [...kernel], stride: [...(attrInts(n, 'strides') ?? [1, 1])], padding: pads, ceil_mode: attrInt(n, 'ceil_mode', 0) !== 0 };
  if (n.op === 'MaxPool') return { spec: { type: 'MaxPool2d', ...common, dilation: [...(attrInts(n, 'dilations') ?? [1, 1])] }, params: [], consumed: 1 };
  return { spec: { type: 'AvgPool2d', ...common, count_include_pad: attrInt(n, 'count_include_pad', 0) !== 0 }, params: [], consumed: 1 };
};

const batchNorm: Matcher = (chain, at, init) => {
  const n = chain[at]!;
  if (n.op !== 'BatchNormalization' || (n.outputs.length > 1 && n.outputs.slice(1).some((o) => o))) return undefined;
  const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => init(n.inputs[i]));
  if (!scale || !bias || !mean || !variance) return undefined;
  const spec: ModuleSpec = { type: 'BatchNorm2d', num_features: scale.shape[0], eps: attrFloat(n, 'epsilon', 1e-5) };
  // torch keeps a step counter beside the statistics; inference never reads it.
  const tracked = Tensor.from('int64', [], [0n]);
  return { spec, params: [['weight', scale], ['bias', bias], ['running_mean', mean], ['running_var', variance], ['num_batches_tracked', tracked]], consumed: 1 };
};

const layerNorm: Matcher = (chain, at, init) => {
  const n = chain[at]!;
  const scale = n.op === 'LayerNormalization' ? init(n.inputs[1]) : undefined;
  const bias = n.inputs[2] ? init(n.inputs[2]) : undefined;
  if (!scale || (n.inputs[2] && !bias) || (n.outputs.length > 1 && n.outputs.slice(1).some((o) => o))) return undefined;
  if (attrInt(n, 'axis', -1) !== -scale.shape.length) return undefined;
  const spec: ModuleSpec = { type: 'LayerNorm', normalized_shape: [...scale.shape], eps: attrFloat(n, 'epsilon', 1e-5), bias: bias !== undefined };
  return { spec, params: bias ? [['weight', scale], ['bias', bias]] : [['weight', scale]], consumed: 1 };
};

const flatten: Matcher = (chain, at) => {
  const n = chain[at]!;
  return n.op === 'Flatten' && attrInt(n, 'axis', 1) === 1 ? { spec: { type: 'Flatten' }, params: [], consumed: 1 } : undefined;
};

const activation: Matcher = (chain, at) => {
  const n = chain[at]!;
  const spec = ACTIVATIONS[n.op]?.(n);
  return spec ? { spec, params: [], consumed: 1 } : undefined;
};

const MATCHERS: readonly Matcher[] = [linearFromGemm, linearFromMatMul, conv2d, pool2d, batchNorm, layerNorm, flatten, activation];

/** The nodes of a single-input, single-output graph in chain order, or undefined if it branches. */
function asChain(graph: Graph, signature: Signature): Node[] | undefined {
  if (signature.inputs.size !== 1 || signature.outputs.size !== 1) return undefined;
  const producer = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const uses = new Map<string, number>();
  for (const n of graph.nodes) for (const i of n.inputs) if (!graph.initializers.has(i)) uses.set(i, (uses.get(i) ?? 0) + 1);
  const chain: Node[] = [];
  let value = [...signature.outputs.values()][0]!;
  const input = [...signature.inputs.values()][0]!;
  while (value !== input) {
    const n = producer.get(value);
    if (!n) return undefined;
    const data = n.inputs.filter((i) => i && !graph.initializers.has(i));
    if (data.length !== 1 || (uses.get(data[0]!) ?? 0) !== 1) return undefined;
    chain.unshift(n);
    value = data[0]!;
  }
  return chain.length === graph.nodes.length ? chain : undefined;
}

export function liftModule(graph: Graph, signature: Signature): Lifted | undefined {
  const chain = asChain(graph, signature);
  if (!chain || chain.length === 0) return undefined;
  const init = (name: string | undefined) => (name ? graph.initializers.get(name) : undefined);
  const modules: ModuleSpec[] = [];
  const weights = new Map<string, Tensor>();
  for (let at = 0; at < chain.length; ) {
    const layer = MATCHERS.reduce<Layer | undefined>((found, m) => found ?? m(chain, at, init), undefined);
    if (!layer) return undefined;
    for (const [name, tensor] of layer.params) weights.set(`${modules.length}.${name}`, tensor);
    modules.push(layer.spec);
    at += layer.consumed;
  }
  return { module: { type: 'Sequential', modules }, weights };
}
