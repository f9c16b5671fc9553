import { FormatError } from '../../core/errors.js';
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

/**
 * Where a TorchScript archive's program could not be lowered (scripted control flow, an op
 * outside the mapping), its weights are still read, as before programs were, and this metadata
 * entry keeps the one-line reason as JSON {file, where, expected}: running the model reports it
 * instead of "no architecture".
 */
export const TORCHSCRIPT_UNLOWERED = 'pytorch.torchscript_unlowered';

export type ProgramRead = { readonly model: Model } | { readonly problem: FormatError } | undefined;

/** The program of a TorchScript archive; the reason it cannot be lowered; undefined for other files. */
export function readTorchScript(path: string): ProgramRead {
  const zip = scriptZip(path);
  if (!zip) return undefined;
  const archive = openScriptArchive(zip);
  try {
    return { model: lowerScript(archive).model };
  } catch (err) {
    if (err instanceof FormatError) return { problem: err };
    throw err;
  }
}

/** The reason kept by a weights-only read, as the FormatError to throw where a graph is needed. */
export function unloweredProblem(metadata: Readonly<Record<string, string>>): FormatError | undefined {
  const text = metadata[TORCHSCRIPT_UNLOWERED];
  if (text === undefined) return undefined;
  try {
    const o = JSON.parse(text) as { file?: unknown; where?: unknown; expected?: unknown };
    if (typeof o.file === 'string' && typeof o.where === 'string' && typeof o.expected === 'string') return new FormatError(o.file, o.where, o.expected);
  } catch {
    // Not ours: metadata carried from elsewhere under the same key is ignored.
  }
  return undefined;
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
