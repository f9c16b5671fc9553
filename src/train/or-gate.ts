import type { Model } from '../core/model.js';
import { Tensor } from '../core/tensor.js';
import { lowerModule } from '../module/lower.js';
import type { ModuleSpec, SignatureSpec } from '../module/spec.js';
import { seededRandom } from './random.js';

/**
 * The OR gate of the classic TensorFlow-vs-PyTorch comparison: a 2-2-1 sigmoid network trained on
 * the first three rows of the OR truth table, then asked about (1,1), which it never saw.
 * Training is plain full-batch gradient descent on mean squared error with hand-derived backprop,
 * in float64; the weights are rounded to float32 once, at the end, so a seed always gives
 * bit-identical weights.
 */
export const OR_INPUTS: readonly (readonly [number, number])[] = [
  [0, 0],
  [0, 1],
  [1, 0],
  [1, 1],
];
const TRAIN_TARGETS = [0, 1, 1];

export const OR_MODULE: ModuleSpec = {
  type: 'Sequential',
  modules: [
    { type: 'Linear', in_features: 2, out_features: 2, bias: true },
    { type: 'Sigmoid' },
    { type: 'Linear', in_features: 2, out_features: 1, bias: true },
    { type: 'Sigmoid' },
  ],
};

export const OR_SIGNATURE: SignatureSpec = {
  inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 2] }],
  outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 1] }],
};

export interface TrainOptions {
  readonly seed?: number;
  readonly epochs?: number;
  readonly learningRate?: number;
}

export interface TrainedOrGate {
  readonly model: Model;
  readonly loss: number;
  /** Predictions for (0,0), (0,1), (1,0), (1,1) from the final float32 weights. */
  readonly predictions: readonly number[];
  readonly seed: number;
  readonly epochs: number;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

interface Params {
  w1: number[]; // [hidden=2][in=2], row-major like torch's Linear.weight
  b1: number[];
  w2: number[]; // [out=1][hidden=2]
  b2: number[];
}

function forward(p: Params, x: readonly number[]) {
  const h = [0, 1].map((j) => sigmoid(p.w1[j * 2]! * x[0]! + p.w1[j * 2 + 1]! * x[1]! + p.b1[j]!));
  const y = sigmoid(p.w2[0]! * h[0]! + p.w2[1]! * h[1]! + p.b2[0]!);
  return { h, y };
}

export function trainOrGate(options: TrainOptions = {}): TrainedOrGate {
  const seed = options.seed ?? 0;
  const epochs = options.epochs ?? 10_000;
  const lr = options.learningRate ?? 1.0;
  const random = seededRandom(seed);
  // torch.nn.Linear's default init range: U(-1/sqrt(in_features), 1/sqrt(in_features)).
  const uniform = (n: number, fanIn: number) => Array.from({ length: n }, () => (random() * 2 - 1) / Math.sqrt(fanIn));
  const p: Params = { w1: uniform(4, 2), b1: uniform(2, 2), w2: uniform(2, 2), b2: uniform(1, 2) };

  const rows = TRAIN_TARGETS.length;
  let loss = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const g: Params = { w1: [0, 0, 0, 0], b1: [0, 0], w2: [0, 0], b2: [0] };
    loss = 0;
    for (let r = 0; r < rows; r++) {
      const x = OR_INPUTS[r]!;
      const { h, y } = forward(p, x);
      const err = y - TRAIN_TARGETS[r]!;
      loss += (err * err) / rows;
      // d(mean squared error)/dy, through the output sigmoid.
      const dz2 = ((2 * err) / rows) * y * (1 - y);
      for (let j = 0; j < 2; j++) {
        g.w2[j]! += dz2 * h[j]!;
        const dz1 = dz2 * p.w2[j]! * h[j]! * (1 - h[j]!);
        g.w1[j * 2]! += dz1 * x[0]!;
        g.w1[j * 2 + 1]! += dz1 * x[1]!;
        g.b1[j]! += dz1;
      }
      g.b2[0]! += dz2;
    }
    for (const key of ['w1', 'b1', 'w2', 'b2'] as const) p[key] = p[key].map((v, i) => v - lr * g[key][i]!);
  }

  const f32 = (v: number[]) => Array.from(Float32Array.from(v));
  const final: Params = { w1: f32(p.w1), b1: f32(p.b1), w2: f32(p.w2), b2: f32(p.b2) };
  const weights = new Map<string, Tensor>([
    ['0.weight', Tensor.from('float32', [2, 2], final.w1)],
    ['0.bias', Tensor.from('float32', [2], final.b1)],
    ['2.weight', Tensor.from('float32', [1, 2], final.w2)],
    ['2.bias', Tensor.from('float32', [1], final.b2)],
  ]);
  const lowered = lowerModule(OR_MODULE, weights, 'or-gate', OR_SIGNATURE);
  const model: Model = {
    format: 'memory',
    weights,
    graph: lowered.graph,
    module: OR_MODULE,
    signatures: [lowered.signature],
    metadata: { 'modelbridge.producer': `modelbridge train-or --seed ${seed}` },
  };
  const predictions = OR_INPUTS.map((x) => forward(final, x).y);
  return { model, loss, predictions, seed, epochs };
}
