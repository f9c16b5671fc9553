import type { Argv } from 'yargs';
import * as yargsEntry from 'yargs'; // lazy in the CLI bundle
import * as yargsHelpers from 'yargs/helpers'; // lazy in the CLI bundle
import { formatNames } from '../formats/registry.js';
import { convertCommand } from './commands/convert.js';
import { demoCommand } from './commands/demo.js';
import { diffCommand } from './commands/diff.js';
import { inspectCommand, inspectJsonFast } from './commands/inspect.js';
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
  let cli = yargsEntry.default(argv)
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
  skipHelpCache(cli);
  try {
    cli.parseSync();
  } catch (error) {
    exitWithError(error);
  }
}

/** The part of yargs' internals skipHelpCache() reaches (yargs 18; not in its types). */
interface YargsInternals {
  getInternalMethods?(): { getUsageInstance?(): { cacheHelpMessage?: () => void } };
}

/**
 * yargs renders the whole help text (every command and option, wrapped) after each command
 * handler returns, and keeps it for a showHelp() after an asynchronous failure. This CLI never
 * shows help on a failure (.fail above prints one line), so that rendering (wrap-ansi over
 * every option, milliseconds of every command's start) is skipped; --help still renders it when
 * asked. Should a yargs update move
 * these internals, nothing is skipped.
 */
function skipHelpCache(cli: Argv): void {
  const usage = (cli as unknown as YargsInternals).getInternalMethods?.().getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => undefined;
}

// The bundle (dist/cli.cjs) starts nothing when loaded: bin/modelbridge.cjs calls run() on the main
// thread, and each worker thread of `serve --workers N` calls serveWorker() (src/serve/pool.ts).
// Why not decide here with node:worker_threads' isMainThread: loading that module is a
// noticeable share of every command's start, and only `serve --workers` needs it.

/**
 * The command line of this process. `inspect MODEL --json` may run without loading yargs at all
 * (inspectJsonFast says when); everything else is parsed by yargs in main().
 */
export function run(): void {
  // What yargs' hideBin() returns under Node (a packaged Electron app differs: left to it).
  const args = process.versions.electron === undefined ? process.argv.slice(2) : undefined;
  if (args !== undefined) {
    try {
      guardTemporaries();
      if (inspectJsonFast(args)) return;
    } catch (error) {
      // As main() reports a failing command.
      exitWithError(error);
    }
  }
  main(markStdio(yargsHelpers.hideBin(process.argv)));
}

/** The loop of a `serve --workers N` worker thread. */
export function serveWorker(): void {
  worker.serveWorker();
}
