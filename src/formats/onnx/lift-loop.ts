import { isFloat } from '../../core/dtypes.js';
import { UsageError } from '../../core/errors.js';
import { attr, attrInt, nodeOuterReads, type Graph, type Node } from '../../core/graph.js';
import { Tensor } from '../../core/tensor.js';
import { Session } from '../../runtime/executor.js';
import { gateMajor, GRU_ORDER, LSTM_ORDER, reorderBias } from '../tf/rnn.js';

/**
 * tf2onnx's Loop of a Keras LSTM or GRU cell, lifted back to one ONNX LSTM or GRU node. When
 * tf2onnx does not rewrite Keras 3's recurrent layer (its While loop over a TensorList), it emits
 * an ONNX Loop whose body is the cell: the time step read by Gather(x, counter) from the
 * time-major input outside the body, a MatMul by the kernel and one (reset_after) or two by the
 * recurrent kernel, the gates split, Sigmoid/Tanh, the weights carried through the loop
 * unchanged, and each step's h as a scan output. The TF writers (which unroll or loop LSTM/GRU)
 * and the module spec (no nested graphs) cannot hold a Loop; they can hold the lifted node.
 *
 * Strict on two levels. The structure must be that of a Keras cell (the ops below, one input
 * kernel and one recurrent kernel, the default activations' counts, a counter from 0 by 1 indexing
 * the input, trip count equal to the sequence length); then the runtime runs the model with the
 * Loop and with the lifted node on the same made-up inputs, and the Loop's outputs must match
 * (a gate order or bias layout guessed wrong shows there). Anything else stays a Loop, and the
 * writer that cannot hold it says so as before.
 *
 * Weights as Keras lays them out (rnn.ts imports the same cell from a SavedModel): LSTM gates
 * i, f, c, o along the kernel's columns (ONNX: i, o, f, c), GRU z, r, h as ONNX; a GRU bias of
 * [2, 3H] (reset_after=True) is [Wb; Rb] with linear_before_reset=1.
 */

const BODY_OPS = new Set(['Identity', 'Constant', 'MatMul', 'Add', 'Sub', 'Mul', 'Split', 'Squeeze', 'Unsqueeze', 'Slice', 'Gather', 'Cast', 'Less', 'And', 'Sigmoid', 'Tanh']);

/** Made-up input sizes for the check run, where the model leaves a size open. */
const PROBE_DIM = 2;

/** The graph with every recognised Loop replaced; the same object when there is none. */
export function liftRecurrentLoops(graph: Graph): Graph {
  if (!graph.nodes.some((n) => n.op === 'Loop' && !n.domain)) return graph;
  let current = graph;
  for (const node of graph.nodes) {
    if (node.op !== 'Loop' || node.domain) continue;
    const lifted = liftOne(current, node);
    if (lifted) current = lifted;
  }
  return current;
}

/** The values a graph reads: node inputs, nested graphs' outer reads and the graph outputs. */
function readValues(graph: Graph): Set<string> {
  const read = new Set<string>(graph.outputs.map((o) => o.name));
  for (const n of graph.nodes) for (const v of [...n.inputs, ...nodeOuterReads(n)]) read.add(v);
  return read;
}

/** A value's constant tensor: an initializer or a Constant node's value. */
function constants(graph: Graph): Map<string, Tensor> {
  const out = new Map<string, Tensor>(graph.initializers);
  for (const n of graph.nodes) {
    const v = n.op === 'Constant' && !n.domain ? n.attributes['value'] : undefined;
    if (v?.type === 'tensor' && n.outputs[0]) out.set(n.outputs[0], v.value);
  }
  return out;
}

function scalar(t: Tensor | undefined): number | undefined {
  if (!t || t.shape.reduce((a, b) => a * b, 1) !== 1) return undefined;
  const v = Number(t.toNumbers()[0]);
  return Number.isFinite(v) ? v : undefined;
}

function liftOne(graph: Graph, loop: Node): Graph | undefined {
  const body = loop.attributes['body'];
  if (body?.type !== 'graph') return undefined;
  const g = body.value;
  const carried = loop.inputs.length - 2;
  const scans = g.outputs.length - 1 - carried;
  if (carried < 1 || scans < 0 || g.inputs.length !== carried + 2 || loop.outputs.length !== carried + scans) return undefined;
  if (g.nodes.some((n) => n.domain || !BODY_OPS.has(n.op))) return undefined;

  const outer = constants(graph);
  const inner = constants(g);
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  /** A body value through Identity nodes. */
  const root = (v: string): string => {
    for (let i = 0; i < 64; i++) {
      const p = producer.get(v);
      if (!p || p.op !== 'Identity') return v;
      v = p.inputs[0]!;
    }
    return v;
  };
  const inName = (j: number) => g.inputs[2 + j]!.name;
  const outName = (j: number) => g.outputs[1 + j]!.name;
  const carriedOf = (v: string) => {
    const j = g.inputs.findIndex((i) => i.name === root(v)) - 2;
    return j >= 0 ? j : undefined;
  };
  const passthrough = (j: number) => root(outName(j)) === inName(j);

  // The counter: from a constant 0, plus a constant 1 per step, indexing the outer input by Gather.
  const gathers = g.nodes.filter((n) => n.op === 'Gather');
  if (gathers.length !== 1) return undefined;
  const gather = gathers[0]!;
  const counter = carriedOf(gather.inputs[1] ?? '');
  const xName = gather.inputs[0] ?? '';
  if (counter === undefined || attrInt(gather, 'axis', 0) !== 0 || producer.has(xName) || g.inputs.some((i) => i.name === xName)) return undefined;
  if (scalar(outer.get(loop.inputs[2 + counter]!)) !== 0) return undefined;
  const step = producer.get(root(outName(counter)));
  if (!step || step.op !== 'Add' || !step.inputs.some((v) => root(v) === inName(counter)) || !step.inputs.some((v) => scalar(inner.get(v)) === 1)) return undefined;
  const trips = scalar(outer.get(loop.inputs[0]!));
  if (trips === undefined || trips < 1) return undefined;

  // The products: by the input kernel (of the time step) and by the recurrent kernel.
  const matmuls = g.nodes.filter((n) => n.op === 'MatMul');
  const kernelOf = (n: Node) => {
    const j = carriedOf(n.inputs[1] ?? '');
    return j !== undefined && passthrough(j) ? j : undefined;
  };
  const fromInput = matmuls.filter((n) => root(n.inputs[0] ?? '') === gather.outputs[0]);
  const recurrentProducts = matmuls.filter((n) => !fromInput.includes(n));
  if (fromInput.length !== 1 || recurrentProducts.length < 1 || recurrentProducts.length > 2) return undefined;
  const kernelJ = kernelOf(fromInput[0]!);
  const recurrentJs = new Set(recurrentProducts.map(kernelOf));
  if (kernelJ === undefined || recurrentJs.size !== 1) return undefined;
  const recurrentJ = [...recurrentJs][0];
  if (recurrentJ === undefined || recurrentJ === kernelJ) return undefined;
  // h: the state a recurrent product reads directly (a reset_after=False GRU's second reads r * h).
  const hJ = recurrentProducts.map((n) => carriedOf(n.inputs[0] ?? '')).find((j) => j !== undefined && !passthrough(j));
  if (hJ === undefined) return undefined;

  const count = (op: string) => g.nodes.filter((n) => n.op === op).length;
  const kind = count('Sigmoid') === 3 && count('Tanh') === 2 ? 'LSTM' : count('Sigmoid') === 2 && count('Tanh') === 1 ? 'GRU' : undefined;
  if (!kind || (kind === 'LSTM' && recurrentProducts.length !== 1)) return undefined;
  const states = [...Array(carried).keys()].filter((j) => j !== counter && !passthrough(j));
  if (states.length !== (kind === 'LSTM' ? 2 : 1) || !states.includes(hJ)) return undefined;
  const cJ = states.find((j) => j !== hJ);
  const weights = [...Array(carried).keys()].filter((j) => passthrough(j) && j !== kernelJ && j !== recurrentJ);
  if (weights.length > 1) return undefined;
  const biasJ = weights[0];
  // Each scan output is the step's new h.
  for (let k = 0; k < scans; k++) if (root(g.outputs[1 + carried + k]!.name) !== root(outName(hJ))) return undefined;

  const kernel = outer.get(loop.inputs[2 + kernelJ]!);
  const recurrent = outer.get(loop.inputs[2 + recurrentJ]!);
  const bias = biasJ === undefined ? undefined : outer.get(loop.inputs[2 + biasJ]!);
  if (!kernel || !recurrent || (biasJ !== undefined && !bias) || kernel.shape.length !== 2 || recurrent.shape.length !== 2) return undefined;
  if (!isFloat(kernel.dtype) || kernel.dtype !== recurrent.dtype || (bias && bias.dtype !== kernel.dtype) || kernel.dtype !== 'float32') return undefined;
  const hidden = recurrent.shape[0]!;
  const gates = kind === 'LSTM' ? 4 : 3;
  const gh = gates * hidden;
  if (recurrent.shape[1] !== gh || kernel.shape[1] !== gh) return undefined;
  const order = kind === 'LSTM' ? LSTM_ORDER : GRU_ORDER;
  const b = new Float32Array(2 * gh);
  if (bias) {
    const values = bias.toFloat32();
    if (bias.shape.length === 1 && bias.shape[0] === gh) b.set(reorderBias(values, hidden, order));
    else if (kind === 'GRU' && bias.shape.length === 2 && bias.shape[0] === 2 && bias.shape[1] === gh) b.set(values);
    else return undefined;
  }
  const linearBeforeReset = kind === 'GRU' && recurrentProducts.length === 1 ? 1 : 0;

  // The read values the Loop gives: the counter's final value has no counterpart in the lifted node.
  const read = readValues(graph);
  if (loop.outputs[counter] && read.has(loop.outputs[counter]!)) return undefined;

  const names = new Set<string>([...graph.initializers.keys(), ...graph.inputs.map((i) => i.name), ...graph.nodes.flatMap((n) => n.outputs)]);
  const base = loop.name || loop.outputs.find(Boolean) || 'loop';
  const fresh = (suffix: string) => {
    let name = `${base}/${suffix}`;
    for (let i = 1; names.has(name); i++) name = `${base}/${suffix}_${i}`;
    names.add(name);
    return name;
  };
  const axesInput = graph.opset >= 13;
  const nodes: Node[] = [];
  const add = (op: string, inputs: string[], outputs: string[], attributes: Node['attributes'] = {}) => {
    nodes.push({ name: outputs[0]!, op, domain: '', inputs, outputs, attributes });
    return outputs[0]!;
  };
  const initializers = new Map(graph.initializers);
  const constAxes = (axes: number[]) => {
    const name = fresh('axes');
    initializers.set(name, Tensor.from('int64', [axes.length], axes.map(BigInt)));
    return name;
  };
  const reshape = (op: 'Squeeze' | 'Unsqueeze', v: string, axes: number[], out: string) =>
    axesInput ? add(op, [v, constAxes(axes)], [out]) : add(op, [v], [out], { axes: attr.ints(axes) });

  const W = fresh('W');
  const R = fresh('R');
  const B = fresh('B');
  initializers.set(W, gateMajor(kernel, hidden, order));
  initializers.set(R, gateMajor(recurrent, hidden, order));
  initializers.set(B, Tensor.from('float32', [1, 2 * gh], b));
  const h0 = reshape('Unsqueeze', loop.inputs[2 + hJ]!, [0], fresh('initial_h'));
  const c0 = cJ === undefined ? undefined : reshape('Unsqueeze', loop.inputs[2 + cJ]!, [0], fresh('initial_c'));
  const Y = fresh('Y');
  const Yh = fresh('Y_h');
  const Yc = kind === 'LSTM' ? fresh('Y_c') : undefined;
  const attributes = { hidden_size: attr.int(hidden), ...(kind === 'GRU' ? { linear_before_reset: attr.int(linearBeforeReset) } : {}) };
  nodes.push({ name: loop.name || Y, op: kind, domain: '', inputs: [xName, W, R, B, '', h0, ...(c0 ? [c0] : [])], outputs: [Y, Yh, ...(Yc ? [Yc] : [])], attributes });
  for (let j = 0; j < carried; j++) {
    const out = loop.outputs[j];
    if (!out || j === counter) continue;
    if (j === hJ) reshape('Squeeze', Yh, [0], out);
    else if (j === cJ) reshape('Squeeze', Yc!, [0], out);
    else add('Identity', [loop.inputs[2 + j]!], [out]);
  }
  for (let k = 0; k < scans; k++) {
    const out = loop.outputs[carried + k];
    if (out) reshape('Squeeze', Y, [1], out);
  }
  const at = graph.nodes.indexOf(loop);
  const lifted: Graph = { ...graph, initializers, nodes: [...graph.nodes.slice(0, at), ...nodes, ...graph.nodes.slice(at + 1)] };

  // The check: both graphs on the same made-up inputs; the Loop's read outputs must match, and
  // the loop must run as many steps as the input has (the lifted node runs them all).
  const compared = loop.outputs.filter((o, j) => o && read.has(o) && j !== counter);
  const before = probe(graph, [...compared, xName]);
  const after = before && probe(lifted, compared);
  if (!before || !after) return undefined;
  if (before[xName]!.shape[0] !== trips) return undefined;
  for (const name of compared) if (!close(before[name]!, after[name]!)) return undefined;
  return lifted;
}

/** The named values of one run on made-up inputs (deterministic); undefined when it cannot run. */
function probe(graph: Graph, names: readonly string[]): Record<string, Tensor> | undefined {
  const inputs = graph.inputs.filter((i) => !graph.initializers.has(i.name));
  if (inputs.some((i) => i.shape === null || i.dtype !== 'float32')) return undefined;
  let seed = 12345;
  const random = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed / 2 ** 32) * 2 - 1;
  };
  const feeds = Object.fromEntries(
    inputs.map((i) => {
      const shape = i.shape!.map((d) => (typeof d === 'number' ? d : PROBE_DIM));
      const n = shape.reduce((a, b) => a * b, 1);
      return [i.name, Tensor.from('float32', shape, Float32Array.from({ length: n }, random))];
    }),
  );
  try {
    return new Session({ ...graph, outputs: names.map((name) => ({ name, dtype: 'float32', shape: null })) }, { once: true }).run(feeds);
  } catch (e) {
    if (e instanceof UsageError) return undefined;
    throw e;
  }
}

/** Within 1e-4 × max(1, |ref|), the zoo's and verification's tolerance. */
function close(ref: Tensor, got: Tensor): boolean {
  if (ref.shape.length !== got.shape.length || ref.shape.some((d, i) => d !== got.shape[i])) return false;
  const a = ref.toFloat32();
  const b = got.toFloat32();
  for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i]! - b[i]!) <= 1e-4 * Math.max(1, Math.abs(a[i]!)))) return false;
  return true;
}
