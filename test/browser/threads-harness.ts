/**
 * The browser bundle's Web Worker pool (test/browser.threads.test.ts): an MLP large enough for
 * its products to be shared (64 x 512 x 512 multiply-adds and more) is written as ONNX, read back
 * from those bytes and run with one thread and with two; the page reports what it used.
 */
import type { Graph } from '../../src/core/graph.js';
import { defaultSignature, type Model } from '../../src/core/model.js';
import { errorLine, gemmKernel, readModel, runModel, startThreads, Tensor, threadStats, writeModel } from '../../src/browser.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

export interface ThreadsResult {
  readonly isolated: boolean;
  readonly kernel: string;
  /** What startThreads resolved with. */
  readonly started: number;
  readonly workers: number;
  /** Pool calls made by the one-thread run, and by the two-thread run. */
  readonly runsOne: number;
  readonly runsTwo: number;
  /** Pool calls made by a two-thread run before startThreads (the workers cannot have started yet). */
  readonly runsBeforeStart: number;
  readonly identical: boolean;
  readonly maxAbs: number;
  readonly outputs: number;
}

function mlp(): Model {
  const next = rng(7);
  const tensor = (shape: number[]): Tensor => Tensor.from('float32', shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => next() * 0.05));
  const graph = {
    inputs: [{ name: 'x', dtype: 'float32', shape: [64, 512] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [64, 256] }],
    initializers: new Map([
      ['w1', tensor([512, 512])],
      ['b1', tensor([512])],
      ['w2', tensor([512, 256])],
    ]),
    nodes: [
      { name: 'mm1', op: 'MatMul', domain: '', inputs: ['x', 'w1'], outputs: ['h'], attributes: {} },
      { name: 'add1', op: 'Add', domain: '', inputs: ['h', 'b1'], outputs: ['hb'], attributes: {} },
      { name: 'relu', op: 'Relu', domain: '', inputs: ['hb'], outputs: ['r'], attributes: {} },
      { name: 'mm2', op: 'MatMul', domain: '', inputs: ['r', 'w2'], outputs: ['z'], attributes: {} },
      { name: 'softmax', op: 'Softmax', domain: '', inputs: ['z'], outputs: ['y'], attributes: {} },
    ],
    opset: 17,
  } as unknown as Graph;
  return { format: 'onnx', weights: graph.initializers, graph, signatures: [defaultSignature(graph)], metadata: {} };
}

async function runThreads(): Promise<ThreadsResult> {
  const files = writeModel(mlp(), 'onnx', { name: 'mlp.onnx' });
  const model = await readModel(files.get('mlp.onnx')!, { name: 'mlp.onnx' });
  const next = rng(11);
  const x = Tensor.from('float32', [64, 512], Float32Array.from({ length: 64 * 512 }, () => next()));
  const runs = (): number => threadStats().runs;
  let before = runs();
  runModel(model, { x }, undefined, { threads: 2 });
  const runsBeforeStart = runs() - before;
  const started = await startThreads(2);
  before = runs();
  const one = runModel(model, { x }, undefined, { threads: 1 })['y']!.toFloat32();
  const runsOne = runs() - before;
  before = runs();
  const two = runModel(model, { x }, undefined, { threads: 2 })['y']!.toFloat32();
  const runsTwo = runs() - before;
  let identical = one.length === two.length;
  let maxAbs = 0;
  for (let i = 0; i < one.length; i++) {
    if (!Object.is(one[i], two[i])) identical = false;
    maxAbs = Math.max(maxAbs, Math.abs(one[i]! - two[i]!));
  }
  return {
    isolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true,
    kernel: gemmKernel(),
    started,
    workers: threadStats().workers,
    runsOne,
    runsTwo,
    runsBeforeStart,
    identical,
    maxAbs,
    outputs: two.length,
  };
}

export interface CrcResult {
  readonly started: number;
  /** Checksum streams on the worker while writing before startThreads, and after. */
  readonly streamsBefore: number;
  readonly streamsAfter: number;
  /** The checkpoint index (which holds each tensor's CRC-32C) written inline equals the one written with the worker. */
  readonly sameIndex: boolean;
  readonly roundTrip: boolean;
  /** What reading the checkpoint with a byte of the big tensor flipped gave. */
  readonly corrupted: string;
}

/** A SavedModel whose 12 MiB weight is checksummed on the CRC-32C Web Worker when written. */
async function runCrc(): Promise<CrcResult> {
  const next = rng(5);
  const w = Tensor.from('float32', [3 << 20], Float32Array.from({ length: 3 << 20 }, () => next()));
  const graph = {
    inputs: [{ name: 'x', dtype: 'float32', shape: [3 << 20] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [3 << 20] }],
    initializers: new Map([['w', w]]),
    nodes: [{ name: 'add', op: 'Add', domain: '', inputs: ['x', 'w'], outputs: ['y'], attributes: {} }],
    opset: 17,
  } as unknown as Graph;
  const model: Model = { format: 'onnx', weights: graph.initializers, graph, signatures: [defaultSignature(graph)], metadata: {} };
  const streams = (): number => threadStats().crcStreams;
  const index = (files: Map<string, Uint8Array>): Uint8Array => [...files].find(([p]) => p.endsWith('variables.index'))![1];
  let before = streams();
  const inline = writeModel(model, 'savedmodel', { name: 'big' });
  const streamsBefore = streams() - before;
  const started = await startThreads(2);
  before = streams();
  const files = writeModel(model, 'savedmodel', { name: 'big' });
  const streamsAfter = streams() - before;
  const a = index(inline);
  const b = index(files);
  const back = await readModel(files);
  const got = back.weights.values().next().value!.toFloat32();
  const roundTrip = got.length === 3 << 20 && got.every((v, i) => Object.is(v, w.toFloat32()[i]));
  const data = [...files].find(([p]) => p.includes('variables.data'))!;
  const bad = new Map(files);
  const flipped = data[1].slice();
  flipped[1000] = flipped[1000]! ^ 1;
  bad.set(data[0], flipped);
  let corrupted = 'read without complaint';
  try {
    const m = await readModel(bad);
    writeModel(m, 'safetensors', { name: 'x.safetensors' });
  } catch (error) {
    corrupted = errorLine(error).line;
  }
  return { started, streamsBefore, streamsAfter, sameIndex: a.length === b.length && a.every((v, i) => v === b[i]), roundTrip, corrupted };
}

Object.assign(globalThis, { runThreads, runCrc, harnessReady: true });
