// 5. SavedModel -> TF.js graph model and 6. SavedModel -> safetensors, both from one 1 GiB
// SavedModel written by real TensorFlow: modelbridge against a plain copy of the SavedModel
// directory, and against tensorflowjs_converter where that converter is installed (.peers/tfjs-venv, made by scripts/peers-env.sh).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  abba, checkSums, f, io, log, mib, noted, py, ratio, ROOT, RSS_HEADERS, rssRows, secondsList, sizeOf, summarize, sync, table, target, THROUGHPUT_HEADERS, throughputRow, WORK,
} from './harness.mjs';

// A 1 GiB model and two conversions of ~5-7 s each on this machine: 4 rounds each (an even number,
// so ABBA gives both sides the same share of first and second places).
const ROUNDS = 4;
const PEER_ROUNDS = 3;
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
      for (let i = 0; i < PEER_ROUNDS; i++) {
        runs.push(timeCommand(TFJS_CONVERTER, args, [convOut]));
        cli.push(timeCommand(process.execPath, [join(ROOT, 'bin', 'modelbridge.cjs'), 'convert', src, tfjsOut, '--to', 'tfjs', '--no-verify'], [tfjsOut]));
      }
      rmSync(tfjsOut, { recursive: true, force: true });
      const importOnly = timeCommand(join(ROOT, '.peers', 'venv', 'bin', 'python'), ['-c', 'import tensorflowjs.converters.converter']);
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
    rmSync(copyDir, { recursive: true, force: true });
    checkSums(made.sum, { 'TF.js model modelbridge wrote': tfjsSum, 'safetensors file modelbridge wrote': stSum });
    // The converter may rewrite weights (folding, fusing); its sum is reported, not required.
    if (converter) converter.sumAgrees = converter.sum === made.sum;
    return { size, made, tfjs, tfjsFiles, converter, st };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function tfjsFilesCount(path) {
  return spawnSync('ls', [path], { encoding: 'utf8' }).stdout.split('\n').filter((n) => n.endsWith('.bin')).length;
}

export function tensorflowSections(python) {
  const titles = ['## 5. SavedModel -> TF.js graph model: 1 GiB SavedModel written by real TensorFlow', '## 6. SavedModel (TensorBundle) -> safetensors: the same 1 GiB SavedModel'];
  if (!python) return titles.map((t) => [t, '', 'Skipped: the peers venv does not exist (the SavedModel is written by TensorFlow in it).', ''].join('\n')).join('\n');
  const m = measure();
  const { size, tfjs, st, converter } = m;
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
  noted('SavedModel (1 GiB) -> TF.js: modelbridge vs plain copy', `${ratio(tfjsRatio)}, peak RSS ${mib(tfjs.candidate.maxRSS)}`, 'TF.js is not a streaming target format');
  if (converter) noted('SavedModel (1 GiB) -> TF.js: modelbridge CLI vs tensorflowjs_converter', `${ratio(converter.peer.seconds / converter.cli.seconds)}`);
  const tfjsRss = rssRows(
    [
      ['modelbridge convert SavedModel -> TF.js', tfjs.candidate.maxRSS, false],
      ['plain copy', tfjs.baseline.maxRSS, false],
      ...(converter ? [['tensorflowjs_converter (CLI)', converter.peer.maxRSS, false], ['modelbridge CLI convert --to tfjs --no-verify', converter.cli.maxRSS, false]] : []),
    ],
    size,
    'TF.js',
  );
  const converterText = converter
    ? [
        `tensorflowjs_converter on the same SavedModel (\`--input_format=tf_saved_model --output_format=tfjs_graph_model\`), wall time and peak RSS from GNU time, ` +
          `alternating with modelbridge's CLI (\`modelbridge convert <dir> <out> --to tfjs --no-verify\`) measured the same way; median of ${PEER_ROUNDS}. ` +
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
    table(THROUGHPUT_HEADERS, [throughputRow('convert SavedModel -> TF.js', tfjs.candidate, 'plain copy of the SavedModel directory', tfjs.baseline)]),
    '',
    `Runs (s): convert ${secondsList(tfjs.candidate)}; copy ${secondsList(tfjs.baseline)}.`,
    '',
    ...converterText,
    '',
    `Peak RSS (worst of the runs; model ${mib(size)}). The brief's model + 64 MiB target covers formats that stream, and the TF.js writer ` +
      "does not: `graphModelFiles` (src/formats/tfjs/writer.ts) takes every weight's bytes whole (`Tensor.bytes()`) and " +
      '`shardGroup` (weights.ts) concatenates them into in-memory shards, which `writeGraphModel` (format.ts) then writes, ' +
      'so the whole model is held about twice. The throughput has the same causes plus two more: in a CPU profile of this conversion ' +
      '(`node --cpu-prof`, the same model at 256 MiB, outside the bench) about a fifth of the time is `FileRangeSource.read` ' +
      '(the whole-tensor reads), a fifth `shardGroup` copying into shards, a fifth `fsync` (`writeBytesAtomic` syncs each 4 MiB shard ' +
      'on its own: 257 fsyncs here) and an eighth `crc32c`: the TensorBundle reader (src/formats/tensorbundle/reader.ts, ' +
      '`readTensorBundle` with `verify` defaulting to true) checks every variable\'s CRC-32C as it reads, in JavaScript:',
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
      'but lifting the graph to Linear layers transposes every kernel in memory: `liftModule` (src/module/lift.ts) calls `transpose2d` ' +
      '(src/core/transpose.ts), which reads the whole tensor (`Tensor.bytes()`) into a new buffer, and the lifted weights are all held ' +
      'until the safetensors writer has streamed them. The same function explains most of the missed throughput: `transpose2d` ' +
      'moves the tensor one byte at a time (a loop over rows, columns and the 4 bytes of each float), about a third of the time in a ' +
      'CPU profile of this conversion (`node --cpu-prof`, the same model at 256 MiB, outside the bench); the writes of the ' +
      'transposed buffers take about 30%, and the TensorBundle reader\'s CRC-32C check of every variable (in JavaScript, ' +
      '`readTensorBundle` in src/formats/tensorbundle/reader.ts, `verify` on by default) about 14%:',
    '',
    table(RSS_HEADERS, stRss),
    '',
  ].join('\n');
  return [tfjsSection, stSection].join('\n');
}
