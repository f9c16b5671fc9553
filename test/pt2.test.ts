import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { FormatError, UsageError } from '../src/core/errors.js';
import { attr, makeNode, type Graph } from '../src/core/graph.js';
import { defaultSignature, type Model } from '../src/core/model.js';
import { Tensor } from '../src/core/tensor.js';
import { detectFormat } from '../src/formats/registry.js';
import { readPt2 } from '../src/formats/pt2/reader.js';
import { serializePt2 } from '../src/formats/pt2/writer.js';
import { MemoryAccess } from '../src/formats/pytorch/bytes.js';
import { serializePytorch } from '../src/formats/pytorch/writer.js';
import { readZip } from '../src/formats/pytorch/zip.js';
import { Session } from '../src/runtime/executor.js';
import { cli, tempDir } from './cli-helpers.js';
import { bytes, zipOf } from './fixtures/pytorch/helpers.js';

/**
 * The .pt2 reader and writer without PyTorch: modelbridge's own archives read back (names,
 * symbolic batch, outputs), and broken or hostile archives refused in one line. The same against
 * torch.export.save / torch.export.load is test/pt2.peer.test.ts.
 */

const temp = tempDir('modelbridge-pt2-unit-');
afterAll(() => rmSync(temp, { recursive: true, force: true }));

const f32 = (shape: number[], values: number[]) => Tensor.from('float32', shape, values);

/** The OR gate as an ONNX reader would give it: names torch cannot take, a symbolic batch. */
function orGate(): Model {
  const weights = new Map([
    ['dense/kernel:0', f32([2, 2], [5.1, -3.2, 4.9, -3.1])],
    ['dense/bias:0', f32([2], [-2.4, 1.3])],
    ['out.weight', f32([1, 2], [6.2, -5.7])],
    ['out.bias', f32([1], [-0.4])],
  ]);
  const graph: Graph = {
    inputs: [{ name: 'x:0', dtype: 'float32', shape: ['N', 2] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: ['N', 1] }],
    initializers: weights,
    nodes: [
      makeNode('Gemm', ['x:0', 'dense/kernel:0', 'dense/bias:0'], ['h'], { transB: attr.int(1) }),
      makeNode('Sigmoid', ['h'], ['a']),
      makeNode('Gemm', ['a', 'out.weight', 'out.bias'], ['o'], { transB: attr.int(1) }),
      makeNode('Sigmoid', ['o'], ['y']),
    ],
    opset: 17,
  };
  return { format: 'onnx', weights, graph, signatures: [defaultSignature(graph)], metadata: {} };
}

const X = f32([4, 2], [0, 0, 0, 1, 1, 0, 1, 1]);

function written(name: string, model: Model = orGate()): string {
  const path = join(temp, name);
  writeFileSync(path, serializePt2(model, name.replace(/\.pt2$/, '')));
  return path;
}

function formatError(fn: () => unknown): FormatError {
  try {
    fn();
  } catch (error) {
    if (error instanceof FormatError) return error;
    throw error;
  }
  throw new Error('expected a FormatError');
}

/** A copy of an archive with records replaced or dropped. */
function rewrite(source: string, name: string, edit: (records: Map<string, Uint8Array>) => void): string {
  const zip = readZip(new MemoryAccess(new Uint8Array(readFileSync(source)), source));
  const records = new Map(zip.entries.map((x) => [x.name, zip.read(x)] as const));
  edit(records);
  const target = join(temp, name);
  writeFileSync(target, zipOf(Object.fromEntries(records), ''));
  return target;
}

function editJson(records: Map<string, Uint8Array>, suffix: string, edit: (value: Record<string, unknown>) => void): void {
  const key = [...records.keys()].find((k) => k.endsWith(suffix))!;
  const value = JSON.parse(Buffer.from(records.get(key)!).toString('utf8')) as Record<string, unknown>;
  edit(value);
  records.set(key, new Uint8Array(Buffer.from(JSON.stringify(value))));
}

describe('pt2 written and read by modelbridge', () => {
  it('reads back what it wrote: names, weights, the symbolic batch, the outputs', () => {
    const source = orGate();
    const model = readPt2(written('or.pt2'));
    expect(model.format).toBe('pt2');
    expect(model.graph!.inputs).toEqual([{ name: 'x:0', dtype: 'float32', shape: ['s0', 2] }]);
    expect(model.graph!.outputs.map((o) => o.name)).toEqual(['y']);
    expect([...model.weights.keys()].sort()).toEqual([...source.weights.keys()].sort());
    for (const [k, t] of source.weights) expect(model.weights.get(k)!.toNumbers()).toEqual(t.toNumbers());
    const want = new Session(source.graph!).run({ 'x:0': X })['y']!;
    const got = new Session(model.graph!).run({ 'x:0': X })['y']!;
    expect(got.shape).toEqual([4, 1]);
    expect(got.toNumbers()).toEqual(want.toNumbers());
    // Gemm's transposed weight comes back as Gemm transB on the weight itself, not a Transpose node.
    expect(model.graph!.nodes.map((n) => n.op)).toEqual(['Gemm', 'Sigmoid', 'Gemm', 'Sigmoid']);
  });

  it('learns sizes from runs that hold no activation to their end: the graph output is all they keep', () => {
    const spy = vi.spyOn(Session.prototype, 'run');
    try {
      serializePt2(orGate(), 'or');
      // one run at the base batch, one with the batch moved
      expect(spy.mock.calls.length).toBe(2);
      for (const r of spy.mock.results) expect(Object.keys(r.value as object)).toEqual(['y']);
    } finally {
      spy.mockRestore();
    }
  });

  it('is detected by its archive_format record, ahead of torch.save archives', () => {
    expect(detectFormat(written('detect.pt2')).name).toBe('pt2');
    const renamed = join(temp, 'program.pt');
    writeFileSync(renamed, readFileSync(join(temp, 'detect.pt2')));
    expect(detectFormat(renamed).name).toBe('pt2');
    const checkpoint = join(temp, 'weights.pt');
    writeFileSync(checkpoint, serializePytorch(orGate().weights));
    expect(detectFormat(checkpoint).name).toBe('pytorch');
  });

  it('writes the same bytes for the same model', () => {
    expect(Buffer.compare(serializePt2(orGate()), serializePt2(orGate()))).toBe(0);
  });

  it('refuses an op it has no ATen mapping for, naming the node', () => {
    const model = orGate();
    const graph = { ...model.graph!, nodes: model.graph!.nodes.map((n) => (n.op === 'Sigmoid' && n.outputs[0] === 'a' ? { ...n, op: 'Celu' } : n)) };
    expect(() => serializePt2({ ...model, graph })).toThrow(UsageError);
    expect(() => serializePt2({ ...model, graph })).toThrow(/node a \(Celu\): no ATen mapping for Celu in the \.pt2 writer/);
  });
});

describe('broken and hostile .pt2 archives: one FormatError naming the file and the place', () => {
  const good = () => join(temp, 'base.pt2');
  written('base.pt2');

  it('a truncated archive', () => {
    const whole = readFileSync(good());
    const cut = join(temp, 'cut.pt2');
    writeFileSync(cut, whole.subarray(0, whole.byteLength - 200));
    expect(formatError(() => readPt2(cut)).message).toMatch(/cut\.pt2: /);
    const r = cli(['inspect', cut]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a hostile pickle in a pickled payload is refused by name', () => {
    const evil = rewrite(good(), 'evil.pt2', (records) => {
      let record = '';
      editJson(records, 'data/weights/model_weights_config.json', (v) => {
        const entry = Object.values(v['config'] as Record<string, { path_name: string; use_pickle: boolean }>)[0]!;
        entry.use_pickle = true;
        record = entry.path_name;
      });
      const key = [...records.keys()].find((k) => k.endsWith(`data/weights/${record}`))!;
      records.set(key, zipOf({ 'data.pkl': bytes(`cos\nsystem\n(S'touch ${join(temp, 'pwned')}'\ntR.`), version: bytes('3\n') }));
    });
    expect(formatError(() => readPt2(evil)).message).toMatch(/evil\.pt2 record .*data\/weights\/weight_\d+: archive\/data\.pkl byte \d+: refused pickle global os\.system/);
  });

  it('a graph naming a weight the archive does not hold, and a weight record missing', () => {
    const missing = rewrite(good(), 'missing.pt2', (records) => editJson(records, 'model_weights_config.json', (v) => delete (v['config'] as Record<string, unknown>)['out.weight']));
    expect(formatError(() => readPt2(missing)).message).toMatch(/missing\.pt2: parameter "out\.weight": a tensor for it in the archive's weights/);
    const gone = rewrite(good(), 'gone.pt2', (records) => {
      for (const k of [...records.keys()]) if (k.endsWith('data/weights/weight_0')) records.delete(k);
    });
    expect(formatError(() => readPt2(gone)).message).toMatch(/gone\.pt2: weights "[^"]+": its record base\/data\/weights\/weight_0 in the archive/);
  });

  it('an unknown schema or archive version, an unmapped op', () => {
    const future = rewrite(good(), 'future.pt2', (records) => editJson(records, 'models/model.json', (v) => (v['schema_version'] = { major: 9, minor: 0 })));
    expect(formatError(() => readPt2(future)).message).toMatch(/schema_version: an ExportedProgram schema version modelbridge knows \(major 8.*not 9\.0/);
    const layout = rewrite(good(), 'layout.pt2', (records) => records.set([...records.keys()].find((k) => k.endsWith('archive_version'))!, bytes('7')));
    expect(formatError(() => readPt2(layout)).message).toMatch(/archive_version: a pt2 archive version modelbridge knows \(0\), not "7"/);
    const unknown = rewrite(good(), 'unknown.pt2', (records) =>
      editJson(records, 'models/model.json', (v) => {
        const nodes = (v['graph_module'] as { graph: { nodes: { target: string; name: string }[] } }).graph.nodes;
        nodes[1]!.target = 'torch.ops.aten.special_bessel_j0.default';
      }),
    );
    expect(formatError(() => readPt2(unknown)).message).toMatch(/unknown\.pt2: node "[^"]+" \(aten\.special_bessel_j0\.default\): an ATen op modelbridge maps to the IR/);
  });

  it('sizes a program declares (an arange, a split) are claimed against the memory budget before anything is allocated', () => {
    const huge = rewrite(good(), 'huge.pt2', (records) =>
      editJson(records, 'models/model.json', (v) => {
        const nodes = (v['graph_module'] as { graph: { nodes: { target: string; inputs: unknown[] }[] } }).graph.nodes;
        nodes[1]!.target = 'torch.ops.aten.arange.default';
        nodes[1]!.inputs = [{ name: 'end', arg: { as_int: 1e12 }, kind: 1 }];
      }),
    );
    expect(formatError(() => readPt2(huge)).message).toMatch(/huge\.pt2: .*an arange within the memory budget of 256\.0 MiB/);
    const endless = rewrite(good(), 'endless.pt2', (records) =>
      editJson(records, 'models/model.json', (v) => {
        const graph = (v['graph_module'] as { graph: { nodes: { target: string; inputs: { name: string; arg: unknown; kind: number }[] }[] } }).graph;
        const node = graph.nodes[1]!;
        node.target = 'torch.ops.aten.split.Tensor';
        node.inputs = [node.inputs[0]!, { name: 'split_size', arg: { as_int: 0 }, kind: 1 }];
      }),
    );
    expect(formatError(() => readPt2(endless)).message).toMatch(/endless\.pt2: .*a split size of at least 1, not 0/);
  });

  it('a flipped byte in a weight record fails its CRC-32', () => {
    const bytesOf = new Uint8Array(readFileSync(good()));
    const zip = readZip(new MemoryAccess(bytesOf, good()));
    const entry = zip.entries.find((x) => x.name.endsWith('data/weights/weight_0'))!;
    const flipped = bytesOf.slice();
    flipped[zip.dataOffset(entry)]! ^= 0x40;
    const path = join(temp, 'flipped.pt2');
    writeFileSync(path, flipped);
    expect(formatError(() => readPt2(path)).message).toMatch(/flipped\.pt2: zip entry "base\/data\/weights\/weight_0": CRC-32 0x[0-9a-f]{8} as recorded, computed 0x[0-9a-f]{8}/);
  });

  it('a zip that is no torch.export archive, named .pt2', () => {
    const other = join(temp, 'other.pt2');
    writeFileSync(other, zipOf({ 'readme.txt': bytes('hello') }));
    expect(formatError(() => readPt2(other)).message).toMatch(/other\.pt2: zip archive: a torch\.export archive/);
  });
});
