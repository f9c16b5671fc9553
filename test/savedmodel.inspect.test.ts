import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, FIXTURES, ROOT } from './cli-helpers.js';
import { tfPeer } from './fixtures/tf/peer.js';
import { peerPython } from './peers.js';

/**
 * `inspect` of a SavedModel lists what `saved_model_cli show --all` lists (every tag set and
 * signature, with the dtypes, shapes and graph tensors of inputs and outputs), checked against
 * the real saved_model_cli, plus the checkpoint's variables, checked against the fixtures'
 * inspection notes (test/fixtures/upstream/SAVEDMODEL_INSPECTION.txt).
 */
const python = peerPython();

const MODELS = {
  'half_plus_two (TF 1.14)': join(FIXTURES, 'tf-serving', 'testdata', 'saved_model_half_plus_two_cpu', '00000123'),
  'half_plus_two (TF2)': join(FIXTURES, 'tf-serving', 'testdata', 'saved_model_half_plus_two_tf2_cpu', '00000123'),
  'tfjs-node model_multi_output': join(FIXTURES, 'tfjs', 'tfjs-node', 'test_objects', 'saved_model', 'model_multi_output'),
  'the OR gate sample': join(ROOT, 'samples', 'or-gate', 'or-gate-savedmodel'),
};

interface Details {
  details: { title: string; columns: string[]; rows: (string | number)[][] }[];
}

function inspectJson(dir: string): Details {
  const r = cli(['inspect', dir, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Details;
}

/** "signature kind key dtype shape tensor" lines from saved_model_cli's --all output. */
function cliSignatures(text: string): string[] {
  const lines: string[] = [];
  let signature = '';
  const re = /^signature_def\['(.+)'\]:$|^ {4}(inputs|outputs)\['(.+)'\] tensor_info:\n {8}dtype: (\S+)\n {8}shape: (.+)\n {8}name: (.+)$/gm;
  for (const m of text.matchAll(re)) {
    if (m[1] !== undefined) signature = m[1];
    else lines.push([signature, m[2]!.slice(0, -1), m[3], m[4], m[5], m[6]].join(' '));
  }
  return lines.sort();
}

function ourSignatures(report: Details): string[] {
  return report.details
    .filter((d) => d.title.includes('signature_def'))
    .flatMap((d) => {
      const signature = /signature_def\['(.+)'\]/.exec(d.title)![1];
      return d.rows.map((row) => [signature, ...row].join(' '));
    })
    .sort();
}

describe('inspect of a SavedModel', () => {
  it("lists the checkpoint's variables with dtype, shape and size as the fixtures' notes record them", () => {
    const notes = readFileSync(join(FIXTURES, 'SAVEDMODEL_INSPECTION.txt'), 'utf8');
    const section = notes.split('\n## ').find((s) => s.startsWith('./tf-serving/testdata/saved_model_half_plus_two_cpu/00000123\n'))!;
    // The notes name dtypes as numpy does; TensorFlow's DataType names for them:
    const tfName: Record<string, string> = { float32: 'DT_FLOAT', float64: 'DT_DOUBLE', int32: 'DT_INT32', int64: 'DT_INT64' };
    const expected = [...section.matchAll(/^ {2}var (\S+) (\S+) \[(.*?)\] off \d+ size (\d+)/gm)].map((m) => `${m[1]} ${tfName[m[2]!]} [${m[3]}] ${m[4]}`);
    expect(expected.length).toBeGreaterThan(0);
    const table = inspectJson(MODELS['half_plus_two (TF 1.14)']).details.find((d) => d.title.startsWith('variables'))!;
    expect(table.columns).toEqual(['name', 'dtype', 'shape', 'bytes']);
    expect(table.rows.map((r) => r.join(' '))).toEqual(expected);
  });

  it('prints the tag sets, signatures and variables in the human report', () => {
    const r = cli(['inspect', MODELS['half_plus_two (TF 1.14)']]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/tag-set 'serve' \(TensorFlow 1\.14\.0\): signature_def\['regress_x2_to_y3'\], method tensorflow\/serving\/regress/);
    expect(r.stdout).toMatch(/input +inputs +DT_STRING +unknown_rank +tf_example:0/);
    expect(r.stdout).toMatch(/variables \(variables\/variables\.index, 5\)/);
  });

  describe.skipIf(!python)('against the real saved_model_cli', () => {
    for (const [name, dir] of Object.entries(MODELS)) {
      it(`${name}: the same signatures, keys, dtypes, shapes and tensors`, () => {
        const shown = tfPeer(['show', dir]) as { status: number; stdout: string };
        expect(shown.status).toBe(0);
        const expected = cliSignatures(shown.stdout);
        expect(expected.length).toBeGreaterThan(0);
        expect(ourSignatures(inspectJson(dir))).toEqual(expected);
      }, 60_000);
    }
  });
});
