// 3. PyTorch: a 1 GiB checkpoint written by real torch.save, read by modelbridge (never unpickled)
// and converted to safetensors, against a plain copy of the bytes and against PyTorch itself
// (torch.load(weights_only=True) + safetensors.torch.save_file) on the same file.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { GiB } from './util.mjs';
import {
  abba, checkSums, f, io, log, mib, noted, py, ratio, RSS_HEADERS, rssRows, secondsList, sizeOf, summarizePeer, table, target, THROUGHPUT_HEADERS, throughputRow, WORK,
} from './harness.mjs';

const ROUNDS = 6;
const PY_ROUNDS = 3;

function measure() {
  const dir = join(WORK, 'pytorch');
  mkdirSync(dir, { recursive: true });
  const src = join(dir, 'model.pt');
  try {
    log('pytorch: making a 1 GiB .pt with torch.save');
    const made = py('make_pt.py', [src, String(GiB)]);
    const size = sizeOf(src);
    io(['read-plain', src]); // page cache warm, as for every other row
    log('pytorch: read vs plain read');
    const read = abba(ROUNDS, size, () => io(['read-plain', src]), () => io(['sum', src]), { warmUp: false });
    log('pytorch: convert to safetensors vs copy');
    const out = join(dir, 'out.safetensors');
    const copyOut = join(dir, 'copy.pt');
    const conv = abba(ROUNDS, size, () => io(['copy', src, copyOut], [copyOut]), () => io(['convert', src, out], [out]));
    rmSync(copyOut, { force: true });
    const convertedSum = io(['sum', out]).sum;
    rmSync(out, { force: true });
    log('pytorch: torch.load + save_file');
    const pyOut = join(dir, 'py.safetensors');
    const torchRuns = [];
    const mmapRuns = [];
    for (let i = 0; i < PY_ROUNDS; i++) {
      torchRuns.push(py('pt_peer.py', [src, pyOut], [pyOut]));
      mmapRuns.push(py('pt_peer.py', [src, pyOut, 'mmap'], [pyOut]));
    }
    const peerSum = io(['sum', pyOut]).sum;
    checkSums(made.sum, {
      ...Object.fromEntries(read.candidate.runs.map((r, i) => [`modelbridge read of the .pt, run ${i + 1}`, r.sum])),
      'safetensors file modelbridge converted': convertedSum,
      'safetensors file PyTorch converted': peerSum,
    });
    return { size, made, read, conv, torch: summarizePeer(torchRuns, size), mmap: summarizePeer(mmapRuns, size) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function pytorchSection(python) {
  const title = '## 3. PyTorch .pt -> safetensors: 1 GiB checkpoint written by real torch.save';
  if (!python) return [title, '', 'Skipped: the peers venv does not exist (the checkpoint is written by torch.save in it).', ''].join('\n');
  const m = measure();
  const { size, read, conv, torch, mmap } = m;
  const convert = conv.candidate;
  const copy = conv.baseline;
  const convRatio = convert.gbps / copy.gbps;
  target('.pt -> safetensors convert throughput vs plain copy', ratio(convRatio), '>= 0.80x', convRatio >= 0.8);
  noted('.pt -> safetensors: modelbridge vs torch.load(weights_only=True) + save_file', `throughput ${ratio(convert.gbps / torch.gbps)}, peak RSS ${mib(convert.maxRSS)} vs ${mib(torch.maxRSS)}`);
  const rss = rssRows(
    [
      ['modelbridge convert .pt -> safetensors', convert.maxRSS, true],
      ['modelbridge read (every tensor byte)', read.candidate.maxRSS, true],
      ['plain copy', copy.maxRSS, false],
      ['plain read', read.baseline.maxRSS, false],
      ['Python torch.load(weights_only=True) + save_file', torch.maxRSS, false],
      ['Python torch.load(weights_only=True, mmap=True) + save_file', mmap.maxRSS, false],
    ],
    size,
    '.pt',
  );
  const peerRow = (name, p) => [name, `${f(p.seconds, 3)} (load ${f(p.load, 3)}, save ${f(p.save, 3)})`, f(p.gbps), ratio(convert.gbps / p.gbps), mib(p.maxRSS), mib(p.baseRSS), f(convert.maxRSS / p.maxRSS, 3)];
  return [
    title,
    '',
    `The file: \`torch.save\` (PyTorch ${'2.13'}, zip format) of a dict of ${m.made.tensors} float32 [${m.made.shape.join(', ')}] tensors ` +
      `(torch.randn * 0.02, seed 0), ${mib(size)} on disk. modelbridge reads it with its own pickle machine (nothing is executed) ` +
      'and streams the storages from the zip; `convert` is the library call `convertModel(src, "out.safetensors")` (no read-back ' +
      'verification, as `--no-verify` on the CLI). ' +
      `Median of ${ROUNDS} runs interleaved ABBA with the baseline (after one untimed run of each for the convert row), each in a fresh ` +
      "process after `sync`, page cache warm; writers fsync. Every tensor byte is checked: the word sum (bench/words.mjs) of the " +
      "tensors torch.save was given equals modelbridge's read of the .pt and both converted files' tensors.",
    '',
    table(THROUGHPUT_HEADERS, [
      throughputRow('convert .pt -> safetensors', convert, 'plain copy of the .pt (read+write+fsync, 8 MiB buffer)', copy, 0.8),
      throughputRow('read .pt, every tensor byte touched', read.candidate, 'plain sequential read of the file (same touching)', read.baseline),
    ]),
    '',
    `Runs (s): convert ${secondsList(convert)}; copy ${secondsList(copy)}; read ${secondsList(read.candidate)}; plain read ${secondsList(read.baseline)}.`,
    '',
    `PyTorch on the same file (fresh interpreter per run, \`import torch\` excluded from the time, included in the RSS; median of ${PY_ROUNDS}; ` +
      'peak RSS from GNU time; "RSS after `import torch`" is the interpreter\'s own `ru_maxrss` before loading). `mmap=True` is the variant that does not read the storages into memory up front:',
    '',
    table(
      ['peer', 'seconds', 'GB/s', 'modelbridge convert speed-up (throughput ratio)', 'peak RSS', 'RSS after `import torch`', 'RSS ratio modelbridge / peer'],
      [peerRow('`torch.load(f, weights_only=True)` + `save_file` + fsync', torch), peerRow('`torch.load(f, weights_only=True, mmap=True)` + `save_file` + fsync', mmap)],
    ),
    '',
    `Python runs (s): weights_only ${secondsList(torch)}; mmap ${secondsList(mmap)}.`,
    '',
    `Peak RSS (worst of the runs; model file ${mib(size)}):`,
    '',
    table(RSS_HEADERS, rss),
    '',
  ].join('\n');
}
