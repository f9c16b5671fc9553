// Runtime on real models: modelbridge's runtime against onnxruntime-node, both with 1 and with 2
// intra-op threads, in one process: ResNet-18 (batch 1, 224x224), BERT-tiny (sequence 128),
// ViT-tiny (224x224), the MLP (784-512-512-10, batch 64) and the small CNN (batch 16, 3x32x32).
// The models are ONNX files exported by torch.onnx from random weights (bench/models.py) or
// written by the onnx package (bench/py/make_cnn.py), cached in bench/.cache/.
//
//   part of `npm run bench` (section "models"), or on its own, which replaces this section of
//   bench/RESULTS.md in place:  node scripts/build.mjs && node --expose-gc bench/runtime.mjs
//   (MODELBRIDGE_DIST=/path/to/index.js measures another build of the library; BENCH_MODELS=cnn,mlp
//   some of the models; BENCH_ROUNDS=N another number of rounds; --print prints instead of writing)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { f, log, noted, PYTHON, ratio, replaceSections, RESULTS, ROOT, table, target, yes } from './harness.mjs';
import { machine, median } from './util.mjs';

const { loadModel, Runner, Session, Tensor } = await import(process.env.MODELBRIDGE_DIST ? pathToFileURL(process.env.MODELBRIDGE_DIST).href : '../dist/index.js');

const CACHE = join(ROOT, 'bench', '.cache');
const HEADING = '## Runtime on real models';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** Each engine's share of a round: calls until this much time has passed (at least 2 calls). */
const ROUND_SECONDS = 0.6;
/** The brief's targets: modelbridge at least this fraction of onnxruntime's speed, same threads ... */
const MIN_RATIO = 0.25;
/** ... and 2 threads at least this much faster than 1. */
const MIN_SCALING = 1.6;

function seeded(seed) {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

const floats = (shape, seed) => {
  const next = seeded(seed);
  return { dtype: 'float32', shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => next() * 2 - 1) };
};
const int64s = (shape, value) => ({ dtype: 'int64', shape, data: BigInt64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => BigInt(value(i))) });

const MODELS = [
  { name: 'resnet18', title: 'ResNet-18 (torchvision, batch 1, 3x224x224)', make: 'models', output: 'y', feeds: () => ({ x: floats([1, 3, 224, 224], 1) }), targeted: true },
  {
    name: 'bert-tiny',
    title: 'BERT-tiny (transformers BertModel: hidden 128, 2 layers, 2 heads, intermediate 512; sequence 128)',
    make: 'models',
    output: 'last_hidden_state',
    feeds: () => {
      const next = seeded(2);
      return { input_ids: int64s([1, 128], () => Math.floor(next() * 30522)), attention_mask: int64s([1, 128], () => 1) };
    },
    targeted: true,
  },
  { name: 'vit-tiny', title: 'ViT-tiny (transformers ViTModel: hidden 192, 12 layers, 3 heads, patch 16; 1x3x224x224)', make: 'models', output: 'last_hidden_state', feeds: () => ({ pixel_values: floats([1, 3, 224, 224], 3) }) },
  { name: 'mlp', title: 'MLP 784-512-512-10 (torch.nn Linear + ReLU, batch 64)', make: 'models', output: 'y', feeds: () => ({ x: floats([64, 784], 4) }) },
  { name: 'cnn', title: 'Small CNN (Conv 3x3 3->32, Relu, MaxPool 2, Conv 3x3 32->64, Relu, GlobalAveragePool, Gemm 64->10; batch 16, 3x32x32)', make: 'cnn', output: 'y', feeds: () => ({ x: floats([16, 3, 32, 32], 5) }), targeted: true },
];

/** Writes the models missing from the cache with the peers' Python. */
function ensureModels() {
  mkdirSync(CACHE, { recursive: true });
  const missing = MODELS.filter((m) => m.make === 'models' && !existsSync(join(CACHE, `${m.name}.onnx`))).map((m) => m.name);
  const env = { ...process.env, PYTHONDONTWRITEBYTECODE: '1' };
  if (missing.length) {
    log(`writing ${missing.join(', ')} with bench/models.py`);
    const r = spawnSync(PYTHON, [join(ROOT, 'bench', 'models.py'), CACHE, ...missing], { encoding: 'utf8', env, timeout: 900_000 });
    if (r.status !== 0) throw new Error(`bench/models.py failed:\n${r.stderr}`);
  }
  if (!existsSync(join(CACHE, 'cnn.onnx'))) {
    const r = spawnSync(PYTHON, [join(ROOT, 'bench', 'py', 'make_cnn.py'), join(CACHE, 'cnn.onnx')], { encoding: 'utf8', env, cwd: join(ROOT, 'bench', 'py') });
    if (r.status !== 0) throw new Error(`bench/py/make_cnn.py failed:\n${r.stderr}`);
  }
}

/** Multiply-adds × 2 of the Conv, MatMul and Gemm nodes of one run, counted from the shapes they see. */
function flopsOf(model, feeds) {
  const session = new Session(model.graph, { threads: 1 });
  let flops = 0;
  for (const step of session.steps) {
    const op = step.node.op;
    if (op !== 'Conv' && op !== 'MatMul' && op !== 'Gemm') continue;
    const run = step.run;
    step.run = (args) => {
      const results = run(args);
      const out = results[0].shape.reduce((a, b) => a * b, 1);
      const w = args[1].shape;
      const depth = op === 'Conv' ? w.slice(1).reduce((a, b) => a * b, 1) : op === 'MatMul' ? args[0].shape.at(-1) : args[0].shape[step.node.attributes.transA?.value ? 0 : 1];
      flops += 2 * out * depth;
      return results;
    };
  }
  session.run(feeds);
  return flops;
}

/**
 * What two threads can get from this machine right now, whatever the runtime: a fixed loop of
 * plain arithmetic alone on one thread, then on two threads at once (the median of 3 tries
 * each); 2.0x means two idle cores, 1.0x one core's worth shared (other load, or two vCPUs on
 * one physical core). The 2-thread targets can only be met where this is well above 1.6x.
 */
async function parallelCapacity() {
  const source = `const t0 = performance.now(); let x = 0; for (let i = 0; i < 2e8; i++) x += i * 1e-9; require('node:worker_threads').parentPort.postMessage([performance.now() - t0, x]);`;
  const once = () => new Promise((resolve, reject) => {
    const w = new Worker(source, { eval: true });
    w.once('message', ([ms]) => resolve(ms));
    w.once('error', reject);
  });
  const alone = [];
  const together = [];
  for (let i = 0; i < 3; i++) {
    alone.push(await once());
    const t0 = performance.now();
    await Promise.all([once(), once()]);
    together.push(performance.now() - t0);
  }
  return (2 * median(alone)) / median(together);
}

function peerVersion(name) {
  return createRequire(import.meta.url)(`${name}/package.json`).version;
}

async function enginesFor(ort, spec) {
  const file = join(CACHE, `${spec.name}.onnx`);
  const model = loadModel(file);
  const raw = spec.feeds();
  const ours = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Tensor.from(v.dtype, v.shape, v.data)]));
  const theirs = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, new ort.Tensor(v.dtype, v.data, v.shape)]));
  const engines = [];
  for (const threads of [1, 2]) {
    const runner = new Runner(model, undefined, { threads });
    engines.push({ name: `modelbridge (${threads} thread${threads > 1 ? 's' : ''})`, ours: true, threads, run: () => runner.run(ours)[spec.output].toFloat32() });
  }
  for (const threads of [1, 2]) {
    const session = await ort.InferenceSession.create(file, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3 });
    engines.push({ name: `onnxruntime-node ${peerVersion('onnxruntime-node')} (${threads} thread${threads > 1 ? 's' : ''})`, ours: false, threads, async: true, run: async () => (await session.run(theirs))[spec.output].data });
  }
  return { engines, flops: flopsOf(model, ours) };
}

/** Seconds per call of one engine over about ROUND_SECONDS (at least 2 calls). */
async function round(engine) {
  let calls = 0;
  const t0 = performance.now();
  do {
    if (engine.async) await engine.run();
    else engine.run();
    calls++;
  } while (calls < 2 || performance.now() - t0 < ROUND_SECONDS * 1000);
  return (performance.now() - t0) / 1000 / calls;
}

async function measure(ort, spec) {
  const { engines, flops } = await enginesFor(ort, spec);
  // every engine once, checked against modelbridge on one thread; a wrong answer fails the bench
  const reference = engines[0].run();
  let scale = 0;
  for (const v of reference) scale = Math.max(scale, Math.abs(v));
  for (const engine of engines) {
    const out = engine.async ? await engine.run() : engine.run();
    let worst = 0;
    for (let i = 0; i < reference.length; i++) worst = Math.max(worst, Math.abs(out[i] - reference[i]));
    if (out.length !== reference.length || !(worst <= 1e-4 * scale)) throw new Error(`${spec.name}: ${engine.name} differs from modelbridge by ${worst} (output scale ${scale})`);
    engine.diff = worst;
  }
  for (const e of engines) e.runs = [];
  for (let r = 0; r < ROUNDS; r++) {
    // the order alternates between rounds, so drift in the machine's load hits every engine alike
    const order = r % 2 ? [...engines].reverse() : engines;
    for (const engine of order) {
      globalThis.gc?.();
      engine.runs.push(await round(engine));
    }
  }
  for (const e of engines) e.seconds = median(e.runs);
  log(`  ${spec.name}: ${engines.map((e) => `${e.name} ${f(e.seconds * 1e3, 2)} ms`).join(', ')}`);
  return { spec, engines, flops, scale };
}

function report(results, note) {
  const byKey = (r, ours, threads) => r.engines.find((e) => e.ours === ours && e.threads === threads);
  const summary = [];
  const checks = [];
  for (const r of results) {
    const mb1 = byKey(r, true, 1);
    const mb2 = byKey(r, true, 2);
    const ort1 = byKey(r, false, 1);
    const ort2 = byKey(r, false, 2);
    const r1 = ort1.seconds / mb1.seconds;
    const r2 = ort2.seconds / mb2.seconds;
    const scaling = mb1.seconds / mb2.seconds;
    summary.push([r.spec.name, f(mb1.seconds * 1e3, 2), f(ort1.seconds * 1e3, 2), ratio(r1), f(mb2.seconds * 1e3, 2), f(ort2.seconds * 1e3, 2), ratio(r2), ratio(scaling), ratio(ort1.seconds / ort2.seconds)]);
    if (r.spec.targeted) {
      checks.push([`${r.spec.name}, modelbridge vs onnxruntime-node, 1 thread`, ratio(r1), `>= ${MIN_RATIO}x`, r1 >= MIN_RATIO]);
      checks.push([`${r.spec.name}, modelbridge vs onnxruntime-node, 2 threads`, ratio(r2), `>= ${MIN_RATIO}x`, r2 >= MIN_RATIO]);
      checks.push([`${r.spec.name}, modelbridge 2 threads vs 1`, ratio(scaling), `>= ${MIN_SCALING}x`, scaling >= MIN_SCALING]);
    } else {
      noted(`${r.spec.name}, modelbridge vs onnxruntime-node (1 / 2 threads)`, `${ratio(r1)} / ${ratio(r2)}`, `2 threads vs 1: ${ratio(scaling)}`);
    }
  }
  for (const [what, measured, goal, met] of checks) target(what, measured, goal, met);
  const lines = [
    HEADING,
    '',
    'Each engine is built once (session planned, weights loaded) and a call runs the model on fixed inputs and reads the output into a typed array. ' +
      `All four engines of a model run in one process, in ${ROUNDS} rounds whose order alternates (1-2-3-4, 4-3-2-1, ...); a round calls an engine for ${ROUND_SECONDS} s (at least twice), ` +
      'the figure is the median round. onnxruntime-node runs with intraOpNumThreads 1 or 2 (interOpNumThreads 1, sequential, all graph optimizations); modelbridge with `threads` 1 or 2. ' +
      'Every engine\'s output is first checked against modelbridge on one thread (max abs diff at most 1e-4 of the output\'s largest magnitude, else the bench fails). ' +
      'GFLOP/s counts the multiply-adds (x2) of the Conv, MatMul and Gemm nodes only. "speed ratio" is onnxruntime\'s time over modelbridge\'s (below 1x: modelbridge is slower).',
    '',
    ...(note ? [note, ''] : []),
    table(
      ['model', 'modelbridge 1 thread ms', 'onnxruntime 1 thread ms', 'speed ratio (1 thread)', 'modelbridge 2 threads ms', 'onnxruntime 2 threads ms', 'speed ratio (2 threads)', 'modelbridge 2 threads vs 1', 'onnxruntime 2 threads vs 1'],
      summary,
    ),
    '',
    table(['target', 'measured', 'goal', 'met'], checks.map(([w, m, g, met]) => [w, m, g, yes(met)])),
    '',
  ];
  for (const r of results) {
    lines.push(`### ${r.spec.title}: ${f(r.flops / 1e9, 3)} GFLOP per call`, '');
    lines.push(
      table(
        ['engine', 'ms/call (median)', 'GFLOP/s', 'max abs diff vs modelbridge 1 thread', 'rounds (ms)'],
        r.engines.map((e) => [e.name, f(e.seconds * 1e3, 3), f(r.flops / e.seconds / 1e9, 1), e.diff.toExponential(2), e.runs.map((s) => f(s * 1e3, 2)).join(', ')]),
      ),
      '',
    );
  }
  return lines.join('\n');
}

/** The section, measured: every model when the Python peers can write them, else the note why not. */
export async function runtimeModelsSection(python = existsSync(PYTHON)) {
  if (!python) return `${HEADING}\n\nSkipped: ${PYTHON} does not exist, and the models are exported with PyTorch.\n`;
  ensureModels();
  const ort = (await import('onnxruntime-node')).default;
  const results = [];
  const capacityBefore = await parallelCapacity();
  const only = process.env.BENCH_MODELS?.split(',');
  for (const spec of MODELS) {
    if (only && !only.includes(spec.name)) continue;
    log(`runtime: ${spec.name}`);
    results.push(await measure(ort, spec));
  }
  const capacity = [capacityBefore, await parallelCapacity()];
  log(`parallel capacity ${capacity.map((c) => f(c, 2)).join(', ')}`);
  return report(
    results,
    `Parallel capacity of the machine during this run (two threads of plain arithmetic against one; 2.00x is two idle cores): ${capacity.map((c) => `${f(c, 2)}x`).join(' before the models, ')} after. ` +
      'The 2-threads-vs-1 rows cannot exceed it.',
  );
}

// On its own: measure, then replace this section of bench/RESULTS.md (or append it).
if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const started = Date.now();
  const loadStart = loadavg()[0];
  const section = await runtimeModelsSection();
  const git = (...args) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? '';
  const dirty = git('status', '--porcelain', '--', 'src', 'bench') !== '';
  const stamp =
    `Measured on its own (\`node --expose-gc bench/runtime.mjs\`${process.env.MODELBRIDGE_DIST ? `, library bundled from the commit's sources by esbuild as scripts/build.mjs does` : ''}) on ${new Date().toISOString()}, commit ${git('rev-parse', '--short', 'HEAD')}${dirty ? ' + uncommitted changes' : ''}, ` +
    `${machine()}, ${f((Date.now() - started) / 60000, 1)} min; load average (1 min) ${f(loadStart)} at start, ${f(loadavg()[0])} at the end` +
    `${Math.max(loadStart, loadavg()[0]) > cpus().length / 2 ? ' (**the machine was busy: other work competes with both engines, and with the second thread most of all**)' : ''}.`;
  const text = section.replace(`${HEADING}\n\n`, `${HEADING}\n\n${stamp}\n\n`);
  if (process.argv.includes('--print')) {
    console.log(text);
    process.exit(0);
  }
  const current = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
  writeFileSync(RESULTS, replaceSections(current, [{ name: 'models', text }]));
  log(`wrote the runtime section of ${RESULTS}`);
}
