import { attrInt, attrInts, nodeOuterReads, type Graph, type Node } from '../../core/graph.js';
import { formatDims, KernelError, normalizeAxis, required, type KernelFactory } from '../kernel.js';
import { Subgraph } from '../subgraph.js';
import { isBig, makeValue, sizeOfShape, type Value } from '../value.js';

/**
 * If, Loop and Scan. Their graphs are prepared with the node (src/runtime/subgraph.ts). The
 * executor hands a node holding graphs its own inputs followed by the values its graphs read from
 * the enclosing graph (nodeOuterReads, in that order); each graph picks the ones it reads.
 */

function graphAttr(node: Node, key: string, op: string): Graph {
  const a = node.attributes[key];
  if (!a || a.type !== 'graph') throw new KernelError(`${op} needs the graph attribute ${key}`);
  return a.value;
}

/** Runs a prepared graph with its inputs, taking its outer values from the node's implicit inputs. */
function binder(node: Node, sub: Subgraph): (inputs: readonly (Value | undefined)[], own: readonly (Value | undefined)[]) => Value[] {
  const implicit = nodeOuterReads(node);
  const first = node.inputs.length;
  const at = sub.outer.map((name) => first + implicit.indexOf(name));
  return (inputs, own) => sub.run([...own, ...at.map((i) => inputs[i])]);
}

/** The truth of a one-element bool (or numeric) tensor. */
function truth(v: Value, op: string, what: string): boolean {
  if (v.data.length !== 1) throw new KernelError(`${op}: ${what} must hold one element, got shape ${formatDims(v.shape)}`);
  return Number(v.data[0]) !== 0;
}

function copy(dst: Value['data'], at: number, src: Value['data'], from: number, count: number): void {
  // Same element type on both sides (dtypes are checked before): a typed-array block copy.
  (dst as Float64Array).set((src as Float64Array).subarray(from, from + count), at);
}

/** Values of one shape stacked along a new axis (Loop's and Scan's scan outputs); reversed when asked. */
function stack(values: readonly Value[], axis: number, reverse: boolean, op: string, what: string): Value {
  const first = values[0]!;
  for (const v of values) {
    if (v.dtype !== first.dtype || v.shape.length !== first.shape.length || v.shape.some((d, i) => d !== first.shape[i])) {
      throw new KernelError(`${op}: ${what} changes from ${first.dtype} ${formatDims(first.shape)} to ${v.dtype} ${formatDims(v.shape)} between iterations`);
    }
  }
  const a = normalizeAxis(axis, first.shape.length + 1, op);
  const shape = [...first.shape.slice(0, a), values.length, ...first.shape.slice(a)];
  const out = makeValue(first.dtype, shape);
  const outer = sizeOfShape(first.shape.slice(0, a));
  const inner = sizeOfShape(first.shape.slice(a));
  const n = values.length;
  values.forEach((v, k) => {
    const slot = reverse ? n - 1 - k : k;
    for (let o = 0; o < outer; o++) copy(out.data, (o * n + slot) * inner, v.data, o * inner, inner);
  });
  return out;
}

/** Element `index` of `v` along `axis`, that axis removed. */
function sliceAxis(v: Value, axis: number, index: number): Value {
  const shape = [...v.shape.slice(0, axis), ...v.shape.slice(axis + 1)];
  const out = makeValue(v.dtype, shape);
  const outer = sizeOfShape(v.shape.slice(0, axis));
  const inner = sizeOfShape(v.shape.slice(axis + 1));
  const len = v.shape[axis]!;
  for (let o = 0; o < outer; o++) copy(out.data, o * inner, v.data, (o * len + index) * inner, inner);
  return out;
}

/** An empty stack for a scan output no iteration produced: its declared shape where the graph says it. */
function emptyStack(graph: Graph, index: number, axis: number, op: string): Value {
  const info = graph.outputs[index]!;
  const dims = info.shape?.every((d): d is number => typeof d === 'number') ? info.shape : [];
  const a = normalizeAxis(axis, dims.length + 1, op);
  return makeValue(info.dtype, [...dims.slice(0, a), 0, ...dims.slice(a)]);
}

const If: KernelFactory = {
  prepare(node) {
    const thenBranch = new Subgraph(graphAttr(node, 'then_branch', 'If'), 'then_branch');
    const elseBranch = new Subgraph(graphAttr(node, 'else_branch', 'If'), 'else_branch');
    for (const b of [thenBranch, elseBranch]) {
      if (b.inputCount !== 0) throw new KernelError(`If: ${b.what} must take no inputs, it takes ${b.inputCount}`);
      if (b.graph.outputs.length !== node.outputs.length) throw new KernelError(`If: ${b.what} has ${b.graph.outputs.length} outputs, the node ${node.outputs.length}`);
    }
    const runThen = binder(node, thenBranch);
    const runElse = binder(node, elseBranch);
    return (inputs) => (truth(required(inputs, 0, 'If'), 'If', 'cond') ? runThen(inputs, []) : runElse(inputs, []));
  },
};

/**
 * Loop: body(iteration_num, cond, carried...) -> (cond, carried..., scan outputs...). Runs while
 * the trip count M (when given) is not reached and the condition holds; the body's condition
 * output decides each next iteration (as onnxruntime and ONNX's reference evaluator do).
 */
const Loop: KernelFactory = {
  prepare(node) {
    const body = new Subgraph(graphAttr(node, 'body', 'Loop'), 'body');
    const carriedCount = Math.max(0, node.inputs.length - 2);
    if (body.inputCount !== carriedCount + 2) throw new KernelError(`Loop: body takes ${body.inputCount} inputs; the node gives it 2 + ${carriedCount} loop-carried values`);
    const scanCount = body.graph.outputs.length - 1 - carriedCount;
    if (scanCount < 0) throw new KernelError(`Loop: body has ${body.graph.outputs.length} outputs, fewer than 1 + ${carriedCount} loop-carried values`);
    if (node.outputs.length > carriedCount + scanCount) throw new KernelError(`Loop: the node has ${node.outputs.length} outputs, the body gives ${carriedCount + scanCount}`);
    const runBody = binder(node, body);
    return (inputs) => {
      const trip = inputs[0];
      const maxTrip = trip ? Number(trip.data[0]) : Infinity;
      if (trip && trip.data.length !== 1) throw new KernelError(`Loop: M must hold one element, got shape ${formatDims(trip.shape)}`);
      let keepGoing = inputs[1] ? truth(inputs[1], 'Loop', 'cond') : true;
      let carried = Array.from({ length: carriedCount }, (_, k) => required(inputs, 2 + k, 'Loop'));
      const scans: Value[][] = Array.from({ length: scanCount }, () => []);
      for (let i = 0; i < maxTrip && keepGoing; i++) {
        const iteration = makeValue('int64', [], new BigInt64Array([BigInt(i)]));
        const cond = makeValue('bool', [], new Uint8Array([1]));
        const out = runBody(inputs, [iteration, cond, ...carried]);
        keepGoing = truth(out[0]!, 'Loop', 'the body\'s condition output');
        carried = out.slice(1, 1 + carriedCount);
        for (let k = 0; k < scanCount; k++) scans[k]!.push(out[1 + carriedCount + k]!);
      }
      const stacked = scans.map((list, k) => (list.length ? stack(list, 0, false, 'Loop', `scan output ${k}`) : emptyStack(body.graph, 1 + carriedCount + k, 0, 'Loop')));
      return [...carried, ...stacked];
    };
  },
};

/** Scan's attributes, with defaults and lengths checked. */
function scanAxes(node: Node, key: string, count: number, fallback: number): number[] {
  const given = attrInts(node, key);
  if (given && given.length !== count) throw new KernelError(`Scan: ${key} must have ${count} entries, got ${given.length}`);
  return given ? [...given] : new Array<number>(count).fill(fallback);
}

/**
 * Scan from opset 9: body(state..., scan elements...) -> (state..., scan output elements...). Each
 * scan input is cut along its axis (from the end when its direction is 1), each scan output
 * stacked along its axis (in reverse order when its direction is 1).
 */
function scan9(node: Node): (states: Value[], scanInputs: Value[], run: (own: readonly Value[]) => Value[], body: Subgraph) => Value[] {
  const scanInputCount = attrInt(node, 'num_scan_inputs', -1);
  const body = graphAttr(node, 'body', 'Scan');
  const stateCount = body.inputs.length - scanInputCount;
  const scanOutputCount = body.outputs.length - stateCount;
  const inputAxes = scanAxes(node, 'scan_input_axes', scanInputCount, 0);
  const inputDirections = scanAxes(node, 'scan_input_directions', scanInputCount, 0);
  const outputAxes = scanAxes(node, 'scan_output_axes', scanOutputCount, 0);
  const outputDirections = scanAxes(node, 'scan_output_directions', scanOutputCount, 0);
  return (states, scanInputs, run, sub) => {
    const axes = scanInputs.map((v, j) => normalizeAxis(inputAxes[j]!, v.shape.length, 'Scan'));
    const length = scanInputs.length ? scanInputs[0]!.shape[axes[0]!]! : 0;
    scanInputs.forEach((v, j) => {
      if (v.shape[axes[j]!] !== length) throw new KernelError(`Scan: scan input ${j} has ${v.shape[axes[j]!]} steps along axis ${axes[j]}, scan input 0 has ${length}`);
    });
    let state = states;
    const outputs: Value[][] = Array.from({ length: scanOutputCount }, () => []);
    for (let t = 0; t < length; t++) {
      const elements = scanInputs.map((v, j) => sliceAxis(v, axes[j]!, inputDirections[j] ? length - 1 - t : t));
      const out = run([...state, ...elements]);
      state = out.slice(0, stateCount);
      for (let k = 0; k < scanOutputCount; k++) outputs[k]!.push(out[stateCount + k]!);
    }
    const stacked = outputs.map((list, k) =>
      list.length ? stack(list, outputAxes[k]!, outputDirections[k] !== 0, 'Scan', `scan output ${k}`) : emptyStack(sub.graph, stateCount + k, outputAxes[k]!, 'Scan'),
    );
    return [...state, ...stacked];
  };
}

const Scan: KernelFactory = {
  prepare(node, opset) {
    const body = new Subgraph(graphAttr(node, 'body', 'Scan'), 'body');
    const scanInputCount = attrInt(node, 'num_scan_inputs', -1);
    if (scanInputCount < 1) throw new KernelError('Scan needs num_scan_inputs of at least 1');
    const runBody = binder(node, body);
    if (opset >= 9) {
      const stateCount = node.inputs.length - scanInputCount;
      if (stateCount < 0 || body.inputCount !== node.inputs.length) throw new KernelError(`Scan: body takes ${body.inputCount} inputs, the node gives it ${node.inputs.length}`);
      const core = scan9(node);
      return (inputs) => {
        const own = node.inputs.map((_, i) => required(inputs, i, 'Scan'));
        return core(own.slice(0, stateCount), own.slice(stateCount), (values) => runBody(inputs, values), body);
      };
    }
    // Opset 8: an optional sequence_lens first, a batch axis 0 on every input and output, the
    // sequence along axis 1, `directions` for the scan inputs; each batch entry is its own scan.
    const stateCount = node.inputs.length - 1 - scanInputCount;
    if (stateCount < 0 || body.inputCount !== node.inputs.length - 1) throw new KernelError(`Scan: body takes ${body.inputCount} inputs, the node gives it ${node.inputs.length - 1}`);
    const directions = scanAxes(node, 'directions', scanInputCount, 0);
    const scanOutputCount = body.graph.outputs.length - stateCount;
    return (inputs) => {
      const own = node.inputs.slice(1).map((_, i) => required(inputs, 1 + i, 'Scan'));
      const batch = own[0]?.shape[0] ?? 0;
      for (const v of own) if (v.shape[0] !== batch) throw new KernelError(`Scan: every input needs the batch size ${batch} along axis 0, got ${formatDims(v.shape)}`);
      const lengths = inputs[0];
      const perBatch: Value[][] = [];
      for (let b = 0; b < batch; b++) {
        const states = own.slice(0, stateCount).map((v) => sliceAxis(v, 0, b));
        let scanInputs = own.slice(stateCount).map((v) => sliceAxis(v, 0, b));
        const full = scanInputs[0]?.shape[0] ?? 0;
        const len = lengths ? Number(isBig(lengths.data) ? lengths.data[b]! : lengths.data[b]!) : full;
        if (!(len >= 0 && len <= full)) throw new KernelError(`Scan: sequence_lens[${b}] is ${len}, outside [0, ${full}]`);
        let state = states;
        const outputs: Value[][] = Array.from({ length: scanOutputCount }, () => []);
        for (let t = 0; t < len; t++) {
          const elements = scanInputs.map((v, j) => sliceAxis(v, 0, directions[j] ? len - 1 - t : t));
          const out = runBody(inputs, [...state, ...elements]);
          state = out.slice(0, stateCount);
          for (let k = 0; k < scanOutputCount; k++) outputs[k]!.push(out[stateCount + k]!);
        }
        scanInputs = [];
        // Steps past a shorter sequence are zeros, as in onnxruntime.
        const stacked = outputs.map((list, k) => {
          if (!list.length) return emptyStack(body.graph, stateCount + k, 0, 'Scan');
          const s = stack(list, 0, false, 'Scan', `scan output ${k}`);
          if (len === full) return s;
          const padded = makeValue(s.dtype, [full, ...s.shape.slice(1)]);
          copy(padded.data, 0, s.data, 0, s.data.length);
          return padded;
        });
        perBatch.push([...state, ...stacked]);
      }
      const count = stateCount + scanOutputCount;
      return Array.from({ length: count }, (_, k) => (batch ? stack(perBatch.map((r) => r[k]!), 0, false, 'Scan', `output ${k}`) : emptyStack(body.graph, k, 0, 'Scan')));
    };
  },
};

export const CONTROL_FLOW_OPS: Readonly<Record<string, KernelFactory>> = { If, Loop, Scan };
