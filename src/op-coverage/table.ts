import { SCHEMAS } from '../formats/onnx/opset-schemas.js';
import { IR_TO_TF } from '../formats/tf/export-ops.js';
import { TF_IMPORT_IR, TF_OPS } from '../formats/tf/ops.js';
import { TFJS_RUNS } from '../formats/tfjs/ops.js';
import { TFLITE_EXPORT_BUILTINS } from '../formats/tflite/export-ops.js';
import { OPS } from '../runtime/ops.js';
import { REASONS, TFLITE, type Reason, type ReasonColumn } from './reasons.js';

/**
 * The op coverage table: one row per IR op, joined from the tables that do the work, so it cannot
 * drift from them: the runtime's kernels (src/runtime/ops.ts), ONNX's schema history
 * (src/formats/onnx/opset-schemas.ts), the TF import table (TF_OPS with TF_IMPORT_IR), the TF
 * export table (IR_TO_TF, whose entries declare the TF ops they emit) and the TF ops TF.js runs
 * (TFJS_RUNS, from tfjs-converter's op lists) and the TFLite export table (TFLITE_EXPORT_BUILTINS,
 * the builtins each entry writes). Only the reasons for a missing mapping are kept by
 * hand (reasons.ts).
 */

export type Cell =
  | { readonly status: 'yes'; readonly detail: string }
  | { readonly status: 'no'; readonly reason: Reason };

export interface CoverageRow {
  readonly op: string;
  /** The lowest opset the runtime's kernel implements, or undefined without a kernel. */
  readonly kernelSince: number | undefined;
  /** The opsets at which ONNX changed the op (its schema versions). */
  readonly onnxVersions: readonly number[];
  /** TF ops whose import builds this op as their main IR op. */
  readonly tfImport: Cell;
  readonly tfExport: Cell;
  readonly tfjs: Cell;
  readonly tflite: Cell;
}

const has = (table: object, key: string) => Object.prototype.hasOwnProperty.call(table, key);

/** The TF ops an IR op is imported from (it is their main IR op). */
function importedFrom(op: string): string[] {
  return Object.keys(TF_OPS)
    .filter((tf) => TF_IMPORT_IR[tf]?.[0] === op)
    .sort();
}

function reasonCell(column: ReasonColumn, op: string): Cell | undefined {
  const reason = REASONS[column][op];
  return reason ? { status: 'no', reason } : undefined;
}

const missingReason = (column: string, op: string): Reason => ({ kind: 'not yet', why: `MISSING: no ${column} mapping and no reason for ${op} in src/op-coverage/reasons.ts` });

export function coverageRow(op: string): CoverageRow {
  const from = importedFrom(op);
  const tfImport: Cell = from.length ? { status: 'yes', detail: from.join(', ') } : reasonCell('tfImport', op) ?? { status: 'no', reason: missingReason('TF import', op) };
  const entry = has(IR_TO_TF, op) ? IR_TO_TF[op] : undefined;
  let tfExport: Cell;
  let tfjs: Cell;
  if (entry) {
    // Layout Transposes, Identity and Const come with almost every entry; the rest say what it is.
    const core = entry.tf.filter((t) => t !== 'Transpose' && t !== 'Identity' && t !== 'Const');
    const how = core.length <= 1 && core[0] !== undefined ? core[0] : `decomposed: ${(core.length ? core : entry.tf).join(', ')}`;
    tfExport = { status: 'yes', detail: how };
    const lacking = entry.tf.filter((t) => !TFJS_RUNS.has(t));
    tfjs = lacking.length === 0
      ? { status: 'yes', detail: 'runs every TF op the export emits' }
      : lacking.length < entry.tf.length
        ? { status: 'yes', detail: `except the forms that need ${lacking.join(', ')}, which TF.js lacks` }
        : { status: 'no', reason: { kind: 'impossible', why: `TF.js has no ${lacking.join(', ')}` } };
  } else {
    tfExport = reasonCell('tfExport', op) ?? { status: 'no', reason: missingReason('TF export', op) };
    tfjs = { status: 'no', reason: { kind: tfExport.status === 'no' ? tfExport.reason.kind : 'not yet', why: 'no TF export to run' } };
  }
  return {
    op,
    kernelSince: OPS.get(op)?.sinceOpset,
    onnxVersions: (SCHEMAS[op] ?? []).map((v) => v[0]),
    tfImport,
    tfExport,
    tfjs,
    tflite: has(TFLITE_EXPORT_BUILTINS, op) ? { status: 'yes', detail: TFLITE_EXPORT_BUILTINS[op]!.join(', ') } : { status: 'no', reason: { kind: 'not yet', why: TFLITE } },
  };
}

/** Every IR op: the runtime's, and any op a TF table maps that the runtime lacks. */
export function coverageOps(): string[] {
  const ops = new Set<string>([...OPS.keys(), ...Object.keys(IR_TO_TF), ...Object.values(TF_IMPORT_IR).flat()]);
  return [...ops].sort();
}

export function coverageTable(): CoverageRow[] {
  return coverageOps().map(coverageRow);
}

/** Rows with a MISSING reason: what the coverage test refuses. */
export function unexplained(rows: readonly CoverageRow[]): string[] {
  return rows.flatMap((r) =>
    (['tfImport', 'tfExport'] as const).flatMap((c) => {
      const cell = r[c];
      return cell.status === 'no' && cell.reason.why.startsWith('MISSING') ? [`${r.op}: ${c}`] : [];
    }),
  );
}

/** Reasons kept for an op that has the mapping now (stale), or for an op no table knows. */
export function staleReasons(rows: readonly CoverageRow[]): string[] {
  const byOp = new Map(rows.map((r) => [r.op, r]));
  return (['tfImport', 'tfExport'] as const).flatMap((c) =>
    Object.keys(REASONS[c]).filter((op) => byOp.get(op)?.[c].status !== 'no').map((op) => `${op}: ${c}`),
  );
}
