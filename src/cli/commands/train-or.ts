import type { Argv } from 'yargs';
import * as load from '../../api/load.js'; // lazy in the CLI bundle
import * as orGate from '../../train/or-gate.js'; // lazy in the CLI bundle

export function trainOrCommand(y: Argv): Argv {
  return y.command(
    'train-or',
    'Train the OR gate deterministically and print its loss and 4 predictions',
    (c) =>
      c
        .option('seed', { type: 'number', default: 0, describe: 'seed: the same seed gives bit-identical weights' })
        .option('epochs', { type: 'number', default: 10000, describe: 'full-batch gradient descent steps' })
        .option('out', { type: 'string', describe: 'save the trained model (format from the extension)' })
        .option('force', { type: 'boolean', default: false, describe: 'overwrite an existing --out' })
        .option('json', { type: 'boolean', default: false, describe: 'print {"loss", "predictions"} as JSON' })
        .example('$0 train-or --seed 1 --out or.safetensors', 'train and save a bundle'),
    (argv) => {
      const trained = orGate.trainOrGate({ seed: argv.seed, epochs: argv.epochs });
      if (argv.out) load.saveModel(trained.model, argv.out, { force: argv.force });
      if (argv.json) {
        process.stdout.write(`${JSON.stringify({ seed: trained.seed, loss: trained.loss, predictions: trained.predictions })}\n`);
        return;
      }
      process.stdout.write(`seed ${trained.seed}, ${trained.epochs} epochs, final loss ${trained.loss.toExponential(4)}\n`);
      orGate.OR_INPUTS.forEach((x, i) => process.stdout.write(`  (${x.join(',')}) -> ${trained.predictions[i]!.toFixed(6)}${i === 3 ? '   (never seen in training)' : ''}\n`));
      if (argv.out) process.stdout.write(`saved ${argv.out}\n`);
    },
  );
}
