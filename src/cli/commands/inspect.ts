import type { Argv } from 'yargs';
import { inspectModel, type InspectReport } from '../../api/inspect.js';
import { formatByName } from '../../formats/registry.js';
import { loadModelArgs, withModelArgs, type ModelArgs } from '../module-option.js';
import { modelPath, shownPath } from '../stdio.js';
import { formatBytes, renderTable } from '../table.js';

function shapeText(shape: readonly (number | string | null)[] | null): string {
  return shape ? `[${shape.map((d) => d ?? '?').join(', ')}]` : 'unknown';
}

function render(r: InspectReport, withTensors: boolean): string {
  const lines = [
    `${r.path}`,
    `  format      ${r.format}${r.runnable ? '' : ' (bare state dict: no architecture, give --module to run it)'}`,
    `  parameters  ${r.parameters.elements.toLocaleString('en-US')} in ${r.parameters.tensors} tensors, ${formatBytes(r.parameters.bytes)} (${Object.entries(r.dtypes).map(([d, n]) => `${n} ${d}`).join(', ')})`,
  ];
  if (r.runnable) lines.push(`  opset       ${r.opset}`, `  ops         ${r.ops.join(', ')}`);
  for (const s of r.signatures) {
    lines.push(`  signature ${s.name}`);
    const rows = [...s.inputs.map((i) => ['input', i.name, i.dtype, shapeText(i.shape)]), ...s.outputs.map((o) => ['output', o.name, o.dtype, shapeText(o.shape)])];
    lines.push(...renderTable(['', 'name', 'dtype', 'shape'], rows).split('\n').map((l) => `    ${l}`));
  }
  if (withTensors) {
    lines.push(`  tensors`);
    const rows = r.tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, t.bytes.toLocaleString('en-US')]);
    lines.push(...renderTable(['name', 'dtype', 'shape', 'bytes'], rows).split('\n').map((l) => `    ${l}`));
  }
  for (const d of r.details) {
    lines.push(`  ${d.title}`);
    lines.push(...renderTable([...d.columns], d.rows.map((row) => row.map(String))).split('\n').map((l) => `    ${l}`));
  }
  const meta = Object.entries(r.metadata);
  if (meta.length) lines.push('  metadata', ...meta.map(([k, v]) => `    ${k}: ${v.length > 100 ? `${v.slice(0, 97)}...` : v}`));
  return lines.join('\n');
}

/** What `inspect` is given, as yargs parses it. */
interface InspectArgs extends ModelArgs {
  readonly json: boolean;
  readonly tensors: boolean;
}

/** The command's work: read the model's headers, print the report. */
function inspect(argv: InspectArgs): void {
  const model = loadModelArgs(argv);
  const report = inspectModel(model, shownPath(argv.model), formatByName(model.format).describe?.(modelPath(argv.model)) ?? []);
  process.stdout.write(argv.json ? `${JSON.stringify(report, null, 2)}\n` : `${render(report, argv.tensors)}\n`);
}

/**
 * The most common scripted call, `inspect MODEL --json` (three arguments, in that order),
 * recognised without yargs: parsing with yargs is a third of the command's start. Only
 * arguments yargs reads exactly so qualify: MODEL must not look like an option (`-...`, which
 * includes `-`, standard input), be empty, be `help` (a last positional `help` asks yargs for
 * the command's help), or look like a number (yargs turns positional numbers into numbers);
 * anything else goes through yargs as before. Returns whether it ran.
 */
export function inspectJsonFast(args: readonly string[]): boolean {
  if (args.length !== 3 || args[0] !== 'inspect' || args[2] !== '--json') return false;
  const model = args[1]!;
  if (model === '' || model === 'help' || model.startsWith('-') || looksLikeNumber(model)) return false;
  inspect({ model, json: true, tensors: false });
  return true;
}

/** yargs-parser's test for a number (parse-positional-numbers), or anything near one. */
function looksLikeNumber(text: string): boolean {
  return /^0x[0-9a-f]+$/i.test(text) || /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?$/i.test(text);
}

export function inspectCommand(y: Argv): Argv {
  return y.command(
    'inspect <model>',
    'Show format, signatures, ops, parameter count and metadata (reads headers, not weights)',
    (c) =>
      withModelArgs(c)
        .option('tensors', { type: 'boolean', default: false, describe: 'list every tensor: name, dtype, shape, bytes (--json always includes them)' })
        .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON (schema: docs/inspect-report.md)' })
        .example('$0 inspect or-gate/or-gate.safetensors', 'summary table')
        .example('$0 inspect model.safetensors --tensors', 'also list the tensors')
        .example('$0 inspect model.safetensors --json', 'machine-readable report')
        .example('$0 inspect - < model.onnx', 'a model on standard input'),
    (argv) => inspect(argv),
  );
}
