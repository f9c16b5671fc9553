import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { saveModel } from '../src/api/load.js';
import { makeNode } from '../src/core/graph.js';
import type { Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { cli, tempDir } from './cli-helpers.js';
import { FIXTURES } from './fixtures/tfjs/peer.js';

/**
 * Issue 6's "Done when" from the command line: a model.json with a missing shard, a shard shorter
 * than the manifest says, an unknown dtype, or an op we cannot map gives exit code 2 (a file that
 * cannot be read) and ONE stderr line naming the problem; a model holding an op TF.js cannot run
 * is refused on `convert --to tfjs` with exit code 1 (a usage problem: the input is fine, the
 * target cannot hold it) and one line naming the op, leaving no output behind.
 */
const dir = tempDir('modelbridge-tfjs-cli-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;

function expectOneLineError(r: { code: number; stderr: string; stdout: string }, code: number, pattern: RegExp): void {
  expect(r.code).toBe(code);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stdout).toBe('');
}

/** A copy of the dense_model fixture (a _FusedMatMul graph model), model.json and shard edited. */
function broken(edit: (json: { modelTopology: { node: { op: string }[] }; weightsManifest: { weights: { dtype: string }[] }[] }) => void, shard: (bytes: Buffer) => Buffer | undefined = (b) => b): string {
  const out = join(dir, `${counter++}-broken`);
  cpSync(FIXTURES.dense, out, { recursive: true });
  const json = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
  edit(json);
  writeFileSync(join(out, 'model.json'), JSON.stringify(json));
  const bytes = shard(readFileSync(join(out, 'group1-shard1of1.bin')));
  if (bytes) writeFileSync(join(out, 'group1-shard1of1.bin'), bytes);
  else rmSync(join(out, 'group1-shard1of1.bin'));
  return out;
}

/** inspect, run and convert all fail with the same one line, and convert leaves nothing. */
function expectUnreadable(model: string, pattern: RegExp): void {
  const before = readdirSync(model).map((f) => [f, readFileSync(join(model, f))] as const);
  expectOneLineError(cli(['inspect', model]), 2, pattern);
  expectOneLineError(cli(['inspect', join(model, 'model.json'), '--json']), 2, pattern);
  expectOneLineError(cli(['run', model, '--input', '[[20]]']), 2, pattern);
  const out = join(dir, `${counter++}-out.onnx`);
  expectOneLineError(cli(['convert', model, out]), 2, pattern);
  expect(existsSync(out)).toBe(false);
  // The input is never modified.
  for (const [f, bytes] of before) expect(readFileSync(join(model, f))).toEqual(bytes);
}

describe('a broken model.json gives exit code 2 and one line naming the problem', () => {
  it('the fixture itself reads and runs: [[20]] -> 38.17822265625', () => {
    const r = cli(['run', broken(() => {}), '--input', '[[20]]', '--json']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('38.17822265625');
  });

  it('a missing shard: names the shard file', () => {
    expectUnreadable(broken(() => {}, () => undefined), /model\.json: shard group1-shard1of1\.bin: .*missing: .*group1-shard1of1\.bin/);
  });

  it('a shard shorter than the manifest says: names the shard, the bytes needed and found', () => {
    expectUnreadable(broken(() => {}, (b) => b.subarray(0, 6)), /model\.json: shard group1-shard1of1\.bin: 8 bytes .*found 6/);
  });

  it('an unknown dtype: names the weight and the dtype', () => {
    expectUnreadable(broken((j) => (j.weightsManifest[0]!.weights[0]!.dtype = 'float64')), /model\.json: weight \S+ dtype: one of float32, int32, bool, complex64, string, not "float64"/);
  });

  it('an op it cannot map: names the op and its node', () => {
    expectUnreadable(broken((j) => (j.modelTopology.node[4]!.op = 'Cumprod')), /model\.json: .*unsupported: Cumprod \(node Identity\)/);
  });

  it('a fused op with fused_ops TF.js does not run: names the node and the fused op', () => {
    expectUnreadable(
      broken((j) => {
        const fused = j.modelTopology.node.find((n) => n.op === '_FusedMatMul') as unknown as { attr: Record<string, unknown> };
        fused.attr['fused_ops'] = { list: { s: [Buffer.from('BiasAdd').toString('base64'), Buffer.from('Softsign').toString('base64')] } };
      }),
      /model\.json: node \S+ \(_FusedMatMul\): fused_ops TF\.js runs .*not Softsign/,
    );
  });
});

describe('convert --to tfjs: what TF.js cannot run is refused in one line with no output; what it can is written', () => {
  function graphModel(node: ReturnType<typeof makeNode>, weights: Map<string, Tensor> = new Map()): Model {
    return {
      format: 'memory',
      weights,
      graph: { inputs: [{ name: 'x', dtype: 'float32', shape: [null, 4, 3, 3] }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], initializers: weights, nodes: [node], opset: 17 },
      signatures: [{ name: 'default', inputs: new Map([['x', 'x']]), outputs: new Map([['y', 'y']]) }],
      metadata: {},
    };
  }

  function expectRefused(source: string, pattern: RegExp): void {
    for (const out of [join(dir, `${counter++}-tfjs`), join(dir, `${counter++}-model.json`)]) {
      expectOneLineError(cli(['convert', source, out, '--to', 'tfjs']), 1, pattern);
      expect(existsSync(out)).toBe(false);
    }
  }

  it('an ONNX Softsign (TF has Softsign, TF.js does not): names the op and the node', () => {
    const source = join(dir, 'softsign.onnx');
    saveModel(graphModel(makeNode('Softsign', ['x'], ['y'], {}, 'squash')), source);
    expect(cli(['run', source, '--input', JSON.stringify([[[[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[0, 0, 0], [0, 0, 0], [0, 0, 0]], [[1, 1, 1], [1, 1, 1], [1, 1, 1]], [[2, 2, 2], [2, 2, 2], [2, 2, 2]]]])]).code).toBe(0);
    expectRefused(source, /TF\.js cannot run op Softsign \(TF node y, written for IR node squash \(Softsign\)\)/);
  });

  it('a grouped convolution from a safetensors bundle is written per group (SplitV, Conv2D, ConcatV2) and runs the same', () => {
    const source = join(dir, 'grouped.safetensors');
    const w = Tensor.from('float32', [4, 2, 1, 1], [1, 2, 3, 4, 5, 6, 7, 8]);
    saveModel({ ...graphModel(makeNode('Conv', ['x', 'w'], ['y'], { group: { type: 'int', value: 2 } as never }, 'grouped'), new Map([['w', w]])) }, source);
    const out = join(dir, 'grouped-tfjs');
    const converted = cli(['convert', source, out, '--to', 'tfjs']);
    expect(converted.code, converted.stderr).toBe(0);
    const input = JSON.stringify([Array.from({ length: 4 }, (_, c) => Array.from({ length: 3 }, (_, h) => [c - h, c * h, c + h + 0.5]))]);
    const [a, b] = [cli(['run', source, '--input', input, '--json']), cli(['run', out, '--input', input, '--json'])];
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const numbers = (o: string) => JSON.stringify(Object.values(JSON.parse(o) as Record<string, unknown>)[0]);
    expect(numbers(b.stdout)).toBe(numbers(a.stdout));
    expect(numbers(a.stdout)).toMatch(/\d/);
  });
});
