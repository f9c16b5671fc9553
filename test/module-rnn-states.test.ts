import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/api/load.js';
import { runModel } from '../src/api/run.js';
import { Tensor } from '../src/core/tensor.js';
import { writeSafetensorsFile } from '../src/formats/safetensors/writer.js';
import { tempDir } from './cli-helpers.js';

/**
 * torch.nn.LSTM and GRU as a whole model return (output, (h_n, c_n)) and (output, h_n): a bundle
 * whose spec is the recurrent module itself has those outputs too (the zoo compares all three with
 * torch's; issue 11). h_n is each direction's last state: the forward one is the output's last
 * time step, the backward one its first, which ties the states to the output without torch.
 */
const values = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 0.5 * Math.sin(seed * 0.91 + i * 1.37));

function bundle(kind: 'LSTM' | 'GRU', layers: number): string {
  const [input, hidden, gates] = [3, 4, kind === 'LSTM' ? 4 : 3];
  const spec = { type: kind, input_size: input, hidden_size: hidden, num_layers: layers, batch_first: true, bidirectional: true };
  const weights = new Map<string, Tensor>();
  let seed = 1;
  for (let l = 0; l < layers; l++) {
    for (const sfx of ['', '_reverse']) {
      const inSize = l === 0 ? input : 2 * hidden;
      weights.set(`weight_ih_l${l}${sfx}`, Tensor.from('float32', [gates * hidden, inSize], values(gates * hidden * inSize, seed++)));
      weights.set(`weight_hh_l${l}${sfx}`, Tensor.from('float32', [gates * hidden, hidden], values(gates * hidden * hidden, seed++)));
      weights.set(`bias_ih_l${l}${sfx}`, Tensor.from('float32', [gates * hidden], values(gates * hidden, seed++)));
      weights.set(`bias_hh_l${l}${sfx}`, Tensor.from('float32', [gates * hidden], values(gates * hidden, seed++)));
    }
  }
  const path = join(tempDir('mb-rnn-states-'), `${kind}.safetensors`);
  writeSafetensorsFile(path, weights, { 'modelbridge.module': JSON.stringify(spec) });
  return path;
}

describe('a torch.nn.LSTM or GRU module spec as the whole model', () => {
  for (const [kind, names] of [['LSTM', ['y', 'h_n', 'c_n']], ['GRU', ['y', 'h_n']]] as const) {
    it(`${kind} (2 layers, bidirectional, batch_first) has outputs ${names.join(', ')}, h_n the last states of the output`, () => {
      const model = loadModel(bundle(kind, 2));
      expect(model.graph!.outputs.map((o) => o.name)).toEqual(names);
      const [batch, seq, H] = [2, 5, 4];
      const out = runModel(model, { x: Tensor.from('float32', [batch, seq, 3], values(batch * seq * 3, 9)) });
      expect(out['y']!.shape).toEqual([batch, seq, 2 * H]);
      for (const s of names.slice(1)) expect(out[s]!.shape, s).toEqual([4, batch, H]);
      const y = out['y']!.toNumbers();
      const h = out['h_n']!.toNumbers();
      // h_n[2] is layer 1 forward, h_n[3] layer 1 backward (torch's order: layer by layer, forward first).
      for (let b = 0; b < batch; b++) {
        for (let j = 0; j < H; j++) {
          expect(h[(2 * batch + b) * H + j]).toBe(y[(b * seq + seq - 1) * 2 * H + j]);
          expect(h[(3 * batch + b) * H + j]).toBe(y[(b * seq + 0) * 2 * H + H + j]);
        }
      }
    });
  }
});
