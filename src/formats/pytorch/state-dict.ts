import { UsageError } from '../../core/errors.js';
import { PyDict, PyList, PyObject, PyTuple, type PyValue } from './pickle-values.js';
import { TensorRef } from './torch-types.js';

/**
 * Finds the state dict in whatever torch.save was given. A bare state dict is used as is; a
 * training checkpoint ({"model_state_dict": ..., "optimizer_state_dict": ..., "epoch": 3}) gives
 * its model entry; anything else is flattened, nested keys joined with dots as nn.Module names
 * its submodules. Non-tensor values (epochs, configs) are skipped.
 */

/** Checked in this order when a checkpoint holds several entries. */
export const STATE_DICT_KEYS = ['state_dict', 'model_state_dict', 'model', 'module', 'net', 'network', 'params', 'weights'];

/** Flattening stops here: deeper nesting is skipped, as are repeated containers (no cycles, no blow-up). */
const MAX_DEPTH = 64;
const MAX_NODES = 1 << 22;

export interface PickedStateDict {
  readonly tensors: readonly (readonly [string, TensorRef])[];
  /** The key path used ("" for the whole object). */
  readonly picked: string;
  /** Top-level keys that were not used (optimizer state, epoch...), at most 100. */
  readonly ignored: readonly string[];
}

export function pickStateDict(root: PyValue, key?: string): PickedStateDict {
  if (key !== undefined) {
    const value = lookup(root, key);
    if (value === undefined) {
      throw new UsageError(`the checkpoint has no entry ${JSON.stringify(key)} (its keys: ${topKeys(root).slice(0, 20).join(', ') || 'none'})`);
    }
    return { tensors: flatten(value), picked: key, ignored: topKeys(root).filter((k) => k !== key).slice(0, 100) };
  }
  if (root instanceof TensorRef) return { tensors: [['tensor', root]], picked: '', ignored: [] };
  if (root instanceof PyDict) {
    const entries = [...root.entries()];
    if (entries.length > 0 && entries.every(([, v]) => v instanceof TensorRef)) return { tensors: flatten(root), picked: '', ignored: [] };
    // One node budget for all the probes, so a hostile object cannot make this quadratic.
    const budget = { nodes: MAX_NODES };
    const withTensors = entries.filter(([k, v]) => typeof k === 'string' && flatten(v, budget, true).length > 0).map(([k]) => k as string);
    const known = STATE_DICT_KEYS.find((k) => withTensors.includes(k));
    const only = withTensors.length === 1 ? withTensors[0] : undefined;
    const chosen = known ?? only;
    if (chosen !== undefined) {
      return { tensors: flatten(root.get(chosen)!), picked: chosen, ignored: topKeys(root).filter((k) => k !== chosen).slice(0, 100) };
    }
  }
  return { tensors: flatten(root), picked: '', ignored: [] };
}

function topKeys(root: PyValue): string[] {
  if (root instanceof PyDict) return [...root.entries()].map(([k]) => nameOf(k)).filter((k): k is string => k !== undefined);
  return [];
}

/** A key, or a dotted path through nested dicts when no key has that exact name. */
function lookup(root: PyValue, key: string): PyValue | undefined {
  const attrs = root instanceof PyObject && root.state instanceof PyDict ? root.state : root;
  if (!(attrs instanceof PyDict)) return undefined;
  const direct = attrs.get(key);
  if (direct !== undefined) return direct;
  const dot = key.indexOf('.');
  if (dot < 0) return undefined;
  for (let split = dot; split >= 0; split = key.indexOf('.', split + 1)) {
    const head = attrs.get(key.slice(0, split));
    if (head !== undefined) {
      const found = lookup(head, key.slice(split + 1));
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

function nameOf(key: PyValue): string | undefined {
  if (typeof key === 'string') return key;
  if (typeof key === 'number' && Number.isInteger(key)) return String(key);
  if (typeof key === 'bigint') return String(key);
  return undefined;
}

/** Every tensor under `value` with its dotted path, in insertion order; iterative, each container once. */
export function flatten(value: PyValue, budget = { nodes: MAX_NODES }, firstOnly = false): [string, TensorRef][] {
  const out: [string, TensorRef][] = [];
  const seen = new Set<object>();
  const stack: [string, PyValue, number][] = [['', value, 0]];
  while (stack.length > 0 && budget.nodes-- > 0) {
    const [path, v, depth] = stack.pop()!;
    if (v instanceof TensorRef) {
      out.push([path || 'tensor', v]);
      if (firstOnly) break;
      continue;
    }
    const children = childrenOf(v);
    if (!children || depth >= MAX_DEPTH || seen.has(v as object)) continue;
    seen.add(v as object);
    // Pushed in reverse so they come off the stack in order.
    for (let i = children.length - 1; i >= 0; i--) {
      const [k, child] = children[i]!;
      stack.push([path ? `${path}.${k}` : k, child, depth + 1]);
    }
  }
  return out;
}

function childrenOf(v: PyValue): [string, PyValue][] | undefined {
  if (v instanceof PyDict) {
    const out: [string, PyValue][] = [];
    for (const [k, child] of v.entries()) {
      const name = nameOf(k);
      if (name !== undefined) out.push([name, child]);
    }
    return out;
  }
  if (v instanceof PyList || v instanceof PyTuple) return v.items.map((child, i) => [String(i), child]);
  // A TorchScript module object: its attributes hold parameters, buffers and submodules.
  if (v instanceof PyObject && v.state instanceof PyDict) return childrenOf(v.state);
  return undefined;
}
