import { mkdtempSync, rmSync } from '../../core/vfs.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError, UsageError } from '../../core/errors.js';
import type { Model } from '../../core/model.js';
import { progressPhase } from '../../core/progress.js';
import { formatShape } from '../../core/shape.js';
import { Tensor } from '../../core/tensor.js';
import { compareOutputs, compareWeights } from '../diff.js';
import { saveModel } from '../load.js';
import { Runner } from '../run.js';
import { compareTensors, formatNumber, scanNonFinite } from './elements.js';
import { bindInputs, flattenNested, generateInputs, pairByName, signatureValue } from './inputs.js';
import { result, type CheckContext, type CheckResult, type InputSet } from './types.js';

function bytesOf(model: Model): number {
  let n = 0;
  for (const t of model.weights.values()) n += t.byteLength;
  return n;
}

/** The tensors the model is run on: --inputs when given, else generated from the signature. */
export function feedsFor(model: Model, runner: Runner, inputs: InputSet | undefined): { feeds: Record<string, Tensor>; description: string; guessed: boolean } | { error: string } {
  if (inputs) {
    try {
      const feeds = bindInputs(model, runner.signature, inputs);
      return { feeds, description: `--inputs ${Object.entries(feeds).map(([k, t]) => `${k} ${formatShape(t.shape)} ${t.dtype}`).join(', ')}`, guessed: false };
    } catch (error) {
      if (error instanceof UsageError || error instanceof FormatError || error instanceof RangeError) return { error: error.message };
      throw error;
    }
  }
  const generated = generateInputs(model, runner.signature);
  if ('error' in generated) return { error: `${generated.error}: give --inputs` };
  return { feeds: generated.tensors, description: generated.description, guessed: generated.guessed };
}

function runner(model: Model): Runner | string {
  try {
    // One call: weights used in place, not packed (src/runtime/once.ts).
    return new Runner(model, undefined, { once: true });
  } catch (error) {
    if (error instanceof UsageError) return error.message;
    throw error;
  }
}

/** The model runs on a generated input (or --inputs), its outputs have the declared shapes. */
export function checkRuns(ctx: CheckContext): CheckResult {
  const model = ctx.model;
  if (!model.graph) return result('runs', 'skip', 'bare state dict: nothing to run');
  const r = runner(model);
  if (typeof r === 'string') return result('runs', 'fail', `cannot prepare the graph: ${r}`);
  const feeds = feedsFor(model, r, ctx.inputs);
  if ('error' in feeds) return result('runs', ctx.inputs ? 'fail' : 'skip', `no input to run on: ${feeds.error}`);
  const started = performance.now();
  let outputs: Record<string, Tensor>;
  try {
    outputs = r.run(feeds.feeds);
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof RangeError)) throw error;
    // With unknown dims guessed as 1 a failure may be the guess (a 3x3 kernel on a 1x1 image).
    if (feeds.guessed) return result('runs', 'warn', `failed on ${feeds.description} (unknown dims set to 1; give --inputs): ${error.message}`, { inputs: feeds.description });
    return result('runs', 'fail', `failed on ${feeds.description}: ${error.message}`, { inputs: feeds.description });
  }
  const ms = performance.now() - started;
  const problems: string[] = [];
  const warnings: string[] = [];
  const described = Object.entries(outputs).map(([key, t]) => {
    const info = signatureValue(model, r.signature, key, 'outputs');
    if (!t) problems.push(`output ${key} was not computed`);
    else {
      if (info && info.dtype !== t.dtype) problems.push(`output ${key} is ${t.dtype}, declared ${info.dtype}`);
      const shape = info?.shape;
      if (shape && (shape.length !== t.shape.length || shape.some((d, i) => typeof d === 'number' && d !== t.shape[i]))) {
        problems.push(`output ${key} has shape ${formatShape(t.shape)}, declared [${shape.map((d) => (typeof d === 'number' ? d : '?')).join(', ')}]`);
      }
      if (t.dtype !== 'string') {
        const { nan, inf } = scanNonFinite(t);
        if (nan || inf) warnings.push(`output ${key} has ${nan} NaN and ${inf} infinite values`);
      }
    }
    return { name: key, dtype: t?.dtype ?? null, shape: t?.shape ?? null };
  });
  const details = { inputs: feeds.description, outputs: described, milliseconds: Math.round(ms * 10) / 10 };
  const text = `ran on ${feeds.description} -> ${described.map((o) => `${o.name} ${o.shape ? formatShape(o.shape) : '?'} ${o.dtype}`).join(', ')} in ${formatNumber(ms)} ms`;
  if (problems.length) return result('runs', 'fail', `${problems.join('; ')} (${text})`, details);
  if (warnings.length) return result('runs', 'warn', `${warnings.join('; ')} (${text})`, details);
  return result('runs', 'pass', text, details);
}

/** --inputs/--expect: the outputs equal the expected ones within --atol/--rtol. */
export function checkGolden(ctx: CheckContext): CheckResult {
  const model = ctx.model;
  const expect = ctx.expect!;
  if (!model.graph) return result('golden', 'fail', 'bare state dict: cannot compute outputs to compare with --expect');
  const r = runner(model);
  if (typeof r === 'string') return result('golden', 'fail', `cannot prepare the graph: ${r}`);
  const feeds = feedsFor(model, r, ctx.inputs);
  if ('error' in feeds) return result('golden', 'fail', `no input: ${feeds.error}`);
  let outputs: Record<string, Tensor>;
  try {
    outputs = r.run(feeds.feeds);
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof RangeError)) throw error;
    return result('golden', 'fail', `failed to run on ${feeds.description}: ${error.message}`);
  }
  const { pairs, missing, unused } = pairByName(Object.keys(outputs), expect);
  const problems: string[] = [];
  if (unused.length) problems.push(`--expect gives ${unused.join(', ')}, which the model does not output (outputs: ${Object.keys(outputs).join(', ')})`);
  if (missing.length && pairs.length === 0) problems.push(`--expect gives none of the outputs ${missing.join(', ')}`);
  const compared: Array<Record<string, unknown>> = [];
  for (const [key, value] of pairs) {
    const actual = outputs[key]!;
    let expected: Tensor;
    try {
      expected = value instanceof Tensor ? value : numbersTensor(value.json, key);
    } catch (error) {
      problems.push(`expected ${key}: ${(error as Error).message}`);
      continue;
    }
    if (expected.size !== actual.size || (expected.shape.length && expected.shape.join() !== actual.shape.join())) {
      problems.push(`output ${key} has shape ${formatShape(actual.shape)}, --expect gives ${formatShape(expected.shape)}`);
      continue;
    }
    const stats = compareTensors(Tensor.from('float64', actual.shape, actual.toNumbers()), Tensor.from('float64', actual.shape, expected.toNumbers()), ctx.tolerance);
    compared.push({ name: key, shape: actual.shape, maxAbs: stats.maxAbs, maxRel: stats.maxRel, beyond: stats.beyond, count: stats.count });
    if (stats.beyond) problems.push(`output ${key}: ${stats.beyond} of ${stats.count} values beyond tolerance, max abs error ${formatNumber(stats.maxAbs)} (first at index ${stats.firstBeyond})`);
  }
  const tol = `atol ${ctx.tolerance.atol}, rtol ${ctx.tolerance.rtol}`;
  const details = { inputs: feeds.description, tolerance: ctx.tolerance, outputs: compared, notCompared: missing };
  if (problems.length) return result('golden', 'fail', `${problems.join('; ')} (${tol})`, details);
  const worst = compared.reduce((m, c) => Math.max(m, (c['maxAbs'] as number | null) ?? 0), 0);
  const partial = missing.length ? `; not in --expect: ${missing.join(', ')}` : '';
  return result('golden', 'pass', `${compared.length} output(s) match --expect on ${feeds.description}: max abs error ${formatNumber(worst)} (${tol})${partial}`, details);
}

function numbersTensor(json: unknown, key: string): Tensor {
  const { shape, values } = flattenNested(json, '--expect', `output ${key}`);
  return Tensor.from('float64', shape, values);
}

/**
 * Converts the model through each listed format in turn (in a temporary directory) and checks the
 * weights stay bit-identical (by name, or by layout across names) and the outputs equal the
 * original's within tolerance. One result per hop, named roundtrip:<format>.
 */
export function checkRoundtrip(ctx: CheckContext): CheckResult[] {
  const out: CheckResult[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'modelbridge-roundtrip-'));
  try {
    let current: Model = ctx.model;
    let broken = '';
    for (const [i, format] of ctx.roundtrip.entries()) {
      const name = `roundtrip:${format.name}`;
      if (broken) {
        out.push(result(name, 'skip', `not run: ${broken}`, { format: format.name }));
        continue;
      }
      const file = join(dir, `hop${i}-${format.name}${format.extensions[0] ?? ''}`);
      let reloaded: Model;
      try {
        progressPhase('write', bytesOf(current));
        saveModel(current, file, { format: format.name });
        reloaded = format.read(file, {});
      } catch (error) {
        if (!(error instanceof FormatError || error instanceof UsageError || error instanceof RangeError)) throw error;
        broken = `the ${format.name} hop failed`;
        out.push(result(name, 'fail', `cannot convert through ${format.name}: ${error.message}`, { format: format.name }));
        continue;
      }
      progressPhase('compare', bytesOf(ctx.model));
      const weights = compareWeights(ctx.model.weights, reloaded.weights, { atol: 0, rtol: 0 });
      progressPhase('outputs', ctx.model.graph ? bytesOf(ctx.model) : 0);
      const outputs = ctx.model.graph ? compareOutputs(ctx.model, reloaded, ctx.tolerance, ctx.inputs) : undefined;
      const changed = weights.tensors.filter((t) => t.status !== 'identical');
      const problems: string[] = [];
      if (changed.length) {
        problems.push(`${changed.length} tensor(s) not bit-identical: ${changed.slice(0, 3).map((t) => `${t.name} (${t.status}${t.maxAbs !== null ? `, max abs ${formatNumber(t.maxAbs)}` : ''})`).join(', ')}${changed.length > 3 ? ', ...' : ''}`);
      }
      if (ctx.model.graph && !reloaded.graph) problems.push('the architecture was lost');
      if (outputs?.status === 'different') problems.push(`outputs differ: ${outputs.message}`);
      const via = weights.tensors.filter((t) => t.via && t.via !== 'name').length;
      const details = { format: format.name, weights: weights.counts, outputs: outputs ? { status: outputs.status, message: outputs.message, outputs: outputs.outputs } : null };
      if (problems.length) {
        broken = `the ${format.name} hop changed the model`;
        out.push(result(name, 'fail', problems.join('; '), details));
      } else {
        const outText = outputs ? (outputs.status === 'skip' ? `; outputs not compared: ${outputs.message}` : `; ${outputs.message}`) : '';
        out.push(result(name, 'pass', `${weights.tensors.length} tensors bit-identical${via ? ` (${via} matched across names or layouts)` : ''}${outText}`, details));
      }
      current = reloaded;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
