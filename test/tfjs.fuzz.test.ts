import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { FormatError, UsageError } from '../src/core/errors.js';
import { readGraphModel, writeGraphModel } from '../src/formats/tfjs/index.js';
import { trainOrGate } from '../src/train/or-gate.js';
import { CNN, CNN_SIGNATURE, MLP, MLP_SIGNATURE, seededModel } from './fixtures/tfjs/models.js';
import { FIXTURES } from './fixtures/tfjs/peer.js';

/**
 * Property: whatever model.json and its shards hold, readGraphModel either returns a model or
 * throws one of modelbridge's typed errors (FormatError for the file, UsageError for a request it
 * cannot honour). A TypeError, RangeError, stack overflow or hang escaping the reader is a bug.
 * Inputs are mutations of real graph models: the converter-made fixtures from tfjs's own tests
 * and models modelbridge writes (plain and quantized), mutated as JSON text, as JSON values at
 * every path, and as shard bytes.
 */
const tmp = mkdtempSync(join(tmpdir(), 'modelbridge-tfjs-fuzz-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Base {
  readonly name: string;
  readonly json: string;
  /** Shards by file name, as model.json's paths name them. */
  readonly shards: ReadonlyMap<string, Uint8Array>;
}

function baseFrom(name: string, dir: string): Base {
  const json = readFileSync(join(dir, 'model.json'), 'utf8');
  const shards = new Map(readdirSync(dir).filter((f) => f.endsWith('.bin')).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))] as const));
  return { name, json, shards };
}

function written(name: string, write: (dir: string) => void): Base {
  const dir = join(tmp, `base-${name}`);
  write(dir);
  return baseFrom(name, dir);
}

const BASES: readonly Base[] = [
  baseFrom('dense_model (_FusedMatMul)', FIXTURES.dense),
  baseFrom('react-native (TF 1.15, control inputs)', FIXTURES.reactNative),
  { ...baseFrom('load_predict_data', join(FIXTURES.matmul, '..')), json: readFileSync(FIXTURES.matmul, 'utf8') },
  written('or-gate', (d) => writeGraphModel(trainOrGate({ seed: 0 }).model, d)),
  written('mlp', (d) => writeGraphModel(seededModel(MLP, MLP_SIGNATURE), d)),
  written('cnn-sharded', (d) => writeGraphModel(seededModel(CNN, CNN_SIGNATURE), d, { shardBytes: 1000 })),
  written('cnn-uint8', (d) => writeGraphModel(seededModel(CNN, CNN_SIGNATURE), d, { quantize: 'uint8' } as never)),
  written('mlp-float16', (d) => writeGraphModel(seededModel(MLP, MLP_SIGNATURE), d, { quantize: 'float16' } as never)),
];

let counter = 0;
/** Writes one mutated model and reads it; "ok" or the typed error's class. Anything else throws. */
function check(json: string, shards: ReadonlyMap<string, Uint8Array | undefined>): string {
  const dir = join(tmp, `${counter++}`);
  mkdirSync(dir);
  try {
    writeFileSync(join(dir, 'model.json'), json);
    for (const [name, bytes] of shards) if (bytes) writeFileSync(join(dir, name), bytes);
    try {
      const model = readGraphModel(dir);
      expect(model.graph).toBeDefined();
      return 'ok';
    } catch (error) {
      if (error instanceof FormatError) {
        // One line, naming the file.
        if (error.message.includes("\n")) console.log("MULTILINE", JSON.stringify(error.message).slice(0, 400));
        expect(error.message).not.toContain("\n");
        expect(error.file).toBe(join(dir, 'model.json'));
        return 'FormatError';
      }
      if (error instanceof UsageError) return 'UsageError';
      throw error;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const base = fc.constantFrom(...BASES);
/** FUZZ_RUNS=3000 for a longer search; the default keeps the file to a few seconds. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** Every path to a value inside a JSON document. */
function paths(value: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...prefix, i], out));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out);
  return out;
}

function setAt(root: unknown, path: readonly (string | number)[], replace: (old: unknown) => unknown): unknown {
  if (path.length === 0) return replace(root);
  const parent = path.slice(0, -1).reduce<any>((v, k) => v[k], root);
  const key = path[path.length - 1]!;
  const next = replace(parent[key]);
  if (next === DELETE) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
  } else parent[key] = next;
  return root;
}
const DELETE = Symbol('delete');

/** Values that stress a reader: wrong types, edges of numbers, strings shaped like TF's. */
const nasty = fc.oneof(
  fc.constantFrom<unknown>(null, true, false, 0, -1, 1, 1.5, -0.5, 2 ** 31, 2 ** 53, 1e308, -1e308, '', '-1', '0', '1', '99999999999999999999', 'DT_INVALID', 'DT_DOUBLE', 'DT_STRING', 'DT_INT64', 'x:0', 'x:7', '^x', 'float64', 'uint8', 'string', '../x.bin', 'NaN', [], {}, [[]], [-1], [0], [1e9, 1e9], { list: {} }, { size: '-1' }, { dim: [{ size: '1e9' }] }, DELETE),
  fc.jsonValue({ maxDepth: 2 }),
  fc.integer({ min: -5, max: 1 << 20 }),
);

describe('model.json mutations', () => {
  test('a value anywhere in model.json replaced or deleted (1 to 3 edits)', () => {
    fc.assert(
      fc.property(base, fc.array(fc.tuple(fc.nat(), nasty), { minLength: 1, maxLength: 3 }), (b, edits) => {
        let doc = JSON.parse(b.json) as unknown;
        for (const [at, value] of edits) {
          const all = paths(doc);
          const path = all[at % all.length]!;
          doc = setAt(doc, path, () => (value === DELETE ? (path.length === 0 ? {} : DELETE) : structuredClone(value)));
        }
        check(JSON.stringify(doc), b.shards);
      }),
      { numRuns: RUNS * 3 },
    );
  });

  test('a node op renamed to another TF or TF.js op, or an input rewired', () => {
    const ops = ['_FusedMatMul', '_FusedConv2D', 'FusedDepthwiseConv2dNative', 'Prelu', 'MatMul', 'BiasAdd', 'Conv2D', 'DepthwiseConv2dNative', 'Reshape', 'Transpose', 'Const', 'Placeholder', 'Identity', 'IdentityN', 'NoOp', 'Softmax', 'FusedBatchNormV3', 'MaxPool', 'AvgPool', 'ConcatV2', 'Pack', 'StridedSlice', 'Cumprod', 'While'];
    fc.assert(
      fc.property(base, fc.nat(), fc.constantFrom(...ops), fc.nat(), fc.nat(), (b, n, op, i, target) => {
        const doc = JSON.parse(b.json);
        const nodes = doc.modelTopology.node as { name: string; op: string; input?: string[] }[];
        const node = nodes[n % nodes.length]!;
        node.op = op;
        if (node.input?.length) node.input[i % node.input.length] = `${nodes[target % nodes.length]!.name}:${target % 3}`;
        check(JSON.stringify(doc), b.shards);
      }),
      { numRuns: RUNS },
    );
  });

  test('JSON text flips, cuts and insertions', () => {
    fc.assert(
      fc.property(base, fc.array(fc.tuple(fc.nat(), fc.constantFrom('{', '}', '[', ']', '"', ',', ':', '0', '-', '9', 'e', ' ', '\\', 'x')), { minLength: 1, maxLength: 4 }), fc.nat(), (b, edits, cut) => {
        let text = b.json;
        for (const [at, ch] of edits) {
          const i = at % (text.length + 1);
          text = at % 2 ? text.slice(0, i) + ch + text.slice(i + 1) : text.slice(0, i) + ch + text.slice(i);
        }
        if (cut % 4 === 0) text = text.slice(0, cut % (text.length + 1));
        check(text, b.shards);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('shard mutations', () => {
  test('shard bytes flipped, cut, extended or removed', () => {
    fc.assert(
      fc.property(base, fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 16 }), fc.integer({ min: -64, max: 64 }), fc.boolean(), (b, s, flips, resize, remove) => {
        const names = [...b.shards.keys()];
        const name = names[s % names.length]!;
        const bytes = Uint8Array.from(b.shards.get(name)!);
        for (const [at, v] of flips) if (bytes.byteLength) bytes[at % bytes.byteLength] = v;
        let next: Uint8Array | undefined = bytes;
        if (resize < 0) next = bytes.subarray(0, Math.max(0, bytes.byteLength + resize));
        else if (resize > 0) next = Uint8Array.from([...bytes, ...new Array(resize).fill(0xff)]);
        if (remove && s % 3 === 0) next = undefined;
        const outcome = check(b.json, new Map([...b.shards, [name, next]]));
        // A shard of another length, or none, is always refused: too short and weights are missing,
        // longer and (inside a group of several shards) every weight after it would be misplaced.
        if (next === undefined || resize !== 0) expect(outcome).toBe('FormatError');
      }),
      { numRuns: RUNS },
    );
  });
});

describe('the TF importer on a node short of inputs', () => {
  test('a ConcatV2 with no inputs (its axis would be input -1) gives a FormatError', () => {
    const b = BASES.find((x) => x.name === 'or-gate')!;
    const doc = JSON.parse(b.json);
    const node = doc.modelTopology.node.find((n: { op: string }) => n.op === 'Sigmoid');
    node.op = 'ConcatV2';
    delete node.input;
    expect(check(JSON.stringify(doc), b.shards)).toBe('FormatError');
  });
});
