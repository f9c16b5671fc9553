import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectModel } from '../../src/api/inspect.js';
import { loadModel } from '../../src/api/load.js';
import { readNpz } from '../../src/api/npz.js';
import { Tensor } from '../../src/core/tensor.js';
import { readNpy, writeNpy } from '../../src/formats/npy/npy.js';
import { ZipWriter } from '../../src/formats/pytorch/zip-writer.js';
import { FormatError, UsageError } from '../../src/core/errors.js';
import { ROOT } from '../cli-helpers.js';

/**
 * The fuzz targets: one per reader, each taking the bytes of one file of a model. Single-file
 * formats are read from a scratch file; directory formats from a copy of a real model directory
 * with the one file replaced. Seeds are the project's own samples and small real fixtures.
 */
export interface FuzzTarget {
  readonly name: string;
  /** Seed inputs: real files of the format. */
  seeds(): Uint8Array[];
  /** Reads the input as a user's file; returns normally or throws. */
  run(input: Uint8Array): void;
}

const SAMPLES = join(ROOT, 'samples', 'or-gate');
const FIXTURES = join(ROOT, 'test', 'fixtures');
const scratch = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'modelbridge-fuzz-'));

/** Files of at most `limit` bytes among `paths` (files, or directories searched one level deep for `suffix`). */
function small(paths: readonly string[], suffix: string, limit = 64 * 1024): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const p of paths) {
    if (!existsSync(p)) continue;
    const files = statSync(p).isDirectory() ? readdirSync(p).filter((f) => f.endsWith(suffix)).map((f) => join(p, f)) : [p];
    for (const f of files) if (statSync(f).size <= limit) out.push(new Uint8Array(readFileSync(f)));
  }
  return out;
}

/** A model read the way the CLI reads it, then described the way `inspect` does. */
function readAs(path: string, format: string): void {
  const model = loadModel(path, { format });
  inspectModel(model, path);
}

function singleFile(name: string, format: string, extension: string, seeds: () => Uint8Array[]): FuzzTarget {
  const file = join(scratch, `${name}${extension}`);
  return {
    name,
    seeds,
    run(input) {
      writeFileSync(file, input);
      readAs(file, format);
    },
  };
}

/** A directory model (copied once from `template`) with `member` replaced by each input. */
function member(name: string, format: string, template: string, memberPath: string, root = ''): FuzzTarget {
  const dir = join(scratch, name);
  cpSync(template, dir, { recursive: true });
  return {
    name,
    seeds: () => [new Uint8Array(readFileSync(join(template, memberPath)))],
    run(input) {
      writeFileSync(join(dir, memberPath), input);
      readAs(join(dir, root), format);
    },
  };
}

function tfjsDir(): string {
  const dir = join(scratch, 'tfjs-template');
  if (!existsSync(dir)) {
    cpSync(join(SAMPLES, 'or-gate.json'), join(dir, 'or-gate.json'));
    cpSync(join(SAMPLES, 'or-gate.group1-shard1of1.bin'), join(dir, 'or-gate.group1-shard1of1.bin'));
  }
  return dir;
}

export const TARGETS: readonly FuzzTarget[] = [
  singleFile('safetensors', 'safetensors', '.safetensors', () => small([join(SAMPLES, 'or-gate.safetensors'), join(FIXTURES, 'safetensors')], '.safetensors')),
  singleFile('pytorch', 'pytorch', '.pt', () => small([join(SAMPLES, 'or-gate.pt'), join(FIXTURES, 'pytorch')], '.pt')),
  singleFile('onnx', 'onnx', '.onnx', () => small([join(SAMPLES, 'or-gate.onnx'), join(FIXTURES, 'hostile')], '.onnx')),
  singleFile('graphdef', 'graphdef', '.pb', () => small([join(SAMPLES, 'or-gate.pb'), join(FIXTURES, 'hostile')], '.pb')),
  member('savedmodel', 'savedmodel', join(SAMPLES, 'or-gate-savedmodel'), 'saved_model.pb'),
  member('tensorbundle', 'savedmodel', join(SAMPLES, 'or-gate-savedmodel'), join('variables', 'variables.index')),
  member('tfjs', 'tfjs', tfjsDir(), 'or-gate.json', 'or-gate.json'),
  singleFile('tflite', 'tflite', '.tflite', () => small([join(SAMPLES, 'or-gate.tflite'), join(FIXTURES, 'tflite')], '.tflite')),
  {
    name: 'npy',
    seeds: npySeeds,
    run(input) {
      readNpy(input, 'fuzz.npy');
    },
  },
  {
    name: 'npz',
    seeds: () => {
      const parts: Uint8Array[] = [];
      const zip = new ZipWriter((b) => parts.push(Uint8Array.from(b)), 1);
      npySeeds().forEach((npy, i) => zip.add(`x${i}.npy`, npy));
      zip.finish();
      return [Buffer.concat(parts)];
    },
    run(input) {
      readNpz(input, 'fuzz.npz');
    },
  },
];

/** A clean refusal: the error class of a bad file or an unsupported request. */
export function accepted(error: unknown): string | undefined {
  if (error instanceof FormatError) return 'FormatError';
  if (error instanceof UsageError) return 'UsageError';
  return undefined;
}

function npySeeds(): Uint8Array[] {
  return [
    writeNpy(Tensor.from('float32', [2, 2], [0, 1, 0.5, -2])),
    writeNpy(Tensor.from('int64', [3], [1, 2, 3])),
    writeNpy(Tensor.from('bool', [1, 2], [1, 0])),
  ];
}
