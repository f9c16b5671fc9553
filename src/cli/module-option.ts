import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { loadModel } from '../api/load.js';
import type { Model } from '../core/model.js';
import { UsageError } from '../core/errors.js';
import * as bundle from '../module/bundle.js'; // lazy in the CLI bundle
import { modelPath } from './stdio.js';
import type { ModuleSpec } from '../module/spec.js';

/** Reads the --module SPEC.json option, if given. */
export function readModuleOption(path: string | undefined): ModuleSpec | undefined {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new UsageError(`cannot read module spec ${path}`);
  }
  return bundle.parseModuleSpec(text, path);
}

/** The arguments every command that reads one model shares: <model>, --from, --module. */
export function withModelArgs<T>(c: Argv<T>) {
  return c
    .positional('model', { type: 'string', demandOption: true, describe: 'model file or directory; - reads a single-file model from standard input' })
    .option('from', { type: 'string', describe: 'format (default: detected from its bytes or layout)' })
    .option('module', { type: 'string', describe: 'module spec JSON giving the architecture of a bare state dict' })
    .option('key', { type: 'string', describe: 'checkpoint entry holding the state dict (e.g. model_state_dict); default: found' })
    .option('signature', { type: 'string', describe: 'signature to use (SavedModel default: serving_default; elsewhere the first)' });
}

/** The arguments withModelArgs() declares, parsed. */
export interface ModelArgs {
  readonly model: string;
  readonly from?: string | undefined;
  readonly module?: string | undefined;
  readonly key?: string | undefined;
  readonly signature?: string | undefined;
}

/** The model the arguments name; `-` reads it from standard input (single-file formats). */
export function loadModelArgs(argv: ModelArgs): Model {
  return loadModel(modelPath(argv.model), { format: argv.from, module: readModuleOption(argv.module), key: argv.key, signature: argv.signature });
}
