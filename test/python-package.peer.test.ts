import { spawnSync } from 'node:child_process';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './cli-helpers.js';
import { peerPython, PYTHON_DIR } from './peers.js';
import { makeVenv, pipInstall } from './pip.js';

const python = peerPython();

/** A script run from a folder without modelbridge_spec.py beside it: only the installed package can answer. */
const PROBE = `
import json, sys, torch, modelbridge_spec as ms
bundle = sys.argv[1]
model = ms.load_bundle(bundle)
y = model(torch.tensor([[1.0, 1.0]]))
spec = ms.export_spec(torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3), torch.nn.SiLU(), torch.nn.LSTM(5, 4)))
print(json.dumps({"file": ms.__file__, "y": y.item(), "types": ms.supported_types(), "spec": [m["type"] for m in spec["modules"]]}))
`;

describe.skipIf(!python)('the Python helper as a package (pip install ./python)', () => {
  it('installs into a fresh venv and loads a bundle modelbridge wrote', () => {
    const dir = tempDir('modelbridge-pip-');
    const venvPython = makeVenv(python!, dir);
    // A copy: pip builds in the source folder, and python/ stays clean.
    cpSync(PYTHON_DIR, join(dir, 'python'), { recursive: true });
    const installed = pipInstall(venvPython, join(dir, 'python'));
    expect(installed.code, installed.output).toBe(0);
    const show = spawnSync(venvPython, ['-m', 'pip', 'show', 'modelbridge-spec'], { encoding: 'utf8' });
    expect(show.stdout).toMatch(/^Name: modelbridge-spec$/m);
    expect(show.stdout).toMatch(/^License: Apache-2.0$/m);
    const work = tempDir('modelbridge-pip-run-');
    const r = spawnSync(venvPython, ['-c', PROBE, join(ROOT, 'samples', 'or-gate', 'or-gate.safetensors')], { cwd: work, encoding: 'utf8', env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { file: string; y: number; types: string[]; spec: string[] };
    expect(out.file.startsWith(join(dir, 'venv'))).toBe(true);
    expect(out.y).toBeGreaterThan(0.8);
    expect(out.types).toEqual(expect.arrayContaining(['Sequential', 'ModuleList', 'ModuleDict', 'Conv1d', 'LSTM', 'GRU', 'GroupNorm']));
    expect(out.spec).toEqual(['Conv1d', 'SiLU', 'LSTM']);
  }, 300_000);
});
