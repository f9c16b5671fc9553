import type { Model } from '../../core/model.js';
import type { FormatHandler, Probe } from '../format.js';
import { openAccess } from '../pytorch/bytes.js';
import { readZip } from '../pytorch/zip.js';
import { openPt2, pt2Folder } from './archive.js';
import { readPt2 } from './reader.js';
import { writePt2 } from './writer.js';

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
    return readPt2(path);
  },
  validate(path) {
    // Reading with CRC verification checks the program's, the configs' and every weight record's CRC-32.
    const archive = openPt2(path, { lazy: true, verifyCrc: true });
    return [{ name: 'checksums', status: 'pass', message: `the CRC-32 of the program and of every weight record matches (${archive.weights.size + archive.constants.size} tensors)` }];
  },
  write(model, path) {
    writePt2(model, path);
    return [path];
  },
};

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
    return pt2Folder(readZip(openAccess(probe.path, true))) !== undefined;
  } catch {
    return byExtension;
  }
}
