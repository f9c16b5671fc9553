import { existsSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/api/load.js';
import { runModel } from '../src/api/run.js';
import { attr, DEFAULT_OPSET, makeNode } from '../src/core/graph.js';
import type { Model } from '../src/core/model.js';
import type { ByteSource } from '../src/core/source.js';
import { Tensor } from '../src/core/tensor.js';
import { readTfliteFile } from '../src/formats/tflite/file.js';
import { writeTflite } from '../src/formats/tflite/writer.js';
import { readNpz } from '../src/api/npz.js';
import { writeOutputs } from '../src/cli/inputs.js';
import { tempDir } from './cli-helpers.js';
import { peerPython, runPeerScript } from './peers.js';

/**
 * A .tflite past 2 GiB: three embedding tables of 704 MiB (2.06 GiB of weights, past the
 * 2^31-byte FlatBuffer limit) gathered by an int32 index input and summed, so there is little
 * compute. modelbridge writes it with the buffers after the FlatBuffer (Buffer.offset/size, as
 * TFLiteConverter does past 2 GB), and reads it back: the layout is checked in the file, and
 * the model runs to the values the tables were generated with (row r of table k holds r + k/4,
 * exact in float32), for a few rows only; with the peers, LiteRT loads the file and runs it to
 * the same values. Skipped, saying so, when the disk has under 6 GB free.
 */
const ROWS = 180_224;
const WIDTH = 1024;
const TABLES = 3;
const TABLE_BYTES = ROWS * WIDTH * 4;

/** Table k's bytes, generated chunk by chunk for the writer (and all at once when a run reads it). */
function table(k: number): ByteSource {
  const fill = (from: number, to: number): Uint8Array => {
    const out = new Float32Array((to - from) / 4);
    for (let i = 0; i < out.length; i++) out[i] = Math.floor((from / 4 + i) / WIDTH) + k / 4;
    return new Uint8Array(out.buffer);
  };
  let all: Uint8Array | undefined;
  return {
    byteLength: TABLE_BYTES,
    read: () => (all ??= fill(0, TABLE_BYTES)),
    *chunks(chunkSize: number) {
      const step = Math.max(4096, chunkSize - (chunkSize % 4096));
      for (let at = 0; at < TABLE_BYTES; at += step) yield fill(at, Math.min(TABLE_BYTES, at + step));
    },
  };
}

function bigModel(): Model {
  const weights = new Map(Array.from({ length: TABLES }, (_, k) => [`table_${k}`, new Tensor('float32', [ROWS, WIDTH], table(k))] as const));
  const nodes = [
    ...Array.from({ length: TABLES }, (_, k) => makeNode('Gather', [`table_${k}`, 'idx'], [`row_${k}`], { axis: attr.int(0) })),
    makeNode('Add', ['row_0', 'row_1'], ['sum_01']),
    makeNode('Add', ['sum_01', 'row_2'], ['y']),
  ];
  const graph = {
    inputs: [{ name: 'idx', dtype: 'int32' as const, shape: [2] }],
    outputs: [{ name: 'y', dtype: 'float32' as const, shape: [2, WIDTH] }],
    initializers: weights,
    nodes,
    opset: DEFAULT_OPSET,
  };
  return { format: 'memory', weights, graph, signatures: [{ name: 'serving_default', inputs: new Map([['idx', 'idx']]), outputs: new Map([['y', 'y']]) }], metadata: {} };
}

const dir = tempDir('mb-tflite-big-');
const free = (() => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
})();
afterAll(() => {
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(free < 6e9)(`a .tflite past 2 GiB (${free < 6e9 ? `skipped: ${(free / 1e9).toFixed(1)} GB free, 6 needed` : 'disk space available'})`, () => {
  it('is written with buffers after the FlatBuffer and reads back running to the tables\' values', () => {
    const path = join(dir, 'big.tflite');
    writeTflite(bigModel(), path);
    const size = statSync(path).size;
    expect(size).toBeGreaterThan(2 ** 31);
    // The FlatBuffer itself is small; each table's buffer is an offset/size pair pointing past it.
    const file = readTfliteFile(path);
    const outside = file.buffers.filter((b) => b.kind === 'file');
    expect(outside.length).toBeGreaterThanOrEqual(TABLES);
    for (const b of outside) if (b.kind === 'file') expect(b.offset + b.size).toBeLessThanOrEqual(size);
    const back = loadModel(path);
    const out = runModel(back, { idx: Tensor.from('int32', [2], [7, ROWS - 1]) })['y']!;
    expect(out.shape).toEqual([2, WIDTH]);
    const y = out.toFloat32();
    // Row r of every table summed: 3r + (0 + 1 + 2)/4.
    expect(y[0]).toBe(3 * 7 + 0.75);
    expect(y[WIDTH - 1]).toBe(3 * 7 + 0.75);
    expect(y[WIDTH]).toBe(3 * (ROWS - 1) + 0.75);
    expect(y[2 * WIDTH - 1]).toBe(3 * (ROWS - 1) + 0.75);

    if (!peerPython()) return; // LiteRT's half needs the peers (test/peers.ts fails under CI without them)
    const inputs = join(dir, 'big.in.npz');
    const outputs = join(dir, 'big.out.npz');
    writeOutputs(inputs, { idx: Tensor.from('int32', [2], [7, ROWS - 1]) }, true);
    writeFileSync(join(dir, 'jobs.json'), JSON.stringify([[path, inputs, outputs]]));
    const r = runPeerScript('tflite_rnn_peers.py', ['run', join(dir, 'jobs.json')], { timeoutMs: 120_000 });
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const results = JSON.parse(r.stdout) as { error?: string; ops?: string[] }[];
    expect(results[0]!.error).toBeUndefined();
    expect(results[0]!.ops).toContain('GATHER');
    const litert = [...readNpz(new Uint8Array(readFileSync(outputs)), outputs).values()][0]!;
    expect(Array.from(litert.toFloat32())).toEqual(Array.from(y));
  }, 120_000);
});
