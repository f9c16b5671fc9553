// Serving (issue 18): requests per second and latency of `modelbridge serve` (on its server
// thread and with --workers 2) on the OR gate and ResNet-18 (when bench/.cache has it), against a Flask + TensorFlow server like the classic comparison's (bench/py/serve_flask.py) and
// a fastify + onnxruntime-node server with the same API (bench/serve-ort.mjs). Each server runs in
// its own process on loopback; a closed loop of clients in this process sends TF Serving's
// row-format body for the same time to each, after a warm-up. Every server's answer is checked against modelbridge's runtime first.
//
//   part of `npm run bench` (section "serve"), or on its own, which replaces this section of
//   bench/RESULTS.md in place:  node scripts/build.mjs && node bench/serve.mjs [--print]
//   (BENCH_SERVE_SECONDS=N seconds of load per round, default 5, twice that for ResNet-18;
//   BENCH_SERVE_ROUNDS=N rounds, default 2)
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import http from 'node:http';
import { f, log, PY_DIR, PYTHON, ratio, replaceSections, RESULTS, ROOT, table, target, WORK, yes } from './harness.mjs';
import { machine } from './util.mjs';

const HEADING = '## Serve: TF Serving REST API';
const SECONDS = Number(process.env.BENCH_SERVE_SECONDS ?? 5);
const CONNECTIONS = 8;
/** Rounds per server, each in ABBA order across the servers. */
const ROUNDS = Number(process.env.BENCH_SERVE_ROUNDS ?? 2);
/** The target: at least this many times Flask + TensorFlow's throughput on the OR gate. */
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

/**
 * A closed loop of `connections` clients, each sending the next request when its answer is in,
 * for `seconds`: requests/s and latency percentiles. Node's http client with a keep-alive agent,
 * not autocannon: autocannon stalls on a server that closes the connection after each answer, as
 * Flask's development server (werkzeug) does, and the comparison needs one client for all.
 */
async function load(url, body, seconds, connections) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const target = new URL(url);
  const latencies = [];
  let failed = 0;
  const end = performance.now() + seconds * 1000;
  const one = () =>
    new Promise((resolve) => {
      const started = performance.now();
      const req = http.request({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          if (res.statusCode === 200) latencies.push(performance.now() - started);
          else failed++;
          resolve();
        });
      });
      req.on('error', () => {
        failed++;
        resolve();
      });
      req.end(body);
    });
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) await one();
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] : NaN);
  return { rps: latencies.length / elapsed, p50: pct(50), p99: pct(99), failed, total: latencies.length + failed };
}

const url = (port, name) => `http://127.0.0.1:${port}/v1/models/${name}:predict`;

/** The server's answer must be modelbridge's before its speed means anything. */
async function check(name, target, body, expected) {
  const answer = await (await fetch(target, { method: 'POST', body })).json();
  const got = answer.predictions?.[0]?.[0];
  if (!(Math.abs(got - expected) <= 1e-4 * Math.max(1, Math.abs(expected)))) throw new Error(`${name} answered ${JSON.stringify(answer).slice(0, 200)}, expected ${expected}`);
}

async function waitForPort(port) {
  for (let i = 0; i < 600; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`nothing listens on port ${port}`);
}

/** One model under every server: rows for the table. */
async function serveModel(python, m) {
  const rows = [];
  const servers = [
    ['modelbridge serve (server thread)', []],
    ['modelbridge serve --workers 2', ['--workers', '2']],
  ].map(([name, extra], k) => [name, () => startProcess(process.execPath, [join(ROOT, 'bin', 'modelbridge.cjs'), 'serve', m.base, '--model-name', m.name, '--port', String(18601 + k), '--log-level', 'warn', '--poll-seconds', '0', ...extra]), 18601 + k]);
  servers.push([`fastify ${version('fastify')} + onnxruntime-node ${version('onnxruntime-node')} (1 thread)`, () => startProcess(process.execPath, [join(ROOT, 'bench', 'serve-ort.mjs'), m.onnx, '18611', m.name], 'ready'), 18611]);
  if (python) servers.push(['Flask + TensorFlow (tf.saved_model.load, threaded dev server)', () => startProcess(PYTHON, [join(PY_DIR, 'serve_flask.py'), m.savedModel, '18612', m.name], 'ready'), 18612]);
  // All servers up at once (idle ones cost nothing), then measured in rounds of ABBA order, so
  // load from elsewhere on a shared machine falls on every server alike; each server's row is its
  // best round (other work only ever slows a server down).
  const children = [];
  try {
    for (const [name, start, port] of servers) {
      children.push(await start());
      await waitForPort(port);
      await check(name, url(port, m.name), m.body, m.expected);
      await load(url(port, m.name), m.body, 1, m.connections);
    }
    const runs = servers.map(() => []);
    const order = [...servers.keys(), ...[...servers.keys()].reverse()];
    for (let round = 0; round < ROUNDS; round++) {
      for (const k of order) {
        const r = await load(url(servers[k][2], m.name), m.body, m.seconds, m.connections);
        runs[k].push(r);
        log(`serve: ${m.name}: ${servers[k][0]}: ${f(r.rps, 1)} req/s, p50 ${f(r.p50)} ms, p99 ${f(r.p99)} ms, ${r.failed} failed of ${r.total}`);
      }
    }
    servers.forEach(([name], k) => {
      const best = runs[k].reduce((a, b) => (b.rps > a.rps ? b : a));
      const failed = runs[k].reduce((n, r) => n + r.failed, 0);
      const total = runs[k].reduce((n, r) => n + r.total, 0);
      rows.push({ name, ...best, failed, total, all: runs[k].map((r) => f(r.rps, r.rps < 100 ? 1 : 0)) });
    });
  } finally {
    for (const child of children) await stop(child);
  }
  const mb = rows[0];
  const flask = rows.find((r) => r.name.startsWith('Flask'));
  if (flask && m.target) target(`serve: modelbridge serve vs Flask + TensorFlow, ${m.title} requests/s`, ratio(mb.rps / flask.rps), `>= ${MIN_VS_FLASK}x`, mb.rps / flask.rps >= MIN_VS_FLASK);
  return [
    `### ${m.title}`,
    '',
    `${m.connections} clients in a closed loop, ${m.seconds} s per round after a 1 s warm-up, ${ROUNDS} rounds in ABBA order (each server measured twice a round); each row is the server's best measurement (all of them, in requests/s, in the last column); body: ${m.bodyNote}.`,
    '',
    table(
      ['server', 'requests/s', 'p50 latency', 'p99 latency', 'failed (all rounds)', 'vs Flask + TF', 'rounds (req/s)'],
      rows.map((r) => [r.name, f(r.rps, r.rps < 100 ? 1 : 0), `${f(r.p50, r.p50 < 10 ? 2 : 0)} ms`, `${f(r.p99, r.p99 < 10 ? 2 : 0)} ms`, `${r.failed} of ${r.total}`, flask ? ratio(r.rps / flask.rps) : '-', r.all.join(', ')]),
    ),
    '',
    flask && m.target ? `Target: at least ${MIN_VS_FLASK}x Flask + TensorFlow's requests/s: ${ratio(mb.rps / flask.rps)} (server thread), met: ${yes(mb.rps / flask.rps >= MIN_VS_FLASK)}.` : flask ? '' : `Flask + TensorFlow not measured: ${PYTHON} does not exist.`,
    '',
  ].join('\n');
}

export async function serveSection(python = existsSync(PYTHON)) {
  const { convertModel, loadModel, runModel, Tensor } = await import('../dist/index.js');
  const dir = join(WORK, 'serve');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const parts = [
    HEADING,
    '',
    `TF Serving's row body (\`{"instances": [...]}\`) POSTed over loopback by a closed loop of clients (Node's http with a keep-alive agent; werkzeug closes each connection, so Flask's clients reconnect), each server in its own process (all started, then loaded one at a time), the same model for all (modelbridge serve and Flask + TensorFlow read the same SavedModel, onnxruntime its ONNX). The clients run on the same ${cpus().length} cores as the server they load. Every server's answer was checked against modelbridge's runtime first.`,
    '',
  ];
  try {
    const orSaved = join(ROOT, 'samples', 'or-gate', 'or-gate-savedmodel');
    cpSync(orSaved, join(dir, 'or', '1'), { recursive: true });
    parts.push(
      await serveModel(python, {
        name: 'or',
        title: 'OR gate (2-2-1 sigmoid), batch 1',
        base: join(dir, 'or'),
        savedModel: orSaved,
        onnx: join(ROOT, 'samples', 'or-gate', 'or-gate.onnx'),
        body: JSON.stringify({ instances: [[1, 1]] }),
        bodyNote: '`{"instances": [[1, 1]]}`',
        expected: runModel(loadModel(orSaved), { x: Tensor.from('float32', [1, 2], [1, 1]) }).y.toFloat32()[0],
        connections: CONNECTIONS,
        seconds: SECONDS,
        target: true,
      }),
    );
    const resnet = join(ROOT, 'bench', '.cache', 'resnet18.onnx');
    if (existsSync(resnet)) {
      const saved = join(dir, 'resnet18', '1');
      convertModel(resnet, saved, { to: 'savedmodel' });
      let seed = 7;
      const values = Array.from({ length: 3 * 224 * 224 }, () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
      const x = Tensor.from('float32', [1, 3, 224, 224], values);
      const nested = Array.from({ length: 3 }, (_, c) => Array.from({ length: 224 }, (_, h) => values.slice((c * 224 + h) * 224, (c * 224 + h + 1) * 224)));
      const outputs = runModel(loadModel(saved), { x });
      parts.push(
        await serveModel(python, {
          name: 'resnet18',
          title: 'ResNet-18 (torchvision, random weights), batch 1, 3x224x224',
          base: join(dir, 'resnet18'),
          savedModel: saved,
          onnx: resnet,
          body: JSON.stringify({ instances: [nested] }),
          bodyNote: 'one 3x224x224 image as nested JSON numbers (about 3 MB)',
          expected: Object.values(outputs)[0].toFloat32()[0],
          connections: 2,
          seconds: SECONDS * 2,
          target: false,
        }),
      );
    } else {
      parts.push('ResNet-18 not measured: bench/.cache/resnet18.onnx does not exist (the models section of `npm run bench` makes it).', '');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return parts.join('\n');
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
    `${Math.max(loadStart, loadavg()[0]) > cpus().length / 2 ? ' (**the machine was busy: other work competes with every server and with the clients**)' : ''}.`;
  const text = section.replace(`${HEADING}\n\n`, `${HEADING}\n\n${stamp}\n\n`);
  if (process.argv.includes('--print')) {
    console.log(text);
    process.exit(0);
  }
  const current = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
  writeFileSync(RESULTS, replaceSections(current, [{ name: 'serve', text }]));
  log(`wrote the serve section of ${RESULTS}`);
  process.exit(0);
}
