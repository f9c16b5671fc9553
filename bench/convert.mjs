// Conversions as users type them: `modelbridge convert IN OUT` from the CLI, with its defaults
// (verification on: every tensor read back and compared, outputs on a generated input), each run a
// fresh process measured by GNU time (wall seconds, peak RSS). Baselines in the same run:
//   - `cp` + `cmp` of the same bytes: the input copied (8 MiB buffer, fsync'd, as modelbridge's
//     writers fsync) by bench/io-worker.mjs, then compared with the copy by cmp (diff -r for a
//     directory). That is the least any converter that checks its output must do.
//   - Python's onnx.load + onnx.save for the real model (torchvision's ViT-B/16 exported to ONNX).
//   - a plain copy for SavedModel conversions with --no-verify (the TensorBundle CRC-32C bound).
// Models: a 1 GiB weights-only safetensors bundle; a 1 GiB runnable bundle (16 Linear 4096x4096
// layers with a module spec) to safetensors, ONNX, .pt and TF.js; ViT-B/16 ONNX (~330 MiB) to
// safetensors, .pt and TF.js; a 1 GiB SavedModel written by TensorFlow to TF.js, safetensors and
// SavedModel. A conversion that fails is reported with its message and misses its target.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveModel, Tensor } from '../dist/index.js';
import { f, io, log, mib, noted, py, PYTHON, ratio, ROOT, RSS_SLACK, sizeOf, table, target, timed, WORK, yes } from './harness.mjs';
import { GB, median } from './util.mjs';

const CLI = join(ROOT, 'bin', 'modelbridge.cjs');
const CACHE = join(ROOT, 'bench', '.cache');
// Each conversion here takes 5-40 s on this machine; 3 rounds (median), candidate and baselines
// alternating. BENCH_CONVERT_ROUNDS overrides. No untimed warm-up round any more (it was a quarter
// of the section's ~15 minutes): the inputs were just written or read, so the page cache is warm,
// and the slow first write after making a model that the warm-up absorbed is one run of three,
// which the median drops.
const ROUNDS = Number(process.env.BENCH_CONVERT_ROUNDS ?? 3);
// BENCH_CONVERT_LAYERS=2 makes a 128 MiB bundle, for trying the section quickly (not for results).
const LAYERS = Number(process.env.BENCH_CONVERT_LAYERS ?? 16);
const DIM = 4096;

/** `cp` + `cmp`: the fsync'd copy (io-worker) plus cmp of the source with the copy. */
function copyAndCompare(src, dir) {
  const copy = join(dir, 'cp-copy');
  const c = io(['copy', src, copy], [copy]);
  const cmp = isDir(src) ? timed('diff', ['-rq', src, copy]) : timed('cmp', [src, copy]);
  rmSync(copy, { recursive: true, force: true });
  if (cmp.failed) throw new Error(`cmp of a copy failed: ${cmp.failed}`);
  return { seconds: c.seconds + cmp.seconds, maxRSS: Math.max(c.maxRSS, cmp.maxRSS) };
}

function isDir(path) {
  return spawnSync('test', ['-d', path]).status === 0;
}

/** The CLI converting src to dst with extra options; the verification line it printed, if any. */
function convert(src, dst, extra = []) {
  const r = timed(process.execPath, [CLI, 'convert', src, dst, '--force', ...extra], [dst]);
  if (!r.failed) r.verified = r.stdout.split('\n').find((l) => l.startsWith('verified:')) ?? null;
  rmSync(dst, { recursive: true, force: true });
  return r;
}

/** Median seconds and worst RSS of runs; a failure anywhere makes the summary a failure. */
function summary(runs) {
  const failed = runs.find((r) => r.failed);
  if (failed) return { failed: failed.failed, seconds: NaN, maxRSS: Math.max(...runs.map((r) => r.maxRSS)) };
  return { seconds: median(runs.map((r) => r.seconds)), best: Math.min(...runs.map((r) => r.seconds)), maxRSS: Math.max(...runs.map((r) => r.maxRSS)), runs, verified: runs.at(-1).verified };
}

/** ROUNDS of each function, interleaved (candidate first on odd rounds). */
function rounds(fns) {
  const out = Object.fromEntries(Object.keys(fns).map((k) => [k, []]));
  const keys = Object.keys(fns);
  for (let i = 0; i < ROUNDS; i++) for (const k of i % 2 ? [...keys].reverse() : keys) out[k].push(fns[k]());
  return Object.fromEntries(Object.entries(out).map(([k, runs]) => [k, summary(runs)]));
}

const gbps = (bytes, s) => bytes / GB / s;

/** A streamed float32 pattern, so making a 1 GiB model never holds it in memory. */
function patternSource(byteLength, seed) {
  const CHUNK = 8 << 20;
  const block = new Uint8Array(CHUNK);
  const view = new Float32Array(block.buffer);
  for (let i = 0; i < view.length; i++) view[i] = Math.sin(i * 0.001 + seed) * 0.01;
  return {
    byteLength,
    read() {
      const out = new Uint8Array(byteLength);
      for (let at = 0; at < byteLength; at += CHUNK) out.set(block.subarray(0, Math.min(CHUNK, byteLength - at)), at);
      return out;
    },
    *chunks(size) {
      for (let at = 0; at < byteLength; at += Math.min(size, CHUNK)) yield block.subarray(0, Math.min(size, CHUNK, byteLength - at));
    },
  };
}

/** A 1 GiB bundle: LAYERS weights [DIM, DIM], bare (`bare`) and with a Sequential-of-Linear spec (`runnable`). */
function makeModels(dir) {
  const bare = join(dir, 'bare.safetensors');
  const runnable = join(dir, 'runnable.safetensors');
  const weights = new Map();
  for (let i = 0; i < LAYERS; i++) weights.set(`${i}.weight`, new Tensor('float32', [DIM, DIM], patternSource(DIM * DIM * 4, i)));
  saveModel({ format: 'memory', weights, signatures: [], metadata: {} }, bare);
  const spec = join(dir, 'spec.json');
  writeFileSync(spec, JSON.stringify({ type: 'Sequential', modules: Array.from({ length: LAYERS }, () => ({ type: 'Linear', in_features: DIM, out_features: DIM, bias: false })) }));
  const r = timed(process.execPath, [CLI, 'convert', bare, runnable, '--module', spec, '--no-verify', '--force']);
  if (r.failed) throw new Error(`making the runnable bundle failed: ${r.failed}`);
  return { bare, runnable };
}

/** One row of the CLI-vs-baseline table, and its targets. */
function row(what, size, mb, base, baseName, goal, label) {
  if (mb.failed) {
    target(`${label}: ${what} (CLI, verification on) vs ${baseName}`, `fails: ${mb.failed}`, `>= ${f(goal)}x`, false);
    return [what, 'fails', '-', baseName, f(base.seconds, 3), '-', '-', `>= ${f(goal)}x: ${yes(false)}`, mib(mb.maxRSS), `fails: ${mb.failed}`];
  }
  const r = base.seconds / mb.seconds;
  target(`${label}: ${what} (CLI, verification on) vs ${baseName}`, ratio(r), `>= ${f(goal)}x`, r >= goal);
  const rssMet = mb.maxRSS <= size + RSS_SLACK;
  target(`${label}: ${what} peak RSS`, mib(mb.maxRSS), `<= model + 64 MiB = ${mib(size + RSS_SLACK)}`, rssMet);
  return [what, f(mb.seconds, 3), f(gbps(size, mb.seconds)), baseName, f(base.seconds, 3), f(gbps(size, base.seconds)), ratio(r), `>= ${f(goal)}x: ${yes(r >= goal)}`, `${mib(mb.maxRSS)} (${yes(rssMet)})`, mb.verified ?? '-'];
}

const HEADERS = ['conversion (CLI, defaults)', 's', 'GB/s', 'baseline', 'baseline s', 'baseline GB/s', 'ratio (baseline time / CLI time)', 'target', 'peak RSS (<= model + 64 MiB)', 'what verification said'];

function syntheticSection(dir) {
  log(`convert: making the ${mib(LAYERS * DIM * DIM * 4)} bundles`);
  const { bare, runnable } = makeModels(dir);
  const size = sizeOf(bare);
  const rows = [];
  const all = [];
  log('convert: weights-only safetensors -> safetensors vs cp + cmp');
  {
    const m = rounds({ base: () => copyAndCompare(bare, dir), mb: () => convert(bare, join(dir, 'out.safetensors')) });
    rows.push(row(`bare ${mib(size)} safetensors -> safetensors`, size, m.mb, m.base, 'cp + cmp', 0.8, 'convert'));
    all.push(m);
  }
  for (const [to, out, extra] of [['safetensors', 'out.safetensors', []], ['onnx', 'out.onnx', []], ['pytorch', 'out.pt', []], ['tfjs', 'web', ['--to', 'tfjs']]]) {
    log(`convert: runnable safetensors -> ${to} vs cp + cmp`);
    const m = rounds({ base: () => copyAndCompare(runnable, dir), mb: () => convert(runnable, join(dir, out), extra) });
    rows.push(row(`runnable ${mib(size)} safetensors -> ${to}`, sizeOf(runnable), m.mb, m.base, 'cp + cmp', 0.8, 'convert'));
    all.push(m);
  }
  return { rows, runs: all };
}

function vitSection(dir) {
  // Cached in bench/.cache (the export takes ~40 s; torch.manual_seed(0) makes it the same model).
  const vit = join(CACHE, 'vit_b_16.onnx');
  if (!existsSync(vit)) {
    log('convert: exporting torchvision ViT-B/16 to ONNX (bench/.cache/vit_b_16.onnx)');
    mkdirSync(CACHE, { recursive: true });
    const partial = join(CACHE, 'partial-vit_b_16.onnx');
    py('make_vit.py', [partial], [partial]);
    renameSync(partial, vit);
  }
  const size = sizeOf(vit);
  const rows = [];
  const peerRows = [];
  const pyOut = join(dir, 'py.onnx');
  for (const [to, out, extra] of [['safetensors', 'vit.safetensors', []], ['pytorch', 'vit.pt', []], ['tfjs', 'vit-web', ['--to', 'tfjs']]]) {
    log(`convert: ViT-B/16 ONNX -> ${to} vs onnx.load + onnx.save and cp + cmp`);
    const m = rounds({ peer: () => py('onnx_roundtrip.py', [vit, pyOut], [pyOut]), base: () => copyAndCompare(vit, dir), mb: () => convert(vit, join(dir, out), extra) });
    rows.push(row(`ViT-B/16 ONNX (${mib(size)}) -> ${to}`, size, m.mb, m.peer, 'Python onnx.load + onnx.save', 2, 'ViT-B/16'));
    if (!m.mb.failed) noted(`ViT-B/16 ONNX -> ${to} (CLI, verification on) vs cp + cmp`, ratio(m.base.seconds / m.mb.seconds), 'no target');
    peerRows.push([to, m.mb.failed ? 'fails' : f(m.mb.seconds, 3), f(m.peer.seconds, 3), f(m.base.seconds, 3), mib(m.peer.maxRSS)]);
  }
  return { rows, peerRows, size };
}

function savedModelSection(dir) {
  const src = join(dir, 'savedmodel');
  log('convert: making a 1 GiB SavedModel with tf.saved_model.save');
  py('make_savedmodel.py', [src, '4', '8192'], [src]);
  const size = sizeOf(src);
  const rows = [];
  for (const [to, out, extra] of [['tfjs', 'sm-web', ['--to', 'tfjs']], ['safetensors', 'sm.safetensors', []], ['savedmodel', 'sm-copy', ['--to', 'savedmodel']]]) {
    log(`convert: SavedModel -> ${to}, --no-verify vs plain copy, and verification on vs cp + cmp`);
    const copy = join(dir, 'sm-plain');
    const m = rounds({
      copy: () => io(['copy', src, copy], [copy]),
      fast: () => convert(src, join(dir, out), [...extra, '--no-verify']),
      base: () => copyAndCompare(src, dir),
      mb: () => convert(src, join(dir, out), extra),
    });
    rmSync(copy, { recursive: true, force: true });
    const fastRatio = m.fast.failed ? NaN : m.copy.seconds / m.fast.seconds;
    target(`SavedModel 1 GiB -> ${to} --no-verify vs plain copy`, m.fast.failed ? `fails: ${m.fast.failed}` : ratio(fastRatio), '>= 0.80x', fastRatio >= 0.8);
    rows.push(row(`SavedModel 1 GiB -> ${to}`, size, m.mb, m.base, 'cp + cmp', 0.8, 'convert'));
    rows.push([`SavedModel 1 GiB -> ${to} --no-verify`, m.fast.failed ? 'fails' : f(m.fast.seconds, 3), m.fast.failed ? '-' : f(gbps(size, m.fast.seconds)), 'plain copy', f(m.copy.seconds, 3), f(gbps(size, m.copy.seconds)), m.fast.failed ? '-' : ratio(fastRatio), `>= 0.80x: ${yes(fastRatio >= 0.8)}`, mib(m.fast.maxRSS), '-']);
  }
  rmSync(src, { recursive: true, force: true });
  return { rows };
}

export function convertSection(python) {
  const dir = join(WORK, 'convert');
  // A run killed part way leaves its files: start clean.
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    const synthetic = syntheticSection(dir);
    const vit = python ? vitSection(dir) : undefined;
    const sm = python ? savedModelSection(dir) : undefined;
    return [
      '## Conversions as users type them (CLI, verification on)',
      '',
      `Each row is \`node bin/modelbridge.cjs convert IN OUT\` with its defaults (read back, every tensor compared chunk by chunk, outputs compared on a generated input), in a fresh process timed by GNU time (wall seconds, Node's start included); median of ${ROUNDS} runs, the baselines interleaved (no untimed run: the inputs are in the page cache). "cp + cmp" copies the input with an fsync'd 8 MiB-buffer copy and compares source and copy with \`cmp\` (\`diff -rq\` for a directory). The runnable bundle is 16 \`Linear(4096, 4096, bias=False)\` layers with a module spec; ViT-B/16 is torchvision's, random weights, exported by \`torch.onnx.export(dynamo=False)\` at opset 17; the SavedModel is bench/py/make_savedmodel.py's (4 dense 8192x8192 layers, written by TensorFlow).`,
      '',
      table(HEADERS, [...synthetic.rows, ...(vit?.rows ?? []), ...(sm?.rows ?? [])]),
      '',
      ...(vit
        ? ['ViT-B/16 against Python (`onnx.load` + `onnx.save`, import excluded, output fsync\'d):', '', table(['target', 'modelbridge CLI s', 'Python s', 'cp + cmp s', 'Python peak RSS'], vit.peerRows), '']
        : ['(No Python peers: the ViT-B/16 and SavedModel rows need .peers/venv.)', '']),
      `Runs (s): ${synthetic.runs.map((m) => `${m.mb.runs ? m.mb.runs.map((r) => f(r.seconds, 2)).join(', ') : 'fails'} vs ${m.base.runs.map((r) => f(r.seconds, 2)).join(', ')}`).join('; ')}.`,
      '',
    ].join('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// `node bench/convert.mjs` runs this section alone and prints it (npm run bench runs it in place).
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  mkdirSync(WORK, { recursive: true });
  const section = convertSection(existsSync(PYTHON));
  console.log(section);
  console.log(table(['target', 'measured', 'goal', 'met'], (await import('./harness.mjs')).targets.map((t) => [t.what, t.measured, t.goal, yes(t.met)])));
}
