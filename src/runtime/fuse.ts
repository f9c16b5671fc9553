import type { Graph, Node } from '../core/graph.js';
import type { RunKernel } from './kernel.js';
import { isHalf, roundHalf, type Value } from './value.js';

/**
 * What the planner folded into a node: the activation (and, for MatMul, the bias add) that
 * followed it. A kernel that can apply them while its output tile is still in cache (the
 * WebAssembly GEMM's epilogue) does; otherwise it runs the folded nodes' own kernels on its
 * result, so a fused node always means exactly what the original nodes meant.
 */
export interface Fusion {
  /** Clamp the result to [lo, hi] (Relu: [0, Infinity]; Clip with constant bounds). */
  readonly clamp?: readonly [number, number];
  /** A MatMul's bias: the constant added to its result, and whether it was Add's first input. */
  readonly bias?: { readonly name: string; readonly first: boolean };
  /** The folded nodes, in order; each reads the previous result (and its own constants). */
  readonly then: readonly Node[];
  /** The name the first folded node reads (the unfused node's output). */
  readonly result: string;
}

const fusions = new WeakMap<Node, Fusion>();
const applied = new WeakSet<Value>();

export function fusionOf(node: Node): Fusion | undefined {
  return fusions.get(node);
}

/** Called by a kernel on a result it already gave its node's whole fusion (bias and clamp). */
export function markFused(value: Value): Value {
  applied.add(value);
  return value;
}

/**
 * A fused node's kernel: the node's own, followed, for a result the kernel did not finish (one
 * not passed to markFused), by the folded nodes' kernels. `constant` gives the folded nodes'
 * other inputs, which are initializers.
 */
export function prepareFused(node: Node, prepare: (node: Node) => RunKernel, constant: (name: string) => Value | undefined): RunKernel {
  const run = prepare(node);
  const fusion = fusions.get(node);
  if (!fusion) return run;
  const stages = fusion.then.map((n, i) => ({ node: n, run: prepare(n), reads: i === 0 ? fusion.result : fusion.then[i - 1]!.outputs[0]! }));
  return (inputs) => {
    const results = run(inputs);
    let r = results[0]!;
    if (applied.has(r)) return results;
    for (const stage of stages) {
      // ONNX rounds a float16 result after every op, so the unfused chain does too
      if (isHalf(r.dtype)) roundHalf(r.dtype, r.data as Float32Array);
      const prev = r;
      r = stage.run(stage.node.inputs.map((name) => (name === stage.reads ? prev : name === '' ? undefined : constant(name))))[0]!;
    }
    return [r];
  };
}

const isDefault = (node: Node): boolean => node.domain === '' || node.domain === 'ai.onnx';

/** A constant scalar's value, or undefined when the name is not a one-element initializer. */
function scalar(graph: Graph, name: string | undefined): number | undefined {
  if (name === undefined || name === '') return undefined;
  const t = graph.initializers.get(name);
  if (!t || (t.dtype !== 'float32' && t.dtype !== 'float64' && t.dtype !== 'float16') || t.shape.reduce((a, b) => a * b, 1) !== 1) return undefined;
  return t.toFloat32()[0];
}

/** The clamp an activation node applies, when it is one the GEMM epilogue can do. */
function clampOf(node: Node, graph: Graph): readonly [number, number] | undefined {
  if (!isDefault(node)) return undefined;
  if (node.op === 'Relu') return [0, Infinity];
  if (node.op !== 'Clip') return undefined;
  if (graph.opset < 11) {
    const lo = node.attributes.min;
    const hi = node.attributes.max;
    return [lo && lo.type === 'float' ? lo.value : -Infinity, hi && hi.type === 'float' ? hi.value : Infinity];
  }
  const loName = node.inputs[1];
  const hiName = node.inputs[2];
  const lo = loName ? scalar(graph, loName) : -Infinity;
  const hi = hiName ? scalar(graph, hiName) : Infinity;
  return lo === undefined || hi === undefined ? undefined : [lo, hi];
}

/**
 * Folds Conv/Gemm/MatMul + Relu/Clip, and MatMul + Add of a constant vector (+ Relu/Clip), into
 * one node each. Only a result read by nothing but the folded node (and not a graph output) is
 * folded, so no value anyone reads disappears. `nodes` must be in execution order.
 */
export function fuseNodes(given: readonly Node[], graph: Graph): Node[] {
  // Exporters route weights through Identity nodes (torch.onnx does for shared parameters); readers
  // of such an output read the initializer itself here, so a bias is seen to be a constant. The
  // Identity stays, for graph outputs and subgraphs that read its name.
  const alias = new Map<string, string>();
  for (const node of given) {
    if (isDefault(node) && node.op === 'Identity' && node.inputs.length === 1 && graph.initializers.has(node.inputs[0]!) && node.outputs[0]) alias.set(node.outputs[0], node.inputs[0]!);
  }
  const nodes = alias.size
    ? given.map((node) => (node.inputs.some((i) => alias.has(i)) ? { ...node, inputs: node.inputs.map((i) => alias.get(i) ?? i) } : node))
    : given;
  const readers = new Map<string, number>();
  for (const node of nodes) for (const i of node.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
  for (const o of graph.outputs) readers.set(o.name, (readers.get(o.name) ?? 0) + 2);
  const onlyReader = (value: string): number | undefined => {
    if (readers.get(value) !== 1) return undefined;
    for (let i = 0; i < nodes.length; i++) if (nodes[i]!.inputs.includes(value)) return i;
    return undefined;
  };
  const dropped = new Set<number>();
  const out: Node[] = [];
  for (let index = 0; index < nodes.length; index++) {
    if (dropped.has(index)) continue;
    const node = nodes[index]!;
    if (!isDefault(node) || !['Conv', 'Gemm', 'MatMul'].includes(node.op) || node.outputs.length !== 1) {
      out.push(node);
      continue;
    }
    const then: Node[] = [];
    let result = node.outputs[0]!;
    let bias: Fusion['bias'];
    let clamp: Fusion['clamp'];
    let next = onlyReader(result);
    if (node.op === 'MatMul' && next !== undefined) {
      const add = nodes[next]!;
      const other = add.inputs[0] === result ? add.inputs[1] : add.inputs[0];
      const t = other === undefined ? undefined : graph.initializers.get(other);
      if (isDefault(add) && add.op === 'Add' && add.inputs.length === 2 && add.inputs[0] !== add.inputs[1] && t && t.shape.length === 1 && graph.opset >= 7) {
        bias = { name: other!, first: add.inputs[1] === result };
        then.push(add);
        dropped.add(next);
        result = add.outputs[0]!;
        next = onlyReader(result);
      }
    }
    if (next !== undefined) {
      const activation = nodes[next]!;
      const c = activation.inputs[0] === result ? clampOf(activation, graph) : undefined;
      if (c) {
        clamp = c;
        then.push(activation);
        dropped.add(next);
        result = activation.outputs[0]!;
      }
    }
    if (!then.length) {
      out.push(node);
      continue;
    }
    const fused: Node = { ...node, inputs: bias ? [...node.inputs, bias.name] : node.inputs, outputs: [result] };
    fusions.set(fused, { clamp, bias, then, result: node.outputs[0]! });
    out.push(fused);
  }
  return out;
}
