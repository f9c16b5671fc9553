import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without declarations
import { compareOutputs } from '../scripts/zoo.mjs';

/**
 * The zoo's pairing of a model's outputs with the producer's reference (scripts/zoo.mjs; the
 * consumer checks in python/zoo.py follow the same rules): by name, else unique shape, else by
 * value, else by position. Pairing by value is for producers that lost the output names
 * (tensorflowjs_converter keyed two outputs of a three-output signature `Identity_2:0` and
 * `Identity_1:0`, in swapped order); it must never let a wrong result pass.
 */
type Out = { name: string; shape: number[]; data: number[] };
const out = (name: string, shape: number[], data: number[]): Out => ({ name, shape, data });
const compare = compareOutputs as (got: Out[], ref: Out[]) => number;

const ref = [out('emb', [2], [1, 2]), out('logits', [3], [0.5, -1, 2]), out('probs', [3], [0.2, 0.1, 0.7])];

describe('zoo output pairing', () => {
  it('pairs renamed, reordered outputs of the same shape by their values', () => {
    const got = [out('emb', [2], [1, 2]), out('Identity_2:0', [3], [0.2, 0.1, 0.7]), out('Identity_1:0', [3], [0.5, -1, 2])];
    expect(compare(got, ref)).toBe(0);
  });

  it('still fails when a renamed output is wrong', () => {
    const got = [out('emb', [2], [1, 2]), out('Identity_2:0', [3], [0.2, 0.1, 0.7]), out('Identity_1:0', [3], [0.5, -1, 2.5])];
    expect(() => compare(got, ref)).toThrow(/differs from the reference/);
  });

  it('does not pair two references with one output', () => {
    const twin = [out('a', [3], [1, 1, 1]), out('b', [3], [1, 1, 1])];
    const got = [out('x', [3], [1, 1, 1]), out('y', [3], [9, 9, 9])];
    expect(() => compare(got, twin)).toThrow(/differs from the reference/);
  });

  it('pairs by name first, so equal values under other names do not decide', () => {
    const got = [out('probs', [3], [0.2, 0.1, 0.7]), out('logits', [3], [0.5, -1, 2]), out('emb', [2], [1, 2])];
    expect(compare(got, ref)).toBe(0);
  });
});
