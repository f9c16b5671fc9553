import { MAX_KNOWN_OPSET } from '../formats/onnx/opset-schemas.js';
import type { Cell, CoverageRow } from './table.js';
import { cellText, renderZooMatrix, type ZooMatrix } from './zoo.js';

/** docs/coverage.md: the op table, then the zoo matrix when there is one. Same input, same bytes. */
export function renderCoverage(rows: readonly CoverageRow[], zoo?: ZooMatrix): string {
  const cell = (c: Cell) => (c.status === 'yes' ? `✓ ${cellText(c.detail)}` : `${c.reason.kind === 'impossible' ? '✗' : '—'} ${cellText(c.reason.why)}`);
  const count = (pick: (r: CoverageRow) => Cell) => rows.filter((r) => pick(r).status === 'yes').length;
  const kernels = rows.filter((r) => r.kernelSince !== undefined).length;
  const lines = [
    '# Coverage',
    '',
    'Written by `npm run coverage` (scripts/coverage.mjs) from src/op-coverage, which joins the tables the code runs on:',
    'the runtime kernels (src/runtime/ops.ts), ONNX schema history (src/formats/onnx/opset-schemas.ts, up to opset',
    `${MAX_KNOWN_OPSET}), the TensorFlow import and export tables (src/formats/tf/ops.ts, src/formats/tf/export-ops.ts) and the`,
    "TF ops TF.js runs (src/formats/tfjs/ops.ts, from tfjs-converter's op lists) and the TFLite export table",
    '(src/formats/tflite/export-ops.ts). Do not edit by hand; test/coverage.test.ts',
    'fails when this file is stale or when an op has neither a mapping nor a reason (src/op-coverage/reasons.ts).',
    '',
    '## Ops',
    '',
    `${rows.length} IR ops (ONNX semantics); ${kernels} run in the runtime; TF import ${count((r) => r.tfImport)}, TF export ${count((r) => r.tfExport)}, TF.js ${count((r) => r.tfjs)}, TFLite export ${count((r) => r.tflite)}.`,
    '',
    'Columns: **kernel** is the lowest opset the runtime runs; **ONNX versions** the opsets at which the op changed; **TF import**',
    'the TensorFlow ops that become it (SavedModel, GraphDef, TF.js); **TF export** the TF op it is written as (SavedModel,',
    'GraphDef, TF.js), or the TF ops of its decomposition; **TF.js** whether TF.js runs what the export emits. ✓ mapped,',
    '✗ cannot exist (the reason says why), — not written yet. **TFLite** the builtins the TFLite writer emits for it.',
    '',
    '| op | kernel | ONNX versions | TF import | TF export | TF.js | TFLite |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const kernel = r.kernelSince === undefined ? '—' : `opset ${r.kernelSince}+`;
    const versions = r.onnxVersions.length ? r.onnxVersions.join(', ') : '—';
    lines.push(`| ${r.op} | ${kernel} | ${versions} | ${cell(r.tfImport)} | ${cell(r.tfExport)} | ${cell(r.tfjs)} | ${cell(r.tflite)} |`);
  }
  lines.push('', '## Zoo matrix', '');
  if (zoo) lines.push('Written by `npm run zoo` (docs/zoo-matrix.json): every architecture, producer file and target format.', '', renderZooMatrix(zoo));
  else lines.push('No docs/zoo-matrix.json yet: `npm run zoo` writes it, then `npm run coverage` renders it here.');
  return `${lines.join('\n')}\n`;
}
