import type { Argv } from 'yargs';
import * as demo from '../../api/demo.js'; // lazy in the CLI bundle
import { renderTable } from '../table.js';

export function demoCommand(y: Argv): Argv {
  return y.command(
    'demo',
    'Train the OR gate, save it in every format, reload and run each file, and compare',
    (c) =>
      c
        .option('out', { type: 'string', default: 'or-gate', describe: 'directory for the files' })
        .option('seed', { type: 'number', default: 0, describe: 'training seed' })
        .option('json', { type: 'boolean', default: false, describe: 'print the rows as JSON' })
        .option('quiet', { type: 'boolean', default: false, describe: 'write the files, print nothing' })
        .example('$0 demo', 'writes ./or-gate/ and prints the table')
        .example('$0 demo --out /tmp/or --seed 3', 'another directory and seed'),
    (argv) => {
      const { trained, rows } = demo.runDemo(argv.out, argv.seed);
      if (argv.quiet) return;
      if (argv.json) {
        process.stdout.write(`${JSON.stringify({ loss: trained.loss, predictions: trained.predictions, rows }, null, 2)}\n`);
        return;
      }
      const p = (v: number) => v.toFixed(6);
      process.stdout.write(
        `OR gate (2-2-1 sigmoid), trained ${trained.epochs} epochs on (0,0)->0 (0,1)->1 (1,0)->1, seed ${trained.seed}: final loss ${trained.loss.toExponential(3)}\n` +
          `trained model predicts ${trained.predictions.map(p).join('  ')} for (0,0) (0,1) (1,0) (1,1)\n\n`,
      );
      const table = renderTable(
        ['format', 'file', 'bytes', '(0,0)', '(0,1)', '(1,0)', '(1,1)', 'max |diff|'],
        rows.map((r) => [r.format, r.file, String(r.bytes), ...r.predictions.map(p), r.maxDiff.toExponential(2)]),
      );
      process.stdout.write(`${table}\n`);
    },
  );
}
