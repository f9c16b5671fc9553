import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, ROOT, tempDir } from './cli-helpers.js';
import { peerPython } from './peers.js';

/**
 * Save in one language, load in another: test/c/savedmodel_run.c, compiled against TensorFlow's C
 * API as the tensorflow wheel ships it, loads the SavedModel modelbridge wrote from each source
 * format with TF_LoadSessionFromSavedModel and prints what modelbridge run prints.
 */
const python = peerPython();
const SAMPLES = join(ROOT, 'samples', 'or-gate');
const SOURCES = ['or-gate.safetensors', 'or-gate.pt', 'or-gate.onnx', 'or-gate.pb', 'or-gate.json', 'or-gate-savedmodel'];
const ROWS = [[0, 0], [0, 1], [1, 0], [1, 1]];

/** The tensorflow package folder of the peers' venv (headers in include/, the C API in libtensorflow_cc.so.2). */
function tensorflowDir(): string | undefined {
  const lib = join(ROOT, '.peers', 'venv', 'lib');
  if (!existsSync(lib)) return undefined;
  for (const py of readdirSync(lib)) {
    const dir = join(lib, py, 'site-packages', 'tensorflow');
    if (existsSync(join(dir, 'include', 'tensorflow', 'c', 'c_api.h'))) return dir;
  }
  return undefined;
}

const tf = python ? tensorflowDir() : undefined;
const compiler = spawnSync('cc', ['--version']).status === 0;
if (python && (!tf || !compiler)) {
  const why = !tf ? 'the tensorflow wheel in .peers/venv has no C API headers' : 'no C compiler (cc)';
  if (process.env.CI === 'true') throw new Error(`C API test cannot run: ${why}`);
  console.warn(`skipping the C API test: ${why}`);
}

describe.skipIf(!python || !tf || !compiler)("TensorFlow's C API loads the SavedModels modelbridge writes", () => {
  let dir: string;
  let program: string;

  beforeAll(() => {
    dir = tempDir('modelbridge-c-api-');
    program = join(dir, 'savedmodel_run');
    const r = spawnSync('cc', ['-O1', '-Wall', '-Werror', '-o', program, join(ROOT, 'test', 'c', 'savedmodel_run.c'), `-I${join(tf!, 'include')}`, `-L${tf}`, '-l:libtensorflow_cc.so.2', '-l:libtensorflow_framework.so.2', `-Wl,-rpath,${tf}`], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  }, 300_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const source of SOURCES) {
    it(`${source} -> SavedModel -> TF_LoadSessionFromSavedModel + TF_SessionRun: modelbridge run's outputs`, () => {
      const src = join(SAMPLES, source);
      const saved = join(dir, `${source}-savedmodel`);
      const converted = cli(['convert', src, saved, '--to', 'savedmodel']);
      expect(converted.code, converted.stderr).toBe(0);
      // The signature's tensors, as the C program needs them: inspect's SavedModel details.
      const report = JSON.parse(cli(['inspect', saved, '--json']).stdout) as { details: Array<{ title: string; rows: string[][] }> };
      const sig = report.details.find((d) => d.title.includes("signature_def['serving_default']"))!;
      const input = sig.rows.find((r) => r[0] === 'input')!.at(-1)!;
      const output = sig.rows.find((r) => r[0] === 'output')!.at(-1)!;
      const run = cli(['run', src, '--input', JSON.stringify(ROWS), '--json']);
      expect(run.code, run.stderr).toBe(0);
      const expected = Object.values((JSON.parse(run.stdout) as { outputs: Record<string, { shape: number[]; data: number[] }> }).outputs)[0]!;
      const c = spawnSync(program, [saved, input, output, '4,2', ...ROWS.flat().map(String)], { encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' }, timeout: 120_000 });
      expect(c.status, c.stderr).toBe(0);
      const got = JSON.parse(c.stdout) as { shape: number[]; values: number[] };
      expect(got.shape).toEqual(expected.shape);
      got.values.forEach((v, i) => expect(Math.abs(v - expected.data[i]!), `${source} output ${i}`).toBeLessThan(1e-6));
    });
  }
});
