import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/api/load.js';
import { Runner } from '../src/api/run.js';
import { isDType } from '../src/core/dtypes.js';
import { FormatError } from '../src/core/errors.js';
import { IR_FOR_OPSET, MAX_KNOWN_OPSET, REMOVED_AT, SCHEMAS, TYPE_SETS } from '../src/formats/onnx/opset-schemas.js';
import { cli } from './cli-helpers.js';
import { fromJson, ok, peerBatch, type JsonTensor } from './fixtures/verdicts/peer.js';
import { peerPython } from './peers.js';

/**
 * Issue 11: an ONNX file that onnxruntime rejects as invalid ("Unrecognized attribute: num_outputs
 * for operator Split" at opset 17) ran without a warning. Reading now refuses an attribute the
 * op's schema at the graph's opset does not have, from the schema table, which this file also
 * checks against the installed onnx package's own schemas (onnx_schemas.py generates them).
 */

const python = peerPython();
const SCHEMA_SCRIPT = fileURLToPath(new URL('./fixtures/verdicts/onnx_schemas.py', import.meta.url));

interface SplitCase {
  readonly checker: string;
  readonly ort: string;
  readonly x?: JsonTensor;
  readonly values?: Record<string, JsonTensor>;
}

type OnnxSchemaVersion = [number, number, number, string, string[][]];

/** The IR's names of ONNX's tensor element types, where they differ; types the IR lacks (int4, float6e2m3) are left out of the table. */
const IR_TYPE: Record<string, string> = {
  float: 'float32',
  double: 'float64',
  float8e4m3fn: 'float8_e4m3fn',
  float8e4m3fnuz: 'float8_e4m3fnuz',
  float8e5m2: 'float8_e5m2',
  float8e5m2fnuz: 'float8_e5m2fnuz',
  float8e8m0: 'float8_e8m0fnu',
  float4e2m1: 'float4_e2m1fn_x2',
};
/** The table writes a variadic input count (ONNX's 2^31 - 1) as 1000. */
const VARIADIC = 1000;

describe.skipIf(!python)('ONNX attributes an op does not have at the graph opset', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mb-verdicts-attrs-'));
  const cases = new Map<number, SplitCase>();
  let nested: SplitCase;

  beforeAll(() => {
    const made = peerBatch([
      ...[17, 18].map((opset) => ({ cmd: 'split-num-outputs', args: [join(dir, `split${opset}.onnx`), String(opset)] })),
      { cmd: 'split-num-outputs', args: [join(dir, 'nested17.onnx'), '17', 'nested'] },
    ]);
    cases.set(17, ok(made[0]));
    cases.set(18, ok(made[1]));
    nested = ok(made[2]);
  }, 300_000);

  it('onnx.checker and onnxruntime reject Split num_outputs at opset 17 and accept it at 18', () => {
    expect(cases.get(17)!.checker).toMatch(/Unrecognized attribute: num_outputs for operator Split/);
    expect(cases.get(17)!.ort).toMatch(/INVALID_GRAPH.*Unrecognized attribute: num_outputs/);
    expect(cases.get(18)!.checker).toBe('ok');
    expect(cases.get(18)!.ort).toBe('ok');
  });

  it('reading the opset-17 file refuses it, naming the node, the attribute and the opset it exists from', () => {
    const file = join(dir, 'split17.onnx');
    expect(() => loadModel(file)).toThrow(FormatError);
    expect(() => loadModel(file)).toThrow(`${file}: node split3 (Split) attribute num_outputs: an attribute of Split at opset 17 (it has: axis); num_outputs exists from opset 18`);
  });

  it('inside an If branch too', () => {
    expect(nested.ort).toMatch(/Unrecognized attribute: num_outputs for operator Split/);
    expect(() => loadModel(join(dir, 'nested17.onnx'))).toThrow(/node split_(then|else) \(Split\) attribute num_outputs: .*exists from opset 18/);
  });

  it('the CLI says so in one line and exits 2', () => {
    const r = cli(['run', join(dir, 'split17.onnx'), '--input', 'x=[[0,1,2,3,4,5],[6,7,8,9,10,11]]']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/node split3 \(Split\) attribute num_outputs: .*exists from opset 18/);
  });

  it('the opset-18 file reads and runs to onnxruntime outputs', () => {
    const c = cases.get(18)!;
    const out = new Runner(loadModel(join(dir, 'split18.onnx'))).run({ x: fromJson(c.x!) });
    for (const k of ['a', 'b', 'c']) expect(out[k]!.toNumbers(), k).toEqual(fromJson(c.values![k]!).toNumbers());
  });

  it('the schema table is the installed onnx package\'s (versions, input counts, attributes, input types)', () => {
    const r = spawnSync(python!, [SCHEMA_SCRIPT], { encoding: 'utf8', maxBuffer: 1 << 26, timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const onnx = JSON.parse(r.stdout) as { max_opset: number; schemas: Record<string, OnnxSchemaVersion[]>; removed_at: Record<string, number>; ir_for_opset: Record<string, number> };
    expect(MAX_KNOWN_OPSET).toBe(onnx.max_opset);
    expect(REMOVED_AT).toEqual(onnx.removed_at);
    expect(Object.fromEntries(Object.entries(IR_FOR_OPSET).map(([k, v]) => [String(k), v]))).toEqual(onnx.ir_for_opset);
    expect(Object.keys(SCHEMAS).sort()).toEqual(Object.keys(onnx.schemas).sort());
    const mismatches: string[] = [];
    for (const [op, versions] of Object.entries(onnx.schemas)) {
      const ours = SCHEMAS[op]!;
      const irTypes = (t: string[]) => t.map((x) => IR_TYPE[x] ?? x).filter((x) => isDType(x)).sort().join();
      const theirs = versions.map(([since, min, max, attrs, types]) => [since, min, Math.min(max, VARIADIC), attrs, types.map(irTypes)]);
      const mine = ours.map(([since, min, max, attrs, types]) => [since, min, max, attrs, types.map((i) => [...TYPE_SETS[i]!].sort().join())]);
      if (JSON.stringify(mine) !== JSON.stringify(theirs)) mismatches.push(op);
    }
    expect(mismatches).toEqual([]);
  }, 120_000);
});
