import { attrBool, attrInt, attrString, attrType, tfAttr } from './attrs.js';
import { parseTensorName, refKey } from './flatten.js';
import type { AttrValue, FunctionDef, NodeDef } from './messages.js';

/**
 * TF1 control-flow loop frames folded back into functional While nodes, so the import sees the
 * loop the way a SavedModel holds it and one recogniser (rnn.ts) handles both.
 *
 * tensorflowjs_converter (through convert_variables_to_constants_v2) and a frozen TF2 GraphDef
 * carry a While lowered by TensorFlow's lower_while_op.cc into a cyclic frame: per loop variable
 * Enter(frame_name) -> Merge(Enter, NextIteration) -> Switch(Merge, LoopCond), Switch:1 feeding
 * the inlined body and Switch:0 an Exit; the body's result goes back through NextIteration into
 * the Merge; the inlined cond computes LoopCond's predicate from the Merges. A loop invariant the
 * body returns unchanged (a captured variable) is one Enter with is_constant=true and nothing
 * else. TF.js runs this with its control_executor (Enter/Merge/Switch/NextIteration/Exit tracking
 * frames per iteration); modelbridge instead rebuilds the While it came from:
 *
 *   While(inputs: each Enter's input; cond: the inlined cond; body: the inlined body) and each
 *   Exit -> Identity(While:i).
 *
 * cond and body become FunctionDefs (node names kept, inputs rewritten: Switch:1, a Merge or a
 * constant Enter -> the loop argument, a body node's output k -> "node:output:k", control inputs
 * dropped), which is exactly what the While import reads. A frame whose structure is not that
 * (nested frames, a Merge without its NextIteration...) is left as it is: the import then refuses
 * it as a cycle naming a node, as before. A well-formed frame that is not a Keras LSTM/GRU becomes
 * a While the import refuses naming it.
 */

const DT_BOOL = 10;
/** Node visits all frames' walks may take together (a real model's frames take a few hundred each). */
const WALK_BUDGET = 4_000_000;
const LOOP_OPS = new Set(['Enter', 'Merge', 'Switch', 'NextIteration', 'LoopCond', 'Exit', 'RefEnter', 'RefMerge', 'RefSwitch', 'RefNextIteration', 'RefExit']);
/** Ops a cond or body never reads except through its frame (inputs, state). */
const OUTSIDE_OPS = new Set(['Placeholder', 'PlaceholderWithDefault', 'VarHandleOp', 'VariableV2']);

export interface LiftedFrames {
  readonly nodes: NodeDef[];
  readonly functions: FunctionDef[];
}

interface LoopVar {
  readonly enter: NodeDef;
  readonly merge: NodeDef;
  readonly switch: NodeDef;
  readonly next: NodeDef;
  readonly exit: NodeDef | undefined;
  readonly type: number;
}

const dataInputs = (n: NodeDef): string[] => n.input.filter((i) => !i.startsWith('^'));
const nodeOf = (input: string): string => parseTensorName(input.replace(/^\^/, ''))?.node ?? input;
const attrValue = (v: object): AttrValue => v as AttrValue;

/** Every loop frame of the graph lifted to a While; the graph unchanged when it has none. */
export function liftLoopFrames(nodes: readonly NodeDef[]): LiftedFrames {
  const frames = new Map<string, NodeDef[]>();
  for (const n of nodes) {
    if (n.op !== 'Enter' && n.op !== 'RefEnter') continue;
    const frame = attrString(n.attr, 'frame_name', '');
    const list = frames.get(frame);
    if (list) list.push(n);
    else frames.set(frame, [n]);
  }
  if (!frames.size) return { nodes: [...nodes], functions: [] };

  const byName = new Map(nodes.map((n) => [n.name, n]));
  const consumers = new Map<string, NodeDef[]>();
  for (const n of nodes) {
    for (const i of n.input) {
      const list = consumers.get(nodeOf(i));
      if (list) list.push(n);
      else consumers.set(nodeOf(i), [n]);
    }
  }
  // Walks over the graph per frame are bounded in total: a file of many frames sharing one large
  // subgraph would otherwise cost frames × nodes. Past the budget, frames stay as they are.
  const budget = { steps: WALK_BUDGET };

  const removed = new Set<string>();
  const replaced = new Map<string, NodeDef>();
  const added: NodeDef[] = [];
  const functions: FunctionDef[] = [];
  const taken = new Set(byName.keys());
  for (const [frame, enters] of frames) {
    if (budget.steps <= 0) break;
    const lifted = liftFrame(frame, enters, byName, consumers, taken, removed, budget);
    if (!lifted) continue;
    lifted.removed.forEach((name) => removed.add(name));
    lifted.exits.forEach((node) => replaced.set(node.name, node));
    added.push(lifted.loop);
    functions.push(lifted.cond, lifted.body);
  }
  if (!added.length) return { nodes: [...nodes], functions: [] };
  const kept = nodes
    .filter((n) => !removed.has(n.name))
    .map((n) => replaced.get(n.name) ?? n)
    .map((n) => (n.input.some((i) => i.startsWith('^') && removed.has(nodeOf(i))) ? { ...n, input: n.input.filter((i) => !(i.startsWith('^') && removed.has(nodeOf(i)))) } : n));
  return { nodes: [...kept, ...added], functions };
}

interface Lifted {
  readonly loop: NodeDef;
  readonly exits: NodeDef[];
  readonly cond: FunctionDef;
  readonly body: FunctionDef;
  readonly removed: Set<string>;
}

interface Budget {
  steps: number;
}

function liftFrame(
  frame: string,
  enters: readonly NodeDef[],
  byName: ReadonlyMap<string, NodeDef>,
  consumers: ReadonlyMap<string, readonly NodeDef[]>,
  taken: Set<string>,
  gone: ReadonlySet<string>,
  budget: Budget,
): Lifted | undefined {
  // A node an earlier frame took (nested or overlapping frames) leaves this one as it is.
  if (enters.some((n) => gone.has(n.name))) return undefined;
  const only = (list: readonly NodeDef[] | undefined, ok: (n: NodeDef) => boolean): NodeDef | undefined => {
    const found = (list ?? []).filter(ok);
    return found.length === 1 ? found[0] : undefined;
  };
  const reads = (n: NodeDef, source: NodeDef, index: number) => dataInputs(n).some((i) => refKey(parseTensorName(i)!) === refKey({ node: source.name, index }));
  const vars: LoopVar[] = [];
  const invariants: NodeDef[] = [];
  const controlOnly: NodeDef[] = [];
  let loopCond: NodeDef | undefined;
  for (const enter of enters) {
    if (dataInputs(enter).length !== 1) return undefined;
    if (attrBool(enter.attr, 'is_constant', false)) {
      // An invariant only control edges use (the converter copies a captured variable's value into
      // the body as a Const hanging on it) carries no value into the loop.
      if ((consumers.get(enter.name) ?? []).some((c) => reads(c, enter, 0))) invariants.push(enter);
      else controlOnly.push(enter);
      continue;
    }
    const merge = only(consumers.get(enter.name), (n) => n.op === 'Merge' && reads(n, enter, 0));
    if (!merge || dataInputs(merge).length !== 2) return undefined;
    const other = dataInputs(merge).map((i) => byName.get(nodeOf(i))).find((n) => n !== enter);
    const sw = only(consumers.get(merge.name), (n) => n.op === 'Switch' && dataInputs(n)[0] !== undefined && nodeOf(dataInputs(n)[0]!) === merge.name);
    const cond = sw && byName.get(nodeOf(dataInputs(sw)[1] ?? ''));
    if (other?.op !== 'NextIteration' || !sw || cond?.op !== 'LoopCond' || (loopCond && cond !== loopCond)) return undefined;
    loopCond = cond;
    const exit = only(consumers.get(sw.name), (n) => n.op === 'Exit' && reads(n, sw, 0));
    vars.push({ enter, merge, switch: sw, next: other, exit, type: attrType(enter.attr, 'T') ?? 0 });
  }
  if (!loopCond || !vars.length || dataInputs(loopCond).length !== 1) return undefined;

  // The While's loop values: the variables, then the invariants (a While passes both).
  const types = [...vars.map((v) => v.type), ...invariants.map((n) => attrType(n.attr, 'T') ?? 0)];
  const args = types.map((_, i) => `arg${i}`);
  const bodyArgs = new Map<string, string>();
  const condArgs = new Map<string, string>();
  vars.forEach((v, i) => {
    bodyArgs.set(refKey({ node: v.switch.name, index: 1 }), args[i]!);
    condArgs.set(refKey({ node: v.merge.name, index: 0 }), args[i]!);
  });
  invariants.forEach((n, j) => {
    bodyArgs.set(n.name, args[vars.length + j]!);
    condArgs.set(n.name, args[vars.length + j]!);
  });
  const frameNodes = new Set([...vars.flatMap((v) => [v.enter, v.merge, v.switch, v.next]), ...invariants, ...controlOnly, loopCond].map((n) => n.name));
  const cond = inlined(`${frame}/__cond`, [dataInputs(loopCond)[0]!], [DT_BOOL], condArgs, args, types, byName, frameNodes, budget);
  const body = inlined(`${frame}/__body`, vars.map((v) => dataInputs(v.next)[0] ?? ''), vars.map((v) => v.type), bodyArgs, args, types, byName, frameNodes, budget);
  if (!cond || !body) return undefined;
  // The body returns each variable's next value and the invariants unchanged.
  const signature = { ...body.signature!, output_arg: types.map((type, i) => ({ ...body.signature!.input_arg[i]!, name: `out${i}`, type })) };
  const bodyFn: FunctionDef = { ...body, signature, ret: Object.fromEntries(types.map((_, i) => [`out${i}`, i < vars.length ? body.ret[`out${i}`]! : args[i]!])) };

  let name = frame;
  for (let k = 1; taken.has(name); k++) name = `${frame}/while_${k}`;
  taken.add(name);
  const loop: NodeDef = {
    name,
    op: 'While',
    input: [...vars.map((v) => dataInputs(v.enter)[0]!), ...invariants.map((n) => dataInputs(n)[0]!)],
    device: '',
    attr: {
      T: attrValue({ ...tfAttr.types(types), value: 'list' }),
      cond: attrValue({ ...tfAttr.func(cond.signature!.name), value: 'func' }),
      body: attrValue({ ...tfAttr.func(bodyFn.signature!.name), value: 'func' }),
      parallel_iterations: attrValue({ ...tfAttr.int(attrInt(vars[0]!.enter.attr, 'parallel_iterations', 10)), value: 'i' }),
    },
  };
  const exits = vars.flatMap((v, i) => (v.exit ? [{ name: v.exit.name, op: 'Identity', input: [`${name}:${i}`], device: '', attr: { T: attrValue({ ...tfAttr.type(v.type), value: 'type' }) } }] : []));

  // Everything downstream of the frame's own nodes, short of its Exits, goes with it: the inlined
  // cond and body, and their control-only helpers (the body's Consts hang on the Enters by control).
  const exitNames = new Set(vars.flatMap((v) => (v.exit ? [v.exit.name] : [])));
  const removed = new Set(frameNodes);
  const queue = [...frameNodes];
  while (queue.length) {
    for (const c of consumers.get(queue.pop()!) ?? []) {
      if (exitNames.has(c.name) || removed.has(c.name)) continue;
      if (--budget.steps <= 0 || gone.has(c.name)) return undefined;
      removed.add(c.name);
      queue.push(c.name);
    }
  }
  return { loop, exits, cond, body: bodyFn, removed };
}

/**
 * The nodes computing `results` back to the frame's arguments, as a FunctionDef over `args`;
 * undefined when they reach into anything but constants and the frame (another frame, an input).
 */
function inlined(name: string, results: readonly string[], resultTypes: readonly number[], argOf: ReadonlyMap<string, string>, args: readonly string[], types: readonly number[], byName: ReadonlyMap<string, NodeDef>, frame: ReadonlySet<string>, budget: Budget): FunctionDef | undefined {
  const nodes = new Map<string, NodeDef>();
  const order: NodeDef[] = [];
  const rename = (input: string): string | undefined => {
    const ref = parseTensorName(input);
    if (!ref) return undefined;
    const arg = argOf.get(refKey(ref));
    if (arg) return arg;
    const node = byName.get(ref.node);
    if (!node || frame.has(node.name) || LOOP_OPS.has(node.op) || OUTSIDE_OPS.has(node.op)) return undefined;
    return `${node.name}:output:${ref.index}`;
  };
  const stack = results.map((r) => parseTensorName(r)?.node ?? '');
  const ret: Record<string, string> = {};
  for (const [k, r] of results.entries()) {
    const renamed = rename(r);
    if (!renamed) return undefined;
    ret[`out${k}`] = renamed;
  }
  while (stack.length) {
    const n = byName.get(stack.pop()!);
    if (!n || nodes.has(n.name) || argOf.has(n.name)) continue;
    if (--budget.steps <= 0) return undefined;
    if (frame.has(n.name) || LOOP_OPS.has(n.op)) continue;
    const input: string[] = [];
    for (const i of dataInputs(n)) {
      const renamed = rename(i);
      if (!renamed) return undefined;
      input.push(renamed);
      if (!args.includes(renamed)) stack.push(nodeOf(i));
    }
    const copy: NodeDef = { ...n, input };
    nodes.set(n.name, copy);
    order.push(copy);
  }
  const argDef = (n: string, type: number) => ({ name: n, type, type_attr: '', number_attr: '', type_list_attr: '' });
  return {
    signature: {
      name,
      input_arg: args.map((a, i) => argDef(a, types[i]!)),
      output_arg: results.map((_, k) => argDef(`out${k}`, resultTypes[k] ?? 0)),
      attr: [],
    },
    attr: {},
    node_def: order,
    ret,
  };
}
