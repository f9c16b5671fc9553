import type { DType } from '../../core/dtypes.js';
import { UsageError } from '../../core/errors.js';
import { attr, attrFloat, attrInt, attrInts, attrString, nodeOuterReads, type Attribute, type Dim, type Graph, type Node } from '../../core/graph.js';
import { Tensor } from '../../core/tensor.js';
import { onnxCodeToDType } from './dtypes.js';
import { IR_FOR_OPSET, MAX_KNOWN_OPSET, REMOVED_AT, SCHEMAS, TYPE_SETS, type SchemaVersion } from './opset-schemas.js';

/**
 * Opset conversion of the default ONNX domain, table-driven. SCHEMAS (generated from ONNX's
 * schema registry) says at which opsets each op changed; CHANGES below says what each change
 * means when a graph crosses it, upward (`up`: rewrite an old-form node into the new form) or
 * downward (`down`). A crossing with no entry is a compatible change (new types, wider ranges,
 * new attributes whose defaults keep the old behaviour). An op that does not exist at the target
 * opset is rewritten by its `down` entry at its first version (Gelu into Erf/Mul/Add, ...) or
 * refused. Every converted node is then checked against the target opset's schema (attribute
 * names, input count, input element types), so what cannot be written exactly is refused with a
 * one-line reason rather than written wrong.
 */

/** The lowest opset written (the runtime and multidirectional broadcasting start at 7). */
export const MIN_WRITE_OPSET = 7;
export { MAX_KNOWN_OPSET };

/** IR versions needed by element types newer than their opset's release. */
const IR_FOR_DTYPE: Partial<Record<DType, number>> = {
  float8_e4m3fn: 9,
  float8_e4m3fnuz: 9,
  float8_e5m2: 9,
  float8_e5m2fnuz: 9,
  float4_e2m1fn_x2: 11,
  float8_e8m0fnu: 12,
};

/**
 * The ir_version a file with this opset should carry: that of the ONNX release that introduced
 * the opset (opset 17 -> IR 8), raised for element types that came later; at least 4, since the
 * writer lists initializers only as initializers (IR 3 wanted them among the graph inputs).
 */
export function irVersionFor(opset: number, dtypes: Iterable<DType> = []): number {
  let ir = 3;
  for (const [at, version] of Object.entries(IR_FOR_OPSET)) if (Number(at) <= opset) ir = Math.max(ir, version);
  for (const d of dtypes) ir = Math.max(ir, IR_FOR_DTYPE[d] ?? 0);
  return Math.max(ir, 4);
}

// ---------------------------------------------------------------------------------------------
// What the adapters may ask about the graph.

interface Facts {
  dtype?: DType;
  rank?: number;
  /** Known sizes (graph inputs, constants and what elementwise unary ops pass on). */
  shape?: readonly Dim[];
}

interface Context {
  readonly target: number;
  dtype(value: string): DType | undefined;
  rank(value: string): number | undefined;
  shape(value: string): readonly Dim[] | undefined;
  /** A value's constant contents (initializer or Constant node), if it has any. */
  constant(value: string): Tensor | undefined;
  /** A new initializer; returns its (fresh) name. */
  addConstant(base: string, tensor: Tensor): string;
  /** A value or node name not used anywhere in the graph yet. */
  fresh(base: string): string;
  refuse(node: Node, why: string): never;
}

type Rewrite = (node: Node, ctx: Context) => Node[];

interface Change {
  /** The opset whose schema differs from the one before it. */
  readonly at: number;
  /** Old form (opset at-1) -> new form (opset at). */
  readonly up?: Rewrite;
  /** New form (opset at) -> old form (opset at-1); at an op's first version: its decomposition. */
  readonly down?: Rewrite;
}

// ---------------------------------------------------------------------------------------------
// Small helpers for rewrites.

function withAttrs(node: Node, set: Record<string, Attribute | undefined>, inputs: readonly string[] = node.inputs): Node {
  const attributes: Record<string, Attribute> = {};
  for (const [k, v] of Object.entries(node.attributes)) if (!(k in set)) attributes[k] = v;
  for (const [k, v] of Object.entries(set)) if (v !== undefined) attributes[k] = v;
  return { ...node, inputs: trimInputs(inputs), attributes };
}

/** Trailing omitted optional inputs are dropped, as ONNX writes them. */
function trimInputs(inputs: readonly string[]): string[] {
  const out = [...inputs];
  while (out.length && out[out.length - 1] === '') out.pop();
  return out;
}

function input(node: Node, i: number): string {
  return node.inputs[i] ?? '';
}

const int64s = (values: readonly number[]) => Tensor.from('int64', [values.length], values.map((v) => BigInt(v)));
const scalarOf = (dtype: DType, value: number) => Tensor.from(dtype, [], dtype === 'int64' || dtype === 'uint64' ? [BigInt(value)] : [value]);

/** The integer contents of a constant input, or undefined when the input is omitted; refuses a computed one. */
function constInts(node: Node, i: number, what: string, ctx: Context): number[] | undefined {
  const name = input(node, i);
  if (name === '') return undefined;
  const t = ctx.constant(name);
  if (!t || (t.dtype !== 'int64' && t.dtype !== 'int32')) ctx.refuse(node, `its ${what} input must be a constant integer tensor to become an attribute`);
  return t.toNumbers();
}

function constFloat(node: Node, i: number, what: string, ctx: Context): number | undefined {
  const name = input(node, i);
  if (name === '') return undefined;
  const t = ctx.constant(name);
  if (!t || t.size !== 1 || t.dtype === 'string') ctx.refuse(node, `its ${what} input must be a constant scalar to become an attribute`);
  return t.toNumbers()[0]!;
}

/** A chain of new nodes named after `node`; `emit` adds one and returns its output value. */
function builder(node: Node, ctx: Context) {
  const nodes: Node[] = [];
  return {
    nodes,
    emit(op: string, inputs: readonly string[], attributes: Record<string, Attribute> = {}, output?: string): string {
      const out = output ?? ctx.fresh(`${node.name}/${op}`);
      nodes.push({ name: output !== undefined ? node.name : ctx.fresh(`${node.name}/${op}_node`), op, domain: '', inputs: trimInputs(inputs), outputs: [out], attributes });
      return out;
    },
  };
}

const normalizeAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

// ---------------------------------------------------------------------------------------------
// The table.

/** Softmax, LogSoftmax, Hardmax at 13: "coerce to 2-D at axis" became "along axis" (default 1 -> -1). */
const softmax13: Change = {
  at: 13,
  up(node, ctx) {
    const axis = attrInt(node, 'axis', 1);
    const rank = ctx.rank(input(node, 0));
    if (rank !== undefined && normalizeAxis(axis, rank) === rank - 1) return [withAttrs(node, { axis: attr.int(axis) })];
    // The exact old meaning for any axis: flatten from `axis`, take the op over the flattened tail, restore the shape.
    const b = builder(node, ctx);
    const flat = b.emit('Flatten', [input(node, 0)], { axis: attr.int(axis) });
    const y = b.emit(node.op, [flat], { axis: attr.int(1) });
    const shape = b.emit('Shape', [input(node, 0)]);
    b.emit('Reshape', [y, shape], {}, node.outputs[0]);
    return b.nodes;
  },
  down(node, ctx) {
    const axis = attrInt(node, 'axis', -1);
    const rank = ctx.rank(input(node, 0));
    if (rank !== undefined && normalizeAxis(axis, rank) === rank - 1) return [withAttrs(node, { axis: attr.int(rank - 1) })];
    return ctx.refuse(
      node,
      `${node.op} over axis ${axis} of ${rank === undefined ? 'an input of unknown rank' : `a rank-${rank} input`} has no equivalent before opset 13 ` +
        `(the older ${node.op} flattens every axis from \`axis\` on); only the last axis converts`,
    );
  },
};

/** Squeeze, Unsqueeze, ReduceSum (13) and the other reductions (18): `axes` moved from attribute to input. */
function axesToInput(at: number, reduce: boolean): Change {
  return {
    at,
    up(node, ctx) {
      const axes = attrInts(node, 'axes');
      if (axes === undefined) return [withAttrs(node, { axes: undefined })];
      return [withAttrs(node, { axes: undefined }, [input(node, 0), ctx.addConstant(`${node.name}/axes`, int64s(axes))])];
    },
    down(node, ctx) {
      const axes = constInts(node, 1, 'axes', ctx);
      if (reduce) {
        const noop = attrInt(node, 'noop_with_empty_axes', 0) === 1;
        if ((axes === undefined || axes.length === 0) && noop) {
          // Reducing over no axes with noop_with_empty_axes is the identity.
          return [{ ...node, op: 'Identity', inputs: [input(node, 0)], attributes: {} }];
        }
        return [withAttrs(node, { axes: axes?.length ? attr.ints(axes) : undefined, noop_with_empty_axes: undefined }, [input(node, 0)])];
      }
      return [withAttrs(node, { axes: axes ? attr.ints(axes) : undefined }, [input(node, 0)])];
    },
  };
}

const REDUCE_18 = ['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare'];

/** Inputs that were float attributes (Clip's min/max before 11, Dropout's ratio before 12, Pad's value before 11). */
function floatInput(node: Node, key: string, dtype: DType, ctx: Context, fallback?: number): string {
  const a = node.attributes[key];
  const value = a && (a.type === 'float' || a.type === 'int') ? a.value : fallback;
  return value === undefined ? '' : ctx.addConstant(`${node.name}/${key}`, scalarOf(dtype, value));
}

const clip11: Change = {
  at: 11,
  up(node, ctx) {
    const dtype = ctx.dtype(input(node, 0)) ?? 'float32';
    return [withAttrs(node, { min: undefined, max: undefined }, [input(node, 0), floatInput(node, 'min', dtype, ctx), floatInput(node, 'max', dtype, ctx)])];
  },
  down(node, ctx) {
    const min = constFloat(node, 1, 'min', ctx);
    const max = constFloat(node, 2, 'max', ctx);
    return [withAttrs(node, { min: min === undefined ? undefined : attr.float(min), max: max === undefined ? undefined : attr.float(max) }, [input(node, 0)])];
  },
};

const split13: Change = {
  at: 13,
  up(node, ctx) {
    const split = attrInts(node, 'split');
    return [withAttrs(node, { split: undefined }, split ? [input(node, 0), ctx.addConstant(`${node.name}/split`, int64s(split))] : [input(node, 0)])];
  },
  down(node, ctx) {
    const split = constInts(node, 1, 'split', ctx);
    return [withAttrs(node, { split: split ? attr.ints(split) : undefined }, [input(node, 0)])];
  },
};

const split18: Change = {
  at: 18,
  // From 18 an equal split must say how many parts (num_outputs); before, the output count said it.
  up: (node) => [input(node, 1) === '' ? withAttrs(node, { num_outputs: attr.int(node.outputs.length) }) : node],
  down(node, ctx) {
    if (!node.attributes['num_outputs']) return [node];
    // num_outputs allows a smaller last part; the older Split only splits evenly (and fails otherwise).
    const shape = ctx.shape(input(node, 0));
    const n = node.outputs.length;
    const size = shape?.[normalizeAxis(attrInt(node, 'axis', 0), shape.length)];
    if (typeof size !== 'number' || size % n === 0) return [withAttrs(node, { num_outputs: undefined })];
    const chunk = Math.ceil(size / n);
    const sizes = Array.from({ length: n }, (_, i) => (i < n - 1 ? chunk : size - chunk * (n - 1)));
    if (sizes[n - 1]! < 0) return ctx.refuse(node, `${size} elements do not split into ${n} parts`);
    return [withAttrs(node, { num_outputs: undefined }, [input(node, 0), ctx.addConstant(`${node.name}/split`, int64s(sizes))])];
  },
};

const pad11: Change = {
  at: 11,
  up(node, ctx) {
    const pads = attrInts(node, 'pads') ?? attrInts(node, 'paddings');
    if (!pads) return ctx.refuse(node, 'it has no pads attribute');
    const mode = attrString(node, 'mode', 'constant');
    const dtype = ctx.dtype(input(node, 0)) ?? 'float32';
    const value = mode === 'constant' ? floatInput(node, 'value', dtype, ctx) : '';
    return [withAttrs(node, { pads: undefined, paddings: undefined, value: undefined }, [input(node, 0), ctx.addConstant(`${node.name}/pads`, int64s(pads)), value])];
  },
  down(node, ctx) {
    const pads = constInts(node, 1, 'pads', ctx)!;
    const value = constFloat(node, 2, 'constant_value', ctx);
    return [withAttrs(node, { pads: attr.ints(pads), value: value === undefined ? undefined : attr.float(value) }, [input(node, 0)])];
  },
};

const pad18: Change = {
  at: 18,
  down(node, ctx) {
    const axes = constInts(node, 3, 'axes', ctx);
    if (axes === undefined) return [node];
    const rank = ctx.rank(input(node, 0));
    const pads = constInts(node, 1, 'pads', ctx)!;
    if (rank === undefined) return ctx.refuse(node, 'its axes input needs the input rank to expand into full pads, and the rank is unknown');
    const full = new Array<number>(2 * rank).fill(0);
    axes.forEach((a, i) => {
      const k = normalizeAxis(a, rank);
      full[k] = pads[i]!;
      full[k + rank] = pads[i + axes.length]!;
    });
    return [withAttrs(node, {}, [input(node, 0), ctx.addConstant(`${node.name}/pads`, int64s(full)), input(node, 2)])];
  },
};

const pad19: Change = {
  at: 19,
  down: (node, ctx) => (attrString(node, 'mode', 'constant') === 'wrap' ? ctx.refuse(node, 'mode "wrap" exists from opset 19') : [node]),
};

const slice10: Change = {
  at: 10,
  up(node, ctx) {
    const starts = attrInts(node, 'starts');
    const ends = attrInts(node, 'ends');
    if (!starts || !ends) return ctx.refuse(node, 'it has no starts/ends attributes');
    const axes = attrInts(node, 'axes');
    const inputs = [input(node, 0), ctx.addConstant(`${node.name}/starts`, int64s(starts)), ctx.addConstant(`${node.name}/ends`, int64s(ends))];
    if (axes) inputs.push(ctx.addConstant(`${node.name}/axes`, int64s(axes)));
    return [withAttrs(node, { starts: undefined, ends: undefined, axes: undefined }, inputs)];
  },
  down(node, ctx) {
    const starts = constInts(node, 1, 'starts', ctx)!;
    const ends = constInts(node, 2, 'ends', ctx)!;
    const axes = constInts(node, 3, 'axes', ctx);
    const steps = constInts(node, 4, 'steps', ctx);
    if (steps && steps.some((s) => s !== 1)) ctx.refuse(node, 'steps other than 1 exist from opset 10');
    return [withAttrs(node, { starts: attr.ints(starts), ends: attr.ints(ends), axes: axes ? attr.ints(axes) : undefined }, [input(node, 0)])];
  },
};

const topk10: Change = {
  at: 10,
  up(node, ctx) {
    const k = attrInt(node, 'k', -1);
    if (k < 0) return ctx.refuse(node, 'it has no k attribute');
    return [withAttrs(node, { k: undefined }, [input(node, 0), ctx.addConstant(`${node.name}/k`, int64s([k]))])];
  },
  down(node, ctx) {
    const k = constInts(node, 1, 'k', ctx);
    if (!k || k.length !== 1) return ctx.refuse(node, 'its k input must be a constant of one element');
    return [withAttrs(node, { k: attr.int(k[0]!) }, [input(node, 0)])];
  },
};

const topk11: Change = {
  at: 11,
  down(node, ctx) {
    if (attrInt(node, 'largest', 1) !== 1) ctx.refuse(node, 'largest=0 (the k smallest) exists from opset 11');
    // sorted=0 allows any order; the older TopK's sorted order is one of them.
    return [withAttrs(node, { largest: undefined, sorted: undefined })];
  },
};

const dropout12: Change = {
  at: 12,
  up: (node, ctx) => [withAttrs(node, { ratio: undefined, is_test: undefined }, [input(node, 0), floatInput(node, 'ratio', 'float32', ctx)])],
  down(node, ctx) {
    const ratio = constFloat(node, 1, 'ratio', ctx);
    if (input(node, 2) !== '') {
      const training = ctx.constant(input(node, 2));
      if (!training || training.toNumbers().some((v) => v !== 0)) ctx.refuse(node, 'training_mode as an input exists from opset 12');
    }
    return [withAttrs(node, { ratio: ratio === undefined ? undefined : attr.float(ratio), seed: undefined }, [input(node, 0)])];
  },
};

/** An attribute added at `at` whose non-default values have no older equivalent: dropped going down. */
function newAttribute(at: number, key: string, isDefault: (a: Attribute) => boolean, why: string): Change {
  return {
    at,
    down(node, ctx) {
      const a = node.attributes[key];
      if (a && !isDefault(a)) ctx.refuse(node, why);
      return [withAttrs(node, { [key]: undefined })];
    },
  };
}

/** An attribute that gained values at `at`: kept going down unless it uses one of the new values. */
function newValues(at: number, key: string, isOld: (a: Attribute) => boolean, why: string): Change {
  return {
    at,
    down(node, ctx) {
      const a = node.attributes[key];
      if (a && !isOld(a)) ctx.refuse(node, why);
      return [node];
    },
  };
}

const isInt = (v: number) => (a: Attribute) => a.type === 'int' && a.value === v;
const isString = (...v: string[]) => (a: Attribute) => a.type === 'string' && v.includes(a.value);
const allOnes = (a: Attribute) => a.type === 'ints' && a.value.every((d) => d === 1);

const gelu20: Change = {
  at: 20,
  down(node, ctx) {
    const x = input(node, 0);
    const dtype = ctx.dtype(x) ?? 'float32';
    const c = (name: string, v: number) => ctx.addConstant(`${node.name}/${name}`, scalarOf(dtype, v));
    const b = builder(node, ctx);
    const approximate = attrString(node, 'approximate', 'none');
    let inner: string;
    if (approximate === 'tanh') {
      // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      const x3 = b.emit('Mul', [b.emit('Mul', [x, x]), x]);
      const sum = b.emit('Add', [x, b.emit('Mul', [x3, c('coefficient', 0.044715)])]);
      inner = b.emit('Tanh', [b.emit('Mul', [sum, c('sqrt_2_over_pi', Math.sqrt(2 / Math.PI))])]);
    } else if (approximate === 'none') {
      // 0.5 x (1 + erf(x / sqrt(2)))
      inner = b.emit('Erf', [b.emit('Div', [x, c('sqrt_2', Math.SQRT2)])]);
    } else {
      return ctx.refuse(node, `approximate=${JSON.stringify(approximate)} is not a Gelu mode`);
    }
    const scaled = b.emit('Mul', [x, b.emit('Add', [inner, c('one', 1)])]);
    b.emit('Mul', [scaled, c('half', 0.5)], {}, node.outputs[0]);
    return b.nodes;
  },
};

const layerNorm17: Change = {
  at: 17,
  down(node, ctx) {
    const x = input(node, 0);
    const axis = attrInt(node, 'axis', -1);
    const rank = ctx.rank(x);
    let axes: number[];
    if (axis < 0) axes = Array.from({ length: -axis }, (_, i) => axis + i);
    else if (rank !== undefined) axes = Array.from({ length: rank - axis }, (_, i) => axis + i);
    else return ctx.refuse(node, `axis ${axis} needs the input rank to list the normalized axes, and the rank is unknown`);
    const dtype = ctx.dtype(x) ?? 'float32';
    const b = builder(node, ctx);
    const [y, meanOut, invStdOut] = [node.outputs[0]!, node.outputs[1] ?? '', node.outputs[2] ?? ''];
    const reduce = { axes: attr.ints(axes), keepdims: attr.int(1) };
    const mean = b.emit('ReduceMean', [x], reduce, meanOut || undefined);
    const centered = b.emit('Sub', [x, mean]);
    const variance = b.emit('ReduceMean', [b.emit('Mul', [centered, centered])], reduce);
    const std = b.emit('Sqrt', [b.emit('Add', [variance, ctx.addConstant(`${node.name}/epsilon`, scalarOf(dtype, attrFloat(node, 'epsilon', 1e-5)))])]);
    if (invStdOut) b.emit('Reciprocal', [std], {}, invStdOut);
    const normalized = b.emit('Div', [centered, std]);
    const bias = input(node, 2);
    if (bias === '') {
      b.emit('Mul', [normalized, input(node, 1)], {}, y);
    } else {
      b.emit('Add', [b.emit('Mul', [normalized, input(node, 1)]), bias], {}, y);
    }
    return b.nodes;
  },
};

const mish18: Change = {
  at: 18,
  down(node, ctx) {
    const b = builder(node, ctx);
    const x = input(node, 0);
    b.emit('Mul', [x, b.emit('Tanh', [b.emit('Softplus', [x])])], {}, node.outputs[0]);
    return b.nodes;
  },
};

const hardSwish14: Change = {
  at: 14,
  down(node, ctx) {
    const b = builder(node, ctx);
    const x = input(node, 0);
    b.emit('Mul', [x, b.emit('HardSigmoid', [x], { alpha: attr.float(1 / 6), beta: attr.float(0.5) })], {}, node.outputs[0]);
    return b.nodes;
  },
};

const shape15: Change = {
  at: 15,
  down(node, ctx) {
    const start = node.attributes['start'];
    const end = node.attributes['end'];
    if (!start && !end) return [node];
    const b = builder(node, ctx);
    const shape = b.emit('Shape', [input(node, 0)]);
    const s = start?.type === 'int' ? start.value : 0;
    const e = end?.type === 'int' ? end.value : Number.MAX_SAFE_INTEGER;
    const k = (name: string, v: number) => ctx.addConstant(`${node.name}/${name}`, int64s([v]));
    b.emit('Slice', [shape, k('starts', s), k('ends', e), k('axes', 0)], {}, node.outputs[0]);
    return b.nodes;
  },
};

const constant12: Change = {
  at: 12,
  down(node, ctx) {
    const a = node.attributes;
    const value = (t: Tensor) => [withAttrs({ ...node, attributes: {} }, { value: attr.tensor(t) })];
    const v = a['value_float'] ?? a['value_floats'] ?? a['value_int'] ?? a['value_ints'];
    if (v?.type === 'float') return value(Tensor.from('float32', [], [v.value]));
    if (v?.type === 'floats') return value(Tensor.from('float32', [v.value.length], v.value));
    if (v?.type === 'int') return value(Tensor.from('int64', [], [BigInt(v.value)]));
    if (v?.type === 'ints') return value(int64s(v.value));
    if (a['value_string'] || a['value_strings']) return ctx.refuse(node, 'string constants as value_string(s) exist from opset 12');
    return [node];
  },
};

const gemm11: Change = {
  at: 11,
  down(node, ctx) {
    if (input(node, 2) !== '') return [node];
    // C became optional in 11; before, a zero C (broadcast) means the same.
    const zero = ctx.addConstant(`${node.name}/C`, scalarOf(ctx.dtype(input(node, 0)) ?? 'float32', 0));
    return [withAttrs(node, {}, [input(node, 0), input(node, 1), zero])];
  },
};

const batchNorm9: Change = {
  at: 9,
  up: (node, ctx) => (attrInt(node, 'spatial', 1) !== 1 ? ctx.refuse(node, 'spatial=0 has no equivalent from opset 9') : [withAttrs(node, { spatial: undefined })]),
};

const resize11: Change = {
  at: 11,
  up(node, ctx) {
    const mode = attrString(node, 'mode', 'nearest');
    const roi = ctx.addConstant(`${node.name}/roi`, Tensor.from('float32', [0], []));
    // Resize-10 (and Upsample) sample as "asymmetric" with floor rounding for nearest.
    return [
      withAttrs(
        node,
        { coordinate_transformation_mode: attr.string('asymmetric'), nearest_mode: mode === 'nearest' ? attr.string('floor') : undefined },
        [input(node, 0), roi, input(node, 1)],
      ),
    ];
  },
  down(node, ctx) {
    const mode = attrString(node, 'mode', 'nearest');
    const ok =
      attrString(node, 'coordinate_transformation_mode', 'half_pixel') === 'asymmetric' &&
      (mode !== 'nearest' || attrString(node, 'nearest_mode', 'round_prefer_floor') === 'floor') &&
      mode !== 'cubic' &&
      attrInt(node, 'exclude_outside', 0) === 0 &&
      input(node, 3) === '' &&
      input(node, 2) !== '';
    if (!ok) ctx.refuse(node, 'only asymmetric, floor-rounded nearest or linear resizing by scales exists before opset 11');
    return [{ ...node, inputs: [input(node, 0), input(node, 2)], attributes: { mode: attr.string(mode) } }];
  },
};

const resize13: Change = {
  at: 13,
  down(node, ctx) {
    // roi and scales became omittable in 13; before, empty tensors stood for them.
    const empty = (name: string) => ctx.addConstant(`${node.name}/${name}`, Tensor.from('float32', [0], []));
    const inputs = [...node.inputs];
    if (input(node, 1) === '' && inputs.length > 1) inputs[1] = empty('roi');
    if (input(node, 2) === '' && inputs.length > 2) inputs[2] = empty('scales');
    return [withAttrs(node, {}, inputs)];
  },
};

const resize18: Change = {
  at: 18,
  down(node, ctx) {
    if (attrInt(node, 'antialias', 0) !== 0) ctx.refuse(node, 'antialias exists from opset 18');
    if (node.attributes['axes']) ctx.refuse(node, 'axes exists from opset 18');
    if (attrString(node, 'keep_aspect_ratio_policy', 'stretch') !== 'stretch') ctx.refuse(node, 'keep_aspect_ratio_policy exists from opset 18');
    return [withAttrs(node, { antialias: undefined, axes: undefined, keep_aspect_ratio_policy: undefined })];
  },
};

const upsampleScales9: Change = {
  at: 9,
  up(node, ctx) {
    const scales = node.attributes['scales'];
    if (!scales || scales.type !== 'floats') return ctx.refuse(node, 'it has no scales attribute');
    const t = ctx.addConstant(`${node.name}/scales`, Tensor.from('float32', [scales.value.length], scales.value));
    return [withAttrs(node, { scales: undefined, height_scale: undefined, width_scale: undefined }, [input(node, 0), t])];
  },
  down(node, ctx) {
    const t = ctx.constant(input(node, 1));
    if (!t) return ctx.refuse(node, 'its scales input must be constant to become an attribute');
    return [withAttrs(node, { scales: attr.floats(Array.from(t.toFloat32())) }, [input(node, 0)])];
  },
};

/**
 * Before 7, Add, Mul, ... broadcast only with `broadcast=1`, aligning B at `axis` of A (suffix by
 * default); from 7 they broadcast as numpy does (right-aligned). A suffix alignment is the same.
 */
const broadcast7: Change = {
  at: 7,
  up(node, ctx) {
    if (attrInt(node, 'broadcast', 0) === 1 && node.attributes['axis']) {
      const a = ctx.rank(input(node, 0));
      const b = ctx.rank(input(node, node.op === 'Gemm' ? 2 : 1));
      if (a === undefined || b === undefined || attrInt(node, 'axis', 0) !== a - b) {
        ctx.refuse(node, 'broadcast=1 with an axis that does not align the shapes at their ends has no numpy-broadcasting equivalent');
      }
    }
    return [withAttrs(node, { broadcast: undefined, axis: undefined })];
  },
};

const reshape5: Change = {
  at: 5,
  up(node, ctx) {
    const shape = attrInts(node, 'shape');
    if (!shape) return ctx.refuse(node, 'it has no shape attribute');
    return [withAttrs(node, { shape: undefined }, [input(node, 0), ctx.addConstant(`${node.name}/shape`, int64s(shape))])];
  },
};

/** Cast's `to` was a type name before 6 and a TensorProto.DataType code from 6. */
const CAST_NAMES: Readonly<Record<string, number>> = {
  FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13,
};

/** Before 7, a PRelu slope of shape [C] applied per channel (axis 1); from 7 it broadcasts as numpy does. */
const prelu7: Change = {
  at: 7,
  up(node, ctx) {
    const slope = ctx.constant(input(node, 1));
    const rank = ctx.rank(input(node, 0));
    if (slope && slope.shape.length === 1 && slope.size > 1 && rank !== undefined && rank > 2) {
      const reshaped = Tensor.fromBytes(slope.dtype, [slope.size, ...new Array<number>(rank - 2).fill(1)], slope.bytes());
      return [withAttrs(node, { consumed_inputs: undefined }, [input(node, 0), ctx.addConstant(`${input(node, 1)}/per_channel`, reshaped)])];
    }
    if (!slope && rank !== 2) ctx.refuse(node, 'a computed slope of the opset-6 PRelu cannot be aligned to the channel axis');
    return [node];
  },
};

/** DFT's axis moved from an attribute to an input in 20. */
const dft20: Change = {
  at: 20,
  up(node, ctx) {
    const axis = node.attributes['axis'];
    const value = axis?.type === 'int' ? axis.value : 1;
    return [withAttrs(node, { axis: undefined }, [input(node, 0), input(node, 1), ctx.addConstant(`${node.name}/axis`, Tensor.from('int64', [], [BigInt(value)]))])];
  },
  down(node, ctx) {
    const axis = constInts(node, 2, 'axis', ctx);
    return [withAttrs(node, { axis: attr.int(axis ? axis[0]! : -2) }, [input(node, 0), input(node, 1)])];
  },
};

/** Opset 22 changed which windows ceil_mode keeps (a last window starting in the padding is dropped). */
const ceilMode22 = newValues(22, 'ceil_mode', isInt(0), "ceil_mode=1 counts windows differently before opset 22");

/** GridSample 20 renamed its modes (bilinear -> linear, bicubic -> cubic) and went N-D. */
const gridSample20: Change = {
  at: 20,
  up(node) {
    const mode = attrString(node, 'mode', 'bilinear');
    const renamed = { bilinear: 'linear', bicubic: 'cubic' }[mode] ?? mode;
    return [withAttrs(node, { mode: attr.string(renamed) })];
  },
  down(node, ctx) {
    const rank = ctx.rank(input(node, 0));
    if (rank !== 4) ctx.refuse(node, `only 4-D inputs can be sampled before opset 20 (the input is ${rank === undefined ? 'of unknown rank' : `${rank}-D`})`);
    const mode = attrString(node, 'mode', 'linear');
    const renamed = { linear: 'bilinear', cubic: 'bicubic' }[mode] ?? mode;
    return [withAttrs(node, { mode: attr.string(renamed) })];
  },
};

const CHANGES: Readonly<Record<string, readonly Change[]>> = {
  GridSample: [gridSample20],
  ...Object.fromEntries(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Equal', 'Less', 'Greater', 'And', 'Or', 'Xor'].map((op) => [op, [broadcast7]])),
  PRelu: [prelu7],
  DFT: [dft20],
  Concat: [{ at: 4, up: (node) => [node.attributes['axis'] ? node : withAttrs(node, { axis: attr.int(1) })] }],
  Tile: [{ at: 6, up: (node, ctx) => ctx.refuse(node, 'the opset-1 Tile (tiles and axis inputs) is not converted') }],
  Scan: [
    {
      at: 9,
      up: (node, ctx) => ctx.refuse(node, 'the opset-8 Scan (batch axis, sequence_lens) is not converted'),
      down: (node, ctx) => ctx.refuse(node, 'Scan before opset 9 has a batch axis and sequence_lens; it is not converted'),
    },
  ],
  Softmax: [softmax13],
  LogSoftmax: [softmax13],
  Hardmax: [softmax13],
  Reshape: [reshape5, newAttribute(14, 'allowzero', isInt(0), 'allowzero=1 (a 0 in the shape is a real zero) exists from opset 14')],
  Squeeze: [axesToInput(13, false)],
  Unsqueeze: [axesToInput(13, false)],
  ReduceSum: [axesToInput(13, true)],
  ...Object.fromEntries(REDUCE_18.map((op) => [op, [axesToInput(18, true)]])),
  Clip: [clip11],
  Split: [split13, split18],
  Pad: [pad11, pad18, pad19],
  Slice: [slice10],
  TopK: [topk10, topk11],
  Dropout: [dropout12],
  BatchNormalization: [batchNorm9, newAttribute(14, 'training_mode', isInt(0), 'training_mode=1 exists from opset 14')],
  ArgMax: [newAttribute(12, 'select_last_index', isInt(0), 'select_last_index=1 exists from opset 12')],
  ArgMin: [newAttribute(12, 'select_last_index', isInt(0), 'select_last_index=1 exists from opset 12')],
  MaxPool: [
    {
      at: 10,
      down(node, ctx) {
        if (attrInt(node, 'ceil_mode', 0) !== 0) ctx.refuse(node, 'ceil_mode=1 exists from opset 10');
        if (node.attributes['dilations'] && !allOnes(node.attributes['dilations'])) ctx.refuse(node, 'dilations exist from opset 10');
        return [withAttrs(node, { ceil_mode: undefined, dilations: undefined })];
      },
    },
    ceilMode22,
  ],
  AveragePool: [
    newAttribute(10, 'ceil_mode', isInt(0), 'ceil_mode=1 exists from opset 10'),
    newAttribute(19, 'dilations', allOnes, 'dilations exist from opset 19'),
    ceilMode22,
  ],
  DepthToSpace: [newAttribute(11, 'mode', isString('DCR'), 'mode CRD exists from opset 11')],
  Cast: [
    {
      at: 6,
      up(node, ctx) {
        const to = node.attributes['to'];
        if (to?.type !== 'string') return [node];
        const code = CAST_NAMES[to.value.toUpperCase()];
        return code === undefined ? ctx.refuse(node, `unknown type name ${JSON.stringify(to.value)}`) : [withAttrs(node, { to: attr.int(code) })];
      },
    },
    newAttribute(19, 'saturate', isInt(1), 'saturate=0 exists from opset 19'),
  ],
  CastLike: [newAttribute(19, 'saturate', isInt(1), 'saturate=0 exists from opset 19')],
  Shape: [shape15],
  Constant: [constant12],
  Gemm: [broadcast7, gemm11],
  ScatterElements: [
    // Scatter (9-10) is ScatterElements' old name.
    { at: 11, down: (node) => [{ ...node, op: 'Scatter' }] },
    newAttribute(16, 'reduction', isString('none'), 'reductions exist from opset 16'),
    newValues(18, 'reduction', isString('none', 'add', 'mul'), 'max and min reductions exist from opset 18'),
  ],
  ScatterND: [
    newAttribute(16, 'reduction', isString('none'), 'reductions exist from opset 16'),
    newValues(18, 'reduction', isString('none', 'add', 'mul'), 'max and min reductions exist from opset 18'),
  ],
  Scatter: [{ at: 11, up: (node) => [{ ...node, op: 'ScatterElements' }] }],
  Upsample: [upsampleScales9, { at: 10, up: (node) => [{ ...node, op: 'Resize' }] }],
  Resize: [{ at: 10, down: (node) => [{ ...node, op: 'Upsample' }] }, resize11, resize13, resize18, newValues(19, 'coordinate_transformation_mode', (a) => !isString('half_pixel_symmetric')(a), 'half_pixel_symmetric exists from opset 19')],
  GroupNormalization: [
    {
      at: 21,
      up: (node, ctx) => ctx.refuse(node, 'its scale and bias are per group before opset 21 and per channel from 21; write it at opset 18-20'),
      down: (node, ctx) => ctx.refuse(node, 'its scale and bias are per channel from opset 21 and per group before; write it at opset 21 or later'),
    },
  ],
  Gelu: [gelu20],
  LayerNormalization: [layerNorm17],
  Mish: [mish18],
  HardSwish: [hardSwish14],
};

// ---------------------------------------------------------------------------------------------
// Light type and rank inference: enough for the adapters' questions (constant dtypes, softmax axes).

/** Ops whose output has the rank and type of their first input. */
const SAME_AS_FIRST = new Set([
  'Abs', 'Neg', 'Relu', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Floor', 'Ceil', 'Round', 'Sign', 'Erf', 'Sin', 'Cos', 'Tan',
  'Asin', 'Acos', 'Atan', 'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh', 'Softplus', 'Softsign', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'Gelu', 'Mish',
  'HardSigmoid', 'HardSwish', 'ThresholdedRelu', 'Shrink', 'Identity', 'Dropout', 'Clip', 'Softmax', 'LogSoftmax', 'Hardmax', 'Transpose',
  'Conv', 'ConvTranspose', 'MaxPool', 'AveragePool', 'LpPool', 'BatchNormalization', 'InstanceNormalization', 'LayerNormalization',
  'GroupNormalization', 'LRN', 'MeanVarianceNormalization', 'LpNormalization', 'Concat', 'Pad', 'Slice', 'Tile', 'Resize', 'Upsample',
  'CumSum', 'Trilu', 'ReverseSequence', 'Neg', 'Not', 'BitwiseNot', 'DepthToSpace', 'SpaceToDepth', 'Expand', 'ScatterElements', 'ScatterND',
  'PRelu', 'RMSNormalization', 'Swish',
]);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod', 'Max', 'Min', 'Sum', 'Mean', 'Where', 'And', 'Or', 'Xor', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'BitShift', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor']);
const KEEPS_TYPE = new Set(['Gemm', 'MatMul', 'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Gather', 'GatherElements', 'GatherND', 'Split', 'TopK', 'Range', 'Compress']);
const BOOL_OUT = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf']);
const INT64_OUT = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin']);
const REDUCE = new Set(['ReduceSum', ...REDUCE_18]);

/** Elementwise ops with one tensor input: the output has the input's shape. */
const ELEMENTWISE_UNARY = new Set([
  'Abs', 'Neg', 'Relu', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Floor', 'Ceil', 'Round', 'Sign', 'Erf', 'Sin', 'Cos', 'Tan',
  'Softplus', 'Softsign', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'Gelu', 'Mish', 'HardSigmoid', 'HardSwish', 'Identity', 'Dropout', 'Clip', 'Cast',
  'Softmax', 'LogSoftmax', 'Not', 'BatchNormalization', 'InstanceNormalization', 'LayerNormalization',
]);

function inferFacts(graph: Graph, constants: ReadonlyMap<string, Tensor>, outer: ReadonlyMap<string, Facts> = new Map()): Map<string, Facts> {
  // A nested graph (an If branch, a Loop body) reads outer values by name: their facts hold inside.
  const facts = new Map<string, Facts>(outer);
  for (const v of graph.inputs) facts.set(v.name, { dtype: v.dtype, rank: v.shape?.length, shape: v.shape ?? undefined });
  for (const [name, t] of constants) facts.set(name, { dtype: t.dtype, rank: t.shape.length, shape: t.shape });
  const get = (name: string | undefined): Facts => (name ? (facts.get(name) ?? {}) : {});
  const ints = (name: string | undefined) => (name ? constants.get(name)?.toNumbers() : undefined);
  for (const node of graph.nodes) {
    if (node.domain !== '') continue;
    const x = get(node.inputs[0]);
    // Only ops known to keep their first input's element type pass it on; others stay unknown.
    let dtype = KEEPS_TYPE.has(node.op) || SAME_AS_FIRST.has(node.op) || REDUCE.has(node.op) || (BROADCAST.has(node.op) && !BOOL_OUT.has(node.op)) ? x.dtype : undefined;
    let rank: number | undefined;
    const op = node.op;
    if (SAME_AS_FIRST.has(op)) rank = x.rank;
    else if (BROADCAST.has(op)) {
      const ranks = node.inputs.filter((i) => i !== '').map((i) => get(i).rank);
      rank = ranks.every((r) => r !== undefined) ? Math.max(...(ranks as number[])) : undefined;
      if (op === 'Where') dtype = get(node.inputs[1]).dtype;
    } else if (op === 'Gemm' || op === 'Flatten') rank = 2;
    else if (op === 'MatMul') {
      const b = get(node.inputs[1]).rank;
      if (x.rank !== undefined && b !== undefined) rank = x.rank === 1 || b === 1 ? Math.max(x.rank, b) - 1 : Math.max(x.rank, b);
    } else if (op === 'Reshape') rank = constants.get(node.inputs[1] ?? '')?.size;
    else if (op === 'Unsqueeze' || op === 'Squeeze') {
      const axes = attrInts(node, 'axes') ?? ints(node.inputs[1]);
      if (x.rank !== undefined && axes) rank = x.rank + (op === 'Unsqueeze' ? axes.length : -axes.length);
    } else if (REDUCE.has(op)) {
      const axes = attrInts(node, 'axes') ?? ints(node.inputs[1]);
      if (attrInt(node, 'keepdims', 1) === 1) rank = x.rank;
      else if (x.rank !== undefined && axes) rank = axes.length ? x.rank - axes.length : attrInt(node, 'noop_with_empty_axes', 0) ? x.rank : 0;
    } else if (op === 'Gather') {
      const q = get(node.inputs[1]).rank;
      if (x.rank !== undefined && q !== undefined) rank = x.rank + q - 1;
    } else if (op === 'Shape') rank = 1;
    else if (op === 'Size') rank = 0;
    else if (op === 'ArgMax' || op === 'ArgMin') rank = attrInt(node, 'keepdims', 1) === 1 ? x.rank : x.rank === undefined ? undefined : x.rank - 1;
    else if (op === 'Cast') dtype = onnxCodeToDType(attrInt(node, 'to', 0));
    else if (op === 'CastLike') dtype = get(node.inputs[1]).dtype;
    if (op === 'Cast' || op === 'CastLike') rank = x.rank;
    if (BOOL_OUT.has(op)) dtype = 'bool';
    if (INT64_OUT.has(op)) dtype = 'int64';
    if (op === 'ConstantOfShape') {
      const value = node.attributes['value'];
      dtype = value?.type === 'tensor' ? value.value.dtype : 'float32';
      rank = constants.get(node.inputs[0] ?? '')?.size;
    }
    if (op === 'Constant') {
      const t = constants.get(node.outputs[0] ?? '');
      dtype = t?.dtype;
      rank = t?.shape.length;
    }
    const shape = ELEMENTWISE_UNARY.has(op) ? x.shape : undefined;
    node.outputs.forEach((o, i) => {
      if (o !== '' && !facts.has(o)) facts.set(o, i === 0 ? { dtype, rank, shape } : op === 'TopK' && i === 1 ? { dtype: 'int64', rank: x.rank } : {});
    });
  }
  return facts;
}

/** Constant contents of values: initializers and Constant nodes' tensor values. */
export function constantValues(graph: Graph): Map<string, Tensor> {
  const out = new Map(graph.initializers);
  for (const node of graph.nodes) {
    if (node.op !== 'Constant' || node.domain !== '' || !node.outputs[0]) continue;
    const a = node.attributes;
    const v = a['value'] ?? a['sparse_value'] ?? a['value_float'] ?? a['value_floats'] ?? a['value_int'] ?? a['value_ints'];
    let t: Tensor | undefined;
    if (v?.type === 'tensor') t = v.value;
    else if (v?.type === 'float') t = Tensor.from('float32', [], [v.value]);
    else if (v?.type === 'floats') t = Tensor.from('float32', [v.value.length], v.value);
    else if (v?.type === 'int') t = Tensor.from('int64', [], [BigInt(v.value)]);
    else if (v?.type === 'ints') t = int64s(v.value);
    if (t) out.set(node.outputs[0], t);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/**
 * The graph at opset `target`: the same graph when it is already there, else every default-domain
 * node rewritten across each version boundary between the two opsets. New constants become
 * initializers with fresh names; original value names (and so the graph's interface) are kept.
 */
export function convertOpset(graph: Graph, target: number, outer?: OuterScope): Graph {
  // A graph is always written at its own opset as it is; conversion has a range.
  if (graph.opset === target) return graph;
  if (!Number.isSafeInteger(target) || target < MIN_WRITE_OPSET || target > MAX_KNOWN_OPSET) {
    throw new UsageError(`ONNX opset ${target} cannot be written: choose an opset from ${MIN_WRITE_OPSET} to ${MAX_KNOWN_OPSET}`);
  }
  const constants = new Map([...(outer?.constants ?? []), ...constantValues(graph)]);
  const facts = inferFacts(graph, constants, outer?.facts);
  const used = new Set<string>([...graph.initializers.keys(), ...graph.inputs.map((i) => i.name), ...graph.outputs.map((o) => o.name)]);
  for (const n of graph.nodes) {
    used.add(n.name);
    for (const v of [...n.inputs, ...n.outputs]) used.add(v);
  }
  const initializers = new Map(graph.initializers);
  const from = graph.opset;
  const ctx: Context = {
    target,
    dtype: (v) => facts.get(v)?.dtype,
    rank: (v) => facts.get(v)?.rank,
    shape: (v) => facts.get(v)?.shape,
    constant: (v) => constants.get(v),
    fresh(base) {
      let name = base;
      for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
      used.add(name);
      return name;
    },
    addConstant(base, tensor) {
      const name = ctx.fresh(base);
      initializers.set(name, tensor);
      constants.set(name, tensor);
      return name;
    },
    refuse(node, why) {
      throw new UsageError(`cannot write node ${node.name} (${node.op}) at ONNX opset ${target} (the graph is at opset ${from}): ${why}`);
    },
  };
  const nodes = graph.nodes.flatMap((node) => convertNode(withSubgraphsAt(node, target, { facts, constants }), from, target, ctx));
  for (const node of nodes) checkAgainstSchema(node, ctx);
  // Constants that only fed an input the conversion turned into an attribute go with it.
  const referenced = (list: readonly Node[]) => new Set([...list.flatMap((n) => [...n.inputs, ...nodeOuterReads(n)]), ...graph.outputs.map((o) => o.name)]);
  const before = referenced(graph.nodes);
  const after = referenced(nodes);
  for (const name of [...initializers.keys()]) {
    if (!after.has(name) && (before.has(name) || !graph.initializers.has(name))) initializers.delete(name);
  }
  return { ...graph, nodes, initializers, opset: target };
}

/** What a nested graph sees of the graphs around it. */
interface OuterScope {
  readonly facts: ReadonlyMap<string, Facts>;
  readonly constants: ReadonlyMap<string, Tensor>;
}

/** A node whose nested graphs (If, Loop, Scan) are converted to the target opset too. */
function withSubgraphsAt(node: Node, target: number, outer: OuterScope): Node {
  let changed = false;
  const attributes: Record<string, Attribute> = {};
  for (const [key, a] of Object.entries(node.attributes)) {
    if (a.type === 'graph') attributes[key] = { type: 'graph', value: convertOpset(a.value, target, outer) };
    else if (a.type === 'graphs') attributes[key] = { type: 'graphs', value: a.value.map((g) => convertOpset(g, target, outer)) };
    else attributes[key] = a;
    changed ||= attributes[key] !== a;
  }
  return changed ? { ...node, attributes } : node;
}

/** The schema an op follows at an opset: its newest version at or below it. */
function schemaAt(op: string, opset: number): SchemaVersion | undefined {
  let found: SchemaVersion | undefined;
  for (const v of SCHEMAS[op] ?? []) if (v[0] <= opset) found = v;
  return found;
}

/** Refuses a converted node that the target opset's schema would not accept. */
function checkAgainstSchema(node: Node, ctx: Context): void {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return;
  const schema = schemaAt(node.op, ctx.target);
  if (!schema) return ctx.refuse(node, `${node.op} does not exist at opset ${ctx.target}`);
  const [, minInputs, maxInputs, attributeList, inputTypes] = schema;
  const allowed = new Set(attributeList.split(','));
  for (const key of Object.keys(node.attributes)) {
    if (!allowed.has(key)) ctx.refuse(node, `attribute ${key} is not part of ${node.op} at opset ${ctx.target}${since(node.op, (v) => v[3].split(',').includes(key))}`);
  }
  const count = trimInputs(node.inputs).length;
  if (count < minInputs || count > maxInputs) {
    ctx.refuse(node, `${node.op} takes ${minInputs === maxInputs ? minInputs : `${minInputs} to ${maxInputs}`} inputs at opset ${ctx.target}, the node has ${count}`);
  }
  const typeOf = (i: number): readonly string[] | undefined => {
    const set = inputTypes[Math.min(i, inputTypes.length - 1)];
    return set === undefined ? undefined : TYPE_SETS[set];
  };
  node.inputs.forEach((name, i) => {
    const dtype = name === '' ? undefined : ctx.dtype(name);
    const types = typeOf(i);
    if (dtype && types && !types.includes(dtype)) ctx.refuse(node, `${node.op} does not take ${dtype} inputs at opset ${ctx.target}${since(node.op, (v) => v[4].some((t) => TYPE_SETS[t]!.includes(dtype)))}`);
  });
  if (node.op === 'Cast') {
    const to = onnxCodeToDType(attrInt(node, 'to', 0));
    const types = typeOf(0);
    if (to && types && !types.includes(to)) ctx.refuse(node, `Cast does not produce ${to} at opset ${ctx.target}${since('Cast', (v) => v[4].some((t) => TYPE_SETS[t]!.includes(to)))}`);
  }
}

/** " (from opset N)" for the first version of `op` that has what `has` looks for. */
function since(op: string, has: (v: SchemaVersion) => boolean): string {
  const first = (SCHEMAS[op] ?? []).find(has);
  return first ? ` (it exists from opset ${first[0]})` : '';
}

function convertNode(node: Node, from: number, to: number, ctx: Context): Node[] {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return [node];
  const versions = SCHEMAS[node.op]?.map((v) => v[0]);
  if (!versions) return ctx.refuse(node, `${node.op} is not an operator of the default ONNX domain (as of opset ${MAX_KNOWN_OPSET})`);
  const changes = CHANGES[node.op] ?? [];
  if (from < 7 && to >= 7 && (node.attributes['consumed_inputs'] || node.attributes['is_test'])) {
    // Opset 6 dropped `consumed_inputs` and 7 dropped `is_test` from every op that had them; both were hints only.
    node = withAttrs(node, { consumed_inputs: undefined, is_test: undefined });
  }
  if (from < to) {
    for (const change of changes) {
      if (change.at > from && change.at <= to && change.up) return change.up(node, ctx).flatMap((n) => convertNode(n, change.at, to, ctx));
    }
    const removed = REMOVED_AT[node.op];
    if (removed !== undefined && removed <= to) return ctx.refuse(node, `${node.op} was removed in opset ${removed}`);
    return [node];
  }
  for (const change of [...changes].reverse()) {
    if (change.at <= from && change.at > to && change.down) return change.down(node, ctx).flatMap((n) => convertNode(n, change.at - 1, to, ctx));
  }
  const introduced = versions[0]!;
  if (introduced > to) return ctx.refuse(node, `${node.op} exists from opset ${introduced} (write at opset ${introduced} or later)`);
  return [node];
}
