import { opsUsed } from '../../core/graph.js';
import { isSupported, supportedOps } from '../../runtime/ops.js';
import type { FormatHandler } from '../../formats/format.js';
import { scanNonFinite } from './elements.js';
import { result, type CheckContext, type CheckResult, type CheckStatus } from './types.js';

const STATUSES: readonly CheckStatus[] = ['pass', 'warn', 'fail', 'skip'];

/**
 * The optional FormatHandler hook `validate(path)`: integrity a format can check beyond parsing
 * (TensorBundle's crc32c, zip CRCs, ...); a format without it gets one `skip`. A hook that throws
 * or returns something malformed is reported, never trusted.
 */
export function checkChecksums(path: string, format: FormatHandler): CheckResult[] {
  if (!format.validate) return [result('checksums', 'skip', `the ${format.name} format has no checksums to verify`)];
  let results: unknown;
  try {
    results = format.validate(path);
  } catch (error) {
    return [result('checksums', 'fail', `${format.name} integrity check: ${(error as Error).message ?? String(error)}`)];
  }
  if (!Array.isArray(results) || results.length === 0) return [result('checksums', 'pass', `${format.name}: nothing to verify`)];
  return results.map((r: unknown) => {
    const o = r as Partial<CheckResult> | null;
    if (!o || typeof o.message !== 'string' || !STATUSES.includes(o.status as CheckStatus)) {
      return result('checksums', 'fail', `${format.name}'s validate hook returned a malformed result: ${JSON.stringify(r)?.slice(0, 200)}`);
    }
    return { ...o, name: typeof o.name === 'string' && o.name ? o.name : 'checksums' } as CheckResult;
  });
}

export function checkArchitecture(ctx: CheckContext): CheckResult {
  const { graph, weights } = ctx.model;
  if (!graph) {
    return result('architecture', 'warn', `bare state dict: ${weights.size} tensors and no architecture (convert with --module SPEC.json to make it runnable)`, { runnable: false });
  }
  const inputs = graph.inputs.filter((i) => !graph.initializers.has(i.name)).length;
  return result('architecture', 'pass', `runnable graph: ${graph.nodes.length} nodes, ${inputs} input(s), ${graph.outputs.length} output(s), opset ${graph.opset}`, {
    runnable: true,
    nodes: graph.nodes.length,
    opset: graph.opset,
    module: ctx.model.module?.type ?? null,
  });
}

export function checkOps(ctx: CheckContext): CheckResult {
  const graph = ctx.model.graph;
  if (!graph) return result('ops', 'skip', 'bare state dict: no ops');
  const unsupported = new Map<string, string[]>();
  const known = new Set(supportedOps());
  for (const n of graph.nodes) {
    if (isSupported(n.op, graph.opset, n.domain)) continue;
    const isDefault = n.domain === '' || n.domain === 'ai.onnx';
    // An op the runtime has, but not in the version this graph's opset gives it.
    const op = `${n.domain && !isDefault ? `${n.domain}.` : ''}${n.op}${isDefault && known.has(n.op) ? ` at opset ${graph.opset}` : ''}`;
    unsupported.set(op, [...(unsupported.get(op) ?? []), n.name]);
  }
  const ops = opsUsed(graph);
  if (!unsupported.size) return result('ops', 'pass', `${ops.length} op type(s), all supported: ${ops.join(', ')}`, { ops, unsupported: [] });
  const list = [...unsupported].map(([op, nodes]) => ({ op, nodes }));
  const text = list.map(({ op, nodes }) => `${op} (node${nodes.length > 1 ? 's' : ''} ${nodes.slice(0, 3).join(', ')}${nodes.length > 3 ? `, +${nodes.length - 3} more` : ''})`).join('; ');
  return result('ops', 'fail', `unsupported by the runtime: ${text}`, { ops, unsupported: list });
}

export function checkSignatures(ctx: CheckContext): CheckResult {
  const { graph, signatures } = ctx.model;
  if (!graph) return result('signatures', 'skip', 'bare state dict: no signatures');
  if (signatures.length === 0) return result('signatures', 'fail', 'the graph has no signature naming its inputs and outputs');
  const problems: string[] = [];
  const warnings: string[] = [];
  const seen = new Set<string>();
  const produced = new Set<string>([...graph.initializers.keys(), ...graph.inputs.map((i) => i.name), ...graph.nodes.flatMap((n) => n.outputs)]);
  const listed: Array<{ name: string; inputs: unknown[]; outputs: unknown[] }> = [];
  for (const s of signatures) {
    if (typeof s.name !== 'string' || s.name === '') problems.push('a signature has no name');
    else if (seen.has(s.name)) problems.push(`signature ${s.name} is defined twice`);
    seen.add(s.name);
    const label = s.name || '(unnamed)';
    if (s.outputs.size === 0) problems.push(`signature ${label} has no outputs`);
    const describe = (side: 'inputs' | 'outputs') =>
      [...s[side]].map(([key, value]) => {
        if (key === '') problems.push(`signature ${label} has an unnamed ${side.slice(0, -1)}`);
        const info = (side === 'inputs' ? graph.inputs : graph.outputs).find((v) => v.name === value);
        if (side === 'inputs') {
          if (!info) problems.push(`signature ${label} input ${key} maps to ${value}, which is no graph input`);
          else if (graph.initializers.has(value)) problems.push(`signature ${label} input ${key} maps to ${value}, which is a weight`);
          else if (!info.shape) warnings.push(`input ${key} has an unknown rank (give --inputs to run it)`);
        } else if (!info) problems.push(`signature ${label} output ${key} maps to ${value}, which is no graph output`);
        else if (!produced.has(value)) problems.push(`signature ${label} output ${key} maps to ${value}, which nothing produces`);
        return { name: key, value, dtype: info?.dtype ?? null, shape: info?.shape ?? null };
      });
    listed.push({ name: label, inputs: describe('inputs'), outputs: describe('outputs') });
  }
  const details = { signatures: listed, problems, warnings };
  if (problems.length) return result('signatures', 'fail', problems.join('; '), details);
  const shape = (v: { shape: unknown }) => (Array.isArray(v.shape) ? `[${v.shape.map((d) => (typeof d === 'number' ? d : '?')).join(', ')}]` : '[?...]');
  const text = listed.map((s) => `${s.name}(${(s.inputs as Array<{ name: string; shape: unknown }>).map((i) => `${i.name} ${shape(i)}`).join(', ')}) -> ${(s.outputs as Array<{ name: string; shape: unknown }>).map((o) => `${o.name} ${shape(o)}`).join(', ')}`).join('; ');
  if (warnings.length) return result('signatures', 'warn', `${text}; ${warnings.join('; ')}`, details);
  return result('signatures', 'pass', text, details);
}

/** NaN and infinity in the weights, streamed chunk by chunk through each tensor's bytes. */
export function checkFinite(ctx: CheckContext): CheckResult {
  const bad: Array<{ name: string; dtype: string; nan: number; inf: number; first: number }> = [];
  let scanned = 0;
  const seen = new Set<unknown>();
  const tensors = [...ctx.model.weights, ...(ctx.model.graph ? [...ctx.model.graph.initializers] : [])];
  for (const [name, tensor] of tensors) {
    if (seen.has(tensor)) continue;
    seen.add(tensor);
    const { nan, inf, first } = scanNonFinite(tensor);
    scanned += tensor.size;
    if (nan || inf) bad.push({ name, dtype: tensor.dtype, nan, inf, first });
  }
  if (!bad.length) return result('finite', 'pass', `${scanned.toLocaleString('en-US')} weight values, none NaN or infinite`, { tensors: [] });
  const text = bad
    .slice(0, 3)
    .map((b) => `${b.name} (${[b.nan ? `${b.nan} NaN` : '', b.inf ? `${b.inf} Inf` : ''].filter(Boolean).join(', ')}, first at ${b.first})`)
    .join(', ');
  return result('finite', 'warn', `non-finite weights in ${bad.length} tensor(s): ${text}${bad.length > 3 ? ', ...' : ''}`, { tensors: bad });
}
