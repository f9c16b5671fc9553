import { describe, expect, it } from 'vitest';
import { trainOrGate } from '../src/train/or-gate.js';

describe('OR gate trainer', () => {
  it('learns the three training rows and answers (1,1) with 1', () => {
    const { predictions, loss } = trainOrGate({ seed: 0 });
    expect(loss).toBeLessThan(0.01);
    expect(predictions[0]).toBeLessThan(0.2);
    expect(predictions[1]).toBeGreaterThan(0.8);
    expect(predictions[2]).toBeGreaterThan(0.8);
    expect(predictions[3]).toBeGreaterThan(0.8);
  });

  it('is deterministic: the same seed gives bit-identical weights, another seed other weights', () => {
    const bytes = (seed: number) => [...trainOrGate({ seed }).model.weights.values()].map((t) => Array.from(t.bytes()));
    expect(bytes(7)).toEqual(bytes(7));
    expect(bytes(7)).not.toEqual(bytes(8));
  });

  it('lowers to Gemm/Sigmoid over the state dict tensors themselves', () => {
    const { model } = trainOrGate();
    expect(model.graph!.nodes.map((n) => n.op)).toEqual(['Gemm', 'Sigmoid', 'Gemm', 'Sigmoid']);
    expect(model.graph!.initializers.get('0.weight')).toBe(model.weights.get('0.weight'));
    expect(model.graph!.outputs[0]!.name).toBe('y');
  });
});
