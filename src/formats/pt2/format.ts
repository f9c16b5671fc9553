import type { Model } from '../../core/model.js';
import { formatErrors, type FormatErrors } from '../../core/errors.js';
import { escapeControl } from '../../core/printable.js';
import type { DetailTable, FormatHandler, Probe } from '../format.js';
import { asArray, asObject, isObject } from './json.js';
import * as opTables from './ops.js'; // lazy in the CLI bundle
import * as bytes from '../pytorch/bytes.js'; // lazy in the CLI bundle
import * as zips from '../pytorch/zip.js'; // lazy in the CLI bundle
import * as archive from './archive.js'; // lazy in the CLI bundle
import * as reader from './reader.js'; // lazy in the CLI bundle
import * as writer from './writer.js'; // lazy in the CLI bundle

/**
 * torch.export programs (`torch.export.save(ep, "model.pt2")`): the graph as core ATen calls and
 * the weights, in one zip. Read into a runnable Model (reader.ts), written so torch.export.load
 * runs it (writer.ts).
 */
export const pt2Format: FormatHandler = {
  name: 'pt2',
  title: 'torch.export program (.pt2: ExportedProgram JSON + weights), never unpickled',
  extensions: ['.pt2'],
  detect: looksLikePt2,
  read(path): Model {
    return reader.readPt2(path);
  },
  validate(path) {
    // Reading with CRC verification checks the program's, the configs' and every weight record's CRC-32.
    const pt2 = archive.openPt2(path, { lazy: true, verifyCrc: true });
    return [{ name: 'checksums', status: 'pass', message: `the CRC-32 of the program and of every weight record matches (${pt2.weights.size + pt2.constants.size} tensors)` }];
  },
  describe(path) {
    return describePt2(path);
  },
  write(model, path) {
    writer.writePt2(model, path);
    return [path];
  },
};

/**
 * The program as torch.export describes it: its signature's input kinds (user inputs,
 * parameters, buffers, constants) and the ATen ops its graph calls, with counts. Weights are not read.
 */
export function describePt2(path: string): DetailTable[] {
  const pt2 = archive.openPt2(path, { lazy: true, verifyCrc: false });
  const e: FormatErrors = formatErrors(path);
  const gm = asObject(pt2.program['graph_module'], 'graph_module', e);
  const graph = asObject(gm['graph'], 'graph_module.graph', e);
  const signature = asObject(gm['signature'], 'graph_module.signature', e);
  const kinds = new Map<string, number>();
  for (const spec of asArray(signature['input_specs'], 'input_specs', e)) {
    const kind = isObject(spec) ? Object.keys(spec)[0] ?? '?' : '?';
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  const ops = new Map<string, number>();
  for (const node of asArray(graph['nodes'], 'nodes', e)) {
    const target = isObject(node) && typeof node['target'] === 'string' ? node['target'].replace(/^torch\.ops\./, '') : '?';
    ops.set(target, (ops.get(target) ?? 0) + 1);
  }
  return [
    {
      title: `torch.export program ${pt2.modelName} (schema ${pt2.schemaVersion}${pt2.torchVersion ? `, torch ${pt2.torchVersion}` : ''})`,
      columns: ['input kind', 'count'],
      rows: [...kinds].map(([k, n]) => [k, n]),
    },
    {
      title: 'ATen ops',
      columns: ['op', 'calls', 'mapped'],
      rows: [...ops].sort((x, y) => x[0].localeCompare(y[0])).map(([op, n]) => [escapeControl(op), n, Object.prototype.hasOwnProperty.call(opTables.ATEN_OPS, op) || Object.prototype.hasOwnProperty.call(opTables.SYM_OPS, op) ? 'yes' : 'no']),
    },
  ];
}

/**
 * A zip whose archive holds <folder>/archive_format = "pt2" (what torch's is_pt2_package checks).
 * Only the central directory and that one record are read. A .pt2 file that is no such zip is
 * claimed too, so the reader can say what is wrong with it.
 */
export function looksLikePt2(probe: Probe): boolean {
  if (probe.isDirectory) return false;
  const byExtension = probe.path.toLowerCase().endsWith('.pt2');
  const head = probe.head;
  const zip = head.byteLength >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
  if (!zip) return byExtension;
  try {
    return archive.pt2Folder(zips.readZip(bytes.openAccess(probe.path, true))) !== undefined;
  } catch {
    return byExtension;
  }
}
