import { UsageError } from '../core/errors.js';
import { collectGarbage } from '../core/gc-node.js';
import { orderedOrThrow } from '../core/graph-order.js';
import { allNodes, nodeOuterReads, type Graph, type Node } from '../core/graph.js';
import { MemorySource } from '../core/source.js';
import type { DType } from '../core/dtypes.js';
import type { Tensor } from '../core/tensor.js';
import { Arena, setActiveArena } from './arena.js';
import { markConstant } from './constants.js';
import { fuseNodes, prepareFused } from './fuse.js';
import { KernelError, type RunKernel } from './kernel.js';
import { kernelFor, OPS } from './ops.js';
import { setRunsOnce } from './once.js';
import { defaultThreads, residentPtr, setIntraOpThreads } from './wasm/gemm.js';
import { fromTensor, isComputable, isHalf, roundHalf, toTensor, type Value } from './value.js';

/** Thrown when a node cannot be prepared or its kernel rejects its inputs; names the node. */
export class RuntimeError extends UsageError {}

export interface SessionOptions {
  /**
   * Threads a large matrix product or convolution may use (intra-op): 1 keeps everything on the
   * calling thread; the default is the machine's cores, at most 8.
   */
  readonly threads?: number;
  /**
   * The session will run once (an output check): constant weights are used in place, never packed
   * or copied whole into WebAssembly memory, so its memory stays the weights plus activations.
   * Slower per call; the default (false) packs each weight on first use for the calls after it.
   */
  readonly once?: boolean;
  /**
   * Called with the name, shape and element type of every value the graph computes, as it is
   * computed (folded constants when the session is made, the rest during a run): what a writer
   * learning sizes needs, without asking for every value as an output and so holding them all to
   * the end of the run. Nodes are then run as the graph has them, unfused, so every value is
   * computed under its name.
   */
  readonly observe?: (name: string, shape: readonly number[], dtype: DType) => void;
}

/** One node, resolved: its kernel and the value slots it reads and writes. */
interface Step {
  readonly node: Node;
  readonly run: RunKernel;
  /** Slot per input; -1 for an omitted optional input (read as undefined). */
  readonly inputs: readonly number[];
  /** Slot per output; -1 for an output the graph does not use. */
  readonly outputs: readonly number[];
  /** The argument array handed to the kernel, refilled on every run (no per-run allocation). */
  readonly args: (Value | undefined)[];
  /** Slots whose last reader is this step: dropped right after it, so activations do not pile up. */
  readonly release: readonly number[];
  /** Weights this step reads that a run-once session reads in only now (see `lazy`). */
  readonly load: readonly number[];
}

/**
 * In a session that runs once, weights of at least this size are read in when the first step that
 * needs them runs and dropped after the last one: the run holds a few weights at a time, not the
 * model. Smaller ones (shapes, axes, biases) are read when the session is made, so kernels can
 * prepare from them and constant folding sees them.
 */
const LAZY_BYTES = 1 << 20;
/**
 * Dropped lazy weights are collected once this many bytes of them are garbage: V8 counts a large
 * ArrayBuffer's bytes only loosely towards its next collection, and a model's weights read one by
 * one would otherwise all be alive by its last layer.
 */
const COLLECT_AFTER_BYTES = 64 << 20;
const SPARE = 2;
const READ_CHUNK = 8 << 20;

/**
 * Runs a graph. Everything that does not depend on the inputs happens once, here: every op is
 * checked against the kernel table, the nodes are ordered, attributes are parsed, value names
 * are resolved to slots and the weights are decoded. `run` then only calls kernels.
 */
export class Session {
  private readonly steps: Step[] = [];
  private readonly slots: (Value | undefined)[];
  private readonly constantCount: number;
  /** Values computed once when the session was made (see foldConstants), put back after every run. */
  private readonly folded: readonly (readonly [number, Value])[];
  private readonly inputSlots: readonly { readonly name: string; readonly slot: number; readonly dtype: string }[];
  private readonly outputSlots: readonly { readonly name: string; readonly slot: number }[];
  private readonly threads: number;
  private readonly once: boolean;
  private readonly observe: SessionOptions['observe'];
  /** Run-once sessions' large weights, by slot: read by the step that first needs them (see LAZY_BYTES). */
  private readonly lazy = new Map<number, { readonly tensor: Tensor; readonly what: string }>();
  /** Bytes of lazy weights dropped since the last collection. */
  private dropped = 0;
  /**
   * Buffers of float32 weights read in and dropped, reused for the next (best fit): a fresh
   * buffer costs its page faults, and a dropped one waits for V8 to collect it. At most SPARE.
   */
  private readonly spare: ArrayBuffer[] = [];
  /** The buffers readLazy allocated: only these are ever reused (never a model's own memory). */
  private readonly owned = new WeakSet<ArrayBuffer>();
  /** Float32 activations dropped by one step, reused by later ones and later runs (see arena.ts). */
  private readonly arena = new Arena();
  /** Whether this run gives dropped arrays back to the arena (not in a run nested in another's). */
  private recycling = false;

  constructor(
    readonly graph: Graph,
    options: SessionOptions = {},
  ) {
    this.threads = options.threads ?? defaultThreads();
    this.once = options.once ?? false;
    if (!Number.isInteger(this.threads) || this.threads < 1) throw new UsageError(`threads must be a whole number of at least 1, got ${options.threads}`);
    refuseUnsupported(graph);
    const slotOf = new Map<string, number>();
    const slot = (name: string): number => {
      let s = slotOf.get(name);
      if (s === undefined) slotOf.set(name, (s = slotOf.size));
      return s;
    };
    const constants: Value[] = [];
    const outputNames = new Set(graph.outputs.map((o) => o.name));
    for (const [name, tensor] of graph.initializers) {
      const what = `initializer ${name}`;
      if (this.once && tensor.byteLength >= LAZY_BYTES && !outputNames.has(name)) {
        if (!isComputable(tensor.dtype)) throw new UsageError(`${what} is ${tensor.dtype}, which the runtime does not compute on`);
        this.lazy.set(slot(name), { tensor, what });
      } else markConstant((constants[slot(name)] = fromTensor(tensor, what)));
    }
    this.constantCount = slotOf.size;
    this.inputSlots = graph.inputs.filter((i) => !graph.initializers.has(i.name)).map((i) => ({ name: i.name, slot: slot(i.name), dtype: i.dtype }));

    // Activations (and MatMul's bias add) are folded into the product before them: see fuse.ts.
    const order = orderedOrThrow(graph, (line) => new UsageError(line));
    const ordered = options.observe ? order : fuseNodes(order, graph);
    const prepare = (node: Node): RunKernel => kernelFor(node.op, graph.opset, node.domain)!.prepare(node, graph.opset);
    const constant = (name: string): Value | undefined => {
      const s = slotOf.get(name);
      return s === undefined ? undefined : constants[s];
    };
    for (const node of ordered) {
      let run: RunKernel;
      try {
        run = prepareFused(node, prepare, constant);
      } catch (e) {
        throw new RuntimeError(`node ${node.name} (${node.op}): ${(e as Error).message}`);
      }
      // A node holding graphs (If, Loop, Scan) also reads what they read from this graph, after its own inputs.
      const inputs = [...node.inputs, ...nodeOuterReads(node)].map((i) => (i === '' ? -1 : slot(i)));
      const outputs = node.outputs.map((o) => (o === '' ? -1 : slot(o)));
      this.steps.push({ node, run, inputs, outputs, args: new Array<Value | undefined>(inputs.length), release: [], load: [] });
    }
    this.folded = foldConstants(this.steps, constants, this.constantCount);
    this.observe = options.observe;
    if (this.observe) {
      const nameOf = new Map([...slotOf].map(([name, s]) => [s, name]));
      for (const [s, v] of this.folded) this.observe(nameOf.get(s)!, v.shape, v.dtype);
    }
    const lastReader = new Map<number, number>();
    this.steps.forEach((step, index) => {
      for (const s of step.inputs) if (s >= this.constantCount && !constants[s]) lastReader.set(s, index);
    });
    this.outputSlots = graph.outputs.map((o) => {
      const s = slotOf.get(o.name);
      if (s === undefined) throw new UsageError(`graph output ${o.name} is produced by no node, input or initializer`);
      return { name: o.name, slot: s };
    });
    const kept = new Set(this.outputSlots.map((o) => o.slot));
    for (const [s, index] of lastReader) if (!kept.has(s)) (this.steps[index]!.release as number[]).push(s);
    // A lazy weight is read in by every step that reads it (once, if it is still there) and
    // dropped after its last reader.
    const lastLazyReader = new Map<number, number>();
    this.steps.forEach((step, index) => {
      for (const s of step.inputs) {
        if (!this.lazy.has(s)) continue;
        if (!step.load.includes(s)) (step.load as number[]).push(s);
        lastLazyReader.set(s, index);
      }
    });
    for (const [s, index] of lastLazyReader) (this.steps[index]!.release as number[]).push(s);
    this.slots = new Array<Value | undefined>(slotOf.size);
    constants.forEach((v, i) => (this.slots[i] = v));
  }

  run(feeds: Readonly<Record<string, Tensor>>): Record<string, Tensor> {
    const slots = this.slots;
    const threads = setIntraOpThreads(this.threads);
    const once = setRunsOnce(this.once);
    // a Session run inside another's run (a kernel's own) allocates from the outer arena and recycles nothing
    const outer = setActiveArena(this.arena);
    if (outer) setActiveArena(outer);
    this.recycling = !outer;
    try {
      for (const input of this.inputSlots) {
        const t = feeds[input.name];
        if (!t) throw new UsageError(`missing input ${input.name}`);
        if (t.dtype !== input.dtype) throw new UsageError(`input ${input.name} must be ${input.dtype}, got ${t.dtype}`);
        slots[input.slot] = fromTensor(t, `input ${input.name}`);
      }
      for (let i = 0; i < this.steps.length; i++) this.runStep(this.steps[i]!, slots);
      const out: Record<string, Tensor> = {};
      for (const { name, slot } of this.outputSlots) {
        const v = slots[slot];
        if (!v) throw new UsageError(`graph output ${name} was not computed`);
        // an array in the WebAssembly module's memory (arena.ts) goes out as a copy of its own
        out[name] = toTensor(residentPtr(v.data) ? { ...v, data: (v.data as Float32Array).slice() } : v);
      }
      return out;
    } finally {
      // A session holds no activations between runs, nor the weights it reads in as it goes.
      slots.fill(undefined, this.constantCount);
      for (const s of this.lazy.keys()) slots[s] = undefined;
      for (const [s, v] of this.folded) slots[s] = v;
      setIntraOpThreads(threads);
      setRunsOnce(once);
      if (!outer) {
        this.arena.reclaim();
        setActiveArena(null);
      }
      this.recycling = false;
    }
  }

  private runStep(step: Step, slots: (Value | undefined)[]): void {
    const { inputs, args, outputs } = step;
    for (let j = 0; j < step.load.length; j++) {
      const s = step.load[j]!;
      if (slots[s]) continue;
      const v = this.readLazy(s);
      markConstant(v);
      slots[s] = v;
    }
    for (let j = 0; j < inputs.length; j++) {
      const s = inputs[j]!;
      args[j] = s < 0 ? undefined : slots[s];
    }
    let results: Value[];
    try {
      results = step.run(args);
    } catch (e) {
      if (e instanceof KernelError || e instanceof RangeError || e instanceof TypeError) {
        throw new RuntimeError(`node ${step.node.name} (${step.node.op}): ${e.message}`);
      }
      throw e;
    }
    for (let j = 0; j < outputs.length; j++) {
      const s = outputs[j]!;
      const v = results[j];
      if (s < 0) continue;
      if (!v) throw new RuntimeError(`node ${step.node.name} (${step.node.op}) did not produce output ${j}`);
      // float16/bfloat16 are computed widened; a fresh result is rounded back onto the type's grid.
      if (isHalf(v.dtype) && !args.some((a) => a?.data === v.data)) roundHalf(v.dtype, v.data as Float32Array);
      slots[s] = v;
      this.observe?.(step.node.outputs[j]!, v.shape, v.dtype);
    }
    // The argument array would hold this step's weights until the next run: not in a run-once session.
    if (this.lazy.size) args.fill(undefined);
    for (let j = 0; j < step.release.length; j++) {
      const s = step.release[j]!;
      const v = slots[s];
      slots[s] = undefined;
      if (v && this.lazy.has(s)) {
        this.dropLazy(v, slots);
        continue;
      }
      if (this.recycling && v && this.arena.owns(v.data) && !this.isRead(v.data, slots)) this.arena.give(v.data);
    }
    if (this.dropped >= COLLECT_AFTER_BYTES) {
      this.dropped = 0;
      collectGarbage();
    }
  }

  /** A lazy weight read in: float32 from a file into a spare buffer when one fits. */
  private readLazy(s: number): Value {
    const { tensor, what } = this.lazy.get(s)!;
    if (tensor.dtype !== 'float32' || tensor.source instanceof MemorySource) return fromTensor(tensor, what);
    const bytes = tensor.byteLength;
    let best = -1;
    for (let i = 0; i < this.spare.length; i++) {
      const b = this.spare[i]!.byteLength;
      if (b >= bytes && (best < 0 || b < this.spare[best]!.byteLength)) best = i;
    }
    const buffer = best >= 0 ? this.spare.splice(best, 1)[0]! : new ArrayBuffer(bytes);
    this.owned.add(buffer);
    const view = new Uint8Array(buffer, 0, bytes);
    let at = 0;
    for (const chunk of tensor.source.chunks(READ_CHUNK)) {
      view.set(chunk, at);
      at += chunk.byteLength;
    }
    if (at !== bytes) throw new RangeError(`${what}: its source gave ${at} bytes where ${bytes} were declared`);
    return { dtype: tensor.dtype, shape: tensor.shape, data: new Float32Array(buffer, 0, bytes / 4) };
  }

  /**
   * A lazy weight after its last reader: its buffer is kept for the next one unless a live value
   * still views it (a Reshape's result is the same array); otherwise it is garbage, collected
   * once enough of it has piled up.
   */
  private dropLazy(v: Value, slots: readonly (Value | undefined)[]): void {
    const buffer = v.data.buffer;
    if (buffer instanceof ArrayBuffer && this.owned.has(buffer) && this.spare.length < SPARE && !this.isRead(v.data as Float32Array, slots)) {
      this.spare.push(buffer);
      return;
    }
    this.dropped += v.data.byteLength;
  }

  /**
   * True when a live value's array overlaps this one's bytes (is it, or views part of it): not
   * merely shares its buffer, which every array in the WebAssembly module's memory does.
   */
  private isRead(data: Float32Array, slots: readonly (Value | undefined)[]): boolean {
    const start = data.byteOffset;
    const end = start + data.byteLength;
    for (let i = this.constantCount; i < slots.length; i++) {
      const d = slots[i]?.data;
      if (d && d.buffer === data.buffer && d.byteOffset < end && start < d.byteOffset + d.byteLength) return true;
    }
    return false;
  }
}

/**
 * Throws one UsageError naming every unsupported op and (a few of) the nodes using it. An op the
 * runtime has, but not in the version the graph's opset selects, is named with that opset.
 */
function refuseUnsupported(graph: Graph): void {
  const byOp = new Map<string, string[]>();
  for (const n of allNodes(graph)) {
    if (kernelFor(n.op, graph.opset, n.domain)) continue;
    const isDefault = n.domain === '' || n.domain === 'ai.onnx';
    const key = isDefault ? (OPS.has(n.op) ? `${n.op} at opset ${graph.opset}` : n.op) : `${n.domain}.${n.op}`;
    byOp.set(key, [...(byOp.get(key) ?? []), n.name]);
  }
  if (!byOp.size) return;
  const list = [...byOp].map(([op, names]) => `${op} (node${names.length > 1 ? 's' : ''} ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''})`);
  throw new UsageError(`unsupported op${byOp.size > 1 ? 's' : ''}: ${list.join('; ')}`);
}


/** Ops never computed ahead of a run: Dropout may draw random numbers (training_mode). */
const NOT_FOLDED = new Set(['Dropout']);

/**
 * Constant folding: every step whose inputs are all constants (initializers, or the results of
 * steps folded before it) and that holds no graph runs once, here, and leaves the step list;
 * its results become constants of the session (`constants`, indexed by slot, is filled in).
 * Exporters leave such chains in every transformer: BERT's position and token-type ids and its
 * mask's shape arithmetic (ConstantOfShape, Equal, Where, Expand, GatherElements and the
 * embedding Gathers of constant ids) ran on every call. A step whose kernel throws here stays,
 * so the run reports its error as before. Returns the folded (slot, value) pairs beyond the
 * initializers.
 */
function foldConstants(steps: Step[], constants: (Value | undefined)[], constantCount: number): (readonly [number, Value])[] {
  const folded: (readonly [number, Value])[] = [];
  const kept: Step[] = [];
  // results are the session's own arrays, never an arena's (a session made inside another's run)
  const outer = setActiveArena(null);
  try {
    for (const step of steps) {
      const { node } = step;
      const foldable = !NOT_FOLDED.has(node.op) && !Object.values(node.attributes).some((a) => a.type === 'graph' || a.type === 'graphs') &&
        step.inputs.every((s) => s < 0 || constants[s] !== undefined);
      let results: Value[] | undefined;
      if (foldable) {
        try {
          results = step.run(step.inputs.map((s) => (s < 0 ? undefined : constants[s])));
        } catch {
          results = undefined;
        }
      }
      if (!results || step.outputs.some((s, j) => s >= 0 && !results![j])) {
        kept.push(step);
        continue;
      }
      step.outputs.forEach((s, j) => {
        if (s < 0) return;
        const v = results![j]!;
        if (isHalf(v.dtype) && !step.inputs.some((i) => i >= 0 && constants[i]!.data === v.data)) roundHalf(v.dtype, v.data as Float32Array);
        markConstant(v);
        constants[s] = v;
        if (s >= constantCount) folded.push([s, v]);
      });
    }
  } finally {
    setActiveArena(outer);
  }
  steps.splice(0, steps.length, ...kept);
  return folded;
}
