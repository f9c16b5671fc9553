import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { pytorchFormat } from '../src/formats/pytorch/format.js';
import { crc32 } from '../src/formats/pytorch/crc32.js';
import { parsePytorch, readPytorchFile } from '../src/formats/pytorch/reader.js';
import { tempDir } from './cli-helpers.js';
import { bytes, fixture, formatError, python, u32, zipOf } from './fixtures/pytorch/helpers.js';

/**
 * Hostile checkpoints. Each payload below really runs under Python's pickle.loads (checked with
 * the peers' Python when it is installed: the marker file appears), and modelbridge refuses it
 * with a FormatError naming the global, leaving no marker behind: nothing in the file ran.
 */

const temp = tempDir('modelbridge-pytorch-attack-');
afterAll(() => rmSync(temp, { recursive: true, force: true }));

const marker = (name: string) => join(temp, name);
const str = (s: string) => bytes('X', u32(Buffer.byteLength(s)), new Uint8Array(Buffer.from(s)));

/** Payloads that create `file` when unpickled by Python, and the global each one names. */
const payloads = (file: string): [string, string, Uint8Array][] => [
  ['os.system via GLOBAL and REDUCE (protocol 0)', 'os.system', bytes(`cos\nsystem\n(S'touch ${file}'\ntR.`)],
  ['posix.system (protocol 2)', 'posix.system', bytes(0x80, 2, 'cposix\nsystem\n', str(`touch ${file}`), 0x85, 'R.')],
  ['builtins.open via STACK_GLOBAL (protocol 4)', 'builtins.open', bytes(0x80, 4, str('builtins'), str('open'), 0x93, str(file), str('w'), 0x86, 'R.')],
  ['builtins.exec via INST', 'builtins.exec', bytes('(', str(`open(${JSON.stringify(file)}, "w")`), 'ibuiltins\nexec\n.')],
  ['__builtin__.eval (Python 2 spelling)', '__builtin__.eval', bytes('c__builtin__\neval\n(', str(`open(${JSON.stringify(file)}, "w")`), 'tR.')],
  ['subprocess.Popen with a list argument', 'subprocess.Popen', bytes(0x80, 2, 'csubprocess\nPopen\n(](', str('touch'), str(file), 'etR.')],
  ['a global hidden in a storage persistent id', 'os.system', bytes(0x80, 2, 'ctorch._utils\n_rebuild_tensor_v2\n((', str('storage'), 'cos\nsystem\n', str(`touch ${file}`), '0tQ.')],
];

describe('malicious pickles are refused, and nothing runs', () => {
  for (const [title, global] of payloads(marker('x'))) {
    it(title, () => {
      const name = `${title.replace(/\W+/g, '-')}`;
      const file = marker(name);
      const payload = payloads(file).find(([t]) => t === title)![2];
      if (python && !title.includes('persistent id')) {
        // The control: Python's own pickle does run it.
        const input = join(temp, `${name}.pkl`);
        writeFileSync(input, payload);
        // Popen returns before its child has run: wait for it.
        spawnSync(python, ['-c', 'import pickle, sys\nr = pickle.load(open(sys.argv[1], "rb"))\ngetattr(r, "wait", lambda: None)()', input]);
        expect(existsSync(file), `${title} runs under pickle.load`).toBe(true);
        rmSync(file, { force: true });
      }
      // As a torch.save archive's data.pkl.
      const archive = zipOf({ 'data.pkl': payload, version: bytes('3\n') });
      const error = formatError(() => parsePytorch(archive, 'evil.pt'));
      expect(error.message).toContain(`refused pickle global ${global}`);
      expect(error.message).toMatch(/evil\.pt: archive\/data\.pkl byte \d+:/);
      // As the object pickle of a legacy checkpoint, behind a valid magic number.
      const legacy = Buffer.concat([
        bytes(0x80, 2, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.'),
        bytes(0x80, 2, 'M', 0xe9, 0x03, '.'),
        bytes(0x80, 2, '}.'),
        payload,
      ]);
      expect(formatError(() => parsePytorch(legacy, 'evil-legacy.pt')).message).toContain(`refused pickle global ${global}`);
      expect(existsSync(file)).toBe(false);
    });
  }
});

describe('the picklescan attack files', () => {
  it('malicious1.zip (builtins.eval in data.pkl) is refused naming the global', () => {
    expect(formatError(() => readPytorchFile(fixture('picklescan/negative/malicious1.zip'))).message).toMatch(
      /malicious1\.zip: data\.pkl byte 29: refused pickle global builtins\.eval/,
    );
  });

  it('pytorch_magic_bypass.pt (eval producing the magic number) is refused at its first global', () => {
    const error = formatError(() => pytorchFormat.read(fixture('picklescan/negative/pytorch_magic_bypass.pt'), {}));
    expect(error.message).toMatch(/legacy magic number byte 2: refused pickle global __builtin__\.eval \(builtins\.eval\)/);
  });

  it('copyreg extension codes, BUILD on arbitrary objects and TorchScript classes outside TorchScript are refused', () => {
    expect(formatError(() => parsePytorch(zipOf({ 'data.pkl': bytes(0x80, 2, 0x82, 1, '.') }), 'ext.pt')).message).toMatch(/extension code 1/);
    const fake = bytes(0x80, 2, 'c__torch__\nFoo\n)', 0x81, '.');
    expect(formatError(() => parsePytorch(zipOf({ 'data.pkl': fake }), 'script.pt')).message).toMatch(/refused pickle global __torch__\.Foo/);
    const wholeModule = bytes(0x80, 2, 'c__main__\nNet\n)', 0x81, '.');
    expect(formatError(() => parsePytorch(zipOf({ 'data.pkl': wholeModule }), 'model.pt')).message).toMatch(/refused pickle global __main__\.Net: .*save its state_dict\(\) instead/);
    const sparse = bytes(0x80, 2, 'ctorch._utils\n_rebuild_sparse_tensor\n)R.');
    expect(formatError(() => parsePytorch(zipOf({ 'data.pkl': sparse }), 'sparse.pt')).message).toMatch(/sparse, quantized, nested, meta or subclass/);
  });
});

describe('resource attacks', () => {
  /** A zip whose data/0 is deflated and declares `declared` bytes (torch_dos_create.py's shape). */
  function deflatedStorage(numel: number, declared: number, actual: Uint8Array): Uint8Array {
    const pid = bytes('(', str('storage'), 'ctorch\nFloatStorage\n', str('0'), str('cpu'), 'J', u32(numel), 'tQ');
    const pickle = bytes(0x80, 2, 'ctorch._utils\n_rebuild_tensor_v2\n(', pid, 'K', 0, 'J', u32(numel), 0x85, 'K', 1, 0x85, 0x89, ')tR.');
    // data.pkl's local record and central header from a one-entry archive (whose tail is the
    // central header, then 56 + 20 + 22 bytes of end records), then data/0 appended by hand.
    const single = zipOf({ 'data.pkl': pickle });
    const centralLength = 46 + 'archive/data.pkl'.length;
    const cdStart = single.byteLength - 98 - centralLength;
    const first = Buffer.from(single.subarray(0, cdStart));
    const firstCentral = Buffer.from(single.subarray(cdStart, cdStart + centralLength));
    const name = Buffer.from('archive/data/0');
    const deflated = deflateRawSync(actual);
    const header = (central: boolean) => {
      const h = Buffer.alloc(central ? 46 : 30);
      const o = central ? 2 : 0;
      h.writeUInt32LE(central ? 0x02014b50 : 0x04034b50, 0);
      h.writeUInt16LE(8, 8 + o); // deflate
      h.writeUInt32LE(crc32(actual), 14 + o);
      h.writeUInt32LE(deflated.byteLength, 18 + o);
      h.writeUInt32LE(declared, 22 + o);
      h.writeUInt16LE(name.byteLength, 26 + o);
      if (central) h.writeUInt32LE(first.byteLength, 42);
      return h;
    };
    const local = Buffer.concat([header(false), name, deflated]);
    const cd = Buffer.concat([firstCentral, header(true), name]);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(2, 8);
    end.writeUInt16LE(2, 10);
    end.writeUInt32LE(cd.byteLength, 12);
    end.writeUInt32LE(first.byteLength + local.byteLength, 16);
    return Buffer.concat([first, local, cd, end]);
  }

  it('refuses a deflated storage declaring more than fits in memory, before inflating it', () => {
    const numel = 800_000_000; // 3.2 GB of float32
    const started = Date.now();
    const error = formatError(() => parsePytorch(deflatedStorage(numel, numel * 4, new Uint8Array(1024)), 'bomb.pt'));
    expect(error.message).toMatch(/archive\/data\/0.*at most 2147483647 bytes/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('refuses deflate data that inflates beyond its declared size (a zip bomb)', () => {
    const error = formatError(() => parsePytorch(deflatedStorage(256, 1024, new Uint8Array(64 << 20)), 'bomb.pt'));
    expect(error.message).toMatch(/inflates to its declared 1024 bytes/);
  });

  it('reads an honest deflated storage (other zip tools compress)', () => {
    const values = new Float32Array([1, 2, 3, 4]);
    const read = parsePytorch(deflatedStorage(4, 16, new Uint8Array(values.buffer)), 'deflated.pt');
    expect(read.tensors.get('tensor')!.toNumbers()).toEqual([1, 2, 3, 4]);
  });

  it('refuses a storage record shorter than the pickle claims', () => {
    const pid = bytes('(', str('storage'), 'ctorch\nFloatStorage\n', str('0'), str('cpu'), 'K', 100, 'tQ');
    const pickle = bytes(0x80, 2, 'ctorch._utils\n_rebuild_tensor_v2\n(', pid, 'K', 0, 'K', 100, 0x85, 'K', 1, 0x85, 0x89, ')tR.');
    const error = formatError(() => parsePytorch(zipOf({ 'data.pkl': pickle, 'data/0': new Uint8Array(8) }), 'short.pt'));
    expect(error.message).toMatch(/record archive\/data\/0: 400 bytes as the pickle says, got 8/);
  });

  it('refuses views reaching outside their storage', () => {
    const pid = bytes('(', str('storage'), 'ctorch\nFloatStorage\n', str('0'), str('cpu'), 'K', 2, 'tQ');
    const pickle = bytes(0x80, 2, 'ctorch._utils\n_rebuild_tensor_v2\n(', pid, 'K', 1, 'K', 2, 0x85, 'K', 1, 0x85, 0x89, ')tR.');
    const error = formatError(() => parsePytorch(zipOf({ 'data.pkl': pickle, 'data/0': new Uint8Array(8) }), 'oob.pt'));
    expect(error.message).toMatch(/a view within its storage of 8 bytes/);
  });

  it('survives a shared-structure blow-up when flattening (each container visited once)', () => {
    // d0 = {}, d(i+1) = {"a": d(i), "b": d(i)}: 2^60 paths, 61 containers.
    const chain = Buffer.concat([bytes(0x80, 2, '}q', 0), ...Array.from({ length: 60 }, (_, i) => bytes('(', str('a'), 'h', i, str('b'), 'h', i, 'dq', i + 1)), bytes('.')]);
    const started = Date.now();
    expect(parsePytorch(zipOf({ 'data.pkl': chain }), 'dag.pt').tensors.size).toBe(0);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
