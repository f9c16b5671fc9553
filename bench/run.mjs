// modelbridge benchmarks: `npm run bench` (builds dist/, then runs this with --expose-gc).
// Measures, in one run, modelbridge and the peer or physical limit it is compared with, and writes
// bench/RESULTS.md: absolute numbers, ratios, and whether each target is met.
//
// Some sections only:  BENCH_SECTIONS=formats,models npm run bench   (or: npm run bench -- formats models)
//   runs just those sections and replaces them in bench/RESULTS.md in place (each section sits
//   between HTML comment markers; the Targets table keeps the other sections' rows, and each
//   section's first line says when, at which commit and under what load it was measured).
//   --print prints the report instead of writing the file (BENCH_ONLY=a,b, the older name, prints too).
//   Each section's wall time is printed as it ends and written into the Duration line and the section.
// The sections (names as BENCH_SECTIONS takes them; the whole run is meant to stay under ~25 minutes
// on the 2-core machine: RESULTS.md's Duration line gives each section's share):
//   safetensors: a 1 GiB synthetic bundle: convert vs a plain copy, read vs a plain read,
//      the Python safetensors peer, inspect and CLI start-up.
//   runtime: per call, the OR gate (batch 1), an MLP 784-512-512-10 (batch 64) and a small CNN
//      (batch 16, 3x32x32), modelbridge vs onnxruntime-node (and tfjs-backend-cpu), checked to agree.
//   models (bench/runtime.mjs): ResNet-18, BERT-tiny, ViT-tiny, the MLP and the CNN against
//      onnxruntime-node with 1 and 2 threads.
//   pytorch (bench/pytorch.mjs): a 1 GiB torch.save checkpoint -> safetensors, vs a plain copy and
//      vs torch.load + safetensors.torch.save_file.
//   onnx (bench/onnx.mjs): a 2 GiB model with external data read and written back, vs a plain
//      copy and vs onnx.load + onnx.save.
//   tensorflow (bench/tensorflow.mjs): a 1 GiB SavedModel -> TF.js (vs a plain copy, and
//      tensorflowjs_converter where installed), -> safetensors (vs a plain copy) and read + written
//      back as a SavedModel (vs a plain copy and vs tf.saved_model.load + tf.saved_model.save).
//   convert (bench/convert.mjs): the CLI as users type it, verification on, against cp + cmp; the
//      ViT-B/16 ONNX against onnx.load + onnx.save; SavedModel --no-verify against a plain copy.
//   formats (bench/formats.mjs): ViT-B/16 .pt2 -> ONNX vs torch.export.load + torch.onnx.export;
//      a 256 MiB .keras -> safetensors vs keras.saving.load_model + save_file; the same model's
//      SavedModel -> .tflite vs TFLiteConverter; the .pt2 -> ONNX conversion in headless Chromium
//      vs the Node CLI.
//   serve (bench/serve.mjs): modelbridge serve vs Flask + TensorFlow and fastify + onnxruntime-node
//      on the OR gate, requests/s and p50/p99 under the same autocannon load.
// Models that take long to make (exported by torch, Keras) are cached in bench/.cache/ (git-ignored).
// Work files live in bench/.work/ and are deleted at the end of each section.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { inspectModel, loadModel, lowerModule, Runner, saveModel, Tensor, trainOrGate } from '../dist/index.js';
import { GB, GiB, machine, median, MiB, perCall, perCallAsync, runPython, runWorker, timeIt, wallTimes } from './util.mjs';
import { f, log, marked, mib, noted, py, PYTHON, ratio, ratios, replaceSections, RESULTS, ROOT, RSS_SLACK, table, tableRows, target, targets, WORK, yes } from './harness.mjs';
import { pytorchSection } from './pytorch.mjs';
import { onnxSection } from './onnx.mjs';
import { tensorflowSections } from './tensorflow.mjs';
import { convertSection } from './convert.mjs';
import { formatsSection } from './formats.mjs';
import { runtimeModelsSection } from './runtime.mjs';
import { serveSection } from './serve.mjs';

const WORKER = join(ROOT, 'bench', 'safetensors-worker.mjs');
const CLI = join(ROOT, 'bin', 'modelbridge.cjs');
// 8 rather than 3: on this VM an fsync'd 1 GiB write takes 0.46 s to 3 s between identical runs
// (the same plain copy, back to back), and a median of 3 let that noise flip the convert/copy ratio.
// An even number, so ABBA gives both sides the same share of first and second places.
const ROUNDS = 8;
const PY_ROUNDS = 3;

// ---------------------------------------------------------------------------------------------
// 1. safetensors

/**
 * One measurement in a fresh worker process (so each has its own peak RSS). Removes dst first and
 * syncs, so a run never pays for the previous run's deferred writes or discards.
 */
function worker(mode, src, dst) {
  if (dst) rmSync(dst, { force: true });
  spawnSync('sync');
  return runWorker(WORKER, dst ? [mode, src, dst] : [mode, src]);
}

/** Summary of repeated worker runs: median and best seconds, throughput, worst peak RSS. */
function summarize(runs) {
  const seconds = median(runs.map((r) => r.seconds));
  const best = Math.min(...runs.map((r) => r.seconds));
  return { seconds, best, gbps: runs[0].bytes / GB / seconds, bestGbps: runs[0].bytes / GB / best, maxRSS: Math.max(...runs.map((r) => r.maxRSS)), runs };
}

/**
 * Convert vs copy: modelbridge reads the bundle (lazily, file ranges) and writes it back as
 * safetensors through its atomic, fsync'd writer; the baseline moves the same bytes with plain
 * read/write and an fsync, which is what any converter must at least do. Rounds alternate in
 * ABBA order so disk drift hits both alike. The converted file must have the source's checksum.
 */
function convertVsCopy(src, sourceSum) {
  const copies = [];
  const converts = [];
  const out = join(WORK, 'out.safetensors');
  // Untimed warm-up: the first 1 GiB write after `make` was always ~6x slower (2.8 s) here.
  worker('copy', src, out);
  worker('convert', src, out);
  for (let i = 0; i < ROUNDS; i++) {
    const pair = [() => copies.push(worker('copy', src, out)), () => converts.push(worker('convert', src, out))];
    if (i % 2) pair.reverse();
    for (const run of pair) run();
  }
  const check = worker('read', out);
  if (check.sum !== sourceSum) throw new Error(`converted file's data checksum ${check.sum} differs from the source's ${sourceSum}`);
  rmSync(out, { force: true });
  return { copy: summarize(copies), convert: summarize(converts) };
}

/**
 * Read vs plain read: modelbridge loads the bundle and streams every tensor's bytes; the baseline
 * reads the file with 8 MiB readSync calls. Both sum every data byte (as 32-bit words) so neither
 * can skip work, and the sums must agree.
 */
function readVsPlain(src) {
  const plains = [];
  const reads = [];
  for (let i = 0; i < ROUNDS; i++) {
    const pair = [() => plains.push(worker('read-plain', src)), () => reads.push(worker('read', src))];
    if (i % 2) pair.reverse();
    for (const run of pair) run();
  }
  const sums = new Set([...plains, ...reads].map((r) => r.sum));
  if (sums.size !== 1) throw new Error(`read checksums disagree: ${[...sums].join(', ')}`);
  return { plain: summarize(plains), read: summarize(reads), sum: plains[0].sum };
}

const PY_LOAD_SAVE = `
import json, os, resource, sys, time
import torch
from safetensors.torch import load_file, save_file
src, dst = sys.argv[1], sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t0 = time.perf_counter()
tensors = load_file(src)
t1 = time.perf_counter()
save_file(tensors, dst)
fd = os.open(dst, os.O_RDONLY)
os.fsync(fd)  # our writer fsyncs; make the peer's output just as durable
os.close(fd)
t2 = time.perf_counter()
print(json.dumps({"load": t1 - t0, "save": t2 - t1, "seconds": t2 - t0, "baseRSS": base,
                  "maxRSS": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
`;

/**
 * The Python reference implementation on the same file: safetensors.torch.load_file + save_file
 * (+ fsync), timed inside a fresh interpreter (torch import excluded from the time, included in
 * the RSS, which is also reported as measured right after the import).
 */
function pythonPeer(src) {
  const out = join(WORK, 'py-out.safetensors');
  const runs = [];
  for (let i = 0; i < PY_ROUNDS; i++) {
    rmSync(out, { force: true });
    spawnSync('sync');
    runs.push(runPython(PYTHON, PY_LOAD_SAVE, [src, out]));
  }
  rmSync(out, { force: true });
  const bytes = statSync(src).size;
  return { ...summarize(runs.map((r) => ({ ...r, bytes }))), load: median(runs.map((r) => r.load)), save: median(runs.map((r) => r.save)), baseRSS: Math.max(...runs.map((r) => r.baseRSS)) };
}

/**
 * Inspect reads headers only, so it must not depend on the model size: in-process time of
 * loadModel + inspectModel, the CLI's wall time (a user's view: process start included), the
 * CLI's bare start-up (--version), and Node's own start (`node -e 0`, the floor of any CLI written
 * for it: on a slow machine it alone can take most of the inspect budget).
 */
function inspectTimes(src) {
  const inProcess = timeIt(() => inspectModel(loadModel(src), src), 20);
  const [cliInspect, cliVersion, node] = wallTimes(
    [
      [process.execPath, [CLI, 'inspect', src, '--json']],
      [process.execPath, [CLI, '--version']],
      [process.execPath, ['-e', '0']],
    ],
    15,
  );
  const headersOnly = worker('inspect', src);
  return { inProcess, cliInspect, cliVersion, node, headersOnlyRSS: headersOnly.maxRSS };
}

/** Makes the bundle, runs every safetensors measurement on it, deletes it. */
function measureSafetensors(python) {
  const src = join(WORK, 'bundle.safetensors');
  log('making the 1 GiB bundle');
  worker('make', src, String(GiB));
  const size = statSync(src).size;
  log('warming the page cache');
  worker('read-plain', src);
  log('read vs plain read');
  const read = readVsPlain(src);
  log('convert vs copy');
  const conv = convertVsCopy(src, read.sum);
  log('python peer');
  const py = python ? pythonPeer(src) : undefined;
  log('inspect');
  const insp = inspectTimes(src);
  rmSync(src, { force: true });
  return { size, read, conv, py, insp };
}

function throughputTable({ read, conv }) {
  const convRatio = conv.convert.gbps / conv.copy.gbps;
  target('safetensors 1 GiB convert throughput vs plain copy', ratio(convRatio), '>= 0.80x', convRatio >= 0.8);
  const runs = (s) => s.runs.map((r) => f(r.seconds, 3)).join(', ');
  return [
    `Median of ${ROUNDS} runs (modelbridge and baseline interleaved ABBA, after one untimed round of each), ` +
      'each in a fresh process after `sync`, page cache warm. GB = 10^9 bytes. Writers fsync ' +
      "(modelbridge's atomic writer does; the plain copy and the Python peer are made to as well). " +
      "Both read rows sum every data byte as 32-bit words, and the sums agree; the converted file's " +
      "data checksum equals the source's.",
    '',
    table(
      ['operation', 'modelbridge s', 'modelbridge GB/s', 'baseline', 'baseline s', 'baseline GB/s', 'ratio (modelbridge / baseline throughput)', 'ratio of best runs', 'target'],
      [
        ['convert safetensors -> safetensors', f(conv.convert.seconds, 3), f(conv.convert.gbps), 'plain copy (read+write+fsync, 8 MiB buffer)', f(conv.copy.seconds, 3), f(conv.copy.gbps), ratio(convRatio), ratio(conv.convert.bestGbps / conv.copy.bestGbps), `>= 0.80x: ${yes(convRatio >= 0.8)}`],
        ['read, every tensor byte touched', f(read.read.seconds, 3), f(read.read.gbps), 'plain sequential read (same touching)', f(read.plain.seconds, 3), f(read.plain.gbps), ratio(read.read.gbps / read.plain.gbps), ratio(read.read.bestGbps / read.plain.bestGbps), '-'],
      ],
    ),
    '',
    `Runs (s): convert ${runs(conv.convert)}; copy ${runs(conv.copy)}; read ${runs(read.read)}; plain read ${runs(read.plain)}.`,
    '',
  ];
}

function rssTable({ size, read, conv, insp }) {
  const rows = [
    ['modelbridge convert', conv.convert.maxRSS],
    ['plain copy', conv.copy.maxRSS],
    ['modelbridge read', read.read.maxRSS],
    ['plain read', read.plain.maxRSS],
  ].map(([what, rss]) => {
    const met = rss <= size + RSS_SLACK;
    if (what.startsWith('modelbridge')) target(`safetensors: ${what} peak RSS`, mib(rss), `<= model + 64 MiB = ${mib(size + RSS_SLACK)}`, met);
    return [what, mib(rss), mib(rss - insp.headersOnlyRSS), f(rss / size, 3), yes(met)];
  });
  return [
    `Peak RSS (worst of ${ROUNDS} runs; model file ${mib(size)}; "above baseline" subtracts a modelbridge process ` +
      `that only reads the headers, ${mib(insp.headersOnlyRSS)}):`,
    '',
    table(['process', 'peak RSS', 'above baseline', 'RSS / model size', '<= model + 64 MiB'], rows),
    '',
  ];
}

function pythonTable({ conv, py }) {
  if (!py) return [`Python peer: skipped, ${PYTHON} does not exist (run scripts/peers-env.sh to create the venv).`, ''];
  return [
    'Python peer on the same file (`safetensors.torch.load_file` + `save_file` + fsync, fresh interpreter per run, ' +
      `median of ${PY_ROUNDS}; peak RSS from GNU time, "RSS after import" is the interpreter\'s own \`ru_maxrss\` before loading):`,
    '',
    table(
      ['', 'seconds', 'GB/s', 'peak RSS', 'RSS after `import torch`'],
      [
        ['Python load_file + save_file', `${f(py.seconds, 3)} (load ${f(py.load, 3)}, save ${f(py.save, 3)})`, f(py.gbps), mib(py.maxRSS), mib(py.baseRSS)],
        ['modelbridge convert', f(conv.convert.seconds, 3), f(conv.convert.gbps), mib(conv.convert.maxRSS), '-'],
        ['ratio modelbridge / Python', `throughput ${ratio(conv.convert.gbps / py.gbps)}`, '', `RSS ${f(conv.convert.maxRSS / py.maxRSS, 3)}x`, ''],
      ],
    ),
    '',
  ];
}

/** The brief's inspect target: the CLI's `inspect` of a 1 GiB model at most this much above `node -e 0`. */
const INSPECT_ABOVE_NODE = 0.015;

function inspectTable({ insp }) {
  const above = insp.cliInspect - insp.node;
  target('CLI inspect --json of the 1 GiB file, above `node -e 0`', `+${f(above * 1e3, 1)} ms (${f(insp.cliInspect * 1e3, 1)} vs ${f(insp.node * 1e3, 1)})`, '<= +15 ms', above <= INSPECT_ABOVE_NODE);
  target('CLI cold start --version (median of 15)', `${f(insp.cliVersion * 1e3, 1)} ms`, '< 150 ms', insp.cliVersion < 0.15);
  return [
    'Inspect (headers only, so independent of model size):',
    '',
    table(
      ['measurement', 'ms', 'target'],
      [
        ['in-process loadModel + inspectModel (median of 20)', f(insp.inProcess * 1e3, 2), '-'],
        ['CLI `node bin/modelbridge.cjs inspect <file> --json`, wall (median of 15)', f(insp.cliInspect * 1e3, 1), `<= node -e 0 + 15: ${yes(above <= INSPECT_ABOVE_NODE)}`],
        ['CLI cold start `node bin/modelbridge.cjs --version`, wall (median of 15)', f(insp.cliVersion * 1e3, 1), `< 150: ${yes(insp.cliVersion < 0.15)}`],
        ['Node alone, `node -e 0`, wall (median of 15): the floor of both', f(insp.node * 1e3, 1), '-'],
      ],
    ),
    '',
    `Above Node's own start: inspect ${f((insp.cliInspect - insp.node) * 1e3, 1)} ms, --version ${f((insp.cliVersion - insp.node) * 1e3, 1)} ms.`,
    '',
  ];
}

function safetensorsSection(python) {
  const m = measureSafetensors(python);
  return [
    `## 1. safetensors: ${mib(m.size)} synthetic bundle (16 float32 tensors of 64 MiB)`,
    '',
    ...throughputTable(m),
    ...rssTable(m),
    ...pythonTable(m),
    ...inspectTable(m),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// 2. Runtime

/** Deterministic uniform numbers in [lo, hi) (SplitMix32), so every run uses the same weights. */
function seeded(seed) {
  let state = seed >>> 0;
  return (lo, hi) => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return lo + (hi - lo) * (z / 2 ** 32);
  };
}

function randomTensor(random, shape, bound) {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.from('float32', shape, Array.from({ length: n }, () => random(-bound, bound)));
}

const MLP_SPEC = {
  type: 'Sequential',
  modules: [
    { type: 'Linear', in_features: 784, out_features: 512, bias: true },
    { type: 'ReLU' },
    { type: 'Linear', in_features: 512, out_features: 512, bias: true },
    { type: 'ReLU' },
    { type: 'Linear', in_features: 512, out_features: 10, bias: true },
  ],
};

/** The MLP with torch.nn.Linear-style init U(-1/sqrt(in), 1/sqrt(in)) from a fixed seed. */
function mlpModel() {
  const random = seeded(1234);
  const weights = new Map();
  MLP_SPEC.modules.forEach((m, i) => {
    if (m.type !== 'Linear') return;
    const bound = 1 / Math.sqrt(m.in_features);
    weights.set(`${i}.weight`, randomTensor(random, [m.out_features, m.in_features], bound));
    weights.set(`${i}.bias`, randomTensor(random, [m.out_features], bound));
  });
  const signature = { inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 784] }], outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 10] }] };
  const lowered = lowerModule(MLP_SPEC, weights, 'mlp', signature);
  return { format: 'memory', weights, graph: lowered.graph, module: MLP_SPEC, signatures: [lowered.signature], metadata: {} };
}

/** A Sequential of Linear + optional activation, as [{weight, bias, act}] for the peers to rebuild. */
function denseLayers(spec) {
  const layers = [];
  spec.modules.forEach((m, i) => {
    if (m.type === 'Linear') layers.push({ weight: `${i}.weight`, bias: `${i}.bias`, act: null });
    else if (m.type === 'Sigmoid' || m.type === 'ReLU') layers.at(-1).act = m.type === 'ReLU' ? 'Relu' : 'Sigmoid';
    else throw new Error(`bench peers cannot build ${m.type}`);
  });
  return layers;
}

const PY_ONNX = `
import json, sys
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file
src, dst, layers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
w = load_file(src)
nodes, inits, cur = [], [], "x"
for i, l in enumerate(layers):
    inits += [numpy_helper.from_array(w[l["weight"]], l["weight"]), numpy_helper.from_array(w[l["bias"]], l["bias"])]
    nodes.append(helper.make_node("Gemm", [cur, l["weight"], l["bias"]], [f"gemm{i}"], transB=1))
    cur = f"gemm{i}"
    if l["act"]:
        nodes.append(helper.make_node(l["act"], [cur], [f"act{i}"]))
        cur = f"act{i}"
nodes[-1].output[0] = "y"
n_in, n_out = w[layers[0]["weight"]].shape[1], w[layers[-1]["weight"]].shape[0]
graph = helper.make_graph(nodes, "bench", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", int(n_in)])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", int(n_out)])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
onnx.checker.check_model(model)
onnx.save(model, dst)
print(json.dumps({"nodes": [n.op_type for n in nodes]}))
`;

/**
 * The ONNX file onnxruntime runs, independent of modelbridge's own ONNX writer: the weights go out
 * through saveModel (.safetensors) and Python's onnx package builds Gemm(transB=1) + activation
 * nodes around those exact float32 arrays.
 */
function exportOnnx(model, name) {
  const weightsFile = join(WORK, `${name}.safetensors`);
  const onnxFile = join(WORK, `${name}.onnx`);
  saveModel(model, weightsFile, { force: true });
  runPython(PYTHON, PY_ONNX, [weightsFile, onnxFile, JSON.stringify(denseLayers(model.module))]);
  return onnxFile;
}

/** Each engine is {name, run(): Float32Array} (or async), built once; run() is what gets timed. */
function modelbridgeEngine(model, x) {
  const runner = new Runner(model);
  return { name: 'modelbridge `Runner.run`', run: () => runner.run({ x }).y.toFloat32() };
}

async function ortEngine(ort, onnxFile, x, threads) {
  const options = threads ? { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential' } : {};
  const session = await ort.InferenceSession.create(onnxFile, { graphOptimizationLevel: 'all', ...options });
  const input = new ort.Tensor('float32', x.toFloat32(), [...x.shape]);
  const label = threads ? `${threads} thread` : 'default threads';
  return { name: `onnxruntime-node ${peerVersion('onnxruntime-node')} (${label})`, async: true, run: async () => (await session.run({ x: input })).y.data };
}

function peerVersion(name) {
  return createRequire(import.meta.url)(`${name}/package.json`).version;
}

function tfjsEngine(tf, model, x) {
  const weights = denseLayers(model.module).map((l) => ({
    w: tf.tensor(model.weights.get(l.weight).toFloat32(), model.weights.get(l.weight).shape),
    b: tf.tensor(model.weights.get(l.bias).toFloat32(), model.weights.get(l.bias).shape),
    act: l.act,
  }));
  const input = tf.tensor(x.toFloat32(), x.shape);
  const forward = () =>
    weights.reduce((h, l) => {
      const z = tf.add(tf.matMul(h, l.w, false, true), l.b);
      return l.act === 'Relu' ? tf.relu(z) : l.act === 'Sigmoid' ? tf.sigmoid(z) : z;
    }, input);
  return tfjsEngineOf(tf, forward);
}

/** A tfjs-backend-cpu engine running `forward` (tensors freed after each call). */
function tfjsEngineOf(tf, forward) {
  return {
    name: `tfjs-backend-cpu ${tf.version_core}`,
    run: () => {
      const y = tf.tidy(forward);
      const data = y.dataSync();
      y.dispose();
      return data;
    },
  };
}

function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Runs every engine once and checks its output against modelbridge's (max abs diff < 1e-4), then
 * times each per call. A wrong answer fails the bench instead of being reported as fast.
 */
async function measureEngines(engines, seconds) {
  const reference = engines[0].run();
  const results = [];
  for (const engine of engines) {
    const output = engine.async ? await engine.run() : engine.run();
    const diff = maxAbsDiff(output, reference);
    if (!(diff < 1e-4)) throw new Error(`${engine.name} disagrees with modelbridge: max abs diff ${diff}`);
    globalThis.gc?.();
    const perCallSeconds = engine.async ? await perCallAsync(engine.run, seconds) : perCall(engine.run, seconds);
    results.push({ name: engine.name, seconds: perCallSeconds, diff });
    log(`  ${engine.name}: ${f(perCallSeconds * 1e6, 2)} us/call, max abs diff ${diff.toExponential(2)}`);
  }
  return results;
}

async function loadPeers(python) {
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-cpu');
  await tf.setBackend('cpu');
  await tf.ready();
  const ort = python ? (await import('onnxruntime-node')).default : undefined;
  return { tf, ort };
}

/**
 * OR gate, batch 1: the per-call overhead of each runtime (the math is 6 multiply-adds), so this
 * compares dispatch costs: modelbridge's planned session vs onnxruntime's native session through
 * N-API vs tfjs's op-by-op eager execution.
 */
async function orGate(peers) {
  const { model } = trainOrGate();
  const x = Tensor.from('float32', [1, 2], [1, 1]);
  const engines = [modelbridgeEngine(model, x)];
  if (peers.ort) engines.push(await ortEngine(peers.ort, exportOnnx(model, 'or-gate'), x, 1));
  engines.push(tfjsEngine(peers.tf, model, x));
  return measureEngines(engines, 1);
}

/**
 * MLP 784-512-512-10, batch 64: throughput of the float32 matmul path (85.6 MFLOP per call), in
 * GFLOP/s against tfjs-cpu (pure JS kernels) and onnxruntime (native MLAS, one thread and default).
 */
async function mlp(peers) {
  const model = mlpModel();
  const x = randomTensor(seeded(99), [64, 784], 1);
  const engines = [modelbridgeEngine(model, x)];
  if (peers.ort) {
    const onnxFile = exportOnnx(model, 'mlp');
    engines.push(await ortEngine(peers.ort, onnxFile, x, 1));
    engines.push(await ortEngine(peers.ort, onnxFile, x, 0));
  }
  engines.push(tfjsEngine(peers.tf, model, x));
  return measureEngines(engines, 2);
}

/**
 * A small CNN, batch 16 at 3x32x32: Conv 3x3 (3->32) + Relu, MaxPool 2x2, Conv 3x3 (32->64) + Relu,
 * GlobalAveragePool, Gemm 64->10 (bench/py/make_cnn.py, onnx.checker-clean). Both runtimes load the
 * same .onnx file; tfjs-cpu (NHWC) gets the same weights transposed to its layout.
 */
async function cnn(peers) {
  const file = join(WORK, 'cnn.onnx');
  py('make_cnn.py', [file]);
  const model = loadModel(file);
  const x = randomTensor(seeded(5), [CNN_BATCH, 3, 32, 32], 1);
  const engines = [modelbridgeEngine(model, x)];
  engines.push(await ortEngine(peers.ort, file, x, 1));
  engines.push(await ortEngine(peers.ort, file, x, 0));
  engines.push(tfjsCnnEngine(peers.tf, model, x));
  return measureEngines(engines, 2);
}

const CNN_BATCH = 16;
const CNN_FLOPS = 2 * CNN_BATCH * (32 * 32 * 32 * 27 + 64 * 16 * 16 * 288 + 64 * 10);

function tfjsCnnEngine(tf, model, x) {
  const tensor = (name) => tf.tensor(model.weights.get(name).toFloat32(), model.weights.get(name).shape);
  // ONNX conv weights [out, in, kh, kw] -> tfjs filters [kh, kw, in, out]; input NCHW -> NHWC, once.
  const filter = (name) => tf.transpose(tensor(name), [2, 3, 1, 0]);
  const [c1, b1, c2, b2, fw, fb] = [filter('c1.w'), tensor('c1.b'), filter('c2.w'), tensor('c2.b'), tensor('fc.w'), tensor('fc.b')];
  const input = tf.transpose(tf.tensor(x.toFloat32(), x.shape), [0, 2, 3, 1]);
  const forward = () => {
    let h = tf.relu(tf.add(tf.conv2d(input, c1, 1, 'same'), b1));
    h = tf.maxPool(h, 2, 2, 'valid');
    h = tf.relu(tf.add(tf.conv2d(h, c2, 1, 'same'), b2));
    return tf.add(tf.matMul(tf.mean(h, [1, 2]), fw, false, true), fb);
  };
  return tfjsEngineOf(tf, forward);
}

function cnnTable(cn) {
  const [mb] = cn;
  const ort1 = cn.find((r) => r.name.includes('(1 thread)'));
  noted('CNN batch 16, modelbridge speed vs onnxruntime-node (1 thread)', ratio(ort1.seconds / mb.seconds), 'no target; < 1 means slower');
  return [
    `### Small CNN (Conv 3x3 3->32, Relu, MaxPool 2, Conv 3x3 32->64, Relu, GlobalAveragePool, Gemm 64->10), batch ${CNN_BATCH} at 3x32x32: ${f(CNN_FLOPS / 1e6, 1)} MFLOP per call`,
    '',
    table(
      ['engine', 'ms/call', 'GFLOP/s', 'modelbridge speed-up (engine time / modelbridge time)', 'max abs diff vs modelbridge'],
      cn.map((r) => [r.name, f(r.seconds * 1e3, 3), f(CNN_FLOPS / r.seconds / 1e9, 2), ratio(r.seconds / mb.seconds), r.diff.toExponential(2)]),
    ),
    '',
    'No target is set for the CNN; the ratio is reported (below 1x: modelbridge is slower).',
    '',
  ];
}

const MLP_FLOPS = 2 * 64 * (784 * 512 + 512 * 512 + 512 * 10);

function orGateTable(or) {
  const [mb] = or;
  target('OR gate, modelbridge per call (batch 1)', `${f(mb.seconds * 1e6, 2)} us`, '<= 4 us', mb.seconds <= 4e-6);
  return [
    '### OR gate (trainOrGate(), Gemm+Sigmoid+Gemm+Sigmoid), batch 1',
    '',
    table(
      ['engine', 'us/call', 'modelbridge speed-up (engine time / modelbridge time)', 'max abs diff vs modelbridge'],
      or.map((r) => [r.name, f(r.seconds * 1e6, 2), ratio(r.seconds / mb.seconds), r.diff.toExponential(2)]),
    ),
    '',
    `Target: modelbridge <= 4 us/call: ${yes(mb.seconds <= 4e-6)}.`,
    '',
  ];
}

function mlpTable(mm) {
  const [mb] = mm;
  const speedup = mm.find((r) => r.name.startsWith('tfjs')).seconds / mb.seconds;
  target('MLP batch 64, modelbridge speed vs tfjs-cpu', ratio(speedup), '>= 20x', speedup >= 20);
  const ort1 = mm.find((r) => r.name.includes('(1 thread)'));
  if (ort1) noted('MLP batch 64, modelbridge speed vs onnxruntime-node (1 thread)', ratio(ort1.seconds / mb.seconds), 'no target; < 1 means slower');
  return [
    `### MLP 784-512-512-10 (Linear/ReLU/Linear/ReLU/Linear, seeded weights), batch 64: ${f(MLP_FLOPS / 1e6, 1)} MFLOP per call`,
    '',
    table(
      ['engine', 'ms/call', 'GFLOP/s', 'modelbridge speed-up (engine time / modelbridge time)', 'max abs diff vs modelbridge'],
      mm.map((r) => [r.name, f(r.seconds * 1e3, 3), f(MLP_FLOPS / r.seconds / 1e9, 2), ratio(r.seconds / mb.seconds), r.diff.toExponential(2)]),
    ),
    '',
    `Target: modelbridge >= 20x tfjs-cpu: ${yes(speedup >= 20)}.`,
    '',
  ];
}

async function runtimeSection(python) {
  const peers = await loadPeers(python);
  log('OR gate');
  const or = await orGate(peers);
  log('MLP');
  const mm = await mlp(peers);
  let cn = [];
  if (peers.ort) {
    log('CNN');
    cn = await cnn(peers);
  }
  const tables = [...orGateTable(or), ...mlpTable(mm), ...(cn.length ? cnnTable(cn) : [])];
  // measureEngines throws on a disagreement, so reaching here means this target is met.
  target('all engines agree with modelbridge', `max abs diff ${Math.max(...[...or, ...mm, ...cn].map((r) => r.diff)).toExponential(2)}`, '< 1e-4', true);
  return [
    '## 2. Runtime, per call (same weights, same inputs)',
    '',
    'Each engine is built once (session/graph planned, weights loaded); a call runs the model and reads ' +
      'the output into a Float32Array. Timed in batches of ~10 ms after warm-up, total time / calls. ' +
      "Outputs are compared with modelbridge's before timing (the bench fails if any differs by >= 1e-4). " +
      'The OR gate and MLP ONNX files are built from the weights modelbridge saved (Gemm transB=1 + activation, opset 17); ' +
      'the CNN is an ONNX file written by the onnx package, which modelbridge and onnxruntime both load. ' +
      'onnxruntime runs with 1 intra-op thread (modelbridge and tfjs-cpu use one core) and, for the MLP and CNN, also with its default.',
    '',
    ...tables,
    ...(python ? [] : [`onnxruntime rows and the CNN skipped: ${PYTHON} does not exist, and the ONNX files are built with Python's onnx package.`, '']),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------

function gitState() {
  const git = (...args) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? '';
  const head = git('rev-parse', '--short', 'HEAD') || 'unknown';
  const dirty = (dir) => git('status', '--porcelain', '--', dir) !== '';
  const changed = ['src', 'bench'].filter(dirty);
  return `${head}${changed.length ? ` + uncommitted changes in ${changed.map((d) => `${d}/`).join(' and ')} (measured as they are)` : ''}`;
}

const SECTIONS = [
  ['safetensors', (python) => safetensorsSection(python)],
  ['runtime', (python) => runtimeSection(python)],
  ['models', (python) => runtimeModelsSection(python)],
  ['pytorch', (python) => pytorchSection(python)],
  ['onnx', (python) => onnxSection(python)],
  ['tensorflow', (python) => tensorflowSections(python)],
  ['convert', (python) => convertSection(python)],
  ['formats', (python) => formatsSection(python)],
  ['serve', (python) => serveSection(python)],
];

/** The sections asked for (BENCH_SECTIONS, else the arguments, else BENCH_ONLY), or undefined for all. */
function chosenSections() {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const list = process.env.BENCH_SECTIONS ?? (args.length ? args.join(',') : process.env.BENCH_ONLY);
  if (!list) return undefined;
  const names = list.split(',').map((n) => n.trim()).filter(Boolean);
  const known = SECTIONS.map(([name]) => name);
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length) {
    console.error(`bench: unknown section ${unknown.map((n) => JSON.stringify(n)).join(', ')} (the sections: ${known.join(', ')})`);
    process.exit(2);
  }
  return names;
}

const TARGETS_OPEN = '<!-- bench targets -->';
const TARGETS_CLOSE = '<!-- end of bench targets -->';

/**
 * The Targets part of the report: every target and noted ratio with the section that measured it.
 * `earlier` (a partial run) is the RESULTS.md being updated: its rows from sections not re-run stay.
 */
function targetsBlock(ran, earlier) {
  const block = earlier === undefined ? undefined : earlier.slice(earlier.indexOf(TARGETS_OPEN), earlier.indexOf(TARGETS_CLOSE));
  // a file from before the markers: its summary runs from "## Targets" to the first section
  const old = earlier === undefined ? '' : earlier.includes(TARGETS_OPEN) ? block : earlier.slice(earlier.indexOf('## Targets'), earlier.indexOf('\n## ', earlier.indexOf('## Targets') + 1));
  const [oldTargets = '', oldRatios = ''] = old.split('Other ratios measured');
  // rows of sections not run stay; so do older rows without a section (a file from before the
  // column) unless this run measured a target of the same name
  const fresh = new Set([...targets, ...ratios].map((t) => t.what));
  const keep = (rows) => rows.filter(([section, what]) => !ran.includes(section) && !(section === '-' && fresh.has(what)));
  const order = (rows) => rows.sort((a, b) => SECTIONS.findIndex(([n]) => n === a[0]) - SECTIONS.findIndex(([n]) => n === b[0]));
  const targetRows = order([...keep(tableRows(oldTargets)), ...targets.map((t) => [t.section, t.what, t.measured, t.goal, yes(t.met)])]);
  const ratioRows = order([...keep(tableRows(oldRatios)), ...ratios.map((r) => [r.section, r.what, r.measured, r.note || '-'])]);
  const missed = targetRows.filter((r) => r.at(-1) !== 'yes');
  return [
    TARGETS_OPEN,
    '## Targets',
    '',
    table(['section', 'target', 'measured', 'goal', 'met'], targetRows),
    '',
    missed.length ? `Missed: ${missed.map((r) => r[1]).join('; ')}.` : 'All targets met.',
    '',
    ...(ratioRows.length ? ['Other ratios measured (no target set):', '', table(['section', 'comparison', 'measured', 'note'], ratioRows), ''] : []),
    TARGETS_CLOSE,
  ].join('\n');
}

async function main() {
  const started = Date.now();
  const loadStart = f(loadavg()[0]);
  const python = existsSync(PYTHON);
  const only = chosenSections();
  // BENCH_ONLY (the older name) and --print print the report instead of writing RESULTS.md.
  const print = process.argv.includes('--print') || (process.env.BENCH_ONLY !== undefined && process.env.BENCH_SECTIONS === undefined);
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const loads = [loadavg()[0]];
  const sections = [];
  const walls = [];
  try {
    for (const [name, run] of SECTIONS) {
      if (only && !only.includes(name)) continue;
      const t0 = Date.now();
      const load0 = loadavg()[0];
      const [nTargets, nRatios] = [targets.length, ratios.length];
      log(`section ${name}: started`);
      const text = await run(python);
      for (const t of targets.slice(nTargets)) t.section = name;
      for (const r of ratios.slice(nRatios)) r.section = name;
      const minutes = (Date.now() - t0) / 60000;
      walls.push([name, minutes]);
      log(`section ${name}: ${f(minutes, 1)} min wall`);
      loads.push(loadavg()[0]);
      // Each section says when and how it was measured, so a file updated section by section stays readable.
      const stamp = `Section \`${name}\`: measured ${new Date().toISOString()} at commit ${gitState()}, ${f(minutes, 1)} min wall; load average (1 min) ${f(load0)} at start, ${f(loadavg()[0])} at the end.`;
      const [heading, ...rest] = text.trim().split('\n');
      sections.push({ name, text: [heading, '', stamp, ...rest].join('\n') });
    }
  } finally {
    rmSync(WORK, { recursive: true, force: true });
  }
  const minutes = (Date.now() - started) / 60000;
  log(`section wall times: ${walls.map(([n, m]) => `${n} ${f(m, 1)} min`).join(', ')}; ${f(minutes, 1)} min in all`);
  const busy = Math.max(...loads) > cpus().length / 2;
  const earlier = only && !print && existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : undefined;
  if (earlier !== undefined) {
    // Some sections: each replaces its own part of RESULTS.md in place, the summary keeps the other sections' rows.
    let updated = replaceSections(earlier, sections);
    const summary = targetsBlock(only, earlier);
    if (updated.includes(TARGETS_OPEN)) updated = updated.slice(0, updated.indexOf(TARGETS_OPEN)) + summary + updated.slice(updated.indexOf(TARGETS_CLOSE) + TARGETS_CLOSE.length);
    else if (updated.includes('## Targets')) {
      const a = updated.indexOf('## Targets');
      const b = updated.indexOf('\n## ', a + 1);
      const marker = updated.indexOf('\n<!-- bench section', a);
      const end = [b, marker].filter((i) => i >= 0).reduce((m, i) => Math.min(m, i), updated.length);
      updated = `${updated.slice(0, a)}${summary}\n${updated.slice(end)}`;
    }
    const note = '- Some sections were measured again later on their own (`BENCH_SECTIONS`): each section\'s first line says when, at which commit and under what load.';
    if (!updated.includes(note)) updated = updated.replace('\n- Sizes:', `\n${note}\n- Sizes:`);
    writeFileSync(RESULTS, updated);
    log(`replaced ${only.join(', ')} in ${RESULTS} (${f(minutes, 1)} min)`);
  } else {
    const report = [
      '# modelbridge benchmarks',
      '',
      `- Date: ${new Date().toISOString()}`,
      `- Command: \`npm run bench\` (\`node scripts/build.mjs && node --expose-gc bench/run.mjs\`)${only ? ` with BENCH_SECTIONS=${only.join(',')}` : ''}`,
      `- Machine: ${machine()}`,
      `- Commit: ${gitState()}`,
      `- Duration: ${f(minutes, 1)} min (${walls.map(([n, m]) => `${n} ${f(m, 1)}`).join(', ')}); load average (1 min) ${loadStart} at start, ${loads.length > 2 ? `${loads.slice(1, -1).map((l) => f(l)).join(', ')} after each section, ` : ''}${f(loads.at(-1))} at the end ` +
        '(other work on the machine shows up as noise: compare the individual runs listed below)',
      '- Sizes: MiB = 2^20 bytes, GB = 10^9 bytes; throughput in GB/s; "ratio" is modelbridge\'s throughput (or speed) over the baseline\'s, so > 1 means modelbridge is faster.',
      '- Peak RSS: GNU time\'s `%M` of each fresh process, which is spawned through `/usr/bin/time` (Linux carries a parent\'s RSS high-water mark ' +
        'into a child forked from it, so a worker spawned straight from this bench process would report at least the bench\'s own RSS).',
      '',
      ...(busy
        ? [`**Warning: the machine was busy (load average above ${cpus().length / 2} on ${cpus().length} CPUs); expect these numbers to be slower and noisier than on an idle machine.**`, '']
        : []),
      targetsBlock(only ?? SECTIONS.map(([n]) => n), undefined),
      '',
      ...sections.flatMap(({ name, text }) => [marked(name, text), '']),
    ].join('\n');
    if (print) {
      console.log(report);
      return;
    }
    writeFileSync(RESULTS, report);
    log(`wrote ${RESULTS} in ${f(minutes, 1)} min`);
  }
  for (const t of targets) log(`${t.met ? 'met   ' : 'MISSED'} ${t.what}: ${t.measured} (goal ${t.goal})`);
}

await main();
