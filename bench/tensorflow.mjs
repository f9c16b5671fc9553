// 5. SavedModel -> TF.js graph model, 6. SavedModel -> safetensors and 7. SavedModel read + write
// (-> SavedModel), all from one 1 GiB SavedModel written by real TensorFlow: modelbridge against a
// plain copy of the SavedModel directory; the TF.js row also against tensorflowjs_converter where
// that converter is installed (.peers/tfjs-venv, made by scripts/peers-env.sh), the SavedModel row
// also against TensorFlow's own tf.saved_model.load + tf.saved_model.save (bench/py/tf_peer.py).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  abba, checkSums, f, io, log, mib, noted, py, PYTHON, ratio, ROOT, RSS_HEADERS, rssRows, secondsList, sizeOf, summarize, summarizePeer, sync, table, target, THROUGHPUT_HEADERS, throughputRow, WORK,
} from './harness.mjs';

// A 1 GiB model and three conversions of ~2-7 s each on this machine: 4 rounds each (an even number,
// so ABBA gives both sides the same share of first and second places). tensorflowjs_converter takes
// ~185 s and ~20 GiB of RSS per run on this model, so it runs once: its two runs of the earlier
// benches differed by 2% (184.4 s, 188.4 s) while it is ~74x slower than modelbridge, so a second
// run (3 minutes, an eighth of the whole bench) changed nothing the table says.
const ROUNDS = 4;
const CONVERTER_ROUNDS = Number(process.env.BENCH_CONVERTER_ROUNDS ?? 1);
// The SavedModel read + write row: copy ~0.5 s, modelbridge ~1.5-2 s, TensorFlow ~2 s + ~2 s of
// import per run; 6 rounds, as the first runs after the other rows' writes are often slow here.
const SM_ROUNDS = 6;
const LAYERS = 4;
const DIM = 8192;
export const TFJS_CONVERTER = join(ROOT, '.peers', 'tfjs-venv', 'bin', 'tensorflowjs_converter');

/** Wall seconds and peak RSS of a command (GNU time), in a fresh process after `sync`. */
export function timeCommand(command, args, outputs = []) {
  for (const out of outputs) rmSync(out, { recursive: true, force: true });
  sync();
  const report = join(WORK, 'time.txt');
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', '-o', report, command, ...args], { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${r.stderr.slice(-4000)}`);
  const [seconds, kib] = readFileSync(report, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  return { seconds, maxRSS: kib * 1024 };
}

function measure() {
  const dir = join(WORK, 'tensorflow');
  const src = join(dir, 'savedmodel');
  const copyDir = join(dir, 'copy');
  const tfjsOut = join(dir, 'tfjs');
  const stOut = join(dir, 'model.safetensors');
  mkdirSync(dir, { recursive: true });
  try {
    log('tensorflow: making a 1 GiB SavedModel with tf.saved_model.save');
    const made = py('make_savedmodel.py', [src, String(LAYERS), String(DIM)]);
    const size = sizeOf(src);
    const copy = () => io(['copy', src, copyDir], [copyDir]);
    io(['read-plain', src]);

    log('tensorflow: SavedModel -> TF.js vs copy');
    const tfjs = abba(ROUNDS, size, copy, () => io(['convert', src, tfjsOut, JSON.stringify({ to: 'tfjs' })], [tfjsOut]));
    const tfjsSum = io(['sum', tfjsOut]).sum;
    const tfjsFiles = { bytes: sizeOf(tfjsOut), shards: tfjsFilesCount(tfjsOut) };
    rmSync(tfjsOut, { recursive: true, force: true });

    let converter;
    if (existsSync(TFJS_CONVERTER)) {
      log('tensorflow: tensorflowjs_converter');
      const convOut = join(dir, 'tfjs-converter');
      const args = ['--input_format=tf_saved_model', '--output_format=tfjs_graph_model', '--signature_name=serving_default', '--saved_model_tags=serve', src, convOut];
      const runs = [];
      const cli = [];
      for (let i = 0; i < CONVERTER_ROUNDS; i++) {
        runs.push(timeCommand(TFJS_CONVERTER, args, [convOut]));
        cli.push(timeCommand(process.execPath, [join(ROOT, 'bin', 'modelbridge.cjs'), 'convert', src, tfjsOut, '--to', 'tfjs', '--no-verify'], [tfjsOut]));
      }
      rmSync(tfjsOut, { recursive: true, force: true });
      const importOnly = timeCommand(join(ROOT, '.peers', 'tfjs-venv', 'bin', 'python'), ['-c', 'import tensorflowjs.converters.converter']);
      let sum;
      try {
        sum = io(['sum', convOut]).sum;
      } catch (error) {
        log(`modelbridge could not read the converter's output: ${error.message.split('\n')[0]}`);
      }
      rmSync(convOut, { recursive: true, force: true });
      converter = { peer: summarize(runs, size), cli: summarize(cli, size), importSeconds: importOnly.seconds, sum };
    }

    log('tensorflow: SavedModel -> safetensors vs copy');
    const st = abba(ROUNDS, size, copy, () => io(['convert', src, stOut], [stOut]));
    const stSum = io(['sum', stOut]).sum;
    rmSync(stOut, { force: true });

    log('tensorflow: SavedModel read + write (-> SavedModel) vs copy vs tf.saved_model.load + save');
    const smOut = join(dir, 'resaved-modelbridge');
    const tfOut = join(dir, 'resaved-tensorflow');
    const sm = interleave3(SM_ROUNDS, size, copy, () => io(['convert', src, smOut, JSON.stringify({ to: 'savedmodel' })], [smOut]), () => py('tf_peer.py', [src, tfOut], [tfOut]));
    const smSum = io(['sum', smOut]).sum;
    const tfSum = io(['sum', tfOut]).sum;
    const smFiles = { modelbridge: sizeOf(smOut), tensorflow: sizeOf(tfOut) };
    rmSync(smOut, { recursive: true, force: true });
    rmSync(tfOut, { recursive: true, force: true });
    const tfImport = timeCommand(PYTHON, ['-c', 'import tensorflow']);
    rmSync(copyDir, { recursive: true, force: true });
    checkSums(made.sum, {
      'TF.js model modelbridge wrote': tfjsSum,
      'safetensors file modelbridge wrote': stSum,
      'SavedModel modelbridge wrote': smSum,
      'SavedModel tf.saved_model.save wrote': tfSum,
    });
    // The converter may rewrite weights (folding, fusing); its sum is reported, not required.
    if (converter) converter.sumAgrees = converter.sum === made.sum;
    return { size, made, tfjs, tfjsFiles, converter, st, sm: { ...sm, files: smFiles, importSeconds: tfImport.seconds } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * abba() for three sides: one untimed run of each, then `rounds` rounds in the order A B C, then
 * C B A, and so on, so each pair of sides swaps places every round (the copy and TensorFlow take
 * turns at first and last; modelbridge sits between them). Returns the copy and modelbridge as
 * abba() does ({baseline, candidate}) and TensorFlow's runs as `peer` (summarizePeer).
 */
function interleave3(rounds, bytes, baseline, candidate, peer) {
  baseline();
  candidate();
  peer();
  const runs = [[], [], []];
  const sides = [baseline, candidate, peer];
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 ? [2, 1, 0] : [0, 1, 2];
    for (const k of order) runs[k].push(sides[k]());
  }
  return { baseline: summarize(runs[0], bytes), candidate: summarize(runs[1], bytes), peer: summarizePeer(runs[2], bytes) };
}

function tfjsFilesCount(path) {
  return spawnSync('ls', [path], { encoding: 'utf8' }).stdout.split('\n').filter((n) => n.endsWith('.bin')).length;
}

export function tensorflowSections(python) {
  const titles = [
    '## 5. SavedModel -> TF.js graph model: 1 GiB SavedModel written by real TensorFlow',
    '## 6. SavedModel (TensorBundle) -> safetensors: the same 1 GiB SavedModel',
    "## 7. SavedModel read + write (SavedModel -> SavedModel): the same 1 GiB SavedModel, vs TensorFlow's own load + save",
  ];
  if (!python) return titles.map((t) => [t, '', 'Skipped: the peers venv does not exist (the SavedModel is written by TensorFlow in it).', ''].join('\n')).join('\n');
  const m = measure();
  const { size, tfjs, st, converter, sm } = m;
  const model =
    `The model: an MLP of ${LAYERS} dense layers (MatMul [${DIM}, ${DIM}] + BiasAdd, Relu between them) as a \`tf.Module\` saved by ` +
    `\`tf.saved_model.save\` of TensorFlow ${m.made.version} (signature serving_default, x [None, ${DIM}]): ${mib(size)} in the directory, ` +
    'the variables in one TensorBundle data shard. ';
  const method =
    `Median of ${ROUNDS} runs interleaved ABBA with a plain copy of the whole SavedModel directory (after one untimed run of each), fresh ` +
    'process per run after `sync`, page cache warm, writers fsync; the library call `convertModel` with no read-back verification. ' +
    "The word sum of the variables TensorFlow was given equals that of the converted model's weights.";

  // --- TF.js
  const tfjsRatio = tfjs.candidate.gbps / tfjs.baseline.gbps;
  // The brief's conversion target covers every pair of formats; TF.js shards are written as a stream, so the RSS target applies too.
  target('SavedModel (TensorBundle) 1 GiB -> TF.js throughput vs plain copy', ratio(tfjsRatio), '>= 0.80x', tfjsRatio >= 0.8);
  if (converter) noted('SavedModel (1 GiB) -> TF.js: modelbridge CLI vs tensorflowjs_converter', `${ratio(converter.peer.seconds / converter.cli.seconds)}`);
  const tfjsRss = rssRows(
    [
      ['modelbridge convert SavedModel -> TF.js', tfjs.candidate.maxRSS, true],
      ['plain copy', tfjs.baseline.maxRSS, false],
      ...(converter ? [['tensorflowjs_converter (CLI)', converter.peer.maxRSS, false], ['modelbridge CLI convert --to tfjs --no-verify', converter.cli.maxRSS, false]] : []),
    ],
    size,
    'TF.js',
  );
  const converterText = converter
    ? [
        `tensorflowjs_converter on the same SavedModel (\`--input_format=tf_saved_model --output_format=tfjs_graph_model\`), wall time and peak RSS from GNU time, ` +
          `alternating with modelbridge's CLI (\`modelbridge convert <dir> <out> --to tfjs --no-verify\`) measured the same way; ${CONVERTER_ROUNDS === 1 ? 'one run each' : `median of ${CONVERTER_ROUNDS}`}. ` +
          `The converter's start-up (\`import tensorflowjs.converters.converter\` alone) takes ${f(converter.importSeconds, 2)} s of its time:`,
        '',
        table(
          ['', 'wall s', 'GB/s', 'peak RSS'],
          [
            ['tensorflowjs_converter', f(converter.peer.seconds, 2), f(converter.peer.gbps), mib(converter.peer.maxRSS)],
            ['modelbridge CLI', f(converter.cli.seconds, 2), f(converter.cli.gbps), mib(converter.cli.maxRSS)],
            ['ratio (modelbridge speed-up)', ratio(converter.peer.seconds / converter.cli.seconds), `without the converter's import: ${ratio((converter.peer.seconds - converter.importSeconds) / converter.cli.seconds)}`, `RSS ${f(converter.cli.maxRSS / converter.peer.maxRSS, 3)}x`],
          ],
        ),
        '',
        `Runs (s): tensorflowjs_converter ${secondsList(converter.peer)}; modelbridge CLI ${secondsList(converter.cli)}. ` +
          (converter.sumAgrees ? "The converter's weights have the same word sum as TensorFlow's variables." : "**The converter's output does not have the variables' word sum** (it rewrote the weights, or modelbridge could not read its output)."),
        '',
        CONVERTER_EXPLANATION,
      ]
    : [
        `**tensorflowjs_converter is not installed in the peers environment** (${TFJS_CONVERTER} does not exist: the \`tensorflowjs\` pip package ` +
          'is not installed next to the other peers), so this row compares modelbridge with a plain copy of the bytes only.',
      ];

  const tfjsSection = [
    titles[0],
    '',
    model +
      `modelbridge writes model.json and ${m.tfjsFiles.shards} weight shards of 4 MiB (${mib(m.tfjsFiles.bytes)}). ` +
      method,
    '',
    table(THROUGHPUT_HEADERS, [throughputRow('convert SavedModel -> TF.js', tfjs.candidate, 'plain copy of the SavedModel directory', tfjs.baseline, 0.8)]),
    '',
    `Runs (s): convert ${secondsList(tfjs.candidate)}; copy ${secondsList(tfjs.baseline)}.`,
    '',
    ...converterText,
    '',
    `Peak RSS (worst of the runs; model ${mib(size)}). The TF.js writer streams: each weight goes from its range of the checkpoint's ` +
      'data shard into the 4 MiB shards a chunk at a time (`writeShards` in src/formats/tfjs/weights.ts), and the shards and model.json ' +
      'are committed as one atomic set with one pass of fsyncs at the end (`writeFilesAtomic` in src/core/atomic.ts). What is left of ' +
      "the gap to a plain copy is the checkpoint's CRC-32C: the TensorBundle reader verifies every variable as it streams, in JavaScript " +
      '(about 1.2 GB/s on this machine), on a worker thread beside the conversion (src/core/background-crc.ts), and the conversion waits ' +
      'for it at the end of each tensor. In a CPU profile of this conversion (`node --cpu-prof`, the same model at 256 MiB, outside the ' +
      'bench) the main thread spends about 35% in writes and fsyncs and 20% waiting for the checksum thread:',
    '',
    table(RSS_HEADERS, tfjsRss),
    '',
  ].join('\n');

  // --- safetensors
  const stRatio = st.candidate.gbps / st.baseline.gbps;
  target('SavedModel (TensorBundle) 1 GiB -> safetensors throughput vs plain copy', ratio(stRatio), '>= 0.80x', stRatio >= 0.8);
  const stRss = rssRows(
    [
      ['modelbridge convert SavedModel -> safetensors', st.candidate.maxRSS, true],
      ['plain copy', st.baseline.maxRSS, false],
    ],
    size,
    'SavedModel -> safetensors',
  );
  const stSection = [
    titles[1],
    '',
    model + method +
      ' The output is a runnable bundle: the graph is lifted to a torch.nn Sequential of Linear layers, so each [in, out] kernel is ' +
      'stored transposed as a [out, in] weight.',
    '',
    table(THROUGHPUT_HEADERS, [throughputRow('convert SavedModel -> safetensors', st.candidate, 'plain copy of the SavedModel directory', st.baseline, 0.8)]),
    '',
    `Runs (s): convert ${secondsList(st.candidate)}; copy ${secondsList(st.baseline)}.`,
    '',
    `Peak RSS (worst of the runs; model ${mib(size)}). The TensorBundle reader leaves the variables in the data shard (file ranges), ` +
      'and lifting the graph to Linear layers makes each kernel a lazy transpose (`transpose2d`, src/core/transpose.ts): when the ' +
      'safetensors writer streams it, the kernel is read band by band into a WebAssembly memory and each band transposed there with ' +
      'SIMD (src/core/wasm/transpose.wat), then written from that memory. The memory is kept for the next kernel, so the peak holds ' +
      'twice the largest kernel (2 x 256 MiB here), not the model. The transpose is work a copy does not do (about 1.6-2.2 GB/s for ' +
      "these kernels), and the checkpoint's CRC-32C is verified as it streams, on a worker thread (about 1.2 GB/s in JavaScript); in a " +
      'CPU profile (`node --cpu-prof`, the same model at 256 MiB, outside the bench) the main thread spends about 20% transposing, ' +
      '35% writing and syncing, and 10% waiting for the checksum thread:',
    '',
    table(RSS_HEADERS, stRss),
    '',
  ].join('\n');

  // --- SavedModel -> SavedModel
  const smRatio = sm.candidate.gbps / sm.baseline.gbps;
  const tfRatio = sm.candidate.gbps / sm.peer.gbps;
  target('SavedModel 1 GiB read + write (-> SavedModel) throughput vs plain copy', ratio(smRatio), '>= 0.80x', smRatio >= 0.8);
  noted(
    'SavedModel 1 GiB read + write: modelbridge vs tf.saved_model.load + tf.saved_model.save',
    `throughput ${ratio(tfRatio)}, peak RSS ${mib(sm.candidate.maxRSS)} vs ${mib(sm.peer.maxRSS)}`,
    tfRatio < 1 ? '< 1 means slower' : '',
  );
  const smRss = rssRows(
    [
      ['modelbridge read + write (convert SavedModel -> SavedModel)', sm.candidate.maxRSS, true],
      ['plain copy', sm.baseline.maxRSS, false],
      ['TensorFlow tf.saved_model.load + tf.saved_model.save', sm.peer.maxRSS, false],
    ],
    size,
    'SavedModel -> SavedModel',
  );
  const smSection = [
    titles[2],
    '',
    model +
      "modelbridge's read + write is `convertModel(dir, out, { to: 'savedmodel' })` (the io-worker's `convert`; the CLI's " +
      '`convert <dir> <out> --to savedmodel --no-verify`): it reads saved_model.pb (the TF2 object graph, its functions inlined, ' +
      'the captured variables resolved through the checkpoint), leaves the variables as file ranges of the data shard and streams them ' +
      "into a new TensorBundle (variables.index + one data shard, 8 MiB at a time) under a TF1-style MetaGraph (VarHandleOp variables, " +
      `a Saver, signature serving_default): ${mib(sm.files.modelbridge)} written. ` +
      "TensorFlow's own read + write (bench/py/tf_peer.py, TensorFlow " + `${m.made.version}` + ') is `m = tf.saved_model.load(src)`, which restores ' +
      'every variable from the checkpoint into memory, then `tf.saved_model.save(m, out, signatures=m.signatures)` and an fsync of ' +
      `every file it wrote (${mib(sm.files.tensorflow)}); its time excludes \`import tensorflow\` (${f(sm.importSeconds, 2)} s wall on its own), ` +
      "as modelbridge's excludes loading its modules. " +
      `Median of ${SM_ROUNDS} runs of each, the three interleaved (copy, modelbridge, TensorFlow, then the reverse; one untimed run of each first), ` +
      'fresh process per run after `sync`, page cache warm, writers fsync; no read-back verification. The word sum of the variables TensorFlow ' +
      'was given equals that of the variables in both rewritten SavedModels (modelbridge reads each back).',
    '',
    table(THROUGHPUT_HEADERS, [
      throughputRow('read + write SavedModel -> SavedModel', sm.candidate, 'plain copy of the SavedModel directory', sm.baseline, 0.8),
      throughputRow('read + write SavedModel -> SavedModel', sm.candidate, '`tf.saved_model.load` + `tf.saved_model.save` + fsync', sm.peer),
    ]),
    '',
    `Runs (s): modelbridge ${secondsList(sm.candidate)}; copy ${secondsList(sm.baseline)}; TensorFlow ${secondsList(sm.peer)} ` +
      `(load ${f(sm.peer.load, 3)} s, save ${f(sm.peer.save, 3)} s, medians).`,
    '',
    `Peak RSS (worst of the runs; model ${mib(size)}; TensorFlow's interpreter holds ${mib(sm.peer.baseRSS)} after \`import tensorflow\`, before loading). ` +
      'modelbridge leaves the variables in the data shard and streams them from there into the new one; TensorFlow holds every ' +
      'variable in memory between load and save:',
    '',
    table(RSS_HEADERS, smRss),
    '',
    SM_EXPLANATION,
    '',
  ].join('\n');
  return [tfjsSection, stSection, smSection].join('\n');
}

// Where tensorflowjs_converter's time and memory go, from cProfile of one run outside the bench.
const CONVERTER_EXPLANATION =
  "Where the converter's time goes: in a cProfile of one run on the same model at 256 MiB (4 layers of [4096, 4096], outside the bench: " +
  '28 s wall, 20 s of it system time) 3.4 s is importing tensorflowjs, 7.8 s freezing the variables into Const nodes of a GraphDef ' +
  '(`convert_variables_to_constants_v2`, which also rebuilds a concrete function around the frozen graph) and 13.5 s optimizing that graph ' +
  "(`optimize_graph`), of which 8.3 s are three Grappler calls (`TF_OptimizeGraphSerialized`), each taking and returning the whole " +
  'serialized GraphDef with every weight in it; most of the rest is protobuf copying and serialization of that GraphDef. Each of these ' +
  'steps holds another copy of the weights, hence a peak RSS of many times the model.';

// Why the SavedModel read + write row is where it is, from a CPU profile of the conversion
// (`node --cpu-prof`, the bench's 1 GiB model, outside the bench run).
const SM_EXPLANATION =
  'Where the time goes: the reader verifies every variable\'s CRC-32C as it streams (TensorFlow\'s BundleReader does the same, in C++ ' +
  'with the CPU\'s CRC instruction); here it is JavaScript at about 1.2 GB/s on a worker thread beside the copy (src/core/background-crc.ts), ' +
  'and the writer reuses each verified CRC instead of computing it again. In a CPU profile of this conversion (`node --cpu-prof`, the same ' +
  'model at 256 MiB, outside the bench) the main thread spends about half its time in writes and fsyncs and under a tenth waiting ' +
  'for the checksum thread.';
