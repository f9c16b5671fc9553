import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyConversion } from '../src/api/verify.js';
import { Tensor } from '../src/core/tensor.js';
import { trainOrGate } from '../src/train/or-gate.js';
import { tempDir } from './cli-helpers.js';

describe('conversion verification', () => {
  const source = trainOrGate({ seed: 2 }).model;

  it('accepts a faithful copy', () => {
    expect(() => verifyConversion(source, { ...source, format: 'other' }, [])).not.toThrow();
  });

  it('rejects a changed weight or a lost architecture, and removes the output', () => {
    const file = join(tempDir(), 'out.bin');
    writeFileSync(file, 'x');
    const weights = new Map(source.weights);
    const w = source.weights.get('2.bias')!.toFloat32().slice();
    w[0] = w[0]! + 1e-3;
    weights.set('2.bias', Tensor.fromArray('float32', [1], w));
    expect(() => verifyConversion(source, { ...source, weights }, [file])).toThrow(/tensor 2\.bias is different after writing/);
    expect(existsSync(file)).toBe(false);
    const { graph: _graph, ...bare } = source;
    expect(() => verifyConversion(source, bare, [])).toThrow(/architecture was lost/);
  });
});
