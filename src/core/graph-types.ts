import type { DType } from './dtypes.js';
import type { Graph, Node } from './graph.js';

/**
 * Element types checked at read time, where the graph itself says them: the graph inputs, the
 * initializers, and what follows from them through ops whose output type is exact (an Add of two
 * float32 values is float32, a comparison is bool). An op whose inputs must share one element
 * type (ONNX's type constraint T on both, which the runtime's kernels enforce when they run) and
 * whose inputs are known to differ is a broken graph, refused with the node's name before anything
 * runs. Values of other ops stay unknown, and unknown types are never a fault: the check errs on
 * the side of accepting a graph.
 */

/** Every input (the first `n`, where given) shares one type, which the output has. */
const SAME: Readonly<Record<string, number>> = {
  Add: 2, Sub: 2, Mul: 2, Div: 2, Mod: 2, PRelu: 2, MatMul: 2, Gemm: 3,
  Max: Infinity, Min: Infinity, Sum: Infinity, Mean: Infinity, Concat: Infinity,
};
/** The output has input 0's type. */
const FOLLOWS_FIRST = new Set(['Identity', 'Relu', 'Sigmoid', 'Tanh', 'Neg', 'Abs', 'Exp', 'Log', 'Sqrt', 'Softmax', 'Transpose', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']);
/** Two inputs of one type, a bool output. */
const COMPARE = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual']);

export interface TypeFault {
  readonly node: string;
  readonly op: string;
  readonly problem: string;
}

/** The first node whose inputs are known to break its type constraint, or undefined. */
export function typeFault(graph: Graph, ordered: readonly Node[]): TypeFault | undefined {
  const types = new Map<string, DType>();
  for (const i of graph.inputs) types.set(i.name, i.dtype);
  for (const [name, t] of graph.initializers) types.set(name, t.dtype);
  for (const node of ordered) {
    if (node.domain && node.domain !== 'ai.onnx') continue;
    let out: DType | undefined;
    const check = (indices: readonly number[]): TypeFault | undefined => {
      const known = indices.map((i) => [node.inputs[i], types.get(node.inputs[i] ?? '')] as const).filter(([name, t]) => name && t !== undefined);
      const first = known[0];
      const other = known.find(([, t]) => t !== first?.[1]);
      if (first && other) return { node: node.name, op: node.op, problem: `inputs of one element type, but ${first[0]} is ${first[1]} and ${other[0]} is ${other[1]}` };
      out = first?.[1];
      return undefined;
    };
    const arity = SAME[node.op];
    if (arity !== undefined) {
      const fault = check([...node.inputs.keys()].slice(0, arity === Infinity ? undefined : arity));
      if (fault) return fault;
    } else if (COMPARE.has(node.op)) {
      const fault = check([0, 1]);
      if (fault) return fault;
      out = 'bool';
    } else if (node.op === 'Where') {
      const fault = check([1, 2]);
      if (fault) return fault;
    } else if (FOLLOWS_FIRST.has(node.op)) out = types.get(node.inputs[0] ?? '');
    else if (node.op === 'Shape' || node.op === 'Size') out = 'int64';
    else out = undefined;
    // Only output 0 has the type worked out; the others (a Dropout's mask, ...) stay unknown.
    if (out !== undefined && node.outputs[0]) types.set(node.outputs[0], out);
  }
  return undefined;
}
