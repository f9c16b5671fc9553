import { UsageError } from '../core/errors.js';
import type { Graph, Node } from '../core/graph.js';
import type { Tensor } from '../core/tensor.js';
import { KernelError, type RunKernel } from './kernel.js';
import { isSupported, OPS } from './ops.js';
import { fromTensor, toTensor, type Value } from './value.js';

interface Step {
  readonly node: Node;
  readonly run: RunKernel;
  readonly inputs: readonly number[];
  readonly outputs: readonly number[];
}

/** Thrown when a node's kernel rejects its inputs at run time; names the node. */
export class RuntimeError extends UsageError {}

/**
 * Runs a graph. Everything that does not depend on the inputs happens once, here: the nodes are
 * ordered, every op is checked against the kernel table, attributes are parsed, value names are
 * resolved to slots and the weights are decoded. `run` then only calls kernels.
 */
export class Session {
  private readonly steps: Step[] = [];
  private readonly slots: (Value | undefined)[];
  private readonly inputSlots: ReadonlyMap<string, number>;
  private readonly outputSlots: ReadonlyArray<[string, number]>;
  private readonly constantCount: number;

  constructor(readonly graph: Graph) {
    const unsupported = graph.nodes.filter((n) => !isSupported(n.op, n.domain));
    if (unsupported.length) {
      const byOp = new Map<string, string[]>();
      for (const n of unsupported) byOp.set(n.op, [...(byOp.get(n.op) ?? []), n.name]);
      throw new UsageError(`unsupported op${byOp.size > 1 ? 's' : ''}: ${[...byOp].map(([op, names]) => `${op} (node ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''})`).join('; ')}`);
    }
    const slotOf = new Map<string, number>();
    const slot = (name: string) => {
      let s = slotOf.get(name);
      if (s === undefined) slotOf.set(name, (s = slotOf.size));
      return s;
    };
    const constants: Value[] = [];
    for (const [name, tensor] of graph.initializers) {
      slot(name);
      constants[slotOf.get(name)!] = fromTensor(tensor);
    }
    this.constantCount = slotOf.size;
    const inputSlots = new Map<string, number>();
    for (const input of graph.inputs) if (!graph.initializers.has(input.name)) inputSlots.set(input.name, slot(input.name));
    this.inputSlots = inputSlots;

    for (const node of orderNodes(graph)) {
      let run: RunKernel;
      try {
        run = OPS[node.op]!.prepare(node, graph.opset);
      } catch (e) {
        throw new RuntimeError(`node ${node.name} (${node.op}): ${(e as Error).message}`);
      }
      // '' marks an omitted optional input; it maps to slot -1, read as undefined.
      this.steps.push({ node, run, inputs: node.inputs.map((i) => (i === '' ? -1 : slot(i))), outputs: node.outputs.map((o) => (o === '' ? -1 : slot(o))) });
    }
    this.outputSlots = graph.outputs.map((o) => {
      const s = slotOf.get(o.name);
      if (s === undefined) throw new UsageError(`graph output ${o.name} is produced by no node`);
      return [o.name, s];
    });
    this.slots = new Array<Value | undefined>(slotOf.size);
    constants.forEach((v, i) => (this.slots[i] = v));
  }

  run(feeds: Readonly<Record<string, Tensor>>): Record<string, Tensor> {
    const slots = this.slots;
    for (const [name, s] of this.inputSlots) {
      const t = feeds[name];
      if (!t) throw new UsageError(`missing input ${name}`);
      slots[s] = fromTensor(t);
    }
    for (const step of this.steps) {
      const args = step.inputs.map((s) => (s < 0 ? undefined : slots[s]));
      let results: Value[];
      try {
        results = step.run(args);
      } catch (e) {
        if (e instanceof KernelError || e instanceof RangeError) throw new RuntimeError(`node ${step.node.name} (${step.node.op}): ${e.message}`);
        throw e;
      }
      for (let i = 0; i < step.outputs.length; i++) if (step.outputs[i]! >= 0) slots[step.outputs[i]!] = results[i];
    }
    const out: Record<string, Tensor> = {};
    for (const [name, s] of this.outputSlots) {
      const v = slots[s];
      if (!v) throw new UsageError(`graph output ${name} was not computed`);
      out[name] = toTensor(v);
    }
    // Drop intermediate values so a session holds no activations between runs.
    slots.fill(undefined, this.constantCount);
    return out;
  }
}

/** Kahn's algorithm over value names; reports the node that can never run (missing input or cycle). */
function orderNodes(graph: Graph): Node[] {
  const available = new Set<string>([...graph.initializers.keys(), ...graph.inputs.map((i) => i.name), '']);
  const pending = [...graph.nodes];
  const ordered: Node[] = [];
  while (pending.length) {
    const before = pending.length;
    for (let i = 0; i < pending.length; ) {
      const node = pending[i]!;
      if (node.inputs.every((x) => available.has(x))) {
        ordered.push(node);
        for (const o of node.outputs) available.add(o);
        pending.splice(i, 1);
      } else {
        i++;
      }
    }
    if (pending.length === before) {
      const stuck = pending[0]!;
      const missing = stuck.inputs.find((x) => !available.has(x));
      const produced = graph.nodes.some((n) => n.outputs.includes(missing!));
      throw new UsageError(`node ${stuck.name} (${stuck.op}) ${produced ? 'is part of a cycle through' : 'reads'} ${missing}${produced ? '' : ', which no node or input provides'}`);
    }
  }
  return ordered;
}
