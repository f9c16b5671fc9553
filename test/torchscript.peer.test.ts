import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/api/load.js';
import { readNpy } from '../src/formats/npy/npy.js';
import { MemoryAccess } from '../src/formats/pytorch/bytes.js';
import { readZip } from '../src/formats/pytorch/zip.js';
import type { Tensor } from '../src/core/tensor.js';
import { Session } from '../src/runtime/executor.js';
import { cli, tempDir } from './cli-helpers.js';
import { zipOf } from './fixtures/pytorch/helpers.js';
import { peerPython, runPeerScript } from './peers.js';

/**
 * TorchScript programs against real PyTorch. python/torchscript_peers.py traces the models of
 * python/pt2_peers.py (OR gate, an MLP, torchvision resnet18 and mobilenet_v3_small, a tiny
 * torchvision ViT (whose attention traces to torch._native_multi_head_attention), transformers BERT; random weights, eval mode, fixed seed) with torch.jit.trace and saves them
 * with torch.jit.save. modelbridge reads each archive's code (never executing it) into a graph,
 * runs it against torch's outputs, converts it to ONNX with the CLI (which verifies) and
 * onnxruntime runs that against torch's outputs too. A scripted forward (an `if`) and a traced op
 * outside the mapping get one line naming the record, the line and the construct.
 */
const python = peerPython();
const TOLERANCE = 1e-5;

interface PeerCase {
  readonly name: string;
  readonly dir: string;
  readonly inputs: string[];
  readonly outputs: number;
  readonly ops: string[];
}

const temp = tempDir('modelbridge-torchscript-');
afterAll(() => rmSync(temp, { recursive: true, force: true }));
let cases: PeerCase[] = [];
let refusals: { scripted: string; unmapped: string };

const npy = (path: string): Tensor => readNpy(readFileSync(path), path);

/** The worst element as |got − want| / max(1, |want|), or why they cannot compare. */
function mismatch(got: Tensor | undefined, want: Tensor): string | undefined {
  if (!got) return 'missing';
  if (got.shape.join(',') !== want.shape.join(',')) return `shape [${got.shape.join(', ')}], expected [${want.shape.join(', ')}]`;
  const a = got.toNumbers();
  const b = want.toNumbers();
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return worst <= TOLERANCE ? undefined : `relative error ${worst}`;
}

function expectOneLine(r: { code: number; stderr: string }, code: number, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe.skipIf(!python)('TorchScript programs from torch.jit.trace', () => {
  beforeAll(() => {
    const r = runPeerScript('torchscript_peers.py', ['trace', join(temp, 'models')], { timeoutMs: 400_000 });
    if (r.status !== 0) throw new Error(`torchscript_peers.py trace failed: ${r.stderr.trim().split('\n').slice(-5).join('\n')}`);
    cases = JSON.parse(r.stdout) as PeerCase[];
    const s = runPeerScript('torchscript_peers.py', ['scripted', join(temp, 'refused')], { timeoutMs: 200_000 });
    if (s.status !== 0) throw new Error(`torchscript_peers.py scripted failed: ${s.stderr.trim().split('\n').slice(-5).join('\n')}`);
    refusals = JSON.parse(s.stdout) as typeof refusals;
  }, 620_000);

  it('traces every model, with the torch ops traced code calls', () => {
    expect(cases.map((c) => c.name)).toEqual(['or_gate', 'mlp', 'resnet18', 'mobilenet_v3_small', 'vit', 'bert', 'rnn']);
    const ops = new Set(cases.flatMap((c) => c.ops));
    for (const op of ['_convolution', 'batch_norm', 'linear', 'relu_', 'add_', 'max_pool2d', 'adaptive_avg_pool2d', 'flatten', 'hardswish_', 'layer_norm', '_native_multi_head_attention', 'embedding', 'scaled_dot_product_attention', 'view', 'size', 'where', 'lstm', 'gru']) {
      expect(ops.has(op), op).toBe(true);
    }
  });

  it('reads each program (never executed) and runs it with torch\'s outputs', () => {
    const problems: string[] = [];
    for (const c of cases) {
      const model = loadModel(join(c.dir, 'model.pt'));
      const graph = model.graph!;
      expect(graph, c.name).toBeDefined();
      expect(graph.inputs.map((i) => i.name)).toEqual(c.inputs);
      expect(graph.outputs).toHaveLength(c.outputs);
      const feeds = Object.fromEntries(c.inputs.map((name, k) => [name, npy(join(c.dir, `input_${k}.npy`))]));
      const out = new Session(graph).run(feeds);
      graph.outputs.forEach((o, k) => {
        const problem = mismatch(out[o.name], npy(join(c.dir, `output_${k}.npy`)));
        if (problem) problems.push(`${c.name} output ${o.name}: ${problem}`);
      });
    }
    expect(problems).toEqual([]);
  });

  it('keeps the batch dynamic where the traced code computes it, and runs another batch with the eager module\'s outputs', () => {
    const dynamic: string[] = [];
    const problems: string[] = [];
    for (const c of cases) {
      const graph = loadModel(join(c.dir, 'model.pt')).graph!;
      if (!graph.inputs.every((i) => i.shape?.[0] === 'batch')) continue;
      dynamic.push(c.name);
      const feeds = Object.fromEntries(c.inputs.map((name, k) => [name, npy(join(c.dir, `input_${k}_b.npy`))]));
      const out = new Session(graph).run(feeds);
      graph.outputs.forEach((o, k) => {
        const problem = mismatch(out[o.name], npy(join(c.dir, `output_${k}_b.npy`)));
        if (problem) problems.push(`${c.name} output ${o.name} at batch ${Object.values(feeds)[0]!.shape[0]}: ${problem}`);
      });
    }
    // BERT stays at its traced batch: transformers' mask indexes with broadcast index tensors,
    // whose broadcast shape the lowering writes as a constant (the second lowering sees it differ).
    expect(dynamic).toEqual(['or_gate', 'mlp', 'resnet18', 'mobilenet_v3_small', 'vit', 'rnn']);
    expect(problems).toEqual([]);
  });

  it('keeps the state dict under its names, and inspect shows the program', () => {
    const resnet = cases.find((c) => c.name === 'resnet18')!;
    const model = loadModel(join(resnet.dir, 'model.pt'));
    expect(model.weights.get('conv1.weight')!.shape).toEqual([64, 3, 7, 7]);
    expect(model.graph!.initializers.get('layer1.0.bn1.running_var')!.shape).toEqual([64]);
    expect(model.graph!.nodes.filter((n) => n.op === 'Conv')).toHaveLength(20);
    const r = cli(['inspect', join(resnet.dir, 'model.pt')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Conv/);
    expect(r.stdout).toMatch(/torch\._convolution\s+20/);
    expect(r.stdout).toMatch(/code\/__torch__\/torchvision\/models\/resnet\.py/);
  });

  it('converts each program to ONNX with the CLI, and onnxruntime agrees with torch', () => {
    const jobs = cases.map((c) => {
      const onnx = join(temp, `${c.name}.onnx`);
      const r = cli(['convert', join(c.dir, 'model.pt'), onnx]);
      expect(r.code, `${c.name}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/max abs error/);
      return {
        onnx,
        inputs: Object.fromEntries(c.inputs.map((name, k) => [name, join(c.dir, `input_${k}.npy`)])),
        outputs: Array.from({ length: c.outputs }, (_, k) => join(c.dir, `output_${k}.npy`)),
      };
    });
    writeFileSync(join(temp, 'ort.json'), JSON.stringify(jobs));
    const r = runPeerScript('pt2_peers.py', ['ort', join(temp, 'ort.json')]);
    expect(r.status, r.stderr).toBe(0);
    const results = JSON.parse(r.stdout) as { ok: boolean; error?: string }[];
    expect(results.map((x, i) => (x.ok ? 'ok' : `${cases[i]!.name}: ${x.error}`))).toEqual(cases.map(() => 'ok'));
  });

  it('scripted code and ops outside the mapping: one line naming the record, line and construct; the weights still convert', () => {
    expectOneLine(cli(['run', refusals.scripted, '--input', '[[1,2,3]]']), 2, /scripted\.pt: record scripted\/code\/__torch__\.py line \d+: .*scripted code it cannot: an "if" statement/);
    expectOneLine(cli(['run', refusals.unmapped, '--input', '[[1,2,3],[4,5,6]]']), 2, /unmapped\.pt: record unmapped\/code\/__torch__\.py line \d+: .*torch\.cumprod/);
    // As before programs were read: a weights-only target takes the state dict.
    const out = join(temp, 'scripted.safetensors');
    const r = cli(['convert', refusals.scripted, out]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
    expect([...loadModel(out).weights.keys()].sort()).toEqual(['fc.bias', 'fc.weight']);
  });

  it('an archive whose code refers to a missing record, or whose code is cut, gives one line', () => {
    const source = join(cases.find((c) => c.name === 'or_gate')!.dir, 'model.pt');
    const zip = readZip(new MemoryAccess(new Uint8Array(readFileSync(source)), source));
    const records = new Map(zip.entries.map((x) => [x.name, zip.read(x)] as const));
    const linear = [...records.keys()].find((k) => k.endsWith('code/__torch__/torch/nn/modules/linear.py'))!;
    const without = new Map(records);
    without.delete(linear);
    const missing = join(temp, 'missing.pt');
    writeFileSync(missing, zipOf(Object.fromEntries(without), ''));
    expectOneLine(cli(['run', missing, '--input', '[[1,1],[0,1],[1,0],[0,0]]']), 2, /missing\.pt: .*a record .*code\/__torch__\/torch\/nn\/modules\/linear\.py/);
    const cut = new Map(records);
    const text = Buffer.from(records.get(linear)!).toString('utf8');
    cut.set(linear, new Uint8Array(Buffer.from(text.slice(0, text.indexOf('torch.linear(') + 16))));
    const broken = join(temp, 'broken.pt');
    writeFileSync(broken, zipOf(Object.fromEntries(cut), ''));
    expectOneLine(cli(['run', broken, '--input', '[[1,1],[0,1],[1,0],[0,0]]']), 2, /broken\.pt: record .*linear\.py line \d+: /);
  });
});
