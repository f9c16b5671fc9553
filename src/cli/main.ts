import { isMainThread, workerData } from 'node:worker_threads';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { formatNames } from '../formats/registry.js';
import { convertCommand } from './commands/convert.js';
import { demoCommand } from './commands/demo.js';
import { diffCommand } from './commands/diff.js';
import { inspectCommand } from './commands/inspect.js';
import { runCommand } from './commands/run.js';
import { serveCommand } from './commands/serve.js';
import { trainOrCommand } from './commands/train-or.js';
import { validateCommand } from './commands/validate.js';
import { EXIT, exitWithError } from './errors.js';
import { escapeControl } from '../core/printable.js';
import { VERSION } from '../version.js';
import { markStdio } from './stdio.js';
import { guardTemporaries } from './temp-guard.js';
import * as worker from '../serve/worker.js'; // lazy in the CLI bundle

/** The modelbridge command line: thin over the library, one line per error. */
export function main(argv: string[]): void {
  guardTemporaries();
  let cli = yargs(argv)
    .scriptName('modelbridge')
    .usage('$0 <command> [options]\n\nMove trained networks between TensorFlow and PyTorch formats, bit for bit, and prove it by running them.')
    .epilogue(`formats: ${formatNames().join(', ')}`)
    .strict()
    .demandCommand(1, 'give a command (see --help)')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(VERSION)
    .wrap(Math.min(120, process.stdout.columns || 100))
    .fail((message, error) => {
      if (error) exitWithError(error);
      process.stderr.write(`error: ${escapeControl(message)} (see modelbridge --help)\n`);
      process.exit(EXIT.usage);
    });
  for (const add of [convertCommand, inspectCommand, runCommand, validateCommand, diffCommand, serveCommand, demoCommand, trainOrCommand]) cli = add(cli);
  try {
    cli.parseSync();
  } catch (error) {
    exitWithError(error);
  }
}

// The same bundle is the worker of `serve --workers N` (src/serve/pool.ts): no command line there.
if (isMainThread) main(markStdio(hideBin(process.argv)));
else if ((workerData as { modelbridgeServeWorker?: boolean } | null)?.modelbridgeServeWorker) worker.serveWorker();
