import type { Argv } from 'yargs';
import * as elements from '../../api/checks/elements.js'; // lazy in the CLI bundle
import * as diff from '../../api/diff.js'; // lazy in the CLI bundle
import type { DiffReport } from '../../api/diff.js';
import * as load from '../../api/load.js'; // lazy in the CLI bundle
import * as validate from '../../api/validate.js'; // lazy in the CLI bundle
import { UsageError } from '../../core/errors.js';
import * as progress from '../progress.js'; // lazy in the CLI bundle
import { renderTable } from '../table.js';

const shape = (s: readonly number[] | null) => (s ? `[${s.join(', ')}]` : '-');
const pair = <T>(p: readonly [T | null, T | null], show: (v: T | null) => string) => (show(p[0]) === show(p[1]) ? show(p[0]) : `${show(p[0])} -> ${show(p[1])}`);

export function renderDiffReport(r: DiffReport): string {
  const w = r.weights;
  const counted = Object.entries(w.counts).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(', ');
  const lines = [
    `${r.status.toUpperCase()}  a ${r.a.path} (${r.a.format})  b ${r.b.path} (${r.b.format})  [atol ${r.tolerance.atol}, rtol ${r.tolerance.rtol}]`,
    `weights: ${w.tensors.length} tensor(s): ${counted || 'none'}`,
  ];
  // Identical tensors matched by name are the expected case; everything else is listed.
  const listed = w.tensors.filter((t) => t.status !== 'identical' || t.via !== 'name');
  if (listed.length) {
    const rows = listed.map((t) => [
      t.other && t.other !== t.name ? `${t.name} ~ ${t.other}` : t.name,
      t.status,
      t.via ?? '-',
      pair(t.dtype, (d) => d ?? '-'),
      pair(t.shape, shape),
      elements.formatNumber(t.maxAbs),
      elements.formatNumber(t.maxRel),
    ]);
    lines.push(...renderTable(['tensor', 'status', 'via', 'dtype', 'shape', 'max abs', 'max rel'], rows).split('\n').map((l) => `  ${l}`));
  }
  const o = r.outputs;
  lines.push(`outputs: ${o.status}: ${o.message}`);
  if (o.outputs.length) {
    const rows = o.outputs.map((x) => [
      x.other && x.other !== x.name ? `${x.name} ~ ${x.other}` : x.name,
      x.status,
      pair(x.shape, shape),
      elements.formatNumber(x.maxAbs),
      elements.formatNumber(x.meanAbs),
      elements.formatNumber(x.medianAbs),
      x.fractionBeyond === null ? '-' : elements.formatNumber(x.fractionBeyond),
    ]);
    lines.push(...renderTable(['output', 'status', 'shape', 'max abs', 'mean abs', 'median abs', 'frac beyond tol'], rows).split('\n').map((l) => `  ${l}`));
  }
  return lines.join('\n');
}

export function diffCommand(y: Argv): Argv {
  return y.command(
    'diff <a> <b>',
    'Compare two models in any formats: weights by name and by layout (transposed kernels), outputs on the same inputs',
    (c) =>
      c
        .positional('a', { type: 'string', demandOption: true, describe: 'reference model file or directory' })
        .positional('b', { type: 'string', demandOption: true, describe: 'model to compare with it' })
        .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' })
        .option('atol', { type: 'number', default: 1e-5, describe: 'absolute tolerance: |b - a| <= atol + rtol * |a|' })
        .option('rtol', { type: 'number', default: 1e-5, describe: 'relative tolerance' })
        .option('inputs', { type: 'string', describe: 'inputs to run both on: .npz, .npy or JSON {NAME: nested array} (default: a seeded uniform [0, 1) sample of the signature shape, zeros for integer inputs)' })
        .option('quiet', { type: 'boolean', default: false, describe: 'no progress bar on a terminal (the report is still printed)' })
        .example('$0 diff model.safetensors copy.safetensors', 'equal? exit 0 when equal within tolerance, 1 otherwise')
        .example('$0 diff a.safetensors b.safetensors --atol 0 --rtol 0 --json', 'exact comparison as JSON')
        .example('$0 diff model.safetensors shards/ --inputs batch.npz', 'compare outputs on given inputs'),
    (argv) => {
      for (const [k, v] of [['atol', argv.atol], ['rtol', argv.rtol]] as const) {
        if (!(v >= 0)) throw new UsageError(`--${k} must be a number >= 0`);
      }
      const inputs = argv.inputs === undefined ? undefined : validate.readTensorFile(argv.inputs);
      const a = load.loadModel(argv.a);
      const b = load.loadModel(argv.b);
      const stopProgress = progress.showProgress(argv.quiet);
      let report: DiffReport;
      try {
        report = diff.diffModels(a, b, { atol: argv.atol, rtol: argv.rtol, ...(inputs ? { inputs } : {}) }, [argv.a, argv.b]);
      } finally {
        stopProgress();
      }
      process.stdout.write(argv.json ? `${diff.diffReportJson(report)}\n` : `${renderDiffReport(report)}\n`);
      process.exitCode = report.equal ? 0 : 1;
    },
  );
}
