import type { DType } from '../../core/dtypes.js';
import { attrInt, attrInts, attrString, type Dim, type Graph, type Node } from '../../core/graph.js';
import type { Tensor } from '../../core/tensor.js';
import { onnxCodeToDType } from '../../formats/onnx/dtypes.js';
import { result, type CheckContext, type CheckResult } from './types.js';

/**
 * Static shape and dtype inference along the graph, without running it: every value's shape is
 * derived from the graph inputs (unknown dims stay unknown) and the initializers (exact), op by op.
 * Where an op's rule is known, mismatches between the weights and what consumes them (Gemm, MatMul,
 * Conv, the norms, broadcasting) are reported with the node; ops without a rule give unknown shapes.
 */

/**
 * A value's inferred type: dtype (undefined when unknown) and shape (null when the rank is
 * unknown); and for a small integer tensor whose elements are known (a shape computed with
 * Shape, Gather, Unsqueeze and Concat, as torch.onnx.export writes a Reshape's target), those.
 */
interface Info {
  readonly dtype: DType | undefined;
  readonly shape: readonly Dim[] | null;
  readonly value?: readonly number[];
}

/** Integer tensors of at most this many elements (and rank 0 or 1) have their elements followed. */
const MAX_VALUE = 64;

/** The elements of a small integer initializer or Constant, as `Info.value` holds them. */
function smallValue(t: Tensor): readonly number[] | undefined {
  if ((t.dtype !== 'int64' && t.dtype !== 'int32') || t.shape.length > 1 || t.size > MAX_VALUE) return undefined;
  return t.toNumbers();
}

export interface ShapeProblem {
  readonly node: string;
  readonly op: string;
  readonly problem: string;
}

const UNKNOWN: Info = { dtype: undefined, shape: null };

const show = (shape: readonly Dim[] | null): string => (shape ? `[${shape.map((d) => (typeof d === 'number' ? d : d === null ? '?' : d)).join(', ')}]` : '[?...]');
const known = (d: Dim | undefined): d is number => typeof d === 'number';
/** Two dims that are both known and differ. */
const clash = (a: Dim | undefined, b: Dim | undefined): boolean => known(a) && known(b) && a !== b;

type Rule = (node: Node, ins: readonly Info[], problem: (text: string) => void, graph: Graph) => Info[];

const same: Rule = (_n, ins) => [ins[0] ?? UNKNOWN];

function broadcast(shapes: readonly (readonly Dim[] | null)[], problem: (text: string) => void): readonly Dim[] | null {
  if (shapes.some((s) => s === null)) return null;
  const rank = Math.max(0, ...shapes.map((s) => s!.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      // a shape shorter than the rank has 1s in front; an unknown dim (null) stays unknown
      const at = s!.length - rank + i;
      const d = at < 0 ? 1 : s![at]!;
      if (d === 1) continue;
      if (dim === 1) dim = d;
      else if (clash(dim, d)) {
        problem(`shapes ${shapes.map((x) => show(x)).join(' and ')} do not broadcast (axis ${i}: ${dim} vs ${d})`);
        return null;
      } else if (!known(dim)) dim = d;
    }
    out.push(dim);
  }
  return out;
}

const elementwise: Rule = (_n, ins, problem) => [{ dtype: ins[0]?.dtype, shape: broadcast(ins.map((i) => i.shape), problem) }];

/** Integer arithmetic on known small values (a head size as a dim divided by the head count), as ONNX defines it for integers. */
const ARITHMETIC: Readonly<Record<string, (a: number, b: number) => number>> = {
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  Div: (a, b) => Math.trunc(a / b),
  Mod: (a, b) => ((a % b) + b) % b,
};

const arithmetic: Rule = (node, ins, problem, graph) => {
  const [out] = elementwise(node, ins, problem, graph);
  const [a, b] = ins;
  const f = ARITHMETIC[node.op];
  const integer = out!.dtype === 'int64' || out!.dtype === 'int32';
  if (!f || !integer || !a?.value || !b?.value || attrInt(node, 'fmod', 0) !== 0) return [out!];
  const n = Math.max(a.value.length, b.value.length);
  // one of the two a single value, or both of one length: elementwise with the single one repeated
  if ((a.value.length !== n && a.value.length !== 1) || (b.value.length !== n && b.value.length !== 1) || (node.op === 'Div' || node.op === 'Mod') && b.value.includes(0)) return [out!];
  const value = Array.from({ length: n }, (_, i) => f(a.value![a.value!.length === 1 ? 0 : i]!, b.value![b.value!.length === 1 ? 0 : i]!));
  return [{ ...out!, value }];
};

/** Weights (inputs after the first) must have the data input's dtype. */
function sameDType(node: Node, ins: readonly Info[], problem: (text: string) => void, from = 1): void {
  const x = ins[0]?.dtype;
  for (let i = from; i < ins.length; i++) {
    const d = ins[i]?.dtype;
    if (x && d && d !== x && node.inputs[i] !== '') problem(`input ${node.inputs[i]} is ${d} but ${node.inputs[0]} is ${x}`);
  }
}

function rankIs(node: Node, index: number, info: Info | undefined, ranks: readonly number[], problem: (text: string) => void): boolean {
  if (!info?.shape) return false;
  if (ranks.includes(info.shape.length)) return true;
  problem(`input ${node.inputs[index]} has shape ${show(info.shape)}, needs rank ${ranks.join(' or ')}`);
  return false;
}

const gemm: Rule = (node, ins, problem) => {
  sameDType(node, ins, problem);
  const [a, b, c] = ins;
  const okA = rankIs(node, 0, a, [2], problem);
  const okB = rankIs(node, 1, b, [2], problem);
  const tA = attrInt(node, 'transA', 0) !== 0;
  const tB = attrInt(node, 'transB', 0) !== 0;
  const m = okA ? a!.shape![tA ? 1 : 0]! : null;
  const kA = okA ? a!.shape![tA ? 0 : 1]! : null;
  const kB = okB ? b!.shape![tB ? 1 : 0]! : null;
  const n = okB ? b!.shape![tB ? 0 : 1]! : null;
  if (clash(kA, kB)) problem(`${node.inputs[0]} ${show(a!.shape)}${tA ? ' (transposed)' : ''} times ${node.inputs[1]} ${show(b!.shape)}${tB ? ' (transposed)' : ''}: inner dimensions ${kA} and ${kB} differ`);
  const out: Dim[] = [m, n];
  if (c?.shape && node.inputs[2]) {
    if (c.shape.length > 2) problem(`bias ${node.inputs[2]} ${show(c.shape)} has more than 2 dims`);
    else {
      const cs = c.shape;
      cs.forEach((d, i) => {
        const target = out[2 - cs.length + i];
        if (d !== 1 && clash(d, target)) problem(`bias ${node.inputs[2]} ${show(cs)} does not broadcast to the output ${show(out)}`);
      });
    }
  }
  return [{ dtype: a?.dtype ?? b?.dtype, shape: out }];
};

const matmul: Rule = (node, ins, problem) => {
  sameDType(node, ins, problem);
  const [a, b] = ins;
  if (!a?.shape || !b?.shape) return [{ dtype: a?.dtype, shape: null }];
  if (a.shape.length === 0 || b.shape.length === 0) {
    problem(`MatMul needs inputs of rank 1 or more, got ${show(a.shape)} and ${show(b.shape)}`);
    return [UNKNOWN];
  }
  const k1 = a.shape[a.shape.length - 1];
  const k2 = b.shape.length === 1 ? b.shape[0] : b.shape[b.shape.length - 2];
  if (clash(k1, k2)) problem(`${node.inputs[0]} ${show(a.shape)} times ${node.inputs[1]} ${show(b.shape)}: inner dimensions ${k1} and ${k2} differ`);
  const batchA = a.shape.length > 2 ? a.shape.slice(0, -2) : [];
  const batchB = b.shape.length > 2 ? b.shape.slice(0, -2) : [];
  const batch = broadcast([batchA, batchB], problem);
  if (!batch) return [{ dtype: a.dtype, shape: null }];
  const rows = a.shape.length >= 2 ? [a.shape[a.shape.length - 2]!] : [];
  const cols = b.shape.length >= 2 ? [b.shape[b.shape.length - 1]!] : [];
  return [{ dtype: a.dtype, shape: [...batch, ...rows, ...cols] }];
};

/** Output size of one spatial axis of a convolution or pooling window. */
function windowOut(size: Dim, kernel: number, stride: number, dilation: number, padBegin: number, padEnd: number, ceil: boolean, autoPad: string): Dim {
  if (!known(size)) return null;
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(size / stride);
  const span = dilation * (kernel - 1) + 1;
  const pads = autoPad === 'VALID' ? 0 : padBegin + padEnd;
  const q = (size + pads - span) / stride;
  let out = (ceil ? Math.ceil(q) : Math.floor(q)) + 1;
  // A window may not start inside the end padding (ONNX's reference, PyTorch and the runtime agree).
  if (ceil && autoPad !== 'VALID' && (out - 1) * stride >= size + padBegin) out--;
  return out;
}

function spatialOut(node: Node, x: readonly Dim[], kernel: readonly number[], problem: (text: string) => void, ceil = false): Dim[] {
  const r = kernel.length;
  const strides = attrInts(node, 'strides') ?? new Array<number>(r).fill(1);
  const dilations = attrInts(node, 'dilations') ?? new Array<number>(r).fill(1);
  const pads = attrInts(node, 'pads') ?? new Array<number>(2 * r).fill(0);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const o = windowOut(x[2 + i] ?? null, kernel[i]!, strides[i] ?? 1, dilations[i] ?? 1, pads[i] ?? 0, pads[i + r] ?? 0, ceil, autoPad);
    if (known(o) && o < 1) {
      problem(`spatial axis ${i}: input ${x[2 + i]} is smaller than the window ${kernel[i]} (dilation ${dilations[i] ?? 1}, pads ${pads[i] ?? 0}+${pads[i + r] ?? 0})`);
      out.push(null);
    } else out.push(o);
  }
  return out;
}

const conv: Rule = (node, ins, problem) => {
  sameDType(node, ins, problem);
  const [x, w, b] = ins;
  const group = attrInt(node, 'group', 1);
  const kernelAttr = attrInts(node, 'kernel_shape');
  if (!w?.shape) return [{ dtype: x?.dtype, shape: null }];
  if (w.shape.length < 3) {
    problem(`weight ${node.inputs[1]} ${show(w.shape)} needs rank 3 or more [out, in/group, kernel...]`);
    return [UNKNOWN];
  }
  const m = w.shape[0]!;
  const kernel = w.shape.slice(2);
  if (kernelAttr && (kernelAttr.length !== kernel.length || kernelAttr.some((k, i) => clash(k, kernel[i])))) {
    problem(`kernel_shape [${kernelAttr.join(', ')}] does not match weight ${node.inputs[1]} ${show(w.shape)}`);
  }
  if (known(m) && m % group !== 0) problem(`weight ${node.inputs[1]} has ${m} output channels, not divisible by group ${group}`);
  if (b?.shape && node.inputs[2]) {
    if (b.shape.length !== 1 || clash(b.shape[0], m)) problem(`bias ${node.inputs[2]} ${show(b.shape)} should be [${m}] for weight ${show(w.shape)}`);
  }
  if (!x?.shape) return [{ dtype: x?.dtype ?? w.dtype, shape: null }];
  if (x.shape.length !== w.shape.length) {
    problem(`input ${node.inputs[0]} ${show(x.shape)} has rank ${x.shape.length}, weight ${node.inputs[1]} ${show(w.shape)} needs rank ${w.shape.length}`);
    return [{ dtype: x.dtype, shape: null }];
  }
  const c = x.shape[1];
  const perGroup = w.shape[1];
  if (known(c) && known(perGroup) && c !== perGroup * group) {
    problem(`input ${node.inputs[0]} has ${c} channels, weight ${node.inputs[1]} ${show(w.shape)} with group ${group} takes ${perGroup * group}`);
  }
  const ks = kernel.map((k) => (known(k) ? k : 1));
  const spatial = kernel.every(known) ? spatialOut(node, x.shape, ks, problem) : kernel.map(() => null);
  return [{ dtype: x.dtype, shape: [x.shape[0]!, m, ...spatial] }];
};

const pool: Rule = (node, ins, problem) => {
  const x = ins[0];
  const kernel = attrInts(node, 'kernel_shape');
  if (!x?.shape || !kernel) return [{ dtype: x?.dtype, shape: null }, UNKNOWN];
  if (x.shape.length !== kernel.length + 2) {
    problem(`input ${node.inputs[0]} ${show(x.shape)} needs rank ${kernel.length + 2} for kernel_shape [${kernel.join(', ')}]`);
    return [{ dtype: x.dtype, shape: null }];
  }
  const out: Info = { dtype: x.dtype, shape: [x.shape[0]!, x.shape[1]!, ...spatialOut(node, x.shape, kernel, problem, attrInt(node, 'ceil_mode', 0) !== 0)] };
  return [out, { dtype: 'int64', shape: out.shape }];
};

const globalPool: Rule = (_n, ins) => {
  const x = ins[0];
  return [{ dtype: x?.dtype, shape: x?.shape ? [...x.shape.slice(0, 2), ...x.shape.slice(2).map(() => 1)] : null }];
};

/** Per-channel parameters (BatchNormalization's scale, B, mean, var) must be [C] with C = X[1]. */
const batchNorm: Rule = (node, ins, problem) => {
  sameDType(node, ins, problem);
  const x = ins[0];
  const c = x?.shape?.[1];
  for (let i = 1; i < ins.length && i < 5; i++) {
    const s = ins[i]?.shape;
    if (s && (s.length !== 1 || clash(s[0], c))) problem(`${node.inputs[i]} ${show(s)} should be [${c ?? 'C'}] (the channels of ${node.inputs[0]} ${show(x?.shape ?? null)})`);
  }
  return [x ?? UNKNOWN];
};

const layerNorm: Rule = (node, ins, problem) => {
  sameDType(node, ins, problem);
  const x = ins[0];
  if (x?.shape) {
    const rank = x.shape.length;
    const axis = attrInt(node, 'axis', -1);
    const a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) problem(`axis ${axis} is outside rank ${rank}`);
    else {
      const normalized = x.shape.slice(a);
      for (let i = 1; i < 3 && i < ins.length; i++) {
        const s = ins[i]?.shape;
        if (!s || !node.inputs[i]) continue;
        // Scale and bias broadcast to the normalized shape.
        if (s.length > normalized.length || s.some((d, j) => d !== 1 && clash(d, normalized[normalized.length - s.length + j]))) {
          problem(`${node.inputs[i]} ${show(s)} does not match the normalized shape ${show(normalized)} of ${node.inputs[0]}`);
        }
      }
    }
  }
  return [x ?? UNKNOWN];
};

const product = (dims: readonly Dim[]): Dim => (dims.every(known) ? dims.reduce((p, d) => p * d, 1) : null);

const flattenRule: Rule = (node, ins, problem) => {
  const x = ins[0];
  if (!x?.shape) return [{ dtype: x?.dtype, shape: [null, null] }];
  const rank = x.shape.length;
  const axis = attrInt(node, 'axis', 1);
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a > rank) {
    problem(`axis ${axis} is outside rank ${rank}`);
    return [{ dtype: x.dtype, shape: null }];
  }
  return [{ dtype: x.dtype, shape: [product(x.shape.slice(0, a)), product(x.shape.slice(a))] }];
};

const reshape: Rule = (node, ins, problem, graph) => {
  const x = ins[0];
  const target = graph.initializers.get(node.inputs[1] ?? '');
  const given = target && (target.dtype === 'int64' || target.dtype === 'int32') ? target.toNumbers() : ins[1]?.value;
  if (!given) {
    // the target's length is still the rank
    const n = ins[1]?.shape?.length === 1 ? ins[1].shape[0] : undefined;
    return [{ dtype: x?.dtype, shape: known(n) ? new Array<Dim>(n).fill(null) : null }];
  }
  const wanted = given;
  const allowZero = attrInt(node, 'allowzero', 0) !== 0;
  const out: Dim[] = wanted.map((d, i) => (d === 0 && !allowZero ? (x?.shape?.[i] ?? null) : d === -1 ? null : d));
  if (wanted.filter((d) => d === -1).length > 1) problem(`shape [${wanted.join(', ')}] has more than one -1`);
  const total = x?.shape ? product(x.shape) : null;
  const fixed = product(out.filter((d, i) => wanted[i] !== -1));
  const minus = wanted.indexOf(-1);
  if (known(total) && known(fixed)) {
    if (minus >= 0) {
      if (fixed === 0 || total % fixed !== 0) problem(`cannot reshape ${show(x!.shape)} (${total} elements) to [${wanted.join(', ')}]`);
      else out[minus] = total / fixed;
    } else if (total !== fixed) problem(`cannot reshape ${show(x!.shape)} (${total} elements) to ${show(out)} (${fixed})`);
  }
  // the elements keep their order: a known value stays known as a scalar or a vector
  return [{ dtype: x?.dtype, shape: out, ...(x?.value && out.length <= 1 ? { value: x.value } : {}) }];
};

const transposeRule: Rule = (node, ins, problem) => {
  const x = ins[0];
  if (!x?.shape) return [{ dtype: x?.dtype, shape: null }];
  const rank = x.shape.length;
  const perm = attrInts(node, 'perm') ?? [...Array(rank).keys()].reverse();
  if (perm.length !== rank || [...perm].sort((p, q) => p - q).some((p, i) => p !== i)) {
    problem(`perm [${perm.join(', ')}] is not a permutation of the ${rank} axes of ${show(x.shape)}`);
    return [{ dtype: x.dtype, shape: null }];
  }
  return [{ dtype: x.dtype, shape: perm.map((p) => x.shape![p]!) }];
};

const concat: Rule = (node, ins, problem) => {
  const shapes = ins.map((i) => i.shape);
  const first = ins[0];
  if (shapes.some((s) => s === null) || !first) return [{ dtype: first?.dtype, shape: null }];
  const rank = shapes[0]!.length;
  const axis = attrInt(node, 'axis', 0);
  const a = axis < 0 ? axis + rank : axis;
  if (shapes.some((s) => s!.length !== rank) || a < 0 || a >= rank) {
    problem(`inputs ${shapes.map(show).join(', ')} cannot be joined on axis ${axis}`);
    return [{ dtype: first.dtype, shape: null }];
  }
  const out: Dim[] = [...shapes[0]!];
  for (const s of shapes.slice(1)) {
    s!.forEach((d, i) => {
      if (i === a) return;
      if (clash(d, out[i])) problem(`inputs ${shapes.map(show).join(', ')} differ outside axis ${axis}`);
      else if (!known(out[i]!)) out[i] = d;
    });
  }
  out[a] = product(shapes.map((s) => s![a]!)) === null ? null : shapes.reduce((sum, s) => sum + (s![a] as number), 0);
  const values = rank === 1 && ins.every((i) => i.value !== undefined) ? ins.flatMap((i) => i.value!) : undefined;
  return [{ dtype: first.dtype, shape: out, ...(values && values.length <= MAX_VALUE ? { value: values } : {}) }];
};

const constant: Rule = (node) => {
  const v = node.attributes['value'];
  if (v?.type === 'tensor') {
    const value = smallValue(v.value);
    return [{ dtype: v.value.dtype, shape: v.value.shape, ...(value ? { value } : {}) }];
  }
  return [UNKNOWN];
};

/** Axes given as an attribute (opsets before 13) or as a constant second input. */
function axesOf(node: Node, ins: readonly Info[]): readonly number[] | undefined {
  return attrInts(node, 'axes') ?? (node.inputs[1] ? ins[1]?.value : undefined);
}

const shapeOp: Rule = (node, ins) => {
  const x = ins[0];
  if (!x?.shape) return [{ dtype: 'int64', shape: [null] }];
  const rank = x.shape.length;
  const clamp = (i: number) => Math.min(Math.max(i < 0 ? i + rank : i, 0), rank);
  const dims = x.shape.slice(clamp(attrInt(node, 'start', 0)), clamp(attrInt(node, 'end', rank)));
  return [{ dtype: 'int64', shape: [dims.length], ...(dims.every(known) ? { value: dims as number[] } : {}) }];
};

const gatherRule: Rule = (node, ins) => {
  const [data, indices] = ins;
  if (!data?.shape || !indices?.shape) return [{ dtype: data?.dtype, shape: null }];
  const rank = data.shape.length;
  const axis = attrInt(node, 'axis', 0);
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) return [{ dtype: data.dtype, shape: null }];
  const shape = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)];
  let value: number[] | undefined;
  if (rank === 1 && data.value && indices.value) {
    const n = data.value.length;
    const picked = indices.value.map((i) => data.value![i < 0 ? i + n : i]);
    if (picked.every((v) => v !== undefined)) value = picked as number[];
  }
  return [{ dtype: data.dtype, shape, ...(value ? { value } : {}) }];
};

const unsqueezeRule: Rule = (node, ins) => {
  const x = ins[0];
  const axes = axesOf(node, ins);
  if (!x?.shape || !axes) return [{ dtype: x?.dtype, shape: null }];
  const rank = x.shape.length + axes.length;
  const at = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
  const rest = [...x.shape];
  const shape = Array.from({ length: rank }, (_, i) => (at.has(i) ? 1 : rest.shift() ?? null));
  return [{ dtype: x.dtype, shape, ...(x.value && rank <= 1 ? { value: x.value } : {}) }];
};

const squeezeRule: Rule = (node, ins) => {
  const x = ins[0];
  if (!x?.shape) return [{ dtype: x?.dtype, shape: null }];
  const rank = x.shape.length;
  const axes = axesOf(node, ins);
  if (!axes && !x.shape.every(known)) return [{ dtype: x.dtype, shape: null }];
  const at = new Set((axes ?? x.shape.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => (a < 0 ? a + rank : a)));
  const shape = x.shape.filter((_, i) => !at.has(i));
  return [{ dtype: x.dtype, shape, ...(x.value && shape.length <= 1 ? { value: x.value } : {}) }];
};

const castRule: Rule = (node, ins) => {
  const x = ins[0];
  const to = onnxCodeToDType(attrInt(node, 'to', 0));
  const keep = x?.value && (to === 'int64' || to === 'int32');
  return [{ dtype: to, shape: x?.shape ?? null, ...(keep ? { value: x.value } : {}) }];
};

const sliceRule: Rule = (node, ins) => {
  const x = ins[0];
  if (!x?.shape) return [{ dtype: x?.dtype, shape: null }];
  const rank = x.shape.length;
  const fromInputs = node.inputs.length > 1;
  const starts = fromInputs ? ins[1]?.value : attrInts(node, 'starts');
  const ends = fromInputs ? ins[2]?.value : attrInts(node, 'ends');
  const axes = fromInputs ? (node.inputs[3] ? ins[3]?.value : starts?.map((_, i) => i)) : attrInts(node, 'axes') ?? starts?.map((_, i) => i);
  const steps = fromInputs && node.inputs[4] ? ins[4]?.value : starts?.map(() => 1);
  if (!starts || !ends || !axes || !steps || starts.length !== ends.length || axes.length !== starts.length || steps.length !== starts.length) {
    // which axes are cut may be unknown: every size is
    return [{ dtype: x.dtype, shape: new Array<Dim>(rank).fill(null) }];
  }
  const shape: Dim[] = [...x.shape];
  const ranges: [number, number, number][] = [];
  for (let k = 0; k < axes.length; k++) {
    const a = axes[k]! < 0 ? axes[k]! + rank : axes[k]!;
    const size = x.shape[a];
    const step = steps[k]!;
    if (a < 0 || a >= rank || step === 0) return [{ dtype: x.dtype, shape: null }];
    if (!known(size)) {
      shape[a] = null;
      continue;
    }
    // numpy's clamping, as ONNX defines it
    const clampTo = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + size : v, lo), hi);
    const start = step > 0 ? clampTo(starts[k]!, 0, size) : clampTo(starts[k]!, -1, size - 1);
    const end = step > 0 ? clampTo(ends[k]!, 0, size) : clampTo(ends[k]!, -1, size - 1);
    shape[a] = Math.max(0, Math.ceil((end - start) / step));
    ranges.push([start, end, step]);
  }
  let value: number[] | undefined;
  if (x.value && rank === 1 && ranges.length === 1) {
    const [start, end, step] = ranges[0]!;
    value = [];
    for (let i = start; step > 0 ? i < end : i > end; i += step) value.push(x.value[i]!);
  }
  return [{ dtype: x.dtype, shape, ...(value ? { value } : {}) }];
};

const constantOfShape: Rule = (node, ins) => {
  const v = node.attributes['value'];
  const dtype = v?.type === 'tensor' ? v.value.dtype : 'float32';
  const given = ins[0];
  if (given?.value) return [{ dtype, shape: given.value }];
  const n = given?.shape?.[0];
  return [{ dtype, shape: given?.shape?.length === 1 && known(n) ? new Array<Dim>(n).fill(null) : null }];
};

const expandRule: Rule = (_node, ins, problem) => {
  const [x, target] = ins;
  if (target?.value) return [{ dtype: x?.dtype, shape: broadcast([x?.shape ?? null, target.value], problem) }];
  const n = target?.shape?.[0];
  if (!x?.shape || target?.shape?.length !== 1 || !known(n)) return [{ dtype: x?.dtype, shape: null }];
  return [{ dtype: x.dtype, shape: new Array<Dim>(Math.max(x.shape.length, n)).fill(null) }];
};

const compareRule: Rule = (_node, ins, problem) => [{ dtype: 'bool', shape: broadcast(ins.map((i) => i.shape), problem) }];

const whereRule: Rule = (_node, ins, problem) => [{ dtype: ins[1]?.dtype ?? ins[2]?.dtype, shape: broadcast(ins.map((i) => i.shape), problem) }];

const softmaxRule: Rule = (node, ins, problem) => {
  const x = ins[0];
  if (x?.shape) {
    const axis = attrInt(node, 'axis', -1);
    const rank = x.shape.length;
    if (axis < -Math.max(rank, 1) || axis >= Math.max(rank, 1)) problem(`axis ${axis} is outside rank ${rank}`);
  }
  return [x ?? UNKNOWN];
};

const RULES: Readonly<Record<string, Rule>> = {
  Gemm: gemm,
  MatMul: matmul,
  Conv: conv,
  MaxPool: pool,
  AveragePool: pool,
  GlobalAveragePool: globalPool,
  GlobalMaxPool: globalPool,
  BatchNormalization: batchNorm,
  LayerNormalization: layerNorm,
  Flatten: flattenRule,
  Reshape: reshape,
  Transpose: transposeRule,
  Concat: concat,
  Constant: constant,
  Softmax: softmaxRule,
  LogSoftmax: softmaxRule,
  Add: arithmetic,
  Sub: arithmetic,
  Mul: arithmetic,
  Div: arithmetic,
  Pow: (n, ins, p) => [{ dtype: ins[0]?.dtype, shape: broadcast(ins.map((i) => i.shape), p) }],
  Mod: arithmetic,
  Shape: shapeOp,
  Gather: gatherRule,
  Unsqueeze: unsqueezeRule,
  Squeeze: squeezeRule,
  Cast: castRule,
  Slice: sliceRule,
  ConstantOfShape: constantOfShape,
  Expand: expandRule,
  Equal: compareRule,
  Less: compareRule,
  Greater: compareRule,
  Where: whereRule,
  ...Object.fromEntries(
    ['Sigmoid', 'Relu', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Neg', 'Abs', 'Erf', 'LeakyRelu', 'Elu', 'Gelu', 'Identity', 'Dropout', 'Softplus', 'HardSigmoid', 'Selu', 'Reciprocal', 'Floor', 'Ceil'].map((op) => [op, same]),
  ),
};

export interface ShapeInference {
  readonly values: ReadonlyMap<string, Info>;
  readonly problems: readonly ShapeProblem[];
  /** Nodes whose op has no rule here (their outputs are unknown). */
  readonly unruled: readonly string[];
}

/** Infers shapes along the graph in execution order; reports nodes that can never run. */
export function inferShapes(graph: Graph): ShapeInference {
  const values = new Map<string, Info>();
  const problems: ShapeProblem[] = [];
  for (const i of graph.inputs) values.set(i.name, { dtype: i.dtype, shape: i.shape });
  for (const [name, t] of graph.initializers) {
    const value = smallValue(t);
    values.set(name, { dtype: t.dtype, shape: t.shape, ...(value ? { value } : {}) });
  }
  const unruled = new Set<string>();
  const pending = [...graph.nodes];
  while (pending.length) {
    const before = pending.length;
    for (let i = 0; i < pending.length; ) {
      const node = pending[i]!;
      if (!node.inputs.every((x) => x === '' || values.has(x))) {
        i++;
        continue;
      }
      pending.splice(i, 1);
      const ins = node.inputs.map((x) => (x === '' ? UNKNOWN : values.get(x)!));
      const rule = node.domain === '' || node.domain === 'ai.onnx' ? RULES[node.op] : undefined;
      let outs: Info[] = [];
      if (rule) {
        try {
          outs = rule(node, ins, (problem) => problems.push({ node: node.name, op: node.op, problem }), graph);
        } catch (e) {
          problems.push({ node: node.name, op: node.op, problem: `shape rule failed: ${(e as Error).message}` });
        }
      } else unruled.add(node.op);
      node.outputs.forEach((o, k) => {
        if (o !== '') values.set(o, outs[k] ?? UNKNOWN);
      });
    }
    if (pending.length === before) {
      for (const node of pending) {
        const missing = node.inputs.filter((x) => x !== '' && !values.has(x));
        const produced = missing.some((m) => pending.some((n) => n !== node && n.outputs.includes(m)));
        problems.push({ node: node.name, op: node.op, problem: produced ? `is part of a cycle through ${missing.join(', ')}` : `reads ${missing.join(', ')}, which no node, input or initializer provides` });
      }
      break;
    }
  }
  return { values, problems, unruled: [...unruled].sort() };
}

export function checkShapes(ctx: CheckContext): CheckResult {
  const graph = ctx.model.graph;
  if (!graph) return result('shapes', 'skip', 'bare state dict: no graph to infer shapes along');
  const inferred = inferShapes(graph);
  const { values, unruled } = inferred;
  const problems = [...inferred.problems];
  const outputs: Array<{ name: string; dtype: string | null; shape: readonly Dim[] | null }> = [];
  for (const o of graph.outputs) {
    const info = values.get(o.name);
    if (!info) {
      problems.push({ node: '', op: '', problem: `graph output ${o.name} is produced by no node, input or initializer` });
      continue;
    }
    outputs.push({ name: o.name, dtype: info.dtype ?? null, shape: info.shape });
    if (info.dtype && o.dtype !== info.dtype) problems.push({ node: '', op: '', problem: `graph output ${o.name} is declared ${o.dtype} but computes ${info.dtype}` });
    if (o.shape && info.shape) {
      if (o.shape.length !== info.shape.length || o.shape.some((d, i) => clash(d, info.shape![i]))) {
        problems.push({ node: '', op: '', problem: `graph output ${o.name} is declared ${show(o.shape)} but computes ${show(info.shape)}` });
      }
    }
  }
  const details = { problems, outputs, unknownOps: unruled };
  if (problems.length) {
    const first = problems[0]!;
    const where = first.node ? `node ${first.node} (${first.op}): ` : '';
    return result('shapes', 'fail', `${where}${first.problem}${problems.length > 1 ? ` (+${problems.length - 1} more)` : ''}`, details);
  }
  const summary = outputs.map((o) => `${o.name} ${o.dtype ?? '?'} ${show(o.shape)}`).join(', ');
  const partial = unruled.length ? `; no shape rule for ${unruled.join(', ')}` : '';
  return result('shapes', 'pass', `${graph.nodes.length} nodes consistent; outputs ${summary}${partial}`, details);
}
