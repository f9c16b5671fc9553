import type { Model } from '../../core/model.js';
import { escapeControl } from '../../core/printable.js';
import type { DetailTable } from '../format.js';
import { openAccess } from '../pytorch/bytes.js';
import { readZip, type ZipArchive } from '../pytorch/zip.js';
import { isScriptArchive, openScriptArchive } from './archive.js';
import { lowerScript } from './lower.js';

/**
 * The entry points the PyTorch format uses: a torch.jit.save archive with code becomes a Model
 * with a graph (lower.ts); anything else (a torch.save zip, a legacy pickle) is left to the
 * checkpoint reader, which gives the weights.
 */

function scriptZip(path: string): ZipArchive | undefined {
  const access = openAccess(path, true);
  const head = access.read(0, Math.min(access.size, 4));
  if (!(head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04)) return undefined;
  const zip = readZip(access);
  return isScriptArchive(zip) ? zip : undefined;
}

/** The program of a TorchScript archive, or undefined when the file is no such archive. */
export function readTorchScript(path: string): Model | undefined {
  const zip = scriptZip(path);
  return zip ? lowerScript(openScriptArchive(zip)).model : undefined;
}

/** For inspect: the code records the program was read from and the torch ops it calls. */
export function describeTorchScript(path: string): DetailTable[] {
  const zip = scriptZip(path);
  if (!zip) return [];
  const program = lowerScript(openScriptArchive(zip));
  return [
    { title: 'TorchScript code read (never executed)', columns: ['record'], rows: program.records.map((r) => [escapeControl(r)]) },
    { title: 'TorchScript ops', columns: ['op', 'calls'], rows: [...program.ops].sort((a, b) => a[0].localeCompare(b[0])).map(([op, n]) => [escapeControl(op), n]) },
  ];
}
