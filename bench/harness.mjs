// What every bench section shares: paths, the target list, formatting, fresh-process workers and
// the interleaved (ABBA) measurement of a candidate against its baseline.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GB, median, MiB, runPythonScript, runWorker } from './util.mjs';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const WORK = join(ROOT, 'bench', '.work');
export const PYTHON = join(ROOT, '.peers', 'venv', 'bin', 'python');
export const PY_DIR = join(ROOT, 'bench', 'py');
export const IO_WORKER = join(ROOT, 'bench', 'io-worker.mjs');
export const RSS_SLACK = 64 * MiB;

export const log = (...args) => console.error('[bench]', ...args);

// ---------------------------------------------------------------------------------------------
// Targets: every target the brief sets, checked as the numbers come in, summarised at the end.
// Ratios that have no target (smaller models, peers) are listed beside them.

export const targets = [];
export function target(what, measured, goal, met) {
  targets.push({ what, measured, goal, met });
}

export const ratios = [];
/** A ratio worth a line in the summary although the brief sets no target for it. */
export function noted(what, measured, note = '') {
  ratios.push({ what, measured, note });
}

// ---------------------------------------------------------------------------------------------
// Formatting

export const f = (n, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : String(n));
export const mib = (bytes) => `${f(bytes / MiB, 0)} MiB`;
export const ratio = (r) => `${r >= 0.1 ? f(r, 2) : r.toPrecision(2)}x`;
export const yes = (met) => (met ? 'yes' : '**NO**');
export const secondsList = (s) => s.runs.map((r) => f(r.seconds, 3)).join(', ');

export function table(headers, rows) {
  // a '|' inside a cell (a failure's message) would split it: escaped, as Markdown allows
  const line = (cells) => `| ${cells.map((c) => String(c).replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Measuring

/** Total bytes of a file, or of every file under a directory. */
export function sizeOf(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((n, name) => n + sizeOf(join(path, name)), 0);
}

/** Flushes dirty pages, so a run never pays for the previous run's deferred writes or discards. */
export function sync() {
  spawnSync('sync');
}

/** Wall seconds and peak RSS of a command in a fresh process after `sync`; a failure is returned, not thrown. */
export function timed(command, args, outputs = []) {
  for (const out of outputs) rmSync(out, { recursive: true, force: true });
  sync();
  const report = join(WORK, 'command-time.txt');
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', '-o', report, command, ...args], { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } });
  const [seconds, kib] = readFileSync(report, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  if (r.status !== 0) return { failed: (r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`).slice(0, 300), seconds, maxRSS: kib * 1024 };
  return { seconds, maxRSS: kib * 1024, stdout: r.stdout };
}

/** One io-worker measurement in a fresh process; `outputs` are removed first. */
export function io(args, outputs = []) {
  for (const out of outputs) rmSync(out, { recursive: true, force: true });
  sync();
  return runWorker(IO_WORKER, args);
}

/** Runs a script of bench/py in a fresh interpreter after removing `outputs`; it prints one JSON line last. */
export function py(script, args, outputs = []) {
  for (const out of outputs) rmSync(out, { recursive: true, force: true });
  sync();
  return runPythonScript(PYTHON, join(PY_DIR, script), args, { env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3', PYTHONDONTWRITEBYTECODE: '1' } });
}

/**
 * Summary of repeated runs moving `bytes` bytes: median and best seconds, throughput, worst peak RSS.
 */
export function summarize(runs, bytes) {
  const seconds = median(runs.map((r) => r.seconds));
  const best = Math.min(...runs.map((r) => r.seconds));
  return { seconds, best, gbps: bytes / GB / seconds, bestGbps: bytes / GB / best, maxRSS: Math.max(...runs.map((r) => r.maxRSS)), runs };
}

/**
 * `rounds` rounds of candidate and baseline, interleaved ABBA so disk drift hits both alike,
 * after one untimed run of each (the first large write after making a file is often far slower).
 * Each function runs one measurement and returns the worker's result.
 */
export function abba(rounds, bytes, baseline, candidate, { warmUp = true } = {}) {
  if (warmUp) {
    baseline();
    candidate();
  }
  const base = [];
  const cand = [];
  for (let i = 0; i < rounds; i++) {
    const pair = [() => base.push(baseline()), () => cand.push(candidate())];
    if (i % 2) pair.reverse();
    for (const run of pair) run();
  }
  return { baseline: summarize(base, bytes), candidate: summarize(cand, bytes) };
}

/** Throws unless every checksum equals the expected one (a wrong conversion must not look fast). */
export function checkSums(expected, found) {
  for (const [what, sum] of Object.entries(found)) {
    if (sum !== expected) throw new Error(`${what}: data checksum ${sum} differs from the source's ${expected}`);
  }
}

/** The Python peers' result summary: median seconds (and of their load/save parts), worst RSS. */
export function summarizePeer(runs, bytes) {
  return {
    ...summarize(runs, bytes),
    load: median(runs.map((r) => r.load)),
    save: median(runs.map((r) => r.save)),
    baseRSS: Math.max(...runs.map((r) => r.baseRSS)),
  };
}

// ---------------------------------------------------------------------------------------------
// Report pieces shared by the format sections

export const THROUGHPUT_HEADERS = ['operation', 'modelbridge s', 'modelbridge GB/s', 'baseline', 'baseline s', 'baseline GB/s', 'ratio (modelbridge / baseline throughput)', 'ratio of best runs', 'target'];

/** One row of a throughput table; `goal` is a minimum ratio, or undefined for no target. */
export function throughputRow(operation, mb, baselineName, base, goal) {
  const r = mb.gbps / base.gbps;
  return [operation, f(mb.seconds, 3), f(mb.gbps), baselineName, f(base.seconds, 3), f(base.gbps), ratio(r), ratio(mb.bestGbps / base.bestGbps), goal === undefined ? '-' : `>= ${f(goal)}x: ${yes(r >= goal)}`];
}

/**
 * The peak RSS table: rows [process, rss, limited] where limited says the model + 64 MiB target
 * applies (the format streams); those rows are also added to the target list under `label`.
 */
export function rssRows(rows, size, label) {
  return rows.map(([what, rss, limited]) => {
    const met = rss <= size + RSS_SLACK;
    if (limited) target(`${label}: ${what} peak RSS`, mib(rss), `<= model + 64 MiB = ${mib(size + RSS_SLACK)}`, met);
    return [what, mib(rss), f(rss / size, 3), limited ? yes(met) : `(${met ? 'within' : 'above'}; no target)`];
  });
}

export const RSS_HEADERS = ['process', 'peak RSS', 'RSS / model size', '<= model + 64 MiB'];

// ---------------------------------------------------------------------------------------------
// bench/RESULTS.md by sections: each section's text sits between two HTML comments (invisible
// when rendered), so a run of some sections (BENCH_SECTIONS=formats,models, or a section module
// run on its own) replaces just those in place and leaves the others as measured before.

export const RESULTS = join(ROOT, 'bench', 'RESULTS.md');
const OPEN = (name) => `<!-- bench section ${name} -->`;
const CLOSE = (name) => `<!-- end of bench section ${name} -->`;

/** A section's text between its markers. */
export function marked(name, text) {
  return `${OPEN(name)}\n${text.trim()}\n${CLOSE(name)}`;
}

/** The text of a marked section of `results`, or undefined. */
export function sectionText(results, name) {
  const a = results.indexOf(OPEN(name));
  const b = results.indexOf(CLOSE(name));
  return a >= 0 && b > a ? results.slice(a + OPEN(name).length, b).trim() : undefined;
}

const headingKey = (line) => line.split(':')[0].trim();

/**
 * Where a section stands in a RESULTS.md written before the markers: from the line with its first
 * heading (compared up to the first ':', since the rest holds measured sizes) to the next heading
 * that is not one of its own, or a marker. Undefined when the heading is not there.
 */
function unmarkedRange(results, text) {
  const own = new Set(text.split('\n').filter((l) => l.startsWith('## ')).map(headingKey));
  const first = text.trim().split('\n')[0];
  const lines = results.split('\n');
  const start = lines.findIndex((l) => l.startsWith('## ') && headingKey(l) === headingKey(first));
  if (start < 0) return undefined;
  let end = start + 1;
  while (end < lines.length && !(lines[end].startsWith('## ') && !own.has(headingKey(lines[end]))) && !lines[end].startsWith('<!-- bench ')) end++;
  const offset = (i) => lines.slice(0, i).reduce((n, l) => n + l.length + 1, 0);
  return [offset(start), Math.min(offset(end), results.length)];
}

/**
 * `results` with each of `sections` ({name, text}) replaced in place: between its markers, else
 * (a file from before the markers) over its old heading's range, else appended at the end.
 */
export function replaceSections(results, sections) {
  let out = results;
  for (const { name, text } of sections) {
    const block = marked(name, text);
    const a = out.indexOf(OPEN(name));
    const b = out.indexOf(CLOSE(name));
    if (a >= 0 && b > a) {
      out = `${out.slice(0, a)}${block}${out.slice(b + CLOSE(name).length)}`;
      continue;
    }
    const range = unmarkedRange(out, text);
    out = range ? `${out.slice(0, range[0])}${block}\n\n${out.slice(range[1]).trimStart()}` : `${out.trimEnd()}\n\n${block}\n`;
  }
  return out.endsWith('\n') ? out : `${out}\n`;
}

/**
 * The rows of a summary table written by table() whose first column is "section": each row's
 * cells (unescaped). Rows of an older table without that column are returned with section '-'.
 */
export function tableRows(text) {
  const lines = (text ?? '').split('\n').filter((l) => l.startsWith('| '));
  if (lines.length < 2) return [];
  const cells = (l) => l.slice(2, -2).split(/(?<!\\) \| /).map((c) => c.replaceAll('\\|', '|'));
  const sectioned = cells(lines[0])[0] === 'section';
  return lines.slice(2).map((l) => (sectioned ? cells(l) : ['-', ...cells(l)]));
}
