import { nodeOuterReads, outerReads, type Graph, type Node } from '../core/graph.js';
import { orderedOrThrow } from '../core/graph-order.js';
import { KernelError, type RunKernel } from './kernel.js';
import { kernelFor } from './ops.js';
import { fromTensor, isHalf, roundHalf, type Value } from './value.js';

/**
 * A nested graph (If's branches, Loop's and Scan's body) prepared once, when its node is, and run
 * on Values as often as the node needs: no Tensor conversions per iteration. It reads its own
 * inputs, then the values it takes from enclosing graphs (`outer`, the names of outerReads(graph)),
 * in that order. Failures are KernelErrors naming the nested node, so the executor's message
 * names both it and the node holding the graph.
 */
export class Subgraph {
  /** The enclosing graphs' values it reads, in the order `run` takes them after its inputs. */
  readonly outer: readonly string[];
  private readonly steps: { readonly node: Node; readonly run: RunKernel; readonly inputs: readonly number[]; readonly outputs: readonly number[] }[] = [];
  private readonly slots: (Value | undefined)[];
  private readonly fed: readonly number[];
  private readonly results: readonly number[];
  private readonly constantCount: number;

  constructor(
    readonly graph: Graph,
    readonly what: string,
  ) {
    this.outer = outerReads(graph);
    const slotOf = new Map<string, number>();
    const slot = (name: string): number => {
      let s = slotOf.get(name);
      if (s === undefined) slotOf.set(name, (s = slotOf.size));
      return s;
    };
    const constants: Value[] = [];
    for (const [name, tensor] of graph.initializers) constants[slot(name)] = fromTensor(tensor, `${what} initializer ${name}`);
    this.constantCount = slotOf.size;
    this.fed = [...graph.inputs.filter((i) => !graph.initializers.has(i.name)).map((i) => i.name), ...this.outer].map(slot);
    for (const node of orderedOrThrow(graph, (line) => new KernelError(`${what} ${line}`), new Set(slotOf.keys()))) {
      const factory = kernelFor(node.op, graph.opset, node.domain);
      if (!factory) throw new KernelError(`${what} node ${node.name} uses ${node.op}, which the runtime does not support${node.domain ? ` (domain ${node.domain})` : ''}`);
      let run: RunKernel;
      try {
        run = factory.prepare(node, graph.opset);
      } catch (e) {
        throw new KernelError(`${what} node ${node.name} (${node.op}): ${(e as Error).message}`);
      }
      const reads = [...node.inputs, ...nodeOuterReads(node)];
      this.steps.push({ node, run, inputs: reads.map((i) => (i === '' ? -1 : slot(i))), outputs: node.outputs.map((o) => (o === '' ? -1 : slot(o))) });
    }
    this.results = graph.outputs.map((o) => {
      const s = slotOf.get(o.name);
      if (s === undefined) throw new KernelError(`${what} output ${o.name} is produced by no node, input or initializer`);
      return s;
    });
    this.slots = new Array<Value | undefined>(slotOf.size);
    constants.forEach((v, i) => (this.slots[i] = v));
  }

  /** The number of inputs `run` takes before the outer values. */
  get inputCount(): number {
    return this.fed.length - this.outer.length;
  }

  run(values: readonly (Value | undefined)[]): Value[] {
    const slots = this.slots;
    try {
      this.fed.forEach((s, i) => (slots[s] = values[i]));
      for (const step of this.steps) {
        const args = step.inputs.map((s) => (s < 0 ? undefined : slots[s]));
        let results: Value[];
        try {
          results = step.run(args);
        } catch (e) {
          if (e instanceof KernelError || e instanceof RangeError || e instanceof TypeError) {
            throw new KernelError(`${this.what} node ${step.node.name} (${step.node.op}): ${e.message}`);
          }
          throw e;
        }
        step.outputs.forEach((s, j) => {
          if (s < 0) return;
          const v = results[j];
          if (!v) throw new KernelError(`${this.what} node ${step.node.name} (${step.node.op}) did not produce output ${j}`);
          if (isHalf(v.dtype) && !args.some((a) => a?.data === v.data)) roundHalf(v.dtype, v.data as Float32Array);
          slots[s] = v;
        });
      }
      return this.results.map((s, i) => {
        const v = slots[s];
        if (!v) throw new KernelError(`${this.what} output ${this.graph.outputs[i]!.name} was not computed (an omitted input?)`);
        return v;
      });
    } finally {
      slots.fill(undefined, this.constantCount);
    }
  }
}

