// The newer formats as users type them (issues 15, 16, 17 and 19, item 5 of each): the CLI with
// its defaults (verification on: every tensor read back and compared, outputs compared on a
// generated input) against what a Python user would run instead, on real models of realistic size
// built from code with random weights by the peers' venv and cached in bench/.cache/:
//   - .pt2 (torch.export.save of torchvision's ViT-B/16, ~330 MiB) -> ONNX, against
//     torch.export.load + torch.onnx.export of the same program (bench/py/pt2_onnx_peer.py);
//   - .keras (a Keras 3 Sequential of 4 Dense(4096) layers, 256 MiB) -> safetensors, against
//     keras.saving.load_model + safetensors.numpy.save_file (bench/py/keras_peer.py);
//   - the same Keras model exported as a SavedModel (model.export) -> .tflite, against
//     tf.lite.TFLiteConverter.from_saved_model(...).convert() + write (bench/py/tflite_peer.py);
//   - the .pt2 -> ONNX conversion again inside headless Chromium (dist/browser.js in a bare page,
//     bench/browser-worker.mjs), against the Node CLI's runs of the first row.
// Every run is a fresh process timed by GNU time (wall seconds, peak RSS); for the page, the time
// is taken inside it and the peak RSS is its renderer's. The issues set no numeric target for
// these rows: they are reported as ratios (peer time / modelbridge time, > 1: modelbridge faster).
//
//   part of `npm run bench` (section "formats"), or alone: BENCH_SECTIONS=formats npm run bench
//   (BENCH_FORMATS_ROUNDS=N rounds, default 3)
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { f, io, log, mib, noted, py, PYTHON, ratio, ROOT, sizeOf, table, timed, WORK } from './harness.mjs';
import { median, runWorker } from './util.mjs';

const CLI = join(ROOT, 'bin', 'modelbridge.cjs');
const CACHE = join(ROOT, 'bench', '.cache');
const BROWSER_WORKER = join(ROOT, 'bench', 'browser-worker.mjs');
const CHROMIUM = process.env.MODELBRIDGE_CHROMIUM ?? '/usr/bin/chromium';
// Every run here takes 5-30 s; 3 interleaved rounds (the median) per side. Why not more: the
// section already takes ~4-5 minutes on a quieter 2-core machine (1.5 min a round; 10.6 min under a load average of 7-11,
// where single runs of one side spread from 17 to 32 s and the median still kept the order of the
// sides), and the ratios it reports are 0.4x-2.5x, not a few percent either way. No untimed
// warm-up round: the inputs are read once beforehand (page cache warm), which is what the
// warm-up was for in the shorter sections.
const ROUNDS = Number(process.env.BENCH_FORMATS_ROUNDS ?? 3);
const HEADING = '## Newer formats as users type them: .pt2, .keras, SavedModel -> .tflite, in the browser';
const KERAS_LAYERS = 4;
const KERAS_DIM = 4096;

/**
 * Models in bench/.cache, made by a bench/py script (its first arguments are the output paths,
 * then `args`) when any is missing: written under temporary names first and renamed after, so a
 * killed run never leaves half a model to be measured later.
 */
function cached(names, script, args = []) {
  const paths = names.map((n) => join(CACHE, n));
  if (paths.every((p) => existsSync(p))) return paths;
  mkdirSync(CACHE, { recursive: true });
  // "partial-" in front rather than behind: model.save insists on a name ending in .keras
  const temps = names.map((n) => join(CACHE, `partial-${n}`));
  for (const p of [...paths, ...temps]) rmSync(p, { recursive: true, force: true });
  log(`formats: writing ${names.map((n) => `bench/.cache/${n}`).join(' and ')} with bench/py/${script}`);
  py(script, [...temps, ...args]);
  temps.forEach((t, i) => renameSync(t, paths[i]));
  return paths;
}

/** The CLI converting src to dst with its defaults; the verification line it printed. A failure is returned, not thrown. */
function convert(src, dst) {
  const r = timed(process.execPath, [CLI, 'convert', src, dst, '--force'], [dst]);
  if (!r.failed) {
    r.verified = r.stdout.split('\n').find((l) => l.startsWith('verified:')) ?? null;
    if (!r.verified) r.failed = 'printed no "verified:" line';
  }
  rmSync(dst, { recursive: true, force: true });
  return r;
}

/**
 * A Python peer run (bench/py script printing seconds and maxRSS); a failure is returned, not
 * thrown. `extra` are other files it writes beside dst (torch.onnx.export's DST.data).
 */
function peer(script, src, dst, extra = []) {
  const outputs = [dst, ...extra];
  try {
    const r = py(script, [src, dst], outputs);
    if (!existsSync(dst)) return { failed: `${script} wrote no ${dst}`, seconds: NaN, maxRSS: NaN };
    return r;
  } catch (error) {
    return { failed: String(error.message ?? error).split('\n').filter(Boolean).slice(-1)[0]?.slice(0, 300) ?? 'failed', seconds: NaN, maxRSS: NaN };
  } finally {
    for (const out of outputs) rmSync(out, { recursive: true, force: true });
  }
}

/** The page converting src to `format` in Chromium (a fresh browser per run); maxRSS is the renderer's peak. */
function inBrowser(src, format) {
  try {
    const r = runWorker(BROWSER_WORKER, [src, format]);
    return { ...r, maxRSS: r.rendererRSS };
  } catch (error) {
    return { failed: String(error.message ?? error).split('\n').filter(Boolean).slice(-1)[0]?.slice(0, 300) ?? 'failed', seconds: NaN, maxRSS: NaN };
  }
}

/** ROUNDS of each function, interleaved (order reversed on odd rounds); median seconds, worst RSS. */
function rounds(fns) {
  const keys = Object.keys(fns);
  const runs = Object.fromEntries(keys.map((k) => [k, []]));
  for (let i = 0; i < ROUNDS; i++) for (const k of i % 2 ? [...keys].reverse() : keys) runs[k].push(fns[k]());
  return Object.fromEntries(
    keys.map((k) => {
      const rs = runs[k];
      const failed = rs.find((r) => r.failed)?.failed;
      return [k, { failed, seconds: failed ? NaN : median(rs.map((r) => r.seconds)), maxRSS: Math.max(...rs.map((r) => r.maxRSS).filter(Number.isFinite)), runs: rs, last: rs.at(-1) }];
    }),
  );
}

const seconds = (s) => (s.failed ? `fails: ${s.failed}` : f(s.seconds, 2));
const rss = (s) => (Number.isFinite(s.maxRSS) ? mib(s.maxRSS) : '-');
const runList = (s) => s.runs.map((r) => (r.failed ? 'fails' : f(r.seconds, 2))).join(', ');

/** One row: modelbridge against its baseline; the ratio is noted in the summary (no target is set). */
function row(issue, what, size, mb, baseName, base, verified, note = 'no target; ratio of times, > 1: modelbridge faster') {
  const r = base.seconds / mb.seconds;
  const measured = mb.failed || base.failed ? `fails: ${mb.failed ?? base.failed}` : ratio(r);
  noted(`issue ${issue}: ${what} vs ${baseName}`, measured, note);
  return [`${issue}`, what, mib(size), seconds(mb), rss(mb), baseName, seconds(base), rss(base), mb.failed || base.failed ? '-' : ratio(r), verified ?? '-'];
}

export function formatsSection(python = existsSync(PYTHON)) {
  if (!python) return `${HEADING}\n\nSkipped: ${PYTHON} does not exist, and the models are built with PyTorch and Keras.\n`;
  const dir = join(WORK, 'formats');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const rows = [];
  const runs = [];
  const notes = [];
  try {
    const [vit] = cached(['vit_b_16.pt2'], 'make_vit_pt2.py');
    const stack = `dense${KERAS_LAYERS}x${KERAS_DIM}`;
    const [keras, savedModel] = cached([`${stack}.keras`, `${stack}-savedmodel`], 'make_keras.py', [String(KERAS_LAYERS), String(KERAS_DIM)]);
    log('formats: reading the models once (page cache warm)');
    io(['read-plain', vit, keras, savedModel]);

    const browser = existsSync(CHROMIUM);
    log(`formats: ViT-B/16 .pt2 -> ONNX, CLI vs torch.export.load + torch.onnx.export${browser ? ' vs the page in Chromium' : ''}`);
    const pt2 = rounds({
      peer: () => peer('pt2_onnx_peer.py', vit, join(dir, 'py.onnx'), [join(dir, 'py.onnx.data')]),
      mb: () => convert(vit, join(dir, 'vit.onnx')),
      ...(browser ? { page: () => inBrowser(vit, 'onnx') } : {}),
    });
    const vitSize = sizeOf(vit);
    rows.push(row(15, 'ViT-B/16 `.pt2` -> ONNX', vitSize, pt2.mb, 'Python `torch.export.load` + `torch.onnx.export`', pt2.peer, pt2.mb.last.verified));
    runs.push(`.pt2 -> ONNX: CLI ${runList(pt2.mb)}; Python ${runList(pt2.peer)}`);

    log('formats: .keras -> safetensors, CLI vs keras.saving.load_model + save_file');
    const k = rounds({ peer: () => peer('keras_peer.py', keras, join(dir, 'py.safetensors')), mb: () => convert(keras, join(dir, 'keras.safetensors')) });
    rows.push(row(16, `Dense stack (${KERAS_LAYERS} x Dense(${KERAS_DIM})) \`.keras\` -> safetensors`, sizeOf(keras), k.mb, 'Python `keras.saving.load_model` + `safetensors.numpy.save_file`', k.peer, k.mb.last.verified));
    runs.push(`.keras -> safetensors: CLI ${runList(k.mb)}; Python ${runList(k.peer)}`);

    log('formats: SavedModel -> .tflite, CLI vs TFLiteConverter');
    const t = rounds({ peer: () => peer('tflite_peer.py', savedModel, join(dir, 'py.tflite')), mb: () => convert(savedModel, join(dir, 'model.tflite')) });
    rows.push(row(17, 'the same model as a SavedModel (`model.export`) -> `.tflite`', sizeOf(savedModel), t.mb, 'Python `TFLiteConverter.from_saved_model(...).convert()` + write', t.peer, t.mb.last.verified));
    runs.push(`SavedModel -> .tflite: CLI ${runList(t.mb)}; Python ${runList(t.peer)}`);

    if (browser) {
      rows.push(row(19, 'ViT-B/16 `.pt2` -> ONNX in Chromium (dist/browser.js, timed in the page)', vitSize, pt2.page, 'the Node CLI, same conversion (row 15)', pt2.mb, pt2.page.last?.verified, 'no target; ratio of times, > 1: the page is faster than the Node CLI'));
      runs.push(`in the page: ${runList(pt2.page)}`);
      const p = pt2.page.last;
      if (p && !p.failed) {
        notes.push(
          `In the page (last run): read ${f(p.read, 2)} s, write ${f(p.write, 2)} s, verify ${f(p.verify, 2)} s; ${mib(p.bytes)} out; cross-origin isolated (the WebAssembly SIMD kernel's shared memory): ${p.isolated ? 'yes' : 'no'}.`,
        );
      }
    } else {
      notes.push(`The in-browser row was skipped: no Chromium at ${CHROMIUM} (scripts/browser-env.sh installs Debian's chromium).`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return [
    HEADING,
    '',
    `Each CLI row is \`node bin/modelbridge.cjs convert IN OUT\` with its defaults (written, read back, every tensor compared, outputs compared on a generated input), in a fresh process timed by GNU time (wall seconds, Node's start included; peak RSS). ` +
      `Each Python peer runs in a fresh interpreter; its time excludes the import of torch / keras / tensorflow (the RSS includes it) and includes an fsync of its output, as modelbridge's writers fsync; \`torch.onnx.export(ep, f=...)\` runs with its defaults, as a user types it (dynamo=True, its ONNX optimizer on, the weights in a .data file beside the .onnx). ` +
      `Median of ${ROUNDS} runs of each side, interleaved (the order reversed every other round), after one plain read of the inputs so the page cache is warm. ` +
      `"ratio" is the baseline's time over modelbridge's (> 1: modelbridge is faster); the issues set no numeric target for these rows. ` +
      'The models are built from code with random weights in the peers\' venv and cached in bench/.cache/: torchvision\'s `vit_b_16(weights=None)` exported by `torch.export.export(...).run_decompositions()` and `torch.export.save` (bench/py/make_vit_pt2.py); ' +
      `a Keras 3 Sequential of ${KERAS_LAYERS} \`Dense(${KERAS_DIM})\` layers saved by \`model.save\` and exported by \`model.export\` (bench/py/make_keras.py; Keras's SavedModel export stores the variables twice, hence its size). ` +
      'The in-browser row runs `readModel(file)` + `convertModelBytes(model, "onnx")` + the output gathered into a Blob (what a download takes) in a bare page over dist/browser.js, in Debian\'s headless Chromium driven by playwright-core, a fresh browser per run, timed inside the page from the selected File to the Blob; its peak RSS is the page\'s renderer process (VmHWM). ' +
      'Its ratio is the Node CLI\'s time over the page\'s (the CLI also starts Node and writes and fsyncs a file; the page holds input and output in memory).',
    '',
    table(['issue', 'conversion (modelbridge)', 'model', 'modelbridge s', 'modelbridge peak RSS', 'baseline', 'baseline s', 'baseline peak RSS', 'ratio (baseline time / modelbridge time)', 'what verification said'], rows),
    '',
    ...notes.flatMap((n) => [n, '']),
    `Runs (s): ${runs.join('; ')}.`,
    '',
  ].join('\n');
}
