import type { Argv } from 'yargs';
import { readModuleOption } from '../module-option.js';
import * as load from '../../api/load.js'; // lazy in the CLI bundle
import type { ConvertResult } from '../../api/load.js';
import * as elements from '../../api/checks/elements.js'; // lazy in the CLI bundle
import { formatBytes } from '../table.js';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../../core/errors.js';
import * as progress from '../progress.js'; // lazy in the CLI bundle
import { finishStdout, modelPath, outputPath, STDIO_ARG } from '../stdio.js';

/** Bytes of a file, or of everything under a directory. */
function sizeOf(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((n, name) => n + sizeOf(join(path, name)), 0);
}

/** `convert --json`: the schema is docs/convert-report.md. */
function convertReport(input: string, output: string, r: ConvertResult, files: ReadonlyArray<{ path: string; bytes: number }>, total: number) {
  let bytes = 0;
  for (const t of r.model.weights.values()) bytes += t.byteLength;
  return {
    input: { path: input, format: r.model.format, bytes: sizeOf(input) },
    output: { path: output, format: r.format, bytes: files.reduce((n, f) => n + f.bytes, 0), files },
    tensors: r.model.weights.size,
    tensorBytes: bytes,
    architecture: r.model.graph !== undefined,
    verification: r.verification ?? null,
    seconds: { ...r.seconds, total: Math.round(total * 1000) / 1000 },
  };
}

function parseExternalData(value: string | undefined): boolean | number | undefined {
  if (value === undefined) return undefined;
  if (value === 'true' || value === '') return true;
  if (value === 'false') return false;
  const bytes = Number(value);
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new UsageError(`--external-data takes true, false or a size threshold in bytes, not ${JSON.stringify(value)}`);
  return bytes;
}

export function convertCommand(y: Argv): Argv {
  return y.command(
    'convert <input> <output>',
    'Convert a model to another format (weights bit-identical, computation unchanged)',
    (c) =>
      c
        .positional('input', { type: 'string', demandOption: true, describe: 'model file or directory to read; - reads a single-file model from standard input' })
        .positional('output', { type: 'string', demandOption: true, describe: 'file or directory to write; - writes a single-file format (give --to) to standard output, the summary to stderr' })
        .option('from', { type: 'string', describe: 'input format (default: detected from its bytes or layout)' })
        .option('to', { type: 'string', describe: 'output format (default: from the output extension; with no extension, the input format)' })
        .option('module', { type: 'string', describe: 'module spec JSON file giving the architecture of a bare state dict' })
        .option('signature', { type: 'string', describe: 'signature to convert (SavedModel, default serving_default; TFLite, default the first SignatureDef)' })
        .option('key', { type: 'string', describe: 'checkpoint entry holding the state dict (e.g. model_state_dict); default: found' })
        .option('shard-size', { type: 'number', describe: 'split the output into shards of at most this many bytes (safetensors; TF.js default 4194304)' })
        .option('opset', { type: 'number', describe: 'ai.onnx opset to write, ops converted to it (ONNX; default 17)' })
        .option('external-data', { type: 'string', describe: 'ONNX initializers in <output>.data: "true", "false", or a size threshold in bytes (default: only past 2 GB)' })
        .option('quantize', { choices: ['float16', 'uint8', 'uint16', 'dynamic-int8'] as const, describe: 'store float weights quantized: float16, uint8, uint16 dequantized by TF.js on load (TF.js); float16 or dynamic-int8 as TFLiteConverter does (TFLite)' })
        .option('force', { type: 'boolean', default: false, describe: 'overwrite an existing output' })
        .option('verify', { type: 'boolean', default: true, describe: 'read the output back and compare weights and outputs (--no-verify skips it)' })
        .option('json', { type: 'boolean', default: false, describe: 'print a report as JSON: files, bytes, tensors, verification, seconds per phase (docs/convert-report.md)' })
        .option('quiet', { type: 'boolean', default: false, describe: 'no progress bar on a terminal (results are still printed)' })
        .example('$0 convert or-gate.safetensors copy.safetensors', 'rewrite a bundle')
        .example('$0 convert weights.safetensors model.safetensors --module spec.json', 'attach an architecture to a bare state dict')
        .example('$0 convert big.safetensors shards/ --shard-size 2000000000', 'write a sharded bundle with model.safetensors.index.json')
        .example('$0 convert model.pt model.safetensors --module spec.json', 'a torch.save state dict, read without unpickling, as a runnable bundle')
        .example('$0 convert model.safetensors model.onnx --opset 13', 'an ONNX model at opset 13')
        .example('$0 convert model.pt2 model.onnx', 'a torch.export program (torch.export.save) as ONNX')
        .example('$0 convert saved_model/ model.pt2', 'a TensorFlow model as a program torch.export.load runs')
        .example('$0 convert saved_model/ web/ --to tfjs --quantize uint8', 'a TF.js graph model with 8-bit weights')
        .example('$0 convert model.onnx model.tflite', 'a TensorFlow Lite model that LiteRT runs')
        .example('$0 convert saved_model/ model.tflite --quantize dynamic-int8', 'with int8 weights, as dynamic-range quantization in TFLiteConverter')
        .example('$0 convert model.keras model.safetensors', 'a Keras 3 archive (or a legacy model.h5) as PyTorch-layout tensors')
        .example('$0 convert model.h5 model.keras', 'a legacy Keras HDF5 model as a Keras 3 archive keras.saving.load_model reads')
        .example('$0 convert model.onnx - --to safetensors > model.safetensors', 'write to standard output (a pipe)')
        .example('$0 convert model.onnx model.safetensors --json > report.json', 'a machine-readable report of what was written and verified'),
    (argv) => {
      const started = performance.now();
      // `-`: standard input (copied to a temporary file) and standard output (written through one).
      const externalData = parseExternalData(argv['external-data']);
      const toStdout = argv.output === STDIO_ARG;
      const input = modelPath(argv.input);
      const output = outputPath(argv.output, argv.to, { shardBytes: argv['shard-size'], externalData });
      const out = toStdout ? process.stderr : process.stdout;
      const stopProgress = progress.showProgress(argv.quiet);
      let result: ConvertResult;
      try {
        result = load.convertModel(input, output, {
          from: argv.from,
          to: argv.to,
          module: readModuleOption(argv.module),
          key: argv.key,
          signature: argv.signature,
          force: argv.force,
          shardBytes: argv['shard-size'],
          opset: argv.opset,
          externalData,
          quantize: argv.quantize,
          verify: argv.verify,
        });
      } finally {
        stopProgress();
      }
      const { model, files, verification } = result;
      if (toStdout) finishStdout(files[0]!);
      const sizes = files.map((f) => ({ path: f, bytes: sizeOf(f) }));
      const size = sizes.reduce((n, f) => n + f.bytes, 0);
      if (argv.json) {
        out.write(`${JSON.stringify(convertReport(input, output, result, sizes, (performance.now() - started) / 1000), (_k, v) => (typeof v === 'number' ? elements.jsonNumber(v) : v), 2)}\n`);
        return;
      }
      // Many files (TF.js shards): the first and a count, not a wall of names.
      const named = toStdout ? '- (standard output)' : files.length <= 4 ? files.join(', ') : `${files[0]} and ${files.length - 1} more files`;
      out.write(`wrote ${named} (${formatBytes(size)}, ${model.weights.size} tensors${model.graph ? '' : ', no architecture'})\n`);
      out.write(verification ? `verified: ${verification.summary}\n` : 'not verified (--no-verify)\n');
    },
  );
}
