import { readFileSync } from 'node:fs';
import { UsageError } from '../core/errors.js';
import { parseModuleSpec } from '../module/bundle.js';
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
  return parseModuleSpec(text, path);
}
