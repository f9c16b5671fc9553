// Serving (issue 18): requests per second and latency of `modelbridge serve` on the OR gate,
// against a Flask + TensorFlow server like the classic comparison's (bench/py/serve_flask.py) and
// a fastify + onnxruntime-node server with the same API (bench/serve-ort.mjs). Each server runs in
// its own process on loopback; autocannon, in this process, sends TF Serving's row-format body
// {"instances": [[1, 1]]} over the same number of keep-alive connections for the same time,
// after a warm-up. Every server's answer is checked against modelbridge's runtime first.
//
//   part of `npm run bench` (section "serve"), or on its own, which replaces this section of
//   bench/RESULTS.md in place:  node scripts/build.mjs && node bench/serve.mjs [--print]
//   (BENCH_SERVE_SECONDS=N seconds of load per server, default 5)
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { f, log, PY_DIR, PYTHON, ratio, ROOT, table, target, WORK, yes } from './harness.mjs';
import { machine } from './util.mjs';

const RESULTS = join(ROOT, 'bench', 'RESULTS.md');
const HEADING = '## Serve: TF Serving REST API';
const SECONDS = Number(process.env.BENCH_SERVE_SECONDS ?? 5);
const CONNECTIONS = 8;
const BODY = JSON.stringify({ instances: [[1, 1]] });
/** The issue's target: at least this many times Flask + TensorFlow's throughput on the OR gate. */
const MIN_VS_FLASK = 5;

const version = (pkg) => {
  try {
    return createRequire(join(ROOT, 'package.json'))(`${pkg}/package.json`).version;
  } catch {
    return '?';
  }
};

/** Starts a server process; resolves once it prints `marker` (at once without one: the caller waits for the port). */
function startProcess(command, args, marker) {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3', PYTHONDONTWRITEBYTECODE: '1' } });
  let output = '';
  if (marker === undefined) {
    child.stdout.resume();
    child.stderr.resume();
    return Promise.resolve(child);
  }
  return new Promise((resolve, reject) => {
    const seen = (d) => {
      output += String(d);
      if (output.includes(marker)) resolve(child);
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.on('exit', (code) => reject(new Error(`${command} ${args.join(' ')} exited with ${code}: ${output.slice(-500)}`)));
  });
}

async function stop(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

function load(url, seconds) {
  return new Promise((resolve) => {
    autocannon({ url, method: 'POST', body: BODY, headers: { 'content-type': 'application/json' }, connections: CONNECTIONS, duration: seconds }, (err, result) => resolve(result));
  });
}

async function measure(name, url, expected) {
  const answer = await (await fetch(url, { method: 'POST', body: BODY })).json();
  const got = answer.predictions?.[0]?.[0];
  if (!(Math.abs(got - expected) < 1e-6)) throw new Error(`${name} answered ${JSON.stringify(answer)}, expected ${expected}`);
  await load(url, 1);
  const r = await load(url, SECONDS);
  log(`serve: ${name}: ${f(r.requests.average, 0)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, ${r.errors} errors, ${r.non2xx} non-2xx`);
  return { name, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, failed: r.errors + r.timeouts + r.non2xx, total: r.requests.total };
}

export async function serveSection(python = existsSync(PYTHON)) {
  const { loadModel, runModel, Tensor } = await import('../dist/index.js');
  const dir = join(WORK, 'serve');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'or'), { recursive: true });
  const savedModel = join(ROOT, 'samples', 'or-gate', 'or-gate-savedmodel');
  cpSync(savedModel, join(dir, 'or', '1'), { recursive: true });
  const expected = runModel(loadModel(savedModel), { x: Tensor.from('float32', [1, 2], [1, 1]) }).y.toFloat32()[0];
  const rows = [];
  const servers = [
    ['modelbridge serve (fastify, modelbridge runtime)', () => startProcess(process.execPath, [join(ROOT, 'bin', 'modelbridge.cjs'), 'serve', join(dir, 'or'), '--port', '18601', '--log-level', 'warn', '--poll-seconds', '0']), 18601],
    [`fastify ${version('fastify')} + onnxruntime-node ${version('onnxruntime-node')} (1 thread)`, () => startProcess(process.execPath, [join(ROOT, 'bench', 'serve-ort.mjs'), join(ROOT, 'samples', 'or-gate', 'or-gate.onnx'), '18602'], 'ready'), 18602],
  ];
  if (python) servers.push(['Flask + TensorFlow (tf.saved_model.load, threaded dev server)', () => startProcess(PYTHON, [join(PY_DIR, 'serve_flask.py'), savedModel, '18603'], 'ready'), 18603]);
  try {
    for (const [name, start, port] of servers) {
      const child = await start();
      // modelbridge logs at warn: wait for the port rather than a line.
      for (let i = 0; i < 100; i++) {
        try {
          await fetch(`http://127.0.0.1:${port}/`);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      try {
        rows.push(await measure(name, `http://127.0.0.1:${port}/v1/models/or:predict`, expected));
      } finally {
        await stop(child);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const mb = rows[0];
  const flask = rows.find((r) => r.name.startsWith('Flask'));
  if (flask) target('serve: modelbridge serve vs Flask + TensorFlow, OR gate requests/s', ratio(mb.rps / flask.rps), `>= ${MIN_VS_FLASK}x`, mb.rps / flask.rps >= MIN_VS_FLASK);
  const lines = [
    HEADING,
    '',
    `The OR gate (SavedModel; ONNX for onnxruntime), TF Serving's row body \`{"instances": [[1, 1]]}\` POSTed by autocannon ${version('autocannon')} over ${CONNECTIONS} keep-alive loopback connections for ${SECONDS} s after a 1 s warm-up, each server in its own process, one at a time. autocannon runs on the same ${cpus().length} cores as the server it loads. Every server's answer was checked against modelbridge's runtime first.`,
    '',
    table(
      ['server', 'requests/s', 'p50 latency', 'p99 latency', 'failed', 'vs Flask + TF'],
      rows.map((r) => [r.name, f(r.rps, 0), `${r.p50} ms`, `${r.p99} ms`, `${r.failed} of ${r.total}`, flask ? ratio(r.rps / flask.rps) : '-']),
    ),
    '',
    flask ? `Target: at least ${MIN_VS_FLASK}x Flask + TensorFlow's requests/s on the OR gate: ${ratio(mb.rps / flask.rps)}, met: ${yes(mb.rps / flask.rps >= MIN_VS_FLASK)}.` : `Flask + TensorFlow not measured: ${PYTHON} does not exist.`,
    '',
    'modelbridge serve runs models on its server thread (no worker pool), so these are one-core numbers for the server; ResNet-18 rows are not measured yet.',
    '',
  ];
  return lines.join('\n');
}

// On its own: measure, then replace this section of bench/RESULTS.md (or append it).
if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const started = Date.now();
  const loadStart = loadavg()[0];
  mkdirSync(WORK, { recursive: true });
  const section = await serveSection();
  const git = (...args) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? '';
  const dirty = git('status', '--porcelain', '--', 'src', 'bench') !== '';
  const stamp =
    `Measured on its own (\`node bench/serve.mjs\`) on ${new Date().toISOString()}, commit ${git('rev-parse', '--short', 'HEAD')}${dirty ? ' + uncommitted changes' : ''}, ` +
    `${machine()}, ${f((Date.now() - started) / 60000, 1)} min; load average (1 min) ${f(loadStart)} at start, ${f(loadavg()[0])} at the end` +
    `${Math.max(loadStart, loadavg()[0]) > cpus().length / 2 ? ' (**the machine was busy: other work competes with every server and with autocannon**)' : ''}.`;
  const text = section.replace(`${HEADING}\n\n`, `${HEADING}\n\n${stamp}\n\n`);
  if (process.argv.includes('--print')) {
    console.log(text);
    process.exit(0);
  }
  const current = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
  const start = current.indexOf(`${HEADING}\n`);
  let next = start < 0 ? -1 : current.indexOf('\n## ', start + HEADING.length);
  if (next >= 0) next += 1;
  const updated = start < 0 ? `${current.trimEnd()}\n\n${text}` : `${current.slice(0, start)}${text}${next < 0 ? '' : `\n${current.slice(next)}`}`;
  writeFileSync(RESULTS, updated.endsWith('\n') ? updated : `${updated}\n`);
  log(`wrote the serve section of ${RESULTS}`);
  process.exit(0);
}
