import type { Argv } from 'yargs';
import * as validate from '../../api/validate.js'; // lazy in the CLI bundle
import type { ModelReport, ValidateReport } from '../../api/validate.js';
import { readModuleOption } from '../module-option.js';
import * as progress from '../progress.js'; // lazy in the CLI bundle
import { renderTable } from '../table.js';

function renderModel(m: ModelReport): string {
  const head = `${m.status.toUpperCase()}  ${m.path}${m.format ? ` (${m.format})` : ''}`;
  const rows = m.checks.map((c) => [c.name, c.status + (c['strict'] === true ? ' (strict)' : ''), c.message]);
  return [head, ...renderTable(['check', 'status', 'message'], rows).split('\n').map((l) => `  ${l}`)].join('\n');
}

export function renderValidateReport(r: ValidateReport): string {
  const counts = new Map<string, number>();
  for (const m of r.models) counts.set(m.status, (counts.get(m.status) ?? 0) + 1);
  const summary = `${r.models.length} model${r.models.length === 1 ? '' : 's'}: ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ')}${r.strict ? ' (--strict: warnings fail)' : ''}`;
  return [...r.models.map(renderModel), summary].join('\n\n');
}

/** "safetensors,onnx" or repeated --roundtrip options, as a list of format names. */
function formatList(value: unknown): string[] {
  const items = (Array.isArray(value) ? value : value === undefined ? [] : [value]) as unknown[];
  return items.flatMap((v) => String(v).split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

export function validateCommand(y: Argv): Argv {
  return y.command(
    'validate <model...>',
    'Check models (for CI): parse, checksums, architecture, ops, shapes, signatures, finite weights, a run; golden outputs and round trips on request',
    (c) =>
      c
        .positional('model', { type: 'string', array: true, demandOption: true, describe: 'model files or directories' })
        .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON (schema: docs/validate-report.md)' })
        .option('strict', { type: 'boolean', default: false, describe: 'warnings fail (non-finite weights, bare state dicts, ...)' })
        .option('inputs', { type: 'string', describe: 'inputs to run on: .npz, .npy or JSON {NAME: nested array} (default: a seeded uniform [0, 1) sample of the signature shape, zeros for integer inputs, unknown dims 1)' })
        .option('expect', { type: 'string', describe: 'expected outputs for --inputs (.npz, .npy or JSON, e.g. `run --json` output): the golden check' })
        .option('atol', { type: 'number', describe: 'absolute tolerance of output comparisons (default 1e-5)' })
        .option('rtol', { type: 'number', describe: 'relative tolerance of output comparisons (default 1e-5)' })
        .option('roundtrip', { type: 'string', describe: 'convert through these formats (comma-separated) and check weights bit-identical and outputs equal' })
        .option('from', { type: 'string', describe: 'format (default: detected per model)' })
        .option('module', { type: 'string', describe: 'module spec JSON giving the architecture of bare state dicts' })
        .option('quiet', { type: 'boolean', default: false, describe: 'no progress bar on a terminal (the report is still printed)' })
        .example('$0 validate model.safetensors', 'check one model, table output')
        .example('$0 validate model.safetensors --strict --json > report.json', 'a CI step: exit 0 pass, 1 a check failed, 2 unreadable file')
        .example('$0 validate model.safetensors --inputs x.npz --expect y.npz --atol 1e-6', 'golden check against known outputs')
        .example('$0 validate shards/ --roundtrip safetensors', 'convert through formats and check nothing changes'),
    (argv) => {
      const stopProgress = progress.showProgress(argv.quiet);
      let report: ValidateReport;
      try {
        report = validate.validateModels(argv.model as string[], {
          format: argv.from,
          module: readModuleOption(argv.module),
          strict: argv.strict,
          inputs: argv.inputs,
          expect: argv.expect,
          atol: argv.atol,
          rtol: argv.rtol,
          roundtrip: formatList(argv.roundtrip),
        });
      } finally {
        stopProgress();
      }
      process.stdout.write(argv.json ? `${validate.validateReportJson(report)}\n` : `${renderValidateReport(report)}\n`);
      process.exitCode = validate.exitCodeOf(report.status);
    },
  );
}
