import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/api/load.js';
import { Tensor } from '../src/core/tensor.js';
import { MemoryAccess } from '../src/formats/pytorch/bytes.js';
import { readZip } from '../src/formats/pytorch/zip.js';
import { MAX_DEPTH, MAX_SOURCE_BYTES, parseSource, SyntaxProblem } from '../src/formats/torchscript/index.js';
import { Session } from '../src/runtime/executor.js';
import { cli, tempDir } from './cli-helpers.js';
import { bytes, fixture, u32, zipOf } from './fixtures/pytorch/helpers.js';

/**
 * The TorchScript subset parser on real and hostile text, and archives made from tch-rs's
 * torch.jit.save fixtures (tests/create_jit_models.py): with example inputs added as
 * torch.jit.trace stores them (traced_inputs.pkl), the code is lowered and runs; a `for` loop,
 * and code calling Python (os.system), give one line and nothing runs. The peer test
 * (torchscript.peer.test.ts) traces real models.
 */
const temp = tempDir('modelbridge-torchscript-unit-');
afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** Only SyntaxProblem may come out of the parser, whatever the text. */
function parseOutcome(text: string): 'ok' | 'refused' {
  try {
    parseSource(text);
    return 'ok';
  } catch (err) {
    if (err instanceof SyntaxProblem) return 'refused';
    throw err;
  }
}

describe('the TorchScript subset parser', () => {
  it('reads what torch.jit.trace writes: classes, methods, assignments, unpacking, calls with keywords, tuples', () => {
    const source = parseSource([
      'import __torch__.torch.nn.modules.linear',
      'class Net(Module):',
      '  __parameters__ = ["weight", ]',
      '  __annotations__["0"] = __torch__.torch.nn.modules.linear.Linear',
      '  def forward(self: __torch__.Net,',
      '    x: Tensor) -> Tuple[Tensor, Tensor]:',
      '    _0 = getattr(self, "0")',
      '    _1, _2, = (_0).forward(x, )',
      '    _3 = torch.arange(4., dtype=None, device=torch.device("cpu"))',
      '    return (torch.add(_1, _3, alpha=1), torch.slice(_2, 0, 0, 9223372036854775807))',
      '  def forward1(self: __torch__.Net,',
      '    x: Tensor) -> Tensor:',
      '    if bool(x):',
      '      x = torch.relu(x)',
      '    return x',
    ].join('\n'));
    const net = source.classes.get('Net')!;
    expect([...net.methods.keys()]).toEqual(['forward', 'forward1']);
    const forward = net.methods.get('forward')!;
    expect(forward.params.map((p) => p.name)).toEqual(['self', 'x']);
    expect(forward.body.map((s) => s.kind)).toEqual(['assign', 'assign', 'assign', 'return']);
    const unpack = forward.body[1]!;
    expect(unpack.kind === 'assign' && unpack.unpack && unpack.targets).toEqual(['_1', '_2']);
    const arange = forward.body[2]!;
    expect(arange.kind === 'assign' && arange.value.kind === 'call' && arange.value.keywords.map(([k]) => k)).toEqual(['dtype', 'device']);
    const ret = forward.body[3]!;
    expect(ret.kind === 'return' && ret.value?.kind === 'tuple' && ret.value.items.length).toBe(2);
    // Control flow is kept as an unsupported statement with its line, its block skipped.
    expect(net.methods.get('forward1')!.body).toEqual([{ kind: 'unsupported', construct: 'an "if" statement', line: 13 }, expect.objectContaining({ kind: 'return', line: 15 })]);
  });

  it('refuses hostile nesting, chains and sizes with a SyntaxProblem, without exhausting the stack', () => {
    const n = 200_000;
    expect(() => parseSource(`class A(Module):\n  def f(self):\n    return ${'('.repeat(n)}x${')'.repeat(n)}\n`)).toThrow(SyntaxProblem);
    expect(() => parseSource(`class A(Module):\n  def f(self):\n    return ${'-'.repeat(n)}x\n`)).toThrow(new RegExp(`at most ${MAX_DEPTH} deep`));
    expect(() => parseSource(`class A(Module):\n  def f(self):\n    return ${'not '.repeat(n)}x\n`)).toThrow(SyntaxProblem);
    expect(() => parseSource(`class A(Module):\n  def f(self):\n    return x${'.a'.repeat(n)}\n`)).toThrow(/in a chain/);
    expect(() => parseSource(`class A(Module):\n  def f(self):\n    return x${'**x'.repeat(n)}\n`)).toThrow(SyntaxProblem);
    expect(() => parseSource(' '.repeat(MAX_SOURCE_BYTES + 1))).toThrow(/source of at most/);
    expect(() => parseSource('class A(Module):\n  def f(self):\n    return "unterminated\n')).toThrow(/closed on its line/);
  });

  it('never fails with anything but a SyntaxProblem on random token soup', () => {
    const pieces = ['class', 'def', 'return', 'if', 'A', 'x', '(', ')', '[', ']', ',', ':', '=', '.', '->', '"s"', '1', '2.5', '\n', '\n  ', '\n    ', '  ', 'torch', 'not', '-', '**', '#c\n', '\\\n', '\t', '\r\n', '\u0000', '\u00e9'];
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const outcomes = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      let text = '';
      const length = Math.floor(random() * 60);
      for (let j = 0; j < length; j++) text += pieces[Math.floor(random() * pieces.length)];
      outcomes.add(parseOutcome(text));
    }
    expect(outcomes).toEqual(new Set(['ok', 'refused']));
  });
});

/** A pickled str, protocol 2. */
const str = (s: string) => bytes('X', u32(s.length), s);
/** A pickled float32 tensor of `shape`, its storage `key` (as torch pickles traced inputs). */
const tensor = (key: string, shape: number[]) => {
  const numel = shape.reduce((a, b) => a * b, 1);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const ints = (v: number[]) => bytes('(', ...v.map((x) => bytes('K', x)), 't');
  return bytes('ctorch._utils\n_rebuild_tensor_v2\n((', str('storage'), 'ctorch\nFloatStorage\n', str(key), str('cpu'), 'K', numel, 'tQK\x00', ints(shape), ints(strides), '\x89ccollections\nOrderedDict\n)Rt', 'R');
};
/** traced_inputs.pkl: {"forward": [tensors]}, the storages left empty as torch leaves them. */
const tracedInputs = (shapes: number[][]) => bytes('\x80\x02}(', str('forward'), '](', ...shapes.map((s, i) => tensor(String(i), s)), 'eu.');

/** A tch-rs fixture's records, edited, as a new archive. */
function edited(name: string, edit: (records: Map<string, Uint8Array>, folder: string) => void): string {
  const source = fixture(`tch-rs/tests/${name}.pt`);
  const zip = readZip(new MemoryAccess(new Uint8Array(readFileSync(source)), source));
  const records = new Map(zip.entries.map((x) => [x.name, zip.read(x)] as const));
  edit(records, name);
  const out = join(temp, `${name}-${records.size}-${Math.floor(Math.random() * 1e9)}.pt`);
  writeFileSync(out, zipOf(Object.fromEntries(records), ''));
  return out;
}

const withInputs = (name: string, shapes: number[][]) =>
  edited(name, (records, folder) => {
    records.set(`${folder}/traced_inputs.pkl`, tracedInputs(shapes));
    shapes.forEach((_, i) => records.set(`${folder}/traced_inputs/${i}`, new Uint8Array(0)));
  });

describe('tch-rs TorchScript archives', () => {
  const x = Tensor.from('float32', [2, 3], [1, 2, 3, 4, 5, 6]);
  const y = Tensor.from('float32', [2, 3], [0.5, -1, 2, 0, 3, -4]);

  it('lowers a traced forward with a buffer and a tuple result, and runs it', () => {
    const foo = loadModel(withInputs('foo', [[2, 3], [2, 3]]));
    // Elementwise code holds no size: the leading dim is the run-time batch (see the dynamic-batch test).
    expect(foo.graph!.inputs.map((i) => [i.name, i.shape])).toEqual([['x', ['batch', 3]], ['y', ['batch', 3]]]);
    const value = foo.weights.get('value')!.toNumbers()[0]!;
    const out = Object.values(new Session(foo.graph!).run({ x, y }))[0]!;
    expect(out.toNumbers()).toEqual(x.toNumbers().map((a, i) => Math.fround(Math.fround(2 * a + y.toNumbers()[i]!) + value)));

    const foo2 = loadModel(withInputs('foo2', [[2, 3], [2, 3]]));
    expect(foo2.graph!.outputs).toHaveLength(2);
    const [sum, diff] = foo2.graph!.outputs.map((o) => new Session(foo2.graph!).run({ x, y })[o.name]!.toNumbers());
    expect(sum).toEqual(x.toNumbers().map((a, i) => 2 * a + y.toNumbers()[i]!));
    expect(diff).toEqual(x.toNumbers().map((a, i) => a - y.toNumbers()[i]!));
  });

  it('a scripted loop gives one line naming the record, the line and the construct; its weights still read', () => {
    const r = cli(['run', fixture('tch-rs/tests/foo3.pt'), '--input', '[[1,2],[3,4]]']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/foo3\.pt: record foo3\/code\/__torch__\.py line 10: .*scripted code it cannot: a "for" statement/);
    expect(loadModel(fixture('tch-rs/tests/foo.pt')).weights.has('value')).toBe(true);
  });

  it('example inputs declaring huge shapes stop at the memory budget, in one line', () => {
    const file = edited('foo1', (records) => {
      const key = [...records.keys()].find((k) => k.endsWith('code/__torch__.py'))!;
      const text = Buffer.from(records.get(key)!).toString('utf8').replace(/return .*/, 'return torch.add(torch.hardswish(x), y)');
      records.set(key, new Uint8Array(Buffer.from(text)));
      records.set('foo1/traced_inputs.pkl', tracedInputs([[250, 250, 250, 250], [250, 250, 250, 250]]));
    });
    const r = cli(['run', file, '--input', '[[1]]', '--input', '[[1]]']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/within the memory budget of 256\.0 MiB .*not 14\.6 GiB/);
  });

  /** foo1 (forward(self, x, y)) with its return line replaced by `body` and the example inputs of `shapes`. */
  const foo1With = (body: string[], shapes: number[][]) =>
    edited('foo1', (records) => {
      const key = [...records.keys()].find((k) => k.endsWith('code/__torch__.py'))!;
      const text = Buffer.from(records.get(key)!).toString('utf8').replace(/    return .*/, body.map((l) => `    ${l}`).join('\n'));
      records.set(key, new Uint8Array(Buffer.from(text)));
      records.set('foo1/traced_inputs.pkl', tracedInputs(shapes));
    });
  const seq = (shape: number[], scale = 1) => Tensor.from('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.fround(((i * 7) % 11) * scale - 3)));

  it('torch.split, split_with_sizes, chunk and unbind give lists that unpack (prim::ListUnpack) and index', () => {
    const model = loadModel(foo1With([
      'a, b, = torch.split(x, 3, 1)',
      'c, d, e, = torch.chunk(y, 3, 1)',
      'r0, r1, = torch.unbind(x)',
      '_0 = torch.split_with_sizes(y, [1, 4], 1)',
      'return (torch.cat([b, a], 1), torch.add(c, d), e, torch.sub(r0, r1), _0[-1])',
    ], [[2, 5], [2, 5]]));
    const graph = model.graph!;
    // unbind cuts the leading dim into two named values: another batch is another program (below).
    expect(graph.inputs.map((i) => i.shape)).toEqual([[2, 5], [2, 5]]);
    expect(graph.nodes.filter((n) => n.op === 'Split')).toHaveLength(4);
    const x = seq([2, 5]);
    const y = seq([2, 5], 0.5);
    const out = new Session(graph).run({ x, y });
    const [cat, sum, last, diff, tail] = graph.outputs.map((o) => out[o.name]!);
    const X = x.toNumbers();
    const Y = y.toNumbers();
    const at = (v: number[], r: number, c: number) => v[r * 5 + c]!;
    expect(cat!.shape).toEqual([2, 5]);
    expect(cat!.toNumbers()).toEqual([0, 1].flatMap((r) => [3, 4, 0, 1, 2].map((c) => at(X, r, c))));
    // chunk(5, 3): pieces of ceil(5 / 3) = 2, 2 and 1, as torch cuts them
    expect(sum!.shape).toEqual([2, 2]);
    expect(sum!.toNumbers()).toEqual([0, 1].flatMap((r) => [0, 1].map((c) => Math.fround(at(Y, r, c) + at(Y, r, c + 2)))));
    expect(last!.shape).toEqual([2, 1]);
    expect(last!.toNumbers()).toEqual([at(Y, 0, 4), at(Y, 1, 4)]);
    expect(diff!.shape).toEqual([5]);
    expect(diff!.toNumbers()).toEqual([0, 1, 2, 3, 4].map((c) => Math.fround(at(X, 0, c) - at(X, 1, c))));
    expect(tail!.shape).toEqual([2, 4]);
    expect(tail!.toNumbers()).toEqual([0, 1].flatMap((r) => [1, 2, 3, 4].map((c) => at(Y, r, c))));
  });

  it('a split whose sizes do not add up, and a list unpacked into the wrong count, give one line', () => {
    for (const [body, pattern] of [
      [['a, b, = torch.split_with_sizes(x, [1, 1], 1)', 'return torch.add(a, b)'], /split sizes that add up to the length 5 of dim 1, not \[1,1\]/],
      [['a, b, = torch.chunk(x, 3, 1)', 'return torch.add(a, b)'], /2 values to unpack, not a list/],
    ] as const) {
      const r = cli(['run', foo1With([...body], [[2, 5], [2, 5]]), '--input', '[[1,2,3,4,5],[1,2,3,4,5]]', '--input', '[[1,2,3,4,5],[1,2,3,4,5]]']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
    }
  });

  it('sizes read with torch.size keep the batch dynamic: the program runs at another batch', () => {
    const model = loadModel(foo1With([
      'n = ops.prim.NumToTensor(torch.size(x, 0))',
      '_0 = int(n)',
      '_1 = torch.view(x, [_0, 2, -1])',
      '_2 = torch.sum(_1, [2], False, None)',
      '_3 = torch.zeros([int(torch.mul(n, 1)), 2], dtype=6, layout=None, device=torch.device("cpu"), pin_memory=False)',
      '_4 = torch.flatten(torch.slice(torch.slice(y, 0, 0, 9223372036854775807), 1, 0, 2), 1)',
      'return torch.add(torch.add(_2, _3), _4)',
    ], [[3, 6], [3, 4]]));
    const graph = model.graph!;
    expect(graph.inputs.map((i) => i.shape)).toEqual([['batch', 6], ['batch', 4]]);
    expect(graph.outputs.map((o) => o.shape)).toEqual([['batch', 2]]);
    for (const batch of [3, 5]) {
      const x = seq([batch, 6]);
      const y = seq([batch, 4], 0.25);
      const out = Object.values(new Session(graph).run({ x, y }))[0]!;
      const X = x.toNumbers();
      const Y = y.toNumbers();
      const want = Array.from({ length: batch }, (_, r) => [0, 1].map((k) => {
        const s = Math.fround(Math.fround(X[r * 6 + k * 3]! + X[r * 6 + k * 3 + 1]!) + X[r * 6 + k * 3 + 2]!);
        return Math.fround(s + Y[r * 4 + k]!);
      })).flat();
      expect(out.shape).toEqual([batch, 2]);
      expect(out.toNumbers()).toEqual(want);
    }
    // The example's batch written into the code (a view to [3, 2, -1]) keeps the traced shapes.
    const fixed = loadModel(foo1With(['return torch.add(torch.sum(torch.view(x, [3, 2, -1]), [2], False, None), torch.slice(y, 1, 0, 2))'], [[3, 6], [3, 4]]));
    expect(fixed.graph!.inputs.map((i) => i.shape)).toEqual([[3, 6], [3, 4]]);
  });

  it('code that calls Python is a name the subset does not know: one line, and nothing runs', () => {
    const marker = join(temp, 'pwned');
    for (const body of [`os.system("touch ${marker}")`, `__import__("os").system("touch ${marker}")`, `exec("open('${marker}', 'w')")`]) {
      const file = edited('foo1', (records) => {
        const key = [...records.keys()].find((k) => k.endsWith('code/__torch__.py'))!;
        const text = Buffer.from(records.get(key)!).toString('utf8').replace(/return .*/, `return ${body}`);
        records.set(key, new Uint8Array(Buffer.from(text)));
        records.set('foo1/traced_inputs.pkl', tracedInputs([[2, 3], [2, 3]]));
      });
      const r = cli(['run', file, '--input', '[[1,2,3],[4,5,6]]', '--input', '[[1,2,3],[4,5,6]]']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/line 9: .*(a name defined before it is used|cannot)/);
      expect(existsSync(marker)).toBe(false);
    }
  });
});
