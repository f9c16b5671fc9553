import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/api/load.js';
import { runModel } from '../src/api/run.js';
import { FormatError } from '../src/core/errors.js';
import { Tensor } from '../src/core/tensor.js';
import { writeSafetensorsFile } from '../src/formats/safetensors/writer.js';
import { tempDir } from './cli-helpers.js';
import { peerPython, PYTHON_DIR } from './peers.js';

/**
 * The module spec's newer layers across the language border: python/spec_cases.py builds torch.nn
 * stacks (Conv1d, ConvTranspose2d, Embedding, SiLU, Hardswish, GELU tanh, BatchNorm1d, GroupNorm,
 * LSTM, GRU), saves them with modelbridge_spec.save_bundle and records torch's outputs; each
 * bundle must lower and run in modelbridge's runtime to the same outputs.
 */
const python = peerPython();

interface Case {
  input: unknown;
  input_dtype: 'float32' | 'int64';
  input_shape: number[];
  output: unknown;
  output_shape: number[];
}

const flat = (v: unknown): number[] => (Array.isArray(v) ? v.flatMap(flat) : [v as number]);

describe.skipIf(!python)('torch.nn layers through the module spec (real PyTorch)', () => {
  let dir = '';
  let names: string[] = [];
  beforeAll(() => {
    dir = tempDir('modelbridge-spec-cases-');
    const r = spawnSync(python!, [join(PYTHON_DIR, 'spec_cases.py'), dir], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
    if (r.status !== 0) throw new Error(`python/spec_cases.py failed:\n${r.stderr}`);
    names = JSON.parse(r.stdout) as string[];
  }, 300_000);

  it('writes every case', () => {
    expect(names).toEqual(['conv1d', 'conv1d_same', 'conv_transpose', 'conv_transpose_groups', 'embedding', 'norms_2d', 'group_norm_plain', 'lstm', 'lstm_stacked', 'gru', 'gru_stacked']);
  });

  it('every bundle runs in modelbridge to torch outputs (atol 1e-5)', () => {
    for (const name of names) {
      const c = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as Case;
      const model = loadModel(join(dir, `${name}.safetensors`));
      const values = flat(c.input);
      const x = Tensor.from(c.input_dtype, c.input_shape, c.input_dtype === 'int64' ? values.map((v) => BigInt(v)) : values);
      const outputs = runModel(model, { x });
      const y = Object.values(outputs)[0]!;
      expect([...y.shape], name).toEqual(c.output_shape);
      const want = flat(c.output);
      const got = y.toFloat32();
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i]! - got[i]!));
      expect(worst, name).toBeLessThan(1e-5);
    }
  });

  it('the lowered graphs use the ONNX ops the spec promises', () => {
    const ops = (name: string) => new Set(loadModel(join(dir, `${name}.safetensors`)).graph!.nodes.map((n) => n.op));
    expect(ops('lstm_stacked')).toContain('LSTM');
    expect(ops('gru_stacked')).toContain('GRU');
    expect(ops('conv_transpose')).toContain('ConvTranspose');
    expect(ops('embedding')).toContain('Gather');
    expect(ops('conv_transpose')).toContain('HardSwish');
    expect(ops('norms_2d')).toContain('InstanceNormalization');
  });
});

describe('module specs holding ModuleList or ModuleDict', () => {
  it('check the state dict, and refuse to run in one line naming the container', () => {
    const dir = tempDir();
    const spec = {
      type: 'Sequential',
      modules: [
        { type: 'Linear', in_features: 2, out_features: 2, bias: false },
        { name: 'heads', type: 'ModuleDict', modules: [{ name: 'a', type: 'Linear', in_features: 2, out_features: 1, bias: false }] },
      ],
    };
    const path = join(dir, 'dict.safetensors');
    const w = (shape: number[]) => Tensor.from('float32', shape, new Array<number>(shape.reduce((a, b) => a * b, 1)).fill(1));
    writeSafetensorsFile(path, new Map([['0.weight', w([2, 2])], ['heads.a.weight', w([1, 2])]]), { 'modelbridge.module': JSON.stringify(spec) });
    expect(() => loadModel(path)).toThrow(FormatError);
    expect(() => loadModel(path)).toThrow(/heads.*ModuleDict has no forward/);
  });
});
