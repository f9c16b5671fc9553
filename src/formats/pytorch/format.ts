import { FormatError } from '../../core/errors.js';
import type { Model } from '../../core/model.js';
import * as bundles from '../../module/bundle.js'; // lazy in the CLI bundle
import type { FormatHandler, Probe } from '../format.js';
import * as torchscript from '../torchscript/reader.js'; // lazy in the CLI bundle
import * as reader from './reader.js'; // lazy in the CLI bundle
import * as writer from './writer.js'; // lazy in the CLI bundle

/**
 * PyTorch checkpoints as modelbridge bundles: the state dict is the weights, and the module spec
 * and signature travel in modelbridge/metadata.json inside the archive (torch.load ignores it), so
 * a .pt written here is runnable when read back and loadable by torch.load(weights_only=True).
 */
export const pytorchFormat: FormatHandler = {
  name: 'pytorch',
  title: 'PyTorch checkpoint (torch.save zip or legacy pickle; TorchScript programs read-only, their code parsed), never unpickled or executed',
  extensions: ['.pt', '.pth', '.bin'],
  detect: looksLikePytorch,
  read(path, options): Model {
    // A torch.jit.save archive carries its program: read with its graph unless a module spec is
    // given for its weights.
    const program = options.module === undefined && options.key === undefined ? torchscript.readTorchScript(path) : undefined;
    if (program && 'model' in program) return program.model;
    const file = reader.readPytorchFile(path, { key: options.key });
    const p = program?.problem;
    const metadata = p ? { ...file.metadata, [torchscript.TORCHSCRIPT_UNLOWERED]: JSON.stringify({ file: p.file, where: p.where, expected: p.expected }) } : file.metadata;
    return bundles.modelFromBundle({ tensors: file.tensors, metadata }, 'pytorch', path, options.module);
  },
  validate(path) {
    // Reading with CRC verification checks every zip record's CRC-32 against its bytes.
    const file = reader.readPytorchFile(path, { verifyCrc: true, lazy: false });
    const kind = file.info.container;
    if (kind !== 'zip' && kind !== 'torchscript') return [{ name: 'checksums', status: 'skip', message: `a ${kind} checkpoint carries no checksums` }];
    return [{ name: 'checksums', status: 'pass', message: `every zip record's CRC-32 matches (${file.tensors.size} tensors)` }];
  },
  describe(path) {
    try {
      return torchscript.describeTorchScript(path);
    } catch (err) {
      // A program that cannot be lowered: read() kept the reason in the metadata inspect shows.
      if (err instanceof FormatError) return [];
      throw err;
    }
  },
  write(model, path) {
    const bundle = bundles.bundleFromModel(model);
    writer.writePytorchFile(path, bundle.tensors, bundle.metadata);
    return [path];
  },
};

/** Record names (after the archive folder) that a torch.save or torch.jit.save archive starts with. */
const RECORDS = ['data.pkl', 'data/', 'version', '.data/', 'constants.pkl', 'code/', 'byteorder', '.format_version', '.storage_alignment', 'extra/'];
/** The pickled legacy magic number after PROTO n: LONG1 of 10 bytes 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/**
 * A zip whose first record is in a PyTorch archive's layout, or a legacy pickle stream. Files
 * with a PyTorch extension that start like a zip or a pickle are claimed too, so the reader can
 * refuse them with a precise message (a pickle calling os.system is "PyTorch", and refused).
 */
export function looksLikePytorch(probe: Probe): boolean {
  if (probe.isDirectory) return false;
  const head = probe.head;
  const lower = probe.path.toLowerCase();
  // Not .bin: tfjs weight shards are .bin files of raw numbers.
  const byExtension = lower.endsWith('.pt') || lower.endsWith('.pth');
  if (head.byteLength >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) {
    if (head.byteLength < 30) return byExtension;
    const nameLength = head[26]! | (head[27]! << 8);
    const visible = new TextDecoder('latin1').decode(head.subarray(30, Math.min(head.byteLength, 30 + nameLength)));
    const truncated = 30 + nameLength > head.byteLength;
    if (visible === 'data.pkl') return true;
    const slash = visible.indexOf('/');
    if (slash < 0) return truncated && byExtension;
    const rest = visible.slice(slash + 1);
    return RECORDS.some((r) => rest.startsWith(r) || (truncated && r.startsWith(rest)));
  }
  if (head[0] === 0x80 && LEGACY_MAGIC.every((b, i) => head[2 + i] === b)) return true;
  return byExtension && head[0] === 0x80;
}
