// 4. ONNX with external data: a 2 GiB MLP written by the onnx package (every initializer in one
// .data file beside the model), read and written back with external data by modelbridge, against
// a plain copy of both files and against Python's onnx.load + onnx.save(save_as_external_data=True).
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  abba, checkSums, f, io, log, mib, noted, py, ratio, RSS_HEADERS, rssRows, secondsList, sizeOf, summarizePeer, table, target, THROUGHPUT_HEADERS, throughputRow, WORK,
} from './harness.mjs';

// 2 GiB per run and ~8 s per Python run on this machine: fewer rounds than the 1 GiB sections
// (an even number, so ABBA gives both sides the same share of first and second places).
const ROUNDS = 4;
const PY_ROUNDS = 3;
const LAYERS = 8;
const DIM = 8192;

function measure() {
  const dir = join(WORK, 'onnx');
  const srcDir = join(dir, 'src');
  const mbDir = join(dir, 'modelbridge');
  const pyDir = join(dir, 'python');
  const copyDir = join(dir, 'copy');
  for (const d of [srcDir, mbDir, pyDir]) mkdirSync(d, { recursive: true });
  const src = join(srcDir, 'model.onnx');
  const mbOut = join(mbDir, 'model.onnx');
  const pyOut = join(pyDir, 'model.onnx');
  try {
    log('onnx: making a 2 GiB model with external data (onnx.save_model)');
    const made = py('make_onnx.py', [src, String(LAYERS), String(DIM)]);
    const size = sizeOf(srcDir);
    const graphBytes = sizeOf(src);
    io(['read-plain', srcDir]);
    log('onnx: read vs plain read');
    const read = abba(ROUNDS, size, () => io(['read-plain', srcDir]), () => io(['sum', src]), { warmUp: false });
    log('onnx: read + write with external data vs copy');
    const conv = abba(
      ROUNDS,
      size,
      () => io(['copy', srcDir, copyDir], [copyDir]),
      () => io(['convert', src, mbOut, JSON.stringify({ externalData: true })], [mbOut, `${mbOut}.data`]),
    );
    rmSync(copyDir, { recursive: true, force: true });
    const convertedSum = io(['sum', mbOut]).sum;
    const convertedSize = sizeOf(mbDir);
    rmSync(mbDir, { recursive: true, force: true });
    log('onnx: onnx.load + onnx.save');
    const runs = [];
    for (let i = 0; i < PY_ROUNDS; i++) runs.push(py('onnx_peer.py', [src, pyOut], [pyOut, `${pyOut}.data`]));
    const peerSum = io(['sum', pyOut]).sum;
    checkSums(made.sum, {
      ...Object.fromEntries(read.candidate.runs.map((r, i) => [`modelbridge read, run ${i + 1}`, r.sum])),
      'model modelbridge wrote': convertedSum,
      'model onnx.save wrote': peerSum,
    });
    return { size, graphBytes, convertedSize, made, read, conv, peer: summarizePeer(runs, size) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function onnxSection(python) {
  const title = '## 4. ONNX read + write with external data: 2 GiB model written by the onnx package';
  if (!python) return [title, '', 'Skipped: the peers venv does not exist (the model is written by the onnx package in it).', ''].join('\n');
  const m = measure();
  const { size, read, conv, peer } = m;
  const convert = conv.candidate;
  const copy = conv.baseline;
  const convRatio = convert.gbps / copy.gbps;
  target('ONNX 2 GiB external data read + write vs plain copy', ratio(convRatio), '>= 0.80x', convRatio >= 0.8);
  noted('ONNX 2 GiB external data: modelbridge read + write vs onnx.load + onnx.save', `throughput ${ratio(convert.gbps / peer.gbps)}, peak RSS ${mib(convert.maxRSS)} vs ${mib(peer.maxRSS)}`);
  const rss = rssRows(
    [
      ['modelbridge read + write (convert onnx -> onnx, external data)', convert.maxRSS, true],
      ['modelbridge read (every initializer byte)', read.candidate.maxRSS, true],
      ['plain copy of both files', copy.maxRSS, false],
      ['plain read of both files', read.baseline.maxRSS, false],
      ['Python onnx.load + onnx.save(save_as_external_data=True)', peer.maxRSS, false],
    ],
    size,
    'ONNX external data',
  );
  const GBs = (s) => f(size / 1e9 / s);
  return [
    title,
    '',
    `The model: an MLP of ${LAYERS} Gemm(transB=1) layers [${DIM}, ${DIM}] with Relu between them (opset 17), written by ` +
      `\`onnx.save_model(..., save_as_external_data=True)\` of onnx ${m.made.version}: a ${m.graphBytes}-byte .onnx file and every initializer ` +
      `in \`model.onnx.data\`, ${mib(size)} (${f(size / 1e9)} GB) in all. modelbridge's read + write is ` +
      '`convertModel("model.onnx", "out/model.onnx", { externalData: true })`: the graph is read, the initializers stay file ranges of the ' +
      `.data file and are streamed into the new \`model.onnx.data\` (${mib(m.convertedSize)} written; tensors of 1 MiB and more start on a ` +
      `4 KiB boundary), no read-back verification. Median of ${ROUNDS} runs (2 GiB each), interleaved ABBA with the baseline, ` +
      'fresh process per run after `sync`, page cache warm, writers fsync. The word sum of the initializers the onnx package was ' +
      "given equals modelbridge's read and both rewritten models' initializers.",
    '',
    table(THROUGHPUT_HEADERS, [
      throughputRow('read + write with external data (onnx -> onnx)', convert, 'plain copy of model.onnx + model.onnx.data (read+write+fsync)', copy, 0.8),
      throughputRow('read, every initializer byte touched', read.candidate, 'plain sequential read of both files (same touching)', read.baseline),
    ]),
    '',
    `Runs (s): read + write ${secondsList(convert)}; copy ${secondsList(copy)}; read ${secondsList(read.candidate)}; plain read ${secondsList(read.baseline)}.`,
    '',
    `Python's onnx package on the same model (\`onnx.load\` loads the external data into the ModelProto, \`onnx.save_model(..., save_as_external_data=True, ` +
      `all_tensors_to_one_file=True)\` + fsync of both files; fresh interpreter per run, import excluded from the time; median of ${PY_ROUNDS}):`,
    '',
    table(
      ['', 'seconds', 'GB/s', 'peak RSS', 'RSS after `import onnx`'],
      [
        ['`onnx.load` + `onnx.save_model`', `${f(peer.seconds, 3)} (load ${f(peer.load, 3)}, save ${f(peer.save, 3)})`, f(peer.gbps), mib(peer.maxRSS), mib(peer.baseRSS)],
        ['modelbridge read + write', f(convert.seconds, 3), f(convert.gbps), mib(convert.maxRSS), '-'],
        ['ratio modelbridge / Python', `read + write ${ratio(convert.gbps / peer.gbps)}; read alone vs \`onnx.load\` ${ratio(peer.load / read.candidate.seconds)}`, `${GBs(read.candidate.seconds)} vs ${GBs(peer.load)} for reading`, `RSS ${f(convert.maxRSS / peer.maxRSS, 3)}x`, ''],
      ],
    ),
    '',
    `Python runs (s): ${secondsList(peer)}.`,
    '',
    `Peak RSS (worst of the runs; model ${mib(size)}):`,
    '',
    table(RSS_HEADERS, rss),
    '',
  ].join('\n');
}

