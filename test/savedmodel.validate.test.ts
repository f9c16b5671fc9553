import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateModel, type ModelReport } from '../src/api/validate.js';
import { savedmodelFormat, writeSavedModel } from '../src/formats/savedmodel/index.js';
import { readTensorBundle } from '../src/formats/tensorbundle/index.js';
import { FIXTURES } from './cli-helpers.js';
import { cnnModel } from './fixtures/tf/models.js';

/**
 * `validate` on SavedModels: the format's hook checks the TensorBundle's own integrity data, the
 * masked CRC-32C of every block of variables.index and of every tensor's bytes, and names what
 * fails: a flipped byte in a data file fails the tensor it hits, a flipped index byte the index.
 */

const HALF_PLUS_TWO = join(FIXTURES, 'tf-serving/testdata/saved_model_half_plus_two_cpu/00000123');

function copy(source: string): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'mb-savedmodel-validate-')), 'model');
  cpSync(source, dir, { recursive: true });
  return dir;
}

function flip(file: string, at: number): void {
  const bytes = readFileSync(file);
  bytes[at] = bytes[at]! ^ 0x01;
  writeFileSync(file, bytes);
}

const statuses = (r: ModelReport) => Object.fromEntries(r.checks.map((c) => [c.name, c.status]));
const message = (r: ModelReport, name: string) => r.checks.find((c) => c.name === name)?.message ?? '';

describe('SavedModel validate hook', () => {
  it('passes a TF checkpoint with snappy index blocks and one modelbridge wrote, counting what it checked', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'mb-savedmodel-validate-')), 'cnn');
    writeSavedModel(cnnModel(), dir);
    for (const [path, tensors] of [[HALF_PLUS_TWO, 5], [dir, 11]] as const) {
      const checks = savedmodelFormat.validate!(path);
      expect(checks.map((c) => [c.name, c.status]), path).toEqual([['checksums:index', 'pass'], ['checksums:tensors', 'pass']]);
      expect(checks[1]!.message).toContain(`(${tensors} tensors)`);
      const report = validateModel(path);
      expect(report.status, path).toBe('pass');
      expect(statuses(report)).toMatchObject({ parse: 'pass', 'checksums:index': 'pass', 'checksums:tensors': 'pass', runs: 'pass' });
    }
  });

  it('a flipped byte in the variables data file fails the tensor it lands in, by name', () => {
    const dir = copy(HALF_PLUS_TWO);
    // Tensors a, a2, b, c, c2 are 4 bytes each from offset 0: byte 13 is inside "c".
    flip(join(dir, 'variables', 'variables.data-00000-of-00001'), 13);
    const checks = savedmodelFormat.validate!(dir);
    expect(checks.map((c) => [c.name, c.status])).toEqual([['checksums:index', 'pass'], ['checksums:tensors', 'fail']]);
    expect(checks[1]!.message).toMatch(/^1 of 5 tensors fail their check: .*variables\.data-00000-of-00001: tensor "c" at byte 12: data matching its checksum 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$/);
    const report = validateModel(dir);
    expect(report.status).not.toBe('pass');
    expect(statuses(report)['checksums:tensors']).toBe('fail');
  });

  it('a flipped byte in variables.index fails the index check; a missing data file fails every tensor', () => {
    const dir = copy(HALF_PLUS_TWO);
    flip(join(dir, 'variables', 'variables.index'), 2);
    const checks = savedmodelFormat.validate!(dir);
    expect(checks.map((c) => [c.name, c.status])).toEqual([['checksums:index', 'fail'], ['checksums:tensors', 'skip']]);
    expect(checks[0]!.message).toMatch(/variables\.index: data block 0 at byte 0: block checksum 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}/);
    expect(message(validateModel(dir), 'checksums:index')).toMatch(/block checksum/);

    const missing = copy(HALF_PLUS_TWO);
    rmSync(join(missing, 'variables', 'variables.data-00000-of-00001'));
    const m = savedmodelFormat.validate!(missing);
    expect(m[1]!.status).toBe('fail');
    expect(m[1]!.message).toMatch(/^5 of 5 tensors fail their check: .*a readable file \(ENOENT\)/);
  });

  it('a SavedModel without variables has nothing to verify', () => {
    const dir = copy(join(FIXTURES, 'tf2onnx/models/saved_model_with_redundant_inputs'));
    expect(savedmodelFormat.validate!(dir)).toEqual([{ name: 'checksums', status: 'skip', message: 'no variables/variables.index: the SavedModel has no checkpoint to verify' }]);
    // The checkpoint the hook passes is the one the reader accepts.
    expect(readTensorBundle(join(HALF_PLUS_TWO, 'variables', 'variables')).tensors.size).toBe(5);
  });
});
