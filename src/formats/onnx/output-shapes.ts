import { inferShapes } from '../../api/checks/shapes.js';
import { UsageError } from '../../core/errors.js';
import type { Dim, Graph, ValueInfo } from '../../core/graph.js';
import { allocate, Tensor } from '../../core/tensor.js';
import { Session } from '../../runtime/executor.js';

/**
 * ONNX requires every graph input and output to say its shape (onnx.checker: "Field 'shape' of
 * 'type' is required but missing"); a dim may be unknown, the rank may not. Formats that do not
 * record output shapes (a module spec without a signature, a frozen GraphDef) leave them unknown
 * in the IR, so before writing, each output of unknown rank gets one: the runtime runs the graph
 * twice on zeros, every unknown input dim sized 2 and then 3, and a dim is fixed where both runs
 * agree. Static inference comes first and is enough when it knows every output's rank and no dim
 * of it is 1 (a 1 is left to the runs to confirm): the runs read every weight, which for a 1 GiB
 * model is a second copy of it in memory during the write.
 * Where the runtime cannot run the graph, inference's ranks stand, its dims of 1 left unknown. An
 * output still unknown is written as before, without a shape; onnxruntime still loads it.
 */
export function withOutputShapes(graph: Graph): Graph {
  if (graph.outputs.every((o) => o.shape !== null)) return graph;
  const inferred = inferShapes(graph).values;
  const settled = graph.outputs.every((o) => o.shape !== null || (inferred.get(o.name)?.shape?.every((d) => d !== 1) ?? false));
  const probed = settled ? undefined : probeShapes(graph);
  const outputs: ValueInfo[] = graph.outputs.map((o) => {
    if (o.shape !== null) return o;
    const shape = probed?.get(o.name) ?? inferred.get(o.name)?.shape?.map((d) => (d === 1 ? null : d)) ?? null;
    return shape === null ? o : { ...o, shape };
  });
  return { ...graph, outputs };
}

/** Output shapes from two runs; undefined when the graph cannot be run on made-up inputs. */
function probeShapes(graph: Graph): Map<string, readonly Dim[]> | undefined {
  const inputs = graph.inputs.filter((i) => !graph.initializers.has(i.name));
  if (inputs.some((i) => i.shape === null || i.dtype === 'string')) return undefined;
  const feeds = (size: number): Record<string, Tensor> =>
    Object.fromEntries(
      inputs.map((i) => {
        const shape = i.shape!.map((d) => (typeof d === 'number' ? d : size));
        return [i.name, Tensor.fromArray(i.dtype, shape, allocate(i.dtype, shape.reduce((a, b) => a * b, 1)))];
      }),
    );
  let runs: Record<string, Tensor>[];
  try {
    // Runs once each: weights used in place, not packed into a second copy (see runtime/once.ts).
    const session = new Session(graph, { once: true });
    runs = [session.run(feeds(2)), session.run(feeds(3))];
  } catch (e) {
    // An op the runtime refuses is not this function's to report: the write goes on without
    // the shape, and verification says what it could not run. Anything else is a bug.
    if (e instanceof UsageError) return undefined;
    throw e;
  }
  const out = new Map<string, readonly Dim[]>();
  for (const o of graph.outputs) {
    const [a, b] = runs.map((r) => r[o.name]?.shape);
    if (!a || !b || a.length !== b.length) continue;
    out.set(o.name, a.map((d, k) => (d === b[k] ? d : null)));
  }
  return out;
}
