import { nodeOuterReads, type Graph, type Node } from '../core/graph.js';
import type { RunKernel } from './kernel.js';
import { erfRational32 } from './kernels/erf.js';
import { float32Output, isHalf, roundHalf, type Value } from './value.js';
import { wasmGelu, wasmSoftmax } from './wasm/gemm.js';

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
  /**
   * A Conv's or MatMul's residual: the value Add then added to its result (a ResNet block's
   * shortcut, a transformer's residual connection), the fused node's fourth input (its bias slot
   * kept, empty when there is none).
   */
  readonly residual?: string;
  /** The folded nodes, in order; each reads the previous result (and its own constants). */
  readonly then: readonly Node[];
  /** The name the first folded node reads (the unfused node's output). */
  readonly result: string;
  /**
   * Set for the GELU chain Div(x, c1) → Erf → Add(c2) → Mul(x) [→ Mul(c3)] (torch.onnx's
   * erf GELU): the fused node's inputs are x, c1, c2 (and c3), computed in one pass.
   */
  readonly gelu?: boolean;
  /**
   * Set for attention's Mul(scores, scale) → Add(·, mask) → Softmax (last axis), or Mul → Softmax
   * without a mask: the fused node's inputs are the Mul's two (and the mask), computed in one
   * pass with the Softmax.
   */
  readonly scores?: boolean;
  /**
   * A MatMul's operands as the Transposes before it left them (attention's heads: [0, 2, 1, 3]
   * of [1, S, H, D] for A or B, [0, 2, 3, 1] for B): the fused node reads the Transposes' inputs
   * and the product reads them through strides. `outPerm`: the Transpose after it ([0, 2, 1, 3],
   * merging the heads back), folded as the stride C is written with.
   */
  readonly operandPerms?: readonly [readonly number[] | undefined, readonly number[] | undefined];
  readonly outPerm?: readonly number[];
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
  const fusion = fusions.get(node);
  if (!fusion) return prepare(node);
  // the head node as it was: the fused node's inputs beyond its own are what the stages read
  const head = fusion.gelu || fusion.scores ? { ...node, inputs: node.inputs.slice(0, 2) } : node;
  const run = prepare(head);
  const stages = fusion.then.map((n, i) => ({ node: n, run: prepare(n), reads: i === 0 ? fusion.result : fusion.then[i - 1]!.outputs[0]! }));
  const chain = (inputs: readonly (Value | undefined)[]): Value[] => {
    const results = run(inputs);
    let r = results[0]!;
    if (applied.has(r)) return results;
    for (const stage of stages) {
      // ONNX rounds a float16 result after every op, so the unfused chain does too
      if (isHalf(r.dtype)) roundHalf(r.dtype, r.data as Float32Array);
      const prev = r;
      r = stage.run(
        stage.node.inputs.map((name) => {
          if (name === stage.reads) return prev;
          if (name === '') return undefined;
          const at = node.inputs.indexOf(name);
          return at >= 0 ? inputs[at] : constant(name);
        }),
      )[0]!;
    }
    return [r];
  };
  if (fusion.scores) return (inputs) => scoresSoftmax(inputs) ?? chain(inputs);
  if (!fusion.gelu) return chain;
  return (inputs) => geluFloat32(inputs) ?? chain(inputs);
}

/**
 * Softmax(scores · scale + mask) over the last axis for float32 scores, a one-element scale and
 * a mask that repeats over whole rows of the scores (its shape, without leading 1s, their tail):
 * the scaling and masking in the module on the copy the Softmax makes anyway, rounded as the
 * separate Mul and Add round, so the result is the unfused ops' exactly. Undefined otherwise.
 */
function scoresSoftmax(inputs: readonly (Value | undefined)[]): Value[] | undefined {
  const [p, q, given] = inputs;
  if (!p || !q) return undefined;
  const [x, s] = p.data.length === 1 && q.data.length !== 1 ? [q, p] : [p, q];
  // without a mask (ViT's scores): a row of zeros, which changes no Softmax output (x·s + 0 is
  // x·s but for -0, which becomes +0, and exp(±0 - max) and the max come out the same)
  const rowLength = x.shape[x.shape.length - 1] ?? 0;
  const mask = given ?? { dtype: 'float32' as const, shape: [rowLength], data: new Float32Array(rowLength) };
  if (x.dtype !== 'float32' || s.dtype !== 'float32' || mask.dtype !== 'float32' || s.data.length !== 1 || s.shape.length > x.shape.length) return undefined;
  if (x.shape.length === 0 || mask.shape.length > x.shape.length) return undefined;
  // the mask, without its leading 1s, must be the scores' trailing block
  let start = 0;
  while (start < mask.shape.length && mask.shape[start] === 1) start++;
  const offset = x.shape.length - mask.shape.length;
  for (let i = start; i < mask.shape.length; i++) if (mask.shape[i] !== x.shape[offset + i]) return undefined;
  const len = x.shape[x.shape.length - 1]!;
  // (a mask shorter than a row broadcasts within it: not this case)
  if (len < 8 || mask.data.length % len !== 0 || mask.data.length === 0) return undefined;
  const out = float32Output(x.shape);
  const src = x.data as Float32Array;
  const ok = wasmSoftmax(src, out.data as Float32Array, src.length / len, len, { scale: (s.data as Float32Array)[0]!, mask: mask.data as Float32Array });
  return ok ? [out] : undefined;
}

/**
 * The GELU chain in one pass over float32 x with scalar float32 constants, each step rounded to
 * float32 as the separate ops would round it. The one difference from the separate ops: the erf
 * is erfRational32 (float32, within 5e-7 relative of erf, as onnxruntime's and Eigen's erf are
 * approximations), not the Erf kernel's float64-accurate one, so the module can run it 4 lanes
 * at a time (BERT-tiny's 128x512 GELU: 0.26 ms for 0.61 ms with the float64 table, measured).
 */
function geluFloat32(inputs: readonly (Value | undefined)[]): Value[] | undefined {
  const [x, c1, c2, c3] = inputs;
  const scalar = (v: Value | undefined): boolean => v !== undefined && v.dtype === 'float32' && v.data.length === 1 && v.shape.length <= (x?.shape.length ?? 0);
  if (!x || x.dtype !== 'float32' || !scalar(c1) || !scalar(c2) || (c3 !== undefined && !scalar(c3))) return undefined;
  const src = x.data as Float32Array;
  const d = (c1!.data as Float32Array)[0]!;
  const one = (c2!.data as Float32Array)[0]!;
  const out = float32Output(x.shape);
  const scale = c3 ? (c3.data as Float32Array)[0]! : undefined;
  // the module's loop (~4x faster, the same bits) where WebAssembly runs, else the JS one
  if (!wasmGelu(src, out.data as Float32Array, d, one, scale)) geluLoop(src, out.data as Float32Array, d, one, scale);
  return [out];
}

/**
 * The loop of geluFloat32, a function of its own so V8 optimizes it whole (with the erf inlined)
 * rather than on-stack-replacing a loop inside the caller (measured ~3x slower on BERT-tiny).
 */
export function geluLoop(src: Float32Array, out: Float32Array, d: number, one: number, scale: number | undefined): void {
  if (scale !== undefined) {
    for (let i = 0; i < src.length; i++) {
      const v = src[i]!;
      out[i] = Math.fround(v * Math.fround(erfRational32(Math.fround(v / d)) + one)) * scale;
    }
    return;
  }
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    out[i] = v * Math.fround(erfRational32(Math.fround(v / d)) + one);
  }
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
 * Folds Conv/Gemm/MatMul + Relu/Clip, MatMul + Add of a constant vector (+ Relu/Clip), and
 * Conv or MatMul (+ bias) + Add of another value (+ Relu/Clip: a residual block's end) into one node each. Only a result read by nothing but the folded node (and not a graph output) is
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
  // (a copy: the attention pass below rewrites MatMuls in it)
  const nodes = alias.size
    ? given.map((node) => (node.inputs.some((i) => alias.has(i)) ? { ...node, inputs: node.inputs.map((i) => alias.get(i) ?? i) } : node))
    : [...given];
  const readers = new Map<string, number>();
  // A value a nested graph (If, Loop, Scan) reads is read there too, so it is never fused away.
  for (const node of nodes) for (const i of [...node.inputs, ...nodeOuterReads(node)]) readers.set(i, (readers.get(i) ?? 0) + 1);
  for (const o of graph.outputs) readers.set(o.name, (readers.get(o.name) ?? 0) + 2);
  const onlyReader = (value: string): number | undefined => {
    if (readers.get(value) !== 1) return undefined;
    for (let i = 0; i < nodes.length; i++) if (nodes[i]!.inputs.includes(value)) return i;
    return undefined;
  };
  const dropped = new Set<number>();
  // A fused node takes the place of the last node it folds: every input of every folded node is
  // computed by then (a folded Add may read a Constant node's output that comes after the head).
  const placed = new Map<number, Node>();
  const place = (fused: Node, fusion: Fusion, last: number): void => {
    fusions.set(fused, fusion);
    placed.set(last, fused);
  };
  const operandPerms = foldHeadTransposes(nodes, onlyReader, dropped);
  const out: Node[] = [];
  for (let index = 0; index < nodes.length; index++) {
    if (dropped.has(index)) {
      const fused = placed.get(index);
      if (fused) out.push(fused);
      continue;
    }
    const node = nodes[index]!;
    if (isDefault(node) && node.op === 'Div' && node.inputs.length === 2 && node.outputs.length === 1) {
      const gelu = geluChain(node, nodes, onlyReader);
      if (gelu) {
        gelu.folded.forEach((i) => dropped.add(i));
        place(gelu.fused, gelu.fusion, gelu.folded.at(-1)!);
        continue;
      }
    }
    if (isDefault(node) && node.op === 'Mul' && node.inputs.length === 2 && node.outputs.length === 1 && graph.opset >= 13) {
      const scores = scoresChain(node, nodes, onlyReader);
      if (scores) {
        scores.folded.forEach((i) => dropped.add(i));
        place(scores.fused, scores.fusion, scores.folded.at(-1)!);
        continue;
      }
    }
    if (isDefault(node) && node.op === 'MatMul' && node.outputs.length === 1) {
      // attention's products: their head Transposes (before: operandPerms; after: the one that
      // merges the heads) become strides, and nothing else folds into them
      const perms = operandPerms.get(index);
      const nextAt = onlyReader(node.outputs[0]!);
      const after = nextAt === undefined ? undefined : nodes[nextAt]!;
      const outPerm = after && !dropped.has(nextAt!) && isHeadTranspose(after, [[0, 2, 1, 3]]) ? [0, 2, 1, 3] : undefined;
      if (perms || outPerm) {
        const fused: Node = { ...node, outputs: [outPerm ? after!.outputs[0]! : node.outputs[0]!] };
        const fusion: Fusion = { then: outPerm ? [after!] : [], result: node.outputs[0]!, operandPerms: perms, outPerm };
        if (outPerm) {
          dropped.add(nextAt!);
          place(fused, fusion, nextAt!);
        } else {
          fusions.set(fused, fusion);
          out.push(fused);
        }
        continue;
      }
    }
    if (!isDefault(node) || !['Conv', 'Gemm', 'MatMul'].includes(node.op) || node.outputs.length !== 1) {
      out.push(node);
      continue;
    }
    const then: Node[] = [];
    let last = index;
    let result = node.outputs[0]!;
    let bias: Fusion['bias'];
    let residual: string | undefined;
    let clamp: Fusion['clamp'];
    let next = onlyReader(result);
    // The node at `next` joins the fusion: its output is the fused node's result from here on.
    const absorb = (): void => {
      const joined = nodes[next!]!;
      then.push(joined);
      dropped.add(next!);
      last = next!;
      result = joined.outputs[0]!;
      next = onlyReader(result);
    };
    // An Add of another value after the product (a residual connection), not an Add already folded
    // into a product on its other side: a downsampling block adds two Convs.
    const residualAdd = (): void => {
      if (next === undefined || dropped.has(next)) return;
      const add = nodes[next]!;
      const other = add.inputs[0] === result ? add.inputs[1] : add.inputs[0];
      if (isDefault(add) && add.op === 'Add' && add.inputs.length === 2 && add.outputs.length === 1 && other && other !== result && graph.opset >= 7) {
        residual = other;
        absorb();
      }
    };
    if (node.op === 'Conv' && node.inputs.length <= 3) residualAdd();
    if (node.op === 'MatMul' && next !== undefined) {
      const add = nodes[next]!;
      const other = add.inputs[0] === result ? add.inputs[1] : add.inputs[0];
      const t = other === undefined ? undefined : graph.initializers.get(other);
      if (isDefault(add) && add.op === 'Add' && add.inputs.length === 2 && add.inputs[0] !== add.inputs[1] && t && t.shape.length === 1 && graph.opset >= 7) {
        bias = { name: other!, first: add.inputs[1] === result };
        absorb();
      }
    }
    // a transformer's residual connection: MatMul (+ bias), then Add of another value (BERT's
    // attention output and FFN output before their LayerNormalization)
    if (node.op === 'MatMul') residualAdd();
    if (next !== undefined) {
      const activation = nodes[next]!;
      const c = activation.inputs[0] === result ? clampOf(activation, graph) : undefined;
      if (c) {
        clamp = c;
        absorb();
      }
    }
    if (!then.length) {
      out.push(node);
      continue;
    }
    // MatMul: [A, B, bias or '', residual]; Conv: [X, W, its bias or '', residual]
    const inputs = residual ? [node.inputs[0]!, node.inputs[1]!, bias ? bias.name : node.inputs[2] ?? '', residual] : bias ? [...node.inputs, bias.name] : node.inputs;
    const fused: Node = { ...node, inputs, outputs: [result] };
    place(fused, { clamp, bias, residual, then, result: node.outputs[0]! }, last);
  }
  return out;
}

/** Div(x, c1) → Erf → Add(·, c2) → Mul(x, ·) [→ Mul(·, c3)], each result read only by the next. */
function geluChain(div: Node, nodes: readonly Node[], onlyReader: (value: string) => number | undefined): { fused: Node; fusion: Fusion; folded: number[] } | undefined {
  const x = div.inputs[0]!;
  const follow = (value: string, op: string): { node: Node; index: number; other: string } | undefined => {
    const index = onlyReader(value);
    const node = index === undefined ? undefined : nodes[index];
    if (!node || !isDefault(node) || node.op !== op || node.outputs.length !== 1) return undefined;
    if (op === 'Erf') return node.inputs.length === 1 ? { node, index: index!, other: '' } : undefined;
    if (node.inputs.length !== 2 || node.inputs[0] === node.inputs[1]) return undefined;
    return { node, index: index!, other: node.inputs[0] === value ? node.inputs[1]! : node.inputs[0]! };
  };
  const erf = follow(div.outputs[0]!, 'Erf');
  const add = erf && follow(erf.node.outputs[0]!, 'Add');
  const mul = add && follow(add.node.outputs[0]!, 'Mul');
  if (!erf || !add || !mul || mul.other !== x || add.other === '') return undefined;
  const scale = follow(mul.node.outputs[0]!, 'Mul');
  const stages = scale ? [erf, add, mul, scale] : [erf, add, mul];
  const fused: Node = { ...div, inputs: [x, div.inputs[1]!, add.other, ...(scale ? [scale.other] : [])], outputs: [stages.at(-1)!.node.outputs[0]!] };
  return { fused, fusion: { gelu: true, then: stages.map((s) => s.node), result: div.outputs[0]! }, folded: stages.map((s) => s.index) };
}

/**
 * Mul(scores, scale) → Add(·, mask) → Softmax(axis = -1) (attention, opset 13+), or Mul → Softmax
 * (no mask), each result read only by the next. Whether the scale is one number and the mask repeats over rows is checked
 * on the values at run time (scoresSoftmax); otherwise the three kernels run.
 */
function scoresChain(mul: Node, nodes: readonly Node[], onlyReader: (value: string) => number | undefined): { fused: Node; fusion: Fusion; folded: number[] } | undefined {
  if (mul.inputs[0] === mul.inputs[1]) return undefined;
  const addAt = onlyReader(mul.outputs[0]!);
  const next = addAt === undefined ? undefined : nodes[addAt];
  // (ViT: no mask, the Softmax straight after the Mul)
  const add = next && isDefault(next) && next.op === 'Add' ? next : undefined;
  if (add && (add.inputs.length !== 2 || add.outputs.length !== 1 || add.inputs[0] === add.inputs[1])) return undefined;
  const mask = add ? (add.inputs[0] === mul.outputs[0] ? add.inputs[1]! : add.inputs[0]!) : undefined;
  const softmaxAt = add ? onlyReader(add.outputs[0]!) : addAt;
  const softmax = softmaxAt === undefined ? undefined : nodes[softmaxAt];
  if (!softmax || !isDefault(softmax) || softmax.op !== 'Softmax' || softmax.outputs.length !== 1) return undefined;
  const axis = softmax.attributes.axis;
  if (axis !== undefined && !(axis.type === 'int' && axis.value === -1)) return undefined;
  const fused: Node = { ...mul, inputs: mask ? [mul.inputs[0]!, mul.inputs[1]!, mask] : [mul.inputs[0]!, mul.inputs[1]!], outputs: [softmax.outputs[0]!] };
  return { fused, fusion: { scores: true, then: add ? [add, softmax] : [softmax], result: mul.outputs[0]! }, folded: add ? [addAt!, softmaxAt!] : [softmaxAt!] };
}

/** A default-domain Transpose of one input whose perm attribute is one of `perms`. */
function isHeadTranspose(node: Node, perms: readonly (readonly number[])[]): boolean {
  if (!isDefault(node) || node.op !== 'Transpose' || node.inputs.length !== 1 || node.outputs.length !== 1) return false;
  const perm = node.attributes.perm;
  return perm !== undefined && perm.type === 'ints' && perms.some((p) => p.length === perm.value.length && p.every((v, i) => v === perm.value[i]));
}

/**
 * Attention splits Q, K and V into heads with Transposes that only copy: [1, S, H·D] reshaped to
 * [1, S, H, D], then [0, 2, 1, 3] (Q, V) or [0, 2, 3, 1] (K, for Q·Kᵀ). A MatMul that is such a
 * Transpose's only reader reads the Transpose's input instead (rewritten in `nodes`), the
 * Transpose is dropped, and the returned map gives, per MatMul index, the perm of each operand.
 */
function foldHeadTransposes(nodes: Node[], onlyReader: (value: string) => number | undefined, dropped: Set<number>): Map<number, readonly [readonly number[] | undefined, readonly number[] | undefined]> {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => n.outputs.forEach((o) => producer.set(o, i)));
  const found = new Map<number, readonly [readonly number[] | undefined, readonly number[] | undefined]>();
  nodes.forEach((node, index) => {
    if (!isDefault(node) || node.op !== 'MatMul' || node.inputs.length !== 2 || node.outputs.length !== 1 || node.inputs[0] === node.inputs[1]) return;
    const perms: [readonly number[] | undefined, readonly number[] | undefined] = [undefined, undefined];
    const inputs = [...node.inputs];
    for (const side of [0, 1] as const) {
      const at = producer.get(node.inputs[side]!);
      const t = at === undefined ? undefined : nodes[at]!;
      const allowed = side === 0 ? [[0, 2, 1, 3]] : [[0, 2, 1, 3], [0, 2, 3, 1]];
      if (!t || dropped.has(at!) || !isHeadTranspose(t, allowed) || onlyReader(t.outputs[0]!) !== index) continue;
      perms[side] = (t.attributes.perm as { value: readonly number[] }).value;
      inputs[side] = t.inputs[0]!;
      dropped.add(at!);
    }
    if (!perms[0] && !perms[1]) return;
    nodes[index] = { ...node, inputs };
    found.set(index, perms);
  });
  return found;
}
