import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isDType } from '../src/core/dtypes.js';
import type { Attribute, Graph, Node } from '../src/core/graph.js';
import { Tensor } from '../src/core/tensor.js';
import { Session } from '../src/runtime/executor.js';
import { isSupported } from '../src/runtime/ops.js';
import { FIXTURES } from './cli-helpers.js';
import { peerPython, PYTHON_DIR } from './peers.js';

/**
 * ONNX's backend node tests (shared/fixtures/onnx/node) run in modelbridge's runtime and compare
 * with ONNX's expected outputs at the backend runner's tolerance (rtol 1e-3, atol 1e-7). The
 * real onnx package decodes the protobufs (python/onnx_cases.py) until modelbridge has its own
 * ONNX reader. Every test whose ops are all supported is tried; none may fail but those listed
 * below with a reason.
 */
const python = peerPython();
const NODE_DIR = join(FIXTURES, 'onnx', 'node');

/**
 * What the runtime deliberately leaves out, by test name. Each excluded test must match one of
 * these; everything else must pass.
 */
const OUT_OF_SCOPE: ReadonlyArray<[RegExp, string]> = [
  [/FLOAT8|FLOAT4|INT4|UINT4|INT2|UINT2|e8m0/i, '8-, 4- and 2-bit types are storage-only (carried bit-exactly, not computed on)'],
  [/training/, 'training mode (random dropout masks, batch statistics): the runtime runs inference'],
  [/maxpool_with_argmax/, "MaxPool's Indices output"],
  [/_sequence$|_opt$/, 'sequence and optional values (the runtime computes on tensors)'],
];

function outOfScope(name: string): string | undefined {
  return OUT_OF_SCOPE.find(([pattern]) => pattern.test(name))?.[1];
}

interface TensorJSON {
  dtype?: string;
  shape?: number[];
  data?: string;
  unsupported?: string;
}
interface CaseJSON {
  name: string;
  error?: string;
  opset: number;
  nodes: { name: string; op: string; domain: string; inputs: string[]; outputs: string[]; attributes: Record<string, Record<string, unknown>> }[];
  inputs: string[];
  outputs: string[];
  initializers: Record<string, TensorJSON>;
  sets: { inputs: TensorJSON[]; outputs: TensorJSON[] }[];
}

function candidateDirs(): string[] {
  const rows = readFileSync(join(FIXTURES, 'onnx', 'INDEX.tsv'), 'utf8').trim().split('\n').slice(1);
  return rows
    .map((r) => r.split('\t'))
    .filter(([dir, , opsets, , ops]) => dir!.startsWith('node/') && /^ai\.onnx=\d+$/.test(opsets!) && ops!.split(',').every((op) => isSupported(op.trim())))
    .map(([dir]) => dir!.slice('node/'.length));
}

function toTensor(t: TensorJSON): Tensor {
  if (!t.dtype || !isDType(t.dtype) || !t.shape || t.data === undefined) throw new Error(`unsupported tensor ${t.unsupported}`);
  const bytes = Buffer.from(t.data, 'base64');
  return Tensor.fromBytes(t.dtype, t.shape, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength).slice());
}

function toAttribute(a: Record<string, unknown>): Attribute {
  const [type, value] = Object.entries(a)[0]!;
  if (type === 'tensor') return { type, value: toTensor(value as TensorJSON) };
  if (type === 'unsupported') throw new Error(`attribute type ${String(value)}`);
  return { type, value } as Attribute;
}

function graphOf(c: CaseJSON): Graph {
  const nodes: Node[] = c.nodes.map((n) => ({ ...n, attributes: Object.fromEntries(Object.entries(n.attributes).map(([k, v]) => [k, toAttribute(v)])) }));
  return {
    inputs: c.inputs.map((name, i) => ({ name, dtype: toTensor(c.sets[0]!.inputs[i]!).dtype, shape: null })),
    outputs: c.outputs.map((name) => ({ name, dtype: 'float32', shape: null })),
    initializers: new Map(Object.entries(c.initializers).map(([k, v]) => [k, toTensor(v)])),
    nodes,
    opset: c.opset,
  };
}

function assertClose(actual: Tensor, expected: Tensor, what: string): void {
  expect(actual.dtype, `${what} dtype`).toBe(expected.dtype);
  expect(actual.shape, `${what} shape`).toEqual(expected.shape);
  const a = actual.toNumbers();
  const e = expected.toNumbers();
  for (let i = 0; i < e.length; i++) {
    const ok = Number.isNaN(e[i]!) ? Number.isNaN(a[i]!) : a[i] === e[i] || Math.abs(a[i]! - e[i]!) <= 1e-7 + 1e-3 * Math.abs(e[i]!);
    if (!ok) expect.fail(`${what}[${i}]: got ${a[i]}, expected ${e[i]}`);
  }
}

function loadCases(): CaseJSON[] {
  const dirs = candidateDirs();
  const r = spawnSync(python!, [join(PYTHON_DIR, 'onnx_cases.py'), ...dirs.map((d) => join(NODE_DIR, d))], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`onnx_cases.py failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as CaseJSON[];
}

describe.skipIf(!python)('ONNX backend node tests in the runtime', () => {
  const cases = python ? loadCases() : [];

  const tried = cases.filter((c) => !outOfScope(c.name));

  it('tries every node test whose ops are all supported, leaving out only what is out of scope', () => {
    // Floors, so a runtime change that makes tests unreadable or unsupported fails here.
    expect(cases.length).toBeGreaterThanOrEqual(340);
    expect(tried.length).toBeGreaterThanOrEqual(230);
    expect(tried.filter((c) => c.error).map((c) => `${c.name}: ${c.error}`)).toEqual([]);
  });

  it.each(tried.map((c) => [c.name, c] as const))('%s', (name, c) => {
    const session = new Session(graphOf(c));
    for (const set of c.sets) {
      const feeds = Object.fromEntries(c.inputs.map((n, i) => [n, toTensor(set.inputs[i]!)]));
      const results = session.run(feeds);
      c.outputs.forEach((n, i) => assertClose(results[n]!, toTensor(set.outputs[i]!), `${name} output ${n}`));
    }
  });
});
