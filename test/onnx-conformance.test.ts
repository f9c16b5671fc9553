import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { allNodes, type Graph } from '../src/core/graph.js';
import type { Tensor } from '../src/core/tensor.js';
import { readOnnxModel, readOnnxTensor } from '../src/formats/onnx/index.js';
import { Session } from '../src/runtime/executor.js';
import { isSupported } from '../src/runtime/ops.js';
import { isComputable } from '../src/runtime/value.js';
import { conformanceMismatch } from '../src/formats/onnx/conformance.js';
import { FIXTURES } from './cli-helpers.js';

/**
 * ONNX's backend conformance data (onnx/backend/test/data/node): one directory per case with
 * model.onnx and test_data_set_N/{input,output}_K.pb. Every case whose ops the runtime supports
 * (at the model's opset) and whose inputs and outputs it can compute on is run and compared as
 * ONNX's backend runner does: rtol 1e-3, atol 1e-7, NaN equal to NaN, integers and bools exactly.
 * Cases that cannot be read or use types the runtime does not compute on are counted and listed.
 */
const NODE_TESTS = join(FIXTURES, 'onnx', 'node');

/** Regression floor: the number of cases run (all supported ops and types), from the results. */
const MIN_TRIED = 1213;

/** Cases that are run but known not to match, with why. Each must still fail (see below). */
const KNOWN_FAILURES: Readonly<Record<string, string>> = {
  test_training_dropout: 'training-mode Dropout with ratio > 0 is random; the expected output comes from numpy\'s generator',
  test_training_dropout_default: 'training-mode Dropout with ratio > 0 is random',
  test_training_dropout_default_mask: 'training-mode Dropout with ratio > 0 is random',
  test_training_dropout_mask: 'training-mode Dropout with ratio > 0 is random',
};

/** Why a case cannot be read; anything else is a reader regression. */
const EXPECTED_UNREADABLE = /GRAPH attributes are not supported|only tensor values are supported, not (sequence|optional) values|got (UINT4|INT4|UINT2|INT2)\)/;

interface Case {
  readonly name: string;
  readonly dir: string;
  readonly graph: Graph;
}

interface Survey {
  readonly tried: Case[];
  readonly unreadable: { name: string; reason: string }[];
  readonly unsupportedOps: Map<string, string[]>;
  readonly unsupportedTypes: { name: string; dtypes: string[] }[];
}

function survey(): Survey {
  const result: Survey = { tried: [], unreadable: [], unsupportedOps: new Map(), unsupportedTypes: [] };
  if (!existsSync(NODE_TESTS)) return result;
  for (const name of readdirSync(NODE_TESTS).sort()) {
    const dir = join(NODE_TESTS, name);
    const file = join(dir, 'model.onnx');
    if (!existsSync(file)) continue;
    let graph: Graph;
    try {
      graph = readOnnxModel(readFileSync(file), file).graph!;
    } catch (e) {
      result.unreadable.push({ name, reason: (e as Error).message });
      continue;
    }
    // Nested graphs' ops count too (If's branches, Loop's and Scan's bodies).
    const missing = [...new Set(allNodes(graph).filter((n) => !isSupported(n.op, graph.opset, n.domain)).map((n) => (n.domain ? `${n.domain}.${n.op}` : n.op)))];
    if (missing.length) {
      for (const op of missing) result.unsupportedOps.set(op, [...(result.unsupportedOps.get(op) ?? []), name]);
      continue;
    }
    const dtypes = [...new Set([...graph.inputs, ...graph.outputs].map((v) => v.dtype).filter((d) => !isComputable(d)))];
    if (dtypes.length) {
      result.unsupportedTypes.push({ name, dtypes });
      continue;
    }
    result.tried.push({ name, dir, graph });
  }
  return result;
}

/** Runs every test_data_set of a case; throws on the first mismatch. Returns the number of outputs compared. */
function runCase(c: Case): number {
  const session = new Session(c.graph);
  let compared = 0;
  const sets = readdirSync(c.dir).filter((f) => f.startsWith('test_data_set_')).sort();
  for (const set of sets) {
    const at = join(c.dir, set);
    const feeds: Record<string, Tensor> = {};
    c.graph.inputs.forEach((input, i) => {
      const file = join(at, `input_${i}.pb`);
      if (existsSync(file)) feeds[input.name] = readOnnxTensor(readFileSync(file), file);
    });
    const outputs = session.run(feeds);
    c.graph.outputs.forEach((output, i) => {
      const file = join(at, `output_${i}.pb`);
      const problem = conformanceMismatch(outputs[output.name]!, readOnnxTensor(readFileSync(file), file));
      if (problem) throw new Error(`${set}, output ${output.name}: ${problem}`);
      compared++;
    });
  }
  return compared;
}

const found = survey();
const passedByOp = new Map<string, [passed: number, tried: number]>();

/** "a 3, b 1" from a list with repeats, most frequent first. */
function countBy(items: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).map(([item, n]) => `${item} ${n}`).join(', ');
}

function record(c: Case, passed: boolean): void {
  for (const op of new Set(allNodes(c.graph).map((n) => n.op))) {
    const counts = passedByOp.get(op) ?? [0, 0];
    counts[1]++;
    if (passed) counts[0]++;
    passedByOp.set(op, counts);
  }
}

describe('ONNX backend node tests', () => {
  it.each(found.tried.map((c) => [c.name, c] as const))('%s', (name, c) => {
    const known = KNOWN_FAILURES[name];
    if (known) {
      expect(() => runCase(c), `${name} is listed as failing (${known}) but passes: remove it from KNOWN_FAILURES`).toThrow();
      record(c, false);
      return;
    }
    let compared = 0;
    try {
      compared = runCase(c);
    } finally {
      record(c, compared > 0);
    }
    expect(compared).toBeGreaterThan(0);
  });

  it('runs at least the floor of cases, and only known kinds of case are left out', () => {
    const unsupported = [...found.unsupportedOps].sort((a, b) => b[1].length - a[1].length);
    const lines = [
      `tried ${found.tried.length} (known failures ${Object.keys(KNOWN_FAILURES).length}), unreadable ${found.unreadable.length}, ` +
        `unsupported types ${found.unsupportedTypes.length}, unsupported ops ${new Set([...found.unsupportedOps.values()].flat()).size}`,
      `unsupported ops (cases): ${unsupported.map(([op, names]) => `${op} ${names.length}`).join(', ')}`,
      `unsupported types (cases): ${countBy(found.unsupportedTypes.flatMap((t) => t.dtypes))}`,
      `unreadable (cases): ${countBy(found.unreadable.map((u) => u.reason.replace(/^.*?: (graph (input|output)|attribute) [^:]*: /, '')))}`,
      `passed/tried per op: ${[...passedByOp].sort().map(([op, [p, t]]) => `${op} ${p}/${t}`).join(', ')}`,
    ];
    console.log(lines.join('\n'));
    expect(found.tried.length).toBeGreaterThanOrEqual(MIN_TRIED);
    for (const name of Object.keys(KNOWN_FAILURES)) expect(found.tried.map((c) => c.name), `known failure ${name} is no longer tried`).toContain(name);
    for (const u of found.unreadable) expect(u.reason, u.name).toMatch(EXPECTED_UNREADABLE);
    // The runtime computes on every dtype except strings, complex and the 8-bit and smaller floats.
    for (const t of found.unsupportedTypes) for (const d of t.dtypes) expect(d, t.name).toMatch(/^(string|complex|float8|float4)/);
  });
});
