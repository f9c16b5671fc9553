import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { FormatError } from '../src/core/errors.js';
import type { Tensor } from '../src/core/tensor.js';
import { decodeGraphDef, graphDefToModel } from '../src/formats/graphdef/index.js';
import { savedModelFromBytes } from '../src/formats/savedmodel/index.js';
import { readTensorBundle } from '../src/formats/tensorbundle/index.js';
import { FIXTURES } from './cli-helpers.js';

/**
 * Property: whatever the bytes of a saved_model.pb or a frozen GraphDef, reading it (decoding,
 * choosing graph and signature, inlining functions, resolving variables, mapping ops) returns a
 * model or throws FormatError: never a TypeError, RangeError or a hang. Inputs are real files of
 * test/fixtures/upstream (TF1 and TF2 SavedModels, frozen graphs) mutated blindly, truncated, and with
 * bytes spliced in; the checkpoints are the real ones, so the variable paths are reached too.
 */


interface SavedBase {
  readonly pb: Uint8Array;
  readonly bundle: ReadonlyMap<string, Tensor>;
  /** A signature the file has (serving_default, or one of tf-java's named ones). */
  readonly signature: string;
}

const savedBases: SavedBase[] = [
  ['tf-serving/testdata/saved_model_half_plus_two_cpu/00000123', 'serving_default'],
  ['tf-serving/testdata/saved_model_half_plus_two_tf2_cpu/00000123', 'serving_default'],
  ['tfjs/tfjs-node/test_objects/saved_model/uint8_multiply', 'serving_default'],
  ['tf-java/saved_model_using_python/model', 'get_variable'],
].map(([dir, signature]) => ({
  signature: signature!,
  pb: new Uint8Array(readFileSync(join(FIXTURES, dir!, 'saved_model.pb'))),
  bundle: readTensorBundle(join(FIXTURES, dir!, 'variables', 'variables')).tensors,
}));

const graphBases: Uint8Array[] = ['tf-rust/examples/addition/model.pb', 'tf-rust/tensorflow-sys/examples/assets/multiplication.pb', 'tf2onnx/models/regression/graphdef/frozen.pb'].map(
  (p) => new Uint8Array(readFileSync(join(FIXTURES, p))),
);

/** Runs a read; "ok" or "FormatError", anything else escapes and fails the property. */
function outcome(read: () => unknown): string {
  try {
    read();
    return 'ok';
  } catch (err) {
    if (err instanceof FormatError) return 'FormatError';
    throw err;
  }
}

const readSaved = (pb: Uint8Array, bundle: ReadonlyMap<string, Tensor>, signature: string) => outcome(() => savedModelFromBytes(pb, 'saved_model.pb', bundle, { signature }));
const readGraph = (bytes: Uint8Array) => outcome(() => graphDefToModel(decodeGraphDef(bytes, 'frozen.pb'), 'frozen.pb'));

type Edit = { at: number; value: number };
const edits = fc.array(fc.record({ at: fc.nat(), value: fc.nat(255) }), { minLength: 1, maxLength: 6 });

function applied(bytes: Uint8Array, list: readonly Edit[]): Uint8Array {
  const out = bytes.slice();
  for (const { at, value } of list) out[at % out.length] = value;
  return out;
}

function spliced(bytes: Uint8Array, at: number, cut: number, insert: Uint8Array): Uint8Array {
  const i = at % (bytes.length + 1);
  const j = Math.min(bytes.length, i + (cut % 16));
  const out = new Uint8Array(bytes.length - (j - i) + insert.length);
  out.set(bytes.subarray(0, i));
  out.set(insert, i);
  out.set(bytes.subarray(j), i + insert.length);
  return out;
}

describe('SavedModel and GraphDef fuzz', () => {
  test('the unmodified bases read', () => {
    for (const b of savedBases) expect(readSaved(b.pb, b.bundle, b.signature)).toBe('ok');
    for (const g of graphBases) expect(readGraph(g)).toBe('ok');
  });

  test('saved_model.pb: blind mutations, with and without the right checkpoint', () => {
    fc.assert(
      fc.property(fc.nat(savedBases.length - 1), edits, fc.boolean(), (which, list, withBundle) => {
        const b = savedBases[which]!;
        readSaved(applied(b.pb, list), withBundle ? b.bundle : new Map(), b.signature);
      }),
      { numRuns: 200 },
    );
  });

  test('saved_model.pb: truncations and spliced bytes, under other signatures too', () => {
    fc.assert(
      fc.property(fc.nat(savedBases.length - 1), fc.nat(), fc.nat(), fc.uint8Array({ maxLength: 12 }), fc.constantFrom(undefined, 'regress_x2_to_y3', 'add'), (which, at, cut, insert, other) => {
        const b = savedBases[which]!;
        const signature = other ?? b.signature;
        readSaved(b.pb.subarray(0, at % (b.pb.length + 1)), b.bundle, signature);
        readSaved(spliced(b.pb, at, cut, insert), b.bundle, signature);
      }),
      { numRuns: 200 },
    );
  });

  test('frozen GraphDefs: mutations, truncations and splices', () => {
    fc.assert(
      fc.property(fc.nat(graphBases.length - 1), edits, fc.nat(), fc.nat(), fc.uint8Array({ maxLength: 12 }), (which, list, at, cut, insert) => {
        const g = graphBases[which]!;
        readGraph(applied(g, list));
        readGraph(g.subarray(0, at % (g.length + 1)));
        readGraph(spliced(g, at, cut, insert));
      }),
      { numRuns: 300 },
    );
  });
});
