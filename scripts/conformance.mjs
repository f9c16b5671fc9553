// npm run conformance: runs ONNX's backend node tests (test/fixtures/upstream/onnx/node, the data of
// onnx/backend/test/data/node) through modelbridge's ONNX reader and runtime, and writes
// docs/onnx-conformance.md with pass/fail per op and the totals. Each case is also written back by
// modelbridge's ONNX writer and run again ("rewritten"), so the table covers the writer too.
// Compares as ONNX's backend runner does: rtol 1e-3, atol 1e-7, NaN equals NaN, integers exactly.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NODE_TESTS = process.env.ONNX_NODE_TESTS ?? join(ROOT, 'test', 'fixtures', 'upstream', 'onnx', 'node');
const OUT = join(ROOT, 'docs', 'onnx-conformance.md');

/** Cases run but known not to match, with why (the same list as test/onnx-conformance.test.ts). */
const KNOWN_FAILURES = {
  test_training_dropout: "training-mode Dropout with ratio > 0 is random; the expected output comes from numpy's generator",
  test_training_dropout_default: 'training-mode Dropout with ratio > 0 is random',
  test_training_dropout_default_mask: 'training-mode Dropout with ratio > 0 is random',
  test_training_dropout_mask: 'training-mode Dropout with ratio > 0 is random',
};

if (spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit', cwd: ROOT }).status !== 0) {
  console.error('conformance: the build failed');
  process.exit(1);
}
const mb = await import(join(ROOT, 'dist', 'index.js'));

if (!existsSync(NODE_TESTS)) {
  console.error(`conformance: no node tests at ${NODE_TESTS} (set ONNX_NODE_TESTS)`);
  process.exit(1);
}

function runCase(graph, dir) {
  const session = new mb.Session(graph);
  let compared = 0;
  for (const set of readdirSync(dir).filter((f) => f.startsWith('test_data_set_')).sort()) {
    const at = join(dir, set);
    const feeds = {};
    graph.inputs.forEach((input, i) => {
      const file = join(at, `input_${i}.pb`);
      if (existsSync(file)) feeds[input.name] = mb.readOnnxTensor(readFileSync(file), file);
    });
    const outputs = session.run(feeds);
    graph.outputs.forEach((output, i) => {
      const file = join(at, `output_${i}.pb`);
      const problem = mb.conformanceMismatch(outputs[output.name], mb.readOnnxTensor(readFileSync(file), file));
      if (problem) throw new Error(`${set}, output ${output.name}: ${problem}`);
      compared++;
    });
  }
  if (compared === 0) throw new Error('no outputs to compare');
}

/** A graph's nodes and those of the graphs nested in them (If's branches, Loop's and Scan's bodies). */
const allNodes = (g) =>
  g.nodes.flatMap((n) => [n, ...Object.values(n.attributes).flatMap((a) => (a.type === 'graph' ? allNodes(a.value) : a.type === 'graphs' ? a.value.flatMap(allNodes) : []))]);
const oneLine = (e) => String(e?.message ?? e).split('\n')[0];
const results = []; // { name, ops, status: pass|fail|known, rewritten: pass|fail|-, reason }
const unreadable = [];
const unsupportedOps = new Map();
const unsupportedTypes = [];

for (const name of readdirSync(NODE_TESTS).sort()) {
  const dir = join(NODE_TESTS, name);
  const file = join(dir, 'model.onnx');
  if (!existsSync(file)) continue;
  let model;
  try {
    model = mb.readOnnxModel(readFileSync(file), file);
  } catch (e) {
    unreadable.push({ name, reason: oneLine(e).replace(/^.*?: (graph (input|output)|attribute) [^:]*: /, '').replace(/^.*?: /, '') });
    continue;
  }
  const graph = model.graph;
  const missing = [...new Set(allNodes(graph).filter((n) => !mb.isSupported(n.op, graph.opset, n.domain)).map((n) => (n.domain ? `${n.domain}.${n.op}` : n.op)))];
  if (missing.length) {
    for (const op of missing) unsupportedOps.set(op, [...(unsupportedOps.get(op) ?? []), name]);
    continue;
  }
  const dtypes = [...new Set([...graph.inputs, ...graph.outputs].map((v) => v.dtype).filter((d) => !mb.isComputable(d)))];
  if (dtypes.length) {
    unsupportedTypes.push({ name, dtypes });
    continue;
  }
  const ops = [...new Set(allNodes(graph).map((n) => n.op))];
  let status = 'pass';
  let reason = '';
  try {
    runCase(graph, dir);
  } catch (e) {
    status = KNOWN_FAILURES[name] ? 'known' : 'fail';
    reason = KNOWN_FAILURES[name] ?? oneLine(e);
  }
  // The same case after modelbridge's writer: write at the model's own opset, read, run.
  let rewritten = '-';
  if (status === 'pass') {
    try {
      const bytes = mb.serializeOnnxModel(model, { opset: graph.opset });
      runCase(mb.readOnnxModel(bytes, file).graph, dir);
      rewritten = 'pass';
    } catch (e) {
      rewritten = 'fail';
      reason = `after rewriting: ${oneLine(e)}`;
    }
  }
  results.push({ name, ops, status, rewritten, reason });
}

// Per op: cases that use it, passed, failed.
const perOp = new Map();
for (const r of results) {
  for (const op of r.ops) {
    const row = perOp.get(op) ?? { tried: 0, passed: 0, rewritten: 0, failed: [] };
    row.tried++;
    if (r.status === 'pass') row.passed++;
    else row.failed.push(r.name);
    if (r.rewritten === 'pass') row.rewritten++;
    perOp.set(op, row);
  }
}

const passed = results.filter((r) => r.status === 'pass').length;
const known = results.filter((r) => r.status === 'known').length;
const failed = results.filter((r) => r.status === 'fail');
const rewrittenPassed = results.filter((r) => r.rewritten === 'pass').length;
const rewrittenFailed = results.filter((r) => r.rewritten === 'fail');
const total = results.length + unreadable.length + unsupportedTypes.length + new Set([...unsupportedOps.values()].flat()).size;
const opsPassing = [...perOp.values()].filter((r) => r.passed === r.tried).length;

const countBy = (items) => {
  const counts = new Map();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0])));
};

const lines = [];
lines.push('# ONNX backend conformance');
lines.push('');
lines.push(`Generated by \`npm run conformance\` (scripts/conformance.mjs) from ONNX's backend node tests (${relative(ROOT, NODE_TESTS) || NODE_TESTS}): every case whose ops and types modelbridge's runtime supports is read with modelbridge's ONNX reader, run, and compared as ONNX's backend runner compares (rtol 1e-3, atol 1e-7, NaN equal to NaN, integers and bools exactly). "Rewritten" runs the same case again after modelbridge's ONNX writer wrote the model back out (at its own opset) and the reader read it.`);
lines.push('');
lines.push('## Totals');
lines.push('');
lines.push(`**${passed} of ${results.length} node tests pass** (${known} known failures, ${failed.length} other failures); ${rewrittenPassed} of ${passed} passing cases still pass after modelbridge rewrites the model.`);
lines.push('');
lines.push('| | cases |');
lines.push('|---|---:|');
lines.push(`| node test directories | ${total} |`);
lines.push(`| run (supported ops and types) | ${results.length} |`);
lines.push(`| passed | ${passed} |`);
lines.push(`| known failures | ${known} |`);
lines.push(`| other failures | ${failed.length} |`);
lines.push(`| passed after rewriting | ${rewrittenPassed} |`);
lines.push(`| not run: ops the runtime lacks | ${new Set([...unsupportedOps.values()].flat()).size} |`);
lines.push(`| not run: element types the runtime does not compute on | ${unsupportedTypes.length} |`);
lines.push(`| not run: not readable into the IR | ${unreadable.length} |`);
lines.push('');
lines.push(`Ops tried: ${perOp.size}, of which ${opsPassing} pass every case that uses them.`);
lines.push('');
lines.push('## Per op');
lines.push('');
lines.push('A case counts for every op its graph uses (expanded function tests use several).');
lines.push('');
lines.push('| op | cases | passed | failed | passed after rewriting |');
lines.push('|---|---:|---:|---:|---:|');
for (const [op, row] of [...perOp].sort((a, b) => a[0].localeCompare(b[0]))) {
  lines.push(`| ${op} | ${row.tried} | ${row.passed} | ${row.tried - row.passed} | ${row.rewritten} |`);
}
lines.push('');
lines.push('## Failures');
lines.push('');
if (known + failed.length === 0 && rewrittenFailed.length === 0) lines.push('None.');
for (const r of results.filter((r) => r.status !== 'pass' || r.rewritten === 'fail')) {
  lines.push(`- \`${r.name}\` (${r.status === 'known' ? 'known' : 'failed'}): ${r.reason.replace(/\|/g, '\\|')}`);
}
lines.push('');
lines.push('## Not run');
lines.push('');
lines.push(`Ops the runtime has no kernel for (cases): ${[...unsupportedOps].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0])).map(([op, names]) => `${op} ${names.length}`).join(', ') || 'none'}.`);
lines.push('');
lines.push(`Element types the runtime does not compute on (cases): ${countBy(unsupportedTypes.flatMap((t) => t.dtypes)).map(([d, n]) => `${d} ${n}`).join(', ') || 'none'}.`);
lines.push('');
lines.push(`Not readable into the IR (cases): ${countBy(unreadable.map((u) => u.reason)).map(([r, n]) => `${r} (${n})`).join('; ') || 'none'}.`);
lines.push('');

writeFileSync(OUT, lines.join('\n'));
console.log(`ONNX node tests: ${passed} of ${results.length} run pass (${known} known failures, ${failed.length} other failures); ${rewrittenPassed} pass after rewriting; ${perOp.size} ops tried; not run: ${total - results.length}`);
console.log(`wrote ${relative(ROOT, OUT)}`);
process.exit(failed.length + rewrittenFailed.length === 0 ? 0 : 1);
