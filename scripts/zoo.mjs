// npm run zoo (issue 11): the model zoo. python/zoo.py (in the peers' venv) builds real
// architectures with their own frameworks and writes each producer's file plus the producer's
// outputs on a fixed input; this driver then, for every architecture x producer file x target
// format, does what a user would: `modelbridge run --json` on the source (compared with the
// reference outputs), `modelbridge convert <src> <dst> --force` (verification on), and checks
// the written file in its real consumer (onnx.checker + onnxruntime, TensorFlow, TF.js
// loadGraphModel, torch). The cells go to docs/zoo-matrix.json (or --matrix), deterministic.
//
// Usage: node scripts/zoo.mjs [--out DIR] [--matrix FILE] [--only arch,arch] [--jobs N] [--no-build]
// With --only, the other architectures' cells already in the matrix file are kept.
// The generated models are cached in DIR (default .zoo/) while python/zoo.py is unchanged.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'bin', 'modelbridge.cjs');
const PYTHON = join(ROOT, '.peers', 'venv', 'bin', 'python');
const ZOO_PY = join(ROOT, 'python', 'zoo.py');
const RTOL = 1e-4;

export const TARGETS = ['onnx', 'savedmodel', 'graphdef', 'tfjs', 'safetensors', 'pytorch'];
const DEST = { onnx: 'model.onnx', savedmodel: 'saved_model', graphdef: 'model.pb', tfjs: 'tfjs', safetensors: 'model.safetensors', pytorch: 'model.pt' };
// Which consumer proves a written file.
const CONSUMER = { onnx: 'onnx', savedmodel: 'savedmodel', graphdef: 'graphdef', tfjs: 'tfjs', safetensors: 'torch', pytorch: 'torch' };

function parseArgs(argv) {
  const opts = { out: join(ROOT, '.zoo'), matrix: join(ROOT, 'docs', 'zoo-matrix.json'), only: undefined, jobs: 2, build: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--out') opts.out = resolve(value());
    else if (a === '--matrix') opts.matrix = resolve(value());
    else if (a === '--only') opts.only = value().split(',');
    else if (a === '--jobs') opts.jobs = Math.max(1, Math.min(2, Number(value()) || 1));
    else if (a === '--no-build') opts.build = false;
    else usage(`unknown argument ${a}`);
  }
  return opts;
}

function usage(msg) {
  console.error(`zoo: ${msg}\nusage: node scripts/zoo.mjs [--out DIR] [--matrix FILE] [--only arch,arch] [--jobs 1|2] [--no-build]`);
  process.exit(1);
}

const log = (msg) => console.error(msg);

/** A failure of the zoo's own steps (a producer script), reported in one line. */
class ZooError extends Error {}

/** Runs a command; resolves with status and both streams (never rejects). */
function run(cmd, args, { timeoutMs = 600_000, input } = {}) {
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, {
      cwd: ROOT,
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3', PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1', NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out = [];
    const err = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', (e) => err.push(Buffer.from(String(e))));
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolvePromise({ status: status ?? -1, signal, timedOut, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.end(input ?? '');
  });
}

/** The one line a user would read from a failed command. */
function errorLine(r, what) {
  if (r.timedOut) return `${what} timed out`;
  const lines = r.stderr.split('\n').map((l) => l.trim()).filter((l) => l && !/^\s*at /.test(l));
  const picked = lines.find((l) => /^error\b/i.test(l)) ?? lines.at(-1) ?? `exit ${r.status}`;
  const crash = r.status === 70 ? 'crash (exit 70): ' : r.signal ? `killed by ${r.signal}: ` : '';
  return `${crash}${picked}`.replace(/\s+/g, ' ').slice(0, 400);
}

const norm = (name) => name.replace(/:\d+$/, '').toLowerCase().replace(/[^a-z0-9]/g, '');

/** Pairs a model's outputs with the reference's (by name, else unique shape, else value, else position) and compares. */
export function compareOutputs(got, ref) {
  if (got.length !== ref.length) throw new Error(`${got.length} outputs (${got.map((g) => g.name).join(', ')}), the reference has ${ref.length}`);
  const byName = new Map(got.map((g) => [norm(g.name), g]));
  let pairs;
  if (ref.every((r) => byName.has(norm(r.name)))) pairs = ref.map((r) => [byName.get(norm(r.name)), r]);
  else {
    const key = (s) => s.join('x');
    const shapes = got.map((g) => key(g.shape));
    const unique = new Set(shapes).size === shapes.length && ref.every((r) => shapes.filter((s) => s === key(r.shape)).length === 1);
    pairs = unique ? ref.map((r) => [got[shapes.indexOf(key(r.shape))], r]) : (byValue(got, ref) ?? ref.map((r, i) => [got[i], r]));
  }
  let worst = 0;
  for (const [g, r] of pairs) {
    if (key2(g.shape) !== key2(r.shape)) throw new Error(`output ${r.name} has shape [${g.shape}], the reference [${r.shape}]`);
    for (let i = 0; i < r.data.length; i++) {
      const a = Number(g.data[i]);
      const b = r.data[i];
      const e = Math.abs(a - b) / Math.max(1, Math.abs(b));
      if (!(e <= RTOL)) throw new Error(`output ${r.name} differs from the reference: max error ${Number.isFinite(e) ? e.toPrecision(3) : a} x max(1,|ref|) at ${i}`);
      if (e > worst) worst = e;
    }
  }
  return worst;
}
const key2 = (s) => s.join('x');

/** Relative error of got against ref, the largest over the elements (Infinity when a value is not a number). */
function relError(g, r) {
  let worst = 0;
  for (let i = 0; i < r.data.length; i++) {
    const e = Math.abs(Number(g.data[i]) - r.data[i]) / Math.max(1, Math.abs(r.data[i]));
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

/**
 * Pairs by value when names and shapes cannot: a producer that lost the output names (the
 * tensorflowjs_converter keys some outputs of a multi-output signature by tensor names such as
 * `Identity_2:0`, in another order) still holds each output; each reference output is paired with
 * the one output of its shape that equals it within RTOL. Undefined unless every reference output
 * finds its own, so a wrong computation still fails (by position) rather than pairing by luck.
 */
function byValue(got, ref) {
  const used = new Set();
  const pairs = [];
  for (const r of ref) {
    const i = got.findIndex((g, k) => !used.has(k) && key2(g.shape) === key2(r.shape) && relError(g, r) <= RTOL);
    if (i < 0) return undefined;
    used.add(i);
    pairs.push([got[i], r]);
  }
  return pairs;
}

/** Pairs model input names with the reference inputs: by name, else by position. */
function matchInputs(names, refInputs) {
  const byName = new Map(refInputs.map((r) => [norm(r.name), r]));
  if (names.every((n) => byName.has(norm(n)))) return names.map((n) => [n, byName.get(norm(n))]);
  if (names.length !== refInputs.length) throw new Error(`inputs ${names.join(', ')} cannot be paired with the reference's ${refInputs.map((r) => r.name).join(', ')}`);
  return names.map((n, i) => [n, refInputs[i]]);
}

async function cli(args, timeoutMs = 600_000) {
  return run(process.execPath, [CLI, ...args], { timeoutMs });
}

/** modelbridge's own runtime on the source, against the producer's outputs. */
async function runSource(path, ref, archDir) {
  const ins = await cli(['inspect', path, '--json']);
  if (ins.status !== 0) return { ok: false, error: `inspect: ${errorLine(ins, 'inspect')}` };
  let info;
  try {
    info = JSON.parse(ins.stdout);
  } catch {
    return { ok: false, error: 'inspect --json printed no JSON' };
  }
  const sig = info.signatures?.find((s) => s.name === 'serving_default') ?? info.signatures?.[0];
  if (!sig) return { ok: false, error: 'inspect shows no signature' };
  let pairs;
  try {
    pairs = matchInputs(sig.inputs.map((i) => i.name), ref.inputs);
  } catch (e) {
    return { ok: false, error: e.message };
  }
  const args = ['run', path, '--json'];
  if (sig.name && info.format === 'savedmodel') args.push('--signature', sig.name);
  for (const [name, r] of pairs) args.push('--input', `${name}=@${join(archDir, r.file)}`);
  const r = await cli(args);
  if (r.status !== 0) return { ok: false, error: `run: ${errorLine(r, 'run')}` };
  try {
    const outputs = Object.entries(JSON.parse(r.stdout).outputs).map(([name, o]) => ({ name, shape: o.shape, data: o.data }));
    const worst = compareOutputs(outputs, ref.outputs);
    return { ok: true, detail: `modelbridge run within ${worst.toPrecision(2)}` };
  } catch (e) {
    return { ok: false, error: `run: ${e.message}` };
  }
}

// ---------------------------------------------------------------------------------------------
// TF.js consumer, in this process: tfjs-core + the CPU backend + loadGraphModel.

let tfjs;
async function loadTfjs() {
  if (!tfjs) {
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-cpu');
    const { loadGraphModel } = await import('@tensorflow/tfjs-converter');
    await tf.setBackend('cpu');
    tfjs = { tf, loadGraphModel };
  }
  return tfjs;
}

function modelJson(dir) {
  if (dir.endsWith('.json')) return dir;
  if (existsSync(join(dir, 'model.json'))) return join(dir, 'model.json');
  const json = readdirSync(dir).filter((f) => f.endsWith('.json'));
  if (json.length !== 1) throw new Error(`no single model.json in ${dir}`);
  return join(dir, json[0]);
}

async function checkTfjs(dir, ref, archDir) {
  const { tf, loadGraphModel } = await loadTfjs();
  const path = modelJson(dir);
  const json = JSON.parse(readFileSync(path, 'utf8'));
  const weightSpecs = json.weightsManifest.flatMap((g) => g.weights);
  const data = Buffer.concat(json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(dirname(path), p)))));
  const model = await loadGraphModel({
    load: async () => ({ ...json, modelTopology: json.modelTopology, weightSpecs, weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) }),
  });
  const feeds = {};
  const inputs = model.inputs;
  for (const [name, r] of matchInputs(inputs.map((i) => i.name), ref.inputs)) {
    const dtype = inputs.find((i) => i.name === name).dtype ?? 'float32';
    const values = readNpy(join(archDir, r.file));
    if (dtype === 'int32' && values.some((v) => v > 2147483647 || v < -2147483648)) throw new Error(`input ${name} does not fit int32`);
    feeds[name] = tf.tensor(values, r.shape, dtype);
  }
  const names = model.outputs.map((o) => o.name);
  const result = await model.executeAsync(feeds, names);
  const list = Array.isArray(result) ? result : [result];
  const got = [];
  for (let i = 0; i < list.length; i++) got.push({ name: names[i], shape: list[i].shape, data: Array.from(await list[i].data()) });
  tf.dispose([...list, ...Object.values(feeds)]);
  model.dispose();
  const worst = compareOutputs(got, ref.outputs);
  return `TF.js loadGraphModel (cpu): ${got.length} outputs within ${worst.toPrecision(2)}`;
}

/** A .npy file's values as numbers (the dtypes the zoo writes: float32, int32, int64). */
function readNpy(path) {
  const buf = readFileSync(path);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.subarray(10, 10 + headerLen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const body = buf.subarray(10 + headerLen);
  const copy = new Uint8Array(body).buffer;
  if (descr === '<f4') return Array.from(new Float32Array(copy));
  if (descr === '<i4') return Array.from(new Int32Array(copy));
  if (descr === '<i8') return Array.from(new BigInt64Array(copy), Number);
  throw new Error(`${path}: npy dtype ${descr} not handled`);
}

// ---------------------------------------------------------------------------------------------

/** At most n of the wrapped thunks run at once. */
function limiter(n) {
  let active = 0;
  const waiting = [];
  const release = () => {
    active--;
    waiting.shift()?.();
  };
  return async (thunk) => {
    if (active >= n) await new Promise((r) => waiting.push(r));
    active++;
    try {
      return await thunk();
    } finally {
      release();
    }
  };
}

const all = (items, slot, fn) => Promise.all(items.map((x) => slot(() => fn(x))));

/** Every cell of the architectures in `group`: source runs, conversions, consumer checks. */
async function cellsOf(group, opts, slot, producerErrors) {
  const sources = [];
  for (const arch of group) {
    const archDir = join(opts.out, arch);
    const manifest = JSON.parse(readFileSync(join(archDir, 'manifest.json'), 'utf8'));
    const ref = JSON.parse(readFileSync(join(archDir, 'reference.json'), 'utf8'));
    for (const e of manifest.producer_errors) producerErrors.push({ architecture: arch, ...e });
    for (const f of manifest.files) {
      const tag = f.source.replace(/\/model\.json$/, '').replace(/[^A-Za-z0-9_.-]/g, '_');
      // A bare state dict holds no computation: only the weight formats can take it.
      const targets = f.holds === 'weights' ? ['safetensors', 'pytorch'] : TARGETS;
      sources.push({ arch, archDir, framework: manifest.framework, ref, producer: f.producer, source: f.source, holds: f.holds, path: join(archDir, f.source), tag, targets });
    }
  }
  log(`zoo: ${group.join(', ')}: ${sources.length} producer files; running each in modelbridge`);
  const sourceRuns = await all(sources, slot, (s) => (s.holds === 'weights' ? { ok: true, detail: 'weights only' } : runSource(s.path, s.ref, s.archDir)));

  const cells = [];
  for (const [i, s] of sources.entries()) {
    for (const target of s.targets) cells.push({ s, sourceRun: sourceRuns[i], target, dst: join(s.archDir, 'out', s.tag, DEST[target]) });
  }
  log(`zoo: ${group[0]}...: converting ${cells.length} cells`);
  await all(cells, slot, async (c) => {
    rmSync(c.dst, { recursive: true, force: true });
    mkdirSync(dirname(c.dst), { recursive: true });
    const t0 = Date.now();
    const r = await cli(['convert', c.s.path, c.dst, '--to', c.target, '--force', '--quiet'], 300_000);
    c.convertSeconds = (Date.now() - t0) / 1000;
    c.convert = r.status === 0 ? { ok: true } : { ok: false, error: errorLine(r, 'convert') };
  });

  // the consumers: one Python process per kind
  const byKind = new Map();
  for (const c of cells.filter((c) => c.convert.ok)) {
    const kind = CONSUMER[c.target];
    if (!byKind.has(kind)) byKind.set(kind, []);
    byKind.get(kind).push(c);
  }
  const jobFor = (c) => ({
    check: CONSUMER[c.target],
    file: c.dst,
    arch: c.s.arch,
    arch_dir: c.s.archDir,
    holds: c.s.holds,
    original: c.s.framework === 'torch' ? join(c.s.archDir, 'state_dict.pt') : undefined,
  });
  log(`zoo: ${group[0]}...: checking the written files in their consumers`);
  const pyKinds = [['onnx', ['onnx']], ['tf', ['savedmodel', 'graphdef']], ['torch', ['torch']]];
  await all(pyKinds, slot, async ([kind, consumers]) => {
    const list = consumers.flatMap((k) => byKind.get(k) ?? []);
    if (list.length === 0) return;
    const jobsFile = join(opts.out, `check-${kind}-${group[0]}.json`);
    writeFileSync(jobsFile, JSON.stringify(list.map(jobFor)));
    const r = await run(PYTHON, [ZOO_PY, 'check', kind, jobsFile], { timeoutMs: 1_800_000 });
    let results;
    try {
      results = JSON.parse(r.stdout);
    } catch {
      results = list.map(() => ({ ok: false, error: `the ${kind} checker crashed: ${errorLine(r, kind)}` }));
    }
    list.forEach((c, i) => (c.consumer = results[i] ?? { ok: false, error: `the ${kind} checker gave no result` }));
  });
  for (const c of byKind.get('tfjs') ?? []) {
    try {
      c.consumer = { ok: true, detail: await slot(() => checkTfjs(c.dst, c.s.ref, c.s.archDir)) };
    } catch (e) {
      c.consumer = { ok: false, error: `TF.js: ${String(e.message ?? e).split('\n')[0].slice(0, 300)}` };
    }
  }
  // The general Graph form in a .safetensors/.pt runs only in modelbridge: run the written file.
  const graphForm = cells.filter((c) => c.consumer?.ok && c.consumer.needs_runtime);
  await all(graphForm, slot, async (c) => {
    const r = await runSource(c.dst, c.s.ref, c.s.archDir);
    c.consumer = r.ok ? { ok: true, detail: `${c.consumer.detail}; Graph form: ${r.detail}` } : { ok: false, error: `the written Graph form: ${r.error}` };
  });
  return cells;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  if (!existsSync(PYTHON)) {
    console.error(`zoo: peers environment missing: run scripts/peers-env.sh (no ${PYTHON})`);
    process.exit(2);
  }
  if (opts.build && spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit', cwd: ROOT }).status !== 0) {
    console.error('zoo: the build failed');
    process.exit(1);
  }
  mkdirSync(opts.out, { recursive: true });

  // 1. the producers' files: torch and TensorFlow architectures in two processes side by side;
  // each group's cells start as soon as its models exist, all commands sharing `jobs` slots.
  log('zoo: generating the models (python/zoo.py)');
  const listed = await run(PYTHON, [ZOO_PY, 'list']);
  if (listed.status !== 0) {
    console.error(`zoo: python/zoo.py list failed: ${errorLine(listed, 'list')}`);
    process.exit(1);
  }
  const known = Object.values(JSON.parse(listed.stdout));
  const groups = known.map((g) => g.filter((a) => !opts.only || opts.only.includes(a))).filter((g) => g.length);
  const architectures = groups.flat();
  if (opts.only) {
    const unknown = opts.only.filter((a) => !architectures.includes(a));
    if (unknown.length) usage(`unknown architecture ${unknown.join(', ')}; known: ${known.flat().join(', ')}`);
  }
  const slot = limiter(opts.jobs);
  // TF.js advises on the console (the Node backend, execute vs executeAsync): not the zoo's output.
  console.warn = () => {};
  const producerErrors = [];
  const genSeconds = [];
  const groupCells = await Promise.all(groups.map(async (group) => {
    const gen = await run(PYTHON, [ZOO_PY, 'generate', opts.out, '--only', group.join(',')], { timeoutMs: 3_600_000 });
    process.stderr.write(gen.stderr.split('\n').filter((l) => l.startsWith('zoo:')).map((l) => `${l}\n`).join(''));
    if (gen.status !== 0) throw new ZooError(`python/zoo.py generate failed: ${gen.stderr.trim().split('\n').slice(-5).join(' | ')}`);
    genSeconds.push((Date.now() - started) / 1000);
    return cellsOf(group, opts, slot, producerErrors);
  }));
  const cells = groupCells.flat();

  // 4. the matrix
  // Reasons name files relative to the models' folder, so the matrix does not depend on --out.
  const outPrefix = new RegExp(`${opts.out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/`, 'g');
  const matrixCells = cells.map((c) => {
    const cell = { architecture: c.s.arch, producer: c.s.producer, source: c.s.source, target: c.target };
    for (const part of [c.convert, c.sourceRun, c.consumer]) if (part?.error) part.error = part.error.replace(outPrefix, '');
    if (!c.convert.ok) {
      if (/has no equivalent/i.test(c.convert.error)) return { ...cell, status: 'impossible', reason: c.convert.error };
      return { ...cell, status: 'fail', reason: `convert: ${c.convert.error}` };
    }
    if (!c.sourceRun.ok) return { ...cell, status: 'fail', reason: `source ${c.sourceRun.error}` };
    if (!c.consumer?.ok) return { ...cell, status: 'fail', reason: `consumer: ${c.consumer?.error ?? 'not checked'}` };
    return { ...cell, status: 'pass' };
  });
  // A run of some architectures (--only) replaces their cells in the existing matrix and keeps
  // the others', so regenerating a subset does not drop the rest.
  if (opts.only && existsSync(opts.matrix)) {
    const previous = JSON.parse(readFileSync(opts.matrix, 'utf8')).cells ?? [];
    matrixCells.push(...previous.filter((c) => !architectures.includes(c.architecture)));
  }
  const everyArch = known.flat();
  const order = (c) => [everyArch.indexOf(c.architecture), c.source, TARGETS.indexOf(c.target)];
  matrixCells.sort((a, b) => {
    const x = order(a);
    const y = order(b);
    return x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0) || x[2] - y[2];
  });
  const matrix = { generated_by: 'npm run zoo (scripts/zoo.mjs, python/zoo.py)', cells: matrixCells };
  mkdirSync(dirname(opts.matrix), { recursive: true });
  writeFileSync(opts.matrix, `${JSON.stringify(matrix, null, 1)}\n`);
  writeFileSync(join(opts.out, 'details.json'), JSON.stringify(cells.map((c) => ({
    architecture: c.s.arch, source: c.s.source, target: c.target, convertSeconds: c.convertSeconds,
    sourceRun: c.sourceRun, convert: c.convert, consumer: c.consumer,
  })), null, 1));

  const count = (st) => matrixCells.filter((c) => c.status === st).length;
  const seconds = (Date.now() - started) / 1000;
  for (const e of producerErrors) log(`zoo: producer failed (no cells): ${e.architecture} ${e.producer}: ${e.error}`);
  log(`zoo: ${matrixCells.length} cells: ${count('pass')} pass, ${count('fail')} fail, ${count('impossible')} impossible; ` +
    `${seconds.toFixed(0)} s (models ready after ${genSeconds.map((g) => g.toFixed(0)).join(' and ')} s); matrix in ${relative(ROOT, opts.matrix)}`);

  const coverage = join(ROOT, 'scripts', 'coverage.mjs');
  if (opts.matrix === join(ROOT, 'docs', 'zoo-matrix.json') && existsSync(coverage)) {
    const r = spawnSync(process.execPath, [coverage], { stdio: 'inherit', cwd: ROOT });
    if (r.status !== 0) log('zoo: scripts/coverage.mjs failed');
  }
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  main().catch((e) => {
    if (e instanceof ZooError) {
      console.error(`zoo: ${e.message}`);
      process.exit(1);
    }
    console.error(`zoo: ${e.stack ?? e}`);
    process.exit(70);
  });
}
