import type { Argv } from 'yargs';
import * as run from '../../api/run.js'; // lazy in the CLI bundle
import * as inputs from '../inputs.js'; // lazy in the CLI bundle
import { loadModelArgs, withModelArgs } from '../module-option.js';
import { formatShape } from '../../core/shape.js';

export function runCommand(y: Argv): Argv {
  return y.command(
    'run <model>',
    "Run a model in modelbridge's runtime",
    (c) =>
      withModelArgs(c)
        .option('input', {
          type: 'string',
          array: true,
          default: [] as string[],
          describe: 'NAME=VALUE: a JSON nested array, or @FILE (.npy, .npz by name, or JSON as for validate --inputs); NAME= may be left out for a single input or a file of named arrays',
        })
        .option('output', { type: 'string', describe: 'also write the outputs to FILE.npy (one output) or FILE.npz (by name)' })
        .option('force', { type: 'boolean', default: false, describe: 'overwrite an existing --output file' })
        .option('json', { type: 'boolean', default: false, describe: 'print {"outputs": {NAME: {dtype, shape, data}}}' })
        .example("$0 run or-gate/or-gate.safetensors --input 'x=[[1,1]]'", 'ask the OR gate about (1,1)')
        .example('$0 run model.safetensors --input @batch.npy --json', 'input from a NumPy file, JSON output')
        .example('$0 run model.onnx --input @inputs.npz --output outputs.npz', 'inputs by name from an .npz, outputs to another')
        .example("$0 run - --input '[[0,1]]' < model.onnx", 'a model on standard input'),
    (argv) => {
      const model = loadModelArgs(argv);
      // One call per process: the weights are used in place, not packed for calls that never come.
      const runner = new run.Runner(model, argv.signature, { once: true });
      const graph = model.graph!;
      const dtypeOf = (key: string) => graph.inputs.find((i) => i.name === runner.signature.inputs.get(key))?.dtype ?? 'float32';
      const outputs = runner.run(inputs.parseInputs(argv.input, runner.inputNames, dtypeOf));
      if (argv.output !== undefined) inputs.writeOutputs(argv.output, outputs, argv.force);
      if (argv.json) {
        const json = Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape, data: t.toNumbers() }]));
        process.stdout.write(`${JSON.stringify({ outputs: json })}\n`);
        return;
      }
      for (const [name, t] of Object.entries(outputs)) {
        process.stdout.write(`${name}: ${t.dtype} ${formatShape(t.shape)}\n${JSON.stringify(inputs.toNested(t.toNumbers(), t.shape))}\n`);
      }
    },
  );
}
